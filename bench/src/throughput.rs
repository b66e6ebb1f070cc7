//! Throughput: N subscribers in one room, one publisher sending M messages
//! as fast as the relay reads them, many frames per write.
//!
//! Rate = all deliveries / (last receive − first receive) over all
//! subscribers. Relay CPU per delivery comes from `/proc/PID/stat`, read
//! after set-up and after the last delivery (or the drain deadline).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use serde::Serialize;
use tokio::time::timeout_at;
use tokio_util::sync::CancellationToken;

use crate::payload::{now_ns, PublishTemplate};
use crate::procfs;
use crate::report::{pct, SubSummary};
use crate::room::{self, Measure, Publisher, GONE};
use crate::tls::Target;
use crate::MAX_MESSAGES;

/// How to run a throughput benchmark.
#[derive(Debug, Clone)]
pub struct Options {
    /// Subscribers in the room.
    pub subs: usize,
    /// Payload bytes per message (≥ 16).
    pub size: usize,
    /// Messages to publish.
    pub messages: u64,
    /// If non-zero, never run more than this many messages ahead of the
    /// slowest live subscriber (flow control on the client side).
    pub window: u64,
    /// Bytes of frames gathered per write.
    pub batch_bytes: usize,
    /// How long to wait for stragglers after the last message is written.
    pub drain: Duration,
    /// Handshakes in flight while joining.
    pub parallel: usize,
    /// The relays' pids, for their CPU time together (may be empty).
    pub relay_pids: Vec<u32>,
}

/// The result of one throughput run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `"throughput"`.
    pub bench: &'static str,
    /// Subscribers.
    pub subs: usize,
    /// Payload bytes.
    pub size: usize,
    /// Messages the run meant to publish.
    pub messages: u64,
    /// Messages actually written (fewer only on timeout or error).
    pub published: u64,
    /// `messages × subs`.
    pub expected: u64,
    /// Counts over all subscribers.
    #[serde(flatten)]
    pub subs_summary: SubSummary,
    /// Loss in percent of `expected`.
    pub loss_pct: f64,
    /// First to last delivery, seconds.
    pub elapsed_s: f64,
    /// Deliveries per second across all subscribers.
    pub delivered_per_s: f64,
    /// Time the publisher took to write everything, seconds.
    pub publish_s: f64,
    /// Messages written per second by the publisher.
    pub publish_per_s: f64,
    /// Relay CPU time (user + system) during the run, seconds.
    pub relay_cpu_s: Option<f64>,
    /// Relay CPU time per delivery, microseconds.
    pub relay_cpu_us_per_delivery: Option<f64>,
    /// This process's CPU time per delivery, microseconds.
    pub loadgen_cpu_us_per_delivery: Option<f64>,
    /// `PeerLeft` frames the publisher saw during the run.
    pub peer_left: u64,
    /// The publisher's fatal error, if any.
    pub publisher_error: Option<String>,
    /// True if the deadline cut the run short.
    pub timed_out: bool,
    /// `PeerJoined`/`PeerLeft` frames that overtook their connection's
    /// `Welcome` (a relay ordering bug when non-zero; tolerated).
    pub peer_frames_before_welcome: u64,
}

impl Report {
    /// One human-readable line.
    pub fn human(&self) -> String {
        let mut s = format!(
            "throughput: {} subs × {} B, {} msgs: {:.0} deliveries/s, loss {:.3}% ({} of {}), \
             {} duplicates, {} reordered",
            self.subs,
            self.size,
            self.messages,
            self.delivered_per_s,
            self.loss_pct,
            self.subs_summary.lost,
            self.expected,
            self.subs_summary.duplicates,
            self.subs_summary.reordered,
        );
        if let Some(cpu) = self.relay_cpu_us_per_delivery {
            s += &format!(", relay CPU {cpu:.2} µs/delivery");
        }
        if let Some(cpu) = self.loadgen_cpu_us_per_delivery {
            s += &format!(" (loadgen {cpu:.2})");
        }
        s += &format!(", publish {:.0} msgs/s", self.publish_per_s);
        s += &self
            .subs_summary
            .problems(self.timed_out, self.publisher_error.as_deref());
        if self.peer_left > 0 {
            s += &format!(
                "; the relay dropped {} connections of the room",
                self.peer_left
            );
        }
        s += &crate::report::early_note(self.peer_frames_before_welcome);
        s
    }
}

/// CPU ticks of all the relays together (`None` without pids).
fn relays_cpu(pids: &[u32]) -> Result<Option<u64>> {
    if pids.is_empty() {
        return Ok(None);
    }
    let mut sum = 0;
    for pid in pids {
        sum += procfs::cpu_ticks(*pid)?;
    }
    Ok(Some(sum))
}

