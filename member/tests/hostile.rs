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
use client::testing::{admin_engine, epoch_with, files_in, member_engine, Peer, WAIT};
use common::engine::admin::Admin;
use common::engine::{AdminConfig, Command, Engine, Event};
use common::invite::{Host, RelayEndpoint};
use common::test_keys::shared;
use common::wire::{
    decode_payload, encode_payload, ClientFrame, ConnId, Envelope, FrameCodec, RelayFrame, Welcome,
    DEFAULT_MAX_FRAME, PROTOCOL_VERSION,
};
use common::{Fingerprint, RoomId};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};
use zeroize::Zeroizing;

/// What the relay does with one delivery: the payloads to deliver instead
/// (none drops it, two duplicate it).
type Tamper = Box<dyn FnMut(ConnId, &Bytes) -> Vec<Bytes> + Send>;

/// Every delivery the relay made: to whom, from whom, what.
type Log = Arc<Mutex<Vec<(ConnId, ConnId, Bytes)>>>;

struct Shared {
    conns: HashMap<ConnId, mpsc::UnboundedSender<RelayFrame>>,
    next: ConnId,
    tamper: Option<Tamper>,
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
    let writer = tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if tx.send(f).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(frame)) = rx.next().await {
        match frame {
            ClientFrame::Publish { to, payload } => {
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
    let member = |name: &str, key: usize, dir: &Path| {
        let admin = shared(4).public().fingerprint();
        let engine = member_engine(room, admin, name, key, Some("pw"));
        peer(engine, ep.clone(), dir, MAX_FILE, MAX_FILE)
    };
    let mut alice = member("alice", 0, dirs[0].path());
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = member("bob", 1, dirs[1].path());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_drops_a_chunk_leaves_no_file_and_a_warning() {
    let mut r = room().await;
    r.relay.tamper(Some(Box::new(|_, p: &Bytes| {
        if chunk_index(p) == Some(1) {
            Vec::new()
        } else {
            vec![p.clone()]
        }
    })));
    alice_sends(&mut r, "plan.pdf", &content(4 * CHUNK - 7, 1)).await;
    bob_gets_no_file(&mut r, "a dropped chunk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_flips_a_chunk_leaves_no_file_and_a_warning() {
    let mut r = room().await;
    r.relay.tamper(Some(Box::new(|_, p: &Bytes| {
        if chunk_index(p) == Some(2) {
            let mut v = p.to_vec();
            let at = v.len() - 100;
            v[at] ^= 0x20;
            vec![Bytes::from(v)]
        } else {
            vec![p.clone()]
        }
    })));
    alice_sends(&mut r, "plan.pdf", &content(4 * CHUNK - 7, 2)).await;
    bob_gets_no_file(&mut r, "a flipped chunk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_injected_from_outside_the_room_is_refused_with_a_warning() {
    let mut r = room().await;
    // The relay holds no room key: it copies the header of alice's chunk 1
    // (the transfer id and index it can see) onto bytes it made up, and
    // delivers its forgery before the real chunk.
    let forged = Arc::new(Mutex::new(HashSet::new()));
    r.relay.tamper(Some(Box::new(move |to, p: &Bytes| {
        if let Some(Envelope::FileChunk(mut c)) = envelope(p) {
            if c.header.index == 1 && forged.lock().unwrap().insert(to) {
                c.sealed.ciphertext = Bytes::from(vec![0x41; c.sealed.ciphertext.len()]);
                c.sealed.tag = [7; 32];
                return vec![encode(&Envelope::FileChunk(c)), p.clone()];
            }
        }
        vec![p.clone()]
    })));
    let body = content(4 * CHUNK - 7, 3);
    alice_sends(&mut r, "plan.pdf", &body).await;
    // Never a wrong file: the forgery is dropped with a warning, and the
    // real chunks still make the right file.
    bob_gets(&mut r, "plan.pdf", &body).await;
    assert!(
        r.bob
            .warnings()
            .iter()
            .any(|w| w.contains("failed authentication")),
        "{:?}",
        r.bob.warnings()
    );
    // A chunk from a connection that is not in the room at all, for a
    // transfer nobody offered: dropped, nothing shown.
    r.relay.tamper(None);
    r.relay.inject(Bytes::from_static(b"\x08\x00garbage"));
    r.bob.settle(Duration::from_millis(500)).await;
    assert_eq!(bob_has(&r), vec!["plan.pdf".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_chunks_give_the_right_file_and_reordered_ones_none() {
    let mut r = room().await;
    r.relay.tamper(Some(Box::new(|_, p: &Bytes| {
        if chunk_index(p).is_some() {
            vec![p.clone(), p.clone()]
        } else {
            vec![p.clone()]
        }
    })));
    let body = content(4 * CHUNK - 7, 4);
    alice_sends(&mut r, "twice.bin", &body).await;
    bob_gets(&mut r, "twice.bin", &body).await;
    assert!(r.bob.warnings().iter().any(|w| w.contains("duplicated")));
    r.alice
        .expect_file("alice's first file sent", WAIT, |f| {
            matches!(f, FileUpdate::Sent { .. })
        })
        .await;

    // Chunk 1 held back and delivered after chunk 2.
    let held: Arc<Mutex<HashMap<ConnId, Bytes>>> = Arc::default();
    r.relay.tamper(Some(Box::new(move |to, p: &Bytes| {
        let mut held = held.lock().unwrap();
        match chunk_index(p) {
            Some(1) => {
                held.insert(to, p.clone());
                Vec::new()
            }
            Some(2) => {
                let mut v = vec![p.clone()];
                v.extend(held.remove(&to));
                v
            }
            _ => vec![p.clone()],
        }
    })));
    r.bob.files.clear();
    r.bob.seen.clear();
    alice_sends(&mut r, "swapped.bin", &content(4 * CHUNK - 7, 5)).await;
    let failed = r
        .bob
        .expect_file("the reordered transfer ends", WAIT, |f| {
            matches!(f, FileUpdate::Failed { .. })
        })
        .await;
    assert!(matches!(failed, FileUpdate::Failed { .. }));
    r.bob.settle(Duration::from_millis(500)).await;
    assert_eq!(bob_has(&r), vec!["twice.bin".to_string()], "no wrong file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_carries_nothing_readable_and_a_kicked_member_nothing_after_the_kick() {
    let mut r = room().await;
    // A private message and a private file: the relay's whole recording
    // holds neither, and alice (a member, not the recipient) sees nothing.
    let secret = "the vault code is 4711";
    r.admin
        .cmd
        .send(Command::Private(shared(1).public().fingerprint(), secret.into()).into())
        .await
        .unwrap();
    r.bob
        .expect(
            "bob reads it",
            |e| matches!(e, Event::Private { text, .. } if text == secret),
        )
        .await;
    let body = content(3 * CHUNK + 5, 6);
    let path = r.dirs[3].path().join("payroll.xlsx");
    std::fs::write(&path, &body).unwrap();
    r.admin
        .cmd
        .send(Request::SendFile {
            path,
            to: Some(shared(1).public().fingerprint()),
        })
        .await
        .unwrap();
    bob_gets(&mut r, "payroll.xlsx", &body).await;
    r.alice.settle(Duration::from_millis(500)).await;
    assert!(r.alice.files.is_empty(), "{:?}", r.alice.files);
    assert!(!format!("{:?}", r.alice.seen).contains("vault"));
    for (_, _, p) in r.relay.carried() {
        assert!(!p.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert!(!p.windows(64).any(|w| w == &body[1000..1064]));
        assert!(!p.windows(7).any(|w| w == b"payroll"));
    }

    // A 6 MiB file from alice at 3 MiB/s; bob is kicked after the first
    // chunks. Everything delivered to bob's connection after the kick is
    // sealed under an epoch he never held.
    let bob_conn = r
        .bob
        .seen
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Connected { conn_id } => Some(*conn_id),
            _ => None,
        })
        .unwrap();
    let bob_epoch = r
        .bob
        .seen
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Epoch { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .unwrap();
    alice_sends(&mut r, "big.bin", &content(6 * 1024 * 1024, 7)).await;
    r.bob
        .expect_file(
            "bob receives some",
            WAIT,
            |f| matches!(f, FileUpdate::Progress { done, .. } if *done > 0),
        )
        .await;
    r.admin
        .cmd
        .send(Command::Kick(shared(1).public().fingerprint(), "bye".into()).into())
        .await
        .unwrap();
    r.bob
        .expect("bob is removed", |e| matches!(e, Event::Kicked { .. }))
        .await;
    r.alice
        .expect_file("alice's file goes on", WAIT, |f| {
            matches!(f, FileUpdate::Sent { .. })
        })
        .await;
    // The chunks of big.bin the relay delivered to bob's connection, in
    // order: those under an epoch bob held all come before the first one
    // under a newer epoch, and there are newer ones (the kick came
    // mid-transfer). The sender switched keys once and never went back.
    let to_bob: Vec<(u32, u64)> = r
        .relay
        .carried()
        .iter()
        .filter(|(to, _, _)| *to == bob_conn)
        .filter_map(|(_, _, p)| match envelope(p) {
            Some(Envelope::FileChunk(c)) => Some((c.header.index, c.header.epoch)),
            _ => None,
        })
        .collect();
    let big: Vec<(u32, u64)> = to_bob
        .iter()
        .copied()
        .skip_while(|(i, _)| *i != 0)
        .collect();
    let old_max = big
        .iter()
        .filter(|(_, e)| *e <= bob_epoch)
        .map(|(i, _)| *i)
        .max();
    let new_min = big
        .iter()
        .filter(|(_, e)| *e > bob_epoch)
        .map(|(i, _)| *i)
        .min();
    let (Some(old_max), Some(new_min)) = (old_max, new_min) else {
        panic!("the kick did not come mid-transfer: {big:?}");
    };
    assert!(
        old_max < new_min,
        "a chunk under bob's key after one under the new key: {big:?}"
    );
    r.bob.settle(Duration::from_millis(500)).await;
    assert!(!r.bob.files.iter().any(|f| matches!(f,
        FileUpdate::Saved { path, .. } if path.ends_with("big.bin"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_size_limit_holds_for_the_sender_and_for_each_receiver() {
    let mut r = room().await;
    // Carol accepts files up to 1 MiB only.
    let carol_dir = tempfile::tempdir().unwrap();
    let admin = shared(4).public().fingerprint();
    let mut carol = peer(
        member_engine(r.id, admin, "carol", 2, Some("pw")),
        r.relay.endpoint(),
        carol_dir.path(),
        1024 * 1024,
        1024 * 1024,
    );
    carol.expect("carol's epoch", epoch_with(4)).await;
    r.alice.expect("alice sees carol", epoch_with(4)).await;
    r.bob.expect("bob sees carol", epoch_with(4)).await;

    // Over alice's own limit (32 MiB): refused before anything is sent.
    let huge = r.dirs[2].path().join("huge.iso");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(33 * 1024 * 1024)
        .unwrap();
    let mark = r.relay.carried().len();
    r.alice
        .cmd
        .send(Request::SendFile {
            path: huge,
            to: None,
        })
        .await
        .unwrap();
    r.alice
        .expect(
            "alice is told",
            |e| matches!(e, Event::Error { reason } if reason.contains("over the limit")),
        )
        .await;
    r.alice.settle(Duration::from_millis(500)).await;
    assert!(
        !r.relay.carried()[mark..].iter().any(|(_, _, p)| matches!(
            envelope(p),
            Some(Envelope::Message(_) | Envelope::FileChunk(_))
        )),
        "nothing went out"
    );

    // 2 MiB: bob takes it, carol refuses it (over her limit) and saves
    // nothing.
    let body = content(2 * 1024 * 1024, 8);
    alice_sends(&mut r, "two.bin", &body).await;
    bob_gets(&mut r, "two.bin", &body).await;
    carol
        .expect(
            "carol refuses the offer",
            |e| matches!(e, Event::Warning { reason } if reason.contains("over the limit")),
        )
        .await;
    carol.settle(Duration::from_millis(500)).await;
    assert!(carol.files.is_empty(), "{:?}", carol.files);
    assert_eq!(std::fs::read_dir(carol_dir.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_private_message_is_shown_once_and_warned_about() {
    let mut r = room().await;
    // The relay delivers every private message twice, the copy a moment
    // later.
    r.relay.tamper(Some(Box::new(|_, p: &Bytes| {
        if matches!(envelope(p), Some(Envelope::Private(_))) {
            vec![p.clone(), p.clone()]
        } else {
            vec![p.clone()]
        }
    })));
    r.alice
        .cmd
        .send(Command::Private(shared(1).public().fingerprint(), "once only".into()).into())
        .await
        .unwrap();
    r.bob
        .expect(
            "bob warns about the copy",
            |e| matches!(e, Event::Warning { reason } if reason.contains("replayed")),
        )
        .await;
    r.bob.settle(Duration::from_millis(500)).await;
    let shown = r
        .bob
        .seen
        .iter()
        .filter(|e| matches!(e, Event::Private { text, .. } if text == "once only"))
        .count();
    assert_eq!(shown, 1);
}

/// Open file descriptors of this process on temporary files being received.
#[cfg(target_os = "linux")]
/// Partial files under `dirs` this process holds open (the other tests of
/// this binary run at the same time, with their own folders).
fn open_partials(dirs: &[std::path::PathBuf]) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|p| dirs.iter().any(|d| p.starts_with(d)))
                .filter(|p| p.to_string_lossy().contains(".teamchat-"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_waiting_for_accept_are_bounded_per_sender_and_hold_no_descriptor() {
    let mut r = room().await;
    // Carol saves nothing without asking.
    let carol_dir = tempfile::tempdir().unwrap();
    let admin = shared(4).public().fingerprint();
    let mut carol = peer(
        member_engine(r.id, admin, "carol", 2, Some("pw")),
        r.relay.endpoint(),
        carol_dir.path(),
        1024 * 1024,
        0,
    );
    carol.expect("carol's epoch", epoch_with(4)).await;
    r.alice.expect("alice sees carol", epoch_with(4)).await;
    // Alice sends nine small files, one after the other.
    for n in 0..9u8 {
        alice_sends(&mut r, &format!("note-{n}.txt"), &content(1000, n)).await;
        r.alice
            .expect_file("alice's file sent", WAIT, |f| {
                matches!(f, FileUpdate::Sent { .. })
            })
            .await;
        r.alice.files.clear();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while carol
        .files
        .iter()
        .filter(|f| matches!(f, FileUpdate::Ready { .. }))
        .count()
        < 8
    {
        carol.next("eight files ready", deadline).await;
    }
    carol
        .expect(
            "the ninth is refused",
            |e| matches!(e, Event::Warning { reason } if reason.contains("too many files")),
        )
        .await;
    carol.settle(Duration::from_millis(500)).await;
    let offered = carol
        .files
        .iter()
        .filter(|f| matches!(f, FileUpdate::Offered { .. }))
        .count();
    assert_eq!(offered, 8, "{:?}", carol.files);
    // Eight complete files wait for Accept, none of them holding a file
    // descriptor (bob saved his at once and closed them too).
    #[cfg(target_os = "linux")]
    // As the links read back: canonical paths.
    let ours: Vec<std::path::PathBuf> = r
        .dirs
        .iter()
        .map(|d| d.path())
        .chain([carol_dir.path()])
        .map(|d| d.canonicalize().unwrap())
        .collect();
    assert_eq!(open_partials(&ours), 0);
    // Accepting one saves it, and makes room for one more from alice.
    let Some(FileUpdate::Ready { transfer }) = carol
        .files
        .iter()
        .find(|f| matches!(f, FileUpdate::Ready { .. }))
        .cloned()
    else {
        unreachable!()
    };
    carol.cmd.send(Request::AcceptFile(transfer)).await.unwrap();
    carol
        .expect_file("carol saves it", WAIT, |f| {
            matches!(f, FileUpdate::Saved { .. })
        })
        .await;
    alice_sends(&mut r, "one-more.txt", &content(1000, 77)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !carol
        .files
        .iter()
        .any(|f| matches!(f, FileUpdate::Offered { name, .. } if name == "one-more.txt"))
    {
        carol.next("one more is offered", deadline).await;
    }
}

// ---- freshness and gaps (issue 18) -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_the_relay_drops_is_reported_with_its_sender() {
    let mut r = room().await;
    let alice = shared(0).public().fingerprint();
    // The relay drops alice's second line on its way to everyone.
    let mut to_drop = None;
    r.relay.tamper(Some(Box::new(move |_, p| {
        if let Some(Envelope::Message(m)) = envelope(p) {
            if m.header.sender == alice {
                if to_drop.is_none() && m.header.seq >= 2 {
                    to_drop = Some(m.header.seq);
                }
                if to_drop == Some(m.header.seq) {
                    return vec![];
                }
            }
        }
        vec![p.clone()]
    })));
    for t in ["one", "two", "three"] {
        r.alice
            .cmd
            .send(Command::Send(t.into()).into())
            .await
            .unwrap();
        r.alice
            .expect(
                "sent",
                |e| matches!(e, Event::Sent { text, .. } if text == t),
            )
            .await;
    }
    r.bob
        .expect(
            "the third line",
            |e| matches!(e, Event::Message { text, .. } if text == "three"),
        )
        .await;
    r.bob
        .expect("bob is told one line from alice is missing", |e| {
            matches!(e, Event::Missed { from, count: 1, private: false, .. } if from.name == "alice")
        })
        .await;
    assert_eq!(r.bob.texts(), vec!["one", "three"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_earlier_admin_run_is_refused_over_real_tls() {
    let mut r = room().await;
    r.alice
        .cmd
        .send(Command::Send("said in run one".into()).into())
        .await
        .unwrap();
    r.bob
        .expect(
            "run one's line",
            |e| matches!(e, Event::Message { text, .. } if text == "said in run one"),
        )
        .await;
    // Everything the relay carried in run one: announcements, epochs,
    // rosters, beacons, the line.
    let run_one: Vec<Bytes> = {
        let mut seen = HashSet::new();
        r.relay
            .carried()
            .into_iter()
            .map(|(_, _, p)| p)
            .filter(|p| seen.insert(p.clone()))
            .collect()
    };
    // The admin app restarts (its driver ends with its command channel): a
    // new run, with a larger number.
    let dir = tempfile::tempdir().unwrap();
    let (gone, _) = mpsc::channel(1);
    drop(std::mem::replace(&mut r.admin.cmd, gone));
    let mut admin = peer(
        Engine::Admin(Box::new(Admin::new(
            AdminConfig {
                room: r.id,
                room_name: "hostile".into(),
                admin_name: "boss".into(),
                password: Some(Zeroizing::new("pw".into())),
                roster: HashSet::new(),
                rekey_after_messages: 0,
                rekey_after_ms: 0,
                state: common::engine::AdminState {
                    run: 1,
                    ..Default::default()
                },
            },
            shared(4),
        ))),
        r.relay.endpoint(),
        dir.path(),
        MAX_FILE,
        MAX_FILE,
    );
    admin.expect("run two seats both", epoch_with(3)).await;
    r.bob.seen.clear();
    r.alice.expect("alice in run two", epoch_with(3)).await;
    r.alice.seen.clear();
    r.bob.expect("bob in run two", epoch_with(3)).await;
    r.bob.settle(Duration::from_millis(500)).await;
    r.bob.seen.clear();

    // The relay replays run one to the members.
    for p in run_one {
        r.relay.inject(p);
    }
    r.bob.settle(Duration::from_millis(500)).await;
    r.alice.settle(Duration::from_millis(500)).await;
    assert!(
        r.bob.texts().is_empty(),
        "run one shown again: {:?}",
        r.bob.texts()
    );
    assert!(
        r.bob
            .warnings()
            .iter()
            .any(|w| w.contains("earlier admin run")
                || w.contains("another admin session")
                || w.contains("answers none of our join requests")),
        "{:?}",
        r.bob.warnings()
    );
    // Bob is still in run two (after a rejoin at most): what he writes,
    // alice and the run-two admin read.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        r.bob
            .cmd
            .send(Command::Send("still run two".into()).into())
            .await
            .unwrap();
        r.bob.settle(Duration::from_millis(500)).await;
        if r.bob
            .seen
            .iter()
            .any(|e| matches!(e, Event::Sent { text, .. } if text == "still run two"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob never wrote again: {:?}",
            r.bob.seen
        );
    }
    r.alice
        .expect(
            "alice reads bob in run two",
            |e| matches!(e, Event::Message { text, .. } if text == "still run two"),
        )
        .await;
    admin
        .expect(
            "the run-two admin reads bob",
            |e| matches!(e, Event::Message { text, .. } if text == "still run two"),
        )
        .await;
}
