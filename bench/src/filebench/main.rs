//! `teamchat-filebench`: the file-transfer benchmark of issue 10. Sends a
//! file from one member to N members through an already running relay on
//! loopback, with the product's own engine and driver (in this process),
//! and reports the rate per receiver stream beside the seal/open rate of
//! the same run, with chat latency during the transfer and without it.
//!
//! Parses arguments, builds the runtime and calls into the modules:
//! [`crypto_rate`] (seal/open limits), [`source`] (the file and its
//! checks), [`room`] (the in-process room), [`scenario`] (one try, the pace
//! search) and [`summary`] (results and the table).

mod crypto_rate;
mod room;
mod scenario;
mod source;
mod summary;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use common::invite::{Host, RelayEndpoint};
use serde::Serialize;

use crate::room::Keys;
use crate::scenario::{Plan, TryReport};
use crate::summary::Summary;

/// File-transfer benchmark for TeamChat (issue 10).
///
/// Connects only to a relay on 127.0.0.1 (started beforehand, e.g. by
/// scripts/bench-files.sh), pinned by the SHA-256 of its certificate. Runs,
/// in this process, an admin and 1 + N members (fresh RSA keys, never
/// written anywhere); one member sends a file of pseudo-random bytes to the
/// room while the admin writes a chat line every --chat-every-ms.
///
/// The sender's pace (the driver's fixed rate) starts at the lower of the
/// seal/open fan-out rate measured here and --raw-relay-mbps, and steps
/// down by --step after each failed try (a member dropped by the relay, a
/// failed transfer, no file in time), at most --tries times.
///
/// Exit status: 0 when every scenario held at some pace; 3 when a report
/// was printed but some scenario failed at every pace tried; 1 on an error;
/// 2 on a usage error.
#[derive(Debug, Parser)]
#[command(name = "teamchat-filebench", version)]
struct Cli {
    /// The relay's address: 127.0.0.1:PORT (nothing else is accepted).
    #[arg(long, env = "TEAMCHAT_FILEBENCH_ADDR")]
    addr: SocketAddr,
    /// The relay's certificate (PEM, leaf first): its SHA-256 is the pin.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Receivers besides the sender, one scenario each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,10",
        value_name = "N,..."
    )]
    receivers: Vec<usize>,
    /// File size, MiB.
    #[arg(long, default_value_t = 100, value_name = "MIB")]
    size_mib: u64,
    /// The relay's raw forwarding rate per subscriber stream for opaque
    /// 64 KiB frames, as N=MB/s pairs (from teamchat-loadgen), e.g.
    /// "1=900,10=120": part of the lower limit and of the starting pace.
    #[arg(long, value_delimiter = ',', value_name = "N=MBPS,...")]
    raw_relay_mbps: Vec<String>,
    /// Start the search at this pace (MB/s) instead of the lower limit.
    #[arg(long, value_name = "MBPS")]
    pace_mbps: Option<f64>,
    /// The starting pace is the lower limit times this.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    start_factor: f64,
    /// After a failed try, the next pace is the last one times this.
    #[arg(long, default_value_t = 0.7, value_name = "FACTOR")]
    step: f64,
    /// Tries per scenario, at most.
    #[arg(long, default_value_t = 6, value_name = "N")]
    tries: usize,
    /// Also one try at the product's default pace (2 MiB/s) for these N.
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    default_pace_for: Vec<usize>,
    /// Milliseconds between the admin's chat lines (each is signed with
    /// RSA-3072, a few ms of CPU: 10 a second is a busy room already).
    #[arg(long, default_value_t = 100, value_name = "MS")]
    chat_every_ms: u64,
    /// Seconds of chat without a transfer before each transfer (baseline).
    #[arg(long, default_value_t = 3.0, value_name = "SECS")]
    baseline_secs: f64,
    /// Seconds allowed for everyone to join a room.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    join_timeout: f64,
    /// 64 KiB chunks per seal/open measurement.
    #[arg(long, default_value_t = 1600, value_name = "CHUNKS")]
    crypto_chunks: u64,
    /// Runs per seal/open figure (the median is reported).
    #[arg(long, default_value_t = 3, value_name = "N")]
    crypto_repeats: usize,
    /// Folder for the file and the download folders (a temporary folder
    /// is made inside it and removed at the end).
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Runtime worker threads; 0: one per peer of the largest room, as if
    /// every app ran in its own process (a driver blocked on the disk, e.g.
    /// saving a file, then holds up only itself).
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
    /// Hard limit on the whole run, seconds.
    #[arg(long, default_value_t = 1800.0, value_name = "SECS")]
    timeout: f64,
    /// Print one JSON object per result on stdout (the human lines go to
    /// stderr).
    #[arg(long)]
    json: bool,
}

