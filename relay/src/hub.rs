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
use std::sync::{Arc, Mutex, RwLock};

use bytes::{Bytes, BytesMut};
use common::wire::{encode_frame, ConnId, RelayFrame, Welcome, PROTOCOL_VERSION};
use common::RoomId;
use tokio_util::sync::CancellationToken;

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
        })
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
                });
                rooms.insert(room, Arc::clone(&r));
                r
            }
        };
        let id = member.id;
        let n_peers = {
            let mut m = r.members.write().unwrap_or_else(|p| p.into_inner());
            if m.len() >= self.max_room_conns {
                return Err(JoinError::RoomFull);
            }
            let peers: Vec<ConnId> = m.iter().map(|x| x.id).collect();
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
        if empty {
            if let Some(current) = rooms.get(&room.id) {
                if Arc::ptr_eq(current, room) {
                    rooms.remove(&room.id);
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
        let frame = RelayFrame::Deliver { from, payload };
        let Some(bytes) = self.encode(&frame) else {
            return Published::Delivered(0);
        };
        let members = room.members.read().unwrap_or_else(|p| p.into_inner());
        let mut delivered = 0;
        match to {
            Some(target) => match members.iter().find(|m| m.id == target && m.id != from) {
                Some(m) => delivered += self.queue(m, &bytes),
                None => return Published::NoSuchPeer,
            },
            None => {
                for m in members.iter().filter(|m| m.id != from) {
                    delivered += self.queue(m, &bytes);
                }
            }
        }
        Published::Delivered(delivered)
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
