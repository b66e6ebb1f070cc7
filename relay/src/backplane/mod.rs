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
//! Flow control spans the relays (docs/PROTOCOL.md §3.5):
//! - the hub never waits for NATS: it hands messages to this module through
//!   a bounded queue; past half of it ([`QUEUE_HIGH`]) the publishing
//!   connection reads nothing more until it has drained ([`Handle::below`]),
//!   so a publisher is slowed, not cut, by a broker slower than it;
//! - a relay whose own connections in a room fall behind on what other
//!   relays send says so ([`Message::Slow`]); the others then hold that
//!   room's publishers until it has caught up, at most the slow-reader
//!   timeout;
//! - a lost broker link holds the messages (and, past the mark, the shared
//!   rooms' publishers) for up to [`OUTAGE_HOLD`] and resumes when it is
//!   back; only a longer outage cuts the shared rooms' connections, which
//!   rejoin. What is lost on the way (a gap in a relay's sequence) is
//!   counted; members see it as gaps in their own sequence numbers.

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
/// Past this many bytes (or [`QUEUE_HIGH_MESSAGES`]) waiting for the
/// broker, publishers wait until the queue is back to half of it. Far
/// below the bound: what waits here is already on its way to the other
/// relays, where a slow reader's queue must take it.
pub const QUEUE_HIGH: usize = 2 << 20;
/// The mark in messages.
const QUEUE_HIGH_MESSAGES: usize = 512;
/// How long a lost broker link is waited for, messages held, before the
/// shared rooms' connections are cut off (they rejoin).
pub const OUTAGE_HOLD: Duration = Duration::from_secs(10);
/// Messages the NATS client itself may hold (its own queue, by count):
/// at most 64 × the broker's `max_payload` (128 MiB with 2 MB), in practice
/// a few KiB, as frames are small.
const CLIENT_CAPACITY: usize = 64;
/// Messages one room's subscription may hold before NATS drops them (a
/// drop shows as a gap in the sender's sequence): as many frames as one
/// connection's queue holds by default, so a burst the room's local
/// members could absorb is not lost on the way.
const SUBSCRIPTION_CAPACITY: usize = 4096;
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
    /// The sending relay's connections in the room are behind on what
    /// other relays send (`true`): hold the room's publishers until it says
    /// `false`, at most the slow-reader timeout.
    Slow(bool),
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
    /// The backplane takes messages: the link is up, or lost for less
    /// than [`OUTAGE_HOLD`].
    up: AtomicBool,
    /// The link itself is up.
    linked: AtomicBool,
    dropped: AtomicU64,
    /// Gaps seen in other relays' sequences (messages lost on the way).
    gaps: AtomicU64,
    rooms: Notify,
    /// Publishers waiting for the queue to drain.
    drained: Notify,
    /// A message came from another relay (since the link came back).
    heard: AtomicBool,
    heard_notify: Notify,
}

