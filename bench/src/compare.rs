//! The same scenarios against any of the three servers ([`Proto`]), through
//! the same client code ([`crate::peers`]), for `scripts/bench-peers.sh`:
//! throughput (one publisher, N subscribers), latency at a fixed rate, idle
//! memory per subscribed connection, and TLS accepts per second.
//!
//! Every scenario takes a deadline and never waits past it; each prints one
//! JSON object (the script gathers medians and ratios).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::payload::{now_ns, parse, HEADER};
use crate::peers::{publisher, subscribe, Proto, Subscriber, Topic};
use crate::procfs;
use crate::report::{pct, percentile};
use crate::seq::{Seen, SeqTracker};
use crate::tls::Target;

/// A payload of `size` bytes: sequence, send time, zero padding.
fn stamp(buf: &mut [u8], seq: u64, ts: u64) {
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..HEADER].copy_from_slice(&ts.to_be_bytes());
}

async fn subscribers(
    proto: Proto,
    target: &Arc<Target>,
    topic: &Topic,
    n: usize,
    parallel: usize,
    deadline: tokio::time::Instant,
) -> Result<Vec<Subscriber>> {
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (target, topic, gate) = (Arc::clone(target), topic.clone(), Arc::clone(&gate));
        set.spawn(async move {
            let _p = gate.acquire_owned().await.context("gate closed")?;
            subscribe(proto, &target, &topic).await
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = timeout_at(deadline, set.join_next())
        .await
        .context("timed out connecting subscribers")?
    {
        out.push(r.context("a subscriber task failed")??);
    }
    Ok(out)
}

/// What one subscriber saw.
#[derive(Debug, Default)]
struct Seen1 {
    distinct: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    latencies_ns: Vec<u64>,
    error: Option<String>,
}

fn spawn_reader(
    mut sub: Subscriber,
    messages: u64,
    measure_from: u64,
    deadline: tokio::time::Instant,
    set: &mut JoinSet<Seen1>,
) {
    set.spawn(async move {
        let mut seen = Seen1::default();
        let mut track = SeqTracker::new(messages);
        while !track.complete() {
            match timeout_at(deadline, sub.next()).await {
                Err(_) => break,
                Ok(Ok(Some(p))) => {
                    let now = Instant::now();
                    let Some((seq, ts)) = parse(&p) else {
                        track.record_malformed();
                        continue;
                    };
                    if track.record(seq) == Seen::New {
                        seen.first.get_or_insert(now);
                        seen.last = Some(now);
                        if seq >= measure_from {
                            seen.latencies_ns.push(now_ns().saturating_sub(ts));
                        }
                    }
                }
                Ok(Ok(None)) => {
                    seen.error = Some("server closed the connection".into());
                    break;
                }
                Ok(Err(e)) => {
                    seen.error = Some(format!("{e:#}"));
                    break;
                }
            }
        }
        seen.distinct = track.distinct;
        seen
    });
}

/// The throughput run's result.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// Which server.
    pub proto: String,
    /// Subscribers.
    pub subs: usize,
    /// Payload bytes.
    pub size: usize,
    /// Messages published.
    pub messages: u64,
    /// Deliveries counted (distinct per subscriber).
    pub delivered: u64,
    /// Deliveries per second, first to last receive across subscribers.
    pub delivered_per_sec: f64,
    /// Share of expected deliveries missing, percent.
    pub loss_pct: f64,
    /// Server CPU time per delivery, µs (when its pid was given).
    pub server_cpu_us_per_delivery: Option<f64>,
    /// The server's peak RSS over its life, KiB (when its pid was given;
    /// `scripts/bench-peers.sh` starts a fresh server for each run).
    pub server_peak_rss_kib: Option<u64>,
    /// Subscriber errors, if any.
    pub errors: Vec<String>,
}

/// One publisher sends `messages` payloads of `size` bytes as fast as the
/// server takes them to `subs` subscribers.
#[allow(clippy::too_many_arguments)]
pub async fn throughput(
    proto: Proto,
    target: Arc<Target>,
    subs: usize,
    size: usize,
    messages: u64,
    batch_bytes: usize,
    server_pid: Option<u32>,
    parallel: usize,
    drain: Duration,
    deadline: tokio::time::Instant,
) -> Result<Throughput> {
    if size < HEADER {
        bail!("payload size {size} is below the {HEADER}-byte header");
    }
    let topic = Topic::random()?;
    let readers = subscribers(proto, &target, &topic, subs, parallel, deadline).await?;
    let mut pubr = timeout_at(deadline, publisher(proto, &target, &topic))
        .await
        .context("timed out connecting the publisher")??;
    pubr.drain_in_background();
    let ticks0 = server_pid.map(procfs::cpu_ticks).transpose()?;
    let mut set = JoinSet::new();
    for s in readers {
        spawn_reader(s, messages, u64::MAX, deadline, &mut set);
    }
    let mut payload = vec![0u8; size];
    let mut buf = BytesMut::with_capacity(batch_bytes + size + 128);
    for seq in 0..messages {
        stamp(&mut payload, seq, now_ns());
        pubr.encode(&payload, &mut buf)?;
        if buf.len() >= batch_bytes {
            timeout_at(deadline, pubr.write(&mut buf))
                .await
                .context("timed out publishing")??;
        }
    }
    if !buf.is_empty() {
        timeout_at(deadline, pubr.write(&mut buf))
            .await
            .context("timed out publishing")??;
    }
    let drain_until = (tokio::time::Instant::now() + drain).min(deadline);
    let mut results = Vec::new();
    while let Ok(Some(r)) = timeout_at(drain_until, set.join_next()).await {
        results.push(r.context("a subscriber task failed")?);
    }
    set.abort_all();
    let ticks1 = server_pid.map(procfs::cpu_ticks).transpose()?;
    let delivered: u64 = results.iter().map(|r| r.distinct).sum();
    let first = results.iter().filter_map(|r| r.first).min();
    let last = results.iter().filter_map(|r| r.last).max();
    let secs = match (first, last) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => f64::NAN,
    };
    let expected = messages * subs as u64;
    let cpu = match (ticks0, ticks1) {
        (Some(a), Some(b)) if delivered > 0 => {
            Some((b - a) as f64 / procfs::clk_tck() as f64 * 1e6 / delivered as f64)
        }
        _ => None,
    };
    Ok(Throughput {
        proto: proto.to_string(),
        subs,
        size,
        messages,
        delivered,
        delivered_per_sec: delivered as f64 / secs,
        loss_pct: pct(expected.saturating_sub(delivered), expected),
        server_cpu_us_per_delivery: cpu,
        server_peak_rss_kib: server_pid.and_then(|pid| procfs::peak_rss_kib(pid).ok()),
        errors: results.into_iter().filter_map(|r| r.error).collect(),
    })
}

