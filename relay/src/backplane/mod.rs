//! Rooms across several relays over NATS core.
//!
//! A relay with a backplane subscribes to a room's subject
//! (`teamchat.room.<room hex>`) while it holds a connection in the room,
//! and publishes there what the rest of the room must see: every frame a
//! local connection publishes, and presence (a connection joined or left,
//! and every [`HEARTBEAT`] the list of its connections in each room). It
//! delivers what other relays publish to its own connections, and keeps
//! their presence with an expiry, so a crashed relay's connections leave
//! within [`PRESENCE_TTL`]. NATS carries only the sealed frames the relay
//! already carries, so it learns no more than a relay does.
//!
//! The hub never waits for NATS: it hands messages to this module through
//! a bounded queue; when the queue is full (a slow or lost broker), the
//! message is dropped and counted, and local rooms go on.

mod connect;

pub use connect::{shown, start, Options};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use wire::RoomId;
use wire::{decode_payload, encode_payload, ConnId};

/// How often a relay tells the others which connections it holds.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A remote connection not heard of for this long has left.
pub const PRESENCE_TTL: Duration = Duration::from_secs(7);
/// Messages waiting for the broker; beyond, they are dropped.
const QUEUE: usize = 8192;
/// Bytes waiting for the broker; beyond, messages are dropped.
pub const QUEUE_BYTES: usize = 32 << 20;
/// Messages the NATS client itself may hold (its own queue, by count):
/// at most 64 × the broker's `max_payload` (128 MiB with 2 MB), in practice
/// a few KiB, as frames are small.
const CLIENT_CAPACITY: usize = 64;
/// Messages one room's subscription may hold before NATS drops them (a
/// drop shows as a gap in the sender's sequence: the room's local
/// connections rejoin).
const SUBSCRIPTION_CAPACITY: usize = 256;
/// How long a publish or subscribe may wait on the client.
const CLIENT_WAIT: Duration = Duration::from_secs(1);
/// Room for the routing around a frame in a backplane message.
const ENVELOPE_ROOM: usize = 1024;

/// What one relay tells the others about one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A local connection published a frame: to everyone, or to one
    /// connection (which may be on any relay).
    Deliver {
        /// The publishing connection.
        from: ConnId,
        /// One recipient, or `None` for the whole room.
        to: Option<ConnId>,
        /// The payload, as the connection published it.
        payload: Bytes,
        /// Published as bulk data (`PublishBulk`): queued in the bulk lane.
        bulk: bool,
    },
    /// A connection joined the room on the sending relay.
    Joined(ConnId),
    /// A connection left the room on the sending relay.
    Left(ConnId),
    /// Heartbeat: every connection the sending relay holds in the room.
    Present(#[serde(deserialize_with = "wire::bounded::vec")] Vec<ConnId>),
    /// The sending relay just subscribed: the others answer with `Present`.
    Hello,
}

/// A [`Message`] with the relay it comes from (so a relay ignores its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending relay's id (the high 32 bits of its connection ids).
    pub relay: u32,
    /// The room.
    pub room: RoomId,
    /// The sending relay's count of messages in this room (1, 2, 3, … from
    /// when it opened the room): a gap means messages were lost.
    pub seq: u64,
    /// What it says.
    pub message: Message,
}

/// The NATS subject of a room.
pub fn subject(room: &RoomId) -> String {
    format!("teamchat.room.{}", hex::encode(room.0))
}

/// The hub's end of the backplane: never blocks.
#[derive(Debug)]
pub struct Handle {
    relay: u32,
    tx: mpsc::Sender<(Envelope, usize)>,
    /// Bytes waiting in `tx`.
    queued: AtomicUsize,
    /// The link is up (as last reported by the client).
    up: AtomicBool,
    dropped: AtomicU64,
    rooms: Notify,
}

impl Handle {
    /// This relay's id.
    pub fn relay(&self) -> u32 {
        self.relay
    }

