//! Relay configuration: command-line flags, `TEAMCHAT_RELAY_*` environment
//! variables and an optional TOML file, in that order of precedence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Deserialize;

/// TeamChat relay: a stateless TLS server that broadcasts opaque, end-to-end
/// encrypted frames between the connections of a room. It stores nothing,
/// decrypts nothing and never logs payloads.
///
/// Every option can also be set with an environment variable (shown below)
/// or in a TOML file given with --config (keys as the long option names with
/// '-' written as '_', e.g. `max_frame = 1048576`). Flags beat environment
/// variables, which beat the file.
#[derive(Debug, Parser)]
#[command(name = "teamchat-relay", version, about, long_about)]
pub struct Args {
    /// TOML configuration file.
    #[arg(long, env = "TEAMCHAT_RELAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address and port to listen on [default: 0.0.0.0:7443].
    #[arg(long, env = "TEAMCHAT_RELAY_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// Certificate chain, PEM (leaf first), e.g. certs/relay.crt from scripts/gen-certs.sh.
    #[arg(long, env = "TEAMCHAT_RELAY_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// Private key of the certificate, PEM.
    #[arg(long, env = "TEAMCHAT_RELAY_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Largest frame body accepted or sent, in bytes [default: 1048576].
    #[arg(long, env = "TEAMCHAT_RELAY_MAX_FRAME", value_name = "BYTES")]
    pub max_frame: Option<usize>,

    /// Most simultaneous connections [default: 10000].
    #[arg(long, env = "TEAMCHAT_RELAY_MAX_CONNS", value_name = "N")]
    pub max_conns: Option<usize>,

    /// Most simultaneous connections from one IP address [default: 64].
    #[arg(long, env = "TEAMCHAT_RELAY_MAX_CONNS_PER_IP", value_name = "N")]
    pub max_conns_per_ip: Option<usize>,

    /// Most rooms open at once [default: 10000].
    #[arg(long, env = "TEAMCHAT_RELAY_MAX_ROOMS", value_name = "N")]
    pub max_rooms: Option<usize>,

    /// Most connections in one room [default: 1024].
    #[arg(long, env = "TEAMCHAT_RELAY_MAX_ROOM_CONNS", value_name = "N")]
    pub max_room_conns: Option<usize>,

    /// Frames per second one connection may send, sustained; bursts of twice
    /// this are allowed, and past them the relay reads that connection no
    /// faster (the sender is slowed, not cut) [default: 4000].
    #[arg(long, env = "TEAMCHAT_RELAY_RATE_FRAMES", value_name = "N")]
    pub rate_frames: Option<u32>,

    /// Bytes per second one connection may send, sustained; bursts of twice
    /// this (at least one maximum frame) are allowed, and past them the
    /// relay reads that connection no faster [default: 268435456].
    #[arg(long, env = "TEAMCHAT_RELAY_RATE_BYTES", value_name = "BYTES")]
    pub rate_bytes: Option<u64>,

    /// Bytes per second one connection may have the relay deliver to others
    /// (payload × recipients); over it the relay stops reading from that
    /// connection until the budget recovers [default: 1073741824].
    #[arg(long, env = "TEAMCHAT_RELAY_RATE_FANOUT_BYTES", value_name = "BYTES")]
    pub rate_fanout_bytes: Option<u64>,

    /// Most frames queued for one connection; past half of it the
    /// connections publishing into it wait for it to drain [default: 4096].
    #[arg(long, env = "TEAMCHAT_RELAY_QUEUE_FRAMES", value_name = "N")]
    pub queue_frames: Option<usize>,

    /// Most bytes queued for one connection; past half of it the
    /// connections publishing into it wait for it to drain [default:
    /// 4194304; at least twice --max-frame].
    #[arg(long, env = "TEAMCHAT_RELAY_QUEUE_BYTES", value_name = "BYTES")]
    pub queue_bytes: Option<usize>,

    /// Seconds a connection's queue may stay past its high-water mark (its
    /// reader falling behind the room) before the relay tells it
    /// `SlowReader` and closes it; also the longest a publisher waits for
    /// one slow reader [default: 5].
    #[arg(long, env = "TEAMCHAT_RELAY_SLOW_READER_TIMEOUT", value_name = "SECS")]
    pub slow_reader_timeout: Option<f64>,