/// Exit status when a report was printed but a scenario never held.
const EXIT_NOT_HELD: u8 = 3;
/// Most receivers in one scenario.
const MAX_RECEIVERS: usize = 64;
/// Largest file, MiB.
const MAX_SIZE_MIB: u64 = 1024;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("teamchat-filebench: some scenario failed at every pace tried");
            std::process::ExitCode::from(EXIT_NOT_HELD)
        }
        Err(e) => {
            eprintln!("teamchat-filebench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Checked settings.
#[derive(Debug)]
struct Settings {
    relay: RelayEndpoint,
    receivers: Vec<usize>,
    size: u64,
    raw: Vec<(usize, f64)>,
    start_pace: Option<u64>,
}

fn check(cli: &Cli) -> Result<Settings> {
    if cli.addr.ip() != std::net::IpAddr::V4(Ipv4Addr::LOCALHOST) {
        bail!(
            "--addr must be 127.0.0.1:PORT (loopback only), not {}",
            cli.addr
        );
    }
    if cli.addr.port() == 0 {
        bail!("--addr needs the relay's port");
    }
    let cert = client::driver::cert_file_fingerprint(&cli.cert).map_err(anyhow::Error::msg)?;
    let mut receivers = cli.receivers.clone();
    receivers.sort_unstable();
    receivers.dedup();
    if receivers.is_empty() || receivers.iter().any(|&n| n == 0 || n > MAX_RECEIVERS) {
        bail!("--receivers must be between 1 and {MAX_RECEIVERS}");
    }
    if cli
        .default_pace_for
        .iter()
        .any(|&n| n == 0 || n > MAX_RECEIVERS)
    {
        bail!("--default-pace-for must be between 1 and {MAX_RECEIVERS}");
    }
    if !(1..=MAX_SIZE_MIB).contains(&cli.size_mib) {
        bail!("--size-mib must be between 1 and {MAX_SIZE_MIB}");
    }
    if !(cli.timeout > 0.0 && cli.timeout <= 24.0 * 3600.0) {
        bail!("--timeout must be above 0 and at most a day");
    }
    if !(0.05..=0.95).contains(&cli.step) {
        bail!("--step must be between 0.05 and 0.95");
    }
    if !(cli.start_factor > 0.0 && cli.start_factor <= 100.0) {
        bail!("--start-factor must be above 0 and at most 100");
    }
    if !(1..=50).contains(&cli.tries) {
        bail!("--tries must be between 1 and 50");
    }
    if !(5..=10_000).contains(&cli.chat_every_ms) {
        bail!("--chat-every-ms must be between 5 and 10000");
    }
    if !(0.0..=600.0).contains(&cli.baseline_secs) || !(1.0..=3600.0).contains(&cli.join_timeout) {
        bail!("--baseline-secs must be in 0..=600 and --join-timeout in 1..=3600");
    }
    if !(1..=1_000_000).contains(&cli.crypto_chunks) {
        bail!("--crypto-chunks must be between 1 and 1000000");
    }
    if !(1..=15).contains(&cli.crypto_repeats) {
        bail!("--crypto-repeats must be between 1 and 15");
    }
    if cli.threads > 128 {
        bail!("--threads must be at most 128");
    }
    let start_pace = match cli.pace_mbps {
        None => None,
        Some(p) if p > 0.0 && p <= 1e5 => Some((p * 1e6) as u64),
        Some(_) => bail!("--pace-mbps must be above 0 and at most 100000"),
    };
    let raw = cli
        .raw_relay_mbps
        .iter()
        .map(|s| parse_raw(s))
        .collect::<Result<Vec<_>>>()?;
    Ok(Settings {
        relay: RelayEndpoint {
            host: Host::V4(Ipv4Addr::LOCALHOST),
            port: cli.addr.port(),
            cert,
        },
        receivers,
        size: cli.size_mib * 1024 * 1024,
        raw,
        start_pace,
    })
}

impl Settings {
    /// Peers (admin, sender, receivers) of the largest room of the run.
    fn peers_max(&self, also: &[usize]) -> usize {
        self.receivers
            .iter()
            .chain(also)
            .copied()
            .max()
            .unwrap_or(1)
            + 2
    }
}

/// "N=MBPS" → (N, MBPS).
fn parse_raw(s: &str) -> Result<(usize, f64)> {
    let (n, v) = s
        .split_once('=')
        .with_context(|| format!("--raw-relay-mbps wants N=MBPS pairs, not {s:?}"))?;
    let n: usize = n
        .trim()
        .parse()
        .with_context(|| format!("--raw-relay-mbps: bad N in {s:?}"))?;
    let v: f64 = v
        .trim()
        .parse()
        .with_context(|| format!("--raw-relay-mbps: bad rate in {s:?}"))?;
    if !(v.is_finite() && v > 0.0) {
        bail!("--raw-relay-mbps: the rate in {s:?} must be above 0");
    }
    Ok((n, v))
}

fn run(cli: Cli) -> Result<bool> {
    let settings = check(&cli)?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(cli.timeout);
    let threads = match cli.threads {
        0 => settings.peers_max(&cli.default_pace_for),
        n => n,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // A guard a little past the deadline, in case something does not honour it.
    let guard = tokio::time::Instant::from_std(deadline + Duration::from_secs(10));
    rt.block_on(async {
        match tokio::time::timeout_at(guard, bench_all(&cli, &settings, deadline)).await {
            Ok(r) => r,
            Err(_) => bail!("the run did not finish within --timeout"),
        }
    })
}

async fn bench_all(cli: &Cli, s: &Settings, deadline: Instant) -> Result<bool> {
    let dl = tokio::time::Instant::from_std(deadline);
    let json = cli.json;

    // Seal/open first, while nothing else runs in this process.
    let mut openers = Vec::new();
    for &n in &s.receivers {
        openers.push(n);
    }
    openers.sort_unstable();
    openers.dedup();
    progress(&format!(
        "== seal/open of 64 KiB chunks ({} per run, median of {} runs)",
        cli.crypto_chunks, cli.crypto_repeats
    ));
    let (chunks, repeats) = (cli.crypto_chunks, cli.crypto_repeats);
    let rates = tokio::task::spawn_blocking(move || {
        crypto_rate::measure(chunks, repeats, &openers, deadline)
    })
    .await
    .context("the seal/open thread failed")??;
    emit(json, &rates, &rates.human())?;

    let peers = s.peers_max(&cli.default_pace_for);
    progress(&format!(
        "== generating {peers} RSA-{} keys",
        common::crypto::keys::MIN_RSA_BITS
    ));
    let t = Instant::now();
    let keys = Keys::generate(peers, dl).await?;
    progress(&format!("   done in {:.1} s", t.elapsed().as_secs_f64()));

    let scratch = match &cli.scratch {
        Some(d) => tempfile::Builder::new()
            .prefix("teamchat-filebench-")
            .tempdir_in(d),
        None => tempfile::Builder::new()
            .prefix("teamchat-filebench-")
            .tempdir(),
    }
    .context("creating the scratch folder")?;
    let src_dir = scratch.path().join("source");
    std::fs::create_dir_all(&src_dir).context("creating the source folder")?;
    let size = s.size;
    let seed = u64::from(std::process::id()) ^ 0x7eac_4a7f;
    progress(&format!("== writing the {} MiB file", size / (1024 * 1024)));
    let file =
        tokio::task::spawn_blocking(move || source::write(&src_dir, "filebench.bin", size, seed))
            .await
            .context("the writer thread failed")??;

    let mut summaries = Vec::new();
    let mut all_held = true;
    for &n in &s.receivers {
        let plan = Plan {
            setup: room::Setup {
                relay: s.relay.clone(),
                receivers: n,
                pace: 1,
                max_file: size,
            },
            chat_every: Duration::from_millis(cli.chat_every_ms),
            baseline: Duration::from_secs_f64(cli.baseline_secs),
            join_timeout: Duration::from_secs_f64(cli.join_timeout),
        };
        let raw = s.raw.iter().find(|(m, _)| *m == n).map(|(_, v)| *v);
        let fanout = rates.fanout_mbps(n);
        let limit = summary::lower_limit(fanout, raw);
        let start = match (s.start_pace, limit) {
            (Some(p), _) => p,
            (None, Some(l)) => (l * 1e6 * cli.start_factor) as u64,
            (None, None) => bail!("no seal/open figure for N={n} to start the pace from"),
        };
        progress(&format!(
            "== N={n}: pace search from {:.1} MB/s (×{} per failure, at most {} tries)",
            start as f64 / 1e6,
            cli.step,
            cli.tries
        ));
        let mut emit_err = None;
        let tries = scenario::search(
            &plan,
            start,
            cli.step,
            cli.tries,
            &keys,
            &file,
            scratch.path(),
            dl,
            |r: &TryReport| {
                if let Err(e) = emit(json, r, &r.human()) {
                    emit_err.get_or_insert(e);
                }
            },
        )
        .await;
        if let Some(e) = emit_err {
            return Err(e);
        }
        let sum = Summary::of(n, size, &tries, &rates, raw);
        all_held &= sum.held;
        emit(json, &sum, &sum.human())?;
        summaries.push(sum);
    }

    let mut defaults = Vec::new();
    for &n in &cli.default_pace_for {
        let plan = Plan {
            setup: room::Setup {
                relay: s.relay.clone(),
                receivers: n,
                pace: 1,
                max_file: size,
            },
            chat_every: Duration::from_millis(cli.chat_every_ms),
            baseline: Duration::from_secs_f64(cli.baseline_secs),
            join_timeout: Duration::from_secs_f64(cli.join_timeout),
        };
        let pace = 0;
        progress(&format!(
            "== N={n}: one try at the product's default pace ({:.1} MB/s)",
            pace as f64 / 1e6
        ));
        let r = scenario::run_try(
            &plan,
            "default-pace",
            pace,
            &keys,
            &file,
            scratch.path(),
            dl,
        )
        .await;
        emit(json, &r, &r.human())?;
        defaults.push(r);
    }

    eprintln!();
    eprintln!("{}", summary::table(&rates, &summaries, &defaults));
    Ok(all_held)
}

fn progress(line: &str) {
    eprintln!("{line}");
}

/// Prints the human line (stdout, or stderr with `--json`) and the JSON.
fn emit<T: Serialize>(json: bool, report: &T, human: &str) -> Result<()> {
    if json {
        eprintln!("{human}");
        let line = serde_json::to_string(report).context("encoding the report")?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").context("writing the report")?;
        out.flush().context("writing the report")?;
    } else {
        println!("{human}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["teamchat-filebench", "--cert", "/nonexistent.pem"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap()
    }

    #[test]
    fn only_loopback_127_0_0_1_is_accepted() {
        for addr in [
            "10.0.0.1:7443",
            "[::1]:7443",
            "0.0.0.0:7443",
            "127.0.0.2:7443",
        ] {
            let e = check(&cli(&["--addr", addr])).unwrap_err().to_string();
            assert!(e.contains("loopback only"), "{addr}: {e}");
        }
        // A loopback address gets as far as the certificate.
        let e = check(&cli(&["--addr", "127.0.0.1:7443"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("certificate"), "{e}");
    }

    #[test]
    fn raw_rates_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_raw("10=95.5").unwrap(), (10, 95.5));
        assert_eq!(parse_raw(" 1 = 900").unwrap(), (1, 900.0));
        for bad in ["10", "x=1", "1=y", "1=-3", "1=nan", "1=0"] {
            assert!(parse_raw(bad).is_err(), "{bad}");
        }
    }
}
