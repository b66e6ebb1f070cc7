//! The backplane's tests: envelopes, sequences and gaps, and the handle's queue to NATS.

use super::*;

/// A relay's sequence number comes from NATS: `u64::MAX` followed by
/// anything used to overflow `p + 1` (a panic in debug builds).
#[test]
fn sequence_gaps_are_found_without_overflow() {
    let mut s = Sequences::default();
    assert!(!s.gap(7, 1));
    assert!(!s.gap(7, 2));
    assert!(s.gap(7, 4), "3 was lost");
    assert!(!s.gap(7, 1), "the relay reopened the room");
    assert!(s.gap(7, u64::MAX), "2 to u64::MAX - 1 were lost");
    assert!(s.gap(7, 0), "nothing follows u64::MAX");
    assert!(!s.gap(7, 1), "but a reopening");
    assert!(!s.gap(8, u64::MAX), "a relay first heard from");
}

#[test]
fn envelopes_round_trip_and_garbage_is_refused() {
    for message in [
        Message::Deliver {
            from: 7,
            to: Some(9),
            payload: Bytes::from_static(b"sealed"),
            bulk: false,
        },
        Message::Joined(3),
        Message::Left(3),
        Message::Present(vec![1, 2, 3]),
        Message::Hello,
    ] {
        let env = Envelope {
            relay: 42,
            room: RoomId([5; 16]),
            seq: 7,
            message,
        };
        let bytes = encode_payload(&env, 1 << 20).unwrap();
        assert_eq!(decode_payload::<Envelope>(&bytes, 1 << 20).unwrap(), env);
    }
    assert!(decode_payload::<Envelope>(b"\xff\xff\xff", 1 << 20).is_err());
    let opts = Options {
        servers: vec!["nats://relays:s3cret@10.0.0.5:4222".into()],
        optional: false,
        user: Some(("relays".into(), "pa55word".into())),
        token: Some("t0ken".into()),
        ca: None,
        nkey: None,
        creds: None,
    };
    let debug = format!("{opts:?}");
    for secret in ["s3cret", "pa55word", "t0ken"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert_eq!(shown("nats://u:p@h:1"), "nats://***@h:1");
    assert_eq!(shown("tls://h:1"), "tls://h:1");
    assert_eq!(shown("tok@h:1"), "***@h:1");
    assert_eq!(
        subject(&RoomId([0xab; 16])),
        format!("teamchat.room.{}", "ab".repeat(16))
    );
}
