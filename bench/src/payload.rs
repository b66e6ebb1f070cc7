//! What a benchmark message carries and how publish frames are made fast.
//!
//! Payload layout: `u64be(sequence) ‖ u64be(send time, ns) ‖ zero padding`.
//! The send time is on one process-wide monotonic clock ([`now_ns`]), so a
//! subscriber in the same process reads one-way latency directly.
//!
//! A [`PublishTemplate`] encodes one `ClientFrame::Publish` with the real
//! codec once; each message is a copy of it with 16 bytes patched in place.

use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use wire::{encode_frame, ClientFrame, LEN_PREFIX};

/// Bytes of sequence number and timestamp at the front of every payload.
pub const HEADER: usize = 16;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process-wide epoch (the first call).
pub fn now_ns() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Reads `(sequence, send time ns)` from a payload; `None` if it is too short.
pub fn parse(payload: &[u8]) -> Option<(u64, u64)> {
    let seq = payload.get(..8)?;
    let ts = payload.get(8..HEADER)?;
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(seq);
    b.copy_from_slice(ts);
    Some((u64::from_be_bytes(a), u64::from_be_bytes(b)))
}

/// One encoded publish frame (length prefix included) to stamp copies of.
#[derive(Debug, Clone)]
pub struct PublishTemplate {
    frame: Vec<u8>,
    payload_at: usize,
}

impl PublishTemplate {
    /// A template for `size`-byte payloads (at least [`HEADER`]) broadcast to
    /// the room, refused if its body would exceed `max_frame`.
    pub fn new(size: usize, max_frame: usize) -> Result<Self> {
        if size < HEADER {
            bail!("payload size {size} is below the {HEADER}-byte header (sequence + timestamp)");
        }
        let frame = ClientFrame::Publish {
            to: None,
            payload: Bytes::from(vec![0u8; size]),
        };
        let mut out = BytesMut::new();
        encode_frame(&frame, max_frame, &mut out).with_context(|| {
            format!("a {size}-byte payload does not fit the relay's {max_frame}-byte frame limit")
        })?;
        // The payload is the last field of `Publish`: it ends the frame.
        let payload_at = out.len() - size;
        debug_assert!(payload_at > LEN_PREFIX);
        Ok(PublishTemplate {
            frame: out.to_vec(),
            payload_at,
        })
    }

    /// Bytes per frame on the wire (before TLS).
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// Appends one frame carrying `seq` and `ts_ns` to `out`.
    pub fn append(&self, seq: u64, ts_ns: u64, out: &mut BytesMut) {
        let start = out.len();
        out.extend_from_slice(&self.frame);
        let at = start + self.payload_at;
        out[at..at + 8].copy_from_slice(&seq.to_be_bytes());
        out[at + 8..at + HEADER].copy_from_slice(&ts_ns.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{decode_frame, DEFAULT_MAX_FRAME};

    #[test]
    fn stamped_frames_decode_to_the_expected_publish() {
        for size in [HEADER, 256, 4096] {
            let t = PublishTemplate::new(size, DEFAULT_MAX_FRAME).unwrap();
            let mut out = BytesMut::new();
            t.append(5, 1234, &mut out);
            t.append(6, 99, &mut out);
            assert_eq!(out.len(), 2 * t.frame_len());
            let (first, used) = decode_frame::<ClientFrame>(&out, DEFAULT_MAX_FRAME).unwrap();
            let (second, _) = decode_frame::<ClientFrame>(&out[used..], DEFAULT_MAX_FRAME).unwrap();
            for (frame, seq, ts) in [(first, 5, 1234), (second, 6, 99)] {
                let ClientFrame::Publish { to, payload } = frame else {
                    panic!("not a publish");
                };
                assert_eq!(to, None);
                assert_eq!(payload.len(), size);
                assert_eq!(parse(&payload), Some((seq, ts)));
                assert!(payload[HEADER..].iter().all(|&b| b == 0));
            }
        }
    }

    #[test]
    fn too_small_or_too_large_payloads_are_refused() {
        assert!(PublishTemplate::new(HEADER - 1, DEFAULT_MAX_FRAME).is_err());
        assert!(PublishTemplate::new(2048, 1024).is_err());
    }

    #[test]
    fn short_payload_does_not_parse() {
        assert_eq!(parse(&[0u8; 15]), None);
    }

    #[test]
    fn clock_is_monotonic() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
    }
}
