//! Test support (feature `test-support`): a throwaway certificate and a
//! relay on 127.0.0.1 with an ephemeral port, for this crate's tests and the
//! apps' end-to-end tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};
use tokio_util::sync::CancellationToken;

use crate::stats::Stats;
use crate::{Config, Limits, Relay};

/// A self-signed ECDSA P-256 certificate for `localhost` and 127.0.0.1, in
/// a temporary directory that lives as long as this value.
#[derive(Debug)]
pub struct Cert {
    /// The directory holding the files.
    pub dir: tempfile::TempDir,
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// Makes a fresh certificate.
pub fn make_cert() -> Cert {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let x509 = b.build();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("relay.crt");
    let keyf = dir.path().join("relay.key");
    std::fs::write(&cert, x509.to_pem().unwrap()).unwrap();
    std::fs::write(&keyf, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    Cert {
        dir,
        cert,
        key: keyf,
    }
}

/// Limits for tests: defaults with short timeouts.
pub fn test_limits() -> Limits {
    Limits {
        handshake_timeout: Duration::from_secs(2),
        hello_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// A running relay on 127.0.0.1; cancel `stop` to shut it down.
#[derive(Debug)]
pub struct TestRelay {
    /// Where it listens.
    pub addr: SocketAddr,
    /// SHA-256 of its certificate, lowercase hex.
    pub fingerprint: String,
    /// Its counters.
    pub stats: Arc<Stats>,
    /// What its connections' queues hold.
    pub budget: Arc<crate::queue::Budget>,
    /// Cancel to shut it down.
    pub stop: CancellationToken,
    /// The serving task.
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Its certificate.
    pub cert: Cert,
}

impl TestRelay {
    /// Starts a relay with `limits` on an ephemeral loopback port.
    pub async fn start(limits: Limits) -> TestRelay {
        Self::start_at(limits, "127.0.0.1:0".parse().unwrap(), make_cert()).await
    }

    /// Starts a relay with `limits` at `listen` with `cert` (to restart a
    /// relay where clients expect it).
    pub async fn start_at(limits: Limits, listen: SocketAddr, cert: Cert) -> TestRelay {
        Self::start_with(limits, listen, cert, None).await
    }

    /// Starts a relay on an ephemeral loopback port that shares its rooms
    /// over the NATS `servers` (the backplane).
    pub async fn start_shared(limits: Limits, servers: &[String], optional: bool) -> TestRelay {
        let opts = crate::backplane::Options {
            servers: servers.to_vec(),
            optional,
            ..Default::default()
        };
        Self::start_backplane(limits, opts).await
    }

    /// Starts a relay on an ephemeral loopback port with the backplane
    /// `opts` as given (credentials, TLS).
    pub async fn start_backplane(limits: Limits, opts: crate::backplane::Options) -> TestRelay {
        Self::start_with(
            limits,
            "127.0.0.1:0".parse().unwrap(),
            make_cert(),
            Some(opts),
        )
        .await
    }

    async fn start_with(
        limits: Limits,
        listen: SocketAddr,
        cert: Cert,
        backplane: Option<crate::backplane::Options>,
    ) -> TestRelay {
        let config = Config {
            listen,
            cert: cert.cert.clone(),
            key: cert.key.clone(),
            limits,
            stats_interval: None,
            shutdown_grace: Duration::from_secs(3),
            log: "warn".into(),
            backplane,
        };
        let relay = Relay::bind(config).await.unwrap();
        let addr = relay.local_addr().unwrap();
        let fingerprint = relay.fingerprint().to_string();
        let stats = relay.stats();
        let budget = relay.budget();
        let stop = CancellationToken::new();
        let task = tokio::spawn(relay.run(stop.clone()));
        TestRelay {
            addr,
            fingerprint,
            stats,
            budget,
            stop,
            task,
            cert,
        }
    }
}

/// A relay's own runtime: [`Crash::now`] drops it with every task and
/// socket, as killing the process would (no goodbye to clients or to the
/// other relays).
#[derive(Debug)]
pub struct Crash {
    rt: Option<tokio::runtime::Runtime>,
}

impl Crash {
    /// Kills the relay.
    pub fn now(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Crash {
    fn drop(&mut self) {
        self.now();
    }
}

impl TestRelay {
    /// Like [`TestRelay::start_shared`], on a runtime of its own that
    /// [`Crash::now`] kills.
    pub async fn start_crashable(limits: Limits, servers: Vec<String>) -> (TestRelay, Crash) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let relay = rt
            .spawn(async move { TestRelay::start_shared(limits, &servers, false).await })
            .await
            .unwrap();
        (relay, Crash { rt: Some(rt) })
    }
}

/// A nats-server child process (Debian's `nats-server`) on 127.0.0.1;
/// killed when dropped.
#[derive(Debug)]
pub struct TestNats {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TestNats {
    /// On an ephemeral port.
    pub fn start() -> TestNats {
        TestNats::start_on(None)
    }

    /// On `port`, or an ephemeral one.
    pub fn start_on(port: Option<u16>) -> TestNats {
        let port_arg = port.map_or("-1".to_string(), |p| p.to_string());
        TestNats::spawn(&["-a", "127.0.0.1", "-p", &port_arg], &[])
    }

    /// With the configuration file `conf` (it must listen on 127.0.0.1).
    pub fn start_config(conf: &std::path::Path) -> TestNats {
        TestNats::spawn(&["-c", &conf.display().to_string()], &[])
    }

    /// Runs nats-server with `args` and `env`, and waits for its client port.
    fn spawn(args: &[&str], env: &[(&str, String)]) -> TestNats {
        TestNats::try_spawn(args, env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`TestNats::spawn`], or why the server did not come up (it exited:
    /// a port it was given was taken meanwhile; or it never said it
    /// listened).
    fn try_spawn(args: &[&str], env: &[(&str, String)]) -> Result<TestNats, String> {
        let dir = tempfile::tempdir().unwrap();
        // Debian installs it in /usr/sbin, which a user's PATH may lack.
        let bin = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let mut child = Command::new(bin)
            .args(args)
            .arg("--ports_file_dir")
            .arg(dir.path())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server ({e}): install Debian's nats-server package")
            });
        // The server writes its ports to a file once it listens.
        let file = dir.path().join(format!("nats-server_{}.ports", child.id()));
        for _ in 0..300 {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if let Some(port) = parse_port(&text) {
                    return Ok(TestNats {
                        child,
                        port,
                        _dir: dir,
                    });
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("nats-server exited before listening ({status})"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "nats-server did not report its port in {} within 15 s",
            file.display()
        ))
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops it; returns its port (to start it again there).
    pub fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A three-node NATS cluster on 127.0.0.1 run from
/// `docs/deploy/nats-node.conf` (the configuration DEPLOY.md gives), with
/// user `relays` and [`TestNatsCluster::PASSWORD`]; killed when dropped.
#[derive(Debug)]
pub struct TestNatsCluster {
    nodes: Vec<Option<TestNats>>,
}

impl TestNatsCluster {
    /// The relays' password.
    pub const PASSWORD: &'static str = "relays-test-password";

    /// Starts the three nodes and waits until they are routed together.
    /// Cluster ports must be known to every node before it starts, so they
    /// are free ports taken and released: another test may take one in
    /// between, and then a node exits; the cluster is started again on
    /// fresh ports (three tries).
    pub fn start() -> TestNatsCluster {
        let mut why = String::new();
        for _ in 0..3 {
            match TestNatsCluster::try_start() {
                Ok(cluster) => return cluster,
                Err(e) => why = e,
            }
        }
        panic!("the NATS cluster did not start: {why}");
    }

    fn try_start() -> Result<TestNatsCluster, String> {
        let conf =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy/nats-node.conf");
        // Client ports are ephemeral, read from the ports file.
        let ports: Vec<u16> = (0..3)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let route = |p: u16| format!("nats-route://route:route-test-password@127.0.0.1:{p}");
        let nodes = (0..3)
            .map(|i| {
                let env = vec![
                    ("NODE_NAME", format!("nats-{}", i + 1)),
                    ("CLIENT_LISTEN", "127.0.0.1:-1".to_string()),
                    ("CLUSTER_LISTEN", format!("127.0.0.1:{}", ports[i])),
                    ("ROUTE_1", route(ports[0])),
                    ("ROUTE_2", route(ports[1])),
                    ("ROUTE_3", route(ports[2])),
                    ("RELAYS_PASSWORD", Self::PASSWORD.to_string()),
                    ("ROUTE_PASSWORD", "route-test-password".to_string()),
                ];
                TestNats::try_spawn(&["-c", &conf.display().to_string()], &env).map(Some)
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut cluster = TestNatsCluster { nodes };
        // Routed: a message published on one node reaches a subscriber on
        // another (checked by the tests themselves); give routes a moment.
        std::thread::sleep(Duration::from_millis(500));
        for node in cluster.nodes.iter_mut().flatten() {
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(format!("a nats-server node exited ({status})"));
            }
        }
        Ok(cluster)
    }

    /// Node `i`'s client address, `nats://127.0.0.1:PORT`.
    pub fn url(&self, i: usize) -> String {
        self.nodes[i]
            .as_ref()
            .map(TestNats::url)
            .unwrap_or_default()
    }

    /// Kills node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.stop();
        }
    }
}

/// The client port from nats-server's ports file
/// (`{"nats":["nats://127.0.0.1:PORT"], ...}`).
fn parse_port(text: &str) -> Option<u16> {
    let rest = &text[text.find("nats://127.0.0.1:")? + "nats://127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Every `--flag` that the Rust and Slint sources under `roots` name in a
/// string literal or a doc comment (clap's help text) — the flags a
/// message, an error or a help text tells a user to type — with the first
/// `file:line` naming it. Test code is left out (files under `tests/`,
/// `testing.rs`, `fuzzing.rs`, and a file's `mod tests`), as are paths in
/// `skip` and pieces that quote a `cargo` command (whose flags are cargo's). The apps' and the
/// relay's tests check each against their command line.
pub fn flags_named_in(
    roots: &[PathBuf],
    skip: &[PathBuf],
) -> std::collections::BTreeMap<String, String> {
    let mut files = Vec::new();
    let mut dirs: Vec<PathBuf> = roots.to_vec();
    while let Some(d) = dirs.pop() {
        if skip.contains(&d) {
            continue;
        }
        if d.is_file() {
            files.push(d);
            continue;
        }
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if skip.contains(&p) || ["tests", "testing.rs", "fuzzing.rs"].contains(&name) {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else if name.ends_with(".rs") || name.ends_with(".slint") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut named = std::collections::BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            // The tests module ends what is scanned (not any item that is
            // only compiled for tests).
            let next = lines.get(n + 1).map(|l| l.trim()).unwrap_or("");
            if line.trim() == "#[cfg(test)]" && next.starts_with("mod tests") {
                break;
            }
            // Doc comments are help text (clap shows them); in code, the
            // odd pieces between quotes are inside string literals.
            let doc = line.trim_start().strip_prefix("///");
            let pieces: Vec<&str> = match doc {
                Some(d) => vec![d],
                None => line.split('"').skip(1).step_by(2).collect(),
            };
            for lit in pieces {
                if lit.contains("cargo ") {
                    continue;
                }
                for (i, _) in lit.match_indices("--") {
                    let before = lit[..i].chars().next_back();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '-') {
                        continue;
                    }
                    let flag: String = lit[i + 2..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                        .collect();
                    if flag.starts_with(|c: char| c.is_ascii_lowercase()) {
                        named
                            .entry(format!("--{}", flag.trim_end_matches('-')))
                            .or_insert_with(|| format!("{}:{}", f.display(), n + 1));
                    }
                }
            }
        }
    }
    named
}

/// The long flags of a clap command, with `--help` and `--version`.
pub fn long_flags(cmd: &clap::Command) -> std::collections::BTreeSet<String> {
    cmd.get_arguments()
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .chain(["--help".into(), "--version".into()])
        .collect()
}

/// The flag check of an app (`app` is "admin" or "member", `workspace`
/// the repository root): every flag that a message, error or help text
/// the app can show (its own, the shared crates', the window's) tells a
/// user to type is one of `cmd`'s.
pub fn assert_app_flags_exist(workspace: &std::path::Path, app: &str, cmd: &clap::Command) {
    let other = if app == "admin" { "member" } else { "admin" };
    let named = flags_named_in(
        &[
            workspace.join(app).join("src"),
            workspace.join("common/src"),
            workspace.join("common/client/src"),
            workspace.join("ui/src"),
            workspace.join("ui/ui"),
        ],
        &[workspace.join(format!("ui/src/{other}.rs"))],
    );
    // Control: the walk does find the flags messages name.
    assert!(named.contains_key("--cli"), "{named:?}");
    assert_flags_exist(&format!("teamchat-{app}"), &named, &long_flags(cmd));
}

/// Panics, listing them, if `named` holds a flag `known` lacks.
pub fn assert_flags_exist(
    what: &str,
    named: &std::collections::BTreeMap<String, String>,
    known: &std::collections::BTreeSet<String>,
) {
    let missing: Vec<String> = named
        .iter()
        .filter(|(flag, _)| !known.contains(*flag))
        .map(|(flag, at)| format!("{flag} (named at {at})"))
        .collect();
    assert!(
        missing.is_empty(),
        "{what} has no such flag: {}",
        missing.join(", ")
    );
}
