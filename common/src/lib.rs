//! TeamChat core library.
//!
//! Modules by concern:
//! - [`ids`]: the small identifiers every layer shares (room ids, key fingerprints).
//! - [`wire`]: what bytes mean — frames between clients and the relay, and the
//!   end-to-end envelopes carried inside them. Pure encoding, no secrets.
//! - [`invite`]: the pasteable string that tells a member where a room is and
//!   whom to trust.
//! - `crypto` (feature `crypto`): how bytes are protected — sealing, RSA wraps
//!   and signatures, X25519 agreement, fingerprints and safety codes.
//! - `identity` (feature `crypto`): who you are, on disk — PKCS#8 key files.
//! - `engine` (feature `crypto`): what the protocol does next — the sans-IO
//!   client state machine for admin and member.
//!
//! The relay depends on this crate with `default-features = false`: it gets
//! `wire`, `ids` and `invite` and does not link any code that could decrypt.

pub mod ids;
pub mod invite;
pub mod wire;

#[cfg(feature = "driver")]
pub mod admin_state;
#[cfg(feature = "crypto")]
pub mod crypto;
#[cfg(feature = "driver")]
pub mod driver;
#[cfg(feature = "crypto")]
pub mod engine;
#[cfg(feature = "driver")]
pub mod files;
#[cfg(feature = "test-support")]
pub mod fuzzing;
#[cfg(feature = "driver")]
pub mod history;
#[cfg(feature = "crypto")]
pub mod identity;
#[cfg(feature = "driver")]
pub mod terminal;
#[cfg(feature = "test-support")]
pub mod test_keys;

pub use ids::{Fingerprint, RoomId};
