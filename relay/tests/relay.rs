//! The relay over real TLS on 127.0.0.1 with ephemeral ports: rooms,
//! broadcast, notices, and every kind of bad input, each leaving other
//! rooms' traffic untouched and the relay alive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use openssl::ssl::SslVersion;
use relay::stats::CloseReason;
use support::*;
use tokio::io::AsyncWriteExt;
use wire::RoomId;
use wire::{ClientFrame, ErrorCode, Hello, RelayError, RelayFrame, PROTOCOL_VERSION};

fn err(f: Option<RelayFrame>) -> RelayError {
    match f {
        Some(RelayFrame::Error(e)) => e,
        other => panic!("expected an error frame, got {other:?}"),
    }
}

/// A quiet pair in its own room, set up before an attack and checked after.
struct Bystanders {
    a: Client,
    b: Client,
}

impl Bystanders {
    async fn new(relay: &TestRelay) -> Bystanders {
        let room = RoomId(rand_room());
        let (mut a, _) = relay.join(room).await;
        let (b, wb) = relay.join(room).await;
        assert_eq!(a.recv().await, Some(RelayFrame::PeerJoined(wb.conn_id)));
        Bystanders { a, b }
    }

    /// Both exchange a few messages (which also keeps them from idling out).
    async fn still_talking(&mut self) {
        for i in 0..3u8 {
            self.b.publish(None, &[i; 100]).await;
            expect_payload(&mut self.a, &[i; 100]).await;
            self.a.publish(None, &[i; 50]).await;
            expect_payload(&mut self.b, &[i; 50]).await;
        }
    }
}

async fn expect_payload(c: &mut Client, want: &[u8]) {
    match c.recv().await {
        Some(RelayFrame::Deliver { payload, .. }) => assert_eq!(&payload[..], want),
        other => panic!("bystanders were disturbed: {other:?}"),
    }
}

#[tokio::test]
async fn broadcast_reaches_every_peer_in_the_room_and_nobody_else() {
    let relay = TestRelay::start(test_limits()).await;
    let (room, other) = (RoomId(rand_room()), RoomId(rand_room()));
    let mut members = Vec::new();
    for _ in 0..5 {
        members.push(relay.join(room).await);
    }
    let (mut outsider, _) = relay.join(other).await;
    let (mut outsider2, w2) = relay.join(other).await;
    assert_eq!(
        outsider.recv().await,
        Some(RelayFrame::PeerJoined(w2.conn_id))
    );
    // Drain the join notices: member i saw members i+1..5 join.
    for (i, (c, _)) in members.iter_mut().enumerate() {
        for _ in i + 1..5 {
            assert!(matches!(c.recv().await, Some(RelayFrame::PeerJoined(_))));
        }
    }
    let sender = members[0].1.conn_id;
    members[0].0.publish(None, b"hello room").await;
    for (c, _) in members.iter_mut().skip(1) {
        assert_eq!(
            c.recv().await,
            Some(RelayFrame::Deliver {
                from: sender,
                payload: Bytes::from_static(b"hello room")
            })
        );
    }
    assert_eq!(
        members[0].0.recv_within(Duration::from_millis(200)).await,
        None,
        "no echo to the sender"
    );
    // The other room got nothing: its next frame is its own traffic.
    outsider2.publish(None, b"other").await;
    match outsider.recv().await {
        Some(RelayFrame::Deliver { payload, .. }) => assert_eq!(&payload[..], b"other"),
        f => panic!("leak across rooms: {f:?}"),
    }
}

