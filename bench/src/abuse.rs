//! Abuse: what a relay must shrug off while an honest room chats (for
//! `scripts/soak-relay.sh`).
//!
//! - A population of connections that stall — after TCP, in the middle of
//!   a TLS handshake, after TLS without a hello — kept at its size for the
//!   whole run: each one the relay closes is opened again.
//! - A steady stream of garbage: plain bytes where TLS should be, and a
//!   malformed frame after a proper hello.
//! - Slow readers: rooms of them, each flooded by one publisher as fast as
//!   the relay takes it, each reader taking one byte a second.
//!
//! Every abusive connection is timed from its start (for a slow reader:
//! from the start of its room's flood) until the relay ends it, and judged
//! against the timeout that should end it. Connections come from many
//! loopback source addresses (127.0.0.0/8), at most `per_source` from each,
//! as abuse from many machines would, so that the relay's per-address
//! limit does not turn them away before its timeouts are tested.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use wire::{encode_frame, ClientFrame, RelayFrame, DEFAULT_MAX_FRAME};

use crate::conn::{hello, random_room};
use crate::procfs;
use crate::report::percentile;
use crate::tls::Target;

/// Payload of the flooders' messages.
const FLOOD_PAYLOAD: usize = 4096;
/// Frames the flooders write at once.
const FLOOD_BATCH: usize = 16;
/// Most abusive connections per run (the stalled population, the slow
/// readers and the garbage in flight together).
pub const MAX_ABUSERS: usize = 50_000;
/// File descriptors kept free besides one per connection.
const SPARE_FDS: u64 = 256;
/// How often the stalled population is counted.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// How to run an abuse run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connections that open TCP and send nothing.
    pub tcp_stall: usize,
    /// Connections that send the first part of a TLS ClientHello and stop.
    pub handshake_stall: usize,
    /// Connections that complete TLS and never say hello.
    pub hello_stall: usize,
    /// New garbage connections per second (alternately plain bytes instead
    /// of TLS, and a malformed frame after a hello).
    pub garbage_rate: f64,
    /// Slow readers, in rooms of `readers_per_room`, each room flooded by a
    /// publisher of its own.
    pub slow_readers: usize,
    /// Slow readers per flooded room.
    pub readers_per_room: usize,
    /// How long the abuse goes on.
    pub run: Duration,
    /// The first source address; the next ones follow it.
    pub first_source: Ipv4Addr,
    /// Most connections from one source address.
    pub per_source: usize,
    /// The relay's TLS handshake timeout (bound for the first two kinds).
    pub handshake_timeout: Duration,
    /// The relay's hello timeout (bound for the third).
    pub hello_timeout: Duration,
    /// Within how long of its room's flood a slow reader must be cut (the
    /// relay's slow-reader timeout and the time its last words may take).
    pub slow_within: Duration,
    /// Allowance on every bound (scheduling, a loaded machine).
    pub slack: Duration,
    /// Connection attempts in flight.
    pub parallel: usize,
    /// The relay's pid, to sample its RSS.
    pub relay_pid: Option<u32>,
}

