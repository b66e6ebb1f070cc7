//! One try: a fresh room of an admin, a sender and N receivers; a few
//! seconds of chat for the baseline; then the file, with the same chat
//! going on, until every receiver has saved it.
//!
//! A try fails on the first sign of trouble: a lost connection or
//! reconnect, a stopped driver, a failed or unsaved transfer, an error, a
//! membership change, a wrong SHA-256, or no file within its time limit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use client::driver::Request;
use common::engine::Command;
use serde::Serialize;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{timeout_at, MissedTickBehavior};

use crate::room::{chat_text, Keys, Note, Room, Setup, What, ADMIN, SENDER};
use crate::source::{self, Source};

/// Chat lines still arriving after the transfer: how long to wait for them.
const CHAT_DRAIN: Duration = Duration::from_secs(2);
/// After a failure, how long to gather what else went wrong.
const AFTERMATH: Duration = Duration::from_secs(1);
/// A try's time limit beyond the file's time at its pace.
const SLACK: Duration = Duration::from_secs(60);
/// Without a pace, the file's time is reckoned at this rate (bytes/s) for
/// the time limit: far below what loopback does.
const FLOOR_RATE: f64 = 2e6;

/// What every try of one run shares.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The relay and the room's size; the pace is set per try.
    pub setup: Setup,
    /// Time between two chat lines from the admin.
    pub chat_every: Duration,
    /// Chat without a transfer, before it.
    pub baseline: Duration,
    /// Time allowed for everyone to join.
    pub join_timeout: Duration,
}

/// Chat latency over one phase, all members together.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Lines sent × members that should get them.
    pub expected: usize,
    /// Arrivals measured.
    pub samples: usize,
    /// Expected arrivals that never came.
    pub lost: usize,
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile (nearest rank), ms.
    pub p99_ms: Option<f64>,
    /// Largest, ms.
    pub max_ms: Option<f64>,
}

impl Latency {
    fn human(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let mut s = format!(
            "p50 {} / p99 {} / max {} ms ({} samples",
            ms(self.p50_ms),
            ms(self.p99_ms),
            ms(self.max_ms),
            self.samples
        );
        if self.lost > 0 {
            s += &format!(", {} of {} lost", self.lost, self.expected);
        }
        s + ")"
    }
}

/// The result of one try.
#[derive(Debug, Clone, Serialize)]
pub struct TryReport {
    /// Always `"filebench-try"`.
    pub bench: &'static str,
    /// `"default"` (the product's settings: no pace, the relay's flow
    /// control sets it) or `"paced"`.
    pub kind: &'static str,
    /// Receivers (besides the sender; the admin is in the room too).
    pub receivers: usize,
    /// File size, bytes.
    pub size_bytes: u64,
    /// The sender's pace, bytes per second (`None`: as fast as the relay
    /// takes the chunks, the product's default).
    pub pace_bps: Option<u64>,
    /// Every receiver saved the file, verified, with nothing lost.
    pub ok: bool,
    /// Why not.
    pub failure: Option<String>,
    /// Receivers that saved the file.
    pub saved: usize,
    /// From the send command to the last receiver's save, seconds.
    pub elapsed_s: Option<f64>,
    /// The file's size over `elapsed_s`: the slowest receiver's stream,
    /// 10^6 bytes/s.
    pub file_mbps: Option<f64>,
    /// The same in MiB/s.
    pub file_mibps: Option<f64>,
    /// Fastest receiver's stream, 10^6 bytes/s.
    pub fastest_receiver_mbps: Option<f64>,
    /// From the send command to the sender's last chunk, seconds.
    pub sender_done_s: Option<f64>,
    /// Chat before the transfer.
    pub chat_baseline: Latency,
    /// Chat lines sent while the transfer ran.
    pub chat_during: Latency,
    /// Chat lines not queued because the admin's command queue was full.
    pub chat_unsent: u64,
    /// Warnings from members' engines (the admin's notice that it ignores
    /// the file is expected and not counted).
    pub warnings: u64,
    /// The first of them.
    pub first_warning: Option<String>,
}

impl TryReport {
    fn new(receivers: usize, size: u64, pace: Option<u64>) -> Self {
        TryReport {
            bench: "filebench-try",
            kind: if pace.is_some() { "paced" } else { "default" },
            receivers,
            size_bytes: size,
            pace_bps: pace,
            ok: false,
            failure: None,
            saved: 0,
            elapsed_s: None,
            file_mbps: None,
            file_mibps: None,
            fastest_receiver_mbps: None,
            sender_done_s: None,
            chat_baseline: Latency::default(),
            chat_during: Latency::default(),
            chat_unsent: 0,
            warnings: 0,
            first_warning: None,
        }
    }

