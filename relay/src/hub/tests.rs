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

/// Every frame in `buf`, in order.
fn frames(mut buf: &[u8]) -> Vec<RelayFrame> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (f, n) = decode_frame::<RelayFrame>(buf, 1 << 20).unwrap();
        out.push(f);
        buf = &buf[n..];
    }
    out
}

/// A writer waiting on `q`: how long it waited, and its first batch.
fn writer(q: &Arc<Outq>) -> tokio::task::JoinHandle<(Duration, BytesMut)> {
    let q = Arc::clone(q);
    tokio::spawn(async move {
        let (t0, mut buf) = (tokio::time::Instant::now(), BytesMut::new());
        assert!(q.take(&mut buf, 1 << 20).await);
        (t0.elapsed(), buf)
    })
}

/// The first batch of a waiting writer, failing fast if it never comes.
async fn woken(w: tokio::task::JoinHandle<(Duration, BytesMut)>) -> (Duration, BytesMut) {
    tokio::time::timeout(Duration::from_secs(1), w)
        .await
        .expect("the writer was never woken")
        .expect("no panic")
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_joins_wakes_each_writer_once_with_every_notice_in_order() {
    const ROOM: RoomId = RoomId([7; 16]);
    let hub = Hub::new(10, 100, 1 << 20, Arc::default());
    let (a, ra) = member(&hub, 1024);
    let (room, _) = hub.join(ROOM, a).unwrap();
    let (z, rz) = member(&hub, 1024);
    let zid = z.id;
    hub.join(ROOM, z).unwrap();
    assert!(matches!(
        frame(ra.try_pop().unwrap()),
        RelayFrame::Welcome(_)
    ));
    assert_eq!(frame(ra.try_pop().unwrap()), RelayFrame::PeerJoined(zid));
    assert!(matches!(
        frame(rz.try_pop().unwrap()),
        RelayFrame::Welcome(_)
    ));
    let waiting = [writer(&ra), writer(&rz)];
    tokio::task::yield_now().await;
    let joined: Vec<ConnId> = (0..50)
        .map(|_| {
            let (m, _) = member(&hub, 1024);
            let id = m.id;
            hub.join(ROOM, m).unwrap();
            id
        })
        .collect();
    // The joins themselves wake nobody...
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "a join woke a writer at once"
    );
    // ...the end of the gathering wakes every member, once, for all fifty.
    let want: Vec<RelayFrame> = joined
        .iter()
        .map(|&id| RelayFrame::PeerJoined(id))
        .collect();
    for w in waiting {
        let (waited, buf) = woken(w).await;
        assert!(waited >= NOTICE_GATHERING && waited < 2 * NOTICE_GATHERING);
        assert_eq!(frames(&buf), want);
    }

    // Any other frame wakes the writer at once, behind the notices
    // queued before it.
    let waiting = writer(&ra);
    tokio::task::yield_now().await;
    let (late, _) = member(&hub, 1024);
    let late_id = late.id;
    hub.join(ROOM, late).unwrap();
    let from = joined[0];
    let published = hub.publish(&room, from, None, Bytes::from_static(b"x"), false);
    assert_eq!(published.published, Published::Delivered(52));
    let (waited, buf) = woken(waiting).await;
    assert_eq!(waited, Duration::ZERO);
    assert_eq!(
        frames(&buf),
        vec![
            RelayFrame::PeerJoined(late_id),
            RelayFrame::Deliver {
                from,
                payload: Bytes::from_static(b"x")
            }
        ]
    );
    // A leave is gathered the same way.
    let waiting = writer(&ra);
    tokio::task::yield_now().await;
    hub.leave(&room, late_id, true);
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    let (waited, buf) = woken(waiting).await;
    assert!(waited >= NOTICE_GATHERING);
    assert_eq!(frames(&buf), vec![RelayFrame::PeerLeft(late_id)]);
}

#[test]
fn a_gathering_cut_short_still_ends_and_wakes_the_room() {
    const ROOM: RoomId = RoomId([8; 16]);
    let hub = Hub::new(10, 100, 1 << 20, Arc::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (a, ra) = member(&hub, 64);
    let (b, _) = member(&hub, 64);
    let bid = b.id;
    let room = rt.block_on(async {
        let (room, _) = hub.join(ROOM, a).unwrap();
        hub.join(ROOM, b).unwrap();
        room
    });
    assert!(room.notices_due.load(SeqCst), "a gathering is under way");
    // The runtime goes away before its task ran (a relay shutting down):
    // the gathering still ends, so the room's next notice starts another.
    drop(rt);
    assert!(!room.notices_due.load(SeqCst));
    assert!(matches!(
        frame(ra.try_pop().unwrap()),
        RelayFrame::Welcome(_)
    ));
    assert_eq!(frame(ra.try_pop().unwrap()), RelayFrame::PeerJoined(bid));
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
