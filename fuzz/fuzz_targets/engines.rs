//! The admin and member engines driven by a hostile relay.
//!
//! One room: an admin (node 0) and two members (nodes 1 and 2), all honest,
//! on an in-memory relay that the fuzzer runs. Each input starts from one of
//! two snapshots made once per process (RSA is too slow to redo per input):
//! the room just connected (announce and join requests in flight), or the
//! room seated (both members approved, messages and beacons exchanged, every
//! frame kept for replays). Then a script of steps: the relay delivers, drops, duplicates, holds back, redirects,
//! corrupts or replays frames, injects raw bytes or fake peers, and the
//! people type commands and let time pass. Whatever the script, no engine
//! may panic, loop or grow without bound. (Honest behaviour under such a
//! relay is what the deterministic suites check; this target looks for
//! the inputs they never thought of.)
//!
//! Left out: room passwords (600,000 PBKDF2 rounds per use would make every
//! input a timeout) and file transfers from disk (the engine asks the driver
//! to read files).
#![no_main]

use std::collections::{HashSet, VecDeque};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use common::engine::admin::Admin;
use common::engine::member::Member;
use common::engine::{
    Action, AdminConfig, AdminState, Command, Engine, Event, MemberConfig, Randomness,
};
use common::wire::{ClientFrame, ConnId, RelayFrame, Welcome, DEFAULT_MAX_FRAME};
use common::{Fingerprint, RoomId};

const ROOM: RoomId = RoomId([0x77; 16]);
/// Test keys: the admin's, then each member's.
const KEYS: [usize; 3] = [4, 1, 2];
/// Most frames in flight; beyond, the relay drops (as a real one would).
const MAX_QUEUE: usize = 512;
/// Most frames kept for replays.
const MAX_LOG: usize = 256;
/// Most deliveries one step may cause (an engine that answers every frame
/// with frames must still settle).
const MAX_DELIVERIES: usize = 2_000;

#[derive(Arbitrary, Debug)]
enum Step {
    /// The relay delivers the next frame in flight.
    Deliver,
    /// Delivers everything in flight, in order (bounded).
    Settle,
    /// Drops the next frame.
    Drop,
    /// Delivers the next frame twice.
    Duplicate,
    /// Moves the next frame to the back of the queue.
    Hold,
    /// Sends the next frame to another node.
    Redirect { to: u8 },
    /// Corrupts one byte of the next frame's payload.
    Flip { at: u16, xor: u8 },
    /// Delivers an earlier frame again, to any node.
    Replay { index: u8, to: u8 },
    /// Raw bytes, as if a peer had published them.
    Inject { to: u8, from: u8, payload: Vec<u8> },
    /// A peer appears or leaves (real or made up).
    Peer { to: u8, conn: u8, joined: bool },
    /// Someone types a command.
    Type { node: u8, cmd: Typed },
    /// Time passes everywhere (ms), and the engines tick.
    Tick { ms: u16 },
    /// A node's connection drops, or comes back on a new one.
    Link { node: u8, up: bool },
}

#[derive(Arbitrary, Debug)]
enum Typed {
    Send(String),
    Private { to: u8, text: String },
    Typing(bool),
    Approve,
    Deny(String),
    Kick { who: u8, why: String },
    Unban { who: u8 },
    ListBans,
    Rekey,
    Leave,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Start from the seated room (else from the room just connected).
    seated: bool,
    steps: Vec<Step>,
}

#[derive(Clone)]
struct Node {
    engine: Engine,
    conn: ConnId,
    online: bool,
    pending: Vec<u32>,
}

#[derive(Clone)]
struct Room {
    nodes: Vec<Node>,
    queue: VecDeque<(usize, RelayFrame)>,
    log: Vec<RelayFrame>,
    now: u64,
    next_conn: ConnId,
}

fn fingerprints() -> &'static [Fingerprint; 3] {
    static F: OnceLock<[Fingerprint; 3]> = OnceLock::new();
    F.get_or_init(|| KEYS.map(|k| common::test_keys::key(k).public().fingerprint()))
}

