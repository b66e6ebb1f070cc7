//! Rooms across two relays over a real NATS server (Debian's `nats-server`,
//! started here on 127.0.0.1 with an ephemeral port): broadcast, directed
//! sends and presence cross relays; a crashed relay's connections leave
//! within the presence bound; NATS going away leaves local rooms working,
//! and cross-relay traffic resumes when it is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use relay::testing::TestNats as Nats;
use support::*;
use wire::RoomId;
use wire::{ClientFrame, ConnId, ErrorCode, RelayFrame};

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
async fn a_relay_that_stops_says_so_at_once() {
    let nats = Nats::start();
    let r1 = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let r2 = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = r1.join(room).await;
    let (_b, wb) = r2.join(room).await;
    sees_join(&mut a, &wa.peers, wb.conn_id).await;
    r2.stop.cancel();
    // Well inside the presence bound a crash would take.
    sees_leave(&mut a, wb.conn_id, relay::backplane::HEARTBEAT).await;
    r1.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_relays_connections_leave_within_the_presence_bound() {
    let nats = Nats::start();
    let r1 = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let (r2, mut crash) = TestRelay::start_crashable(test_limits(), vec![nats.url()]).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = r1.join(room).await;
    let (_b, wb) = r2.join(room).await;
    sees_join(&mut a, &wa.peers, wb.conn_id).await;
    // r2 dies without a word (its runtime is dropped with every task and
    // socket, as a killed process: no leave is published).
    crash.now();
    let bound = relay::backplane::PRESENCE_TTL + relay::backplane::HEARTBEAT * 2;
    sees_leave(&mut a, wb.conn_id, bound).await;
    r1.stop.cancel();
}

/// Waits for the relay to tell `c` to rejoin (and close), within `bound`.
async fn told_to_rejoin(c: &mut Client, bound: Duration) {
    let deadline = tokio::time::Instant::now() + bound;
    while tokio::time::Instant::now() < deadline {
        if let Some(RelayFrame::Error(e)) = frame_within(c, Duration::from_millis(200)).await {
            assert_eq!(e.code, ErrorCode::GoingAway);
            assert!(e.message.contains("rejoin"), "{}", e.message);
            return;
        }
    }
    panic!("never told to rejoin within {bound:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_local_rooms_go_on_shared_rooms_rejoin_and_traffic_resumes_when_it_is_back() {
    let nats = Nats::start();
    let url = nats.url();
    let r1 = TestRelay::start_shared(test_limits(), std::slice::from_ref(&url), false).await;
    let r2 = TestRelay::start_shared(test_limits(), std::slice::from_ref(&url), false).await;
    let shared = RoomId(rand_room());
    let (mut a, wa) = r1.join(shared).await;
    let (mut b, wb) = r2.join(shared).await;
    sees_join(&mut a, &wa.peers, wb.conn_id).await;
    // A room held by r1 alone.
    let alone = RoomId(rand_room());
    let (mut x, wx) = r1.join(alone).await;
    let (mut y, _) = r1.join(alone).await;

    let port = nats.stop();
    // Frames between a and b may now be lost: both are told to rejoin
    // rather than going on in a room that silently diverged.
    told_to_rejoin(&mut a, Duration::from_secs(10)).await;
    told_to_rejoin(&mut b, Duration::from_secs(10)).await;
    // r1's own room is untouched.
    x.publish(None, b"local only").await;
    assert_eq!(
        next_delivery(&mut y).await,
        Some(RelayFrame::Deliver {
            from: wx.conn_id,
            payload: Bytes::from_static(b"local only")
        })
    );
    // Rejoining during the outage works, on this relay alone.
    let (mut a2, wa2) = r1.join(shared).await;
    assert!(
        wa2.peers.is_empty(),
        "no stale remote peers: {:?}",
        wa2.peers
    );

    // NATS comes back on the same port: the relays reconnect, resubscribe
    // and learn each other's connections again.
    let _nats = Nats::start_on(Some(port));
    let (mut b2, wb2) = r2.join(shared).await;
    sees_join(&mut a2, &[], wb2.conn_id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut n = 0u32;
    loop {
        n += 1;
        a2.publish(None, format!("again {n}").as_bytes()).await;
        match frame_within(&mut b2, Duration::from_millis(500)).await {
            Some(RelayFrame::Deliver { from, .. }) if from == wa2.conn_id => break,
            _ if tokio::time::Instant::now() > deadline => {
                panic!("cross-relay traffic did not resume")
            }
            _ => {}
        }
    }
    // The room holds the right peers on both sides: the cut connections
    // are gone, the new ones are there.
    let (_, wa3) = r1.join(shared).await;
    assert!(wa3.peers.contains(&wb2.conn_id), "{:?}", wa3.peers);
    assert!(!wa3.peers.contains(&wb.conn_id), "{:?}", wa3.peers);
    assert!(!wa3.peers.contains(&wa.conn_id), "{:?}", wa3.peers);
    r1.stop.cancel();
    r2.stop.cancel();
}

/// A relay with backplane `opts` must refuse to start: its error, in full.
async fn bind_error(opts: relay::backplane::Options) -> String {
    let cert = make_cert();
    let config = relay::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        cert: cert.cert.clone(),
        key: cert.key.clone(),
        limits: test_limits(),
        stats_interval: None,
        shutdown_grace: Duration::from_secs(1),
        log: "warn".into(),
        backplane: Some(opts),
    };
    match relay::Relay::bind(config).await {
        Ok(_) => panic!("the relay started"),
        Err(e) => format!("{e:#}"),
    }
}

/// Backplane options for the test cluster: its user and password.
fn cluster_opts(servers: Vec<String>) -> relay::backplane::Options {
    relay::backplane::Options {
        servers,
        optional: false,
        user: Some((
            "relays".into(),
            relay::testing::TestNatsCluster::PASSWORD.into(),
        )),
        token: None,
        ca: None,
        nkey: None,
        creds: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_on_different_nodes_of_a_three_node_cluster_share_rooms_and_survive_a_node_loss() {
    // docs/deploy/nats-node.conf, three nodes; r1 is given node 1 only (so
    // the test knows where it is: NATS clients pick among the addresses
    // given at random) and finds the others from the cluster; r2 sits on
    // node 3.
    let mut cluster = relay::testing::TestNatsCluster::start();
    let r1 = TestRelay::start_backplane(test_limits(), cluster_opts(vec![cluster.url(0)])).await;
    let r2 = TestRelay::start_backplane(test_limits(), cluster_opts(vec![cluster.url(2)])).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = r1.join(room).await;
    let (mut b, wb) = r2.join(room).await;
    sees_join(&mut a, &wa.peers, wb.conn_id).await;
    sees_join(&mut b, &wb.peers, wa.conn_id).await;
    b.publish(Some(wa.conn_id), b"across the cluster").await;
    assert_eq!(
        next_delivery(&mut a).await,
        Some(RelayFrame::Deliver {
            from: wb.conn_id,
            payload: Bytes::from_static(b"across the cluster")
        })
    );

    // Node 1 dies: r1 loses its link, tells a to rejoin, and reconnects to
    // a node the cluster told it of; a rejoins and reads b's next message.
    cluster.kill(0);
    told_to_rejoin(&mut a, Duration::from_secs(10)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (mut a2, wa2) = loop {
        let (mut c, w) = r1.join(room).await;
        let listed = w.peers.contains(&wb.conn_id);
        if listed {
            break (c, w);
        }
        // Until r1 is back on the cluster its room holds no remote peer.
        match frame_within(&mut c, Duration::from_secs(3)).await {
            Some(RelayFrame::PeerJoined(id)) if id == wb.conn_id => break (c, w),
            _ if tokio::time::Instant::now() > deadline => {
                panic!("r1 never came back to the cluster")
            }
            _ => {}
        }
    };
    b.publish(None, b"the next message").await;
    assert_eq!(
        next_delivery(&mut a2).await,
        Some(RelayFrame::Deliver {
            from: wb.conn_id,
            payload: Bytes::from_static(b"the next message")
        })
    );
    sees_join(&mut b, &[], wa2.conn_id).await;
    r1.stop.cancel();
    r2.stop.cancel();
}

#[tokio::test]
async fn the_wrong_password_is_a_clear_error() {
    let cluster = relay::testing::TestNatsCluster::start();
    let mut opts = cluster_opts(vec![cluster.url(0)]);
    opts.user = Some(("relays".into(), "not the password".into()));
    let text = bind_error(opts).await;
    assert!(text.contains("cannot reach the backplane"), "{text}");
    assert!(!text.contains("not the password"), "{text}");
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
    let text = bind_error(relay::backplane::Options {
        servers: vec![url.clone()],
        ..Default::default()
    })
    .await;
    assert!(text.contains("cannot reach the backplane"), "{text}");
    // Optional: it starts, serves its own rooms.
    let r = TestRelay::start_shared(test_limits(), &[url], true).await;
    r.assert_alive().await;
    r.stop.cancel();
}

/// NKey authentication (a relay built with `--features nkeys`): relays
/// holding the user's seed share rooms; another key, or a file that holds
/// no seed, is a clear error at start.
#[cfg(feature = "nkeys")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_authenticate_to_nats_with_an_nkey() {
    let user = nkeys::KeyPair::new_user();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:-1\nauthorization {{ users = [ {{ nkey: {} }} ] }}\n",
            user.public_key()
        ),
    )
    .unwrap();
    let nats = Nats::start_config(&conf);
    let seed_file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let opts = |nkey: std::path::PathBuf| relay::backplane::Options {
        servers: vec![nats.url()],
        nkey: Some(nkey),
        ..Default::default()
    };
    let good = seed_file("relay.nk", &format!("{}\n", user.seed().unwrap()));
    let r1 = TestRelay::start_backplane(test_limits(), opts(good.clone())).await;
    let r2 = TestRelay::start_backplane(test_limits(), opts(good)).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = r1.join(room).await;
    let (mut b, wb) = r2.join(room).await;
    sees_join(&mut a, &wa.peers, wb.conn_id).await;
    a.publish(None, b"signed in with an nkey").await;
    assert_eq!(
        next_delivery(&mut b).await,
        Some(RelayFrame::Deliver {
            from: wa.conn_id,
            payload: Bytes::from_static(b"signed in with an nkey")
        })
    );
    r1.stop.cancel();
    r2.stop.cancel();

    let stranger = nkeys::KeyPair::new_user();
    for (file, want) in [
        (
            seed_file("stranger.nk", &stranger.seed().unwrap()),
            "cannot reach the backplane",
        ),
        (seed_file("junk.nk", "not a seed"), "holds no NKey seed"),
    ] {
        let text = bind_error(opts(file)).await;
        assert!(text.contains(want), "{text}");
    }
}

/// A relay built without the `nkeys` feature says how to get it.
#[cfg(not(feature = "nkeys"))]
#[tokio::test]
async fn nkeys_without_the_feature_are_a_clear_error() {
    let opts = relay::backplane::Options {
        servers: vec!["nats://127.0.0.1:1".into()],
        nkey: Some("relay.nk".into()),
        ..Default::default()
    };
    let err = relay::backplane::start(&opts, 1, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("--features nkeys"), "{err:#}");
}

/// A gap in another relay's sequence (messages lost between NATS nodes, or
/// dropped by NATS for a slow consumer) makes the room's local connections
/// rejoin instead of going on without what was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_another_relays_messages_makes_the_room_rejoin() {
    use relay::backplane::{subject, Envelope, Message};
    let nats = Nats::start();
    let r1 = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = r1.join(room).await;
    // A room of its own on the same relay, untouched by the gap.
    let other = RoomId(rand_room());
    let (mut x, _) = r1.join(other).await;
    // Another relay, played by a plain NATS client.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let them: u32 = 0x5eed;
    let id = (u64::from(them) << 32) | 1;
    let say = |seq: u64, message: Message| {
        let env = Envelope {
            relay: them,
            room,
            seq,
            message,
        };
        wire::encode_payload(&env, 1 << 20).unwrap()
    };
    // Wait until r1 listens to the room (its Hello shows it).
    let mut listening = client.subscribe(subject(&room)).await.unwrap();
    let _ = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut listening))
        .await
        .expect("r1 never said hello");
    client
        .publish(subject(&room), say(1, Message::Joined(id)).into())
        .await
        .unwrap();
    sees_join(&mut a, &wa.peers, id).await;
    client
        .publish(subject(&room), say(2, Message::Present(vec![id])).into())
        .await
        .unwrap();
    // Message 3 is lost; 4 arrives.
    client
        .publish(subject(&room), say(4, Message::Present(vec![id])).into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    told_to_rejoin(&mut a, Duration::from_secs(5)).await;
    assert!(
        frame_within(&mut x, Duration::from_millis(300))
            .await
            .is_none(),
        "the other room goes on"
    );
    r1.stop.cancel();
}