    /// Most bytes queued across all connections; past it every publisher
    /// waits until the writers have drained an eighth of it [default: an
    /// eighth of the machine's memory, between 64 MiB and 2 GiB].
    #[arg(long, env = "TEAMCHAT_RELAY_MAX_QUEUED", value_name = "BYTES")]
    pub max_queued: Option<usize>,

    /// Seconds allowed for the TLS handshake [default: 10].
    #[arg(long, env = "TEAMCHAT_RELAY_HANDSHAKE_TIMEOUT", value_name = "SECS")]
    pub handshake_timeout: Option<f64>,

    /// Seconds allowed between the handshake and the hello [default: 10].
    #[arg(long, env = "TEAMCHAT_RELAY_HELLO_TIMEOUT", value_name = "SECS")]
    pub hello_timeout: Option<f64>,

    /// Seconds without any frame from a client before it is dropped; the
    /// relay pings at a third of it [default: 90]. A version-2 client (the
    /// TeamChat apps, which ping every 2 s) is dropped after 15 s, or this
    /// if shorter.
    #[arg(long, env = "TEAMCHAT_RELAY_IDLE_TIMEOUT", value_name = "SECS")]
    pub idle_timeout: Option<f64>,

    /// Seconds between statistics lines in the log; 0 turns them off [default: 60].
    #[arg(long, env = "TEAMCHAT_RELAY_STATS_INTERVAL", value_name = "SECS")]
    pub stats_interval: Option<f64>,

    /// Seconds to wait for connections to close at shutdown [default: 5].
    #[arg(long, env = "TEAMCHAT_RELAY_SHUTDOWN_GRACE", value_name = "SECS")]
    pub shutdown_grace: Option<f64>,

    /// Log filter, e.g. "info" or "relay=debug" [default: info].
    #[arg(long, env = "TEAMCHAT_RELAY_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// Share rooms with other relays through NATS: its servers, comma
    /// separated (nats://HOST:PORT or tls://HOST:PORT). Without it the relay
    /// serves its own connections only, as always.
    #[arg(
        long,
        env = "TEAMCHAT_RELAY_BACKPLANE",
        value_name = "URL[,URL...]",
        value_delimiter = ','
    )]
    pub backplane: Option<Vec<String>>,

    /// Start with local rooms only when NATS cannot be reached (and join
    /// the others once it can), instead of refusing to start.
    #[arg(long, env = "TEAMCHAT_RELAY_BACKPLANE_OPTIONAL")]
    pub backplane_optional: bool,

    /// NATS user (with --backplane-password).
    #[arg(long, env = "TEAMCHAT_RELAY_BACKPLANE_USER", value_name = "USER")]
    pub backplane_user: Option<String>,

    /// NATS password.
    #[arg(
        long,
        env = "TEAMCHAT_RELAY_BACKPLANE_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub backplane_password: Option<String>,

    /// NATS token.
    #[arg(
        long,
        env = "TEAMCHAT_RELAY_BACKPLANE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub backplane_token: Option<String>,

    /// Verify NATS's TLS certificate against this CA (PEM); implies TLS.
    #[arg(long, env = "TEAMCHAT_RELAY_BACKPLANE_CA", value_name = "FILE")]
    pub backplane_ca: Option<PathBuf>,

    /// NATS NKey: a file holding the user's seed (SU…). Needs a relay built
    /// with `cargo build -p relay --features nkeys`.
    #[arg(long, env = "TEAMCHAT_RELAY_BACKPLANE_NKEY", value_name = "FILE")]
    pub backplane_nkey: Option<PathBuf>,

    /// NATS credentials file (.creds: a user JWT and its NKey seed). Needs a
    /// relay built with `cargo build -p relay --features nkeys`.
    #[arg(long, env = "TEAMCHAT_RELAY_BACKPLANE_CREDS", value_name = "FILE")]
    pub backplane_creds: Option<PathBuf>,
}

/// The keys a TOML file may set (same meaning as the flags).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<SocketAddr>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    max_frame: Option<usize>,
    max_conns: Option<usize>,
    max_conns_per_ip: Option<usize>,
    max_rooms: Option<usize>,
    max_room_conns: Option<usize>,
    rate_frames: Option<u32>,
    rate_bytes: Option<u64>,
    rate_fanout_bytes: Option<u64>,
    queue_frames: Option<usize>,
    queue_bytes: Option<usize>,
    slow_reader_timeout: Option<f64>,
    max_queued: Option<usize>,
    handshake_timeout: Option<f64>,
    hello_timeout: Option<f64>,
    idle_timeout: Option<f64>,
    stats_interval: Option<f64>,
    shutdown_grace: Option<f64>,
    log: Option<String>,
    backplane: Option<Vec<String>>,
    backplane_optional: Option<bool>,
    backplane_user: Option<String>,
    backplane_password: Option<String>,
    backplane_token: Option<String>,
    backplane_ca: Option<PathBuf>,
    backplane_nkey: Option<PathBuf>,
    backplane_creds: Option<PathBuf>,
}

