//! The test support shared by the engine suites: an in-memory relay (`Net`)
//! with a tamper hook, so that every attack is a few lines of frames, and
//! the helpers that read what a node was shown.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use common::crypto::PrivateKey;
use common::engine::admin::Admin;
use common::engine::files::CHUNK_SIZE;
use common::engine::member::Member;
use common::engine::FileSpec;
use common::engine::{
    Action, AdminConfig, AdminState, Command, Engine, Event, FileEvent, MemberConfig, Randomness,
};
/// The warning types the suites match on (not every suite uses each).
#[allow(unused_imports)]
pub use common::engine::{ChunkFault, Dropped, Kind, OfferRefusal, Warning};
use common::wire::{
    decode_payload, encode_payload, Ack, ClientFrame, ConnId, Envelope, RelayFrame, Welcome,
    DEFAULT_MAX_FRAME,
};
use common::RoomId;
use sha2::{Digest, Sha256};

pub const ROOM: RoomId = RoomId([0x77; 16]);

/// Keys are expensive: identities come from the cached test keys.
pub fn id(n: usize) -> Arc<PrivateKey> {
    common::test_keys::shared(n)
}

/// Run numbers for the admin engines of a test binary: each one later.
static NEXT_RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub fn admin_cfg() -> AdminConfig {
    AdminConfig {
        room: ROOM,
        room_name: "ops".into(),
        admin_name: "boss".into(),
        password: None,
        roster: HashSet::new(),
        rekey_after_messages: 0,
        rekey_after_ms: 0,
        // Each admin engine a test makes is a later run than the last.
        state: AdminState {
            run: NEXT_RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..AdminState::default()
        },
    }
}

pub fn member_cfg(name: &str, admin: &PrivateKey) -> MemberConfig {
    MemberConfig {
        room: ROOM,
        admin_pin: admin.public().fingerprint(),
        name: name.into(),
        password: None,
        min_run: 0,
    }
}

/// A frame in flight: to node `to`, as the relay would deliver it.
pub type Flight = (usize, RelayFrame);

/// A hostile relay's hook: what to deliver instead of one frame.
pub type Tamper = Box<dyn FnMut(&mut Flight) -> Vec<Flight>>;

/// An in-memory relay with a hook that can rewrite, drop or duplicate frames.
pub struct Net {
    pub nodes: Vec<Node>,
    pub queue: VecDeque<Flight>,
    pub now: u64,
    pub next_conn: ConnId,
    /// Every Deliver that passed, for replay attacks.
    pub log: Vec<Flight>,
    pub tamper: Option<Tamper>,
    /// The frame limit the relay announces in its welcome.
    pub max_frame: u32,
    /// The engines made by [`Net::admin`] and [`Net::member`] draw from
    /// seeds made of this and their node index: a run replays bit for bit.
    /// `None`: from the OS, as in the apps (the admin then wraps keys
    /// through OpenSSL).
    pub seed: Option<u8>,
    /// The relay acknowledges every publish it takes (protocol version
    /// 2); `false`: the acknowledgements are lost on the way back.
    pub acks: bool,
}

pub struct Node {
    pub engine: Engine,
    pub conn: ConnId,
    pub online: bool,
    pub events: Vec<Event>,
    /// The file work the engine handed out (chunks to write, files done).
    pub files: Vec<FileEvent>,
    /// What the relay took from this connection.
    pub taken: Ack,
}

impl Net {
    pub fn new() -> Net {
        Net {
            nodes: Vec::new(),
            queue: VecDeque::new(),
            now: 1_700_000_000_000,
            next_conn: 100,
            log: Vec::new(),
            tamper: None,
            max_frame: DEFAULT_MAX_FRAME as u32,
            seed: Some(0),
            acks: true,
        }
    }

    /// The seed of the engine the next node added gets.
    fn next_seed(&self) -> Randomness {
        let Some(base) = self.seed else {
            return Randomness::os();
        };
        let mut seed = [base; 32];
        seed[0] = self.nodes.len() as u8;
        Randomness::seeded(seed)
    }

