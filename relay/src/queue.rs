//! A connection's outbound queue: pre-encoded frames waiting for its writer.
//!
//! One mutex-guarded `VecDeque` per connection instead of a tokio channel:
//! an idle connection's queue holds no heap memory beyond this struct (a
//! channel allocates a block of 32 slots up front), the writer takes a whole
//! batch under one lock, and a push is one uncontended lock, one
//! `push_back` and one notify. The queue is bounded in frames and in bytes;
//! a push over either bound is refused and the caller cuts the connection
//! off (a slow reader), so memory never grows without bound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

/// Spare capacity (in frames) kept by an empty queue after a burst.
const KEEP_FRAMES: usize = 64;

/// Outcome of [`Outq::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// The frame waits for the writer.
    Queued,
    /// Over the frame or byte bound: nothing was queued.
    Full,
    /// The connection is ending: nothing was queued.
    Closed,
}

#[derive(Debug, Default)]
struct Inner {
    frames: VecDeque<Bytes>,
    /// Bytes queued or taken by the writer and not yet written.
    bytes: usize,
    closed: bool,
}

/// The queue. Shared (`Arc`) by the hub's member entry, the connection's
/// own control sender and its writer.
#[derive(Debug)]
pub struct Outq {
    inner: Mutex<Inner>,
    ready: Notify,
    max_frames: usize,
    max_bytes: usize,
    slow: AtomicBool,
    rejoin: AtomicBool,
}

impl Outq {
    /// An empty queue holding at most `max_frames` frames and `max_bytes`
    /// bytes (counting bytes taken by the writer until it reports them
    /// written).
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Outq {
            inner: Mutex::default(),
            ready: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes,
            slow: AtomicBool::new(false),
            rejoin: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one frame for the writer.
    pub fn push(&self, frame: Bytes) -> Push {
        let len = frame.len();
        {
            let mut q = self.lock();
            if q.closed {
                return Push::Closed;
            }
            if q.frames.len() >= self.max_frames || q.bytes.saturating_add(len) > self.max_bytes {
                return Push::Full;
            }
            q.bytes += len;
            q.frames.push_back(frame);
        }
        // Leaves a permit if the writer is not waiting yet: no lost wake-up.
        self.ready.notify_one();
        Push::Queued
    }

    /// Waits for queued frames and appends them to `buf`, whole frames only,
    /// up to `limit` bytes (at least one frame, whatever its size). Returns
    /// false once the queue is closed and empty. Cancel-safe: frames leave
    /// the queue only in the same step that appends them.
    pub async fn take(&self, buf: &mut BytesMut, limit: usize) -> bool {
        loop {
            {
                let mut q = self.lock();
                if !q.frames.is_empty() {
                    while let Some(f) = q.frames.front() {
                        if !buf.is_empty() && buf.len() + f.len() > limit {
                            break;
                        }
                        buf.extend_from_slice(f);
                        q.frames.pop_front();
                    }
                    if q.frames.is_empty() && q.frames.capacity() > KEEP_FRAMES {
                        q.frames = VecDeque::new();
                    }
                    return true;
                }
                if q.closed {
                    return false;
                }
            }
            self.ready.notified().await;
        }
    }

    /// The writer wrote `n` bytes it had taken: they stop counting.
    pub fn written(&self, n: usize) {
        let mut q = self.lock();
        q.bytes = q.bytes.saturating_sub(n);
    }

    /// No more pushes; the writer drains what is queued, then `take`
    /// returns false.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Marks the connection as cut off for falling behind.
    pub fn mark_slow(&self) {
        self.slow.store(true, Relaxed);
    }

    /// Whether [`Outq::mark_slow`] was called.
    pub fn is_slow(&self) -> bool {
        self.slow.load(Relaxed)
    }

    /// Marks the connection as cut off because frames between it and
    /// other relays may have been lost: the client must rejoin.
    pub fn mark_rejoin(&self) {
        self.rejoin.store(true, Relaxed);
    }

    /// Whether [`Outq::mark_rejoin`] was called.
    pub fn must_rejoin(&self) -> bool {
        self.rejoin.load(Relaxed)
    }

    /// Takes the oldest queued frame without waiting (tests and fuzzing).
    #[cfg(any(test, feature = "test-support"))]
    pub fn try_pop(&self) -> Option<Bytes> {
        let mut q = self.lock();
        let f = q.frames.pop_front()?;
        q.bytes -= f.len();
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn bounds_in_frames_and_bytes() {
        let q = Outq::new(2, 10);
        assert_eq!(q.push(Bytes::from_static(b"abcd")), Push::Queued);
        assert_eq!(q.push(Bytes::from_static(b"efgh")), Push::Queued);
        assert_eq!(q.push(Bytes::from_static(b"i")), Push::Full, "frames");
        assert_eq!(q.try_pop().as_deref(), Some(&b"abcd"[..]));
        assert_eq!(q.push(Bytes::from_static(b"ijklmnop")), Push::Full, "bytes");
        assert_eq!(q.push(Bytes::from_static(b"ijklmn")), Push::Queued);
        q.close();
        assert_eq!(q.push(Bytes::from_static(b"x")), Push::Closed);
    }

    #[tokio::test]
    async fn take_batches_whole_frames_and_counts_until_written() {
        let q = Outq::new(100, 1000);
        for f in [&b"aaaa"[..], b"bbbb", b"cccc"] {
            q.push(Bytes::copy_from_slice(f));
        }
        let mut buf = BytesMut::new();
        assert!(q.take(&mut buf, 9).await);
        assert_eq!(
            &buf[..],
            b"aaaabbbb",
            "a frame that would pass the limit waits"
        );
        // Taken but unwritten bytes still count against the byte bound.
        assert_eq!(q.push(Bytes::from(vec![0u8; 989])), Push::Full);
        q.written(8);
        assert_eq!(q.push(Bytes::from(vec![0u8; 989])), Push::Queued);
        buf.clear();
        assert!(q.take(&mut buf, 1).await);
        assert_eq!(&buf[..], b"cccc", "one frame even over the limit");
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_on_push_and_ends_after_close() {
        let q = Arc::new(Outq::new(10, 1000));
        let w = {
            let q = Arc::clone(&q);
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = BytesMut::new();
                while q.take(&mut buf, 1000).await {
                    got.extend_from_slice(&buf);
                    buf.clear();
                }
                got
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.push(Bytes::from_static(b"one"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.push(Bytes::from_static(b"two"));
        q.close();
        let got = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("writer ended")
            .expect("no panic");
        assert_eq!(got, b"onetwo");
    }

    #[test]
    fn an_emptied_queue_gives_back_a_burst() {
        let q = Outq::new(10_000, usize::MAX);
        for _ in 0..1000 {
            q.push(Bytes::from_static(b"x"));
        }
        let mut buf = BytesMut::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(q.take(&mut buf, usize::MAX)));
        assert_eq!(buf.len(), 1000);
        assert_eq!(q.lock().frames.capacity(), 0);
    }
}