/// Resource limits, each with a sane default.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame body, bytes.
    pub max_frame: usize,
    /// Most connections.
    pub max_conns: usize,
    /// Most connections per source IP.
    pub max_conns_per_ip: usize,
    /// Most rooms.
    pub max_rooms: usize,
    /// Most connections per room.
    pub max_room_conns: usize,
    /// Sustained frames/s per connection.
    pub rate_frames: u32,
    /// Sustained bytes/s per connection.
    pub rate_bytes: u64,
    /// Sustained bytes/s delivered to others on behalf of one connection.
    pub rate_fanout_bytes: u64,
    /// Outbound queue length per connection.
    pub queue_frames: usize,
    /// Outbound queue bytes per connection.
    pub queue_bytes: usize,
    /// How long a queue may stay past its high-water mark before its
    /// connection is cut as a slow reader.
    pub slow_reader_timeout: Duration,
    /// Bytes queued across all connections before publishers wait.
    pub max_queued: usize,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Hello deadline after the handshake.
    pub hello_timeout: Duration,
    /// Drop a client silent for this long.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: wire::DEFAULT_MAX_FRAME,
            max_conns: 10_000,
            max_conns_per_ip: 64,
            max_rooms: 10_000,
            max_room_conns: 1024,
            // Fairness ceilings, not a pace: past them a connection is
            // read no faster (docs/PROTOCOL.md §3.3 step 6). High enough
            // that a file goes at the speed of the path (64 KiB chunks:
            // 4,000 frames/s is 256 MiB/s).
            rate_frames: 4000,
            rate_bytes: 256 << 20,
            rate_fanout_bytes: 1 << 30,
            queue_frames: 4096,
            queue_bytes: 4 << 20,
            slow_reader_timeout: Duration::from_secs(5),
            max_queued: default_max_queued(),
            handshake_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

/// The default of [`Limits::max_queued`]: an eighth of the machine's
/// memory (`MemTotal` of `/proc/meminfo`), between 64 MiB and 2 GiB;
/// 256 MiB where it cannot be read.
fn default_max_queued() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    });
    match total {
        Some(bytes) => (bytes / 8).clamp(64 << 20, 2 << 30),
        None => 256 << 20,
    }
}

/// The relay's complete configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Certificate chain file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
    /// Limits.
    pub limits: Limits,
    /// Interval of the stats log line (`None`: off).
    pub stats_interval: Option<Duration>,
    /// Shutdown drain deadline.
    pub shutdown_grace: Duration,
    /// Log filter.
    pub log: String,
    /// Rooms shared with other relays over NATS (`None`: this relay alone).
    pub backplane: Option<crate::backplane::Options>,
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7443";