/// The kinds of abusive connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TcpStall,
    HandshakeStall,
    HelloStall,
    GarbagePlain,
    GarbageFrame,
    SlowReader,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::TcpStall,
        Kind::HandshakeStall,
        Kind::HelloStall,
        Kind::GarbagePlain,
        Kind::GarbageFrame,
        Kind::SlowReader,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::TcpStall => "tcp_stall",
            Kind::HandshakeStall => "handshake_stall",
            Kind::HelloStall => "hello_stall",
            Kind::GarbagePlain => "garbage_plain",
            Kind::GarbageFrame => "garbage_frame",
            Kind::SlowReader => "slow_reader",
        }
    }

    /// What should end such a connection, in words.
    fn ended_by(self) -> &'static str {
        match self {
            Kind::TcpStall | Kind::HandshakeStall => "handshake timeout",
            Kind::HelloStall => "hello timeout",
            Kind::GarbagePlain => "TLS refuses it at once",
            Kind::GarbageFrame => "bad frame, at once",
            Kind::SlowReader => "slow-reader timeout and last words",
        }
    }

    fn bound(self, o: &Options) -> Duration {
        let own = match self {
            Kind::TcpStall | Kind::HandshakeStall => o.handshake_timeout,
            Kind::HelloStall => o.hello_timeout,
            Kind::GarbagePlain | Kind::GarbageFrame => Duration::ZERO,
            Kind::SlowReader => o.slow_within,
        };
        own + o.slack
    }

    /// Stalls are ended by a timer: one ended much sooner was turned away
    /// (refused) rather than timed out.
    fn is_stall(self) -> bool {
        matches!(
            self,
            Kind::TcpStall | Kind::HandshakeStall | Kind::HelloStall
        )
    }
}

/// What happened to the connections of one kind.
#[derive(Debug, Default)]
struct Tally {
    opened: AtomicU64,
    open_failed: AtomicU64,
    /// Seconds from start to close, one per closed connection (ms).
    closed_ms: Mutex<Vec<u64>>,
    /// Connections still open when the run ended, with their age (ms).
    open_at_end_ms: Mutex<Vec<u64>>,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn closed(&self, after: Duration) {
        if let Ok(mut v) = self.closed_ms.lock() {
            v.push(after.as_millis() as u64);
        }
    }

    fn still_open(&self, age: Duration) {
        if let Ok(mut v) = self.open_at_end_ms.lock() {
            v.push(age.as_millis() as u64);
        }
    }

    fn failed(&self, e: &anyhow::Error) {
        self.open_failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert_with(|| format!("{e:#}"));
        }
    }
}

/// The result for one kind of abusive connection.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    /// Which kind.
    pub kind: &'static str,
    /// What should end it.
    pub ended_by: &'static str,
    /// Its timeout plus the allowance, seconds.
    pub bound_s: f64,
    /// Connections opened (TCP established; for a slow reader: joined).
    pub opened: u64,
    /// Connection attempts that failed before that.
    pub open_failed: u64,
    /// The first such failure.
    pub first_error: Option<String>,
    /// Connections the relay ended during the run.
    pub closed: u64,
    /// Of those, ended later than the bound.
    pub late: u64,
    /// Of those (stalls only), ended before half their timeout: turned
    /// away rather than timed out.
    pub early: u64,
    /// Still open at the end although older than the bound.
    pub overdue: u64,
    /// Still open at the end, younger than the bound.
    pub pending: u64,
    /// Median time to close, seconds.
    pub close_p50_s: Option<f64>,
    /// Longest time to close, seconds.
    pub close_max_s: Option<f64>,
}

/// The result of one abuse run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `"abuse"`.
    pub bench: &'static str,
    /// How long the abuse went on, seconds.
    pub seconds: f64,
    /// The stalled population asked for.
    pub stalled: usize,
    /// Seconds until it was first reached (None: never).
    pub stalled_reached_s: Option<f64>,
    /// Garbage connections per second asked for.
    pub garbage_rate: f64,
    /// Source addresses used.
    pub sources: usize,
    /// Per kind.
    pub kinds: Vec<KindReport>,
    /// Frames the flooders wrote.
    pub flood_frames: u64,
    /// Floods that ended because every reader of the room was cut.
    pub floods_ended: u64,
    /// Relay RSS before the run, KiB.
    pub rss_before_kib: Option<u64>,
    /// The relay's peak RSS over its life when the abuse ended (`VmHWM`), KiB.
    pub rss_peak_kib: Option<u64>,
    /// Every connection closed within its bound and none was overdue.
    pub all_in_time: bool,
}

