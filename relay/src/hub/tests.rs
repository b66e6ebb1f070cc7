//! The hub's tests: broadcast, queues, rooms and their limits.

use super::*;
use wire::decode_frame;

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
        hub.publish(&room, aid, None, Bytes::from_static(b"x"), false)
            .published,
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
        hub.publish(&room, aid, Some(999), Bytes::new(), false)
            .published,
        Published::NoSuchPeer
    );
    assert_eq!(
        hub.publish(&room, aid, Some(aid), Bytes::new(), false)
            .published,
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
        hub.publish(&room, aid, None, Bytes::from_static(b"m"), false);
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
fn a_publish_names_the_first_recipient_past_its_high_water_mark() {
    let hub = Hub::new(10, 10, 1 << 20, Arc::default());
    let (a, _ra) = member(&hub, 64);
    // A queue of 4 frames: past 2 (its welcome and one more) it is
    // congested.
    let (slow, rs) = member(&hub, 4);
    let (fast, _rf) = member(&hub, 64);
    let (aid, slow_id) = (a.id, slow.id);
    let (room, _) = hub.join(RoomId([1; 16]), a).unwrap();
    hub.join(RoomId([1; 16]), slow).unwrap();
    hub.join(RoomId([1; 16]), fast).unwrap();
    // The slow one's queue: its welcome and the fast one's arrival.
    let first = hub.publish(&room, aid, None, Bytes::from_static(b"m"), false);
    assert_eq!(first.published, Published::Delivered(2));
    assert_eq!(first.congested.map(|m| m.id), Some(slow_id));
    // Drained: nobody to wait for.
    while rs.try_pop().is_some() {}
    let next = hub.publish(&room, aid, None, Bytes::from_static(b"m"), false);
    assert!(next.congested.is_none());
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
