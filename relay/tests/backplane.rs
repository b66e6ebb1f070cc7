//! Rooms across two relays over a real NATS server (Debian's `nats-server`,
//! started here on 127.0.0.1 with an ephemeral port): broadcast, directed
//! sends and presence cross relays; a crashed relay's connections leave
//! within the presence bound; a publisher faster than the room's readers
//! on another relay is slowed, not anyone cut; a short NATS outage is held
//! and resumes with nothing lost, a long one makes shared rooms rejoin,
//! and local rooms work throughout.
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
            // A connection the relay is closing may not take the answer.
            Some(RelayFrame::Ping(n)) => {
                let _ = futures_util::SinkExt::send(&mut c.tx, ClientFrame::Pong(n)).await;
            }
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

/// Every frame from `from` that `c` receives within `bound`, until `n`
/// have come; fails on anything but deliveries and presence (a cut).
async fn receive_n(c: &mut Client, from: ConnId, n: usize, bound: Duration) -> Vec<Bytes> {
    let deadline = tokio::time::Instant::now() + bound;
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "only {} of {n} frames within {bound:?}",
            got.len()
        );
        match frame_within(c, left.min(Duration::from_millis(500))).await {
            Some(RelayFrame::Deliver { from: f, payload }) if f == from => got.push(payload),
            Some(
                RelayFrame::Deliver { .. } | RelayFrame::PeerJoined(_) | RelayFrame::PeerLeft(_),
            )
            | None => {}
            Some(other) => panic!("cut or disturbed after {} frames: {other:?}", got.len()),
        }
    }
    got
}

/// NATS stops for 3 s and comes back: the split room is held, not cut;
/// what each side published meanwhile arrives after, in order; the room
/// held by one relay goes on throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_nats_outage_holds_the_split_room_and_resumes_with_nothing_lost() {
    let nats = Nats::start();
    let url = nats.url();
    let r1 = TestRelay::start_shared(test_limits(), std::slice::from_ref(&url), false).await;
    let r2 = TestRelay::start_shared(test_limits(), std::slice::from_ref(&url), false).await;
    let shared = RoomId(rand_room());
    let (mut a, wa) = r1.join(shared).await;
    let (mut b, wb) = r2.join(shared).await;
    sees_join(&mut a, &wa.peers, wb.conn_id).await;
    sees_join(&mut b, &wb.peers, wa.conn_id).await;
    let alone = RoomId(rand_room());
    let (mut x, wx) = r1.join(alone).await;
    let (mut y, _) = r1.join(alone).await;

    let port = nats.stop();
    // No other test's NATS server may take the port meanwhile.
    let squat = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..20u8 {
        a.publish(None, &[b'a', i]).await;
        b.publish(None, &[b'b', i]).await;
    }
    // The room on one relay is untouched.
    x.publish(None, b"local only").await;
    assert_eq!(
        next_delivery(&mut y).await,
        Some(RelayFrame::Deliver {
            from: wx.conn_id,
            payload: Bytes::from_static(b"local only")
        })
    );
    tokio::time::sleep(Duration::from_millis(2700)).await;
    drop(squat);
    let _nats = Nats::start_on(Some(port));
    let want = |c: u8| {
        (0..20u8)
            .map(|i| Bytes::from(vec![c, i]))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        receive_n(&mut b, wa.conn_id, 20, Duration::from_secs(15)).await,
        want(b'a')
    );
    assert_eq!(
        receive_n(&mut a, wb.conn_id, 20, Duration::from_secs(15)).await,
        want(b'b')
    );
    // And on, with both still in the room.
    a.publish(None, b"after").await;
    assert_eq!(
        receive_n(&mut b, wa.conn_id, 1, WAIT).await,
        [Bytes::from_static(b"after")]
    );
    let (_, w) = r1.join(shared).await;
    assert!(w.peers.contains(&wb.conn_id), "{:?}", w.peers);
    r1.stop.cancel();
    r2.stop.cancel();
}

/// NATS away for longer than the outage hold: the shared rooms'
/// connections are told to rejoin (frames between the relays are lost),
/// rejoining works on one relay alone, and cross-relay traffic resumes
/// when NATS is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_past_the_hold_makes_shared_rooms_rejoin_and_traffic_resumes_when_it_is_back()
{
    let nats = Nats::start();
    let url = nats.url();
    // Past the hold b is read only after a: it must not time out first.
    let limits = relay::Limits {
        idle_timeout: Duration::from_secs(60),
        ..test_limits()
    };
    let r1 = TestRelay::start_shared(limits.clone(), std::slice::from_ref(&url), false).await;
    let r2 = TestRelay::start_shared(limits, std::slice::from_ref(&url), false).await;
    let shared = RoomId(rand_room());
    let (mut a, wa) = r1.join(shared).await;
    let (mut b, wb) = r2.join(shared).await;
    sees_join(&mut a, &wa.peers, wb.conn_id).await;
    // Each relay knows the room is shared before the outage.
    sees_join(&mut b, &wb.peers, wa.conn_id).await;

    let port = nats.stop();
    // The port stays taken (by a listener that never answers) so that no
    // other test's NATS server can take it meanwhile and end the outage.
    let squat = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    // The hold, then up to a heartbeat before the backplane looks again,
    // on a loaded machine.
    let bound = relay::backplane::OUTAGE_HOLD + Duration::from_secs(10);
    told_to_rejoin(&mut a, bound).await;
    told_to_rejoin(&mut b, bound).await;
    // Rejoining during the outage works, on this relay alone.
    let (mut a2, wa2) = r1.join(shared).await;
    assert!(
        wa2.peers.is_empty(),
        "no stale remote peers: {:?}",
        wa2.peers
    );

    // NATS comes back on the same port: the relays reconnect, resubscribe
    // and learn each other's connections again.
    drop(squat);
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
    let (_, wa3) = r1.join(shared).await;
    assert!(wa3.peers.contains(&wb2.conn_id), "{:?}", wa3.peers);
    assert!(!wa3.peers.contains(&wb.conn_id), "{:?}", wa3.peers);
    assert!(!wa3.peers.contains(&wa.conn_id), "{:?}", wa3.peers);
    r1.stop.cancel();
    r2.stop.cancel();
}

