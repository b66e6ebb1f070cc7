//! Rooms and their live connections: the relay's one broadcast interface.
//!
//! `join`, `leave` and `publish` are all the rest of the relay uses. A room
//! exists only while a connection is in it. A frame for the room is encoded
//! once into shared [`Bytes`] and queued to every recipient without copying;
//! a publish names the first recipient whose queue is past its high-water
//! mark, for its publisher to wait on (`crate::queue` has the flow
//! control); a recipient whose queue is full is cut off (never silently
//! skipped).
//! A backplane that spans several relays (NATS) slots in behind these three
//! methods.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;
use wire::RoomId;
use wire::{encode_frame, ConnId, RelayFrame, Welcome, PROTOCOL_VERSION};

use crate::backplane::{self, Handle, Message, Sent};
use crate::queue::{Outq, Push};
use crate::stats::Stats;
use tokio::sync::Notify;

/// A member's handle: its outbound queue and the token that ends it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Connection id.
    pub id: ConnId,
    /// Pre-encoded frames for this connection (bounded in frames and
    /// bytes; marked slow when the hub cuts it off).
    pub out: Arc<Outq>,
    /// Cancelled when the connection must end (slow reader, shutdown).
    pub kill: CancellationToken,
}

/// One room.
#[derive(Debug)]
pub struct Room {
    id: RoomId,
    members: RwLock<Vec<Member>>,
    /// Connections in the room on other relays (backplane): their relay
    /// and when it last vouched for them.
    remote: Mutex<HashMap<ConnId, (u32, Instant)>>,
    /// Other relays whose connections here are behind
    /// ([`Message::Slow`]), and until when at most their word holds our
    /// publishers (kept after that for as long again, during which the
    /// same relay cannot hold the room anew). Only relays with connections
    /// in the room get an entry, so it holds no more than they are.
    held: Mutex<HashMap<u32, Instant>>,
    /// Told when a relay says its connections caught up.
    released: Notify,
    /// Presence notices are queued and the writers not woken yet
    /// ([`NOTICE_GATHERING`]).
    notices_due: AtomicBool,
}

/// A room's gathering of notices under way: its end, however it comes,
/// wakes the room's writers.
#[derive(Debug)]
struct Gathering(Arc<Room>);

impl Drop for Gathering {
    fn drop(&mut self) {
        self.0.wake_writers();
    }
}

/// How long presence notices (`PeerJoined`, `PeerLeft`) wait in the
/// members' queues before their writers are woken for them. Queued
/// quietly, they go out with the next frame for that member, at the
/// end of the gathering, or at once in a queue past half its high-water
/// mark, in order with everything else: a storm of joins
/// into a room of 1,000 then costs each member a write per gathering,
/// not one per join (measured: 1,000 connections opened into one room
/// about 1.3x faster, docs/BENCHMARKS.md). Nothing waits on a notice but
/// presence itself.
pub const NOTICE_GATHERING: Duration = Duration::from_millis(5);

impl Room {
    /// Ends the room's gathering of presence notices: every member's
    /// writer is woken for what waits.
    fn wake_writers(&self) {
        self.notices_due.store(false, SeqCst);
        let members = self.members.read().unwrap_or_else(|p| p.into_inner());
        for m in members.iter() {
            m.out.wake();
        }
    }

    /// The room id.
    pub fn id(&self) -> RoomId {
        self.id
    }

    /// Until when this room's publishers wait for other relays' readers,
    /// if they do.
    pub fn held_until(&self) -> Option<Instant> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        held.values().filter(|until| **until > now).max().copied()
    }

    /// Waits, at most until `until`, while another relay holds this room
    /// (no wake-up is lost between the check and the wait).
    pub async fn wait_released(&self, until: Instant) {
        let deadline = tokio::time::Instant::from_std(until);
        loop {
            let wake = self.released.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            if self.held_until().is_none() {
                return;
            }
            if tokio::time::timeout_at(deadline, wake).await.is_err() {
                return;
            }
        }
    }
}