#[tokio::test]
async fn welcome_lists_peers_and_directed_send_reaches_one() {
    let relay = TestRelay::start(test_limits()).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = relay.join(room).await;
    let (mut b, wb) = relay.join(room).await;
    let (mut c, wc) = relay.join(room).await;
    assert_eq!(wa.version, PROTOCOL_VERSION);
    assert!(wa.peers.is_empty());
    assert_eq!(wb.peers, vec![wa.conn_id]);
    assert_eq!(wc.peers, vec![wa.conn_id, wb.conn_id]);
    assert_eq!(wa.max_frame, 1 << 20);
    for _ in 0..2 {
        assert!(matches!(a.recv().await, Some(RelayFrame::PeerJoined(_))));
    }
    assert!(matches!(b.recv().await, Some(RelayFrame::PeerJoined(_))));

    a.publish(Some(wc.conn_id), b"just for c").await;
    assert_eq!(
        c.recv().await,
        Some(RelayFrame::Deliver {
            from: wa.conn_id,
            payload: Bytes::from_static(b"just for c")
        })
    );
    assert_eq!(b.recv_within(Duration::from_millis(200)).await, None);

    a.publish(Some(987_654), b"nobody").await;
    let e = err(a.recv().await);
    assert_eq!(e.code, ErrorCode::NoSuchPeer);
    // Not fatal: a still works.
    a.publish(Some(wb.conn_id), b"b now").await;
    assert!(matches!(b.recv().await, Some(RelayFrame::Deliver { .. })));
}

#[tokio::test]
async fn peers_are_told_when_a_connection_joins_and_leaves() {
    let relay = TestRelay::start(test_limits()).await;
    let room = RoomId(rand_room());
    let (mut a, _) = relay.join(room).await;
    let (b, wb) = relay.join(room).await;
    assert_eq!(a.recv().await, Some(RelayFrame::PeerJoined(wb.conn_id)));
    drop(b);
    assert_eq!(a.recv().await, Some(RelayFrame::PeerLeft(wb.conn_id)));
}

#[tokio::test]
async fn hello_with_a_wrong_version_is_refused_with_a_reason() {
    let relay = TestRelay::start(test_limits()).await;
    let mut c = Client::new(relay.tls().await);
    c.send(ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION + 41,
        room: RoomId([1; 16]),
    }))
    .await;
    let e = err(c.recv().await);
    assert_eq!(e.code, ErrorCode::UnsupportedVersion);
    assert!(
        e.message.contains(&format!("{}", PROTOCOL_VERSION + 41)),
        "{}",
        e.message
    );
    assert_eq!(c.recv().await, None, "connection closed after the refusal");

    // A future hello with extra fields: the version is still read and refused.
    let mut tls = relay.tls().await;
    let mut body = vec![0, 0, 0, 0, 9, 0];
    body.extend_from_slice(&[7; 40]);
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    tls.write_all(&framed).await.unwrap();
    let mut c = Client::new(tls);
    assert_eq!(err(c.recv().await).code, ErrorCode::UnsupportedVersion);
}

#[tokio::test]
async fn plain_tcp_garbage_instead_of_tls_is_dropped() {
    let relay = TestRelay::start(test_limits()).await;
    let mut by = Bystanders::new(&relay).await;
    let mut tcp = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tcp.write_all(&[0xff; 4096]).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut buf),
    )
    .await;
    assert!(read.is_ok(), "relay kept a garbage connection open");
    by.still_talking().await;
    relay.assert_alive().await;
    assert!(relay.stats.closes(CloseReason::TlsFailed) >= 1);
}

#[tokio::test]
async fn garbage_after_tls_is_a_bad_frame() {
    let relay = TestRelay::start(test_limits()).await;
    let mut by = Bystanders::new(&relay).await;
    let mut tls = relay.tls().await;
    tls.write_all(&[0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])
        .await
        .unwrap();
    let mut c = Client::new(tls);
    assert_eq!(err(c.recv().await).code, ErrorCode::BadFrame);
    assert_eq!(c.recv().await, None);

    // The same after a valid hello.
    let (mut c, _) = relay.join(RoomId(rand_room())).await;
    let mut raw = c.tx.into_inner();
    raw.write_all(&[0, 0, 0, 5, 9, 9, 9, 9, 9]).await.unwrap();
    assert_eq!(err(c.rx.next_frame().await).code, ErrorCode::BadFrame);
    by.still_talking().await;
    relay.assert_alive().await;
}

trait NextFrame {
    async fn next_frame(&mut self) -> Option<RelayFrame>;
}