/// What [`Handle::publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued for the broker.
    Queued,
    /// Queued, and the queue is past its mark: the publisher waits
    /// ([`Handle::below`]).
    Congested,
    /// Dropped: the queue is full, or the link has been lost for longer
    /// than [`OUTAGE_HOLD`].
    Dropped,
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

    /// Tells the other relays: queued, queued past the mark, or dropped
    /// (the broker has been away longer than [`OUTAGE_HOLD`], or is behind
    /// by more than [`QUEUE_BYTES`]).
    pub fn publish(&self, room: RoomId, message: Message) -> Sent {
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
            return Sent::Dropped;
        }
        if self.tx.try_send((env, size)).is_err() {
            self.queued.fetch_sub(size, Relaxed);
            self.count_drop();
            return Sent::Dropped;
        }
        if self.past_mark() {
            Sent::Congested
        } else {
            Sent::Queued
        }
    }

    fn past_mark(&self) -> bool {
        self.queued.load(Relaxed) > QUEUE_HIGH || QUEUE - self.tx.capacity() > QUEUE_HIGH_MESSAGES
    }

    fn drained_enough(&self) -> bool {
        self.queued.load(Relaxed) <= QUEUE_HIGH / 2
            && QUEUE - self.tx.capacity() <= QUEUE_HIGH_MESSAGES / 2
    }

    /// Waits until the queue to the broker is back to half its mark (or
    /// the backplane stopped taking messages).
    pub async fn below(&self) {
        loop {
            let wake = self.drained.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            if self.drained_enough() || !self.up.load(Relaxed) {
                return;
            }
            wake.await;
        }
    }

    /// The backplane took `size` bytes off the queue.
    fn took(&self, size: usize) {
        self.queued.fetch_sub(size, Relaxed);
        if self.drained_enough() {
            self.drained.notify_waiters();
        }
    }

    /// Gaps seen in other relays' sequences (messages lost on the way).
    pub fn gaps(&self) -> u64 {
        self.gaps.load(Relaxed)
    }

    /// Messages dropped because the broker could not keep up or was away.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Whether the backplane takes messages (the link is up, or lost for
    /// less than [`OUTAGE_HOLD`]).
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Whether the link to the broker is up now.
    pub fn is_linked(&self) -> bool {
        self.linked.load(Relaxed)
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
            linked: AtomicBool::new(true),
            dropped: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            rooms: Notify::new(),
            drained: Notify::new(),
            heard: AtomicBool::new(false),
            heard_notify: Notify::new(),
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
    /// Delivers what another relay published; if a local connection's
    /// queue is now past its mark, a future that ends when it has drained.
    fn remote_noting(&self, env: Envelope) -> Option<Drained> {
        self.remote(env);
        None
    }
    /// Cuts every local connection of a room shared with other relays
    /// (the link to NATS was lost for longer than [`OUTAGE_HOLD`]); how
    /// many.
    fn cut_shared(&self) -> usize;
    /// Cuts the local connection `from` of `room` (its frame could not go
    /// out).
    fn cut_sender(&self, room: &RoomId, from: ConnId);
    /// Forgets other relays' connections not heard of for `ttl`.
    fn expire_remote(&self, ttl: Duration);
}