/// Runs one throughput benchmark against `targets` (one relay, or several
/// sharing the room), never past `deadline`.
pub async fn run(targets: &[Arc<Target>], opts: &Options, deadline: Instant) -> Result<Report> {
    if opts.subs == 0 {
        bail!("--subs must be at least 1");
    }
    if opts.messages == 0 || opts.messages > MAX_MESSAGES {
        bail!("--messages must be between 1 and {MAX_MESSAGES}");
    }
    for pid in &opts.relay_pids {
        procfs::check_pid(*pid)?;
    }
    let tdeadline = tokio::time::Instant::from_std(deadline);
    let room = room::open(targets, opts.subs, opts.parallel, tdeadline).await?;
    let template = PublishTemplate::new(opts.size, room.max_frame)?;

    let stop = CancellationToken::new();
    let mut progress = Vec::with_capacity(opts.subs);
    let mut tasks = Vec::with_capacity(opts.subs);
    for (conn, _) in room.subs {
        let p = Arc::new(AtomicU64::new(0));
        progress.push(Arc::clone(&p));
        tasks.push(tokio::spawn(room::subscribe(
            conn,
            room.publisher_id,
            opts.messages,
            Measure::Count,
            p,
            stop.clone(),
        )));
    }
    let mut publisher = Publisher::start(room.publisher);

    let tck = procfs::clk_tck();
    let relay_before = relays_cpu(&opts.relay_pids)?;
    let self_before = procfs::self_cpu_ticks().ok();

    // Publish.
    let batch = opts.batch_bytes.max(template.frame_len());
    let mut buf = BytesMut::with_capacity(batch + 2 * template.frame_len());
    let mut seq = 0u64;
    let mut timed_out = false;
    let mut publisher_error = None;
    let pub_start = Instant::now();
    while seq < opts.messages {
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        // With a window, this batch may run up to `window` messages ahead
        // of the slowest subscriber that is still reading.
        let mut limit = opts.messages;
        if opts.window > 0 {
            let slowest = progress
                .iter()
                .map(|p| p.load(Ordering::Relaxed))
                .min()
                .unwrap_or(GONE);
            if slowest != GONE {
                limit = limit.min(slowest.saturating_add(opts.window));
                if seq >= limit {
                    tokio::time::sleep(Duration::from_micros(100)).await;
                    continue;
                }
            }
        }
        while seq < limit && buf.len() < batch {
            template.append(seq, now_ns(), &mut buf);
            seq += 1;
        }
        match timeout_at(
            tokio::time::Instant::from_std(deadline),
            publisher.write(&mut buf),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                publisher_error = Some(format!("{e:#}"));
                break;
            }
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    let publish_s = pub_start.elapsed().as_secs_f64();
    let published = seq;

    // Drain: wait for every subscriber to finish, up to the drain time.
    let drain_until = (Instant::now() + opts.drain).min(deadline);
    let mut done = Vec::with_capacity(tasks.len());
    for task in &mut tasks {
        match timeout_at(tokio::time::Instant::from_std(drain_until), &mut *task).await {
            Ok(r) => done.push(r.context("a subscriber task failed")?),
            Err(_) => break,
        }
    }
    stop.cancel();
    for task in tasks.into_iter().skip(done.len()) {
        done.push(task.await.context("a subscriber task failed")?);
    }
    // Connections stay open until the publisher's counts are read.
    let (results, conns): (Vec<_>, Vec<_>) = done.into_iter().unzip();
    if drain_until >= deadline && results.iter().any(|r| !r.tracker.complete()) {
        timed_out = true;
    }

    let relay_after = relays_cpu(&opts.relay_pids)?;
    let self_after = procfs::self_cpu_ticks().ok();
    let peer_left = publisher.status.peer_left.load(Ordering::Relaxed);
    if publisher_error.is_none() {
        publisher_error = publisher.status.error();
    }
    publisher.close().await;
    crate::conn::close_all(conns).await;

    let summary = SubSummary::of(&results, opts.messages);
    let expected = opts.messages * opts.subs as u64;
    let first = results.iter().filter_map(|r| r.first).min();
    let last = results.iter().filter_map(|r| r.last).max();
    let elapsed_s = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    let delivered = summary.delivered as f64;
    let per = |before: Option<u64>, after: Option<u64>| -> Option<f64> {
        let ticks = after?.checked_sub(before?)?;
        (summary.delivered > 0).then(|| ticks as f64 / tck as f64 * 1e6 / delivered)
    };
    Ok(Report {
        bench: "throughput",
        subs: opts.subs,
        size: opts.size,
        messages: opts.messages,
        published,
        expected,
        loss_pct: pct(summary.lost, expected),
        elapsed_s,
        delivered_per_s: if elapsed_s > 0.0 {
            delivered / elapsed_s
        } else {
            0.0
        },
        publish_s,
        publish_per_s: if publish_s > 0.0 {
            published as f64 / publish_s
        } else {
            0.0
        },
        relay_cpu_s: relay_before
            .zip(relay_after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / tck as f64),
        relay_cpu_us_per_delivery: per(relay_before, relay_after),
        loadgen_cpu_us_per_delivery: per(self_before, self_after),
        peer_left,
        publisher_error,
        timed_out,
        subs_summary: summary,
        peer_frames_before_welcome: crate::conn::peer_frames_before_welcome(),
    })
}
