//! Frame layouts fixed by the protocol document: limits, hello, publish,
//! error codes, what Debug hides.

use super::*;

#[test]
fn encoding_over_the_limit_is_refused_and_leaves_the_buffer_intact() {
    let big = ClientFrame::Publish {
        to: None,
        payload: Bytes::from(vec![0u8; 5000]),
    };
    let mut buf = BytesMut::from(&b"xy"[..]);
    match encode_frame(&big, 4096, &mut buf) {
        Err(FrameError::TooLarge { len, max }) => {
            assert_eq!(max, 4096);
            assert_eq!(len, encoded_len(&big).unwrap());
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(&buf[..], b"xy");
    assert!(matches!(
        encode_payload(&big, 4096),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn zero_length_frame_is_invalid() {
    assert!(matches!(
        decode_frame::<ClientFrame>(&[0, 0, 0, 0], DEFAULT_MAX_FRAME),
        Err(FrameError::Invalid(_))
    ));
}

#[test]
fn hello_layout_is_frozen_and_peekable() {
    let hello = ClientFrame::Hello(Hello {
        version: 0x0102,
        room: RoomId([7; 16]),
    });
    let body = encode_payload(&hello, DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(&body[..6], &[0, 0, 0, 0, 0x02, 0x01]);
    assert_eq!(body.len(), 4 + 2 + 16);
    assert_eq!(peek_hello_version(&body), Some(0x0102));
    // A future hello with more fields still yields its version.
    let mut longer = body.clone();
    longer.extend_from_slice(&[9; 10]);
    assert_eq!(peek_hello_version(&longer), Some(0x0102));
    assert_eq!(peek_hello_version(&[1, 0, 0, 0, 1, 0]), None);
    assert_eq!(peek_hello_version(&[0, 0, 0]), None);
}

#[test]
fn publish_layout_matches_the_protocol_document() {
    // docs/PROTOCOL.md: u32le variant 1, Option tag u8 + u64le, u64le length, bytes.
    let f = ClientFrame::Publish {
        to: Some(5),
        payload: Bytes::from_static(b"abc"),
    };
    let body = encode_payload(&f, DEFAULT_MAX_FRAME).unwrap();
    let mut expect = vec![1, 0, 0, 0, 1, 5, 0, 0, 0, 0, 0, 0, 0];
    expect.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
    expect.extend_from_slice(b"abc");
    assert_eq!(body, expect);
    let mut framed = BytesMut::new();
    encode_frame(&f, DEFAULT_MAX_FRAME, &mut framed).unwrap();
    assert_eq!(&framed[..4], &(expect.len() as u32).to_be_bytes());
}

#[test]
fn error_codes_say_which_are_fatal() {
    assert!(ErrorCode::GoingAway.is_fatal());
    assert!(!ErrorCode::NoSuchPeer.is_fatal());
    assert_eq!(ErrorCode::RoomFull.to_string(), "room is full");
}

#[test]
fn join_info_debug_hides_the_password_proof_and_name() {
    let info = JoinInfo {
        room: RoomId([1; 16]),
        join_key: [2; 32],
        ephemeral: [3; 32],
        name: "alice-secret-name".into(),
        member_key: Bytes::from_static(b"k"),
        dh_key: [4; 32],
        password_proof: Some([0xee; 32]),
        sent_at_ms: 1,
        padding: Bytes::new(),
    };
    let dbg = format!("{info:?}");
    assert!(!dbg.contains("alice"), "{dbg}");
    assert!(!dbg.contains("238"), "{dbg}");
}