    /// The hub's set of rooms changed: the backplane subscribes to new
    /// rooms (and asks the other relays who is there) and unsubscribes
    /// from closed ones.
    pub fn rooms_changed(&self) {
        self.rooms.notify_one();
    }

    /// Tells the other relays; false when the message was dropped (the
    /// broker is unreachable or behind by more than [`QUEUE_BYTES`]).
    pub fn publish(&self, room: RoomId, message: Message) -> bool {
        let size = message.size();
        let env = Envelope {
            relay: self.relay,
            room,
            seq: 0,
            message,
        };
        let fits = self
            .queued
            .fetch_update(Relaxed, Relaxed, |q| {
                (q + size <= QUEUE_BYTES).then_some(q + size)
            })
            .is_ok();
        if !fits || !self.up.load(Relaxed) {
            if fits {
                self.queued.fetch_sub(size, Relaxed);
            }
            self.count_drop();
            return false;
        }
        if self.tx.try_send((env, size)).is_err() {
            self.queued.fetch_sub(size, Relaxed);
            self.count_drop();
            return false;
        }
        true
    }

    /// Messages dropped because the broker could not keep up or was away.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Whether the broker link is up.
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    fn count_drop(&self) {
        let n = self.dropped.fetch_add(1, Relaxed) + 1;
        if n.is_power_of_two() {
            warn!(
                dropped = n,
                "backplane: messages to other relays dropped (broker away or behind)"
            );
        }
    }
}

#[cfg(test)]
impl Handle {
    /// A handle whose messages land in the returned receiver (hub tests).
    pub(crate) fn for_test(relay: u32) -> (Arc<Handle>, mpsc::Receiver<(Envelope, usize)>) {
        let (tx, rx) = mpsc::channel(16);
        let handle = Arc::new(Handle {
            relay,
            tx,
            queued: AtomicUsize::new(0),
            up: AtomicBool::new(true),
            dropped: AtomicU64::new(0),
            rooms: Notify::new(),
        });
        (handle, rx)
    }

    pub(crate) fn set_up(&self, up: bool) {
        self.up.store(up, Relaxed);
    }
}

impl Message {
    /// Bytes this message holds while it waits (an estimate).
    fn size(&self) -> usize {
        64 + match self {
            Message::Deliver { payload, .. } => payload.len(),
            Message::Present(ids) => ids.len() * 8,
            _ => 0,
        }
    }
}

/// What the backplane asks of this relay's rooms: the hub implements it
/// (`crate::hub`), and keeps every rule about local connections; the
/// backplane only carries messages and presence between relays.
pub trait Rooms: Send + Sync + 'static {
    /// The largest frame a local connection may be sent.
    fn max_frame(&self) -> usize;
    /// The local connections of `room`.
    fn local_ids(&self, room: &RoomId) -> Vec<ConnId>;
    /// The rooms with a local connection.
    fn room_ids(&self) -> Vec<RoomId>;
    /// Delivers what another relay published.
    fn remote(&self, env: Envelope);
    /// Cuts every local connection of a room shared with other relays
    /// (the link to NATS was lost); how many.
    fn cut_shared(&self) -> usize;
    /// Cuts the local connections of `room` (a gap from another relay);
    /// how many.
    fn cut_room(&self, room: &RoomId) -> usize;
    /// Cuts the local connection `from` of `room` (its frame could not go
    /// out).
    fn cut_sender(&self, room: &RoomId, from: ConnId);
    /// Forgets other relays' connections not heard of for `ttl`.
    fn expire_remote(&self, ttl: Duration);
}

/// A connected backplane waiting for its hub (see [`Pending::run`]).
#[derive(Debug)]
pub struct Pending {
    client: async_nats::Client,
    rx: mpsc::Receiver<(Envelope, usize)>,
    link: Arc<Notify>,
    handle: Arc<Handle>,
    stop: CancellationToken,
}

