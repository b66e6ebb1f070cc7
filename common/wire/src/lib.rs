//! What bytes mean: the ids every layer shares, the frame codec, the
//! relay-level frames and the end-to-end envelopes carried inside them.
//!
//! This crate is the relay's whole view of TeamChat. It holds no secrets
//! and links no cryptography (no cipher, MAC, hash, signature or key
//! exchange crate is among its dependencies): a relay built on it cannot
//! read what it carries, and CI checks that on the relay's binary
//! (docs/ARCHITECTURE.md, "The walls"). The clients reach it as
//! `common::wire` and `common::ids`.
//!
//! A frame on the TLS stream is a `u32` big-endian length followed by that
//! many bytes of bincode 1.3.3 (fixed-width little-endian integers, `u64`
//! lengths). Decoding always runs with a byte limit and rejects trailing
//! bytes; a length prefix above the limit is refused before the body is read.
//!
//! bincode 1.x is frozen (RUSTSEC-2025-0141): every use of it is in
//! `codec.rs`, so it can be swapped for another encoding without touching
//! callers.

pub mod bounded;
mod codec;
pub mod envelope;
pub mod ids;
pub mod relay;

pub use codec::{
    decode_frame, decode_payload, encode_frame, encode_payload, encoded_len, peek_hello_version,
    FrameCodec, FrameError, DEFAULT_MAX_FRAME, LEN_PREFIX, MIN_MAX_FRAME,
};
pub use envelope::*;
pub use relay::*;

pub use ids::{Fingerprint, IdParseError, RoomId};

/// The protocol version a client announces in its hello. Bumped on any
/// incompatible change to these types. Version 2 adds the relay's
/// [`RelayFrame::Ack`] and the [`Content::Resent`] line.
pub const PROTOCOL_VERSION: u16 = 2;

/// The oldest version a relay still speaks: a version-1 client gets every
/// frame but [`RelayFrame::Ack`] (a generic client that needs no
/// acknowledgements, e.g. the benchmarks' own).
pub const MIN_PROTOCOL_VERSION: u16 = 1;
