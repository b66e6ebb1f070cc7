//! Rooms across two relays over a real NATS server (Debian's `nats-server`,
//! started here on 127.0.0.1 with an ephemeral port): broadcast, directed
//! sends and presence cross relays; a crashed relay's connections leave
//! within the presence bound; NATS going away leaves local rooms working,
//! and cross-relay traffic resumes when it is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use common::wire::{ClientFrame, ConnId, RelayFrame};
use common::RoomId;
use relay::testing::TestNats as Nats;
use support::*;

/// Waits for the next frame that is not presence, skipping presence.
async fn next_delivery(c: &mut Client) -> Option<RelayFrame> {
    for _ in 0..50 {
        match c.recv().await {
            Some(RelayFrame::PeerJoined(_) | RelayFrame::PeerLeft(_)) => continue,
            other => return other,
        }
    }
    None
}

/// The next frame within `d`, answering keepalive pings meanwhile.
async fn frame_within(c: &mut Client, d: Duration) -> Option<RelayFrame> {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.recv_within(left).await {
            Some(RelayFrame::Ping(n)) => c.send(ClientFrame::Pong(n)).await,
            other => return other,
        }
    }
}

/// Waits until `c` hears that `id` left, within `bound`.
async fn sees_leave(c: &mut Client, id: ConnId, bound: Duration) {
    let started = tokio::time::Instant::now();
    while started.elapsed() <= bound {
        if let Some(RelayFrame::PeerLeft(l)) = frame_within(c, Duration::from_millis(200)).await {
            if l == id {
                return;
            }
        }
    }
    panic!("never told that {id} left within {bound:?}");
}

/// Waits until `c` hears that `id` joined (or already listed it).
async fn sees_join(c: &mut Client, listed: &[ConnId], id: ConnId) {
    if listed.contains(&id) {
        return;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Some(RelayFrame::PeerJoined(j)) = frame_within(c, Duration::from_millis(200)).await {
            if j == id {
                return;
            }
        }
    }
    panic!("never told that {id} joined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_two_relays_broadcast_directed_and_presence() {
    let nats = Nats::start();
    let r1 = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let r2 = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = r1.join(room).await;
    let (mut b, wb) = r2.join(room).await;
    assert_ne!(
        wa.conn_id >> 32,
        wb.conn_id >> 32,
        "ids unique across relays"
    );
    sees_join(&mut a, &wa.peers, wb.conn_id).await;
    sees_join(&mut b, &wb.peers, wa.conn_id).await;
    // A third one on r1 is welcomed with both, the remote one included.
    let (mut c, wc) = r1.join(room).await;
    assert!(wc.peers.contains(&wa.conn_id));
    assert!(
        wc.peers.contains(&wb.conn_id),
        "the remote peer is in the welcome"
    );
    sees_join(&mut c, &wc.peers, wb.conn_id).await;

    a.publish(None, b"to everyone").await;
    for (who, cl) in [("b on r2", &mut b), ("c on r1", &mut c)] {
        assert_eq!(
            next_delivery(cl).await,
            Some(RelayFrame::Deliver {
                from: wa.conn_id,
                payload: Bytes::from_static(b"to everyone")
            }),
            "{who}"
        );
    }
    // Directed across relays, and to nobody elsewhere.
    b.publish(Some(wa.conn_id), b"just for a").await;
    assert_eq!(
        next_delivery(&mut a).await,
        Some(RelayFrame::Deliver {
            from: wb.conn_id,
            payload: Bytes::from_static(b"just for a")
        })
    );
    assert_eq!(c.recv_within(Duration::from_millis(300)).await, None);
    // Nothing comes back twice to the relay that published it.
    assert_eq!(a.recv_within(Duration::from_millis(300)).await, None);

    // b leaves: both on r1 are told.
    drop(b);
    for cl in [&mut a, &mut c] {
        sees_leave(cl, wb.conn_id, WAIT).await;
    }
    r1.stop.cancel();
    r2.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_relays_connections_leave_within_the_presence_bound() {
    let nats = Nats::start();
    let r1 = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let r2 = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = r1.join(room).await;
    let (_b, wb) = r2.join(room).await;
    sees_join(&mut a, &wa.peers, wb.conn_id).await;
    // r2 dies without a word (its task is aborted: no leave is published).
    r2.task.abort();
    let bound = relay::backplane::PRESENCE_TTL + relay::backplane::HEARTBEAT * 2;
    sees_leave(&mut a, wb.conn_id, bound).await;
    r1.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_local_rooms_go_on_and_cross_relay_traffic_resumes_when_it_is_back() {
    let nats = Nats::start();
    let url = nats.url();
    let r1 = TestRelay::start_shared(test_limits(), std::slice::from_ref(&url), false).await;
    let r2 = TestRelay::start_shared(test_limits(), std::slice::from_ref(&url), false).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = r1.join(room).await;
    let (mut b, wb) = r2.join(room).await;
    sees_join(&mut a, &wa.peers, wb.conn_id).await;

    let port = nats.stop();
    // r1's own room still works.
    let (mut a2, _) = r1.join(room).await;
    a.publish(None, b"local only").await;
    assert_eq!(
        next_delivery(&mut a2).await,
        Some(RelayFrame::Deliver {
            from: wa.conn_id,
            payload: Bytes::from_static(b"local only")
        })
    );

    // NATS comes back on the same port: the relays reconnect and resubscribe.
    let _nats = Nats::start_on(Some(port));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut n = 0u32;
    loop {
        n += 1;
        a.publish(None, format!("again {n}").as_bytes()).await;
        match frame_within(&mut b, Duration::from_millis(500)).await {
            Some(RelayFrame::Deliver { from, .. }) if from == wa.conn_id => break,
            _ if tokio::time::Instant::now() > deadline => {
                panic!("cross-relay traffic did not resume")
            }
            _ => {}
        }
    }
    r1.stop.cancel();
    r2.stop.cancel();
}

#[tokio::test]
async fn an_unreachable_backplane_is_a_clear_error_unless_optional() {
    // A port nothing listens on (taken, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let cert = make_cert();
    let config = relay::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        cert: cert.cert.clone(),
        key: cert.key.clone(),
        limits: test_limits(),
        stats_interval: None,
        shutdown_grace: Duration::from_secs(1),
        log: "warn".into(),
        backplane: Some(relay::backplane::Options {
            servers: vec![url.clone()],
            optional: false,
            user: None,
            token: None,
            ca: None,
        }),
    };
    let err = relay::Relay::bind(config).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot reach the backplane"),
        "{err:#}"
    );
    // Optional: it starts, serves its own rooms.
    let r = TestRelay::start_shared(test_limits(), &[url], true).await;
    r.assert_alive().await;
    r.stop.cancel();
}
