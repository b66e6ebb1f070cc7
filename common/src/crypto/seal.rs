//! Symmetric sealing: AES-256-CBC (PKCS#7) then HMAC-SHA256 over
//! `u32be(len(aad)) ‖ aad ‖ iv ‖ ciphertext`, full 32-byte tag.
//!
//! [`open`] verifies the tag in constant time *before* it touches the
//! ciphertext, and every failure — wrong key, wrong header, flipped bit,
//! bad padding, wrong length — is the same [`OpenError`], so there is no
//! padding oracle.

use std::fmt;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ids::RoomId;
use crate::wire::Sealed;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// Length of a session key, an encryption key and a MAC key.
pub const KEY_LEN: usize = 32;
/// Length of the CBC initialisation vector.
pub const IV_LEN: usize = 16;
/// Length of the HMAC-SHA256 tag (never truncated).
pub const TAG_LEN: usize = 32;
/// AES block size.
pub const BLOCK_LEN: usize = 16;

/// HKDF salt shared by every TeamChat derivation (domain separation).
pub(crate) const HKDF_SALT: &[u8] = b"teamchat/v1/hkdf-salt";
/// HKDF info prefix of epoch keys.
const EPOCH_INFO: &[u8] = b"teamchat/v1/hkdf/epoch";

/// The one error [`open`] returns, whatever went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message authentication failed")]
pub struct OpenError;

/// A 32-byte epoch secret from the OS CSPRNG.
///
/// Zeroized on drop, not `Clone` outside tests, and its `Debug` prints no bytes. It is
/// never written to disk: it exists in memory and inside RSA-OAEP wraps.
// Cloned only to snapshot engines in tests and fuzzing; each copy wipes
// itself on drop.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionKey([u8; KEY_LEN]);

impl SessionKey {
    /// A fresh key from `rng` (the OS CSPRNG, or an engine's source).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        // Filled in place: no copy of the key is left behind.
        let mut key = SessionKey([0u8; KEY_LEN]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// Rebuilds a key from bytes (after an RSA unwrap). The caller should
    /// zeroize its copy.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SessionKey(bytes)
    }

    /// The raw key, for wrapping only.
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The encryption and MAC keys of epoch `epoch` in room `room`:
    /// HKDF-SHA256(salt = "teamchat/v1/hkdf-salt", ikm = session key,
    /// info = "teamchat/v1/hkdf/epoch" ‖ room ‖ u64be(epoch)) → 64 bytes,
    /// first half the AES key, second half the HMAC key.
    pub fn epoch_keys(&self, room: &RoomId, epoch: u64) -> SealKeys {
        let mut info = Vec::with_capacity(EPOCH_INFO.len() + RoomId::LEN + 8);
        info.extend_from_slice(EPOCH_INFO);
        info.extend_from_slice(room.as_bytes());
        info.extend_from_slice(&epoch.to_be_bytes());
        SealKeys::derive(&self.0, &info)
    }
}

/// HKDF-SHA256 asked for more than 255 × 32 = 8160 bytes of output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("HKDF-SHA256 output longer than 8160 bytes")]
pub struct HkdfLengthError;

/// HKDF-SHA256 (RFC 5869): extract a key from `ikm` under `salt` (an empty
/// salt is the RFC's default of 32 zero bytes), then expand `info` into
/// `out`. The one HKDF of the crate: [`SealKeys::derive`] calls it, and the
/// Wycheproof vectors check it.
pub(crate) fn hkdf_sha256(
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), HkdfLengthError> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out)
        .map_err(|_| HkdfLengthError)
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// A pair of independent keys for one seal context: AES-256 and HMAC-SHA256.
// Cloned only to snapshot engines in tests and fuzzing; each copy wipes
// itself on drop.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SealKeys {
    enc: [u8; KEY_LEN],
    mac: [u8; KEY_LEN],
}