impl Room {
    fn new() -> Room {
        let admin_key = common::test_keys::shared(KEYS[0]);
        // Seeded engines: an input replays exactly, crashes included.
        let admin = Admin::with_rng(
            AdminConfig {
                room: ROOM,
                room_name: "fuzz".into(),
                admin_name: "boss".into(),
                password: None,
                roster: HashSet::new(),
                rekey_after_messages: 0,
                rekey_after_ms: 0,
                state: AdminState {
                    run: 1,
                    ..AdminState::default()
                },
            },
            admin_key,
            Randomness::seeded([1; 32]),
        );
        let mut nodes = vec![Node {
            engine: Engine::Admin(Box::new(admin)),
            conn: 0,
            online: false,
            pending: Vec::new(),
        }];
        for (i, name) in ["alice", "bob"].into_iter().enumerate() {
            let cfg = MemberConfig {
                room: ROOM,
                admin_pin: fingerprints()[0],
                name: name.into(),
                password: None,
                min_run: 0,
            };
            let me = common::test_keys::shared(KEYS[i + 1]);
            nodes.push(Node {
                engine: Engine::Member(Box::new(Member::with_rng(
                    cfg,
                    me,
                    Randomness::seeded([i as u8 + 2; 32]),
                ))),
                conn: 0,
                online: false,
                pending: Vec::new(),
            });
        }
        let mut room = Room {
            nodes,
            queue: VecDeque::new(),
            log: Vec::new(),
            now: 1_700_000_000_000,
            next_conn: 100,
        };
        for idx in 0..room.nodes.len() {
            room.connect(idx);
        }
        room
    }

    fn connect(&mut self, idx: usize) {
        self.next_conn += 1;
        let conn = self.next_conn;
        self.nodes[idx].conn = conn;
        self.nodes[idx].online = true;
        let hello = self.nodes[idx].engine.on_connected(self.now);
        self.apply(idx, hello);
        let peers = self
            .nodes
            .iter()
            .filter(|n| n.online && n.conn != conn)
            .map(|n| n.conn)
            .collect();
        for i in 0..self.nodes.len() {
            if self.nodes[i].online && i != idx {
                self.push(i, RelayFrame::PeerJoined(conn));
            }
        }
        let welcome = Welcome {
            version: 1,
            conn_id: conn,
            peers,
            max_frame: DEFAULT_MAX_FRAME as u32,
        };
        self.push(idx, RelayFrame::Welcome(welcome));
    }

    fn disconnect(&mut self, idx: usize) {
        self.nodes[idx].online = false;
        let conn = self.nodes[idx].conn;
        for i in 0..self.nodes.len() {
            if self.nodes[i].online && i != idx {
                self.push(i, RelayFrame::PeerLeft(conn));
            }
        }
    }

    fn push(&mut self, to: usize, frame: RelayFrame) {
        if self.queue.len() < MAX_QUEUE {
            self.queue.push_back((to, frame));
        }
    }

