//! The hub with a backplane: frames from other relays, presence, gaps and cuts.

use super::*;
use crate::backplane::Envelope;
use wire::decode_frame;

const ROOM: RoomId = RoomId([7; 16]);
const THEM: u32 = 9;

fn them(n: u64) -> ConnId {
    (u64::from(THEM) << 32) | n
}

fn env(relay: u32, message: Message) -> Envelope {
    Envelope {
        relay,
        room: ROOM,
        seq: 0,
        message,
    }
}

fn local(hub: &Hub, room: RoomId) -> (Arc<Room>, Member) {
    let m = Member {
        id: hub.next_conn_id(),
        out: Arc::new(Outq::new(64, 1 << 20)),
        kill: CancellationToken::new(),
    };
    let (r, _) = hub.join(room, m.clone()).unwrap();
    (r, m)
}

/// Presence frames queued to `m` since its welcome.
fn heard(m: &Member) -> Vec<RelayFrame> {
    let mut out = Vec::new();
    while let Some(b) = m.out.try_pop() {
        match decode_frame::<RelayFrame>(&b, 1 << 20).unwrap().0 {
            RelayFrame::Welcome(_) => {}
            f => out.push(f),
        }
    }
    out
}

#[test]
fn a_relay_speaks_only_for_its_own_connections() {
    let hub = Hub::new(10, 10, 1 << 20, Arc::default());
    let (_room, a) = local(&hub, ROOM);
    // Relay 9 vouching for relay 10's connection, or for ours: ignored.
    let foreign = (10u64 << 32) | 1;
    hub.remote(env(THEM, Message::Joined(foreign)));
    hub.remote(env(THEM, Message::Joined(a.id)));
    hub.remote(env(THEM, Message::Present(vec![foreign, a.id])));
    hub.remote(env(
        THEM,
        Message::Deliver {
            from: foreign,
            to: None,
            payload: Bytes::from_static(b"forged"),
            bulk: false,
        },
    ));
    assert_eq!(heard(&a), vec![]);
    // Its own: heard, once.
    hub.remote(env(THEM, Message::Joined(them(1))));
    hub.remote(env(THEM, Message::Present(vec![them(1), them(2)])));
    hub.remote(env(
        THEM,
        Message::Deliver {
            from: them(1),
            to: None,
            payload: Bytes::from_static(b"sealed"),
            bulk: false,
        },
    ));
    assert_eq!(
        heard(&a),
        vec![
            RelayFrame::PeerJoined(them(1)),
            RelayFrame::PeerJoined(them(2)),
            RelayFrame::Deliver {
                from: them(1),
                payload: Bytes::from_static(b"sealed")
            }
        ]
    );
    // Another relay cannot make them leave either.
    hub.remote(env(10, Message::Left(them(1))));
    hub.remote(env(10, Message::Present(vec![])));
    assert_eq!(heard(&a), vec![]);
    hub.remote(env(THEM, Message::Present(vec![them(2)])));
    assert_eq!(heard(&a), vec![RelayFrame::PeerLeft(them(1))]);
}

#[test]
fn remote_connections_are_capped_at_the_room_limit() {
    let hub = Hub::new(10, 4, 1 << 20, Arc::default());
    let (_room, a) = local(&hub, ROOM);
    hub.remote(env(THEM, Message::Present((1..=1000).map(them).collect())));
    let joined = heard(&a)
        .into_iter()
        .filter(|f| matches!(f, RelayFrame::PeerJoined(_)))
        .count();
    assert_eq!(joined, 4, "a room holds at most max_room_conns remote ids");
    // The room is full across relays: nobody else joins here.
    let m = Member {
        id: hub.next_conn_id(),
        out: Arc::new(Outq::new(8, 1 << 20)),
        kill: CancellationToken::new(),
    };
    assert_eq!(hub.join(ROOM, m).err(), Some(JoinError::RoomFull));
}

