//! Flow control: a publisher faster than its room is slowed, not its
//! readers cut; a reader that stays behind is told and cut within the
//! slow-reader timeout; the relay's queued bytes stay under their total.

use super::*;

/// Default queue and memory limits; only the per-connection rate limits
/// raised (as NATS and mosquitto run with theirs), so that the publisher
/// can go faster than its readers.
fn unthrottled() -> relay::Limits {
    relay::Limits {
        rate_frames: 1_000_000,
        rate_bytes: 1 << 40,
        rate_fanout_bytes: 1 << 40,
        ..test_limits()
    }
}

const FRAME: usize = 16 * 1024;

/// Reads `n` numbered frames in order at about `per_sec` frames a second;
/// how long it took.
async fn read_paced(mut c: Client, n: u32, per_sec: u32) -> Duration {
    let start = std::time::Instant::now();
    let mut seen = 0u32;
    while seen < n {
        match c.recv().await {
            Some(RelayFrame::Deliver { payload, .. }) => {
                assert_eq!(&payload[..4], &seen.to_be_bytes(), "in order, nothing lost");
                seen += 1;
                if seen.is_multiple_of(32) {
                    tokio::time::sleep(Duration::from_secs_f64(32.0 / f64::from(per_sec))).await;
                }
            }
            Some(RelayFrame::PeerJoined(_) | RelayFrame::PeerLeft(_)) => {}
            other => panic!("reader got {other:?} after {seen} frames"),
        }
    }
    start.elapsed()
}

