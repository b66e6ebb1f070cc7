//! A small network made by the test: one namespace for the relays, one per
//! app, and between each app and the relays a point-to-point link of two
//! TUN devices whose packets a forwarder thread carries with a one-way
//! delay, a loss rate and a list of TCP ports it drops (a link cut without
//! a close: no FIN, no RST, the packets just stop). The kernel's netem
//! would do the delay and loss, but not every kernel has it (this one does
//! not), so the forwarder does it in user space. Apps and relays are the
//! real driver and the real relay, each on a runtime of its own in a
//! thread that entered its namespace (`setns`): every socket they open is
//! in that namespace. Everything is removed when the [`Lab`] is dropped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use client::driver;
use client::testing::Peer;
use common::engine::Engine;
use common::invite::{Host, RelayEndpoint};
use relay::testing::{test_limits, TestRelay};
use tokio::sync::oneshot;
use tun_tap::{Iface, Mode};

/// How a link carries packets, both ways.
#[derive(Debug, Clone)]
pub struct Shaping {
    /// Added to each packet, each way (half the added round trip).
    pub one_way: Duration,
    /// Share of packets dropped, each way (0.0 to 1.0).
    pub loss: f64,
    /// TCP ports whose packets are dropped (a cut link).
    pub cut: HashSet<u16>,
}

impl Shaping {
    /// A round trip of `rtt` and a loss of `loss` each way.
    pub fn new(rtt: Duration, loss: f64) -> Shaping {
        Shaping {
            one_way: rtt / 2,
            loss,
            cut: HashSet::new(),
        }
    }
}

/// Runs `cmd` (`ip …`), failing the test with its output if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the ip command (iproute2) runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TUN device (no packet information header, non-blocking), removed
/// when dropped.
fn tun(name: &str) -> Iface {
    let iface = Iface::without_packet_info(name, Mode::Tun)
        .unwrap_or_else(|e| panic!("TUN device {name} (needs root): {e}"));
    iface.set_non_blocking().unwrap();
    iface
}

/// Enters the network namespace `ns` (this thread only).
fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}"))
        .unwrap_or_else(|e| panic!("open netns {ns}: {e}"));
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("setns {ns}: {e}"));
}

/// A thread in namespace `ns` running `body` on a runtime of its own until
/// `stop` fires (or `body` ends); the runtime, and every socket it holds,
/// is dropped then.
fn in_namespace<F, Fut>(ns: &str, body: F) -> (oneshot::Sender<()>, JoinHandle<()>)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let ns = ns.to_string();
    let handle = std::thread::spawn(move || {
        enter(&ns);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tokio::select! {
                _ = stopped => {}
                () = body() => {}
            }
        });
        rt.shutdown_background();
    });
    (stop, handle)
}

