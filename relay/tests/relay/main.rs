//! The relay over real TLS on 127.0.0.1 with ephemeral ports: rooms,
//! broadcast, notices, and every kind of bad input, each leaving other
//! rooms' traffic untouched and the relay alive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
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

mod acks;
mod flow;
mod limits;

/// Checks that `c` hears (within 2 s of quiet) that `id` left the room.
async fn assert_told_left(c: &mut Client, id: wire::ConnId) {
    let mut left = false;
    while let Some(f) = c.recv_within(Duration::from_secs(2)).await {
        if f == RelayFrame::PeerLeft(id) {
            left = true;
            break;
        }
    }
    assert!(left, "peers were told connection {id} left");
}

/// Waits (up to 8 s: a slow reader gets 5 s for its last words) until the
/// relay has counted `n` connections closed for `reason`, and checks it
/// counted no more.
async fn closed_for(relay: &TestRelay, reason: CloseReason, n: u64) {
    for _ in 0..80 {
        if relay.stats.closes(reason) >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        relay.stats.closes(reason),
        n,
        "connections closed for {reason:?}; all: {}",
        relay.stats.closes_summary()
    );
}
mod tls_and_shutdown;

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
    // The welcome names the version the client said hello in.
    assert_eq!(wa.version, wire::MIN_PROTOCOL_VERSION);
    let (_d, wd) = relay
        .join_speaking(RoomId(rand_room()), PROTOCOL_VERSION)
        .await;
    assert_eq!(wd.version, PROTOCOL_VERSION);
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
    // The relay may already have refused it (and reset the connection, as
    // the kernel does for a socket closed with unread bytes) before the
    // second write: what matters is that it closes.
    let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let _ = tcp.write_all(&[0xff; 4096]).await;
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

/// A client that only writes (alone in a quiet room, nobody else says
/// anything) still hears from the relay: it is pinged at the same pace as
/// an idle one, so its own silence timer does not take a live link for a
/// dead one. (The relay used to ping only connections that sent nothing.)
#[tokio::test]
async fn a_client_that_only_writes_is_pinged_too() {
    let limits = relay::Limits {
        idle_timeout: Duration::from_millis(600),
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut writer, _) = relay.join(room).await;
    let mut pings = 0;
    let deadline = std::time::Instant::now() + Duration::from_millis(1800);
    while std::time::Instant::now() < deadline {
        writer
            .send(ClientFrame::Publish {
                to: None,
                payload: Bytes::from_static(b"a line nobody answers"),
            })
            .await;
        if let Some(RelayFrame::Ping(n)) = writer.recv_within(Duration::from_millis(50)).await {
            pings += 1;
            writer.send(ClientFrame::Pong(n)).await;
        }
    }
    // A third of the idle timeout apart: about 9 in 1.8 s.
    assert!(
        pings >= 3,
        "only {pings} pings to a client that kept writing"
    );
}

/// The relay starts TLS only once the ClientHello's first record is whole:
/// a client whose ClientHello comes in pieces, slowly, still gets through.
#[tokio::test]
async fn a_client_hello_that_arrives_in_slow_pieces_still_completes_the_handshake() {
    // About 45 pieces, 20 ms apart: well within these timeouts even on a
    // loaded machine (the test limits' 2 s, spread down to 1.5 s, are not).
    let relay = TestRelay::start(relay::Limits {
        handshake_timeout: Duration::from_secs(10),
        hello_timeout: Duration::from_secs(10),
        ..test_limits()
    })
    .await;
    // A proxy between a real TLS client and the relay that passes the
    // client's first flight on in pieces of 7 bytes, 20 ms apart.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let upstream = relay.addr;
    let pass = tokio::spawn(async move {
        let (client, _) = proxy.accept().await.unwrap();
        let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
        server.set_nodelay(true).unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let up = async move {
            let mut first = true;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut cr, &mut buf)
                    .await
                    .unwrap_or(0);
                if n == 0 {
                    break;
                }
                if first {
                    for piece in buf[..n].chunks(7) {
                        sw.write_all(piece).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    first = false;
                } else if sw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let down = async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        };
        tokio::join!(up, down);
    });
    let tls = tls_connect(proxy_addr, &relay.cert.cert, None)
        .await
        .expect("the handshake completes through the slow pieces");
    let mut c = Client::new(tls);
    c.send(ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        room: RoomId(rand_room()),
    }))
    .await;
    assert!(matches!(c.recv().await, Some(RelayFrame::Welcome(_))));
    drop(c);
    pass.abort();
}

/// Half a ClientHello, then the client goes away: the relay lets go at once
/// (not at the handshake timeout), and does not spin meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_client_hello_then_a_close_is_let_go_at_once() {
    let relay = TestRelay::start(test_limits()).await;
    let mut tcp = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    // A handshake record announcing 508 bytes, of which 64 come.
    let mut partial = vec![
        0x16, 0x03, 0x01, 0x01, 0xfc, 0x01, 0x00, 0x01, 0xf8, 0x03, 0x03,
    ];
    partial.resize(64, 0x5a);
    tcp.write_all(&partial).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tcp.shutdown().await.unwrap();
    let start = std::time::Instant::now();
    let cpu_before = relay_cpu_ticks();
    for _ in 0..100 {
        if relay.stats.closes(CloseReason::TlsFailed) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        relay.stats.closes(CloseReason::TlsFailed),
        1,
        "the half-sent handshake is let go: {}",
        relay.stats.closes_summary()
    );
    // The test limits' handshake timeout is 2 s.
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    if let (Some(a), Some(b)) = (cpu_before, relay_cpu_ticks()) {
        assert!(b - a < 50, "the relay spun: {} CPU ticks", b - a);
    }
    relay.assert_alive().await;
}

/// CPU ticks used by this process so far (the test relay runs in it).
fn relay_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit(')').next()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
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