impl Pending {
    /// Runs the backplane for `hub` until stopped: subscriptions, publishes,
    /// heartbeats and the link's ups and downs.
    pub async fn run(self, hub: Arc<dyn Rooms>) {
        let Pending {
            client,
            mut rx,
            link,
            handle,
            stop,
        } = self;
        let max_message = hub.max_frame() + ENVELOPE_ROOM;
        let mut bp = Backplane {
            was_up: false,
            connects: 0,
            client,
            hub,
            handle,
            subs: HashMap::new(),
            seqs: HashMap::new(),
            generation: Arc::new(AtomicU64::new(0)),
            beat_ok: tokio::time::Instant::now(),
            warned_size: false,
            max_message,
        };
        bp.check_max_payload();
        bp.check_link().await;
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                () = link.notified() => bp.check_link().await,
                () = bp.handle.rooms.notified() => bp.reconcile().await,
                env = rx.recv() => match env {
                    Some((env, size)) => {
                        bp.handle.queued.fetch_sub(size, Relaxed);
                        bp.forward(env).await;
                    }
                    None => break,
                },
                _ = beat.tick() => {
                    bp.check_link().await;
                    bp.tick().await;
                }
            }
        }
        bp.goodbye().await;
    }
}

/// The backplane's running state (owned by its one task).
struct Backplane {
    client: async_nats::Client,
    hub: Arc<dyn Rooms>,
    handle: Arc<Handle>,
    subs: HashMap<RoomId, tokio::task::JoinHandle<()>>,
    /// Our last sequence number in each room.
    seqs: HashMap<RoomId, u64>,
    /// Bumped whenever the link dropped: the receivers forget the sequence
    /// numbers they saw (what was lost meanwhile was handled by the cut).
    generation: Arc<AtomicU64>,
    /// The link as last seen, and the client's count of connections then.
    was_up: bool,
    connects: u64,
    /// When every room's heartbeat last went out.
    beat_ok: tokio::time::Instant,
    warned_size: bool,
    max_message: usize,
}