    /// A blank report (tests of the summaries).
    #[cfg(test)]
    pub fn for_test(receivers: usize) -> Self {
        TryReport::new(receivers, 1 << 20, None)
    }

    /// One human-readable line.
    pub fn human(&self) -> String {
        let mut s = match self.pace_bps {
            Some(p) => format!(
                "N={} at a pace of {:.1} MB/s: ",
                self.receivers,
                p as f64 / 1e6
            ),
            None => format!("N={} at the default settings: ", self.receivers),
        };
        match (self.ok, self.file_mbps) {
            (true, Some(r)) => {
                s += &format!(
                    "{r:.1} MB/s ({:.1} MiB/s) per receiver stream, {:.2} s (sender done at \
                     {:.2} s); chat during {}; baseline {}",
                    self.file_mibps.unwrap_or(0.0),
                    self.elapsed_s.unwrap_or(0.0),
                    self.sender_done_s.unwrap_or(f64::NAN),
                    self.chat_during.human(),
                    self.chat_baseline.human()
                )
            }
            _ => {
                s += &format!(
                    "FAILED ({}), {} of {} saved",
                    self.failure.as_deref().unwrap_or("?"),
                    self.saved,
                    self.receivers
                )
            }
        }
        if let Some(w) = &self.first_warning {
            s += &format!("; {} warnings, first: {w}", self.warnings);
        }
        s
    }
}

/// Everything seen during one try.
#[derive(Debug, Default)]
struct Tally {
    peers: usize,
    /// Send time of each chat line, by sequence number.
    chat_sent: Vec<Instant>,
    /// First arrival of (peer, sequence number).
    chat_got: HashMap<(usize, u64), Instant>,
    /// Receivers' saves: peer → (when, where).
    saved: HashMap<usize, (Instant, PathBuf)>,
    sender_done: Option<Instant>,
    unsent: u64,
    warnings: u64,
    first_warning: Option<String>,
}

impl Tally {
    /// Takes one note; an error for anything that ends the try.
    fn take(&mut self, note: Note) -> Result<()> {
        let who = role(note.peer);
        match note.what {
            What::Chat(seq) => {
                self.chat_got.entry((note.peer, seq)).or_insert(note.at);
            }
            What::Saved(path) if note.peer > SENDER => {
                self.saved.entry(note.peer).or_insert((note.at, path));
            }
            What::Saved(_) => bail!("{who} saved the file, which it should not get"),
            What::Sent if note.peer == SENDER => self.sender_done = Some(note.at),
            What::Sent => {}
            What::Offered { accepted: false } if note.peer > SENDER => {
                bail!("{who} was offered the file but would not save it without asking")
            }
            What::Offered { .. } => {}
            What::FileFailed(why) => bail!("{who}: transfer failed: {why}"),
            What::Lost(why) => bail!("{who} {why}"),
            What::Error(why) => bail!("{who}: {why}"),
            What::Epoch(n) if n != self.peers => {
                bail!("{who} saw the room change to {n} members")
            }
            What::Epoch(_) => {}
            What::Warning(why) => {
                // The admin ignores the file (its limit is below it).
                if note.peer != ADMIN {
                    self.warnings += 1;
                    self.first_warning
                        .get_or_insert_with(|| format!("{who}: {why}"));
                }
            }
        }
        Ok(())
    }

    /// Sends chat line number `chat_sent.len()` from the admin.
    fn chat(&mut self, room: &Room) -> Result<()> {
        let Some(admin) = room.cmds.get(ADMIN) else {
            bail!("no admin");
        };
        let seq = self.chat_sent.len() as u64;
        let at = Instant::now();
        match admin.try_send(Command::Send(chat_text(seq)).into()) {
            Ok(()) => self.chat_sent.push(at),
            Err(TrySendError::Full(_)) => self.unsent += 1,
            Err(TrySendError::Closed(_)) => bail!("the admin's driver ended"),
        }
        Ok(())
    }