/// A publisher on one relay faster than the room's readers on the other:
/// the other relay says its readers are behind, the publisher is held,
/// and every reader on both relays gets every frame in order; nobody is
/// cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_faster_than_a_split_room_is_slowed_and_nobody_is_cut() {
    let nats = Nats::start();
    let url = nats.url();
    // Queues of 8 MiB: the relay behind which readers lag says so at half
    // its mark (2 MiB) and has 6 MiB left for what is on its way while the
    // other reacts, a NATS round trip later on a loaded machine.
    let limits = relay::Limits {
        rate_frames: 1_000_000,
        rate_bytes: 1 << 40,
        rate_fanout_bytes: 1 << 40,
        queue_bytes: 8 << 20,
        ..test_limits()
    };
    let r1 = TestRelay::start_shared(limits.clone(), std::slice::from_ref(&url), false).await;
    let r2 = TestRelay::start_shared(limits, std::slice::from_ref(&url), false).await;
    let room = RoomId(rand_room());
    let (mut p, wp) = r1.join(room).await;
    let mut readers = Vec::new();
    for r in [&r1, &r2, &r2] {
        let (mut c, w) = r.join(room).await;
        sees_join(&mut p, &wp.peers, w.conn_id).await;
        if !w.peers.contains(&wp.conn_id) {
            sees_join(&mut c, &w.peers, wp.conn_id).await;
        }
        readers.push(c);
    }
    // 6,000 frames of 4 KiB (24 MB); the readers behind r2 take about
    // 3,000 a second, far below what the publisher can send, and their
    // queues hold 8 MiB: without flow control across the relays they
    // would be cut within a second.
    const N: u32 = 6000;
    const PER_SEC: u32 = 3000;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for (i, mut c) in readers.into_iter().enumerate() {
        let from = wp.conn_id;
        tasks.push(tokio::spawn(async move {
            let mut seen = 0u32;
            while seen < N {
                match frame_within(&mut c, Duration::from_secs(10)).await {
                    Some(RelayFrame::Deliver { from: f, payload }) if f == from => {
                        assert_eq!(&payload[..4], &seen.to_be_bytes(), "reader {i}: in order");
                        seen += 1;
                        if i > 0 && seen.is_multiple_of(30) {
                            tokio::time::sleep(Duration::from_secs_f64(30.0 / f64::from(PER_SEC)))
                                .await;
                        }
                    }
                    Some(RelayFrame::PeerJoined(_) | RelayFrame::PeerLeft(_)) => {}
                    other => panic!("reader {i} after {seen} frames: {other:?}"),
                }
            }
        }));
    }
    for n in 0..N {
        let mut f = vec![0u8; 4096];
        f[..4].copy_from_slice(&n.to_be_bytes());
        p.publish(None, &f).await;
    }
    let sent = started.elapsed();
    for t in tasks {
        t.await.unwrap();
    }
    // Unslowed it sends all in well under 0.3 s; the readers' queues and
    // sockets hold the last second or so of it.
    let min = Duration::from_secs_f64(f64::from(N) / f64::from(PER_SEC) * 0.25);
    assert!(sent >= min, "the publisher was not slowed: {sent:?}");
    for r in [&r1, &r2] {
        assert_eq!(r.stats.closes(relay::stats::CloseReason::SlowReader), 0);
    }
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

    // Node 1 dies: r1 loses its link and reconnects to a node the cluster
    // told it of, within the outage hold; a is not cut, and hears b's
    // messages again once r1 is back.
    cluster.kill(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut n = 0u32;
    'back: loop {
        n += 1;
        b.publish(None, format!("the next message {n}").as_bytes())
            .await;
        let until = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Some(f) = frame_within(&mut a, until - tokio::time::Instant::now()).await {
            match f {
                RelayFrame::Deliver { from, .. } if from == wb.conn_id => break 'back,
                RelayFrame::Deliver { .. }
                | RelayFrame::PeerJoined(_)
                | RelayFrame::PeerLeft(_) => {}
                other => panic!("a was disturbed by the node loss: {other:?}"),
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "r1 never came back to the cluster"
        );
    }
    let (_, wa2) = r1.join(room).await;
    assert!(wa2.peers.contains(&wb.conn_id), "{:?}", wa2.peers);
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
/// dropped by NATS for a slow consumer) is counted, and the room goes on:
/// its members see what they missed as gaps in their own sequence numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_another_relays_messages_is_let_through_and_the_room_goes_on() {
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
    client
        .publish(
            subject(&room),
            say(
                5,
                Message::Deliver {
                    from: id,
                    to: None,
                    payload: Bytes::from_static(b"after the gap"),
                    bulk: false,
                },
            )
            .into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    assert_eq!(
        next_delivery(&mut a).await,
        Some(RelayFrame::Deliver {
            from: id,
            payload: Bytes::from_static(b"after the gap")
        }),
        "not cut: the room goes on"
    );
    assert!(
        frame_within(&mut x, Duration::from_millis(300))
            .await
            .is_none(),
        "the other room is untouched"
    );
    r1.stop.cancel();
}