fn secs(name: &str, v: f64) -> Result<Duration> {
    if !v.is_finite() || !(0.0..=86_400.0).contains(&v) {
        bail!("{name} must be between 0 and 86400 seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// A timeout that must not be zero (it would close every connection).
fn positive_secs(name: &str, v: f64) -> Result<Duration> {
    let d = secs(name, v)?;
    if d < Duration::from_millis(50) {
        bail!("{name} must be at least 0.05 seconds, got {v}");
    }
    Ok(d)
}

/// Most connections the relay can be configured for.
pub const MAX_CONNS_CAP: usize = 1_000_000;

fn positive(name: &str, v: usize) -> Result<usize> {
    if v == 0 {
        bail!("{name} must be at least 1");
    }
    Ok(v)
}

impl Config {
    /// Resolves flags, environment (already folded into `args` by clap) and
    /// the optional file into a checked configuration.
    pub fn resolve(args: Args) -> Result<Config> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let d = Limits::default();
        let max_frame = args.max_frame.or(file.max_frame).unwrap_or(d.max_frame);
        if !(wire::MIN_MAX_FRAME..=64 << 20).contains(&max_frame) {
            bail!(
                "max-frame must be between {} and {} bytes, got {max_frame}",
                wire::MIN_MAX_FRAME,
                64 << 20
            );
        }
        let limits = Limits {
            max_frame,
            max_conns: positive(
                "max-conns",
                args.max_conns.or(file.max_conns).unwrap_or(d.max_conns),
            )?,
            max_conns_per_ip: positive(
                "max-conns-per-ip",
                args.max_conns_per_ip
                    .or(file.max_conns_per_ip)
                    .unwrap_or(d.max_conns_per_ip),
            )?,
            max_rooms: positive(
                "max-rooms",
                args.max_rooms.or(file.max_rooms).unwrap_or(d.max_rooms),
            )?,
            max_room_conns: positive(
                "max-room-conns",
                args.max_room_conns
                    .or(file.max_room_conns)
                    .unwrap_or(d.max_room_conns),
            )?,
            rate_frames: args
                .rate_frames
                .or(file.rate_frames)
                .unwrap_or(d.rate_frames)
                .max(1),
            rate_bytes: args
                .rate_bytes
                .or(file.rate_bytes)
                .unwrap_or(d.rate_bytes)
                .max(1),
            rate_fanout_bytes: args
                .rate_fanout_bytes
                .or(file.rate_fanout_bytes)
                .unwrap_or(d.rate_fanout_bytes)
                .max(1),
            queue_frames: positive(
                "queue-frames",
                args.queue_frames
                    .or(file.queue_frames)
                    .unwrap_or(d.queue_frames),
            )?,
            queue_bytes: args
                .queue_bytes
                .or(file.queue_bytes)
                .unwrap_or(d.queue_bytes)
                .max(2 * max_frame + 1024),
            slow_reader_timeout: match args.slow_reader_timeout.or(file.slow_reader_timeout) {
                Some(v) => positive_secs("slow-reader-timeout", v)?,
                None => d.slow_reader_timeout,
            },
            max_queued: args
                .max_queued
                .or(file.max_queued)
                .unwrap_or(d.max_queued)
                .max(4 * max_frame),
            handshake_timeout: match args.handshake_timeout.or(file.handshake_timeout) {
                Some(v) => positive_secs("handshake-timeout", v)?,
                None => d.handshake_timeout,
            },
            hello_timeout: match args.hello_timeout.or(file.hello_timeout) {
                Some(v) => positive_secs("hello-timeout", v)?,
                None => d.hello_timeout,
            },
            idle_timeout: match args.idle_timeout.or(file.idle_timeout) {
                Some(v) => positive_secs("idle-timeout", v)?,
                None => d.idle_timeout,
            },
        };
        if limits.max_conns > MAX_CONNS_CAP || limits.max_rooms > MAX_CONNS_CAP {
            bail!("max-conns and max-rooms must be at most {MAX_CONNS_CAP}");
        }
        // A Welcome lists every peer (8 bytes each): it must fit a frame.
        let welcome = 64 + 8 * limits.max_room_conns;
        if welcome > limits.max_frame {
            bail!(
                "max-room-conns {} needs max-frame of at least {welcome} bytes (a welcome lists every peer)",
                limits.max_room_conns
            );
        }
        let stats_interval = match args.stats_interval.or(file.stats_interval) {
            Some(v) => Some(secs("stats-interval", v)?).filter(|d| !d.is_zero()),
            None => Some(Duration::from_secs(60)),
        };
        let shutdown_grace = match args.shutdown_grace.or(file.shutdown_grace) {
            Some(v) => secs("shutdown-grace", v)?,
            None => Duration::from_secs(5),
        };
        let listen = match args.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let cert = args.cert.or(file.cert).context(
            "no certificate: pass --cert FILE (scripts/gen-certs.sh makes certs/relay.crt)",
        )?;
        let key = args.key.or(file.key).context(
            "no private key: pass --key FILE (scripts/gen-certs.sh makes certs/relay.key)",
        )?;
        let backplane = match args.backplane.or(file.backplane) {
            None => None,
            Some(servers) => {
                let servers: Vec<String> = servers
                    .into_iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if servers.is_empty() {
                    bail!("--backplane needs at least one NATS address");
                }
                let user = args.backplane_user.or(file.backplane_user);
                let password = args.backplane_password.or(file.backplane_password);
                let user = match (user, password) {
                    (Some(u), Some(p)) => Some((u, p)),
                    (None, None) => None,
                    _ => bail!("--backplane-user and --backplane-password go together"),
                };
                Some(crate::backplane::Options {
                    servers,
                    optional: args.backplane_optional || file.backplane_optional.unwrap_or(false),
                    user,
                    token: args.backplane_token.or(file.backplane_token),
                    ca: args.backplane_ca.or(file.backplane_ca),
                    nkey: args.backplane_nkey.or(file.backplane_nkey),
                    creds: args.backplane_creds.or(file.backplane_creds),
                })
            }
        };
        Ok(Config {
            listen,
            cert,
            key,
            limits,
            stats_interval,
            shutdown_grace,
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            backplane,
        })
    }
}

fn load_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag a message, error or help text of the relay (or of the
    /// wire crate it links) tells a user to type exists.
    #[test]
    fn every_flag_a_message_names_exists() {
        use clap::CommandFactory;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let named = crate::testing::flags_named_in(
            &[root.join("src"), root.join("../common/wire/src")],
            &[],
        );
        // Control: the walk does find the flags messages name.
        assert!(named.contains_key("--cert"), "{named:?}");
        let known = crate::testing::long_flags(&Args::command());
        crate::testing::assert_flags_exist("teamchat-relay", &named, &known);
    }

    fn parse(args: &[&str]) -> Result<Config> {
        let mut v = vec!["teamchat-relay"];
        v.extend_from_slice(args);
        Config::resolve(Args::try_parse_from(v)?)
    }

    #[test]
    fn defaults_apply_when_only_cert_and_key_are_given() {
        let c = parse(&["--cert", "c.pem", "--key", "k.pem"]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:7443");
        assert_eq!(c.limits.max_frame, 1 << 20);
        assert_eq!(c.limits.max_conns_per_ip, 64);
        assert_eq!(c.stats_interval, Some(Duration::from_secs(60)));
    }

    #[test]
    fn missing_certificate_is_a_clear_error() {
        let e = parse(&["--key", "k.pem"]).unwrap_err();
        assert!(e.to_string().contains("--cert"), "{e}");
    }

    #[test]
    fn file_values_apply_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("relay.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9000\"\ncert = \"a.crt\"\nkey = \"a.key\"\nmax_frame = 16384\nrate_frames = 7\n",
        )
        .unwrap();
        let c = parse(&["--config", f.to_str().unwrap(), "--rate-frames", "9"]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.limits.max_frame, 16384);
        assert_eq!(c.limits.rate_frames, 9);
    }

    #[test]
    fn the_backplane_is_off_unless_named_and_its_settings_come_from_file_or_flags() {
        let c = parse(&["--cert", "c", "--key", "k"]).unwrap();
        assert_eq!(c.backplane, None);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("relay.toml");
        std::fs::write(
            &f,
            "cert = \"a.crt\"\nkey = \"a.key\"\nbackplane = [\"nats://10.0.0.5:4222\"]\nbackplane_user = \"relays\"\nbackplane_password = \"pw\"\nbackplane_optional = true\n",
        )
        .unwrap();
        let c = parse(&["--config", f.to_str().unwrap()]).unwrap();
        let bp = c.backplane.unwrap();
        assert_eq!(bp.servers, vec!["nats://10.0.0.5:4222".to_string()]);
        assert_eq!(bp.user, Some(("relays".into(), "pw".into())));
        assert!(bp.optional);
        let c = parse(&[
            "--config",
            f.to_str().unwrap(),
            "--backplane",
            "nats://a:1, nats://b:2",
        ])
        .unwrap();
        assert_eq!(
            c.backplane.unwrap().servers,
            vec!["nats://a:1".to_string(), "nats://b:2".to_string()]
        );
        let e = parse(&[
            "--cert",
            "c",
            "--key",
            "k",
            "--backplane",
            "nats://a:1",
            "--backplane-user",
            "u",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("go together"), "{e}");
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("relay.toml");
        std::fs::write(&f, "listn = \"127.0.0.1:9000\"\n").unwrap();
        let e = parse(&["--config", f.to_str().unwrap()]).unwrap_err();
        assert!(format!("{e:#}").contains("unknown field"), "{e:#}");
        let e = parse(&["--cert", "c", "--key", "k", "--max-frame", "10"]).unwrap_err();
        assert!(e.to_string().contains("max-frame"), "{e}");
        let e = parse(&["--cert", "c", "--key", "k", "--idle-timeout=-1"]).unwrap_err();
        assert!(e.to_string().contains("idle-timeout"), "{e}");
    }
}
