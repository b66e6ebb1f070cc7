//! The relay's acknowledgements (protocol version 2): a client is told, in
//! batches, how many of its publishes the relay took, each lane on its own;
//! a version-1 client is never told.

use super::*;
use wire::{Ack, ACK_EVERY};

/// Reads until an `Ack` covering `want` arrives; the acks seen on the way.
async fn acks_until(c: &mut Client, want: Ack) -> Vec<Ack> {
    let mut seen = Vec::new();
    while let Some(f) = c.recv().await {
        if let RelayFrame::Ack(a) = f {
            if let Some(last) = seen.last() {
                let last: &Ack = last;
                assert!(
                    a.publish >= last.publish && a.bulk >= last.bulk,
                    "acks never go back: {a:?} after {last:?}"
                );
            }
            seen.push(a);
            if a.publish >= want.publish && a.bulk >= want.bulk {
                assert_eq!(a, want, "never more than was published");
                return seen;
            }
        }
    }
    panic!("the connection ended before {want:?} was acknowledged (saw {seen:?})");
}

#[tokio::test]
async fn a_version_2_client_is_told_what_was_taken_lane_by_lane() {
    let relay = TestRelay::start(test_limits()).await;
    let room = RoomId(rand_room());
    let (mut a, _) = relay.join_speaking(room, wire::PROTOCOL_VERSION).await;
    let (mut b, wb) = relay.join(room).await;
    assert_eq!(a.recv().await, Some(RelayFrame::PeerJoined(wb.conn_id)));
    a.publish(None, b"one").await;
    acks_until(
        &mut a,
        Ack {
            publish: 1,
            bulk: 0,
        },
    )
    .await;
    a.publish_bulk(None, b"chunk").await;
    a.publish(None, b"two").await;
    // A directed publish to nobody is taken too (and refused, not fatal).
    a.publish(Some(wb.conn_id + 1000), b"lost").await;
    acks_until(
        &mut a,
        Ack {
            publish: 3,
            bulk: 1,
        },
    )
    .await;
    // What was acknowledged was delivered.
    let mut got = Vec::new();
    for _ in 0..3 {
        match b.recv().await {
            Some(RelayFrame::Deliver { payload, .. }) => got.push(payload),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }
    got.sort();
    assert_eq!(got, [&b"chunk"[..], b"one", b"two"]);
    // The version-1 reader published nothing and is never acknowledged;
    // once it publishes, it still is not.
    b.publish(None, b"from b").await;
    assert!(matches!(a.recv().await, Some(RelayFrame::Deliver { .. })));
    while let Some(f) = b.recv_within(Duration::from_millis(300)).await {
        assert!(
            !matches!(f, RelayFrame::Ack(_)),
            "a version-1 client is never sent an Ack"
        );
    }
}

#[tokio::test]
async fn a_burst_of_publishes_is_acknowledged_in_batches() {
    let relay = TestRelay::start(test_limits()).await;
    let room = RoomId(rand_room());
    let (mut a, _) = relay.join_speaking(room, wire::PROTOCOL_VERSION).await;
    let (_b, wb) = relay.join(room).await;
    assert_eq!(a.recv().await, Some(RelayFrame::PeerJoined(wb.conn_id)));
    // 2,000 publishes in one write.
    let n = 2_000u64;
    for i in 0..n {
        a.tx.feed(ClientFrame::Publish {
            to: None,
            payload: Bytes::from(i.to_le_bytes().to_vec()),
        })
        .await
        .unwrap();
    }
    SinkExt::<ClientFrame>::flush(&mut a.tx).await.unwrap();
    let seen = acks_until(
        &mut a,
        Ack {
            publish: n,
            bulk: 0,
        },
    )
    .await;
    // At most one per read of the socket, and at least one per ACK_EVERY.
    assert!(
        seen.len() as u64 <= n / 8,
        "{} acks for {n} publishes: not batched",
        seen.len()
    );
    let mut last = 0;
    for a in &seen {
        assert!(a.publish - last <= ACK_EVERY, "{seen:?}");
        last = a.publish;
    }
}