/// A publisher sending as fast as it can to three readers that read at
/// about 10 MB/s, `limits` otherwise; the publisher's time, the slowest
/// reader's, and the most the relay held queued meanwhile.
async fn fast_publisher(limits: relay::Limits, n: u32) -> (Duration, Duration, usize) {
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut publisher, _) = relay.join(room).await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (c, _) = relay.join(room).await;
        readers.push(tokio::spawn(read_paced(c, n, 640)));
    }
    for _ in 0..3 {
        assert!(matches!(
            publisher.recv().await,
            Some(RelayFrame::PeerJoined(_))
        ));
    }
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watch = {
        let (budget, peak) = (
            std::sync::Arc::clone(&relay.budget),
            std::sync::Arc::clone(&peak),
        );
        tokio::spawn(async move {
            loop {
                peak.fetch_max(budget.queued(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let start = std::time::Instant::now();
    for i in 0..n {
        let mut p = vec![0u8; FRAME];
        p[..4].copy_from_slice(&i.to_be_bytes());
        publisher.publish(None, &p).await;
    }
    let sent = start.elapsed();
    let mut slowest = Duration::ZERO;
    for r in readers {
        let took = tokio::time::timeout(Duration::from_secs(60), r)
            .await
            .expect("every reader gets every frame within a minute")
            .expect("no reader panicked");
        slowest = slowest.max(took);
    }
    watch.abort();
    assert_eq!(
        relay.stats.closes(CloseReason::SlowReader),
        0,
        "nobody was cut"
    );
    relay.assert_alive().await;
    (
        sent,
        slowest,
        peak.load(std::sync::atomic::Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_faster_than_its_readers_is_slowed_and_nobody_loses_a_frame() {
    // 1,280 × 16 KiB = 20 MiB to each reader: five times what a queue
    // may hold, read at about 10 MiB/s.
    let n = 1_280;
    let (sent, slowest, _) = fast_publisher(unthrottled(), n).await;
    // Unslowed, the publisher would be done in a fraction of the readers'
    // time; slowed, it finishes about when they do, minus what the queues
    // and the sockets hold.
    assert!(
        sent.as_secs_f64() > 0.4 * slowest.as_secs_f64(),
        "the publisher was slowed: sent in {sent:?}, read in {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_holds_no_more_than_its_total_however_fast_the_publisher() {
    // A total smaller than the three queues' high-water marks together: the budget,
    // not the queues, is what stops the publisher.
    let limits = relay::Limits {
        max_queued: 1 << 20,
        ..unthrottled()
    };
    let max_queued = limits.max_queued;
    let (_, _, peak) = fast_publisher(limits, 640).await;
    // Past the total the publisher stops at its next frame: at most one
    // frame per reader over it.
    assert!(
        peak <= max_queued + 3 * (FRAME + 64),
        "peak {peak} bytes queued, total {max_queued}"
    );
    assert!(
        peak > max_queued / 2,
        "the run reached the budget: peak {peak}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_is_told_and_cut_and_its_room_and_others_go_on() {
    let limits = relay::Limits {
        slow_reader_timeout: Duration::from_secs(2),
        ..unthrottled()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut publisher, _) = relay.join(room).await;
    let (reader, _) = relay.join(room).await;
    let (mut stalled, ws) = relay.join(room).await;
    for _ in 0..2 {
        assert!(matches!(
            publisher.recv().await,
            Some(RelayFrame::PeerJoined(_))
        ));
    }
    // Another room, chatting throughout: never slowed.
    let other = RoomId(rand_room());
    let (mut a, _) = relay.join(other).await;
    let (mut b, wb) = relay.join(other).await;
    assert_eq!(a.recv().await, Some(RelayFrame::PeerJoined(wb.conn_id)));

    let n = 1_024u32;
    let read = tokio::spawn(read_paced(reader, n, 100_000));
    // The stalled reader reads again a little after its cut (2 s after
    // its queue filled): what its socket held, then its last words, then
    // the end.
    let woken = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2_800)).await;
        let mut last = None;
        while let Some(f) = stalled.recv_within(Duration::from_secs(5)).await {
            last = Some(f);
        }
        last
    });
    let start = std::time::Instant::now();
    let mut longest = Duration::ZERO;
    for i in 0..n {
        let mut p = vec![0u8; FRAME];
        p[..4].copy_from_slice(&i.to_be_bytes());
        let t = std::time::Instant::now();
        publisher.publish(None, &p).await;
        longest = longest.max(t.elapsed());
        if i.is_multiple_of(128) {
            let t = std::time::Instant::now();
            b.publish(None, b"ping").await;
            match a.recv().await {
                Some(RelayFrame::Deliver { payload, .. }) => assert_eq!(&payload[..], b"ping"),
                other => panic!("the other room got {other:?}"),
            }
            // Far below the 2 s the stalled room waits (a loaded CI machine
            // takes some of it).
            assert!(
                t.elapsed() < Duration::from_millis(1_000),
                "the other room is not slowed: {:?}",
                t.elapsed()
            );
        }
    }
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the reader got every frame")
        .expect("no panic");
    // The room waited for the stalled reader at most its timeout (and a
    // little scheduling), then went on without it.
    assert!(
        longest < Duration::from_millis(3_500),
        "one publish waited {longest:?}; the timeout is 2 s"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "the room did wait"
    );

    let last = woken.await.expect("no panic");
    closed_for(&relay, CloseReason::SlowReader, 1).await;
    assert_eq!(
        last.map(|f| match f {
            RelayFrame::Error(e) => e.code,
            other => panic!("the last frame was {other:?}"),
        }),
        Some(ErrorCode::SlowReader)
    );
    // The others were told it left.
    assert_told_left(&mut publisher, ws.conn_id).await;
    relay.assert_alive().await;
}

/// A reader that never reads again is reset once its last words could not
/// be written: neither the relay nor its kernel keeps the data queued for
/// it (up to a send buffer per connection, for TCP's zero-window probes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_again_is_reset_not_left_lingering() {
    use std::os::fd::AsFd;
    use tokio::io::AsyncReadExt;
    let limits = relay::Limits {
        slow_reader_timeout: Duration::from_secs(1),
        ..unthrottled()
    };
    let relay = TestRelay::start(limits).await;
    let room = RoomId(rand_room());
    let (mut publisher, _) = relay.join(room).await;
    let tls = relay.tls().await;
    // A second handle on the stalled client's socket, read below TLS once
    // the relay is done with it.
    let raw = tls.get_ref().as_fd().try_clone_to_owned().unwrap();
    let mut stalled = Client::new(tls);
    stalled
        .send(ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            room,
        }))
        .await;
    let Some(RelayFrame::PeerJoined(stalled_id)) = publisher.recv().await else {
        panic!("the publisher was not told the stalled reader joined");
    };
    // Far more than its queue (4 MiB) and both kernels' buffers hold.
    for i in 0..1_024u32 {
        let mut p = vec![0u8; FRAME];
        p[..4].copy_from_slice(&i.to_be_bytes());
        publisher.publish(None, &p).await;
        if relay.stats.closes(CloseReason::SlowReader) > 0 {
            break;
        }
    }
    // Cut after the 1 s timeout, then 5 s for last words it cannot take.
    let cut_by = std::time::Instant::now() + Duration::from_secs(20);
    while relay.stats.closes(CloseReason::SlowReader) == 0 {
        assert!(
            std::time::Instant::now() < cut_by,
            "the stalled reader was never cut"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Reading now, below TLS: a reset ends the stream (after whatever the
    // kernel had already received); a graceful close would instead go on
    // sending what the relay's kernel held, then end cleanly.
    let mut raw = tokio::net::TcpStream::from_std(std::net::TcpStream::from(raw)).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut read = 0usize;
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) => return Ok(read),
                Ok(n) => read += n,
                Err(e) => return Err(e.kind()),
            }
        }
    })
    .await
    .expect("the stream ends");
    assert_eq!(
        end,
        Err(std::io::ErrorKind::ConnectionReset),
        "the stalled reader's connection ended without a reset"
    );
    drop(stalled);
    assert_told_left(&mut publisher, stalled_id).await;
    relay.assert_alive().await;
}

/// Chat overtakes file chunks queued for a reader (`PublishBulk` goes to
/// the bulk lane of its queue); each kind stays in order.
#[tokio::test]
async fn a_line_overtakes_file_chunks_queued_for_a_reader() {
    let relay = TestRelay::start(unthrottled()).await;
    let room = RoomId(rand_room());
    let (mut sender, _) = relay.join(room).await;
    let (mut reader, _) = relay.join(room).await;
    // 30 chunks of 60 KB: under the high-water mark (half of 4 MiB), so
    // the sender is not held; the reader reads nothing yet.
    const CHUNKS: u8 = 30;
    for i in 0..CHUNKS {
        sender.publish_bulk(None, &[i; 60_000]).await;
    }
    sender
        .publish(None, b"a line typed during the transfer")
        .await;
    // Everything is in the relay (frames of one connection are handled in
    // order); what the kernels hold went first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut chunks = Vec::new();
    let mut line_after = None;
    while chunks.len() < usize::from(CHUNKS) || line_after.is_none() {
        match reader.recv().await {
            Some(RelayFrame::Deliver { payload, .. }) if payload.len() == 60_000 => {
                chunks.push(payload[0]);
            }
            Some(RelayFrame::Deliver { payload, .. }) => {
                assert_eq!(&payload[..], b"a line typed during the transfer");
                line_after = Some(chunks.len());
            }
            Some(RelayFrame::PeerJoined(_)) => {}
            other => panic!("reader got {other:?}"),
        }
    }
    assert_eq!(chunks, (0..CHUNKS).collect::<Vec<_>>(), "chunks in order");
    let after = line_after.unwrap_or_default();
    assert!(
        after <= usize::from(CHUNKS) - 10,
        "the line came after {after} of {CHUNKS} chunks: it did not overtake the queued ones"
    );
}