    fn apply(&mut self, from: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Event(Event::PendingApproval { id, .. }) => {
                    self.nodes[from].pending.push(id);
                }
                Action::Event(_) | Action::File(_) => {}
                Action::Send(
                    ClientFrame::Publish { to, payload } | ClientFrame::PublishBulk { to, payload },
                ) => {
                    let fconn = self.nodes[from].conn;
                    for i in 0..self.nodes.len() {
                        let hit = match to {
                            Some(t) => self.nodes[i].conn == t,
                            None => true,
                        };
                        if self.nodes[i].online && hit && i != from {
                            let frame = RelayFrame::Deliver {
                                from: fconn,
                                payload: payload.clone(),
                            };
                            self.push(i, frame);
                        }
                    }
                }
                Action::Send(_) => {}
            }
        }
    }

    fn deliver(&mut self, to: usize, frame: RelayFrame) {
        if !self.nodes[to].online {
            return;
        }
        if matches!(frame, RelayFrame::Deliver { .. }) && self.log.len() < MAX_LOG {
            self.log.push(frame.clone());
        }
        let actions = self.nodes[to].engine.handle_frame(self.now, frame);
        self.apply(to, actions);
    }

    fn deliver_next(&mut self) {
        if let Some((to, frame)) = self.queue.pop_front() {
            self.deliver(to, frame);
        }
    }

    fn command(&mut self, idx: usize, typed: Typed) {
        let fp = |who: u8| fingerprints()[usize::from(who) % 3];
        let cmd = match typed {
            Typed::Send(text) => Command::Send(text),
            Typed::Private { to, text } => Command::Private(fp(to), text),
            Typed::Typing(on) => Command::Typing(on),
            Typed::Approve | Typed::Deny(_) if self.nodes[idx].pending.is_empty() => return,
            Typed::Approve => Command::Approve(self.nodes[idx].pending.remove(0)),
            Typed::Deny(why) => Command::Deny(self.nodes[idx].pending.remove(0), why),
            Typed::Kick { who, why } => Command::Kick(fp(who), why),
            Typed::Unban { who } => Command::Unban(fp(who)),
            Typed::ListBans => Command::ListBans,
            Typed::Rekey => Command::Rekey,
            Typed::Leave => Command::Leave,
        };
        self.now += 10;
        let actions = self.nodes[idx].engine.handle_command(self.now, cmd);
        self.apply(idx, actions);
    }

    fn step(&mut self, step: Step) {
        let n = self.nodes.len();
        match step {
            Step::Deliver => self.deliver_next(),
            Step::Settle => {
                for _ in 0..MAX_DELIVERIES {
                    if self.queue.is_empty() {
                        break;
                    }
                    self.deliver_next();
                }
            }
            Step::Drop => drop(self.queue.pop_front()),
            Step::Duplicate => {
                if let Some((to, frame)) = self.queue.pop_front() {
                    self.deliver(to, frame.clone());
                    self.deliver(to, frame);
                }
            }
            Step::Hold => {
                if let Some(f) = self.queue.pop_front() {
                    self.queue.push_back(f);
                }
            }
            Step::Redirect { to } => {
                if let Some((_, frame)) = self.queue.pop_front() {
                    self.deliver(usize::from(to) % n, frame);
                }
            }
            Step::Flip { at, xor } => {
                if let Some((_, RelayFrame::Deliver { payload, .. })) = self.queue.front_mut() {
                    if !payload.is_empty() && xor != 0 {
                        let mut bytes = payload.to_vec();
                        let i = usize::from(at) % bytes.len();
                        bytes[i] ^= xor;
                        *payload = Bytes::from(bytes);
                    }
                }
            }
            Step::Replay { index, to } => {
                if !self.log.is_empty() {
                    let frame = self.log[usize::from(index) % self.log.len()].clone();
                    self.deliver(usize::from(to) % n, frame);
                }
            }
            Step::Inject { to, from, payload } => {
                let from = self.fake_or_real(from);
                let frame = RelayFrame::Deliver {
                    from,
                    payload: Bytes::from(payload),
                };
                self.deliver(usize::from(to) % n, frame);
            }
            Step::Peer { to, conn, joined } => {
                let conn = self.fake_or_real(conn);
                let frame = if joined {
                    RelayFrame::PeerJoined(conn)
                } else {
                    RelayFrame::PeerLeft(conn)
                };
                self.deliver(usize::from(to) % n, frame);
            }
            Step::Type { node, cmd } => self.command(usize::from(node) % n, cmd),
            Step::Tick { ms } => {
                self.now += u64::from(ms) * 10;
                for idx in 0..n {
                    if self.nodes[idx].online {
                        let actions = self.nodes[idx].engine.handle_tick(self.now);
                        self.apply(idx, actions);
                    }
                }
            }
            Step::Link { node, up } => {
                let idx = usize::from(node) % n;
                match (up, self.nodes[idx].online) {
                    (true, false) => self.connect(idx),
                    (false, true) => self.disconnect(idx),
                    _ => {}
                }
            }
        }
    }

    /// A connection id: one of the nodes' (low values) or a made-up one.
    fn fake_or_real(&self, b: u8) -> ConnId {
        match usize::from(b) {
            i if i < self.nodes.len() => self.nodes[i].conn,
            other => other as ConnId,
        }
    }
}

/// The two starting points, made once.
fn snapshots() -> &'static (Room, Room) {
    static S: OnceLock<(Room, Room)> = OnceLock::new();
    S.get_or_init(|| {
        let fresh = Room::new();
        let mut seated = fresh.clone();
        seated.step(Step::Settle);
        for _ in 0..2 {
            seated.step(Step::Type {
                node: 0,
                cmd: Typed::Approve,
            });
            seated.step(Step::Settle);
        }
        for (node, text) in [(1, "hello"), (2, "hi alice")] {
            seated.step(Step::Type {
                node,
                cmd: Typed::Send(text.into()),
            });
            seated.step(Step::Settle);
        }
        seated.step(Step::Tick { ms: 600 });
        seated.step(Step::Settle);
        for node in &seated.nodes {
            // A snapshot that is not what it says would fuzz the wrong room.
            assert_eq!(
                node.engine.members().len(),
                3,
                "the seated room is not seated"
            );
        }
        (fresh, seated)
    })
}

libfuzzer_sys::fuzz_target!(|input: Input| {
    let (fresh, seated) = snapshots();
    let mut room = if input.seated {
        seated.clone()
    } else {
        fresh.clone()
    };
    for step in input.steps.into_iter().take(256) {
        room.step(step);
    }
});
