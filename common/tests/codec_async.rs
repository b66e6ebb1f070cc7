//! The frame codec over real async streams: frames cross a duplex pipe, an
//! oversized prefix is refused without waiting for (or buffering) a body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{FramedRead, FramedWrite};

use common::wire::{ClientFrame, FrameCodec, FrameError, Hello, PROTOCOL_VERSION};
use common::RoomId;

#[tokio::test]
async fn frames_cross_an_async_stream_in_order() {
    let (a, b) = tokio::io::duplex(64);
    let mut tx = FramedWrite::new(a, FrameCodec::<ClientFrame>::default());
    let mut rx = FramedRead::new(b, FrameCodec::<ClientFrame>::default());
    let frames = vec![
        ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            room: RoomId([1; 16]),
        }),
        ClientFrame::Publish {
            to: None,
            payload: Bytes::from(vec![7u8; 10_000]),
        },
        ClientFrame::Ping(9),
    ];
    let sent = frames.clone();
    let writer = tokio::spawn(async move {
        for f in sent {
            tx.send(f).await.unwrap();
        }
    });
    for expect in frames {
        let got = tokio::time::timeout(Duration::from_secs(5), rx.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got, expect);
    }
    writer.await.unwrap();
}

#[tokio::test]
async fn oversized_prefix_errors_before_the_body_arrives() {
    let (mut a, b) = tokio::io::duplex(64);
    let mut rx = FramedRead::new(b, FrameCodec::<ClientFrame>::new(4096));
    // Announce 1 GiB and send nothing else; keep the writer open so that a
    // decoder waiting for the body would hang (the timeout would fire).
    a.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.next())
        .await
        .expect("decoder waited for a body it should have refused");
    match got {
        Some(Err(FrameError::TooLarge { len, max })) => {
            assert_eq!(len, 1 << 30);
            assert_eq!(max, 4096);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(rx.read_buffer().capacity() < 1 << 20);
    drop(a);
}

#[tokio::test]
async fn garbage_body_is_an_error_not_a_hang() {
    let (mut a, b) = tokio::io::duplex(64);
    let mut rx = FramedRead::new(b, FrameCodec::<ClientFrame>::default());
    a.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.next())
        .await
        .unwrap();
    assert!(matches!(got, Some(Err(FrameError::Invalid(_)))), "{got:?}");
}
