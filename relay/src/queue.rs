//! A connection's outbound queue: pre-encoded frames waiting for its writer,
//! and the flow control built on it.
//!
//! One mutex-guarded `VecDeque` per connection instead of a tokio channel:
//! an idle connection's queue holds no heap memory beyond this struct (a
//! channel allocates a block of 32 slots up front), the writer takes a whole
//! batch under one lock, and a push is one uncontended lock, one
//! `push_back` and one notify.
//!
//! Three levels, in frames and in bytes:
//! - past the **high-water mark** (half the bounds) the queue is
//!   *congested*: whoever publishes into it waits ([`Outq::drained`]) until
//!   it is back to half that mark, so a fast publisher is slowed to the
//!   pace of its room's slowest reader (TCP pushes back on it meanwhile);
//!   and the connection's own task starts counting: a reader that stays
//!   congested for the slow-reader timeout is told and cut;
//! - the **bounds** themselves are never passed: a push over either is
//!   refused and the caller cuts the connection off (only frames already
//!   in flight when the publishers stopped can get there);
//! - a [`Budget`] counts what every queue of the relay holds: past its
//!   limit every publisher waits ([`Budget::below`]) until the writers
//!   have drained it, so memory is bounded by configuration, never by the
//!   traffic.
//!
//! Two lanes share those bounds: frames pushed with [`Outq::push`] (chat,
//! control) go to the writer before any pushed with [`Outq::push_bulk`]
//! (file chunks), so a line typed during a transfer overtakes the file;
//! each lane keeps its own order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

/// Spare capacity (in frames) kept by an empty queue after a burst: a
/// room's round of lines (no reallocation from one round to the next), not
/// a join storm's worth on every idle connection.
const KEEP_FRAMES: usize = 32;

/// Outcome of [`Outq::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// The frame waits for the writer.
    Queued,
    /// The frame waits for the writer, and the queue is past its
    /// high-water mark: the publisher should wait ([`Outq::drained`]).
    Congested,
    /// Over the frame or byte bound: nothing was queued.
    Full,
    /// The connection is ending: nothing was queued.
    Closed,
}

/// What every queue of the relay holds, in bytes, against one limit.
#[derive(Debug)]
pub struct Budget {
    queued: AtomicUsize,
    limit: usize,
    below: Notify,
}