    /// Latency of the chat lines `from..to`, over every member.
    fn latency(&self, from: usize, to: usize) -> Latency {
        let mut us = Vec::new();
        let mut expected = 0usize;
        for (seq, sent) in self.chat_sent.iter().enumerate().take(to).skip(from) {
            for peer in SENDER..self.peers {
                expected += 1;
                if let Some(got) = self.chat_got.get(&(peer, seq as u64)) {
                    let d = got.saturating_duration_since(*sent);
                    us.push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
                }
            }
        }
        us.sort_unstable();
        let ms = |p: f64| bench::report::percentile(&us, p).map(|v| v as f64 / 1000.0);
        Latency {
            expected,
            samples: us.len(),
            lost: expected - us.len(),
            p50_ms: ms(50.0),
            p99_ms: ms(99.0),
            max_ms: us.last().map(|&v| v as f64 / 1000.0),
        }
    }

    /// Every chat line sent so far reached every member.
    fn chat_complete(&self) -> bool {
        self.chat_got.len() >= self.chat_sent.len() * (self.peers - SENDER)
    }
}

fn role(peer: usize) -> String {
    match peer {
        ADMIN => "the admin".into(),
        SENDER => "the sender".into(),
        p => format!("receiver {}", p - SENDER),
    }
}

/// One try, at `pace` bytes/s if set; never fails as a whole: what went
/// wrong is in the report.
pub async fn run_try(
    plan: &Plan,
    pace: Option<u64>,
    keys: &Keys,
    file: &Source,
    scratch: &Path,
    deadline: tokio::time::Instant,
) -> TryReport {
    let n = plan.setup.receivers;
    let mut report = TryReport::new(n, file.size, pace);
    let mut tally = Tally {
        peers: n + 2,
        ..Tally::default()
    };
    let mut marks = Marks::default();
    let mut room = None;
    let outcome = attempt(
        plan, pace, keys, file, scratch, deadline, &mut tally, &mut marks, &mut room,
    )
    .await;
    // After a failure, who else lost what in the next moment (the first
    // sign is often the admin seeing a member leave, the cause the
    // member's own disconnect).
    let mut also = Vec::new();
    if let (Err(first), Some(r)) = (&outcome, room.as_mut()) {
        let first = format!("{first:#}");
        let until = deadline.min(tokio::time::Instant::now() + AFTERMATH);
        while also.len() < 3 {
            let Ok(Some(n)) = timeout_at(until, r.notes.recv()).await else {
                break;
            };
            if matches!(n.what, What::Lost(_) | What::FileFailed(_) | What::Error(_)) {
                if let Err(e) = tally.take(n) {
                    let e = e.to_string();
                    if e != first && !also.contains(&e) {
                        also.push(e);
                    }
                }
            }
        }
    }
    if let Some(r) = room.as_mut() {
        r.stop().await;
    }
    report.saved = tally.saved.len();
    report.chat_unsent = tally.unsent;
    report.warnings = tally.warnings;
    report.first_warning = tally.first_warning.clone();
    let transfer_from = marks.transfer_from.unwrap_or(tally.chat_sent.len());
    let transfer_to = marks.transfer_to.unwrap_or(tally.chat_sent.len());
    report.chat_baseline = tally.latency(marks.baseline_from, transfer_from);
    report.chat_during = tally.latency(transfer_from, transfer_to);
    if let Some(t0) = marks.t0 {
        report.sender_done_s = tally.sender_done.map(|t| (t - t0).as_secs_f64());
        let last = tally.saved.values().map(|(at, _)| *at).max();
        let first = tally.saved.values().map(|(at, _)| *at).min();
        if let (Some(last), Some(first)) = (last, first) {
            let secs = (last - t0).as_secs_f64();
            if tally.saved.len() == n && secs > 0.0 {
                report.elapsed_s = Some(secs);
                report.file_mbps = Some(file.size as f64 / secs / 1e6);
                report.file_mibps = Some(file.size as f64 / secs / (1024.0 * 1024.0));
                let fastest = (first - t0).as_secs_f64();
                if fastest > 0.0 {
                    report.fastest_receiver_mbps = Some(file.size as f64 / fastest / 1e6);
                }
            }
        }
    }
    let verified = match outcome {
        Ok(()) => verify_all(&tally, file).await,
        Err(e) => Err(e),
    };
    match verified {
        Ok(()) => report.ok = true,
        Err(e) => {
            let mut why = format!("{e:#}");
            for a in &also {
                why += &format!("; then {a}");
            }
            report.failure = Some(why);
        }
    }
    // The download folders go with the room.
    drop(room);
    report
}

