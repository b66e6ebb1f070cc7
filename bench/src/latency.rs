//! Latency: N subscribers, one publisher at a fixed rate, one frame per
//! write. Each subscriber computes one-way latency from the send time in the
//! payload (same process, same monotonic clock). Messages sent during the
//! warm-up are counted for loss but not measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use serde::Serialize;
use tokio::time::{timeout_at, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::payload::{now_ns, PublishTemplate};
use crate::report::{pct, percentile, SubSummary};
use crate::room::{self, Measure, Publisher};
use crate::tls::Target;
use crate::MAX_MESSAGES;

/// How to run a latency benchmark.
#[derive(Debug, Clone)]
pub struct Options {
    /// Subscribers in the room.
    pub subs: usize,
    /// Payload bytes per message (≥ 16).
    pub size: usize,
    /// Messages per second.
    pub rate: f64,
    /// Measured seconds (after the warm-up).
    pub seconds: f64,
    /// Warm-up seconds (sent, not measured).
    pub warmup: f64,
    /// How long to wait for stragglers after the last message.
    pub drain: Duration,
    /// Handshakes in flight while joining.
    pub parallel: usize,
}

/// The result of one latency run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `"latency"`.
    pub bench: &'static str,
    /// Subscribers.
    pub subs: usize,
    /// Payload bytes.
    pub size: usize,
    /// Messages per second.
    pub rate: f64,
    /// Warm-up seconds.
    pub warmup_s: f64,
    /// Measured seconds.
    pub seconds: f64,
    /// Messages written (warm-up included).
    pub published: u64,
    /// `published × subs`.
    pub expected: u64,
    /// Counts over all subscribers.
    #[serde(flatten)]
    pub subs_summary: SubSummary,
    /// Loss in percent of `expected`.
    pub loss_pct: f64,
    /// Latency samples after the warm-up (all subscribers).
    pub samples: u64,
    /// Median one-way latency, µs.
    pub p50_us: Option<f64>,
    /// 90th percentile, µs.
    pub p90_us: Option<f64>,
    /// 99th percentile, µs.
    pub p99_us: Option<f64>,
    /// 99.9th percentile, µs.
    pub p999_us: Option<f64>,
    /// Largest, µs.
    pub max_us: Option<f64>,
    /// Mean, µs.
    pub mean_us: Option<f64>,
    /// `PeerLeft` frames the publisher saw during the run (subscribers the
    /// relay dropped).
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
        let us = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
        let mut s = format!(
            "latency: {} subs × {} B at {} msgs/s for {} s (+{} s warm-up): \
             p50 {} µs, p99 {} µs, max {} µs over {} samples, loss {:.3}% ({} of {})",
            self.subs,
            self.size,
            self.rate,
            self.seconds,
            self.warmup_s,
            us(self.p50_us),
            us(self.p99_us),
            us(self.max_us),
            self.samples,
            self.loss_pct,
            self.subs_summary.lost,
            self.expected,
        );
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

/// Runs one latency benchmark against `targets` (one relay, or several
/// sharing the room), never past `deadline`.
pub async fn run(targets: &[Arc<Target>], opts: &Options, deadline: Instant) -> Result<Report> {
    if opts.subs == 0 {
        bail!("--subs must be at least 1");
    }
    if !(opts.rate > 0.0 && opts.rate <= 1e6) {
        bail!("--rate must be above 0 and at most 1,000,000 msgs/s");
    }
    if !(opts.seconds > 0.0 && opts.warmup >= 0.0) {
        bail!("--seconds must be positive and --warmup not negative");
    }
    let total = (opts.rate * (opts.warmup + opts.seconds)).round();
    let warm = (opts.rate * opts.warmup).round() as u64;
    if !(1.0..=MAX_MESSAGES as f64).contains(&total) {
        bail!("rate × (warm-up + seconds) must be between 1 and {MAX_MESSAGES} messages");
    }
    let total = total as u64;

    let tdeadline = tokio::time::Instant::from_std(deadline);
    let room = room::open(targets, opts.subs, opts.parallel, tdeadline).await?;
    let template = PublishTemplate::new(opts.size, room.max_frame)?;

    let stop = CancellationToken::new();
    let mut tasks = Vec::with_capacity(opts.subs);
    for (conn, _) in room.subs {
        tasks.push(tokio::spawn(room::subscribe(
            conn,
            room.publisher_id,
            total,
            Measure::Latency { from_seq: warm },
            Arc::new(AtomicU64::new(0)),
            stop.clone(),
        )));
    }
    let mut publisher = Publisher::start(room.publisher);

    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut buf = BytesMut::with_capacity(2 * template.frame_len());
    let mut seq = 0u64;
    let mut timed_out = false;
    let mut publisher_error = None;
    while seq < total {
        if timeout_at(tdeadline, tick.tick()).await.is_err() {
            timed_out = true;
            break;
        }
        template.append(seq, now_ns(), &mut buf);
        seq += 1;
        match timeout_at(tdeadline, publisher.write(&mut buf)).await {
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
    let published = seq;

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
    let peer_left = publisher.status.peer_left.load(Ordering::Relaxed);
    if publisher_error.is_none() {
        publisher_error = publisher.status.error();
    }
    publisher.close().await;
    crate::conn::close_all(conns).await;

    // Loss is counted against what was actually published.
    let mut summary = SubSummary::of(&results, total);
    summary.lost = summary
        .lost
        .saturating_sub((total - published) * opts.subs as u64);
    let expected = published * opts.subs as u64;
    let mut lat: Vec<u64> = results
        .iter()
        .flat_map(|r| r.latencies_ns.iter().copied())
        .collect();
    lat.sort_unstable();
    let us = |ns: Option<u64>| ns.map(|v| v as f64 / 1e3);
    let mean_us = (!lat.is_empty())
        .then(|| lat.iter().map(|&v| v as f64).sum::<f64>() / lat.len() as f64 / 1e3);
    Ok(Report {
        bench: "latency",
        subs: opts.subs,
        size: opts.size,
        rate: opts.rate,
        warmup_s: opts.warmup,
        seconds: opts.seconds,
        published,
        expected,
        loss_pct: pct(summary.lost, expected),
        samples: lat.len() as u64,
        p50_us: us(percentile(&lat, 50.0)),
        p90_us: us(percentile(&lat, 90.0)),
        p99_us: us(percentile(&lat, 99.0)),
        p999_us: us(percentile(&lat, 99.9)),
        max_us: us(lat.last().copied()),
        mean_us,
        peer_left,
        publisher_error,
        timed_out,
        subs_summary: summary,
        peer_frames_before_welcome: crate::conn::peer_frames_before_welcome(),
    })
}
