//! `teamchat-filebench`: the file-transfer benchmark (issues 10 and 21).
//! Sends a file from one member to N members through an already running
//! relay on loopback, with the product's own engine and driver (in this
//! process) at their default settings, and reports the time and rate per
//! receiver, with chat latency during the transfer and without it.
//! `scripts/bench-files.sh` runs magic-wormhole beside it.
//!
//! Parses arguments, builds the runtime and calls into the modules:
//! [`crypto_rate`] (seal/open rates, for context), [`source`] (the file
//! and its checks), [`room`] (the in-process room), [`scenario`] (one run)
//! and [`summary`] (medians and the table).

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

/// File-transfer benchmark for TeamChat.
///
/// Connects only to a relay on 127.0.0.1 (started beforehand, e.g. by
/// scripts/bench-files.sh), pinned by the SHA-256 of its certificate. Runs,
/// in this process, an admin and 1 + N members (fresh RSA keys, never
/// written anywhere); one member sends a file of pseudo-random bytes to the
/// room while the admin writes a chat line every --chat-every-ms. The
/// driver runs at its default file settings (no pace: the relay's flow
/// control sets it) unless --pace-mbps is given.
///
/// Exit status: 0 when every run held; 3 when a report was printed but
/// some run failed (a member dropped, a failed transfer, no file in time);
/// 1 on an error; 2 on a usage error.
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
        default_value = "1,5",
        value_name = "N,..."
    )]
    receivers: Vec<usize>,
    /// File size, MiB.
    #[arg(long, default_value_t = 100, value_name = "MIB")]
    size_mib: u64,
    /// Send this file (its size replaces --size-mib) instead of writing
    /// pseudo-random bytes: the same file a peer benchmark sends.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Runs per room size, each in a fresh room (medians are reported).
    #[arg(long, default_value_t = 1, value_name = "N")]
    runs: usize,
    /// Send at this pace (MB/s) instead of the product's default (none).
    #[arg(long, value_name = "MBPS")]
    pace_mbps: Option<f64>,
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

/// Exit status when a report was printed but a run failed.
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
            eprintln!("teamchat-filebench: some run failed");
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
    pace: Option<u64>,
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
    if !(1..=MAX_SIZE_MIB).contains(&cli.size_mib) {
        bail!("--size-mib must be between 1 and {MAX_SIZE_MIB}");
    }
    if !(cli.timeout > 0.0 && cli.timeout <= 24.0 * 3600.0) {
        bail!("--timeout must be above 0 and at most a day");
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
    if !(1..=25).contains(&cli.runs) {
        bail!("--runs must be between 1 and 25");
    }
    let size = match &cli.file {
        Some(f) => std::fs::metadata(f)
            .with_context(|| format!("--file {}", f.display()))?
            .len(),
        None => cli.size_mib * 1024 * 1024,
    };
    if size == 0 || size > MAX_SIZE_MIB * 1024 * 1024 {
        bail!("the file must hold 1 byte to {MAX_SIZE_MIB} MiB");
    }
    let pace = match cli.pace_mbps {
        None => None,
        Some(p) if p > 0.0 && p <= 1e5 => Some((p * 1e6) as u64),
        Some(_) => bail!("--pace-mbps must be above 0 and at most 100000"),
    };
    Ok(Settings {
        relay: RelayEndpoint {
            host: Host::V4(Ipv4Addr::LOCALHOST),
            port: cli.addr.port(),
            cert,
        },
        receivers,
        size,
        pace,
    })
}

impl Settings {
    /// Peers (admin, sender, receivers) of the largest room of the run.
    fn peers_max(&self) -> usize {
        self.receivers.iter().copied().max().unwrap_or(1) + 2
    }
}

fn run(cli: Cli) -> Result<bool> {
    let settings = check(&cli)?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(cli.timeout);
    let threads = match cli.threads {
        0 => settings.peers_max(),
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

    let peers = s.peers_max();
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
    let given = cli.file.clone();
    progress(&match &given {
        Some(f) => format!("== hashing {}", f.display()),
        None => format!("== writing the {} MiB file", size / (1024 * 1024)),
    });
    let file = tokio::task::spawn_blocking(move || match given {
        Some(f) => source::open(&f),
        None => source::write(&src_dir, "filebench.bin", size, seed),
    })
    .await
    .context("the writer thread failed")??;

    let mut summaries = Vec::new();
    let mut all_held = true;
    for &n in &s.receivers {
        let plan = Plan {
            setup: room::Setup {
                relay: s.relay.clone(),
                receivers: n,
                pace: s.pace,
                max_file: size,
            },
            chat_every: Duration::from_millis(cli.chat_every_ms),
            baseline: Duration::from_secs_f64(cli.baseline_secs),
            join_timeout: Duration::from_secs_f64(cli.join_timeout),
        };
        let mut runs: Vec<TryReport> = Vec::new();
        for run in 1..=cli.runs {
            if tokio::time::Instant::now() >= dl {
                break;
            }
            progress(&format!("== N={n}: run {run} of {}", cli.runs));
            let r = scenario::run_try(&plan, s.pace, &keys, &file, scratch.path(), dl).await;
            emit(json, &r, &r.human())?;
            all_held &= r.ok;
            runs.push(r);
            // Let the relay let go of the last room's connections.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let sum = Summary::of(n, size, &runs);
        emit(json, &sum, &sum.human())?;
        summaries.push(sum);
    }

    eprintln!();
    eprintln!("{}", summary::table(&rates, &summaries));
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
}