/// Why a join failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The room is at its connection limit.
    RoomFull,
    /// The relay is at its room limit.
    TooManyRooms,
}

/// Result of a publish (see also [`Delivery`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Queued to this many connections.
    Delivered(usize),
    /// `to` named a connection not in the room.
    NoSuchPeer,
}

/// What a publish did, and whom its publisher must wait for.
#[derive(Debug)]
pub struct Delivery {
    /// Delivered, or to nobody.
    pub published: Published,
    /// A recipient whose queue is past its high-water mark: the publisher
    /// reads nothing more until it has drained ([`Outq::drained`]), or
    /// until that reader is cut for staying behind.
    pub congested: Option<Member>,
    /// The queue to the other relays is past its mark: the publisher
    /// waits for it too ([`Handle::below`]).
    pub backplane_behind: bool,
}

/// What a publish noted for its publisher to wait for.
#[derive(Debug, Default)]
struct Noted {
    congested: Option<Member>,
    backplane_behind: bool,
}

/// All rooms of this relay.
#[derive(Debug)]
pub struct Hub {
    rooms: Mutex<HashMap<RoomId, Arc<Room>>>,
    max_rooms: usize,
    max_room_conns: usize,
    max_frame: usize,
    next_id: AtomicU64,
    stats: Arc<Stats>,
    /// Other relays sharing rooms (set once, at start).
    backplane: OnceLock<Arc<Handle>>,
    /// Longest another relay's [`Message::Slow`] holds our publishers, ms
    /// (the slow-reader timeout).
    remote_hold_ms: AtomicU64,
}

impl Hub {
    /// An empty hub with the given limits.
    pub fn new(
        max_rooms: usize,
        max_room_conns: usize,
        max_frame: usize,
        stats: Arc<Stats>,
    ) -> Arc<Self> {
        Arc::new(Hub {
            rooms: Mutex::new(HashMap::new()),
            max_rooms,
            max_room_conns,
            max_frame,
            next_id: AtomicU64::new(1),
            stats,
            backplane: OnceLock::new(),
            remote_hold_ms: AtomicU64::new(5_000),
        })
    }

