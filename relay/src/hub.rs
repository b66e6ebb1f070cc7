//! Rooms and their live connections: the relay's one broadcast interface.
//!
//! `join`, `leave` and `publish` are all the rest of the relay uses. A room
//! exists only while a connection is in it. A frame for the room is encoded
//! once into shared [`Bytes`] and queued to every recipient without copying;
//! a recipient whose queue is full is cut off (never silently skipped).
//! A backplane that spans several relays (NATS) slots in behind these three
//! methods.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::wire::{encode_frame, ConnId, RelayFrame, Welcome, PROTOCOL_VERSION};
use common::RoomId;
use tokio_util::sync::CancellationToken;

use crate::backplane::{self, Handle, Message};
use crate::queue::{Outq, Push};
use crate::stats::Stats;

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
}

impl Room {
    /// The room id.
    pub fn id(&self) -> RoomId {
        self.id
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

/// Result of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Queued to this many connections.
    Delivered(usize),
    /// `to` named a connection not in the room.
    NoSuchPeer,
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
        })
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
                });
                rooms.insert(room, Arc::clone(&r));
                if let Some(bp) = self.backplane.get() {
                    bp.subscribe(room);
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
                version: PROTOCOL_VERSION,
                conn_id: id,
                peers,
                max_frame: u32::try_from(self.max_frame).unwrap_or(u32::MAX),
            });
            if let Some(bytes) = self.encode(&welcome) {
                // A fresh queue: this cannot be full.
                self.queue(&member, &bytes);
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
                        bp.unsubscribe(room.id);
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
    /// `to` only. The frame is encoded once and shared by all recipients.
    pub fn publish(
        &self,
        room: &Room,
        from: ConnId,
        to: Option<ConnId>,
        payload: Bytes,
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
                Some(m) => delivered += self.queue(m, &bytes),
                None => match bp {
                    Some(bp) if target != from && remote_target(target) => {
                        bp.publish(
                            room.id,
                            Message::Deliver {
                                from,
                                to: Some(target),
                                payload,
                            },
                        );
                        delivered += 1;
                    }
                    _ => return Published::NoSuchPeer,
                },
            },
            None => {
                for m in members.iter().filter(|m| m.id != from) {
                    delivered += self.queue(m, &bytes);
                }
                if let Some(bp) = bp {
                    bp.publish(
                        room.id,
                        Message::Deliver {
                            from,
                            to: None,
                            payload,
                        },
                    );
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

    /// A message from another relay: frames for our connections, and
    /// presence. Rooms we hold no connection in are ignored.
    pub fn remote(&self, env: backplane::Envelope) {
        let room = {
            let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
            match rooms.get(&env.room) {
                Some(r) => Arc::clone(r),
                None => return,
            }
        };
        let now = Instant::now();
        match env.message {
            Message::Deliver { from, to, payload } => {
                let frame = RelayFrame::Deliver { from, payload };
                let Some(bytes) = self.encode(&frame) else {
                    return;
                };
                let members = room.members.read().unwrap_or_else(|p| p.into_inner());
                for m in members.iter().filter(|m| to.is_none_or(|t| t == m.id)) {
                    self.queue(m, &bytes);
                }
            }
            Message::Joined(id) => {
                let new = room
                    .remote
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, (env.relay, now))
                    .is_none();
                if new {
                    self.send_control(&room, id, RelayFrame::PeerJoined(id));
                }
            }
            Message::Left(id) => {
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
                let (joined, left) = {
                    let mut remote = room.remote.lock().unwrap_or_else(|p| p.into_inner());
                    let mut joined = Vec::new();
                    for id in &ids {
                        if remote.insert(*id, (env.relay, now)).is_none() {
                            joined.push(*id);
                        }
                    }
                    // That relay's connections it no longer lists have left.
                    let left: Vec<ConnId> = remote
                        .iter()
                        .filter(|(id, (relay, _))| *relay == env.relay && !ids.contains(id))
                        .map(|(id, _)| *id)
                        .collect();
                    for id in &left {
                        remote.remove(id);
                    }
                    (joined, left)
                };
                for id in joined {
                    self.send_control(&room, id, RelayFrame::PeerJoined(id));
                }
                for id in left {
                    self.send_control(&room, id, RelayFrame::PeerLeft(id));
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
        }
    }

    /// Forgets remote connections not vouched for within `ttl` (their
    /// relay crashed or lost the broker): the room is told they left.
    pub fn expire_remote(&self, ttl: Duration) {
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
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

    fn send_control(&self, room: &Room, except: ConnId, frame: RelayFrame) {
        let Some(bytes) = self.encode(&frame) else {
            return;
        };
        let members = room.members.read().unwrap_or_else(|p| p.into_inner());
        for m in members.iter().filter(|m| m.id != except) {
            self.queue(m, &bytes);
        }
    }

    fn encode(&self, frame: &RelayFrame) -> Option<Bytes> {
        let mut buf = BytesMut::new();
        // Payloads are checked against `max_payload` on receipt, so every
        // Deliver fits the limit the clients were told in their welcome.
        encode_frame(frame, self.max_frame, &mut buf).ok()?;
        Some(buf.freeze())
    }

    /// Queues `bytes` to `m`. A queue over its frame count or its byte
    /// budget kills the connection (never a silent skip, never unbounded
    /// memory).
    fn queue(&self, m: &Member, bytes: &Bytes) -> usize {
        match m.out.push(bytes.clone()) {
            Push::Queued => {
                self.stats.frames_out.fetch_add(1, Relaxed);
                self.stats.bytes_out.fetch_add(bytes.len() as u64, Relaxed);
                1
            }
            Push::Full => {
                m.out.mark_slow();
                m.kill.cancel();
                0
            }
            Push::Closed => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::wire::decode_frame;

    fn member(hub: &Hub, cap: usize) -> (Member, Arc<Outq>) {
        let out = Arc::new(Outq::new(cap, 1 << 20));
        (
            Member {
                id: hub.next_conn_id(),
                out: Arc::clone(&out),
                kill: CancellationToken::new(),
            },
            out,
        )
    }

    fn frame(b: Bytes) -> RelayFrame {
        decode_frame::<RelayFrame>(&b, 1 << 20).unwrap().0
    }

    #[test]
    fn broadcast_reaches_others_not_sender_and_not_other_rooms() {
        let hub = Hub::new(10, 10, 1 << 20, Arc::default());
        let (a, ra) = member(&hub, 8);
        let (b, rb) = member(&hub, 8);
        let (c, rc) = member(&hub, 8);
        let (aid, bid) = (a.id, b.id);
        let (room, peers) = hub.join(RoomId([1; 16]), a).unwrap();
        assert_eq!(peers, 0);
        let (_, peers) = hub.join(RoomId([1; 16]), b).unwrap();
        assert_eq!(peers, 1);
        hub.join(RoomId([2; 16]), c).unwrap();
        // Each member's first frame is its own welcome.
        for (rx, id, want) in [(&ra, aid, vec![]), (&rb, bid, vec![aid])] {
            match frame(rx.try_pop().unwrap()) {
                RelayFrame::Welcome(w) => {
                    assert_eq!(w.conn_id, id);
                    assert_eq!(w.peers, want);
                }
                f => panic!("first frame {f:?}"),
            }
        }
        assert!(matches!(
            frame(rc.try_pop().unwrap()),
            RelayFrame::Welcome(_)
        ));
        assert_eq!(frame(ra.try_pop().unwrap()), RelayFrame::PeerJoined(bid));
        assert_eq!(
            hub.publish(&room, aid, None, Bytes::from_static(b"x")),
            Published::Delivered(1)
        );
        assert_eq!(
            frame(rb.try_pop().unwrap()),
            RelayFrame::Deliver {
                from: aid,
                payload: Bytes::from_static(b"x")
            }
        );
        assert!(ra.try_pop().is_none());
        assert!(rc.try_pop().is_none());
        assert_eq!(
            hub.publish(&room, aid, Some(999), Bytes::new()),
            Published::NoSuchPeer
        );
        assert_eq!(
            hub.publish(&room, aid, Some(aid), Bytes::new()),
            Published::NoSuchPeer
        );
    }

    #[test]
    fn full_queue_kills_the_slow_member_only() {
        let hub = Hub::new(10, 10, 1 << 20, Arc::default());
        let (a, _ra) = member(&hub, 8);
        let (slow, _rs) = member(&hub, 1);
        let (fast, rf) = member(&hub, 64);
        let aid = a.id;
        let (slow_kill, slow_out) = (slow.kill.clone(), Arc::clone(&slow.out));
        let (room, _) = hub.join(RoomId([1; 16]), a).unwrap();
        hub.join(RoomId([1; 16]), slow).unwrap();
        hub.join(RoomId([1; 16]), fast).unwrap();
        for _ in 0..10 {
            hub.publish(&room, aid, None, Bytes::from_static(b"m"));
        }
        assert!(slow_kill.is_cancelled());
        assert!(slow_out.is_slow());
        let mut got = 0;
        while let Some(b) = rf.try_pop() {
            got += matches!(frame(b), RelayFrame::Deliver { .. }) as usize;
        }
        assert_eq!(got, 10, "the fast member lost nothing");
    }

    #[test]
    fn rooms_vanish_when_empty_and_limits_hold() {
        let hub = Hub::new(1, 1, 1 << 20, Arc::default());
        let (a, _ra) = member(&hub, 8);
        let (b, _rb) = member(&hub, 8);
        let (c, _rc) = member(&hub, 8);
        let aid = a.id;
        let (room, _) = hub.join(RoomId([1; 16]), a).unwrap();
        assert_eq!(
            hub.join(RoomId([1; 16]), b).err(),
            Some(JoinError::RoomFull)
        );
        assert_eq!(
            hub.join(RoomId([2; 16]), c).err(),
            Some(JoinError::TooManyRooms)
        );
        hub.leave(&room, aid, true);
        assert_eq!(hub.room_count(), 0);
    }
}
