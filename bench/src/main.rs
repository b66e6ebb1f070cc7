//! `teamchat-loadgen`: drives a TeamChat relay over real TLS and reports
//! throughput, latency or idle-connection memory. Parses arguments, builds
//! the runtime and calls into the `bench` library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bench::tls::{Target, Trust};
use bench::{abuse, compare, idle, latency, throughput};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

/// Load generator for the TeamChat relay.
///
/// Every run is bounded in connections, messages and time (--timeout), and
/// connects only to --addr. Use --insecure only on loopback.
///
/// Exit status: 0 when a report was printed, 1 on an error (nothing
/// measured), 2 on a usage error, 3 when a report was printed but the run hit
/// --timeout (its figures are partial).
#[derive(Debug, Parser)]
#[command(name = "teamchat-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// N subscribers in one room, one publisher sending M messages as fast
    /// as the relay takes them; reports deliveries/s, loss and relay CPU.
    Throughput(ThroughputArgs),
    /// N subscribers, one publisher at a fixed rate; reports one-way latency
    /// percentiles after a warm-up.
    Latency(LatencyArgs),
    /// Opens many TLS connections and reports relay memory per connection.
    Idle(IdleArgs),
    /// Abusive connections — stalled, garbage, slow readers — kept up for a
    /// while; reports when the relay ended each, against its timeout (for
    /// scripts/soak-relay.sh).
    Abuse(AbuseArgs),
    /// One scenario against the relay, NATS or MQTT through the same client
    /// code (for scripts/bench-peers.sh); prints one JSON object.
    Compare(CompareArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Scenario {
    Throughput,
    Latency,
    Idle,
    Accepts,
    ManyRooms,
}

#[derive(Debug, Args)]
struct CompareArgs {
    #[command(flatten)]
    common: Common,
    /// Which server listens at --addr.
    #[arg(long, value_enum)]
    proto: bench::peers::Proto,
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Subscribers (throughput, latency).
    #[arg(long, default_value_t = 10)]
    subs: usize,
    /// Payload bytes (at least 16).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Messages to publish (throughput; default 500000 / subs).
    #[arg(long)]
    messages: Option<u64>,
    /// Bytes of publishes gathered into one write (throughput).
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    batch_bytes: usize,
    /// Messages per second (latency).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Measured seconds (latency) or run length (accepts).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Connections (idle).
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Connections per room or topic (idle).
    #[arg(long, default_value_t = 10)]
    room_size: usize,
    /// Concurrent connectors (accepts).
    #[arg(long, default_value_t = 4)]
    connectors: usize,
    /// The server's process id (CPU per delivery; RSS for idle).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

/// Where the relay is, how to trust it, and how long to try.
#[derive(Debug, Args)]
struct Common {
    /// The relay's address (IP:PORT).
    #[arg(long, env = "TEAMCHAT_LOADGEN_ADDR")]
    addr: SocketAddr,
    /// More relays sharing the rooms with --addr over a backplane
    /// (throughput, latency, idle): connections are spread over --addr and
    /// these in turn; the publisher stays on --addr. Same trust as --addr.
    #[arg(long, value_name = "IP:PORT", value_delimiter = ',')]
    also: Vec<SocketAddr>,
    /// Trust the relay's certificate chain to this CA file (PEM).
    #[arg(long, value_name = "FILE", required_unless_present = "insecure")]
    ca: Option<PathBuf>,
    /// Skip certificate verification (refused unless --addr is loopback).
    #[arg(long, conflicts_with = "ca")]
    insecure: bool,
    /// Name to verify the certificate against (default: the IP of --addr).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Hard limit on the whole run, seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    timeout: f64,
    /// Print one JSON object per result on stdout (the human line goes to
    /// stderr).
    #[arg(long)]
    json: bool,
    /// Runtime worker threads (1 = a single-threaded runtime).
    #[arg(long, default_value_t = 1, value_name = "N")]
    threads: usize,
    /// TLS handshakes in flight while connecting.
    #[arg(long, default_value_t = 32, value_name = "N")]
    parallel: usize,
}

#[derive(Debug, Args)]
struct ThroughputArgs {
    #[command(flatten)]
    common: Common,
    /// Subscribers in the room.
    #[arg(long, default_value_t = 10)]
    subs: usize,
    /// Payload bytes per message (at least 16).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Messages to publish (default 500000 / subs).
    #[arg(long)]
    messages: Option<u64>,
    /// Stay at most this many messages ahead of the slowest subscriber
    /// (0 = no client-side flow control).
    #[arg(long, default_value_t = 0)]
    window: u64,
    /// Bytes of frames gathered into one write.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    batch_bytes: usize,
    /// Seconds to wait for the last deliveries after publishing.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    drain: f64,
    /// The relay's process id, to report its CPU time per delivery (with
    /// --also: every relay's, comma-separated, summed).
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    relay_pid: Vec<u32>,
}

#[derive(Debug, Args)]
struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    /// Subscribers in the room.
    #[arg(long, default_value_t = 10)]
    subs: usize,
    /// Payload bytes per message (at least 16).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Messages per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up seconds (sent, not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds to wait for the last deliveries after publishing.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    drain: f64,
}

#[derive(Debug, Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Connections per room.
    #[arg(long, default_value_t = 10)]
    room_size: usize,
    /// Put every connection in one room (mind the relay's --max-room-conns).
    #[arg(long)]
    one_room: bool,
    /// Seconds to wait after the last welcome before reading RSS.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    settle: f64,
    /// The relay's process id (its RSS is what is measured; with --also:
    /// every relay's, comma-separated, summed).
    #[arg(long, value_name = "PID", value_delimiter = ',', required = true)]
    relay_pid: Vec<u32>,
}

