//! TLS versions, graceful shutdown, the certificate's SHA-256, the largest
//! payload, welcome order, the fan-out budget.

use super::*;

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
    // Forty handshakes at once on a busy 2-core machine can take more than
    // the tests' 2 s handshake timeout (seen in CI beside a build): this
    // test is about the order of frames, not about timeouts.
    let limits = relay::Limits {
        handshake_timeout: std::time::Duration::from_secs(30),
        hello_timeout: std::time::Duration::from_secs(30),
        ..test_limits()
    };
    let relay = std::sync::Arc::new(TestRelay::start(limits).await);
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
    let closed: u64 = CloseReason::ALL
        .iter()
        .map(|r| relay.stats.closes(*r))
        .sum();
    assert_eq!(closed, 0, "slowed, not dropped");
    publisher.send(ClientFrame::Ping(5)).await;
    loop {
        match publisher.recv().await {
            Some(RelayFrame::Pong(5)) => break,
            Some(RelayFrame::PeerJoined(_)) | Some(RelayFrame::PeerLeft(_)) => {}
            other => panic!("publisher got {other:?}"),
        }
    }
}
