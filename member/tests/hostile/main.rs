//! Files and private messages through a hostile relay over real TLS: a
//! relay written here, speaking the relay protocol (TLS with the pinned
//! certificate, Hello / Welcome, Publish / Deliver), that records every
//! frame it carries and may drop, flip, duplicate, reorder or inject
//! chunks. The members are the product's engines and drivers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use client::driver::{FileUpdate, Request};
use client::files::FileOptions;
use client::testing::{admin_engine, epoch_with, files_in, member_engine, Peer, WAIT};
use common::engine::admin::Admin;
use common::engine::{
    AdminConfig, ChunkFault, Command, Dropped, Engine, Event, Kind, OfferRefusal, Warning,
};
use common::invite::{Host, RelayEndpoint};
use common::test_keys::shared;
use common::wire::{
    decode_payload, encode_payload, ClientFrame, ConnId, Envelope, ErrorCode, FrameCodec,
    RelayError, RelayFrame, Welcome, DEFAULT_MAX_FRAME, PROTOCOL_VERSION,
};
use common::{Fingerprint, RoomId};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};
use zeroize::Zeroizing;

mod cut;
mod files;
mod freshness;
mod liveness;

/// What the relay does with one delivery: the payloads to deliver instead
/// (none drops it, two duplicate it).
type Tamper = Box<dyn FnMut(ConnId, &Bytes) -> Vec<Bytes> + Send>;

/// Every delivery the relay made: to whom, from whom, what.
type Log = Arc<Mutex<Vec<(ConnId, ConnId, Bytes)>>>;

struct Shared {
    conns: HashMap<ConnId, mpsc::UnboundedSender<RelayFrame>>,
    next: ConnId,
    tamper: Option<Tamper>,
    /// Connections whose link went half-open: nothing passes either way,
    /// and nothing closes.
    frozen: HashSet<ConnId>,
    /// Pings received from the clients.
    pings: usize,
}

/// A relay of one room that records everything and tampers on request.
struct HostileRelay {
    addr: SocketAddr,
    pin: Fingerprint,
    shared: Arc<Mutex<Shared>>,
    log: Log,
    _cert: relay::testing::Cert,
    task: tokio::task::JoinHandle<()>,
}