#[derive(Debug, Args)]
struct AbuseArgs {
    #[command(flatten)]
    common: Common,
    /// Connections that open TCP and send nothing (kept at this number).
    #[arg(long, default_value_t = 0)]
    tcp_stall: usize,
    /// Connections that send part of a TLS ClientHello and stop.
    #[arg(long, default_value_t = 0)]
    handshake_stall: usize,
    /// Connections that complete TLS and never send a hello.
    #[arg(long, default_value_t = 0)]
    hello_stall: usize,
    /// New garbage connections per second (alternately plain bytes instead
    /// of TLS, and a malformed frame after a hello).
    #[arg(long, default_value_t = 0.0)]
    garbage_rate: f64,
    /// Slow readers (one byte a second), in flooded rooms.
    #[arg(long, default_value_t = 0)]
    slow_readers: usize,
    /// Slow readers per flooded room (each room has one flooder).
    #[arg(long, default_value_t = 10)]
    readers_per_room: usize,
    /// How long to keep the abuse up.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    seconds: f64,
    /// First loopback source address (127.x.y.z); the next ones follow.
    #[arg(long, default_value = "127.1.0.1")]
    first_source: std::net::Ipv4Addr,
    /// Most connections from one source address (keep it under the
    /// relay's --max-conns-per-ip).
    #[arg(long, default_value_t = 50)]
    per_source: usize,
    /// The relay's --handshake-timeout.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    handshake_timeout: f64,
    /// The relay's --hello-timeout.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    hello_timeout: f64,
    /// Within how long of its room's flood a slow reader must be cut: the
    /// relay's --slow-reader-timeout plus the 5 s its last words may take.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    slow_within: f64,
    /// Allowance added to every bound.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    slack: f64,
    /// The relay's process id, to sample its RSS.
    #[arg(long, value_name = "PID")]
    relay_pid: Option<u32>,
}