/// The latency run's result.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Which server.
    pub proto: String,
    /// Subscribers.
    pub subs: usize,
    /// Messages per second.
    pub rate: f64,
    /// Samples (measured messages × subscribers that got them).
    pub samples: usize,
    /// Median one-way latency, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Largest, µs.
    pub max_us: f64,
    /// Share of expected deliveries missing, percent.
    pub loss_pct: f64,
}

/// Publishes at `rate` per second for `warmup + seconds`; latencies of the
/// messages after the warm-up.
#[allow(clippy::too_many_arguments)]
pub async fn latency(
    proto: Proto,
    target: Arc<Target>,
    subs: usize,
    size: usize,
    rate: f64,
    warmup: Duration,
    seconds: Duration,
    parallel: usize,
    deadline: tokio::time::Instant,
) -> Result<Latency> {
    if !(rate > 0.0 && rate <= 100_000.0) {
        bail!("rate must be in (0, 100000] messages per second");
    }
    let topic = Topic::random()?;
    let readers = subscribers(proto, &target, &topic, subs, parallel, deadline).await?;
    let mut pubr = timeout_at(deadline, publisher(proto, &target, &topic))
        .await
        .context("timed out connecting the publisher")??;
    pubr.drain_in_background();
    let warm = (warmup.as_secs_f64() * rate).round() as u64;
    let measured = (seconds.as_secs_f64() * rate).round() as u64;
    let messages = warm + measured;
    let mut set = JoinSet::new();
    for s in readers {
        spawn_reader(s, messages, warm, deadline, &mut set);
    }
    let mut payload = vec![0u8; size.max(HEADER)];
    let mut buf = BytesMut::new();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for seq in 0..messages {
        timeout_at(deadline, tick.tick())
            .await
            .context("timed out")?;
        stamp(&mut payload, seq, now_ns());
        pubr.encode(&payload, &mut buf)?;
        timeout_at(deadline, pubr.write(&mut buf))
            .await
            .context("timed out publishing")??;
    }
    let drain_until = (tokio::time::Instant::now() + Duration::from_secs(2)).min(deadline);
    let mut all = Vec::new();
    let mut got = 0u64;
    while let Ok(Some(r)) = timeout_at(drain_until, set.join_next()).await {
        let r = r.context("a subscriber task failed")?;
        got += r.distinct;
        all.extend(r.latencies_ns);
    }
    set.abort_all();
    all.sort_unstable();
    let us = |v: Option<u64>| v.map_or(f64::NAN, |ns| ns as f64 / 1000.0);
    let expected = messages * subs as u64;
    Ok(Latency {
        proto: proto.to_string(),
        subs,
        rate,
        samples: all.len(),
        p50_us: us(percentile(&all, 50.0)),
        p99_us: us(percentile(&all, 99.0)),
        max_us: us(all.last().copied()),
        loss_pct: pct(expected.saturating_sub(got), expected),
    })
}