impl Backplane {
    fn relay(&self) -> u32 {
        self.handle.relay
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Reads the link's state from the client. Down, or up again on a new
    /// connection (a drop we did not see): frames between this relay and
    /// the others may have been lost, so shared rooms' local connections
    /// rejoin (see [`Rooms::cut_shared`]). Up: every room asks who is there
    /// and says who is here.
    async fn check_link(&mut self) {
        let up = self.connected();
        let connects = self.client.statistics().connects.load(Relaxed);
        let dropped = self.was_up && (!up || connects != self.connects);
        if dropped {
            self.handle.up.store(false, Relaxed);
            self.generation.fetch_add(1, Relaxed);
            let n = self.hub.cut_shared();
            if n > 0 {
                warn!(
                    connections = n,
                    "backplane link lost: connections in rooms shared with other relays told to rejoin"
                );
            }
        }
        if up && (!self.was_up || dropped) {
            self.handle.up.store(true, Relaxed);
            self.beat_ok = tokio::time::Instant::now();
            self.check_max_payload();
            self.reconcile().await;
            let rooms: Vec<RoomId> = self.subs.keys().copied().collect();
            for room in rooms {
                self.send(room, Message::Hello).await;
                let present = self.hub.local_ids(&room);
                if !present.is_empty() {
                    self.send(room, Message::Present(present)).await;
                }
            }
        }
        self.was_up = up;
        self.connects = connects;
    }

    /// Subscribes to the hub's rooms and only those (new subscriptions only
    /// while the link is up; the way back up reconciles again).
    async fn reconcile(&mut self) {
        let want: std::collections::HashSet<RoomId> = self.hub.room_ids().into_iter().collect();
        let closed: Vec<RoomId> = self
            .subs
            .keys()
            .filter(|room| !want.contains(room))
            .copied()
            .collect();
        for room in closed {
            // Dropping the subscriber (with its task) unsubscribes. The
            // others hear we hold nobody there (at shutdown, the leaves
            // themselves are not published).
            if let Some(task) = self.subs.remove(&room) {
                task.abort();
            }
            self.send(room, Message::Present(Vec::new())).await;
            // Reopened later, the room counts from 1 again.
            self.seqs.remove(&room);
        }
        if !self.connected() {
            return;
        }
        for room in want {
            if self.subs.contains_key(&room) {
                continue;
            }
            match tokio::time::timeout(CLIENT_WAIT, self.client.subscribe(subject(&room))).await {
                Ok(Ok(sub)) => {
                    let rx = Receiver {
                        hub: Arc::clone(&self.hub),
                        relay: self.relay(),
                        room,
                        max_message: self.max_message,
                        generation: Arc::clone(&self.generation),
                    };
                    self.subs.insert(room, tokio::spawn(rx.run(sub)));
                    self.send(room, Message::Hello).await;
                }
                // Tried again at the next heartbeat.
                Ok(Err(e)) => warn!(error = %e, "backplane: cannot subscribe"),
                Err(_) => warn!("backplane: subscribing timed out"),
            }
        }
    }

    /// Forwards one message from the hub. A frame that cannot go out
    /// (broker away, too large for it) cuts its sender off: it rejoins
    /// rather than the room silently diverging.
    async fn forward(&mut self, mut env: Envelope) {
        let sender = match &env.message {
            Message::Deliver { from, .. } => Some(*from),
            _ => None,
        };
        let room = env.room;
        if !self.publish(&mut env).await {
            if let Some(from) = sender {
                self.hub.cut_sender(&room, from);
            }
        }
    }

    /// Heartbeats, expiry, and subscriptions catching up.
    async fn tick(&mut self) {
        self.reconcile().await;
        if !self.connected() {
            // Nothing can be heard while the link is down: the others'
            // connections are not expired for our silence (shared rooms
            // were cut when the link went down).
            return;
        }
        let rooms: Vec<RoomId> = self.subs.keys().copied().collect();
        let mut all_sent = true;
        for room in rooms {
            let present = self.hub.local_ids(&room);
            if !present.is_empty() {
                all_sent &= self.send(room, Message::Present(present)).await;
            }
        }
        let now = tokio::time::Instant::now();
        if all_sent {
            self.beat_ok = now;
        } else if now.duration_since(self.beat_ok) > PRESENCE_TTL / 2 {
            // The others will soon take our connections for gone: rather
            // than let them be removed behind their backs, they rejoin.
            self.beat_ok = now;
            let n = self.hub.cut_shared();
            warn!(
                connections = n,
                "backplane: heartbeats are not getting through; connections in shared rooms told to rejoin"
            );
        }
        self.hub.expire_remote(PRESENCE_TTL);
    }

    /// At shutdown: the others hear at once that our connections left.
    async fn goodbye(&mut self) {
        if self.connected() {
            let rooms: Vec<RoomId> = self.subs.keys().copied().collect();
            for room in rooms {
                self.send(room, Message::Present(Vec::new())).await;
            }
            let _ = tokio::time::timeout(CLIENT_WAIT, self.client.flush()).await;
        }
        for (_, task) in self.subs.drain() {
            task.abort();
        }
    }

    async fn send(&mut self, room: RoomId, message: Message) -> bool {
        let mut env = Envelope {
            relay: self.relay(),
            room,
            seq: 0,
            message,
        };
        self.publish(&mut env).await
    }

    /// Numbers and publishes `env` without waiting long; false when it did
    /// not go (a message that was numbered and then failed shows the
    /// others a gap).
    async fn publish(&mut self, env: &mut Envelope) -> bool {
        if !self.connected() {
            return false;
        }
        let seq = self.seqs.entry(env.room).or_insert(0);
        *seq += 1;
        env.seq = *seq;
        let bytes = match encode_payload(&*env, self.max_message) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "backplane: a message could not be encoded");
                self.handle.count_drop();
                return false;
            }
        };
        if bytes.len() > self.client.max_payload() {
            if !self.warned_size {
                self.warned_size = true;
                warn!(
                    size = bytes.len(),
                    max_payload = self.client.max_payload(),
                    "backplane: a frame larger than the broker's max_payload was dropped; raise max_payload in the NATS configuration"
                );
            }
            self.handle.count_drop();
            return false;
        }
        match tokio::time::timeout(
            CLIENT_WAIT,
            self.client.publish(subject(&env.room), bytes.into()),
        )
        .await
        {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                warn!(error = %e, "backplane: cannot publish");
                self.handle.count_drop();
                false
            }
            Err(_) => {
                self.handle.count_drop();
                false
            }
        }
    }

    /// Warns once per connection when a frame the relay accepts could not
    /// cross the broker.
    fn check_max_payload(&self) {
        let max = self.client.max_payload();
        let need = self.max_message;
        if max > 0 && max < need {
            warn!(
                max_payload = max,
                need,
                "backplane: the broker's max_payload is below the relay's frame limit; larger frames cannot cross relays (set max_payload in the NATS configuration, or lower --max-frame)"
            );
        }
    }
}

