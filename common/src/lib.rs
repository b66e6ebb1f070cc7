//! TeamChat's core: what a client knows and does, without any I/O.
//!
//! Modules by concern:
//! - [`wire`] and [`ids`] (re-exported from the `wire` crate): what bytes
//!   mean. The relay links that crate alone, never this one.
//! - [`crypto`]: how bytes are protected — sealing, RSA wraps and
//!   signatures, X25519 agreement, fingerprints and safety codes.
//! - [`identity`]: who you are, on disk — PKCS#8 key files.
//! - [`invite`]: the pasteable string that tells a member where a room is and
//!   whom to trust.
//! - [`engine`]: what the protocol does next — the sans-IO client state
//!   machine for admin and member.
//!
//! The client runtime (network driver, downloads, history, terminal) is the
//! `client` crate, built on this one; docs/ARCHITECTURE.md has the map.

pub use wire::{self, ids};

pub mod crypto;
pub mod engine;
#[cfg(feature = "test-support")]
pub mod fuzzing;
pub mod identity;
pub mod invite;
#[cfg(feature = "test-support")]
pub mod test_keys;

pub use ids::{Fingerprint, RoomId};