impl SealKeys {
    /// HKDF-SHA256 with the TeamChat salt: 64 bytes of output keyed by
    /// `ikm` and bound to `info`; bytes 0..32 encrypt, 32..64 authenticate.
    pub fn derive(ikm: &[u8], info: &[u8]) -> Self {
        let mut okm = [0u8; 2 * KEY_LEN];
        // 64 bytes is far below HKDF-SHA256's 8160-byte maximum.
        if hkdf_sha256(HKDF_SALT, ikm, info, &mut okm).is_err() {
            unreachable!("HKDF output length is fixed and valid");
        }
        let mut keys = SealKeys {
            enc: [0; KEY_LEN],
            mac: [0; KEY_LEN],
        };
        keys.enc.copy_from_slice(&okm[..KEY_LEN]);
        keys.mac.copy_from_slice(&okm[KEY_LEN..]);
        okm.zeroize();
        keys
    }

    /// A keyed tag of `data` (HMAC-SHA256 under the authentication key):
    /// the same input gives the same tag, and without the key nobody can
    /// compute or invert it. Used to index local history without storing
    /// room ids in the clear.
    pub fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.mac)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(b"teamchat/v1/tag");
        m.update(&[0]);
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Builds keys from explicit halves (test vectors only).
    #[cfg(any(test, feature = "test-support"))]
    pub fn from_parts(enc: [u8; KEY_LEN], mac: [u8; KEY_LEN]) -> Self {
        SealKeys { enc, mac }
    }

    fn mac(&self, aad: &[u8], iv: &[u8; IV_LEN], ciphertext: &[u8]) -> HmacSha256 {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.mac)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        // Lengths in the MAC input keep (aad, iv, ciphertext) unambiguous.
        m.update(&aad_len(aad).to_be_bytes());
        m.update(aad);
        m.update(iv);
        m.update(ciphertext);
        m
    }
}

impl fmt::Debug for SealKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKeys(..)")
    }
}

fn aad_len(aad: &[u8]) -> u32 {
    // Callers pass headers of a few hundred bytes; anything that would not
    // fit u32 saturates, which only makes the MAC fail, never panics.
    u32::try_from(aad.len()).unwrap_or(u32::MAX)
}

/// Encrypts `plaintext` under `keys` with a fresh random IV from `rng` and
/// authenticates `aad` with it.
pub fn seal(rng: &mut impl CryptoRngCore, keys: &SealKeys, aad: &[u8], plaintext: &[u8]) -> Sealed {
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv);
    seal_inner(keys, aad, iv, plaintext)
}

/// [`seal`] with a caller-chosen IV: for known-answer tests only. Reusing an
/// IV under one key leaks whether two messages share a prefix.
#[cfg(any(test, feature = "test-support"))]
pub fn seal_with_iv(keys: &SealKeys, aad: &[u8], iv: [u8; IV_LEN], plaintext: &[u8]) -> Sealed {
    seal_inner(keys, aad, iv, plaintext)
}

fn seal_inner(keys: &SealKeys, aad: &[u8], iv: [u8; IV_LEN], plaintext: &[u8]) -> Sealed {
    let ciphertext = cbc_encrypt(&keys.enc, &iv, plaintext);
    let tag: [u8; TAG_LEN] = keys
        .mac(aad, &iv, &ciphertext)
        .finalize()
        .into_bytes()
        .into();
    Sealed {
        iv,
        ciphertext: ciphertext.into(),
        tag,
    }
}

/// Verifies the tag in constant time, and only then decrypts. The plaintext
/// is zeroized when dropped.
pub fn open(keys: &SealKeys, aad: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let ct = &sealed.ciphertext[..];
    if ct.is_empty() || !ct.len().is_multiple_of(BLOCK_LEN) {
        return Err(OpenError);
    }
    keys.mac(aad, &sealed.iv, ct)
        .verify_slice(&sealed.tag)
        .map_err(|_| OpenError)?;
    cbc_decrypt(&keys.enc, &sealed.iv, ct)
        .map(Zeroizing::new)
        .map_err(|_| OpenError)
}

