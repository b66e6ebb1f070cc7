//! A room of subscribers plus one publisher: the set-up shared by the
//! throughput and latency runs, the subscriber loop, and the publisher's
//! write side (which also answers the relay's pings).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::timeout_at;
use tokio_util::sync::CancellationToken;
use wire::RoomId;
use wire::{encode_frame, ClientFrame, ConnId, RelayFrame, DEFAULT_MAX_FRAME};

use crate::conn::{join, send, Conn, FrameReader, Refused};
use crate::payload::{now_ns, parse};
use crate::seq::SeqTracker;
use crate::tls::{Target, TlsStream};

/// Read buffer growth for subscribers and publishers (bulk traffic).
const BULK_CHUNK: usize = 64 * 1024;

/// Progress value a subscriber stores when it stops, so that a publisher
/// waiting on the slowest subscriber does not wait on a dead one.
pub const GONE: u64 = u64::MAX;

/// Subscribers and a publisher, all joined to one room and all seen by the
/// publisher.
#[derive(Debug)]
pub struct Room {
    /// The room's id.
    pub room: RoomId,
    /// Joined subscriber connections with their ids.
    pub subs: Vec<(Conn, ConnId)>,
    /// The publisher's connection.
    pub publisher: Conn,
    /// The publisher's id (subscribers count deliveries from it only).
    pub publisher_id: ConnId,
    /// The relay's frame limit from the publisher's welcome.
    pub max_frame: usize,
}

/// Joins `subs` subscribers (at most `parallel` handshakes at a time), then
/// the publisher, and waits until the publisher knows every subscriber (from
/// its welcome's peer list or later `PeerJoined` frames). With several
/// `targets` (relays sharing rooms over a backplane) the subscribers are
/// spread over them in turn and the publisher joins the first.
pub async fn open(
    targets: &[Arc<Target>],
    subs: usize,
    parallel: usize,
    deadline: tokio::time::Instant,
) -> Result<Room> {
    let room = crate::conn::random_room()?;
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let mut set = JoinSet::new();
    let Some(first) = targets.first() else {
        bail!("no relay to join");
    };
    for i in 0..subs {
        let target = Arc::clone(&targets[i % targets.len()]);
        let gate = Arc::clone(&gate);
        set.spawn(async move {
            let _permit = gate
                .acquire_owned()
                .await
                .context("handshake gate closed")?;
            join(&target, room, BULK_CHUNK).await
        });
    }
    let mut joined = Vec::with_capacity(subs);
    while let Some(res) = timeout_at(deadline, set.join_next())
        .await
        .context("timed out joining the subscribers")?
    {
        let (conn, welcome) = res
            .context("a subscriber task failed")?
            .with_context(|| format!("subscriber {} of {subs} could not join", joined.len() + 1))?;
        joined.push((conn, welcome.conn_id));
    }

    let (mut publisher, welcome) = timeout_at(deadline, join(first, room, BULK_CHUNK))
        .await
        .context("timed out joining the publisher")?
        .context("the publisher could not join")?;
    let mut missing: HashSet<ConnId> = joined.iter().map(|(_, id)| *id).collect();
    for p in &welcome.peers {
        missing.remove(p);
    }
    while !missing.is_empty() {
        let frame = timeout_at(deadline, publisher.next())
            .await
            .with_context(|| {
                format!(
                    "timed out waiting for the publisher to see {} more subscribers",
                    missing.len()
                )
            })??;
        match frame {
            Some(RelayFrame::PeerJoined(id)) => {
                missing.remove(&id);
            }
            Some(RelayFrame::PeerLeft(id)) if missing.contains(&id) => {
                bail!("subscriber {id} left the room before the run started")
            }
            Some(RelayFrame::Ping(n)) => send(publisher.get_mut(), &ClientFrame::Pong(n)).await?,
            Some(RelayFrame::Error(e)) => return Err(Refused(e).into()),
            Some(_) => {}
            None => bail!("the relay closed the publisher's connection during set-up"),
        }
    }
    Ok(Room {
        room,
        subs: joined,
        publisher,
        publisher_id: welcome.conn_id,
        max_frame: welcome.max_frame as usize,
    })
}

/// What a subscriber measures besides counting.
#[derive(Debug, Clone, Copy)]
pub enum Measure {
    /// Count deliveries only.
    Count,
    /// Also record one-way latency of messages with sequence ≥ `from_seq`.
    Latency {
        /// First sequence number after the warm-up.
        from_seq: u64,
    },
}

/// What one subscriber saw.
#[derive(Debug)]
pub struct SubResult {
    /// Which sequence numbers arrived.
    pub tracker: SeqTracker,
    /// Deliveries from the publisher (duplicates included).
    pub deliveries: u64,
    /// Deliveries from any other connection.
    pub foreign: u64,
    /// Time of the first delivery from the publisher.
    pub first: Option<Instant>,
    /// Time of the last delivery from the publisher.
    pub last: Option<Instant>,
    /// One-way latencies in ns ([`Measure::Latency`] only).
    pub latencies_ns: Vec<u64>,
    /// Why the subscriber stopped early, if it did.
    pub error: Option<String>,
}