/// Where the phases begin and end, in chat sequence numbers and time.
#[derive(Debug, Default)]
struct Marks {
    baseline_from: usize,
    transfer_from: Option<usize>,
    transfer_to: Option<usize>,
    t0: Option<Instant>,
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    plan: &Plan,
    pace: Option<u64>,
    keys: &Keys,
    file: &Source,
    scratch: &Path,
    deadline: tokio::time::Instant,
    tally: &mut Tally,
    marks: &mut Marks,
    slot: &mut Option<Room>,
) -> Result<()> {
    let setup = Setup {
        pace,
        ..plan.setup.clone()
    };
    let join_by = deadline.min(tokio::time::Instant::now() + plan.join_timeout);
    let room = slot.insert(
        Room::start(&setup, keys, scratch, join_by)
            .await
            .context("setting up the room")?,
    );
    let mut tick = tokio::time::interval(plan.chat_every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);

    // Baseline: chat, no transfer.
    let until = deadline.min(tokio::time::Instant::now() + plan.baseline);
    marks.baseline_from = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            _ = tick.tick() => tally.chat(room)?,
            n = room.notes.recv() => match n {
                Some(n) => tally.take(n)?,
                None => bail!("every driver ended"),
            },
        }
    }

    // The transfer, with the same chat going on.
    let rate = pace.map_or(FLOOR_RATE, |p| p.max(1) as f64);
    let expected = Duration::from_secs_f64(file.size as f64 / rate);
    let until = deadline.min(tokio::time::Instant::now() + SLACK + expected * 3);
    marks.transfer_from = Some(tally.chat_sent.len());
    let t0 = Instant::now();
    marks.t0 = Some(t0);
    let Some(sender) = room.cmds.get(SENDER) else {
        bail!("no sender");
    };
    sender
        .send(Request::SendFile {
            path: file.path.clone(),
            to: None,
        })
        .await
        .context("the sender's driver ended")?;
    let receivers = room.peers() - 2;
    while tally.saved.len() < receivers {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => bail!(
                "no file at {} of {receivers} receivers after {:.0} s",
                receivers - tally.saved.len(),
                t0.elapsed().as_secs_f64()
            ),
            _ = tick.tick() => tally.chat(room)?,
            n = room.notes.recv() => match n {
                Some(n) => tally.take(n)?,
                None => bail!("every driver ended"),
            },
        }
    }
    marks.transfer_to = Some(tally.chat_sent.len());

    // The last chat lines of the transfer may still be on their way.
    let until = deadline.min(tokio::time::Instant::now() + CHAT_DRAIN);
    while !tally.chat_complete() {
        match timeout_at(until, room.notes.recv()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(n)) => tally.take(n)?,
        }
    }
    Ok(())
}

/// Checks every saved file against the source, off the async threads.
async fn verify_all(tally: &Tally, file: &Source) -> Result<()> {
    let paths: Vec<(usize, PathBuf)> = tally
        .saved
        .iter()
        .map(|(peer, (_, path))| (*peer, path.clone()))
        .collect();
    let file = file.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        for (peer, path) in paths {
            source::verify(&path, &file).with_context(|| role(peer))?;
        }
        Ok(())
    })
    .await
    .context("the check thread failed")?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(peer: usize, what: What) -> Note {
        Note {
            peer,
            at: Instant::now(),
            what,
        }
    }

    #[test]
    fn trouble_ends_a_try_and_chat_is_counted_per_member() {
        let mut t = Tally {
            peers: 4,
            ..Tally::default()
        };
        let t0 = Instant::now();
        t.chat_sent = vec![t0, t0];
        for peer in 1..4 {
            t.take(Note {
                peer,
                at: t0 + Duration::from_millis(peer as u64),
                what: What::Chat(0),
            })
            .unwrap();
        }
        t.take(note(2, What::Chat(0))).unwrap(); // a duplicate is not a sample
        t.take(note(ADMIN, What::Warning("ignored".into())))
            .unwrap();
        assert_eq!(t.warnings, 0);
        let l = t.latency(0, 2);
        assert_eq!((l.expected, l.samples, l.lost), (6, 3, 3));
        assert_eq!(l.p50_ms, Some(2.0));
        assert_eq!(l.max_ms, Some(3.0));
        assert!(!t.chat_complete());

        assert!(t
            .take(note(3, What::Lost("was disconnected".into())))
            .is_err());
        assert!(t.take(note(2, What::FileFailed("x".into()))).is_err());
        assert!(t.take(note(2, What::Epoch(3))).is_err());
        assert!(t.take(note(2, What::Epoch(4))).is_ok());
        assert!(t.take(note(2, What::Offered { accepted: false })).is_err());
        assert!(t.take(note(ADMIN, What::Saved("x".into()))).is_err());
        t.take(note(3, What::Saved("y".into()))).unwrap();
        assert_eq!(t.saved.len(), 1);
    }
}