struct Queued {
    due: Instant,
    seq: u64,
    out: usize,
    packet: Vec<u8>,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// The TCP ports of an IPv4 packet, if it is TCP.
fn tcp_ports(p: &[u8]) -> Option<(u16, u16)> {
    if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 6 {
        return None;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let ports = p.get(ihl..ihl + 4)?;
    Some((
        u16::from_be_bytes([ports[0], ports[1]]),
        u16::from_be_bytes([ports[2], ports[3]]),
    ))
}

/// Carries packets between each pair of TUN devices (`ifaces[2k]` and
/// `ifaces[2k + 1]`) as `shaping` says, until `stop`: reads whatever is
/// waiting, holds each packet for the one-way delay (in order), and sleeps
/// a millisecond when there is nothing to do.
fn forward(ifaces: Vec<Iface>, shaping: Arc<Mutex<Shaping>>, stop: Arc<AtomicBool>) {
    let mut queue: BinaryHeap<Reverse<Queued>> = BinaryHeap::new();
    let mut seq = 0u64;
    // xorshift64*: the loss pattern is the same each run.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let s = shaping.lock().unwrap().clone();
        let mut busy = false;
        for (i, iface) in ifaces.iter().enumerate() {
            for _ in 0..256 {
                let Ok(n) = iface.recv(&mut buf) else { break };
                if n == 0 {
                    break;
                }
                busy = true;
                let packet = &buf[..n];
                if tcp_ports(packet).is_some_and(|(a, b)| s.cut.contains(&a) || s.cut.contains(&b))
                {
                    continue;
                }
                rng ^= rng >> 12;
                rng ^= rng << 25;
                rng ^= rng >> 27;
                let draw =
                    (rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
                if draw < s.loss {
                    continue;
                }
                seq += 1;
                queue.push(Reverse(Queued {
                    due: Instant::now() + s.one_way,
                    seq,
                    out: i ^ 1,
                    packet: packet.to_vec(),
                }));
            }
        }
        let now = Instant::now();
        while queue.peek().is_some_and(|q| q.0.due <= now) {
            let Some(Reverse(q)) = queue.pop() else { break };
            // A full device drops it, as a congested link would.
            let _ = ifaces[q.out].send(&q.packet);
            busy = true;
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A copy of `cert` in a directory of its own.
fn copy_cert(cert: &relay::testing::Cert) -> relay::testing::Cert {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = (dir.path().join("relay.crt"), dir.path().join("relay.key"));
    std::fs::copy(&cert.cert, &c).unwrap();
    std::fs::copy(&cert.key, &k).unwrap();
    relay::testing::Cert {
        dir,
        cert: c,
        key: k,
    }
}

/// A relay running in the lab's relay namespace.
pub struct LabRelay {
    /// Its port (on every link's relay side, 10.77.k.1).
    pub port: u16,
    /// Its certificate's SHA-256.
    pub fingerprint: String,
    /// Its certificate (a restart at the same port keeps it).
    cert: Option<relay::testing::Cert>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LabRelay {
    /// Its address as app `k` reaches it.
    pub fn endpoint(&self, k: usize) -> RelayEndpoint {
        RelayEndpoint {
            host: Host::V4(Ipv4Addr::new(10, 77, k as u8, 1)),
            port: self.port,
            cert: self.fingerprint.parse().unwrap(),
        }
    }

    /// Its certificate, for a relay started again in its place.
    pub fn take_cert(&mut self) -> relay::testing::Cert {
        self.cert.take().expect("the certificate is still here")
    }

    /// The relay process dies: its runtime and every socket go at once.
    pub fn kill(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LabRelay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The namespaces, links and forwarder of one test.
pub struct Lab {
    relays_ns: String,
    apps: Vec<String>,
    shaping: Arc<Mutex<Shaping>>,
    stop: Arc<AtomicBool>,
    forwarder: Option<JoinHandle<()>>,
    threads: Mutex<Vec<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Lab {
    /// A relay namespace and `apps` app namespaces, app `k` linked to the
    /// relays through 10.77.k.2 ↔ 10.77.k.1, shaped as `shaping` says.
    pub fn new(apps: usize, shaping: Shaping) -> Lab {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let relays_ns = format!("tcr{tag}");
        ip(&["netns", "add", &relays_ns]);
        ip(&["-n", &relays_ns, "link", "set", "lo", "up"]);
        let mut lab = Lab {
            relays_ns: relays_ns.clone(),
            apps: Vec::new(),
            shaping: Arc::new(Mutex::new(shaping)),
            stop: Arc::new(AtomicBool::new(false)),
            forwarder: None,
            threads: Mutex::new(Vec::new()),
        };
        let mut ifaces = Vec::new();
        for k in 0..apps {
            let ns = format!("tca{tag}y{k}");
            ip(&["netns", "add", &ns]);
            lab.apps.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let (a, r) = (format!("ta{tag}y{k}"), format!("tr{tag}y{k}"));
            let (fa, fr) = (tun(&a), tun(&r));
            let (app_ip, relay_ip) = (format!("10.77.{k}.2"), format!("10.77.{k}.1"));
            ip(&["link", "set", &a, "netns", &ns]);
            ip(&["link", "set", &r, "netns", &relays_ns]);
            ip(&[
                "-n", &ns, "addr", "add", &app_ip, "peer", &relay_ip, "dev", &a,
            ]);
            ip(&[
                "-n", &relays_ns, "addr", "add", &relay_ip, "peer", &app_ip, "dev", &r,
            ]);
            ip(&["-n", &ns, "link", "set", &a, "up"]);
            ip(&["-n", &relays_ns, "link", "set", &r, "up"]);
            ifaces.push(fa);
            ifaces.push(fr);
        }
        let (shaping, stop) = (Arc::clone(&lab.shaping), Arc::clone(&lab.stop));
        lab.forwarder = Some(std::thread::spawn(move || forward(ifaces, shaping, stop)));
        lab
    }

    /// Starts a relay (test limits) in the relay namespace.
    pub fn relay(&self) -> LabRelay {
        self.relay_at(0, None)
    }

    /// Starts a relay on `port` (0: any) with `cert` (a restart keeps both).
    pub fn relay_at(&self, port: u16, cert: Option<relay::testing::Cert>) -> LabRelay {
        let cert = cert.unwrap_or_else(relay::testing::make_cert);
        let theirs = copy_cert(&cert);
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, thread) = in_namespace(&self.relays_ns, move || async move {
            let cert = theirs;
            let listen = std::net::SocketAddr::from(([0, 0, 0, 0], port));
            let r = TestRelay::start_at(test_limits_long(), listen, cert).await;
            tx.send((r.addr.port(), r.fingerprint.clone())).unwrap();
            std::future::pending::<()>().await;
            drop(r);
        });
        let (port, fingerprint) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the relay starts");
        LabRelay {
            port,
            fingerprint,
            cert: Some(cert),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Starts app `k`'s driver for `engine` on `relays` (tried in turn).
    pub fn peer(&self, k: usize, engine: Engine, relays: Vec<RelayEndpoint>) -> Peer {
        let (tx, rx) = std::sync::mpsc::channel();
        let entry = in_namespace(&self.apps[k], move || async move {
            let p = Peer::start_with(engine, relays, driver::Options::default());
            tx.send(p).unwrap();
            std::future::pending::<()>().await;
        });
        self.threads.lock().unwrap().push(entry);
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the app starts")
    }

    /// Drops every packet to or from `port` (a relay's), both ways, on
    /// every link: its connections go half-open.
    pub fn cut(&self, port: u16) {
        self.shaping.lock().unwrap().cut.insert(port);
    }
}

/// The relay's test limits, with the default idle timeout: the lab's
/// links are slow on purpose, and the apps' own keepalive is under test.
fn test_limits_long() -> relay::Limits {
    relay::Limits {
        idle_timeout: relay::Limits::default().idle_timeout,
        ..test_limits()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (stop, thread) in self.threads.lock().unwrap().drain(..) {
            let _ = stop.send(());
            let _ = thread.join();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(f) = self.forwarder.take() {
            let _ = f.join();
        }
        // The TUN devices went with the forwarder's descriptors.
        for ns in self.apps.iter().chain(std::iter::once(&self.relays_ns)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
