//! What bytes mean: the frame codec, the relay-level frames and the
//! end-to-end envelopes carried inside them.
//!
//! A frame on the TLS stream is a `u32` big-endian length followed by that
//! many bytes of bincode 1.3.3 (fixed-width little-endian integers, `u64`
//! lengths). Decoding always runs with a byte limit and rejects trailing
//! bytes; a length prefix above the limit is refused before the body is read.
//!
//! bincode 1.x is frozen (RUSTSEC-2025-0141): every use of it is in this file,
//! so it can be swapped for another encoding without touching callers.
//!
//! This module holds no secrets and performs no cryptography.

pub mod bounded;
mod codec;
pub mod envelope;
pub mod relay;

pub use codec::{
    decode_frame, decode_payload, encode_frame, encode_payload, encoded_len, peek_hello_version,
    FrameCodec, FrameError, DEFAULT_MAX_FRAME, LEN_PREFIX, MIN_MAX_FRAME,
};
pub use envelope::*;
pub use relay::*;

/// The protocol version a client announces in its hello. Bumped on any
/// incompatible change to these types.
pub const PROTOCOL_VERSION: u16 = 1;