/// The idle-memory run's result.
#[derive(Debug, Serialize)]
pub struct Idle {
    /// Which server.
    pub proto: String,
    /// Connections held open, each subscribed.
    pub conns: usize,
    /// Server RSS before, KiB.
    pub rss_before_kib: u64,
    /// Server RSS with every connection open, KiB.
    pub rss_after_kib: u64,
    /// Growth per connection, KiB.
    pub kib_per_conn: f64,
    /// Connections per room (topic).
    pub room_size: usize,
    /// Connections opened and subscribed per second (TLS, greeting,
    /// subscription; `parallel` at a time).
    pub opened_per_sec: f64,
}

/// Opens `conns` subscribed connections (topics of `room_size`), waits
/// `settle`, and reads the server's RSS growth.
#[allow(clippy::too_many_arguments)]
pub async fn idle(
    proto: Proto,
    target: Arc<Target>,
    conns: usize,
    room_size: usize,
    server_pid: u32,
    parallel: usize,
    settle: Duration,
    deadline: tokio::time::Instant,
) -> Result<Idle> {
    let before = procfs::rss_kib(server_pid)?;
    let start = std::time::Instant::now();
    let mut held = Vec::with_capacity(conns);
    let mut left = conns;
    while left > 0 {
        let n = left.min(room_size.max(1));
        let topic = Topic::random()?;
        held.extend(subscribers(proto, &target, &topic, n, parallel, deadline).await?);
        left -= n;
    }
    let opened_per_sec = conns as f64 / start.elapsed().as_secs_f64().max(1e-9);
    tokio::time::sleep(settle).await;
    let after = procfs::rss_kib(server_pid)?;
    drop(held);
    Ok(Idle {
        proto: proto.to_string(),
        conns,
        rss_before_kib: before,
        rss_after_kib: after,
        kib_per_conn: after.saturating_sub(before) as f64 / conns.max(1) as f64,
        room_size,
        opened_per_sec,
    })
}

/// The accept-rate run's result.
#[derive(Debug, Serialize)]
pub struct Accepts {
    /// Which server.
    pub proto: String,
    /// Concurrent connectors.
    pub connectors: usize,
    /// Completed TLS sessions (connect, handshake, protocol greeting, close).
    pub completed: u64,
    /// Per second.
    pub per_sec: f64,
    /// Failed attempts.
    pub failed: u64,
}