impl Report {
    /// One human-readable line per kind, and one overall.
    pub fn human(&self) -> String {
        let mut s = format!(
            "abuse: {:.0} s, {} stalled connections held (reached in {}), {:.0} garbage \
             connections/s, from {} source addresses; relay RSS {} → peak {} KiB",
            self.seconds,
            self.stalled,
            self.stalled_reached_s
                .map_or("never".into(), |t| format!("{t:.1} s")),
            self.garbage_rate,
            self.sources,
            self.rss_before_kib.map_or("?".into(), |v| v.to_string()),
            self.rss_peak_kib.map_or("?".into(), |v| v.to_string()),
        );
        for k in &self.kinds {
            s += &format!(
                "\n  {:<16} opened {:>6}, closed {:>6} (p50 {}, max {}; bound {:.0} s): {} late, \
                 {} early, {} overdue, {} pending, {} failed to open",
                k.kind,
                k.opened,
                k.closed,
                k.close_p50_s.map_or("-".into(), |v| format!("{v:.2} s")),
                k.close_max_s.map_or("-".into(), |v| format!("{v:.2} s")),
                k.bound_s,
                k.late,
                k.early,
                k.overdue,
                k.pending,
                k.open_failed,
            );
        }
        s += &format!(
            "\n  every abusive connection closed in time: {}",
            if self.all_in_time { "yes" } else { "NO" }
        );
        s
    }
}

/// Hands out source addresses, `per_source` connections each.
#[derive(Debug)]
struct Sources {
    first: u32,
    per_source: usize,
    next: usize,
}

impl Sources {
    fn new(first: Ipv4Addr, per_source: usize) -> Result<Sources> {
        if !first.is_loopback() {
            bail!("source addresses must be loopback (127.0.0.0/8): {first}");
        }
        Ok(Sources {
            first: u32::from(first),
            per_source: per_source.max(1),
            next: 0,
        })
    }

    /// A new block of `n` connection places, starting on a fresh address.
    fn block(&mut self, n: usize) -> Result<SourceBlock> {
        let start = self.next.div_ceil(self.per_source) * self.per_source;
        let end = start + n.max(1);
        let last = u32::try_from((end - 1) / self.per_source)
            .ok()
            .and_then(|k| self.first.checked_add(k))
            .ok_or_else(|| anyhow!("out of source addresses"))?;
        if !Ipv4Addr::from(last).is_loopback() {
            bail!("too many connections for the loopback source addresses");
        }
        self.next = end;
        Ok(SourceBlock {
            first: self.first,
            per_source: self.per_source,
            start,
        })
    }

    /// Addresses handed out so far.
    fn used(&self) -> usize {
        self.next.div_ceil(self.per_source)
    }
}

#[derive(Debug, Clone, Copy)]
struct SourceBlock {
    first: u32,
    per_source: usize,
    start: usize,
}

impl SourceBlock {
    fn addr(&self, i: usize) -> IpAddr {
        let k = ((self.start + i) / self.per_source) as u32;
        IpAddr::V4(Ipv4Addr::from(self.first.wrapping_add(k)))
    }
}

/// Everything the tasks share.
struct Ctx {
    target: Arc<Target>,
    gate: Arc<Semaphore>,
    stop: CancellationToken,
    tallies: Vec<Tally>,
    flood_frames: AtomicU64,
    floods_ended: AtomicU64,
    /// Stalled connections open now.
    stalled_open: AtomicU64,
}

impl Ctx {
    fn tally(&self, kind: Kind) -> &Tally {
        // `Kind::ALL` lists the kinds in declaration order.
        &self.tallies[kind as usize]
    }

    /// Waits `d` before another attempt; false if the run ended meanwhile.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    }
}