    /// How long another relay's word that its readers are behind holds
    /// this relay's publishers at most (set to the slow-reader timeout).
    pub fn set_remote_hold(&self, d: Duration) {
        self.remote_hold_ms
            .store(d.as_millis().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    /// Shares this hub's rooms with other relays through `handle`; from now
    /// on connection ids carry the relay's id in their high 32 bits, so
    /// they are unique across relays. Call before any connection joins.
    pub fn set_backplane(&self, handle: Arc<Handle>) {
        let relay = u64::from(handle.relay());
        if self.backplane.set(handle).is_ok() {
            self.next_id.store((relay << 32) | 1, Relaxed);
        }
    }

    /// The backplane, if this relay shares rooms with others.
    pub fn backplane(&self) -> Option<&Arc<Handle>> {
        self.backplane.get()
    }

    /// The largest frame the relay accepts or sends.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Relaxed)
    }

    /// Rooms open now.
    pub fn room_count(&self) -> usize {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Adds `member` to `room` (creating it): queues its `Welcome` (its id
    /// and the ids already in the room) *before* it becomes visible, so no
    /// `PeerJoined` or `Deliver` can overtake the welcome; then tells the
    /// others. Returns the room and the number of peers it found.
    pub fn join(&self, room: RoomId, member: Member) -> Result<(Arc<Room>, usize), JoinError> {
        self.join_speaking(room, member, PROTOCOL_VERSION)
    }

    /// [`Hub::join`] for a client that said hello in `version`: its
    /// welcome names that version (one this relay speaks).
    pub fn join_speaking(
        &self,
        room: RoomId,
        member: Member,
        version: u16,
    ) -> Result<(Arc<Room>, usize), JoinError> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let n_rooms = rooms.len();
        let r = match rooms.get(&room) {
            Some(r) => Arc::clone(r),
            None => {
                if n_rooms >= self.max_rooms {
                    return Err(JoinError::TooManyRooms);
                }
                let r = Arc::new(Room {
                    id: room,
                    members: RwLock::new(Vec::new()),
                    remote: Mutex::new(HashMap::new()),
                    held: Mutex::new(HashMap::new()),
                    released: Notify::new(),
                    notices_due: AtomicBool::new(false),
                });
                rooms.insert(room, Arc::clone(&r));
                if let Some(bp) = self.backplane.get() {
                    bp.rooms_changed();
                }
                r
            }
        };
        let id = member.id;
        let n_peers = {
            let mut m = r.members.write().unwrap_or_else(|p| p.into_inner());
            let remote: Vec<ConnId> = r
                .remote
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .copied()
                .collect();
            // Across relays, as far as presence knows.
            if m.len() + remote.len() >= self.max_room_conns {
                return Err(JoinError::RoomFull);
            }
            let mut peers: Vec<ConnId> = m.iter().map(|x| x.id).collect();
            peers.extend(remote);
            let n = peers.len();
            let welcome = RelayFrame::Welcome(Welcome {
                version,
                conn_id: id,
                peers,
                max_frame: u32::try_from(self.max_frame).unwrap_or(u32::MAX),
            });
            if let Some(bytes) = self.encode(&welcome) {
                // A fresh queue: this cannot be full.
                self.queue(&member, &bytes, false);
            }
            m.push(member);
            n
        };
        drop(rooms);
        self.send_control(&r, id, RelayFrame::PeerJoined(id));
        if let Some(bp) = self.backplane.get() {
            bp.publish(room, Message::Joined(id));
        }
        Ok((r, n_peers))
    }

    /// Removes connection `id` from `room`, closes the room if it was the
    /// last, and tells the others when `notify` (not at shutdown).
    pub fn leave(&self, room: &Arc<Room>, id: ConnId, notify: bool) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let empty = {
            let mut m = room.members.write().unwrap_or_else(|p| p.into_inner());
            m.retain(|x| x.id != id);
            m.is_empty()
        };
        if let Some(bp) = self.backplane.get() {
            if notify {
                bp.publish(room.id, Message::Left(id));
            }
        }
        if empty {
            if let Some(current) = rooms.get(&room.id) {
                if Arc::ptr_eq(current, room) {
                    rooms.remove(&room.id);
                    if let Some(bp) = self.backplane.get() {
                        bp.rooms_changed();
                    }
                }
            }
            return;
        }
        drop(rooms);
        if notify {
            self.send_control(room, id, RelayFrame::PeerLeft(id));
        }
    }

    /// Delivers `payload` from `from` to every other member of `room`, or to
    /// `to` only, in the bulk lane of their queues if `bulk`. The frame is
    /// encoded once and shared by all recipients.
    pub fn publish(
        &self,
        room: &Room,
        from: ConnId,
        to: Option<ConnId>,
        payload: Bytes,
        bulk: bool,
    ) -> Delivery {
        let mut noted = Noted::default();
        let published = self.publish_noting(room, from, to, payload, bulk, &mut noted);
        Delivery {
            published,
            congested: noted.congested,
            backplane_behind: noted.backplane_behind,
        }
    }

    fn publish_noting(
        &self,
        room: &Room,
        from: ConnId,
        to: Option<ConnId>,
        payload: Bytes,
        bulk: bool,
        noted: &mut Noted,
    ) -> Published {
        let bp = self.backplane.get();
        let remote_target = |t: ConnId| {
            room.remote
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&t)
        };
        let frame = RelayFrame::Deliver {
            from,
            payload: payload.clone(),
        };
        let Some(bytes) = self.encode(&frame) else {
            return Published::Delivered(0);
        };
        let members = room.members.read().unwrap_or_else(|p| p.into_inner());
        let mut delivered = 0;
        match to {
            Some(target) => match members.iter().find(|m| m.id == target && m.id != from) {
                Some(m) => delivered += self.queue_noting(m, &bytes, bulk, &mut noted.congested),
                None => match bp {
                    Some(bp) if target != from && remote_target(target) => {
                        let sent = bp.publish(
                            room.id,
                            Message::Deliver {
                                from,
                                to: Some(target),
                                payload,
                                bulk,
                            },
                        );
                        match sent {
                            Sent::Dropped => Self::cut(members.iter().filter(|m| m.id == from)),
                            Sent::Congested => {
                                noted.backplane_behind = true;
                                0
                            }
                            Sent::Queued => 0,
                        };
                        delivered += 1;
                    }
                    _ => return Published::NoSuchPeer,
                },
            },
            None => {
                for m in members.iter().filter(|m| m.id != from) {
                    delivered += self.queue_noting(m, &bytes, bulk, &mut noted.congested);
                }
                // While the broker is away, a room with no one elsewhere
                // does not fill the queue kept for the shared ones.
                // (Without a backplane, no lock is taken here.)
                let remote = || room.remote.lock().unwrap_or_else(|p| p.into_inner()).len();
                if let Some((bp, remote)) = bp
                    .map(|bp| (bp, remote()))
                    .filter(|(bp, remote)| *remote > 0 || bp.is_linked())
                {
                    let sent = bp.publish(
                        room.id,
                        Message::Deliver {
                            from,
                            to: None,
                            payload,
                            bulk,
                        },
                    );
                    // Lost on its way to the room's other relays: the
                    // sender rejoins rather than the room silently diverging.
                    match sent {
                        Sent::Dropped if remote > 0 => {
                            Self::cut(members.iter().filter(|m| m.id == from));
                        }
                        Sent::Congested => noted.backplane_behind = true,
                        _ => {}
                    }
                    // The other relays' deliveries count against the
                    // sender's fan-out budget too.
                    delivered += remote;
                }
            }
        }
        Published::Delivered(delivered)
    }