/// Ends when a local connection's queue has drained (or its connection
/// ended).
pub type Drained = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

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
            down_since: None,
            hold_until: None,
            expire_after: None,
            connects: 0,
            client,
            hub,
            handle,
            subs: HashMap::new(),
            seqs: HashMap::new(),
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
                () = bp.handle.heard_notify.notified(), if bp.hold_until.is_some() => {
                    if bp.handle.heard.load(Relaxed) {
                        bp.hold_until = None;
                    }
                }
                () = sleep_until_some(bp.hold_until), if bp.hold_until.is_some() => {
                    bp.hold_until = None;
                }
                // Held while the link is down (up to OUTAGE_HOLD), and once
                // it is back until another relay is heard from.
                env = rx.recv(), if bp.was_up && bp.hold_until.is_none() && bp.connected() => match env {
                    Some((env, size)) => {
                        bp.handle.took(size);
                        bp.forward(env).await;
                    }
                    None => break,
                },
                _ = beat.tick() => {
                    bp.check_link().await;
                    bp.tick().await;
                }
            }
            // An outage past its hold: what waits is dropped, and the
            // shared rooms' connections rejoin.
            if bp.outage_over() {
                bp.give_up(&mut rx);
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
    /// The link as last seen, and the client's count of connections then.
    was_up: bool,
    /// Since when the link has been down (None: up, or given up on).
    down_since: Option<tokio::time::Instant>,
    /// Back after an outage: what was held waits until another relay is
    /// heard from (so it has subscribed again: NATS keeps nothing for a
    /// subscriber that is not there yet), at most until then.
    hold_until: Option<tokio::time::Instant>,
    /// Back after an outage: remote connections are not expired before
    /// this (they have had no chance to be heard yet).
    expire_after: Option<tokio::time::Instant>,
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

    /// Reads the link's state from the client. Down: messages are held
    /// (publishers wait past the mark) for up to [`OUTAGE_HOLD`]. Up again
    /// (or on a new connection, a drop we did not see): every room asks who
    /// is there and says who is here, and what was held goes out.
    async fn check_link(&mut self) {
        let up = self.connected();
        let connects = self.client.statistics().connects.load(Relaxed);
        let dropped = self.was_up && (!up || connects != self.connects);
        self.handle.linked.store(up, Relaxed);
        if dropped && !up {
            self.down_since
                .get_or_insert_with(tokio::time::Instant::now);
            warn!("backplane link lost: shared rooms' messages held while it comes back");
        }
        if up && (!self.was_up || dropped) {
            if let Some(t) = self.down_since.take() {
                info!(
                    after_ms = t.elapsed().as_millis() as u64,
                    "backplane link back: held messages go out once another relay is heard from"
                );
                self.handle.heard.store(false, Relaxed);
                self.hold_until = Some(tokio::time::Instant::now() + HEARTBEAT);
                self.expire_after = Some(tokio::time::Instant::now() + PRESENCE_TTL);
            }
            self.handle.up.store(true, Relaxed);
            self.handle.drained.notify_waiters();
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
                        handle: Arc::clone(&self.handle),
                        relay: self.relay(),
                        room,
                        max_message: self.max_message,
                        slowed: Arc::new(AtomicBool::new(false)),
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

    /// Whether the link has been down for longer than [`OUTAGE_HOLD`].
    fn outage_over(&self) -> bool {
        self.down_since.is_some_and(|t| t.elapsed() >= OUTAGE_HOLD)
    }

    /// The link stayed down past its hold: frames between this relay and
    /// the others are lost, so the messages held are dropped, the shared
    /// rooms' local connections rejoin (see [`Rooms::cut_shared`]) and
    /// publishers are no longer held (their frames are dropped, and a
    /// shared room's publisher rejoins) until the link is back.
    fn give_up(&mut self, rx: &mut mpsc::Receiver<(Envelope, usize)>) {
        self.down_since = None;
        self.handle.up.store(false, Relaxed);
        let mut dropped = 0u64;
        while let Ok((_, size)) = rx.try_recv() {
            self.handle.took(size);
            dropped += 1;
        }
        self.handle.dropped.fetch_add(dropped, Relaxed);
        self.handle.drained.notify_waiters();
        let n = self.hub.cut_shared();
        warn!(
            connections = n,
            dropped,
            "backplane link lost for longer than its hold: connections in rooms shared with other relays told to rejoin"
        );
    }

    /// Heartbeats, expiry, and subscriptions catching up.
    async fn tick(&mut self) {
        self.reconcile().await;
        if !self.connected() || !self.was_up {
            // Nothing can be heard while the link is down (nor while the
            // client is still connecting): the others' connections are not
            // expired for our silence.
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
        // Back from an outage, the others' presence counts again from
        // when they can be heard.
        if self
            .expire_after
            .is_none_or(|t| tokio::time::Instant::now() >= t)
        {
            self.hub.expire_remote(PRESENCE_TTL);
        }
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
/// way (a route between NATS nodes, a slow consumer, a long outage): it is
/// counted and logged, and the members see it as a gap in their own
/// sequence numbers. When a local connection falls behind on what comes
/// from the others, they are told to hold the room's publishers
/// ([`Message::Slow`]) until it has drained.
struct Receiver {
    hub: Arc<dyn Rooms>,
    handle: Arc<Handle>,
    relay: u32,
    room: RoomId,
    max_message: usize,
    /// The others were told to hold this room (and not yet to go on).
    slowed: Arc<AtomicBool>,
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
            if last.gap(env.relay, env.seq) {
                let n = self.handle.gaps.fetch_add(1, Relaxed) + 1;
                if n.is_power_of_two() {
                    warn!(
                        from = env.relay,
                        gaps = n,
                        "backplane: messages from another relay were lost on the way; members see the gap"
                    );
                }
            }
            if !self.handle.heard.swap(true, Relaxed) {
                self.handle.heard_notify.notify_one();
            }
            if let Some(drained) = self.hub.remote_noting(env) {
                self.hold_the_others(drained);
            }
        }
    }

    /// A local connection is past its mark with what other relays send:
    /// they hold the room's publishers until it has drained (they stop
    /// holding after the slow-reader timeout in any case, by when this
    /// relay has cut a reader that stayed behind).
    fn hold_the_others(&self, drained: Drained) {
        if self.slowed.swap(true, Relaxed) {
            return;
        }
        self.handle.publish(self.room, Message::Slow(true));
        let (handle, room, slowed) = (
            Arc::clone(&self.handle),
            self.room,
            Arc::clone(&self.slowed),
        );
        tokio::spawn(async move {
            let _ = tokio::time::timeout(SLOW_HOLD_MAX, drained).await;
            slowed.store(false, Relaxed);
            handle.publish(room, Message::Slow(false));
        });
    }
}

/// Sleeps until `t` (never ends for `None`).
async fn sleep_until_some(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Longest a relay waits for its connection to drain before telling the
/// others to go on (they stop holding on their own after their slow-reader
/// timeout).
const SLOW_HOLD_MAX: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests;