/// AES-256-CBC with PKCS#7 padding (the primitive under [`seal`]).
pub fn cbc_encrypt(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN], plaintext: &[u8]) -> Vec<u8> {
    Aes256CbcEnc::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// AES-256-CBC decryption with PKCS#7 unpadding. Only [`open`] calls it,
/// on authenticated ciphertext: on its own it would be a padding oracle.
pub(crate) fn cbc_decrypt(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    ciphertext: &[u8],
) -> Result<Vec<u8>, OpenError> {
    Aes256CbcDec::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map_err(|_| OpenError)
}

/// HMAC-SHA256 of `data` under `key` (the primitive under [`seal`]).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; TAG_LEN] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Shortest truncated tag [`hmac_sha256_verify`] accepts (128 bits).
pub const MIN_TRUNCATED_TAG: usize = 16;

/// Checks an HMAC-SHA256 tag in constant time: the full 32 bytes, or its
/// leftmost 16 to 31 bytes (RFC 2104 truncation, never below 128 bits).
/// TeamChat's own seal always uses the full 32 bytes (test vectors only).
#[cfg(any(test, feature = "test-support"))]
pub(crate) fn hmac_sha256_verify(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    if !(MIN_TRUNCATED_TAG..=TAG_LEN).contains(&tag.len()) {
        return false;
    }
    let mut m = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(data);
    m.verify_truncated_left(tag).is_ok()
}

/// The seal keys of a privately sent file's chunks: HKDF of the secret in
/// its [`PrivateFileOffer`](crate::wire::PrivateFileOffer), bound to the
/// room and the transfer id.
pub fn private_file_keys(offer: &crate::wire::PrivateFileOffer, room: &RoomId) -> SealKeys {
    use crate::wire::context;
    let transfer = &offer.offer.transfer;
    let mut info = Vec::with_capacity(context::HKDF_PRIVATE_FILE.len() + 1 + 32);
    info.extend_from_slice(context::HKDF_PRIVATE_FILE.as_bytes());
    info.push(0);
    info.extend_from_slice(&room.0);
    info.extend_from_slice(transfer);
    SealKeys::derive(&offer.secret, &info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn keys() -> SealKeys {
        SessionKey::from_bytes([7; 32]).epoch_keys(&RoomId([1; 16]), 3)
    }

    #[test]
    fn seal_then_open_returns_the_plaintext() {
        for len in [0usize, 1, 15, 16, 17, 1000] {
            let pt = vec![0x5a; len];
            let s = seal(&mut OsRng, &keys(), b"hdr", &pt);
            assert_eq!(s.ciphertext.len(), (len / 16 + 1) * 16);
            assert_eq!(*open(&keys(), b"hdr", &s).unwrap(), pt);
        }
    }

    #[test]
    fn every_seal_uses_a_fresh_iv() {
        let a = seal(&mut OsRng, &keys(), b"", b"same");
        let b = seal(&mut OsRng, &keys(), b"", b"same");
        assert_ne!(a.iv, b.iv);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn epoch_room_and_key_each_change_the_derived_keys() {
        let k = SessionKey::from_bytes([7; 32]);
        let s = seal(&mut OsRng, &k.epoch_keys(&RoomId([1; 16]), 3), b"", b"x");
        assert_eq!(
            open(&k.epoch_keys(&RoomId([1; 16]), 3), b"", &s),
            Ok(Zeroizing::new(b"x".to_vec()))
        );
        assert_eq!(
            open(&k.epoch_keys(&RoomId([1; 16]), 4), b"", &s),
            Err(OpenError)
        );
        assert_eq!(
            open(&k.epoch_keys(&RoomId([2; 16]), 3), b"", &s),
            Err(OpenError)
        );
        let other = SessionKey::from_bytes([8; 32]);
        assert_eq!(
            open(&other.epoch_keys(&RoomId([1; 16]), 3), b"", &s),
            Err(OpenError)
        );
    }

    #[test]
    fn moving_bytes_between_aad_and_ciphertext_fails() {
        // Without the length prefix, aad‖iv could absorb a ciphertext block.
        let k = keys();
        let s = seal(&mut OsRng, &k, b"header", &[1u8; 40]);
        let mut aad = b"header".to_vec();
        aad.extend_from_slice(&s.iv);
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&s.ciphertext[..16]);
        let shifted = Sealed {
            iv,
            ciphertext: s.ciphertext.slice(16..),
            tag: s.tag,
        };
        assert_eq!(open(&k, &aad, &shifted).err(), Some(OpenError));
    }

    #[test]
    fn debug_prints_no_key_bytes() {
        let k = SessionKey::from_bytes([0xaa; 32]);
        assert_eq!(format!("{k:?}"), "SessionKey(..)");
        assert_eq!(format!("{:?}", keys()), "SealKeys(..)");
    }
}