/// Runs the abuse against `target` until `opts.run` has passed (never past
/// `deadline`).
pub async fn run(target: Arc<Target>, opts: &Options, deadline: Instant) -> Result<Report> {
    if !(0.0..=10_000.0).contains(&opts.garbage_rate) {
        bail!("--garbage-rate must be between 0 and 10000");
    }
    let stalled = opts.tcp_stall + opts.handshake_stall + opts.hello_stall;
    let rooms = if opts.slow_readers == 0 {
        0
    } else {
        opts.slow_readers.div_ceil(opts.readers_per_room.max(1))
    };
    let garbage_in_flight = ((opts.garbage_rate * 4.0).ceil() as usize).max(1);
    let total = stalled + opts.slow_readers + rooms + garbage_in_flight;
    if total > MAX_ABUSERS {
        bail!("at most {MAX_ABUSERS} abusive connections at once ({total} asked)");
    }
    procfs::check_fd_limit(total, SPARE_FDS)?;
    if let Some(pid) = opts.relay_pid {
        procfs::check_pid(pid)?;
    }
    let mut sources = Sources::new(opts.first_source, opts.per_source)?;
    let ctx = Arc::new(Ctx {
        target,
        gate: Arc::new(Semaphore::new(opts.parallel.max(1))),
        stop: CancellationToken::new(),
        tallies: Kind::ALL.iter().map(|_| Tally::default()).collect(),
        flood_frames: AtomicU64::new(0),
        floods_ended: AtomicU64::new(0),
        stalled_open: AtomicU64::new(0),
    });
    let rss_before = opts.relay_pid.map(procfs::rss_kib).transpose()?;
    let start = Instant::now();
    let end = (start + opts.run).min(deadline);
    let tend = tokio::time::Instant::from_std(end);

    let mut tasks = Vec::new();
    let per_room = opts.readers_per_room.max(1);
    for r in 0..rooms {
        let readers = per_room.min(opts.slow_readers - r * per_room);
        let block = sources.block(readers + 1)?;
        tasks.push(tokio::spawn(flooded_room_slot(
            Arc::clone(&ctx),
            readers,
            block,
            opts.slow_within + opts.slack * 2,
            tend,
        )));
    }
    for (kind, n) in [
        (Kind::TcpStall, opts.tcp_stall),
        (Kind::HandshakeStall, opts.handshake_stall),
        (Kind::HelloStall, opts.hello_stall),
    ] {
        let block = sources.block(n)?;
        for i in 0..n {
            let ctx = Arc::clone(&ctx);
            tasks.push(tokio::spawn(stall_slot(ctx, kind, block.addr(i), tend)));
        }
    }
    let garbage_block = sources.block(garbage_in_flight)?;
    let garbage = tokio::spawn(garbage_stream(
        Arc::clone(&ctx),
        opts.garbage_rate,
        garbage_block,
        garbage_in_flight,
        tend,
    ));

    // Watch the population until the end.
    let mut reached = None;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(tend) => break,
            _ = tick.tick() => {}
        }
        if reached.is_none() && ctx.stalled_open.load(Ordering::Relaxed) >= stalled as u64 {
            reached = Some(start.elapsed().as_secs_f64());
        }
    }
    let rss_peak = opts
        .relay_pid
        .and_then(|pid| procfs::peak_rss_kib(pid).ok());
    ctx.stop.cancel();
    let _ = garbage.await;
    for t in tasks {
        let _ = t.await;
    }

    let kinds: Vec<KindReport> = Kind::ALL
        .iter()
        .map(|k| kind_report(*k, ctx.tally(*k), opts))
        .collect();
    let all_in_time = kinds.iter().all(|k| k.late == 0 && k.overdue == 0);
    Ok(Report {
        bench: "abuse",
        seconds: start.elapsed().as_secs_f64(),
        stalled,
        stalled_reached_s: reached,
        garbage_rate: opts.garbage_rate,
        sources: sources.used(),
        kinds,
        flood_frames: ctx.flood_frames.load(Ordering::Relaxed),
        floods_ended: ctx.floods_ended.load(Ordering::Relaxed),
        rss_before_kib: rss_before,
        rss_peak_kib: rss_peak,
        all_in_time,
    })
}

