//! Frames on their way to the relay, written by a task of their own so a
//! session never waits on the socket: its reads, requests and timers go on
//! while the relay holds us back (its flow control stops reading from a
//! publisher whose room is behind, and two members both writing must not
//! wait on each other).
//!
//! Two lanes, as in the relay's queues: chat and control frames go first;
//! bulk frames (file chunks, [`ClientFrame::PublishBulk`]) only when no
//! other frame waits, and at most [`BULK_FRAMES`] of them are queued, so a
//! file goes as fast as the relay takes it and a line typed during the
//! transfer waits behind one chunk at most (and what the kernel holds, kept
//! small with `TCP_NOTSENT_LOWAT`).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use common::wire::{ClientFrame, FrameCodec, RelayFrame};
use futures_util::SinkExt;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;
use tokio_util::task::AbortOnDropHandle;

/// File chunks queued for the writer at most (4 × 64 KiB).
pub(crate) const BULK_FRAMES: usize = 4;
/// Bytes of chat and control frames the writer may hold back before the
/// connection counts as dead: the relay has taken nothing for that long.
const MAX_URGENT: usize = 8 << 20;
/// Time given to the last frames (a leave) when a session ends.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// The session's end of the writer.
pub(crate) struct Outgoing {
    urgent: mpsc::UnboundedSender<ClientFrame>,
    bulk: mpsc::Sender<ClientFrame>,
    /// Bytes in `urgent` not yet handed to the socket.
    queued: Arc<AtomicUsize>,
    /// Flushes of file chunks completed. During an upload the kernel's
    /// send buffer is soon full, and then only the relay's reading (its
    /// acknowledgements) makes room: a count that moves while the relay
    /// takes what we send. (Small frames do not count: a kernel takes a
    /// ping or a line whether or not the link is alive.)
    flushed: Arc<AtomicUsize>,
}

/// The writer task (stopped when dropped).
pub(crate) struct Writer(AbortOnDropHandle<Result<(), String>>);

impl Writer {
    /// Waits for the writer to stop (a write failed); why.
    pub(crate) async fn finished(&mut self) -> String {
        match (&mut self.0).await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => gone(),
            Err(e) => format!("the writer to the relay failed: {e}"),
        }
    }
}

impl Outgoing {
    /// Starts the writer on `tx`.
    /// Starts the writer on `tx`; it pings the relay every `ping_every`.
    pub(crate) fn start<W>(
        tx: FramedWrite<W, FrameCodec<RelayFrame>>,
        ping_every: Duration,
    ) -> (Self, Writer)
    where
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let (urgent, urgent_rx) = mpsc::unbounded_channel();
        let (bulk, bulk_rx) = mpsc::channel(BULK_FRAMES);
        let queued = Arc::new(AtomicUsize::new(0));
        let flushed = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(write(
            tx,
            urgent_rx,
            bulk_rx,
            Arc::clone(&queued),
            Arc::clone(&flushed),
            ping_every,
        ));
        (
            Outgoing {
                urgent,
                bulk,
                queued,
                flushed,
            },
            Writer(AbortOnDropHandle::new(task)),
        )
    }

    /// Queues `frame`: a `PublishBulk` in the bulk lane (waiting for room
    /// there only if the caller did not check [`Outgoing::bulk_room`]),
    /// every other frame at once. An error if the writer has stopped or
    /// the relay has long taken nothing.
    pub(crate) async fn send(&self, frame: ClientFrame) -> Result<(), String> {
        if matches!(frame, ClientFrame::PublishBulk { .. }) {
            return match self.bulk.try_send(frame) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(frame)) => {
                    self.bulk.send(frame).await.map_err(|_| gone())
                }
                Err(mpsc::error::TrySendError::Closed(_)) => Err(gone()),
            };
        }
        let len = frame.published().map_or(16, |(_, p)| p.len() + 32);
        if self.queued.fetch_add(len, Relaxed) + len > MAX_URGENT {
            return Err(format!(
                "the relay has not taken our last {} MiB: the connection counts as lost",
                MAX_URGENT >> 20
            ));
        }
        self.urgent.send(frame).map_err(|_| gone())
    }

    /// Waits until the bulk lane has room for a chunk.
    pub(crate) async fn bulk_room(&self) {
        if let Ok(permit) = self.bulk.reserve().await {
            drop(permit);
        } else {
            // The writer stopped: its end is reported by `Writer::finished`.
            std::future::pending::<()>().await;
        }
    }

    /// How many flushes of file chunks the writer has completed: a count
    /// that moves while the relay takes what we upload.
    pub(crate) fn flushed(&self) -> usize {
        self.flushed.load(Relaxed)
    }

    /// How many chunks the bulk lane has room for now.
    pub(crate) fn bulk_room_now(&self) -> usize {
        self.bulk.capacity()
    }

    /// Ends the connection: what is queued goes out (for a short while at
    /// most), then the TLS session is closed.
    pub(crate) async fn close(self, writer: Writer) {
        drop(self);
        let _ = tokio::time::timeout(LAST_WORDS, writer.0).await;
    }
}