/// Exit status when a report was printed but the run hit --timeout.
const EXIT_TIMED_OUT: u8 = 3;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Complete) => std::process::ExitCode::SUCCESS,
        Ok(Outcome::TimedOut) => {
            eprintln!("teamchat-loadgen: the run hit --timeout; the figures above are partial");
            std::process::ExitCode::from(EXIT_TIMED_OUT)
        }
        Err(e) => {
            eprintln!("teamchat-loadgen: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// How a run that produced a report ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Complete,
    TimedOut,
}

impl Outcome {
    fn of(timed_out: bool) -> Self {
        if timed_out {
            Outcome::TimedOut
        } else {
            Outcome::Complete
        }
    }
}

fn run(cli: Cli) -> Result<Outcome> {
    let common = match &cli.bench {
        Bench::Throughput(a) => &a.common,
        Bench::Latency(a) => &a.common,
        Bench::Idle(a) => &a.common,
        Bench::Abuse(a) => &a.common,
        Bench::Compare(a) => &a.common,
    };
    if !(common.timeout > 0.0 && common.timeout <= 24.0 * 3600.0) {
        bail!("--timeout must be above 0 and at most a day");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(common.timeout);
    let trust = match &common.ca {
        Some(path) => Trust::CaFile(path.clone()),
        None => Trust::InsecureLoopback,
    };
    let target = Arc::new(Target::new(
        common.addr,
        &trust,
        common.server_name.clone(),
    )?);
    let mut targets = vec![Arc::clone(&target)];
    for addr in &common.also {
        targets.push(Arc::new(Target::new(
            *addr,
            &trust,
            common.server_name.clone(),
        )?));
    }
    let json = common.json;
    let parallel = common.parallel;
    // Start the payload clock before anything is sent.
    bench::payload::now_ns();

    let rt = if common.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(common.threads)
            .enable_all()
            .build()
    }
    .context("starting the async runtime")?;

    // A guard a little past the deadline, in case something does not honour it.
    let guard = tokio::time::Instant::from_std(deadline + Duration::from_secs(5));
    rt.block_on(async move {
        let work = async {
            match cli.bench {
                Bench::Throughput(a) => {
                    let opts = throughput::Options {
                        subs: a.subs,
                        size: a.size,
                        messages: a
                            .messages
                            .unwrap_or_else(|| (500_000 / a.subs.max(1) as u64).max(1)),
                        window: a.window,
                        batch_bytes: a.batch_bytes.clamp(1, 16 << 20),
                        drain: secs(a.drain, "--drain")?,
                        parallel,
                        relay_pids: a.relay_pid,
                    };
                    let r = throughput::run(&targets, &opts, deadline).await?;
                    emit(json, &r, &r.human())?;
                    Ok(Outcome::of(r.timed_out))
                }
                Bench::Latency(a) => {
                    let opts = latency::Options {
                        subs: a.subs,
                        size: a.size,
                        rate: a.rate,
                        seconds: a.seconds,
                        warmup: a.warmup,
                        drain: secs(a.drain, "--drain")?,
                        parallel,
                    };
                    let r = latency::run(&targets, &opts, deadline).await?;
                    emit(json, &r, &r.human())?;
                    Ok(Outcome::of(r.timed_out))
                }
                Bench::Idle(a) => {
                    let opts = idle::Options {
                        conns: a.conns,
                        room_size: a.room_size,
                        one_room: a.one_room,
                        parallel,
                        settle: secs(a.settle, "--settle")?,
                        relay_pids: a.relay_pid,
                    };
                    let r = idle::run(&targets, &opts, deadline).await?;
                    emit(json, &r, &r.human())?;
                    Ok(Outcome::Complete)
                }
                Bench::Abuse(a) => {
                    let opts = abuse::Options {
                        tcp_stall: a.tcp_stall,
                        handshake_stall: a.handshake_stall,
                        hello_stall: a.hello_stall,
                        garbage_rate: a.garbage_rate,
                        slow_readers: a.slow_readers,
                        readers_per_room: a.readers_per_room.max(1),
                        run: secs(a.seconds, "--seconds")?,
                        first_source: a.first_source,
                        per_source: a.per_source,
                        handshake_timeout: secs(a.handshake_timeout, "--handshake-timeout")?,
                        hello_timeout: secs(a.hello_timeout, "--hello-timeout")?,
                        slow_within: secs(a.slow_within, "--slow-within")?,
                        slack: secs(a.slack, "--slack")?,
                        parallel,
                        relay_pid: a.relay_pid,
                    };
                    let r = abuse::run(Arc::clone(&target), &opts, deadline).await?;
                    emit(json, &r, &r.human())?;
                    Ok(Outcome::Complete)
                }
                Bench::Compare(a) => {
                    let dl = tokio::time::Instant::from_std(deadline);
                    let line = match a.scenario {
                        Scenario::Throughput => serde_json::to_string(
                            &compare::throughput(
                                a.proto,
                                Arc::clone(&target),
                                a.subs,
                                a.size,
                                a.messages
                                    .unwrap_or_else(|| (500_000 / a.subs.max(1) as u64).max(1))
                                    .min(bench::MAX_MESSAGES),
                                a.batch_bytes.clamp(1, 16 << 20),
                                a.server_pid,
                                parallel,
                                Duration::from_secs(10),
                                dl,
                            )
                            .await?,
                        ),
                        Scenario::Latency => serde_json::to_string(
                            &compare::latency(
                                a.proto,
                                Arc::clone(&target),
                                a.subs,
                                a.size,
                                a.rate,
                                Duration::from_secs(1),
                                secs(a.seconds, "--seconds")?,
                                parallel,
                                dl,
                            )
                            .await?,
                        ),
                        Scenario::Idle => {
                            let Some(pid) = a.server_pid else {
                                bail!("--scenario idle needs --server-pid");
                            };
                            serde_json::to_string(
                                &compare::idle(
                                    a.proto,
                                    Arc::clone(&target),
                                    a.conns.min(100_000),
                                    a.room_size.clamp(1, 100_000),
                                    pid,
                                    parallel,
                                    Duration::from_secs(2),
                                    dl,
                                )
                                .await?,
                            )
                        }
                        Scenario::ManyRooms => serde_json::to_string(
                            &compare::many_rooms(
                                a.proto,
                                Arc::clone(&target),
                                100,
                                10,
                                &[
                                    1.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 15.0, 20.0,
                                    30.0, 50.0, 100.0,
                                ],
                                secs(a.seconds, "--seconds")?,
                                Duration::from_millis(10),
                                parallel,
                                dl,
                            )
                            .await?,
                        ),
                        Scenario::Accepts => serde_json::to_string(
                            &compare::accepts(
                                a.proto,
                                Arc::clone(&target),
                                a.connectors.clamp(1, 64),
                                secs(a.seconds, "--seconds")?,
                            )
                            .await?,
                        ),
                    }
                    .context("encoding the report")?;
                    writeln!(std::io::stdout().lock(), "{line}").context("writing the report")?;
                    Ok(Outcome::Complete)
                }
            }
        };
        match tokio::time::timeout_at(guard, work).await {
            Ok(r) => r,
            Err(_) => bail!("the run did not finish within --timeout"),
        }
    })
}

fn secs(v: f64, flag: &str) -> Result<Duration> {
    if !(0.0..=3600.0).contains(&v) {
        bail!("{flag} must be between 0 and 3600 seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Prints the human line (stdout, or stderr with `--json`) and the JSON.
fn emit<T: Serialize>(json: bool, report: &T, human: &str) -> Result<()> {
    if json {
        eprintln!("{human}");
        let line = serde_json::to_string(report).context("encoding the report")?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").context("writing the report")?;
    } else {
        println!("{human}");
    }
    Ok(())
}