impl Budget {
    /// A budget of `limit` bytes across all queues.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Budget {
            queued: AtomicUsize::new(0),
            limit: limit.max(1),
            below: Notify::new(),
        })
    }

    /// Bytes queued now, across all queues.
    pub fn queued(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether publishers must wait.
    pub fn over(&self) -> bool {
        self.queued() > self.limit
    }

    fn add(&self, n: usize) {
        self.queued.fetch_add(n, Relaxed);
    }

    fn sub(&self, n: usize) {
        let before = self.queued.fetch_sub(n, Relaxed);
        debug_assert!(before >= n, "the budget gave back more than it counted");
        // Waiters resume at seven eighths of the limit, not at the first
        // byte under it.
        let resume = self.limit - self.limit / 8;
        if before > resume && before.saturating_sub(n) <= resume {
            self.below.notify_waiters();
        }
    }

    /// Waits until the queues hold no more than seven eighths of the limit.
    pub async fn below(&self) {
        loop {
            let wake = self.below.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            if self.queued() <= self.limit - self.limit / 8 {
                return;
            }
            wake.await;
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    frames: VecDeque<Bytes>,
    /// The bulk lane: taken when `frames` is empty.
    bulk: VecDeque<Bytes>,
    /// Bytes queued or taken by the writer and not yet written.
    bytes: usize,
    closed: bool,
    /// Since when the queue has been past its high-water mark, if it is.
    congested_since: Option<Instant>,
}

impl Inner {
    /// Frames queued, both lanes.
    fn len(&self) -> usize {
        self.frames.len() + self.bulk.len()
    }
}

/// The queue. Shared (`Arc`) by the hub's member entry, the connection's
/// own control sender and its writer.
#[derive(Debug)]
pub struct Outq {
    inner: Mutex<Inner>,
    ready: Notify,
    max_frames: usize,
    max_bytes: usize,
    high_frames: usize,
    high_bytes: usize,
    budget: Arc<Budget>,
    /// Publishers waiting for the queue to drain.
    drained: Notify,
    /// The connection's own task, told when the queue becomes congested.
    congested: Notify,
    slow: AtomicBool,
    rejoin: AtomicBool,
}

impl Outq {
    /// An empty queue holding at most `max_frames` frames and `max_bytes`
    /// bytes (counting bytes taken by the writer until it reports them
    /// written), with a budget of its own.
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Outq::with_budget(max_frames, max_bytes, Budget::new(usize::MAX))
    }

    /// [`Outq::new`], counting against the relay's `budget`.
    pub fn with_budget(max_frames: usize, max_bytes: usize, budget: Arc<Budget>) -> Self {
        let max_frames = max_frames.max(1);
        Outq {
            inner: Mutex::default(),
            ready: Notify::new(),
            max_frames,
            max_bytes,
            // Half the bounds: measured against a quarter, the throughput
            // of small frames to ten readers was 30 % lower (more stalls
            // for the same traffic; docs/BENCHMARKS.md).
            high_frames: (max_frames / 2).max(1),
            high_bytes: max_bytes / 2,
            budget,
            drained: Notify::new(),
            congested: Notify::new(),
            slow: AtomicBool::new(false),
            rejoin: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn past_high(&self, q: &Inner) -> bool {
        q.len() > self.high_frames || q.bytes > self.high_bytes
    }

    /// Back to half the high-water mark: publishers may go on.
    fn drained_enough(&self, q: &Inner) -> bool {
        q.closed || (q.len() <= self.high_frames / 2 && q.bytes <= self.high_bytes / 2)
    }

    /// After the writer took or wrote: a congestion ends, and publishers
    /// go on, only at half the mark (a reader that writes a batch now and
    /// then just under the mark does not restart its clock).
    fn eased(&self, q: &mut Inner) {
        if self.drained_enough(q) {
            q.congested_since = None;
            self.drained.notify_waiters();
        }
    }

    /// Queues one frame for the writer.
    pub fn push(&self, frame: Bytes) -> Push {
        self.push_in(frame, false)
    }

    /// Queues one frame of bulk data: it goes after every frame of the
    /// other lane, queued now or later, and in order with the other bulk.
    pub fn push_bulk(&self, frame: Bytes) -> Push {
        self.push_in(frame, true)
    }

    /// Queues one frame without waking the writer: it goes out with the
    /// next frame queued normally, or at the next [`Outq::wake`]. For the
    /// relay's presence notices, gathered so that a storm of joins costs
    /// each reader one write per gathering rather than one per join.
    pub fn push_quiet(&self, frame: Bytes) -> Push {
        self.push_with(frame, false, false)
    }

    /// Wakes the writer for frames left by [`Outq::push_quiet`], if any
    /// still wait.
    pub fn wake(&self) {
        if self.lock().len() > 0 {
            self.ready.notify_one();
        }
    }

    fn push_in(&self, frame: Bytes, bulk: bool) -> Push {
        self.push_with(frame, bulk, true)
    }

    fn push_with(&self, frame: Bytes, bulk: bool, wake: bool) -> Push {
        let len = frame.len();
        let (newly_congested, wake) = {
            let mut q = self.lock();
            if q.closed {
                return Push::Closed;
            }
            if q.len() >= self.max_frames || q.bytes.saturating_add(len) > self.max_bytes {
                return Push::Full;
            }
            q.bytes += len;
            if bulk {
                q.bulk.push_back(frame);
            } else {
                q.frames.push_back(frame);
            }
            self.budget.add(len);
            // A quiet frame too wakes a queue past half its mark: quiet
            // frames alone never fill it (a queue of one or two frames
            // wakes at each).
            let wake = wake || self.past_half(&q);
            // Some(newly congested) while past the high-water mark.
            let congested = if self.past_high(&q) {
                let newly = q.congested_since.is_none();
                if newly {
                    q.congested_since = Some(Instant::now());
                }
                Some(newly)
            } else {
                None
            };
            (congested, wake)
        };
        // Leaves a permit if the writer is not waiting yet: no lost wake-up.
        if wake {
            self.ready.notify_one();
        }
        match newly_congested {
            Some(true) => {
                self.congested.notify_one();
                Push::Congested
            }
            Some(false) => Push::Congested,
            None => Push::Queued,
        }
    }

    /// Whether publishers into this queue should wait ([`Outq::drained`]).
    pub fn is_congested(&self) -> bool {
        self.lock().congested_since.is_some()
    }

    /// Since when the queue has been past its high-water mark, if it is.
    pub fn congested_since(&self) -> Option<Instant> {
        self.lock().congested_since
    }

    /// Waits until the queue has become congested (a permit is kept, so a
    /// congestion that began before the call is not missed).
    pub async fn congestion(&self) {
        self.congested.notified().await
    }

    /// Waits until the queue is back to half its high-water mark, or
    /// closed.
    pub async fn drained(&self) {
        loop {
            let wake = self.drained.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            if self.drained_enough(&self.lock()) {
                return;
            }
            wake.await;
        }
    }

    /// Whether the queue holds more than half its high-water mark: frames
    /// from other relays, which cannot be held back here, are asked to
    /// slow down from this point (`backplane::Message::Slow`).
    pub fn past_half_mark(&self) -> bool {
        self.past_half(&self.lock())
    }

    fn past_half(&self, q: &Inner) -> bool {
        q.len() > self.high_frames / 2 || q.bytes > self.high_bytes / 2
    }

    /// Waits until the queue is back to a quarter of its high-water mark,
    /// or closed.
    pub async fn drained_to_quarter(&self) {
        loop {
            let wake = self.drained.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            {
                let q = self.lock();
                if q.closed || (q.len() <= self.high_frames / 4 && q.bytes <= self.high_bytes / 4) {
                    return;
                }
            }
            wake.await;
        }
    }

    /// Waits for queued frames and appends them to `buf`, whole frames only,
    /// up to `limit` bytes (at least one frame, whatever its size). Returns
    /// false once the queue is closed and empty. Cancel-safe: frames leave
    /// the queue only in the same step that appends them.
    pub async fn take(&self, buf: &mut BytesMut, limit: usize) -> bool {
        loop {
            {
                let mut q = self.lock();
                if q.len() > 0 {
                    let q = &mut *q;
                    take_lane(&mut q.frames, buf, limit);
                    // Bulk only once the other lane is empty.
                    if q.frames.is_empty() {
                        take_lane(&mut q.bulk, buf, limit);
                    }
                    self.eased(q);
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
    /// Returns whether nothing more waits.
    pub fn written(&self, n: usize) -> bool {
        let mut q = self.lock();
        let n = n.min(q.bytes);
        q.bytes -= n;
        self.budget.sub(n);
        self.eased(&mut q);
        q.len() == 0
    }

    /// No more pushes; the writer drains what is queued, then `take`
    /// returns false. Publishers waiting for it go on.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
        self.drained.notify_waiters();
    }

    /// [`Outq::close`], and what is still queued is dropped (the
    /// connection is being cut: only its last words still go out).
    pub fn close_and_clear(&self) {
        {
            let mut q = self.lock();
            q.closed = true;
            let dropped: usize = q.frames.iter().chain(&q.bulk).map(Bytes::len).sum();
            q.frames = VecDeque::new();
            q.bulk = VecDeque::new();
            q.bytes -= dropped.min(q.bytes);
            self.budget.sub(dropped);
        }
        self.ready.notify_one();
        self.drained.notify_waiters();
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
        let f = q.frames.pop_front().or_else(|| q.bulk.pop_front())?;
        q.bytes -= f.len();
        self.budget.sub(f.len());
        self.eased(&mut q);
        Some(f)
    }
}

/// Moves whole frames from the front of `lane` to `buf` up to `limit`
/// bytes (at least one frame if `buf` is empty), and gives back a burst's
/// spare capacity.
fn take_lane(lane: &mut VecDeque<Bytes>, buf: &mut BytesMut, limit: usize) {
    // The batch first (its frames and size), then one allocation for it,
    // not a chain of them.
    let (mut frames, mut size) = (0, buf.len());
    for f in lane.iter() {
        if size > 0 && size + f.len() > limit {
            break;
        }
        frames += 1;
        size += f.len();
    }
    buf.reserve(size - buf.len());
    for f in lane.drain(..frames) {
        buf.extend_from_slice(&f);
    }
    if lane.is_empty() && lane.capacity() > KEEP_FRAMES {
        *lane = VecDeque::new();
    }
}

impl Drop for Outq {
    /// What was never written stops counting against the budget.
    fn drop(&mut self) {
        let q = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        self.budget.sub(q.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn the_bulk_lane_goes_after_every_other_frame_each_lane_in_order() {
        let q = Outq::new(100, 1000);
        q.push_bulk(Bytes::from_static(b"B1"));
        q.push(Bytes::from_static(b"c1"));
        q.push_bulk(Bytes::from_static(b"B2"));
        q.push(Bytes::from_static(b"c2"));
        let mut buf = BytesMut::new();
        assert!(q.take(&mut buf, 1000).await);
        assert_eq!(&buf[..], b"c1c2B1B2");
        // A batch cut short in the first lane takes nothing from the bulk.
        q.push_bulk(Bytes::from_static(b"B3"));
        q.push(Bytes::from_static(b"c3"));
        q.push(Bytes::from_static(b"c4"));
        buf.clear();
        assert!(q.take(&mut buf, 3).await);
        assert_eq!(&buf[..], b"c3");
        buf.clear();
        assert!(q.take(&mut buf, 4).await);
        assert_eq!(&buf[..], b"c4B3");
        // Both lanes count against the same bounds.
        let q = Outq::new(2, 1000);
        q.push_bulk(Bytes::from_static(b"x"));
        q.push(Bytes::from_static(b"y"));
        assert_eq!(q.push(Bytes::from_static(b"z")), Push::Full);
        assert_eq!(q.push_bulk(Bytes::from_static(b"z")), Push::Full);
    }

    #[test]
    fn bounds_in_frames_and_bytes() {
        let q = Outq::new(2, 10);
        let queued = |p| matches!(p, Push::Queued | Push::Congested);
        assert!(queued(q.push(Bytes::from_static(b"abcd"))));
        assert!(queued(q.push(Bytes::from_static(b"efgh"))));
        assert_eq!(q.push(Bytes::from_static(b"i")), Push::Full, "frames");
        assert_eq!(q.try_pop().as_deref(), Some(&b"abcd"[..]));
        assert_eq!(q.push(Bytes::from_static(b"ijklmnop")), Push::Full, "bytes");
        assert!(queued(q.push(Bytes::from_static(b"ijklmn"))));
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
        assert_eq!(q.push(Bytes::from(vec![0u8; 989])), Push::Congested);
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

    /// A writer waiting on `q` for its first batch.
    fn first_batch(q: &Arc<Outq>) -> tokio::task::JoinHandle<BytesMut> {
        let q = Arc::clone(q);
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            assert!(q.take(&mut buf, 1000).await);
            buf
        })
    }

    /// The writer's batch, failing fast if it is never woken.
    async fn woken(w: tokio::task::JoinHandle<BytesMut>) -> BytesMut {
        tokio::time::timeout(Duration::from_secs(1), w)
            .await
            .expect("woken")
            .expect("no panic")
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_frame_waits_for_a_wake_unless_the_queue_is_past_half_its_mark() {
        // High-water mark: 4 frames, half of it 2.
        let q = Arc::new(Outq::new(8, 1000));
        let w = first_batch(&q);
        tokio::task::yield_now().await;
        assert_eq!(q.push_quiet(Bytes::from_static(b"a")), Push::Queued);
        assert_eq!(q.push_quiet(Bytes::from_static(b"b")), Push::Queued);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!w.is_finished(), "a quiet frame woke the writer");
        q.wake();
        assert_eq!(woken(w).await, &b"ab"[..]);

        // Past half the mark, a quiet frame wakes the writer like any
        // other: the queue is never left to fill.
        let w = first_batch(&q);
        tokio::task::yield_now().await;
        for f in [b"c", b"d"] {
            assert_eq!(q.push_quiet(Bytes::from_static(f)), Push::Queued);
        }
        tokio::task::yield_now().await;
        assert!(!w.is_finished(), "woken at half the mark, not past it");
        assert_eq!(q.push_quiet(Bytes::from_static(b"e")), Push::Queued);
        assert_eq!(woken(w).await, &b"cde"[..]);

        // A queue of one frame wakes at each: a second notice could not wait.
        let q = Arc::new(Outq::new(1, 1000));
        let w = first_batch(&q);
        tokio::task::yield_now().await;
        q.push_quiet(Bytes::from_static(b"f"));
        assert_eq!(woken(w).await, &b"f"[..]);
    }

    #[tokio::test]
    async fn past_the_high_water_mark_publishers_wait_until_half_of_it() {
        // Bounds of 20 frames: the high-water mark is 10, publishers go
        // on at 5.
        let q = Arc::new(Outq::new(20, 1 << 20));
        for _ in 0..10 {
            assert_eq!(q.push(Bytes::from_static(b"x")), Push::Queued);
        }
        assert!(!q.is_congested());
        assert_eq!(q.push(Bytes::from_static(b"x")), Push::Congested);
        let since = q.congested_since().expect("congested");
        assert_eq!(q.push(Bytes::from_static(b"x")), Push::Congested);
        assert_eq!(
            q.congested_since(),
            Some(since),
            "the first crossing counts"
        );
        // Its own task hears of it once, even if it was not listening yet.
        tokio::time::timeout(Duration::from_secs(1), q.congestion())
            .await
            .expect("told of the congestion");
        let waiter = {
            let q = Arc::clone(&q);
            tokio::spawn(async move { q.drained().await })
        };
        // Down to 7 queued: under the mark, but not drained enough: still
        // congested (its clock goes on).
        for _ in 0..5 {
            q.try_pop();
        }
        assert_eq!(q.congested_since(), Some(since));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "7 frames queued: still waiting");
        q.try_pop();
        q.try_pop();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("5 frames: the publisher goes on")
            .expect("no panic");
        assert!(!q.is_congested(), "drained: the congestion is over");
        // A closed queue never keeps a publisher waiting.
        for _ in 0..12 {
            q.push(Bytes::from_static(b"x"));
        }
        q.close();
        tokio::time::timeout(Duration::from_secs(1), q.drained())
            .await
            .expect("closed: no wait");
    }

    #[tokio::test]
    async fn the_budget_counts_every_queue_and_lets_publishers_on_below_it() {
        let budget = Budget::new(100);
        let a = Outq::with_budget(100, 1000, Arc::clone(&budget));
        let b = Outq::with_budget(100, 1000, Arc::clone(&budget));
        a.push(Bytes::from(vec![0u8; 60]));
        assert!(!budget.over());
        b.push(Bytes::from(vec![0u8; 60]));
        assert_eq!(budget.queued(), 120);
        assert!(
            budget.over(),
            "the queues do not pass each bound, but the total"
        );
        let mut buf = BytesMut::new();
        assert!(a.take(&mut buf, 1000).await);
        // Taken is not written: it still counts.
        assert!(budget.over());
        // A publisher waiting now is woken by the write.
        let waiter = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move { budget.below().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "over the budget: it waits");
        a.written(60);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("60 of 100 queued: the waiting publisher goes on")
            .expect("no panic");
        // What a cut connection never wrote, and a dropped queue, stop
        // counting.
        b.close_and_clear();
        assert_eq!(budget.queued(), 0);
        let c = Outq::with_budget(100, 1000, Arc::clone(&budget));
        c.push(Bytes::from(vec![0u8; 30]));
        drop(c);
        assert_eq!(budget.queued(), 0);
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