impl NextFrame
    for tokio_util::codec::FramedRead<
        tokio::io::ReadHalf<tokio_openssl::SslStream<tokio::net::TcpStream>>,
        wire::FrameCodec<RelayFrame>,
    >
{
    async fn next_frame(&mut self) -> Option<RelayFrame> {
        use futures_util::StreamExt;
        match tokio::time::timeout(WAIT, self.next())
            .await
            .expect("no frame within the wait")
        {
            Some(Ok(f)) => Some(f),
            _ => None,
        }
    }
}

#[tokio::test]
async fn a_length_prefix_over_the_limit_is_refused() {
    let limits = relay::Limits {
        max_frame: 4096,
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let mut by = Bystanders::new(&relay).await;
    let (c, _) = relay.join(RoomId(rand_room())).await;
    let (mut rx, mut tx) = (c.rx, c.tx.into_inner());
    // Announce 1 GiB and send nothing more.
    tx.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
    assert_eq!(err(rx.next_frame().await).code, ErrorCode::FrameTooLarge);
    assert_eq!(rx.next_frame().await, None);
    by.still_talking().await;
    relay.assert_alive().await;
    assert_eq!(relay.stats.closes(CloseReason::FrameTooLarge), 1);
}

#[tokio::test]
async fn a_truncated_frame_then_silence_hits_the_idle_timeout() {
    let limits = relay::Limits {
        idle_timeout: Duration::from_millis(800),
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let mut by = Bystanders::new(&relay).await;
    let (c, _) = relay.join(RoomId(rand_room())).await;
    let (mut rx, mut tx) = (c.rx, c.tx.into_inner());
    tx.write_all(&[0, 0, 0, 100, 1, 0, 0]).await.unwrap();
    // Pings may come first; the client never answers them.
    let start = std::time::Instant::now();
    let waiter = tokio::spawn(async move {
        loop {
            match rx.next_frame().await {
                Some(RelayFrame::Ping(_)) => continue,
                other => return (err(other), start.elapsed()),
            }
        }
    });
    // Meanwhile the bystanders keep talking, so they never idle out.
    for _ in 0..8 {
        by.still_talking().await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (e, elapsed) = waiter.await.unwrap();
    assert_eq!(e.code, ErrorCode::Timeout);
    assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
    by.still_talking().await;
    relay.assert_alive().await;
}

#[tokio::test]
async fn idle_clients_are_pinged_and_answering_keeps_them() {
    let limits = relay::Limits {
        idle_timeout: Duration::from_millis(600),
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut a, _) = relay.join(room).await;
    // recv() answers pings; after 3 idle periods the connection is still up.
    assert_eq!(a.recv_within(Duration::from_millis(100)).await, None);
    let mut pings = 0;
    let deadline = std::time::Instant::now() + Duration::from_millis(1800);
    while std::time::Instant::now() < deadline {
        if let Some(RelayFrame::Ping(n)) = a.recv_within(Duration::from_millis(100)).await {
            pings += 1;
            a.send(ClientFrame::Pong(n)).await;
        }
    }
    assert!(pings >= 3, "only {pings} pings");
    a.send(ClientFrame::Ping(77)).await;
    assert_eq!(a.recv().await, Some(RelayFrame::Pong(77)));
}

#[tokio::test]
async fn a_client_that_never_says_hello_times_out() {
    let limits = relay::Limits {
        hello_timeout: Duration::from_millis(500),
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let mut by = Bystanders::new(&relay).await;
    let mut c = Client::new(relay.tls().await);
    let e = err(c.recv().await);
    assert_eq!(e.code, ErrorCode::Timeout);
    assert!(e.message.contains("hello"));
    by.still_talking().await;
    relay.assert_alive().await;
    assert_eq!(relay.stats.closes(CloseReason::HelloTimeout), 1);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_by_queue_length_and_the_others_lose_nothing() {
    stalled_reader_is_cut_off(relay::Limits {
        queue_frames: 16,
        queue_bytes: 64 << 20,
        rate_frames: 100_000,
        rate_bytes: 1 << 30,
        ..test_limits()
    })
    .await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_by_queued_bytes_and_the_others_lose_nothing() {
    stalled_reader_is_cut_off(relay::Limits {
        queue_frames: 100_000,
        queue_bytes: 1 << 20,
        rate_frames: 100_000,
        rate_bytes: 1 << 30,
        ..test_limits()
    })
    .await;
}

async fn stalled_reader_is_cut_off(limits: relay::Limits) {
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut publisher, _) = relay.join(room).await;
    let (mut reader, wr) = relay.join(room).await;
    let (stalled, ws) = relay.join(room).await;
    assert_eq!(
        publisher.recv().await,
        Some(RelayFrame::PeerJoined(wr.conn_id))
    );
    assert_eq!(
        publisher.recv().await,
        Some(RelayFrame::PeerJoined(ws.conn_id))
    );
    assert_eq!(
        reader.recv().await,
        Some(RelayFrame::PeerJoined(ws.conn_id))
    );

    // 400 × 64 KiB = 25 MiB: far more than the stalled client's socket
    // buffers and its 16-frame queue can hold.
    // The publisher stays at most AHEAD frames ahead of the reader, so the
    // reader (which does read) is never the slow one, however loaded the
    // machine: only the stalled client's queue fills.
    const N: u32 = 400;
    const AHEAD: u32 = 8;
    let (progress, mut read) = tokio::sync::watch::channel(0u32);
    let read_all = tokio::spawn(async move {
        let mut seen = 0u32;
        while seen < N {
            match reader.recv().await {
                Some(RelayFrame::Deliver { payload, .. }) => {
                    assert_eq!(&payload[..4], &seen.to_be_bytes(), "in order, nothing lost");
                    seen += 1;
                    progress.send_replace(seen);
                }
                Some(RelayFrame::PeerLeft(_)) => {}
                other => panic!("reader got {other:?} after {seen}"),
            }
        }
        seen
    });
    for i in 0..N {
        let mut p = vec![0u8; 64 * 1024];
        p[..4].copy_from_slice(&i.to_be_bytes());
        publisher.publish(None, &p).await;
        let caught_up = read.wait_for(|seen| seen + AHEAD > i);
        tokio::time::timeout(Duration::from_secs(20), caught_up)
            .await
            .expect("the reader keeps up within 20 s")
            .expect("the reader is running");
    }
    assert_eq!(read_all.await.unwrap(), N);
    assert_eq!(relay.stats.closes(CloseReason::SlowReader), 1);
    // The publisher is told the stalled one left.
    let mut left = false;
    while let Some(f) = publisher.recv_within(Duration::from_secs(2)).await {
        if f == RelayFrame::PeerLeft(ws.conn_id) {
            left = true;
            break;
        }
    }
    assert!(left, "peers were told the slow reader left");
    drop(stalled);
    relay.assert_alive().await;
}

#[tokio::test]
async fn a_flood_past_the_rate_limit_is_cut_off() {
    let limits = relay::Limits {
        rate_frames: 20,
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let mut by = Bystanders::new(&relay).await;
    let (mut flooder, _) = relay.join(RoomId(rand_room())).await;
    for _ in 0..200 {
        if flooder.tx.send(ClientFrame::Ping(1)).await.is_err() {
            break;
        }
    }
    let e = loop {
        match flooder.recv().await {
            Some(RelayFrame::Pong(_)) => continue,
            other => break err(other),
        }
    };
    assert_eq!(e.code, ErrorCode::RateLimited);
    by.still_talking().await;
    relay.assert_alive().await;
    assert_eq!(relay.stats.closes(CloseReason::RateLimited), 1);
}

#[tokio::test]
async fn a_byte_flood_past_the_rate_limit_is_cut_off() {
    let limits = relay::Limits {
        rate_bytes: 64 * 1024,
        max_frame: 16 * 1024,
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut flooder, _) = relay.join(room).await;
    for _ in 0..40 {
        flooder.publish(None, &[0u8; 16_000]).await;
    }
    assert_eq!(err(flooder.recv().await).code, ErrorCode::RateLimited);
}

#[tokio::test]
async fn too_many_connections_from_one_address_are_refused() {
    let limits = relay::Limits {
        max_conns_per_ip: 3,
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let mut kept = Vec::new();
    for _ in 0..3 {
        kept.push(relay.join(room).await);
    }
    let mut extra = Client::new(relay.tls().await);
    let e = err(extra.recv().await);
    assert_eq!(e.code, ErrorCode::TooManyFromAddress);
    // The three admitted ones still talk.
    kept[0].0.publish(None, b"x").await;
    for (c, _) in kept.iter_mut().skip(1) {
        loop {
            match c.recv().await {
                Some(RelayFrame::Deliver { .. }) => break,
                Some(RelayFrame::PeerJoined(_)) => continue,
                other => panic!("{other:?}"),
            }
        }
    }
    // Freeing a place admits a new connection.
    drop(kept.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_c, _) = relay.join(room).await;
}

#[tokio::test]
async fn a_full_room_refuses_with_a_reason() {
    let limits = relay::Limits {
        max_room_conns: 2,
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let _a = relay.join(room).await;
    let _b = relay.join(room).await;
    let mut c = Client::new(relay.tls().await);
    c.send(ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        room,
    }))
    .await;
    assert_eq!(err(c.recv().await).code, ErrorCode::RoomFull);
}

#[tokio::test]
async fn tls_1_1_is_refused_and_1_2_and_1_3_are_accepted() {
    let relay = TestRelay::start(test_limits()).await;
    let e = tls_connect(relay.addr, &relay.cert.cert, Some(SslVersion::TLS1_1))
        .await
        .err();
    assert!(e.is_some(), "a TLS 1.1 client was accepted");
    let e12 = tls_connect(relay.addr, &relay.cert.cert, Some(SslVersion::TLS1_2)).await;
    assert!(e12.is_ok(), "TLS 1.2 refused: {:?}", e12.err());
    let s = relay.tls().await;
    assert_eq!(s.ssl().version_str(), "TLSv1.3");
    relay.assert_alive().await;
}

#[tokio::test]
async fn the_tls_1_1_client_of_the_refusal_test_can_connect_where_allowed() {
    // Control for the test above: the same TLS 1.1 client configuration
    // succeeds against a server that allows TLS 1.1, so the refusal really
    // comes from the relay.
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let cert = make_cert();
    let mut b = SslAcceptor::mozilla_intermediate(SslMethod::tls()).unwrap();
    b.set_security_level(0);
    b.set_cipher_list("DEFAULT@SECLEVEL=0").unwrap();
    b.set_min_proto_version(Some(SslVersion::TLS1)).unwrap();
    b.set_certificate_chain_file(&cert.cert).unwrap();
    b.set_private_key_file(&cert.key, SslFiletype::PEM).unwrap();
    let acceptor = b.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
        let mut s = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        std::pin::Pin::new(&mut s)
            .accept()
            .await
            .map(|_| s.ssl().version_str())
    });
    let client = tls_connect(addr, &cert.cert, Some(SslVersion::TLS1_1)).await;
    let version = server.await.unwrap();
    match (client, version) {
        (Ok(_), Ok(v)) => assert_eq!(v, "TLSv1.1"),
        (c, v) => panic!(
            "control failed: this OpenSSL cannot speak TLS 1.1 at all (client {:?}, server {:?})",
            c.err(),
            v.err().map(|e| e.to_string())
        ),
    }
}

#[tokio::test]
async fn graceful_shutdown_sends_going_away_to_everyone() {
    let relay = TestRelay::start(test_limits()).await;
    let room = RoomId(rand_room());
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(relay.join(room).await.0);
    }
    let (mut other, _) = relay.join(RoomId(rand_room())).await;
    // One that finished TLS but never said hello (given a moment for the
    // relay to finish its side of the handshake: a connection still in
    // its handshake at shutdown is simply closed).
    let mut silent = Client::new(relay.tls().await);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Drain the join notices first: after them, GoingAway must come next.
    for (i, c) in clients.iter_mut().enumerate() {
        for _ in i + 1..3 {
            assert!(matches!(c.recv().await, Some(RelayFrame::PeerJoined(_))));
        }
    }
    let started = std::time::Instant::now();
    relay.stop.cancel();
    for (i, c) in clients
        .iter_mut()
        .chain([&mut other, &mut silent])
        .enumerate()
    {
        let f = c.recv().await;
        assert!(
            matches!(&f, Some(RelayFrame::Error(e)) if e.code == ErrorCode::GoingAway),
            "client {i}: {f:?}"
        );
        assert_eq!(c.recv().await, None, "then the stream ends");
    }
    let done = tokio::time::timeout(WAIT, relay.task).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "relay did not stop cleanly");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "stopped well within the grace"
    );
    assert!(
        tokio::net::TcpStream::connect(relay.addr).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn relay_prints_the_sha256_of_its_certificate() {
    let relay = TestRelay::start(test_limits()).await;
    let s = relay.tls().await;
    let der = s.ssl().peer_certificate().unwrap().to_der().unwrap();
    let fp = openssl::sha::sha256(&der);
    assert_eq!(relay.fingerprint, hex::encode(fp));
}

#[tokio::test]
async fn the_largest_payload_is_delivered_within_the_announced_limit_and_one_more_byte_is_refused()
{
    use wire::{encoded_len, max_payload};
    let limits = relay::Limits {
        max_frame: 4096,
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut a, wa) = relay.join(room).await;
    let (mut b, wb) = relay.join(room).await;
    assert_eq!(a.recv().await, Some(RelayFrame::PeerJoined(wb.conn_id)));
    let max = max_payload(wb.max_frame as usize);
    a.publish(Some(wb.conn_id), &vec![1u8; max]).await;
    let got = b.recv().await.unwrap();
    assert!(encoded_len(&got).unwrap() <= wb.max_frame as usize);
    assert_eq!(
        got,
        RelayFrame::Deliver {
            from: wa.conn_id,
            payload: Bytes::from(vec![1u8; max])
        }
    );
    a.publish(None, &vec![1u8; max + 1]).await;
    assert_eq!(err(a.recv().await).code, ErrorCode::FrameTooLarge);
}

#[tokio::test]
async fn the_welcome_is_always_the_first_frame_even_when_many_join_at_once() {
    let relay = std::sync::Arc::new(TestRelay::start(test_limits()).await);
    let room = RoomId(rand_room());
    let mut joins = Vec::new();
    for _ in 0..40 {
        let r = relay.clone();
        // `join` panics unless the first frame it reads is the welcome.
        joins.push(tokio::spawn(async move { r.join(room).await.1.conn_id }));
    }
    let mut ids = Vec::new();
    for j in joins {
        ids.push(j.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40);
}

#[tokio::test]
async fn a_publisher_over_its_fanout_budget_is_slowed_down_not_dropped() {
    let limits = relay::Limits {
        rate_frames: 100_000,
        rate_bytes: 1 << 30,
        rate_fanout_bytes: 4 << 20,
        queue_bytes: 64 << 20,
        queue_frames: 10_000,
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut publisher, _) = relay.join(room).await;
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(relay.join(room).await.0);
    }
    // 48 × 64 KiB to 4 readers = 12 MiB of fan-out against 4 MiB/s with an
    // 8 MiB burst: about a second of throttling.
    const N: u32 = 48;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for mut r in readers {
        tasks.push(tokio::spawn(async move {
            let mut got = 0u32;
            while got < N {
                match r.recv().await {
                    Some(RelayFrame::Deliver { .. }) => got += 1,
                    Some(RelayFrame::PeerJoined(_)) => {}
                    other => panic!("reader got {other:?}"),
                }
            }
            got
        }));
    }
    for i in 0..N {
        let mut p = vec![0u8; 64 * 1024];
        p[..4].copy_from_slice(&i.to_be_bytes());
        publisher.publish(None, &p).await;
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), N, "nothing lost");
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(700),
        "throttled: {:?}",
        started.elapsed()
    );
    assert_eq!(
        relay.stats.closes(CloseReason::RateLimited),
        0,
        "slowed, not dropped"
    );
    publisher.send(ClientFrame::Ping(5)).await;
    loop {
        match publisher.recv().await {
            Some(RelayFrame::Pong(5)) => break,
            Some(RelayFrame::PeerJoined(_)) | Some(RelayFrame::PeerLeft(_)) => {}
            other => panic!("publisher got {other:?}"),
        }
    }
}