fn gone() -> String {
    "cannot write to the relay: the connection is closed".into()
}

/// The writer: urgent frames first, then bulk, flushed whenever nothing
/// more is ready; closes the stream once the session has let go.
async fn write<W>(
    mut tx: FramedWrite<W, FrameCodec<RelayFrame>>,
    mut urgent: mpsc::UnboundedReceiver<ClientFrame>,
    mut bulk: mpsc::Receiver<ClientFrame>,
    queued: Arc<AtomicUsize>,
    flushed: Arc<AtomicUsize>,
    ping_every: Duration,
) -> Result<(), String>
where
    W: AsyncWrite + Unpin,
{
    let failed = |e: common::wire::FrameError| format!("cannot write to the relay: {e}");
    let mut bulk_open = true;
    // Our pace towards the relay (`wire::KEEPALIVE_SECS`), kept by this
    // task alone: whatever the session loop is doing, a ping goes out.
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pings = 0u64;
    loop {
        let frame = tokio::select! {
            biased;
            f = urgent.recv() => f,
            _ = ping.tick() => {
                pings += 1;
                // Counted as a queued control frame is (taken off below).
                queued.fetch_add(16, Relaxed);
                Some(ClientFrame::Ping(pings))
            }
            f = bulk.recv(), if bulk_open => match f {
                Some(f) => Some(f),
                None => {
                    bulk_open = false;
                    continue;
                }
            },
        };
        let Some(mut frame) = frame else {
            // The session let go: what it queued is out; close.
            break;
        };
        // Everything ready now, urgent first each time, then one flush.
        let mut bulk_in_batch = false;
        loop {
            bulk_in_batch |= matches!(frame, ClientFrame::PublishBulk { .. });
            if !matches!(frame, ClientFrame::PublishBulk { .. }) {
                let len = frame.published().map_or(16, |(_, p)| p.len() + 32);
                queued.fetch_sub(len, Relaxed);
            }
            tx.feed(frame).await.map_err(failed)?;
            frame = match urgent.try_recv() {
                Ok(f) => f,
                Err(_) => match bulk.try_recv() {
                    Ok(f) => f,
                    Err(_) => break,
                },
            };
        }
        SinkExt::<ClientFrame>::flush(&mut tx)
            .await
            .map_err(failed)?;
        if bulk_in_batch {
            flushed.fetch_add(1, Relaxed);
        }
    }
    while let Some(f) = bulk.recv().await {
        tx.feed(f).await.map_err(failed)?;
    }
    SinkExt::<ClientFrame>::close(&mut tx).await.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use common::wire::{FrameCodec, RelayFrame};
    use futures_util::StreamExt;
    use tokio_util::codec::FramedRead;

    fn chat(n: u8) -> ClientFrame {
        ClientFrame::Publish {
            to: None,
            payload: Bytes::from(vec![n; 100]),
        }
    }

    fn chunk(n: u8) -> ClientFrame {
        ClientFrame::PublishBulk {
            to: None,
            payload: Bytes::from(vec![n; 64 * 1024]),
        }
    }

    /// A writer into a pipe nobody reads yet: chat overtakes queued chunks,
    /// each lane keeps its order, and a close sends everything first.
    #[tokio::test]
    async fn chat_overtakes_queued_chunks_and_a_close_sends_everything() {
        // A small pipe: the writer blocks on the first chunk.
        let (a, b) = tokio::io::duplex(1024);
        let (out, writer) = Outgoing::start(
            FramedWrite::new(a, FrameCodec::<RelayFrame>::new(1 << 20)),
            Duration::from_secs(3600),
        );
        out.send(chunk(0)).await.unwrap();
        // The writer takes it and waits on the full pipe.
        tokio::time::sleep(Duration::from_millis(20)).await;
        for n in 1..3 {
            out.send(chunk(n)).await.unwrap();
        }
        for n in 10..13 {
            out.send(chat(n)).await.unwrap();
        }
        assert_eq!(
            out.bulk_room_now(),
            2,
            "the writer holds one chunk, two wait"
        );
        out.send(chunk(3)).await.unwrap();
        let closing = tokio::spawn(out.close(writer));
        let mut rx = FramedRead::new(b, FrameCodec::<ClientFrame>::new(1 << 20));
        let mut got = Vec::new();
        while let Some(f) = rx.next().await {
            let f = f.unwrap();
            let (_, p) = f.published().unwrap();
            got.push((matches!(f, ClientFrame::PublishBulk { .. }), p[0]));
        }
        closing.await.unwrap();
        // The first chunk was already on its way; the chat overtook the rest.
        assert_eq!(
            got,
            [
                (true, 0),
                (false, 10),
                (false, 11),
                (false, 12),
                (true, 1),
                (true, 2),
                (true, 3)
            ]
        );
    }

    /// A full bulk lane holds the chunks back, never the chat, and never
    /// the caller's other work (`bulk_room_now` says how many may go).
    #[tokio::test]
    async fn a_full_bulk_lane_says_so_and_chat_still_goes() {
        let (a, b) = tokio::io::duplex(1024);
        let (out, _writer) = Outgoing::start(
            FramedWrite::new(a, FrameCodec::<RelayFrame>::new(1 << 20)),
            Duration::from_secs(3600),
        );
        let mut sent = 0u8;
        for _ in 0..20 {
            if out.bulk_room_now() == 0 {
                break;
            }
            out.send(chunk(sent)).await.unwrap();
            sent += 1;
            tokio::task::yield_now().await;
        }
        assert!(
            sent as usize <= BULK_FRAMES + 1,
            "bounded: {sent} chunks taken"
        );
        assert_eq!(out.bulk_room_now(), 0);
        out.send(chat(99)).await.unwrap();
        let mut rx = FramedRead::new(b, FrameCodec::<ClientFrame>::new(1 << 20));
        let mut order = Vec::new();
        for _ in 0..=sent {
            let f = rx.next().await.unwrap().unwrap();
            order.push(f.published().unwrap().1[0]);
        }
        assert_eq!(
            order[1], 99,
            "the line went right after the chunk in flight"
        );
        tokio::time::timeout(Duration::from_secs(5), out.bulk_room())
            .await
            .expect("room again once the reader drains");
    }

    /// A writer whose peer is gone reports why.
    #[tokio::test]
    async fn a_failed_write_ends_the_writer_with_a_reason() {
        let (a, b) = tokio::io::duplex(64);
        drop(b);
        let (out, mut writer) = Outgoing::start(
            FramedWrite::new(a, FrameCodec::<RelayFrame>::new(1 << 20)),
            Duration::from_secs(3600),
        );
        out.send(chat(1)).await.unwrap();
        let why = tokio::time::timeout(Duration::from_secs(5), writer.finished())
            .await
            .unwrap();
        assert!(why.starts_with("cannot write to the relay"), "{why}");
    }
}