    /// The connections this relay holds in `room` (for heartbeats).
    pub fn local_ids(&self, room: &RoomId) -> Vec<ConnId> {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .get(room)
            .map(|r| {
                r.members
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(|m| m.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A room, if open.
    fn room(&self, id: &RoomId) -> Option<Arc<Room>> {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Every open room, now (no hub lock held while the caller works).
    fn all_rooms(&self) -> Vec<Arc<Room>> {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The rooms this relay holds connections in (the backplane keeps one
    /// subscription for each).
    pub fn room_ids(&self) -> Vec<RoomId> {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// A message from another relay: frames for our connections, and
    /// presence. Rooms we hold no connection in are ignored, and so is
    /// anything about a connection id that is not the sending relay's own
    /// (ids carry their relay in the high 32 bits): one relay cannot make
    /// another's connections appear or vanish. At most `max_room_conns`
    /// remote connections are kept per room.
    pub fn remote(&self, env: backplane::Envelope) {
        self.remote_noting(env);
    }

    /// [`Hub::remote`]; a local member whose queue is now past half its
    /// mark with what came (the other relays are then told to hold the
    /// room's publishers until it has drained to a quarter: they react a
    /// round trip late, and the other half and the bound's headroom take
    /// what is on its way meanwhile).
    pub fn remote_noting(&self, env: backplane::Envelope) -> Option<Member> {
        let room = self.room(&env.room)?;
        let theirs = |id: &ConnId| id >> 32 == u64::from(env.relay);
        let now = Instant::now();
        match env.message {
            Message::Deliver {
                from,
                to,
                payload,
                bulk,
            } => {
                if !theirs(&from) {
                    return None;
                }
                let frame = RelayFrame::Deliver { from, payload };
                let bytes = self.encode(&frame)?;
                let members = room.members.read().unwrap_or_else(|p| p.into_inner());
                let mut behind = None;
                for m in members.iter().filter(|m| to.is_none_or(|t| t == m.id)) {
                    let pushed = self.queue(m, &bytes, bulk);
                    if behind.is_none()
                        && (pushed == Push::Congested
                            || pushed == Push::Queued && m.out.past_half_mark())
                    {
                        behind = Some(m.clone());
                    }
                }
                return behind;
            }
            Message::Joined(id) => {
                if !theirs(&id) {
                    return None;
                }
                let new = {
                    let mut remote = room.remote.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(seen) = remote.get_mut(&id) {
                        *seen = (env.relay, now);
                        false
                    } else if remote.len() < self.max_room_conns {
                        remote.insert(id, (env.relay, now));
                        true
                    } else {
                        false
                    }
                };
                if new {
                    self.send_control(&room, id, RelayFrame::PeerJoined(id));
                }
            }
            Message::Left(id) => {
                if !theirs(&id) {
                    return None;
                }
                let gone = room
                    .remote
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id)
                    .is_some();
                if gone {
                    self.send_control(&room, id, RelayFrame::PeerLeft(id));
                }
            }
            Message::Present(ids) => {
                let ids: HashSet<ConnId> = ids.into_iter().filter(theirs).collect();
                let (joined, left) = {
                    let mut remote = room.remote.lock().unwrap_or_else(|p| p.into_inner());
                    // That relay's connections it no longer lists have left.
                    let left: Vec<ConnId> = remote
                        .iter()
                        .filter(|(id, (relay, _))| *relay == env.relay && !ids.contains(id))
                        .map(|(id, _)| *id)
                        .collect();
                    for id in &left {
                        remote.remove(id);
                    }
                    let mut joined = Vec::new();
                    for id in &ids {
                        if let Some(seen) = remote.get_mut(id) {
                            *seen = (env.relay, now);
                        } else if remote.len() < self.max_room_conns {
                            remote.insert(*id, (env.relay, now));
                            joined.push(*id);
                        }
                    }
                    (joined, left)
                };
                for id in left {
                    self.send_control(&room, id, RelayFrame::PeerLeft(id));
                }
                for id in joined {
                    self.send_control(&room, id, RelayFrame::PeerJoined(id));
                }
            }
            Message::Hello => {
                if let Some(bp) = self.backplane.get() {
                    let ids: Vec<ConnId> = room
                        .members
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .map(|m| m.id)
                        .collect();
                    if !ids.is_empty() {
                        bp.publish(room.id, Message::Present(ids));
                    }
                }
            }
            Message::Slow(behind) => {
                // Only a relay with connections in the room can hold it.
                let present = room
                    .remote
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .any(|(relay, _)| *relay == env.relay);
                let hold = Duration::from_millis(self.remote_hold_ms.load(Relaxed));
                let mut held = room.held.lock().unwrap_or_else(|p| p.into_inner());
                // Entries past their hold and its cool-off are forgotten.
                held.retain(|_, until| *until + hold > now);
                if behind && present {
                    // A hold runs its course: saying it again neither
                    // extends it nor, until as long again has passed,
                    // starts a new one.
                    held.entry(env.relay).or_insert(now + hold);
                } else if !behind && held.remove(&env.relay).is_some() {
                    room.released.notify_waiters();
                }
            }
        }
        None
    }

    /// Frames between this relay and the others may have been lost (the
    /// backplane link dropped, or could not keep up): every local
    /// connection in a room shared with another relay is cut off and told
    /// to rejoin, so no room goes on with members that silently missed a
    /// frame (a new epoch, say). The room forgets its remote peers; rooms
    /// held by this relay alone go on untouched. Returns how many
    /// connections were cut.
    pub fn cut_shared(&self) -> usize {
        let rooms = self.all_rooms();
        let mut n = 0;
        for room in rooms {
            let shared = {
                let mut remote = room.remote.lock().unwrap_or_else(|p| p.into_inner());
                let shared = !remote.is_empty();
                remote.clear();
                shared
            };
            if shared {
                let members = room.members.read().unwrap_or_else(|p| p.into_inner());
                n += Self::cut(members.iter());
            }
        }
        n
    }

    /// A frame `from` published in `room` never reached the other relays:
    /// if the room is shared, `from` is cut off and rejoins.
    pub fn cut_sender(&self, room: &RoomId, from: ConnId) {
        let room = self.room(room);
        if let Some(room) = room {
            let shared = !room
                .remote
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty();
            if shared {
                let members = room.members.read().unwrap_or_else(|p| p.into_inner());
                Self::cut(members.iter().filter(|m| m.id == from));
            }
        }
    }

    fn cut<'a>(members: impl Iterator<Item = &'a Member>) -> usize {
        let mut n = 0;
        for m in members {
            m.out.mark_rejoin();
            m.kill.cancel();
            n += 1;
        }
        n
    }

    /// Forgets remote connections not vouched for within `ttl` (their
    /// relay crashed or lost the broker): the room is told they left.
    pub fn expire_remote(&self, ttl: Duration) {
        let rooms = self.all_rooms();
        let now = Instant::now();
        for room in rooms {
            let gone: Vec<ConnId> = {
                let mut remote = room.remote.lock().unwrap_or_else(|p| p.into_inner());
                let gone: Vec<ConnId> = remote
                    .iter()
                    .filter(|(_, (_, seen))| now.duration_since(*seen) > ttl)
                    .map(|(id, _)| *id)
                    .collect();
                for id in &gone {
                    remote.remove(id);
                }
                gone
            };
            for id in gone {
                self.send_control(&room, id, RelayFrame::PeerLeft(id));
            }
        }
    }

    /// Queues a presence notice to every member but `except`, quietly:
    /// the writers are woken at the end of the room's gathering
    /// ([`NOTICE_GATHERING`]), or sooner by other frames.
    fn send_control(&self, room: &Arc<Room>, except: ConnId, frame: RelayFrame) {
        let Some(bytes) = self.encode(&frame) else {
            return;
        };
        {
            let members = room.members.read().unwrap_or_else(|p| p.into_inner());
            for m in members.iter().filter(|m| m.id != except) {
                self.counted(m, &bytes, m.out.push_quiet(bytes.clone()));
            }
        }
        if room.notices_due.swap(true, SeqCst) {
            // A gathering is under way: it wakes them.
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                // Woken when the gathering ends, and also if the task is
                // dropped or fails first: the room never keeps its flag
                // set with nobody to clear it.
                let gathering = Gathering(Arc::clone(room));
                rt.spawn(async move {
                    tokio::time::sleep(NOTICE_GATHERING).await;
                    drop(gathering);
                });
            }
            // No runtime to wait on (a hub driven by hand): at once.
            Err(_) => room.wake_writers(),
        }
    }

    fn encode(&self, frame: &RelayFrame) -> Option<Bytes> {
        let mut buf = BytesMut::new();
        // Payloads are checked against `max_payload` on receipt, so every
        // Deliver fits the limit the clients were told in their welcome.
        encode_frame(frame, self.max_frame, &mut buf).ok()?;
        Some(buf.freeze())
    }

    /// [`Hub::queue`], noting the first recipient whose queue is past its
    /// high-water mark (its publisher waits for it).
    fn queue_noting(
        &self,
        m: &Member,
        bytes: &Bytes,
        bulk: bool,
        congested: &mut Option<Member>,
    ) -> usize {
        match self.queue(m, bytes, bulk) {
            Push::Queued => 1,
            Push::Congested => {
                if congested.is_none() {
                    *congested = Some(m.clone());
                }
                1
            }
            Push::Full | Push::Closed => 0,
        }
    }

    /// Queues `bytes` to `m`. A queue over its frame count or its byte
    /// bound kills the connection (never a silent skip, never unbounded
    /// memory); past its high-water mark the publisher is told to wait
    /// ([`Delivery::congested`]).
    fn queue(&self, m: &Member, bytes: &Bytes, bulk: bool) -> Push {
        let pushed = if bulk {
            m.out.push_bulk(bytes.clone())
        } else {
            m.out.push(bytes.clone())
        };
        self.counted(m, bytes, pushed)
    }

    /// Counts a frame queued to `m`, or cuts `m` if its queue was full.
    fn counted(&self, m: &Member, bytes: &Bytes, pushed: Push) -> Push {
        match pushed {
            Push::Queued | Push::Congested => {
                self.stats.frames_out.fetch_add(1, Relaxed);
                self.stats.bytes_out.fetch_add(bytes.len() as u64, Relaxed);
            }
            Push::Full => {
                m.out.mark_slow();
                m.kill.cancel();
            }
            Push::Closed => {}
        }
        pushed
    }
}

impl backplane::Rooms for Hub {
    fn max_frame(&self) -> usize {
        Hub::max_frame(self)
    }
    fn local_ids(&self, room: &RoomId) -> Vec<ConnId> {
        Hub::local_ids(self, room)
    }
    fn room_ids(&self) -> Vec<RoomId> {
        Hub::room_ids(self)
    }
    fn remote(&self, env: backplane::Envelope) {
        Hub::remote(self, env)
    }
    fn cut_shared(&self) -> usize {
        Hub::cut_shared(self)
    }
    fn remote_noting(&self, env: backplane::Envelope) -> Option<backplane::Drained> {
        let behind = Hub::remote_noting(self, env)?;
        Some(Box::pin(
            async move { behind.out.drained_to_quarter().await },
        ))
    }
    fn cut_sender(&self, room: &RoomId, from: ConnId) {
        Hub::cut_sender(self, room, from)
    }
    fn expire_remote(&self, ttl: Duration) {
        Hub::expire_remote(self, ttl)
    }
}

/// The fuzz entry point for what other relays send over NATS (feature
/// `test-support`; `fuzz/fuzz_targets/backplane.rs`). `data` is a run of
/// messages, each a little-endian `u16` length and that many bytes, handled
/// as the backplane's receiver handles them: decoded (a decoded envelope
/// must re-encode to itself), checked for a sequence gap, given to a hub
/// with one local connection in the room. Whatever the messages say, every
/// frame the relay then queues for its own client must decode.
#[cfg(feature = "test-support")]
#[allow(clippy::expect_used, clippy::panic)]
pub fn fuzz_backplane(data: &[u8]) {
    use wire::{decode_frame, decode_payload, encode_payload};
    const ROOM: RoomId = RoomId([0x42; 16]);
    const MAX: usize = 1 << 16;
    let hub = Hub::new(8, 8, MAX, Arc::default());
    let member = Member {
        id: hub.next_conn_id(),
        out: Arc::new(Outq::new(64, 1 << 20)),
        kill: CancellationToken::new(),
    };
    let own = u32::try_from(member.id >> 32).unwrap_or(u32::MAX);
    if hub.join(ROOM, member.clone()).is_err() {
        return;
    }
    let mut seqs = backplane::Sequences::default();
    let mut rest = data;
    for _ in 0..64 {
        let [a, b, tail @ ..] = rest else {
            break;
        };
        let n = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (msg, tail) = tail.split_at(n);
        rest = tail;
        let Ok(env) = decode_payload::<backplane::Envelope>(msg, MAX) else {
            continue;
        };
        let again = encode_payload(&env, MAX).expect("a decoded envelope re-encodes");
        let back: backplane::Envelope = decode_payload(&again, MAX).expect("and decodes");
        assert!(back == env, "decode(encode(envelope)) != envelope");
        if env.room != ROOM || env.relay == own {
            continue;
        }
        // A gap is only counted (the members see it in their own numbers).
        let _ = seqs.gap(env.relay, env.seq);
        hub.remote(env);
        while let Some(frame) = member.out.try_pop() {
            if let Err(e) = decode_frame::<RelayFrame>(&frame, 1 << 20) {
                panic!("the relay queued a frame its client cannot read: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod remote_tests;