/// `connectors` tasks each open a connection, complete TLS and the
/// protocol's greeting (relay hello/welcome, NATS INFO + CONNECT + PONG,
/// MQTT CONNACK), close it, and start again, for `seconds`.
pub async fn accepts(
    proto: Proto,
    target: Arc<Target>,
    connectors: usize,
    seconds: Duration,
) -> Result<Accepts> {
    let until = tokio::time::Instant::now() + seconds;
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..connectors.max(1) {
        let target = Arc::clone(&target);
        set.spawn(async move {
            let (mut ok, mut bad) = (0u64, 0u64);
            let topic = match Topic::random() {
                Ok(t) => t,
                Err(_) => return (0, 1),
            };
            while tokio::time::Instant::now() < until {
                match timeout_at(
                    until + Duration::from_secs(5),
                    publisher(proto, &target, &topic),
                )
                .await
                {
                    Ok(Ok(p)) => {
                        ok += 1;
                        drop(p);
                    }
                    _ => bad += 1,
                }
            }
            (ok, bad)
        });
    }
    let (mut ok, mut bad) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (o, b) = r.context("a connector failed")?;
        ok += o;
        bad += b;
    }
    Ok(Accepts {
        proto: proto.to_string(),
        connectors,
        completed: ok,
        per_sec: ok as f64 / started.elapsed().as_secs_f64(),
        failed: bad,
    })
}

/// One rate step of the many-rooms run.
#[derive(Debug, Serialize)]
pub struct Step {
    /// Messages per second each member published.
    pub rate_per_member: f64,
    /// All members together, messages per second.
    pub total_rate: f64,
    /// 99th percentile one-way latency of the step's deliveries, µs.
    pub p99_us: f64,
    /// Share of the step's expected deliveries missing, percent.
    pub loss_pct: f64,
}

/// The many-rooms run's result.
#[derive(Debug, Serialize)]
pub struct ManyRooms {
    /// Which server.
    pub proto: String,
    /// Rooms (topics).
    pub rooms: usize,
    /// Members per room, each subscribed and publishing.
    pub members: usize,
    /// Every step run, in order.
    pub steps: Vec<Step>,
    /// The highest total rate whose p99 stayed within the limit with under
    /// 1 % loss (0 if none did).
    pub best_total_rate: f64,
}

/// Payload bytes 16..20: the sender's member number; 20..24: the step.
const MEMBER_AT: usize = HEADER;