/// Delivers one room's messages from other relays to the hub: only
/// messages that name this room (the subject's), never our own relay's
/// (which `no_echo` keeps away, so one would mean two relays drew the
/// same id). A gap in a relay's sequence means messages were lost on the
/// way (a route between NATS nodes, a slow consumer): the room's local
/// connections rejoin.
struct Receiver {
    hub: Arc<dyn Rooms>,
    relay: u32,
    room: RoomId,
    max_message: usize,
    generation: Arc<AtomicU64>,
}

/// Relays whose sequence one room remembers; beyond, it starts afresh.
const MAX_SENDERS: usize = 1024;

/// The last sequence number each other relay sent in one room.
#[derive(Debug, Default)]
pub struct Sequences {
    last: HashMap<u32, u64>,
}

impl Sequences {
    /// Forgets every relay (a new connection to NATS).
    pub fn clear(&mut self) {
        self.last.clear();
    }

    /// Records `seq` from `relay`; true if messages from it were lost in
    /// between. 1 means that relay (re)opened the room: never a gap. The
    /// numbers come from the network: any value is taken without overflow.
    pub fn gap(&mut self, relay: u32, seq: u64) -> bool {
        if self.last.len() >= MAX_SENDERS && !self.last.contains_key(&relay) {
            self.last.clear();
        }
        let prev = self.last.insert(relay, seq);
        prev.is_some_and(|p| seq != 1 && p.checked_add(1) != Some(seq))
    }
}

impl Receiver {
    async fn run(self, mut sub: async_nats::Subscriber) {
        let mut warned = false;
        let mut generation = self.generation.load(Relaxed);
        let mut last = Sequences::default();
        while let Some(msg) = sub.next().await {
            let env = match decode_payload::<Envelope>(&msg.payload, self.max_message) {
                Ok(env) => env,
                Err(_) => {
                    if !warned {
                        warned = true;
                        warn!("backplane: a malformed message dropped");
                    }
                    continue;
                }
            };
            if env.room != self.room {
                continue;
            }
            if env.relay == self.relay {
                if !warned {
                    warned = true;
                    warn!(
                        relay = self.relay,
                        "backplane: another relay uses this relay's id; restart one of them"
                    );
                }
                continue;
            }
            let now = self.generation.load(Relaxed);
            if now != generation {
                generation = now;
                last.clear();
            }
            if last.gap(env.relay, env.seq) {
                let n = self.hub.cut_room(&self.room);
                warn!(
                    from = env.relay,
                    connections = n,
                    "backplane: messages from another relay were lost; this room's connections told to rejoin"
                );
            }
            self.hub.remote(env);
        }
    }
}

#[cfg(test)]
mod tests;