    pub fn add(&mut self, engine: Engine) -> usize {
        let idx = self.nodes.len();
        self.nodes.push(Node {
            engine,
            conn: 0,
            online: false,
            events: Vec::new(),
            files: Vec::new(),
            taken: Ack::default(),
        });
        self.connect(idx);
        idx
    }

    /// Node `idx` (new, or back after a disconnect, with its engine and state)
    /// joins the relay room on a fresh connection: hello, peers told, welcome.
    pub fn connect(&mut self, idx: usize) {
        self.next_conn += 1;
        let conn = self.next_conn;
        self.nodes[idx].conn = conn;
        self.nodes[idx].online = true;
        self.nodes[idx].taken = Ack::default();
        let now = self.now;
        let hello = self.nodes[idx].engine.on_connected(now);
        assert!(matches!(
            hello.as_slice(),
            [Action::Send(ClientFrame::Hello(_))]
        ));
        let peers: Vec<ConnId> = self
            .nodes
            .iter()
            .filter(|n| n.online && n.conn != conn)
            .map(|n| n.conn)
            .collect();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.online && i != idx {
                self.queue.push_back((i, RelayFrame::PeerJoined(conn)));
            }
        }
        let welcome = Welcome {
            version: 1,
            conn_id: conn,
            peers,
            max_frame: self.max_frame,
        };
        self.queue.push_back((idx, RelayFrame::Welcome(welcome)));
        self.run();
    }

    pub fn admin(&mut self, cfg: AdminConfig, me: Arc<PrivateKey>) -> usize {
        let rng = self.next_seed();
        self.add(Engine::Admin(Box::new(Admin::with_rng(cfg, me, rng))))
    }

    pub fn member(&mut self, cfg: MemberConfig, me: Arc<PrivateKey>) -> usize {
        let rng = self.next_seed();
        self.add(Engine::Member(Box::new(Member::with_rng(cfg, me, rng))))
    }

    pub fn disconnect(&mut self, idx: usize) {
        self.nodes[idx].online = false;
        let conn = self.nodes[idx].conn;
        for (i, n) in self.nodes.iter().enumerate() {
            if n.online && i != idx {
                self.queue.push_back((i, RelayFrame::PeerLeft(conn)));
            }
        }
        self.run();
    }

    /// The node comes back on a new connection (same engine, same state).
    pub fn reconnect(&mut self, idx: usize) {
        self.connect(idx);
    }

    pub fn apply(&mut self, from: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Event(e) => self.nodes[from].events.push(e),
                Action::File(f) => self.nodes[from].files.push(f),
                Action::Send(
                    f @ (ClientFrame::Publish { .. } | ClientFrame::PublishBulk { .. }),
                ) => {
                    // Sent on a connection that is gone: lost.
                    if !self.nodes[from].online {
                        continue;
                    }
                    let bulk = matches!(f, ClientFrame::PublishBulk { .. });
                    let Some((to, payload)) = f.published() else {
                        continue;
                    };
                    let payload = payload.clone();
                    let taken = &mut self.nodes[from].taken;
                    if bulk {
                        taken.bulk += 1;
                    } else {
                        taken.publish += 1;
                    }
                    let taken = *taken;
                    let fconn = self.nodes[from].conn;
                    for (i, n) in self.nodes.iter().enumerate() {
                        let hit = match to {
                            Some(t) => n.conn == t,
                            None => i != from,
                        };
                        if n.online && hit && i != from {
                            self.queue.push_back((
                                i,
                                RelayFrame::Deliver {
                                    from: fconn,
                                    payload: payload.clone(),
                                },
                            ));
                        }
                    }
                    if self.acks {
                        self.queue.push_back((from, RelayFrame::Ack(taken)));
                    }
                }
                Action::Send(_) => {}
            }
        }
    }

    pub fn run(&mut self) {
        for _ in 0..100_000 {
            let Some(mut flight) = self.queue.pop_front() else {
                return;
            };
            // The log holds what honest clients sent, before any tampering.
            if matches!(flight.1, RelayFrame::Deliver { .. }) {
                self.log.push(flight.clone());
            }
            let flights = match &mut self.tamper {
                Some(t) if matches!(flight.1, RelayFrame::Deliver { .. }) => t(&mut flight),
                _ => vec![flight],
            };
            for (to, frame) in flights {
                if !self.nodes[to].online {
                    continue;
                }
                let now = self.now;
                let actions = self.nodes[to].engine.handle_frame(now, frame);
                self.apply(to, actions);
            }
        }
        panic!("the network did not settle");
    }

    pub fn command(&mut self, idx: usize, cmd: Command) {
        self.now += 10;
        let now = self.now;
        let actions = self.nodes[idx].engine.handle_command(now, cmd);
        self.apply(idx, actions);
        self.run();
    }

    pub fn tick(&mut self, ms: u64) {
        self.now += ms;
        for idx in 0..self.nodes.len() {
            if self.nodes[idx].online {
                let now = self.now;
                let actions = self.nodes[idx].engine.handle_tick(now);
                self.apply(idx, actions);
            }
        }
        self.run();
    }

    /// What node `idx` was shown since the last take; its file work is
    /// forgotten too (both start afresh).
    pub fn take(&mut self, idx: usize) -> Vec<Event> {
        self.nodes[idx].files.clear();
        std::mem::take(&mut self.nodes[idx].events)
    }

    pub fn texts(&mut self, idx: usize) -> Vec<String> {
        self.nodes[idx]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Message { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn warnings(&self, idx: usize) -> Vec<Warning> {
        self.nodes[idx]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Warning(w) => Some(w.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether node `idx` was shown a warning matching `pred`.
    pub fn warned(&self, idx: usize, pred: impl Fn(&Warning) -> bool) -> bool {
        self.warnings(idx).iter().any(pred)
    }

    pub fn pending_id(&self, idx: usize) -> Option<u32> {
        self.nodes[idx].events.iter().rev().find_map(|e| match e {
            Event::PendingApproval { id, .. } => Some(*id),
            _ => None,
        })
    }

    pub fn epoch_of(&self, idx: usize) -> Option<(u64, usize)> {
        self.nodes[idx].events.iter().rev().find_map(|e| match e {
            Event::Epoch { epoch, members, .. } => Some((*epoch, members.len())),
            _ => None,
        })
    }
}

/// Approves every pending request at the admin (node 0), ticking until
/// `n` have been approved or 30 s have passed.
pub fn approve_all(net: &mut Net, n: usize) {
    let mut done = 0;
    for _ in 0..30 {
        let pending: Vec<u32> = net.nodes[0]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::PendingApproval { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        net.nodes[0]
            .events
            .retain(|e| !matches!(e, Event::PendingApproval { .. }));
        for pid in pending {
            net.command(0, Command::Approve(pid));
            done += 1;
        }
        if done >= n {
            return;
        }
        net.tick(1_000);
    }
    panic!("only {done} of {n} requests came");
}

/// Admin at node 0, and members approved by hand.
pub fn room_with(members: &[(usize, &str)]) -> (Net, Vec<usize>) {
    let mut net = Net::new();
    let admin_key = id(4);
    net.admin(admin_cfg(), admin_key.clone());
    let mut ids = Vec::new();
    for (k, name) in members {
        let m = net.member(member_cfg(name, &admin_key), id(*k));
        let pid = net.pending_id(0).expect("a pending request");
        net.command(0, Command::Approve(pid));
        assert!(
            net.nodes[m].engine.members().len() > 1,
            "{name} holds the epoch"
        );
        ids.push(m);
    }
    (net, ids)
}

// ---- hostile relay helpers ----

/// The envelope a relay frame carries, if it is a decodable delivery.
pub fn envelope_of(f: &RelayFrame) -> Option<Envelope> {
    match f {
        RelayFrame::Deliver { payload, .. } => decode_payload(payload, DEFAULT_MAX_FRAME).ok(),
        _ => None,
    }
}

/// The same delivery (recipient and sender) carrying `env` instead.
pub fn redeliver(f: &Flight, env: &Envelope) -> Vec<Flight> {
    let RelayFrame::Deliver { from, .. } = &f.1 else {
        return vec![f.clone()];
    };
    let payload = encode_payload(env, DEFAULT_MAX_FRAME).unwrap().into();
    vec![(
        f.0,
        RelayFrame::Deliver {
            from: *from,
            payload,
        },
    )]
}

/// A relay that drops the room messages connection `from` sends to node
/// `to` whose number among them (from 1) `drop` picks.
pub fn drop_messages(to: usize, from: ConnId, drop: impl Fn(usize) -> bool + 'static) -> Tamper {
    let mut n = 0;
    Box::new(move |f: &mut Flight| {
        if f.0 == to && from_conn(&f.1) == from && is_message(&f.1) {
            n += 1;
            if drop(n) {
                return vec![];
            }
        }
        vec![f.clone()]
    })
}

/// The connection a delivered frame came from (0 for any other frame).
pub fn from_conn(f: &RelayFrame) -> ConnId {
    match f {
        RelayFrame::Deliver { from, .. } => *from,
        _ => 0,
    }
}

pub fn is_message(f: &RelayFrame) -> bool {
    matches!(envelope_of(f), Some(Envelope::Message(_)))
}

pub fn is_epoch(f: &RelayFrame) -> bool {
    matches!(envelope_of(f), Some(Envelope::Epoch(_)))
}

pub fn is_join_request(f: &RelayFrame) -> bool {
    matches!(envelope_of(f), Some(Envelope::JoinRequest(_)))
}

// ---- files ----

/// A file offer of `content` as `name`, under transfer id `[transfer; 16]`.
pub fn spec(transfer: u8, name: &str, content: &[u8]) -> FileSpec {
    FileSpec {
        transfer: [transfer; 16],
        name: name.into(),
        size: content.len() as u64,
        media_type: "application/octet-stream".into(),
        sha256: Sha256::digest(content).into(),
        to: None,
    }
}

/// Offers `content` (as `data.bin`) from node `from` and sends every chunk.
pub fn send_file(net: &mut Net, from: usize, transfer: u8, content: &[u8]) {
    send_offered(net, from, spec(transfer, "data.bin", content), content);
}

/// Offers `offer` from node `from`, then sends `content` as its chunks.
pub fn send_offered(net: &mut Net, from: usize, offer: FileSpec, content: &[u8]) {
    let transfer = offer.transfer;
    net.command(from, Command::OfferFile(offer));
    for (i, c) in content.chunks(CHUNK_SIZE as usize).enumerate() {
        net.command(
            from,
            Command::FileChunk {
                transfer,
                index: i as u32,
                data: Bytes::copy_from_slice(c),
            },
        );
    }
}

/// What node `idx` received of `transfer`: its bytes, and whether it ended
/// in `FileDone` (Some(true)), `FileFailed` (Some(false)) or neither.
pub fn received(net: &Net, idx: usize, transfer: u8) -> (Vec<u8>, Option<bool>) {
    let mut data = Vec::new();
    let mut end = None;
    for e in &net.nodes[idx].files {
        match e {
            FileEvent::Data {
                transfer: t,
                data: d,
                ..
            } if *t == [transfer; 16] => data.extend_from_slice(d),
            FileEvent::Done { transfer: t } if *t == [transfer; 16] => end = Some(true),
            FileEvent::Failed { transfer: t, .. } if *t == [transfer; 16] => end = Some(false),
            _ => {}
        }
    }
    (data, end)
}

pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