/// `rooms` rooms of `members`, every member subscribed and publishing on the
/// same connection at a fixed rate; the rate rises through `rates` (per
/// member) for `step` each until the p99 of a step passes `p99_limit` (or a
/// step loses more than 1 %).
#[allow(clippy::too_many_arguments)]
pub async fn many_rooms(
    proto: Proto,
    target: Arc<Target>,
    rooms: usize,
    members: usize,
    rates: &[f64],
    step: Duration,
    p99_limit: Duration,
    parallel: usize,
    deadline: tokio::time::Instant,
) -> Result<ManyRooms> {
    use std::sync::Mutex;
    let size = 256usize;
    if members < 2 {
        bail!("a room needs at least two members");
    }
    // samples[step] = latencies (ns) of that step's deliveries; got[step] = count.
    let samples: Arc<Mutex<Vec<Vec<u64>>>> = Arc::new(Mutex::new(vec![Vec::new(); rates.len()]));
    let mut writers = Vec::with_capacity(rooms);
    let mut readers = JoinSet::new();
    let mut member_no = 0u32;
    for _ in 0..rooms {
        let topic = Topic::random()?;
        let subs = subscribers(proto, &target, &topic, members, parallel, deadline).await?;
        let mut room = Vec::with_capacity(members);
        for mut s in subs {
            let me = member_no;
            member_no += 1;
            let Some(p) = s.take_publisher() else {
                bail!("no write side");
            };
            room.push((me, p));
            let samples = Arc::clone(&samples);
            readers.spawn(async move {
                while let Ok(Ok(Some(p))) = timeout_at(deadline, s.next()).await {
                    let (Some((_, ts)), Some(who), Some(st)) = (
                        parse(&p),
                        p.get(MEMBER_AT..MEMBER_AT + 4),
                        p.get(MEMBER_AT + 4..MEMBER_AT + 8),
                    ) else {
                        continue;
                    };
                    let who = u32::from_be_bytes([who[0], who[1], who[2], who[3]]);
                    if who == me {
                        continue; // MQTT 3.1.1 echoes our own publishes
                    }
                    let st = u32::from_be_bytes([st[0], st[1], st[2], st[3]]) as usize;
                    let lat = now_ns().saturating_sub(ts);
                    if let Ok(mut s) = samples.lock() {
                        if let Some(v) = s.get_mut(st) {
                            v.push(lat);
                        }
                    }
                }
            });
        }
        writers.push(room);
    }
    let mut steps = Vec::new();
    let mut best = 0.0f64;
    let writers = Arc::new(tokio::sync::Mutex::new(writers));
    for (i, &rate) in rates.iter().enumerate() {
        if tokio::time::Instant::now() + step + Duration::from_secs(2) > deadline {
            break;
        }
        // One task per room sends for all its members in turn, at
        // rate × members per second.
        let mut senders = JoinSet::new();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let n_msgs = (rate * step.as_secs_f64()).round() as u64;
        for r in 0..rooms {
            let writers = Arc::clone(&writers);
            let sent = Arc::clone(&sent);
            senders.spawn(async move {
                let mut all = writers.lock().await;
                let Some(room) = all.get_mut(r) else { return };
                let mut room = std::mem::take(room);
                drop(all);
                let period = Duration::from_secs_f64(1.0 / (rate * room.len() as f64));
                // Rooms start spread over one period, so that they do not
                // all send in the same instant (a burst the client itself
                // would queue).
                let offset = period.mul_f64(r as f64 / rooms as f64);
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut payload = vec![0u8; size];
                let mut buf = BytesMut::new();
                let mut seq = 0u64;
                'outer: for _ in 0..n_msgs {
                    for (me, p) in room.iter_mut() {
                        tick.tick().await;
                        stamp(&mut payload, seq, now_ns());
                        payload[MEMBER_AT..MEMBER_AT + 4].copy_from_slice(&me.to_be_bytes());
                        payload[MEMBER_AT + 4..MEMBER_AT + 8]
                            .copy_from_slice(&(i as u32).to_be_bytes());
                        seq += 1;
                        if p.encode(&payload, &mut buf).is_err() || p.write(&mut buf).await.is_err()
                        {
                            break 'outer;
                        }
                        sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                let mut all = writers.lock().await;
                if let Some(slot) = all.get_mut(r) {
                    *slot = room;
                }
            });
        }
        let step_end = tokio::time::Instant::now() + step + Duration::from_secs(5);
        while let Ok(Some(_)) = timeout_at(step_end.min(deadline), senders.join_next()).await {}
        senders.abort_all();
        tokio::time::sleep(Duration::from_secs(1)).await; // last deliveries
        let mut lat = samples
            .lock()
            .map(|mut s| s.get_mut(i).map(std::mem::take).unwrap_or_default())
            .unwrap_or_default();
        lat.sort_unstable();
        let expected = sent.load(std::sync::atomic::Ordering::Relaxed) * (members as u64 - 1);
        let p99 = percentile(&lat, 99.0).map_or(f64::INFINITY, |ns| ns as f64 / 1000.0);
        let loss = pct(expected.saturating_sub(lat.len() as u64), expected);
        let total = rate * (rooms * members) as f64;
        steps.push(Step {
            rate_per_member: rate,
            total_rate: total,
            p99_us: p99,
            loss_pct: loss,
        });
        if p99 > p99_limit.as_secs_f64() * 1e6 || loss > 1.0 {
            break;
        }
        best = total;
    }
    readers.abort_all();
    Ok(ManyRooms {
        proto: proto.to_string(),
        rooms,
        members,
        steps,
        best_total_rate: best,
    })
}
