//! How bytes are protected.
//!
//! - [`seal`]: AES-256-CBC + HMAC-SHA256, encrypt-then-MAC, with keys derived
//!   by HKDF-SHA256 from an epoch's [`SessionKey`] or an X25519 agreement.
//! - [`keys`]: RSA-3072 identity keys: SPKI, fingerprint, safety code,
//!   OAEP-SHA256 key wraps and PSS-SHA256 signatures.
//! - [`dh`]: X25519 agreements for join requests and private messages.
//! - [`password`]: the room password proof (PBKDF2-HMAC-SHA256, then HMAC).
//!
//! This module never logs, never prints key bytes in `Debug`, and reports
//! every authentication failure as one opaque error.

pub mod dh;
pub mod keys;
pub mod password;
pub mod seal;

pub use dh::{DhPublic, DhSecret};
pub use keys::{
    KeyError, PrivateKey, PublicKey, SafetyCode, VerifiedEpoch, MAX_RSA_BITS, MIN_RSA_BITS,
};
/// The OS CSPRNG, for the callers of [`seal`], [`PrivateKey::sign`] and the
/// key generators outside the engine (which draws from its own source).
pub use rand_core::OsRng;
pub use seal::{open, seal, OpenError, SealKeys, SessionKey};

use crate::ids::{Fingerprint, RoomId};

/// SHA-256 of a DER encoding: a member's SubjectPublicKeyInfo (its identity
/// fingerprint) or the relay's certificate (its pin).
pub fn fingerprint_of(der: &[u8]) -> Fingerprint {
    use sha2::{Digest, Sha256};
    Fingerprint(Sha256::digest(der).into())
}

/// Whether two fingerprints are equal, in constant time (a pin check must
/// not tell an attacker how much of its guess was right).
pub fn same_fingerprint(a: &Fingerprint, b: &Fingerprint) -> bool {
    use subtle::ConstantTimeEq;
    a.0.ct_eq(&b.0).into()
}

/// A fresh random room id from the OS CSPRNG.
pub fn random_room_id() -> RoomId {
    RoomId(random_array())
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    use rand_core::{OsRng, RngCore};
    OsRng.fill_bytes(buf);
}

/// Returns `N` bytes from the operating system's CSPRNG.
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    random_bytes(&mut b);
    b
}

/// Raw primitives for test vectors, tests and benchmarks only (feature
/// `test-support`). Production code reaches RSA decryption only through
/// [`VerifiedEpoch`], and CBC decryption only through [`open`].
#[cfg(any(test, feature = "test-support"))]
pub mod testing {
    use rsa::RsaPrivateKey;

    use super::keys::KeyError;
    use super::seal::{OpenError, SessionKey, IV_LEN, KEY_LEN};
    use super::PrivateKey;
    use crate::ids::RoomId;

    /// RSA-OAEP-SHA256 decryption of arbitrary bytes.
    pub fn oaep_decrypt(
        key: &RsaPrivateKey,
        label: Option<&str>,
        ct: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        super::keys::oaep_decrypt(key, label, ct)
    }

    /// AES-256-CBC decryption without authentication.
    pub fn cbc_decrypt(
        key: &[u8; KEY_LEN],
        iv: &[u8; IV_LEN],
        ct: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        super::seal::cbc_decrypt(key, iv, ct)
    }

    /// HMAC-SHA256 check of a possibly truncated tag.
    pub fn hmac_sha256_verify(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        super::seal::hmac_sha256_verify(key, data, tag)
    }

    /// HKDF-SHA256 with an arbitrary salt and output length: the function
    /// behind [`super::SealKeys::derive`].
    pub fn hkdf_sha256(
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), super::seal::HkdfLengthError> {
        super::seal::hkdf_sha256(salt, ikm, info, out)
    }

    /// PBKDF2-HMAC-SHA256 with arbitrary parameters: the function behind
    /// [`super::password::password_key`].
    pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
        super::password::pbkdf2_sha256(password, salt, iterations, out)
    }

    /// The X25519 shared secret of a raw private key and a peer's public
    /// key, through the same check as [`super::DhSecret::agree`] (an all-zero
    /// result is refused).
    pub fn x25519(
        private: [u8; 32],
        public: &super::DhPublic,
    ) -> Result<[u8; 32], super::dh::DhError> {
        super::DhSecret::from_bytes(private)
            .shared_secret(public)
            .map(|s| *s)
    }

    /// Unwraps a session key without a verified epoch.
    pub fn unwrap_session_key(
        key: &PrivateKey,
        room: &RoomId,
        epoch: u64,
        wrapped: &[u8],
    ) -> Result<SessionKey, KeyError> {
        key.unwrap_session_key(room, epoch, wrapped)
    }
}
