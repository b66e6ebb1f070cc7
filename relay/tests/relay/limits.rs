//! Limits: stalled readers, floods, connections per address, full rooms.

use super::*;
use futures_util::StreamExt;

// Its queue stays past its high-water mark (half the bound, in
// frames or in bytes) for the slow-reader timeout: the publisher waits that
// long at most, then the stalled client is cut and the room goes on.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_past_its_frame_mark_and_the_others_lose_nothing() {
    stalled_reader_is_cut_off(relay::Limits {
        queue_frames: 16,
        queue_bytes: 64 << 20,
        slow_reader_timeout: Duration::from_secs(1),
        rate_frames: 100_000,
        rate_bytes: 1 << 30,
        ..test_limits()
    })
    .await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_past_its_byte_mark_and_the_others_lose_nothing() {
    stalled_reader_is_cut_off(relay::Limits {
        queue_frames: 100_000,
        queue_bytes: 1 << 20,
        slow_reader_timeout: Duration::from_secs(1),
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
    closed_for(&relay, CloseReason::SlowReader, 1).await;
    // The publisher is told the stalled one left.
    assert_told_left(&mut publisher, ws.conn_id).await;
    drop(stalled);
    relay.assert_alive().await;
}

#[tokio::test]
async fn a_flood_past_the_frame_rate_is_slowed_not_cut_and_others_go_on() {
    let limits = relay::Limits {
        rate_frames: 100,
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let mut by = Bystanders::new(&relay).await;
    let (flooder, _) = relay.join(RoomId(rand_room())).await;
    let Client { mut rx, mut tx } = flooder;
    // 400 frames against 100/s with a burst of 200: about 2 s of holding.
    const N: u64 = 400;
    let started = std::time::Instant::now();
    let reader = tokio::spawn(async move {
        let mut pongs = 0;
        while pongs < N {
            match rx.next().await {
                Some(Ok(RelayFrame::Pong(n))) => {
                    assert_eq!(n, pongs, "answered in order");
                    pongs += 1;
                }
                // The relay's own keepalive, at its pace whatever we send.
                Some(Ok(RelayFrame::Ping(_))) => {}
                other => panic!("the flooder got {other:?}"),
            }
        }
    });
    let sender = tokio::spawn(async move {
        for n in 0..N {
            tx.send(ClientFrame::Ping(n)).await.unwrap();
        }
        tx
    });
    // Meanwhile the relay serves everyone else at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_millis(500), by.still_talking())
        .await
        .expect("the bystanders are not slowed");
    tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("every ping answered")
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "slowed: {took:?}");
    drop(sender.await.unwrap());
    relay.assert_alive().await;
    assert_eq!(
        closes(&relay),
        0,
        "nobody was cut: {}",
        relay.stats.closes_summary()
    );
}

/// Connections the relay has closed itself, for any reason (not those the
/// client closed: gracefully, or with a reset when it left the relay's last
/// ping unread).
fn closes(relay: &TestRelay) -> u64 {
    CloseReason::ALL
        .iter()
        .filter(|r| !matches!(r, CloseReason::ClientClosed | CloseReason::IoError))
        .map(|r| relay.stats.closes(*r))
        .sum()
}

#[tokio::test]
async fn a_byte_flood_past_the_byte_rate_is_slowed_and_delivered_whole() {
    let limits = relay::Limits {
        rate_bytes: 256 * 1024,
        max_frame: 16 * 1024,
        ..test_limits()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut flooder, _) = relay.join(room).await;
    let (mut reader, _) = relay.join(room).await;
    // 60 frames of 16 KB against 256 KiB/s with a 512 KiB burst: about
    // 1.75 s of holding.
    const N: u8 = 60;
    let started = std::time::Instant::now();
    let got = tokio::spawn(async move {
        for i in 0..N {
            loop {
                match reader.recv().await {
                    Some(RelayFrame::Deliver { payload, .. }) => {
                        assert_eq!(payload[0], i, "in order");
                        break;
                    }
                    Some(RelayFrame::PeerJoined(_)) => {}
                    other => panic!("the reader got {other:?}"),
                }
            }
        }
    });
    for i in 0..N {
        flooder.publish(None, &[i; 16_000]).await;
    }
    tokio::time::timeout(Duration::from_secs(20), got)
        .await
        .expect("every frame delivered")
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1200), "slowed: {took:?}");
    assert_eq!(
        closes(&relay),
        0,
        "nobody was cut: {}",
        relay.stats.closes_summary()
    );
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
