//! Idle connections: open C TLS connections that each join a room (rooms of
//! `room_size`, or all in one), wait until all are welcomed, let the relay
//! settle, and compare its resident memory with the figure before.
//!
//! Connections stay live while they are measured: each one answers pings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::timeout_at;
use tokio_util::sync::CancellationToken;
use wire::{ClientFrame, RelayFrame};

use crate::conn::{join, random_room, send};
use crate::procfs;
use crate::tls::Target;

/// Read buffer growth for idle connections (they receive little).
const IDLE_CHUNK: usize = 4096;
/// File descriptors kept free besides one per connection.
const SPARE_FDS: u64 = 64;
/// Upper bound on connections per run.
pub const MAX_CONNS: usize = 100_000;

/// How to run an idle-connection benchmark.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connections to open.
    pub conns: usize,
    /// Connections per room (ignored with `one_room`).
    pub room_size: usize,
    /// Put every connection in one room.
    pub one_room: bool,
    /// Handshakes in flight.
    pub parallel: usize,
    /// Wait between the last welcome and the memory reading.
    pub settle: Duration,
    /// The relays' pids (their RSS together is what is measured).
    pub relay_pids: Vec<u32>,
}

/// The result of one idle run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `"idle"`.
    pub bench: &'static str,
    /// Connections held open.
    pub conns: usize,
    /// Rooms they were spread over.
    pub rooms: usize,
    /// Relay RSS before opening, KiB.
    pub rss_before_kib: u64,
    /// Relay RSS with every connection welcomed and settled, KiB.
    pub rss_after_kib: u64,
    /// `(after − before) / conns`, KiB.
    pub kib_per_conn: f64,
    /// Time to open and welcome every connection, seconds.
    pub open_s: f64,
    /// Connections the relay closed while they were being measured.
    pub dropped: u64,
    /// `PeerJoined`/`PeerLeft` frames that overtook their connection's
    /// `Welcome` (a relay ordering bug when non-zero; tolerated).
    pub peer_frames_before_welcome: u64,
}

impl Report {
    /// One human-readable line.
    pub fn human(&self) -> String {
        let mut s = format!(
            "idle: {} TLS connections in {} rooms: relay RSS {} → {} KiB, {:.2} KiB per \
             connection (opened in {:.2} s)",
            self.conns,
            self.rooms,
            self.rss_before_kib,
            self.rss_after_kib,
            self.kib_per_conn,
            self.open_s,
        );
        if self.dropped > 0 {
            s += &format!("; {} connections were dropped by the relay", self.dropped);
        }
        s += &crate::report::early_note(self.peer_frames_before_welcome);
        s
    }
}

/// RSS of all the relays together, KiB.
fn relays_rss(pids: &[u32]) -> Result<u64> {
    let mut sum = 0;
    for pid in pids {
        sum += procfs::rss_kib(*pid)?;
    }
    Ok(sum)
}

/// Runs one idle benchmark against `targets` (one relay, or several sharing
/// the rooms: connection i goes to relay i mod n), never past `deadline`.
pub async fn run(targets: &[Arc<Target>], opts: &Options, deadline: Instant) -> Result<Report> {
    if targets.is_empty() || opts.relay_pids.is_empty() {
        bail!("give at least one relay and its pid");
    }
    if opts.conns == 0 || opts.conns > MAX_CONNS {
        bail!("--conns must be between 1 and {MAX_CONNS}");
    }
    if !opts.one_room && opts.room_size == 0 {
        bail!("--room-size must be at least 1");
    }
    procfs::check_fd_limit(opts.conns, SPARE_FDS)?;
    for pid in &opts.relay_pids {
        procfs::check_pid(*pid)?;
    }
    let tdeadline = tokio::time::Instant::from_std(deadline);

    let room_size = if opts.one_room {
        opts.conns
    } else {
        opts.room_size
    };
    let rooms = (0..opts.conns.div_ceil(room_size))
        .map(|_| random_room())
        .collect::<Result<Vec<_>>>()?;

    let rss_before = relays_rss(&opts.relay_pids)?;
    let start = Instant::now();
    let gate = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let stop = CancellationToken::new();
    let dropped = Arc::new(AtomicU64::new(0));
    let (tx, mut welcomed) = mpsc::channel::<Result<()>>(opts.conns);
    let mut tasks = Vec::with_capacity(opts.conns);
    for i in 0..opts.conns {
        let room = rooms[i / room_size];
        let target = Arc::clone(&targets[i % targets.len()]);
        let gate = Arc::clone(&gate);
        let stop = stop.clone();
        let dropped = Arc::clone(&dropped);
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let joined = {
                let Ok(_permit) = gate.acquire_owned().await else {
                    return;
                };
                tokio::select! {
                    () = stop.cancelled() => return,
                    j = join(&target, room, IDLE_CHUNK) => j,
                }
            };
            let mut conn = match joined {
                Ok((conn, _)) => {
                    let _ = tx.send(Ok(())).await;
                    conn
                }
                Err(e) => {
                    let _ = tx
                        .send(Err(e.context(format!("connection {}", i + 1))))
                        .await;
                    return;
                }
            };
            drop(tx);
            loop {
                let frame = tokio::select! {
                    () = stop.cancelled() => {
                        crate::conn::close(conn).await;
                        return;
                    }
                    f = conn.next() => f,
                };
                match frame {
                    Ok(Some(RelayFrame::Ping(n))) => {
                        if send(conn.get_mut(), &ClientFrame::Pong(n)).await.is_err() {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    Ok(Some(RelayFrame::Error(e))) if e.code.is_fatal() => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    drop(tx);

    let outcome = wait_welcomed(&mut welcomed, opts.conns, tdeadline).await;
    let open_s = start.elapsed().as_secs_f64();
    let measured = match outcome {
        Ok(()) => {
            let settle_until = (tokio::time::Instant::now() + opts.settle).min(tdeadline);
            tokio::time::sleep_until(settle_until).await;
            relays_rss(&opts.relay_pids)
        }
        Err(e) => Err(e),
    };
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let rss_after = measured?;
    Ok(Report {
        bench: "idle",
        conns: opts.conns,
        rooms: rooms.len(),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        kib_per_conn: rss_after.saturating_sub(rss_before) as f64 / opts.conns as f64,
        open_s,
        dropped: dropped.load(Ordering::Relaxed),
        peer_frames_before_welcome: crate::conn::peer_frames_before_welcome(),
    })
}

async fn wait_welcomed(
    welcomed: &mut mpsc::Receiver<Result<()>>,
    conns: usize,
    deadline: tokio::time::Instant,
) -> Result<()> {
    let mut n = 0usize;
    while n < conns {
        match timeout_at(deadline, welcomed.recv()).await {
            Err(_) => bail!("timed out with {n} of {conns} connections welcomed (--timeout)"),
            Ok(None) => bail!("connection tasks ended with {n} of {conns} welcomed"),
            Ok(Some(Ok(()))) => n += 1,
            Ok(Some(Err(e))) => {
                return Err(e.context(format!("after {n} of {conns} connections were welcomed")));
            }
        }
    }
    Ok(())
}