impl HostileRelay {
    async fn start() -> HostileRelay {
        let cert = relay::testing::make_cert();
        let (acceptor, fingerprint) = relay::tls::acceptor(&cert.cert, &cert.key).unwrap();
        let acceptor = Arc::new(acceptor);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            conns: HashMap::new(),
            next: 1,
            tamper: None,
            frozen: HashSet::new(),
            pings: 0,
        }));
        let log: Log = Arc::default();
        let (s, l) = (shared.clone(), log.clone());
        let task = tokio::spawn(async move {
            // Bounded: a test opens a handful of connections.
            for _ in 0..64 {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, s, l) = (acceptor.clone(), s.clone(), l.clone());
                tokio::spawn(async move {
                    let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
                    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
                    if Pin::new(&mut tls).accept().await.is_err() {
                        return;
                    }
                    serve(tls, s, l).await;
                });
            }
        });
        HostileRelay {
            addr,
            pin: fingerprint.parse().unwrap(),
            shared,
            log,
            _cert: cert,
            task,
        }
    }

    fn endpoint(&self) -> RelayEndpoint {
        RelayEndpoint {
            host: Host::V4(std::net::Ipv4Addr::LOCALHOST),
            port: self.addr.port(),
            cert: self.pin,
        }
    }

    fn tamper(&self, t: Option<Tamper>) {
        self.shared.lock().unwrap().tamper = t;
    }

    /// Delivers `payload` to everyone as if from a connection that is not
    /// in the room.
    fn inject(&self, payload: Bytes) {
        let s = self.shared.lock().unwrap();
        for tx in s.conns.values() {
            let _ = tx.send(RelayFrame::Deliver {
                from: 9999,
                payload: payload.clone(),
            });
        }
    }

    /// Closes the newest connection as the relay does: `code` in an error
    /// frame, then the end of the stream.
    fn cut_newest(&self, code: ErrorCode) {
        let s = self.shared.lock().unwrap();
        if let Some(tx) = s.conns.iter().max_by_key(|(id, _)| **id).map(|(_, tx)| tx) {
            let _ = tx.send(RelayFrame::Error(RelayError {
                code,
                message: code.to_string(),
            }));
        }
    }

    /// The newest connection's link goes half-open, as when a laptop
    /// changes networks: from now on nothing passes either way, and
    /// nothing closes it. Returns its id.
    fn freeze_newest(&self) -> ConnId {
        let mut s = self.shared.lock().unwrap();
        let newest = s.conns.keys().copied().max().expect("a connection");
        s.frozen.insert(newest);
        newest
    }

    /// Pings received so far, from every client.
    fn pings(&self) -> usize {
        self.shared.lock().unwrap().pings
    }

    /// Everything delivered so far, as (to, from, payload).
    fn carried(&self) -> Vec<(ConnId, ConnId, Bytes)> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for HostileRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    tls: tokio_openssl::SslStream<tokio::net::TcpStream>,
    shared: Arc<Mutex<Shared>>,
    log: Log,
) {
    let (r, w) = tokio::io::split(tls);
    let mut rx = FramedRead::new(r, FrameCodec::<ClientFrame>::new(DEFAULT_MAX_FRAME));
    let mut tx = FramedWrite::new(w, FrameCodec::<ClientFrame>::new(DEFAULT_MAX_FRAME));
    let Some(Ok(ClientFrame::Hello(_))) = rx.next().await else {
        return;
    };
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<RelayFrame>();
    let me = {
        let mut s = shared.lock().unwrap();
        let me = s.next;
        s.next += 1;
        let peers: Vec<ConnId> = s.conns.keys().copied().collect();
        for tx in s.conns.values() {
            let _ = tx.send(RelayFrame::PeerJoined(me));
        }
        let _ = out_tx.send(RelayFrame::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            conn_id: me,
            peers,
            max_frame: DEFAULT_MAX_FRAME as u32,
        }));
        s.conns.insert(me, out_tx.clone());
        me
    };
    let frozen = {
        let shared = shared.clone();
        move || shared.lock().unwrap().frozen.contains(&me)
    };
    let is_frozen = frozen.clone();
    let writer = tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if is_frozen() {
                continue;
            }
            let last = matches!(&f, RelayFrame::Error(e) if e.code.is_fatal());
            if tx.send(f).await.is_err() || last {
                let _ = SinkExt::<RelayFrame>::close(&mut tx).await;
                return;
            }
        }
    });
    while let Some(Ok(frame)) = rx.next().await {
        if frozen() {
            // Half-open: read nothing more, close nothing (bounded: the
            // test ends long before).
            tokio::time::sleep(Duration::from_secs(600)).await;
            return;
        }
        match frame {
            ClientFrame::Publish { to, payload } | ClientFrame::PublishBulk { to, payload } => {
                let mut s = shared.lock().unwrap();
                let targets: Vec<ConnId> = s
                    .conns
                    .keys()
                    .copied()
                    .filter(|c| *c != me && to.is_none_or(|t| t == *c))
                    .collect();
                for t in targets {
                    let payloads = match s.tamper.as_mut() {
                        Some(f) => f(t, &payload),
                        None => vec![payload.clone()],
                    };
                    for p in payloads {
                        log.lock().unwrap().push((t, me, p.clone()));
                        if let Some(tx) = s.conns.get(&t) {
                            let _ = tx.send(RelayFrame::Deliver {
                                from: me,
                                payload: p,
                            });
                        }
                    }
                }
            }
            ClientFrame::Ping(n) => {
                shared.lock().unwrap().pings += 1;
                let _ = out_tx.send(RelayFrame::Pong(n));
            }
            ClientFrame::Pong(_) | ClientFrame::Hello(_) => {}
        }
    }
    let mut s = shared.lock().unwrap();
    s.conns.remove(&me);
    for tx in s.conns.values() {
        let _ = tx.send(RelayFrame::PeerLeft(me));
    }
    writer.abort();
}

fn envelope(p: &Bytes) -> Option<Envelope> {
    decode_payload(p, DEFAULT_MAX_FRAME).ok()
}

fn chunk_index(p: &Bytes) -> Option<u32> {
    match envelope(p) {
        Some(Envelope::FileChunk(c) | Envelope::PrivateChunk(c)) => Some(c.header.index),
        _ => None,
    }
}