fn kind_report(kind: Kind, t: &Tally, opts: &Options) -> KindReport {
    let bound = kind.bound(opts);
    let bound_ms = bound.as_millis() as u64;
    let mut closed = t.closed_ms.lock().map(|v| v.clone()).unwrap_or_default();
    closed.sort_unstable();
    let open_at_end = t
        .open_at_end_ms
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    let own = bound.saturating_sub(opts.slack);
    let early = if kind.is_stall() {
        let half = (own / 2).as_millis() as u64;
        closed.iter().filter(|ms| **ms < half).count() as u64
    } else {
        0
    };
    KindReport {
        kind: kind.name(),
        ended_by: kind.ended_by(),
        bound_s: bound.as_secs_f64(),
        opened: t.opened.load(Ordering::Relaxed),
        open_failed: t.open_failed.load(Ordering::Relaxed),
        first_error: t.first_error.lock().ok().and_then(|e| e.clone()),
        closed: closed.len() as u64,
        late: closed.iter().filter(|ms| **ms > bound_ms).count() as u64,
        early,
        overdue: open_at_end.iter().filter(|ms| **ms > bound_ms).count() as u64,
        pending: open_at_end.iter().filter(|ms| **ms <= bound_ms).count() as u64,
        close_p50_s: percentile(&closed, 50.0).map(|ms| ms as f64 / 1000.0),
        close_max_s: closed.last().map(|ms| *ms as f64 / 1000.0),
    }
}

/// A place among the connection attempts in flight (held from connect to
/// the end of the handshake, so that no connection waits, opened, for a
/// handshake of its own).
async fn attempt(ctx: &Ctx) -> Result<tokio::sync::SemaphorePermit<'_>> {
    ctx.gate
        .acquire()
        .await
        .map_err(|_| anyhow!("the run is over"))
}