#[test]
fn a_lost_link_cuts_shared_rooms_only_and_remote_fanout_is_charged() {
    let hub = Hub::new(10, 10, 1 << 20, Arc::default());
    let (shared_room, a) = local(&hub, ROOM);
    let (_, b) = local(&hub, ROOM);
    let (alone_room, c) = local(&hub, RoomId([8; 16]));
    let (_, d) = local(&hub, RoomId([8; 16]));
    hub.remote(env(THEM, Message::Present(vec![them(1), them(2)])));
    // Without a backplane the remote peers are not counted; the local
    // one is.
    assert_eq!(
        hub.publish(&shared_room, a.id, None, Bytes::from_static(b"x"), false)
            .published,
        Published::Delivered(1)
    );
    assert_eq!(hub.cut_shared(), 2);
    for m in [&a, &b] {
        assert!(m.kill.is_cancelled() && m.out.must_rejoin());
    }
    for m in [&c, &d] {
        assert!(!m.kill.is_cancelled() && !m.out.must_rejoin());
    }
    assert_eq!(
        hub.publish(&alone_room, c.id, None, Bytes::from_static(b"y"), false)
            .published,
        Published::Delivered(1)
    );
    // The shared room forgot its remote peers: nothing left to cut.
    assert_eq!(hub.cut_shared(), 0);
}

#[test]
fn remote_deliveries_count_against_the_senders_budget_and_a_lost_frame_cuts_it() {
    let hub = Hub::new(10, 10, 1 << 20, Arc::default());
    let (handle, mut sent) = crate::backplane::Handle::for_test(3);
    hub.set_backplane(Arc::clone(&handle));
    let (room, a) = local(&hub, ROOM);
    let (_, b) = local(&hub, ROOM);
    assert_eq!(a.id >> 32, 3, "ids carry the relay");
    hub.remote(env(THEM, Message::Present(vec![them(1), them(2)])));
    assert_eq!(
        hub.publish(&room, a.id, None, Bytes::from_static(b"x"), false)
            .published,
        Published::Delivered(3),
        "one local and two remote deliveries"
    );
    let mut forwarded = 0;
    while let Ok((e, _)) = sent.try_recv() {
        forwarded += matches!(e.message, Message::Deliver { from, .. } if from == a.id) as usize;
    }
    assert_eq!(forwarded, 1);
    // The broker is away: the frame cannot reach the others, so its
    // sender is cut off and rejoins; the other local member is not.
    handle.set_up(false);
    hub.publish(&room, a.id, None, Bytes::from_static(b"y"), false);
    assert!(a.kill.is_cancelled() && a.out.must_rejoin());
    assert!(!b.kill.is_cancelled());
    assert!(handle.dropped() >= 1);
}

/// `Slow` holds a room's publishers only on the word of a relay with
/// connections in it, for at most the hold, without renewal while it runs,
/// until that relay says it caught up; its map holds no more entries than
/// there are such relays.
#[test]
fn only_a_relay_in_the_room_can_hold_it_and_only_for_the_bound() {
    let hub = Hub::new(10, 10, 1 << 20, Arc::default());
    hub.set_remote_hold(Duration::from_millis(300));
    let (room, _a) = local(&hub, ROOM);
    // Relays with nobody in the room: no hold, no entry.
    for relay in 100..200 {
        hub.remote(env(relay, Message::Slow(true)));
    }
    assert_eq!(room.held_until(), None);
    assert_eq!(room.held.lock().unwrap().len(), 0, "no entry for strangers");
    // A relay with a connection here holds it.
    hub.remote(env(THEM, Message::Joined(them(1))));
    hub.remote(env(THEM, Message::Slow(true)));
    let until = room.held_until().expect("held");
    assert!(until <= Instant::now() + Duration::from_millis(300));
    // Saying it again does not extend it.
    std::thread::sleep(Duration::from_millis(50));
    hub.remote(env(THEM, Message::Slow(true)));
    assert_eq!(room.held_until(), Some(until));
    // It ends on its own...
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(room.held_until(), None);
    // ...and cannot start again at once.
    hub.remote(env(THEM, Message::Slow(true)));
    assert_eq!(room.held_until(), None, "no renewal right after the hold");
    // After the cool-off it can; "caught up" releases at once.
    std::thread::sleep(Duration::from_millis(350));
    hub.remote(env(THEM, Message::Slow(true)));
    assert!(room.held_until().is_some());
    hub.remote(env(THEM, Message::Slow(false)));
    assert_eq!(room.held_until(), None);
}
