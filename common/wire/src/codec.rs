//! Frame encoding and decoding: pure functions on byte slices, and a tokio
//! codec for any `AsyncRead`/`AsyncWrite`. The only place bincode is named.

use std::io;
use std::marker::PhantomData;

use bincode::Options;
use bytes::{Buf, BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::codec::{Decoder, Encoder};

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;
/// Default maximum frame body: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;
/// Smallest configurable maximum (a hello and an error must always fit).
pub const MIN_MAX_FRAME: usize = 1024;
/// Most bytes the codec reserves ahead of data that has not arrived.
const RESERVE_STEP: usize = 64 * 1024;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// More bytes are needed; `needed` is a lower bound on the total.
    #[error("incomplete frame: {needed} bytes needed in all")]
    Incomplete {
        /// Total bytes (prefix included) needed to make progress.
        needed: usize,
    },
    /// The length prefix (or an encoded value) exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced or encoded length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The body is not a valid encoding of the expected type.
    #[error("malformed frame: {0}")]
    Invalid(String),
    /// The underlying stream failed.
    #[error("stream error: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// True for errors after which the stream cannot be resynchronised.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FrameError::Incomplete { .. })
    }
}

fn options(limit: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(limit as u64)
        .reject_trailing_bytes()
}

/// The exact number of bytes `value` encodes to (without the prefix).
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, FrameError> {
    options(usize::MAX)
        .serialized_size(value)
        .map(|n| n as usize)
        .map_err(|e| FrameError::Invalid(e.to_string()))
}

/// Encodes `value` as a bare payload (no length prefix), refusing more than
/// `max` bytes. Used for envelopes carried inside relay frames.
pub fn encode_payload<T: Serialize + ?Sized>(value: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    options(max)
        .serialize(value)
        .map_err(|e| map_encode_error(*e, max, value))
}

/// Decodes a bare payload of exactly `bytes.len()` bytes, at most `max`.
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, FrameError> {
    if bytes.len() > max {
        return Err(FrameError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    options(max)
        .deserialize(bytes)
        .map_err(|e| FrameError::Invalid(e.to_string()))
}

fn map_encode_error<T: Serialize + ?Sized>(
    e: bincode::ErrorKind,
    max: usize,
    value: &T,
) -> FrameError {
    match e {
        bincode::ErrorKind::SizeLimit => FrameError::TooLarge {
            len: encoded_len(value).unwrap_or(usize::MAX),
            max,
        },
        other => FrameError::Invalid(other.to_string()),
    }
}

/// Appends `u32be(len) ‖ body` to `out`; refuses a body over `max` bytes and
/// then leaves `out` as it was.
pub fn encode_frame<T: Serialize + ?Sized>(
    value: &T,
    max: usize,
    out: &mut BytesMut,
) -> Result<(), FrameError> {
    let start = out.len();
    out.put_u32(0);
    let result = options(max).serialize_into((&mut *out).writer(), value);
    if let Err(e) = result {
        out.truncate(start);
        return Err(map_encode_error(*e, max, value));
    }
    let len = out.len() - start - LEN_PREFIX;
    // `max` never exceeds u32::MAX in practice; be exact anyway.
    let Ok(len32) = u32::try_from(len) else {
        out.truncate(start);
        return Err(FrameError::TooLarge { len, max });
    };
    out[start..start + LEN_PREFIX].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// Decodes one frame from the front of `buf`. Returns the value and the
/// number of bytes it used, [`FrameError::Incomplete`] if `buf` holds only a
/// prefix of a valid-length frame, or [`FrameError::TooLarge`] as soon as the
/// length prefix exceeds `max` — before any of the body is looked at.
pub fn decode_frame<T: DeserializeOwned>(buf: &[u8], max: usize) -> Result<(T, usize), FrameError> {
    let len = frame_len(buf, max)?;
    let total = LEN_PREFIX + len;
    if buf.len() < total {
        return Err(FrameError::Incomplete { needed: total });
    }
    let value = decode_payload(&buf[LEN_PREFIX..total], max)?;
    Ok((value, total))
}

/// Reads and checks the length prefix at the front of `buf`.
fn frame_len(buf: &[u8], max: usize) -> Result<usize, FrameError> {
    let Some(prefix) = buf.get(..LEN_PREFIX) else {
        return Err(FrameError::Incomplete { needed: LEN_PREFIX });
    };
    let mut p = [0u8; LEN_PREFIX];
    p.copy_from_slice(prefix);
    let len = u32::from_be_bytes(p) as usize;
    // Keep LEN_PREFIX + len representable even where usize is 32 bits.
    let max = max.min(u32::MAX as usize - LEN_PREFIX);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if len == 0 {
        return Err(FrameError::Invalid("empty frame".into()));
    }
    Ok(len)
}

/// Reads the protocol version from a hello frame body without decoding the
/// rest, so that a relay can answer "unsupported version" to a client whose
/// hello it cannot otherwise parse. Layout fixed forever: `u32le(0)` (the
/// `Hello` variant) then `u16le(version)`.
pub fn peek_hello_version(body: &[u8]) -> Option<u16> {
    match body {
        [0, 0, 0, 0, lo, hi, ..] => Some(u16::from_le_bytes([*lo, *hi])),
        _ => None,
    }
}

/// A tokio codec: decodes `In` frames, encodes any `Serialize` value, with a
/// maximum frame size checked before the body is buffered.
#[derive(Debug)]
pub struct FrameCodec<In> {
    max: usize,
    _in: PhantomData<fn() -> In>,
}

impl<In> FrameCodec<In> {
    /// A codec with the given maximum body size (clamped to at least
    /// [`MIN_MAX_FRAME`] and at most `u32::MAX`).
    pub fn new(max: usize) -> Self {
        FrameCodec {
            max: max.clamp(MIN_MAX_FRAME, u32::MAX as usize - LEN_PREFIX),
            _in: PhantomData,
        }
    }

    /// The maximum body size in force.
    pub fn max_frame(&self) -> usize {
        self.max
    }
}

impl<In> Default for FrameCodec<In> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl<In: DeserializeOwned> Decoder for FrameCodec<In> {
    type Item = In;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, FrameError> {
        let len = match frame_len(src, self.max) {
            Ok(len) => len,
            Err(FrameError::Incomplete { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let total = LEN_PREFIX + len;
        if src.len() < total {
            // Reserve in steps as data arrives: a bare length prefix must not
            // make every connection hold a maximum-size buffer.
            src.reserve((total - src.len()).min(RESERVE_STEP));
            return Ok(None);
        }
        let value = decode_payload(&src[LEN_PREFIX..total], self.max);
        src.advance(total);
        value.map(Some)
    }
}

impl<In, Out: Serialize> Encoder<Out> for FrameCodec<In> {
    type Error = FrameError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_frame(&item, self.max, dst)
    }
}
