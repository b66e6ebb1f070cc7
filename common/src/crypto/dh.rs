//! X25519 agreements, used where a key must be reached without RSA
//! decryption: join requests to the admin's per-run key, and private
//! messages to a member's static key.
//!
//! Construction: X25519(ephemeral secret, recipient public) → shared secret
//! → HKDF-SHA256(salt "teamchat/v1/hkdf-salt", info = purpose ‖ 0x00 ‖ room ‖
//! ephemeral public ‖ recipient public) → [`SealKeys`]. An all-zero shared
//! secret (a low-order public key) is refused.

use std::fmt;

use rand_core::CryptoRngCore;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

use super::seal::SealKeys;
use crate::ids::RoomId;

/// An X25519 public key as carried on the wire.
pub type DhPublic = [u8; 32];

/// An X25519 secret (zeroized on drop by `x25519-dalek`).
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub struct DhSecret(StaticSecret);

/// The peer's public key was a low-order point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("X25519 agreement failed (low-order public key)")]
pub struct DhError;

impl DhSecret {
    /// A fresh secret from `rng` (the OS CSPRNG, or an engine's source).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        DhSecret(StaticSecret::random_from_rng(rng))
    }

    /// The public half.
    pub fn public(&self) -> DhPublic {
        XPublic::from(&self.0).to_bytes()
    }

    /// Seal keys for `purpose` in `room`, between the sender's ephemeral
    /// public key `eph` and the recipient's public key `recipient`. Both sides
    /// call this with the same three public values.
    pub fn agree(
        &self,
        their_public: &DhPublic,
        purpose: &str,
        room: &RoomId,
        eph: &DhPublic,
        recipient: &DhPublic,
    ) -> Result<SealKeys, DhError> {
        let shared = self.shared_secret(their_public)?;
        let mut info = Vec::with_capacity(purpose.len() + 16 + 64);
        info.extend_from_slice(purpose.as_bytes());
        info.push(0);
        info.extend_from_slice(room.as_bytes());
        info.extend_from_slice(eph);
        info.extend_from_slice(recipient);
        Ok(SealKeys::derive(&shared[..], &info))
    }

    /// The raw X25519 shared secret with `their_public` (RFC 7748), refused
    /// when it is all zero: a low-order public key would make it known to
    /// anyone. [`DhSecret::agree`] calls it; the Wycheproof vectors check it.
    pub(crate) fn shared_secret(
        &self,
        their_public: &DhPublic,
    ) -> Result<Zeroizing<[u8; 32]>, DhError> {
        let shared = self.0.diffie_hellman(&XPublic::from(*their_public));
        if !shared.was_contributory() {
            return Err(DhError);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }

    /// A secret from its 32 bytes (test vectors only; X25519 clamps them).
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        DhSecret(StaticSecret::from(bytes))
    }
}

impl fmt::Debug for DhSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhSecret(public {})", hex::encode(&self.public()[..8]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal::{open, seal};
    use rand_core::OsRng;

    #[test]
    fn both_sides_derive_the_same_keys() {
        let room = RoomId([9; 16]);
        let recipient = DhSecret::generate(&mut OsRng);
        let eph = DhSecret::generate(&mut OsRng);
        let (rp, ep) = (recipient.public(), eph.public());
        let k1 = eph.agree(&rp, "join", &room, &ep, &rp).unwrap();
        let k2 = recipient.agree(&ep, "join", &room, &ep, &rp).unwrap();
        let s = seal(&mut OsRng, &k1, b"aad", b"hello");
        assert_eq!(*open(&k2, b"aad", &s).unwrap(), b"hello");
        let k3 = recipient.agree(&ep, "pm", &room, &ep, &rp).unwrap();
        assert!(open(&k3, b"aad", &s).is_err());
    }

    #[test]
    fn low_order_public_key_is_refused() {
        let s = DhSecret::generate(&mut OsRng);
        let zero = [0u8; 32];
        assert_eq!(
            s.agree(&zero, "join", &RoomId([0; 16]), &zero, &s.public())
                .err(),
            Some(DhError)
        );
    }
}