/// Waits until the relay ends `io` (end of stream, or an error such as a
/// reset), reading and dropping whatever it sends.
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(io: &mut S) {
    let mut buf = [0u8; 1024];
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// One place in the stalled population: opens a connection of `kind`,
/// waits for the relay to end it, and opens the next, until `end`.
async fn stall_slot(ctx: Arc<Ctx>, kind: Kind, source: IpAddr, end: tokio::time::Instant) {
    let tally = ctx.tally(kind);
    while tokio::time::Instant::now() < end && !ctx.stop.is_cancelled() {
        let attempt = tokio::select! {
            () = ctx.stop.cancelled() => return,
            c = open_stall(&ctx, kind, source) => c,
        };
        let (mut io, began) = match attempt {
            Ok(x) => x,
            Err(e) => {
                tally.failed(&e);
                // Not a tight loop: the relay may be refusing for a while.
                if !ctx.pause(Duration::from_millis(100)).await {
                    return;
                }
                continue;
            }
        };
        tally.opened.fetch_add(1, Ordering::Relaxed);
        ctx.stalled_open.fetch_add(1, Ordering::Relaxed);
        let ended = tokio::select! {
            () = ctx.stop.cancelled() => false,
            () = io.wait_closed() => true,
        };
        ctx.stalled_open.fetch_sub(1, Ordering::Relaxed);
        if ended {
            tally.closed(began.elapsed());
        } else {
            tally.still_open(began.elapsed());
            return;
        }
    }
}

/// A stalled connection: plain TCP, or TLS.
enum Stalled {
    Tcp(TcpStream),
    Tls(Box<crate::tls::TlsStream>),
}

impl Stalled {
    async fn wait_closed(&mut self) {
        match self {
            Stalled::Tcp(t) => until_closed(t).await,
            Stalled::Tls(t) => until_closed(t.as_mut()).await,
        }
    }
}

/// Opens one stalled connection; returns it and when its timer began (for
/// the hello stall: when the handshake completed).
async fn open_stall(ctx: &Ctx, kind: Kind, source: IpAddr) -> Result<(Stalled, Instant)> {
    let _permit = attempt(ctx).await?;
    let mut tcp = ctx.target.connect_tcp_from(source).await?;
    let began = Instant::now();
    match kind {
        Kind::TcpStall => Ok((Stalled::Tcp(tcp), began)),
        Kind::HandshakeStall => {
            tcp.write_all(&partial_client_hello())
                .await
                .context("writing half a ClientHello")?;
            Ok((Stalled::Tcp(tcp), began))
        }
        _ => {
            let tls = ctx.target.handshake(tcp).await?;
            Ok((Stalled::Tls(Box::new(tls)), Instant::now()))
        }
    }
}

/// The first 64 bytes of a TLS record that announces a 512-byte
/// ClientHello: the relay has to wait for the rest.
fn partial_client_hello() -> Vec<u8> {
    let mut b = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    b.resize(64, 0x5a);
    b
}

/// Opens garbage connections at `rate` a second until `end`, at most
/// `in_flight` at once (the rest of a second's share is skipped, and
/// counted as failed).
async fn garbage_stream(
    ctx: Arc<Ctx>,
    rate: f64,
    block: SourceBlock,
    in_flight: usize,
    end: tokio::time::Instant,
) {
    if rate <= 0.0 {
        return;
    }
    let places = Arc::new(Semaphore::new(in_flight));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = ctx.stop.cancelled() => break,
            () = tokio::time::sleep_until(end) => break,
            _ = tick.tick() => {}
        }
        let kind = if n.is_multiple_of(2) {
            Kind::GarbagePlain
        } else {
            Kind::GarbageFrame
        };
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            ctx.tally(kind).failed(&anyhow!(
                "more than {in_flight} garbage connections in flight"
            ));
            n += 1;
            continue;
        };
        let source = block.addr(n % in_flight);
        n += 1;
        let ctx = Arc::clone(&ctx);
        tasks.spawn(async move {
            let _place = place;
            garbage_once(&ctx, kind, source).await;
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn garbage_once(ctx: &Ctx, kind: Kind, source: IpAddr) {
    let tally = ctx.tally(kind);
    // Not through the stalls' gate: the garbage keeps its own rate (its
    // places in flight bound it).
    let opened = async {
        let mut tcp = ctx.target.connect_tcp_from(source).await?;
        if kind == Kind::GarbagePlain {
            let began = Instant::now();
            let mut junk = b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n".to_vec();
            junk.extend_from_slice(&random_bytes(480)?);
            tcp.write_all(&junk).await.context("writing garbage")?;
            return Ok::<_, anyhow::Error>((Stalled::Tcp(tcp), began));
        }
        let tls = ctx.target.handshake(tcp).await?;
        let (conn, _) = hello(tls, random_room()?, 4096).await?;
        let mut tls = conn.into_inner();
        // A frame of the right length whose body decodes to nothing: an
        // unknown variant, then noise.
        let mut body = vec![0xff; 4];
        body.extend_from_slice(&random_bytes(60)?);
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let began = Instant::now();
        tls.write_all(&frame).await.context("writing a bad frame")?;
        tls.flush().await.context("writing a bad frame")?;
        Ok((Stalled::Tls(Box::new(tls)), began))
    };
    let (mut io, began) = tokio::select! {
        () = ctx.stop.cancelled() => return,
        o = opened => match o {
            Ok(x) => x,
            Err(e) => {
                tally.failed(&e);
                return;
            }
        },
    };
    tally.opened.fetch_add(1, Ordering::Relaxed);
    tokio::select! {
        () = ctx.stop.cancelled() => tally.still_open(began.elapsed()),
        () = io.wait_closed() => tally.closed(began.elapsed()),
    }
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b).context("drawing random bytes")?;
    Ok(b)
}

/// One flooded room, again and again until `end`: a flooder and
/// `readers` slow readers join a fresh room, the flood starts, and once
/// every reader has been cut (or the bound and its allowance have passed)
/// the next room begins.
async fn flooded_room_slot(
    ctx: Arc<Ctx>,
    readers: usize,
    block: SourceBlock,
    give_up: Duration,
    end: tokio::time::Instant,
) {
    let tally = ctx.tally(Kind::SlowReader);
    while tokio::time::Instant::now() < end && !ctx.stop.is_cancelled() {
        let joined = tokio::select! {
            () = ctx.stop.cancelled() => return,
            j = join_flooded_room(&ctx, readers, block) => j,
        };
        let (flooder, conns) = match joined {
            Ok(x) => x,
            Err(e) => {
                tally.failed(&e);
                if !ctx.pause(Duration::from_millis(500)).await {
                    return;
                }
                continue;
            }
        };
        tally
            .opened
            .fetch_add(conns.len() as u64, Ordering::Relaxed);
        let began = Instant::now();
        let slow = futures_util::future::join_all(
            conns.into_iter().map(|tls| slow_reader(&ctx, tls, began)),
        );
        let flooding = flood(&ctx, flooder, readers, give_up);
        let ((), ()) = tokio::join!(
            async {
                slow.await;
            },
            flooding
        );
    }
}

/// Joins a fresh room: its flooder, then its slow readers.
async fn join_flooded_room(
    ctx: &Ctx,
    readers: usize,
    block: SourceBlock,
) -> Result<(crate::conn::Conn, Vec<crate::tls::TlsStream>)> {
    let room = random_room()?;
    let tls = {
        let _permit = attempt(ctx).await?;
        let tcp = ctx.target.connect_tcp_from(block.addr(0)).await?;
        ctx.target.handshake(tcp).await?
    };
    let (flooder, _) = hello(tls, room, 64 * 1024).await.context("a flooder")?;
    let mut conns = Vec::with_capacity(readers);
    for i in 0..readers {
        let tls = {
            let _permit = attempt(ctx).await?;
            let tcp = ctx.target.connect_tcp_from(block.addr(1 + i)).await?;
            ctx.target.handshake(tcp).await?
        };
        let (conn, _) = hello(tls, room, 4096).await.context("a slow reader")?;
        conns.push(conn.into_inner());
    }
    Ok((flooder, conns))
}

/// Reads one byte a second below TLS (the relay sees a reader that takes
/// almost nothing) until the relay ends the connection or the run ends.
async fn slow_reader(ctx: &Ctx, mut tls: crate::tls::TlsStream, began: Instant) {
    let tally = ctx.tally(Kind::SlowReader);
    let tcp = tls.get_mut();
    let mut byte = [0u8; 1];
    loop {
        let read = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            // A reset is seen at once (bytes already received would
            // otherwise be read first, one a second).
            if let Ok(Some(e)) = tcp.take_error() {
                return Err(e);
            }
            tcp.read(&mut byte).await
        };
        tokio::select! {
            () = ctx.stop.cancelled() => {
                tally.still_open(began.elapsed());
                return;
            }
            r = read => match r {
                Ok(1) => {}
                _ => {
                    tally.closed(began.elapsed());
                    return;
                }
            },
        }
    }
}