/// Reads deliveries until all `expected` messages arrived, the connection
/// fails, or `stop` is cancelled. Stores its distinct count in `progress`
/// after every delivery, and [`GONE`] when it returns. Hands the connection
/// back still open, so that the publisher's `PeerLeft` count shows only
/// connections the relay dropped while the run went on.
pub async fn subscribe<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: FrameReader<S>,
    publisher: ConnId,
    expected: u64,
    measure: Measure,
    progress: Arc<AtomicU64>,
    stop: CancellationToken,
) -> (SubResult, FrameReader<S>) {
    let mut r = SubResult {
        tracker: SeqTracker::new(expected),
        deliveries: 0,
        foreign: 0,
        first: None,
        last: None,
        latencies_ns: match measure {
            Measure::Count => Vec::new(),
            Measure::Latency { from_seq } => {
                Vec::with_capacity(usize::try_from(expected.saturating_sub(from_seq)).unwrap_or(0))
            }
        },
        error: None,
    };
    while !r.tracker.complete() {
        let frame = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            f = conn.next() => f,
        };
        match frame {
            Ok(Some(RelayFrame::Deliver { from, payload })) => {
                if from != publisher {
                    r.foreign += 1;
                    continue;
                }
                let now = Instant::now();
                r.first.get_or_insert(now);
                r.last = Some(now);
                r.deliveries += 1;
                let Some((seq, ts)) = parse(&payload) else {
                    r.tracker.record_malformed();
                    continue;
                };
                let seen = r.tracker.record(seq);
                if let Measure::Latency { from_seq } = measure {
                    if seq >= from_seq && seen != crate::seq::Seen::Duplicate {
                        r.latencies_ns.push(now_ns().saturating_sub(ts));
                    }
                }
                progress.store(r.tracker.distinct, Ordering::Relaxed);
            }
            Ok(Some(RelayFrame::Ping(n))) => {
                if let Err(e) = send(conn.get_mut(), &ClientFrame::Pong(n)).await {
                    r.error = Some(format!("{e:#}"));
                    break;
                }
            }
            Ok(Some(RelayFrame::Error(e))) => {
                r.error = Some(Refused(e).to_string());
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                r.error = Some("the relay closed the connection".into());
                break;
            }
            Err(e) => {
                r.error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    progress.store(GONE, Ordering::Relaxed);
    (r, conn)
}

/// What the publisher's reader saw while the run went on.
#[derive(Debug, Default)]
pub struct PublisherStatus {
    /// A fatal error from the relay or the stream, if any.
    pub error: Mutex<Option<String>>,
    /// `PeerLeft` frames (a subscriber dropped, e.g. as a slow reader).
    pub peer_left: AtomicU64,
}

impl PublisherStatus {
    fn fail(&self, msg: String) {
        if let Ok(mut e) = self.error.lock() {
            e.get_or_insert(msg);
        }
    }

    /// The fatal error, if one was recorded.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

/// The publisher's write side; a background task reads its frames, answers
/// pings (through this writer, at the next batch) and records errors.
#[derive(Debug)]
pub struct Publisher {
    writer: WriteHalf<TlsStream>,
    pongs: mpsc::Receiver<u64>,
    /// Shared with the reader task.
    pub status: Arc<PublisherStatus>,
    stop: CancellationToken,
    reader: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Splits `conn` and starts its reader.
    pub fn start(conn: Conn) -> Self {
        let (reader, writer) = conn.split();
        let (tx, pongs) = mpsc::channel(64);
        let status = Arc::new(PublisherStatus::default());
        let stop = CancellationToken::new();
        let reader = tokio::spawn(read_publisher(
            reader,
            tx,
            Arc::clone(&status),
            stop.clone(),
        ));
        Publisher {
            writer,
            pongs,
            status,
            stop,
            reader,
        }
    }

    /// Appends pending pongs to `buf`, writes it all and clears it. Fails if
    /// the reader recorded a fatal error.
    pub async fn write(&mut self, buf: &mut BytesMut) -> Result<()> {
        if let Some(e) = self.status.error() {
            bail!("publisher: {e}");
        }
        while let Ok(n) = self.pongs.try_recv() {
            encode_frame(&ClientFrame::Pong(n), DEFAULT_MAX_FRAME, buf)
                .context("encoding a pong")?;
        }
        let written = async {
            self.writer.write_all(buf).await?;
            self.writer.flush().await
        }
        .await;
        if let Err(e) = written {
            // The relay's reason (an error frame) usually arrives just before
            // the reset: give the reader a moment to report it.
            let _ = tokio::time::timeout(Duration::from_millis(500), &mut self.reader).await;
            match self.status.error() {
                Some(reason) => bail!("publisher: {reason}"),
                None => return Err(anyhow!(e).context("publisher: writing to the relay")),
            }
        }
        buf.clear();
        Ok(())
    }

    /// Stops the reader and closes the connection.
    pub async fn close(mut self) {
        self.stop.cancel();
        if !self.reader.is_finished() {
            let _ = self.reader.await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.writer.shutdown()).await;
    }
}

async fn read_publisher(
    mut reader: FrameReader<ReadHalf<TlsStream>>,
    pongs: mpsc::Sender<u64>,
    status: Arc<PublisherStatus>,
    stop: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            f = reader.next() => f,
        };
        match frame {
            Ok(Some(RelayFrame::Ping(n))) => {
                // Pings are rare; if 64 are pending the run is stuck anyway.
                let _ = pongs.try_send(n);
            }
            Ok(Some(RelayFrame::PeerLeft(_))) => {
                status.peer_left.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Some(RelayFrame::Error(e))) => {
                let fatal = e.code.is_fatal();
                status.fail(Refused(e).to_string());
                if fatal {
                    return;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                status.fail("the relay closed the publisher's connection".into());
                return;
            }
            Err(e) => {
                status.fail(format!("{e:#}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;
    use wire::{decode_frame, RelayFrame};

    fn deliver(from: ConnId, seq: u64, ts: u64) -> RelayFrame {
        let mut payload = vec![0u8; 32];
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        payload[8..16].copy_from_slice(&ts.to_be_bytes());
        RelayFrame::Deliver {
            from,
            payload: Bytes::from(payload),
        }
    }

    #[tokio::test]
    async fn subscriber_counts_gaps_duplicates_and_answers_pings() {
        let (client, mut relay) = tokio::io::duplex(1 << 16);
        let frames = [
            RelayFrame::PeerJoined(3),
            deliver(1, 0, now_ns()),
            deliver(1, 2, now_ns()),
            deliver(1, 2, now_ns()),
            RelayFrame::Ping(42),
            deliver(3, 1, now_ns()), // not from the publisher
            deliver(1, 1, now_ns()),
            RelayFrame::Deliver {
                from: 1,
                payload: Bytes::from_static(b"short"),
            },
        ];
        let mut out = BytesMut::new();
        for f in &frames {
            encode_frame(f, DEFAULT_MAX_FRAME, &mut out).unwrap();
        }
        relay.write_all(&out).await.unwrap();
        relay.shutdown().await.unwrap();

        let progress = Arc::new(AtomicU64::new(0));
        let (r, conn) = subscribe(
            FrameReader::new(client, DEFAULT_MAX_FRAME, 64),
            1,
            4,
            Measure::Latency { from_seq: 1 },
            Arc::clone(&progress),
            CancellationToken::new(),
        )
        .await;
        assert_eq!(r.deliveries, 5);
        assert_eq!(r.tracker.distinct, 3);
        assert_eq!(r.tracker.duplicates, 1);
        assert_eq!(r.tracker.reordered, 1);
        assert_eq!(r.tracker.out_of_range, 1);
        assert_eq!(r.tracker.missing(), 1);
        assert_eq!(r.foreign, 1);
        // seq 2 and seq 1 are measured; the duplicate is not.
        assert_eq!(r.latencies_ns.len(), 2);
        assert!(r.first.is_some() && r.last >= r.first);
        assert!(r.error.as_deref().unwrap().contains("closed"));
        assert_eq!(progress.load(Ordering::Relaxed), GONE);

        drop(conn);
        let mut pong = Vec::new();
        relay.read_to_end(&mut pong).await.unwrap();
        let (frame, _) = decode_frame::<ClientFrame>(&pong, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(frame, ClientFrame::Pong(42));
    }

    #[tokio::test]
    async fn subscriber_stops_when_complete_or_cancelled() {
        let (client, mut relay) = tokio::io::duplex(1 << 16);
        let mut out = BytesMut::new();
        for seq in 0..3 {
            encode_frame(&deliver(1, seq, now_ns()), DEFAULT_MAX_FRAME, &mut out).unwrap();
        }
        relay.write_all(&out).await.unwrap();
        let (r, conn) = subscribe(
            FrameReader::new(client, DEFAULT_MAX_FRAME, 64),
            1,
            3,
            Measure::Count,
            Arc::new(AtomicU64::new(0)),
            CancellationToken::new(),
        )
        .await;
        assert!(r.tracker.complete());
        assert!(r.error.is_none());

        let stop = CancellationToken::new();
        stop.cancel();
        let (r, _) = subscribe(
            conn,
            1,
            3,
            Measure::Count,
            Arc::new(AtomicU64::new(0)),
            stop,
        )
        .await;
        assert_eq!(r.deliveries, 0);
        assert!(r.error.is_none());
    }
}