fn encode(e: &Envelope) -> Bytes {
    encode_payload(e, DEFAULT_MAX_FRAME).unwrap().into()
}

// ---- the room ---------------------------------------------------------------

/// A peer on the hostile relay, downloads in `dir`: files up to `max`
/// bytes, saved without asking up to `auto_accept`.
fn peer(engine: Engine, relay: RelayEndpoint, dir: &Path, max: u64, auto_accept: u64) -> Peer {
    Peer::start(engine, vec![relay], files_in(dir, max, auto_accept))
}

/// The file limit of most of these tests.
const MAX_FILE: u64 = 32 * 1024 * 1024;

struct Room {
    id: RoomId,
    relay: HostileRelay,
    admin: Peer,
    alice: Peer,
    bob: Peer,
    dirs: Vec<tempfile::TempDir>,
}

/// Admin (key 4), alice (0) and bob (1), joined by password through the
/// hostile relay (which does not tamper while they join).
async fn room() -> Room {
    room_with(None).await
}

/// [`room`] with alice sending files at most `alice_rate` bytes a second.
async fn room_with(alice_rate: Option<u64>) -> Room {
    let relay = HostileRelay::start().await;
    let ep = relay.endpoint();
    let room = common::crypto::random_room_id();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut admin = peer(
        admin_engine(room, "hostile", 4, Some("pw"), HashSet::new()),
        ep.clone(),
        dirs[3].path(),
        MAX_FILE,
        MAX_FILE,
    );
    admin.expect("the first epoch", epoch_with(1)).await;
    let member = |name: &str, key: usize, dir: &Path, rate: Option<u64>| {
        let admin = shared(4).public().fingerprint();
        let engine = member_engine(room, admin, name, key, Some("pw"));
        let files = FileOptions {
            rate,
            ..files_in(dir, MAX_FILE, MAX_FILE)
        };
        Peer::start(engine, vec![ep.clone()], files)
    };
    let mut alice = member("alice", 0, dirs[0].path(), alice_rate);
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = member("bob", 1, dirs[1].path(), None);
    bob.expect("bob's epoch", epoch_with(3)).await;
    alice.expect("alice sees bob", epoch_with(3)).await;
    admin.expect("the admin sees three", epoch_with(3)).await;
    Room {
        id: room,
        relay,
        admin,
        alice,
        bob,
        dirs,
    }
}

fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

/// Alice sends `body` as `name` to the room.
async fn alice_sends(r: &mut Room, name: &str, body: &[u8]) {
    let path = r.dirs[2].path().join(name);
    std::fs::write(&path, body).unwrap();
    r.alice
        .cmd
        .send(Request::SendFile { path, to: None })
        .await
        .unwrap();
}

/// Bob's download folder: the names of what is in it.
fn bob_has(r: &Room) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(r.dirs[1].path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Bob ends the transfer without a file, with a warning, and nothing (not
/// even a partial file) is left in his folder.
async fn bob_gets_no_file(r: &mut Room, why: &str) {
    let failed = r
        .bob
        .expect_file(why, WAIT, |f| matches!(f, FileUpdate::Failed { .. }))
        .await;
    assert!(matches!(failed, FileUpdate::Failed { .. }));
    r.bob.settle(Duration::from_millis(500)).await;
    assert!(
        !r.bob
            .files
            .iter()
            .any(|f| matches!(f, FileUpdate::Saved { .. })),
        "{why}: nothing saved"
    );
    assert!(!r.bob.warnings().is_empty(), "{why}: a warning is shown");
    assert_eq!(
        bob_has(r),
        Vec::<String>::new(),
        "{why}: the folder is empty"
    );
}

/// Bob saves exactly `body`.
async fn bob_gets(r: &mut Room, name: &str, body: &[u8]) {
    let saved = r
        .bob
        .expect_file(&format!("bob saves {name}"), WAIT, |f| {
            matches!(f, FileUpdate::Saved { .. })
        })
        .await;
    let FileUpdate::Saved { path, .. } = saved else {
        unreachable!()
    };
    assert!(
        std::fs::read(&path).unwrap() == body,
        "{name} bit-identical"
    );
    assert_eq!(bob_has(r), vec![name.to_string()]);
}

const CHUNK: usize = common::engine::files::CHUNK_SIZE as usize;