/// Publishes as fast as the relay takes it until every reader of the room
/// has left (the relay cut them), `give_up` has passed, or the run ends.
async fn flood(ctx: &Ctx, flooder: crate::conn::Conn, readers: usize, give_up: Duration) {
    let (mut rd, mut wr) = flooder.split();
    let left = AtomicU64::new(0);
    let mut batch = BytesMut::new();
    for _ in 0..FLOOD_BATCH {
        let frame = ClientFrame::Publish {
            to: None,
            payload: bytes::Bytes::from(vec![0x42; FLOOD_PAYLOAD]),
        };
        if encode_frame(&frame, DEFAULT_MAX_FRAME, &mut batch).is_err() {
            return;
        }
    }
    let batch = batch.freeze();
    // No keepalive to answer: the relay pings a connection only after a
    // third of its idle timeout (30 s) of silence, and a flood gives up
    // long before.
    let reading = async {
        loop {
            match rd.next().await {
                Ok(Some(RelayFrame::PeerLeft(_))) => {
                    if left.fetch_add(1, Ordering::Relaxed) + 1 >= readers as u64 {
                        return;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    };
    let writing = async {
        loop {
            if wr.write_all(&batch).await.is_err() {
                return;
            }
            ctx.flood_frames
                .fetch_add(FLOOD_BATCH as u64, Ordering::Relaxed);
        }
    };
    let ended = tokio::select! {
        () = ctx.stop.cancelled() => false,
        () = tokio::time::sleep(give_up) => false,
        () = reading => true,
        () = writing => false,
    };
    if ended && left.load(Ordering::Relaxed) >= readers as u64 {
        ctx.floods_ended.fetch_add(1, Ordering::Relaxed);
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_give_each_address_at_most_per_source_places() {
        let mut s = Sources::new(Ipv4Addr::new(127, 1, 0, 1), 50).unwrap();
        let a = s.block(120).unwrap();
        assert_eq!(a.addr(0), IpAddr::V4(Ipv4Addr::new(127, 1, 0, 1)));
        assert_eq!(a.addr(49), IpAddr::V4(Ipv4Addr::new(127, 1, 0, 1)));
        assert_eq!(a.addr(50), IpAddr::V4(Ipv4Addr::new(127, 1, 0, 2)));
        assert_eq!(a.addr(119), IpAddr::V4(Ipv4Addr::new(127, 1, 0, 3)));
        // The next block starts on a fresh address.
        let b = s.block(10).unwrap();
        assert_eq!(b.addr(0), IpAddr::V4(Ipv4Addr::new(127, 1, 0, 4)));
        assert_eq!(s.used(), 4);
        // Past 127.255.255.255 there is no loopback left.
        let mut s = Sources::new(Ipv4Addr::new(127, 255, 255, 250), 1).unwrap();
        assert!(s.block(100).is_err());
        assert!(Sources::new(Ipv4Addr::new(10, 0, 0, 1), 50).is_err());
    }

    #[test]
    fn a_partial_client_hello_announces_more_than_it_sends() {
        let b = partial_client_hello();
        let announced = usize::from(u16::from_be_bytes([b[3], b[4]]));
        assert_eq!(b[0], 0x16, "a handshake record");
        assert!(announced > b.len() - 5, "the relay waits for the rest");
    }

    #[test]
    fn a_slot_closed_late_or_left_open_past_its_bound_is_counted() {
        let opts = Options {
            tcp_stall: 0,
            handshake_stall: 0,
            hello_stall: 0,
            garbage_rate: 0.0,
            slow_readers: 0,
            readers_per_room: 10,
            run: Duration::from_secs(1),
            first_source: Ipv4Addr::new(127, 1, 0, 1),
            per_source: 50,
            handshake_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            slow_within: Duration::from_secs(10),
            slack: Duration::from_secs(2),
            parallel: 1,
            relay_pid: None,
        };
        let t = Tally::default();
        t.opened.fetch_add(5, Ordering::Relaxed);
        t.closed(Duration::from_millis(10_100));
        t.closed(Duration::from_millis(12_500));
        t.closed(Duration::from_millis(1_000));
        t.still_open(Duration::from_secs(13));
        t.still_open(Duration::from_secs(3));
        let r = kind_report(Kind::TcpStall, &t, &opts);
        assert_eq!((r.closed, r.late, r.early), (3, 1, 1));
        assert_eq!((r.overdue, r.pending), (1, 1));
        assert_eq!(r.bound_s, 12.0);
        // Garbage has no timer of its own: only the allowance.
        let g = kind_report(Kind::GarbagePlain, &t, &opts);
        assert_eq!((g.late, g.early), (2, 0));
    }
}
