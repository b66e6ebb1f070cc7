//! How bytes are protected.
//!
//! - [`seal`]: AES-256-CBC + HMAC-SHA256, encrypt-then-MAC, with keys derived
//!   by HKDF-SHA256 from an epoch's [`SessionKey`] or an X25519 agreement.
//! - [`keys`]: RSA-3072 identity keys: SPKI, fingerprint, safety code,
//!   OAEP-SHA256 key wraps and PSS-SHA256 signatures.
//! - [`dh`]: X25519 agreements for join requests and private messages.
//!
//! This module never logs, never prints key bytes in `Debug`, and reports
//! every authentication failure as one opaque error.

pub mod dh;
pub mod keys;
pub mod seal;

pub use dh::{DhPublic, DhSecret};
pub use keys::{KeyError, PrivateKey, PublicKey, SafetyCode, MAX_RSA_BITS, MIN_RSA_BITS};
pub use seal::{open, seal, OpenError, SealKeys, SessionKey};

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
