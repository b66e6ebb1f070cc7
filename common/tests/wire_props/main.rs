//! Property tests for the wire format: round trips, arbitrary and mutated
//! bytes into every decoder, and the length limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use common::invite::Invite;
use common::wire::*;
use common::{Fingerprint, RoomId};

mod documented;
mod headers;
mod layouts;

fn room() -> impl Strategy<Value = RoomId> {
    any::<[u8; 16]>().prop_map(RoomId)
}
fn fpr() -> impl Strategy<Value = Fingerprint> {
    any::<[u8; 32]>().prop_map(Fingerprint)
}
fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}
fn sealed() -> impl Strategy<Value = Sealed> {
    (any::<[u8; 16]>(), bytes(200), any::<[u8; 32]>()).prop_map(|(iv, ciphertext, tag)| Sealed {
        iv,
        ciphertext,
        tag,
    })
}
fn signed() -> impl Strategy<Value = Signed> {
    (bytes(300), bytes(400)).prop_map(|(body, signature)| Signed { body, signature })
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (any::<u16>(), room())
            .prop_map(|(version, room)| ClientFrame::Hello(Hello { version, room })),
        (any::<Option<u64>>(), bytes(2000))
            .prop_map(|(to, payload)| ClientFrame::Publish { to, payload }),
        (any::<Option<u64>>(), bytes(2000))
            .prop_map(|(to, payload)| ClientFrame::PublishBulk { to, payload }),
        any::<u64>().prop_map(ClientFrame::Ping),
        any::<u64>().prop_map(ClientFrame::Pong),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(vec![
        ErrorCode::UnsupportedVersion,
        ErrorCode::RoomFull,
        ErrorCode::ServerFull,
        ErrorCode::TooManyFromAddress,
        ErrorCode::FrameTooLarge,
        ErrorCode::BadFrame,
        ErrorCode::RateLimited,
        ErrorCode::Timeout,
        ErrorCode::SlowReader,
        ErrorCode::NoSuchPeer,
        ErrorCode::GoingAway,
    ])
}

fn relay_frame() -> impl Strategy<Value = RelayFrame> {
    prop_oneof![
        (
            any::<u16>(),
            any::<u64>(),
            prop::collection::vec(any::<u64>(), 0..50),
            any::<u32>()
        )
            .prop_map(|(version, conn_id, peers, max_frame)| RelayFrame::Welcome(
                Welcome {
                    version,
                    conn_id,
                    peers,
                    max_frame
                }
            )),
        (any::<u64>(), bytes(2000))
            .prop_map(|(from, payload)| RelayFrame::Deliver { from, payload }),
        any::<u64>().prop_map(RelayFrame::PeerJoined),
        any::<u64>().prop_map(RelayFrame::PeerLeft),
        any::<u64>().prop_map(RelayFrame::Ping),
        any::<u64>().prop_map(RelayFrame::Pong),
        (any::<u64>(), any::<u64>())
            .prop_map(|(publish, bulk)| RelayFrame::Ack(Ack { publish, bulk })),
        (error_code(), ".{0,40}")
            .prop_map(|(code, message)| RelayFrame::Error(RelayError { code, message })),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    let header =
        (room(), any::<u64>(), fpr(), any::<u64>()).prop_map(|(room, epoch, sender, seq)| {
            MessageHeader {
                room,
                epoch,
                sender,
                seq,
                prev: [
                    (epoch.wrapping_sub(1), seq.rotate_left(7)),
                    (seq, epoch),
                    (0, 0),
                ],
            }
        });
    prop_oneof![
        signed().prop_map(Envelope::Announce),
        signed().prop_map(Envelope::Beacon),
        (room(), any::<[u8; 16]>()).prop_map(|(room, nonce)| Envelope::Knock { room, nonce }),
        (room(), any::<[u8; 32]>(), sealed()).prop_map(|(room, ephemeral, sealed)| {
            Envelope::JoinRequest(JoinRequest {
                room,
                ephemeral,
                sealed,
            })
        }),
        signed().prop_map(Envelope::Epoch),
        (room(), any::<u64>(), any::<u16>(), any::<u16>(), sealed()).prop_map(
            |(room, epoch, index, count, sealed)| {
                Envelope::Roster(RosterPart {
                    header: RosterPartHeader {
                        room,
                        epoch,
                        index,
                        count,
                    },
                    sealed,
                })
            }
        ),
        signed().prop_map(Envelope::Notice),
        (header, sealed(), bytes(400)).prop_map(|(header, sealed, signature)| Envelope::Message(
            ChatMessage {
                header,
                sealed,
                signature
            }
        )),
        (
            room(),
            any::<u64>(),
            fpr(),
            fpr(),
            any::<u64>(),
            any::<[u8; 32]>(),
            sealed(),
            bytes(400)
        )
            .prop_map(
                |(room, epoch, sender, recipient, seq, ephemeral, sealed, signature)| {
                    Envelope::Private(PrivateMessage {
                        header: PrivateHeader {
                            room,
                            epoch,
                            sender,
                            recipient,
                            seq,
                            prev: [(epoch ^ seq, seq.rotate_left(3)), (0, 0), (epoch, 1)],
                            ephemeral,
                        },
                        sealed,
                        signature,
                    })
                }
            ),
        (
            room(),
            any::<u64>(),
            fpr(),
            any::<[u8; 16]>(),
            any::<u32>(),
            sealed(),
            any::<bool>()
        )
            .prop_map(|(room, epoch, sender, transfer, index, sealed, private)| {
                let chunk = FileChunk {
                    header: ChunkHeader {
                        room,
                        epoch,
                        sender,
                        transfer,
                        index,
                    },
                    sealed,
                };
                if private {
                    Envelope::PrivateChunk(chunk)
                } else {
                    Envelope::FileChunk(chunk)
                }
            }),
    ]
}

/// Feeds `data` to every decoder of the crate; none may panic.
fn decode_everything(data: &[u8]) {
    let max = DEFAULT_MAX_FRAME;
    let _ = decode_frame::<ClientFrame>(data, max);
    let _ = decode_frame::<RelayFrame>(data, max);
    let _ = decode_payload::<ClientFrame>(data, max);
    let _ = decode_payload::<RelayFrame>(data, max);
    let _ = decode_payload::<Envelope>(data, max);
    let _ = decode_payload::<Announce>(data, max);
    let _ = decode_payload::<JoinInfo>(data, max);
    let _ = decode_payload::<EpochBody>(data, max);
    let _ = decode_payload::<Roster>(data, max);
    let _ = decode_payload::<Notice>(data, max);
    let _ = decode_payload::<ChatBody>(data, max);
    let _ = decode_payload::<Signed>(data, max);
    let _ = peek_hello_version(data);
    let _ = common::crypto::PublicKey::from_spki_der(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = s.parse::<Invite>();
        let _ = s.parse::<RoomId>();
        let _ = s.parse::<Fingerprint>();
        let _ = common::identity::decode_pem(std::path::Path::new("fuzz.pem"), s, Some(b"pw"));
    }
    // The streaming decoder, fed in two uneven pieces.
    use tokio_util::codec::Decoder;
    let mut codec = FrameCodec::<ClientFrame>::new(max);
    let mut buf = BytesMut::new();
    let mid = data.len() / 3;
    buf.extend_from_slice(&data[..mid]);
    let _ = codec.decode(&mut buf);
    buf.extend_from_slice(&data[mid..]);
    for _ in 0..8 {
        match codec.decode(&mut buf) {
            Ok(Some(_)) => continue,
            _ => break,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn client_frames_round_trip(f in client_frame()) {
        let mut buf = BytesMut::new();
        encode_frame(&f, DEFAULT_MAX_FRAME, &mut buf).unwrap();
        let (back, used) = decode_frame::<ClientFrame>(&buf, DEFAULT_MAX_FRAME).unwrap();
        prop_assert_eq!(used, buf.len());
        prop_assert_eq!(back, f);
    }

    #[test]
    fn relay_frames_round_trip(f in relay_frame()) {
        let mut buf = BytesMut::new();
        encode_frame(&f, DEFAULT_MAX_FRAME, &mut buf).unwrap();
        prop_assert_eq!(buf.len() - LEN_PREFIX, encoded_len(&f).unwrap());
        let (back, used) = decode_frame::<RelayFrame>(&buf, DEFAULT_MAX_FRAME).unwrap();
        prop_assert_eq!(used, buf.len());
        prop_assert_eq!(back, f);
    }

    #[test]
    fn envelopes_round_trip(e in envelope()) {
        let bytes = encode_payload(&e, DEFAULT_MAX_FRAME).unwrap();
        // The chunk test by tag agrees with the variant.
        let chunk = matches!(e, Envelope::FileChunk(_) | Envelope::PrivateChunk(_));
        prop_assert_eq!(decode_payload::<Envelope>(&bytes, DEFAULT_MAX_FRAME).unwrap(), e);
        prop_assert_eq!(Envelope::is_chunk(&bytes), chunk);
    }

    #[test]
    fn several_frames_in_one_buffer_decode_in_order(fs in prop::collection::vec(relay_frame(), 1..6)) {
        use tokio_util::codec::Decoder;
        let mut buf = BytesMut::new();
        for f in &fs {
            encode_frame(f, DEFAULT_MAX_FRAME, &mut buf).unwrap();
        }
        let mut codec = FrameCodec::<RelayFrame>::default();
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(out, fs);
    }

    #[test]
    fn every_strict_prefix_is_incomplete_not_an_error(f in client_frame()) {
        let mut buf = BytesMut::new();
        encode_frame(&f, DEFAULT_MAX_FRAME, &mut buf).unwrap();
        for cut in 0..buf.len() {
            let r = decode_frame::<ClientFrame>(&buf[..cut], DEFAULT_MAX_FRAME);
            let incomplete = matches!(r, Err(FrameError::Incomplete { .. }));
            prop_assert!(incomplete, "cut {}: {:?}", cut, r);
        }
    }

    #[test]
    fn trailing_bytes_inside_a_frame_are_rejected(f in client_frame(), extra in 1u8..20) {
        let mut body = encode_payload(&f, DEFAULT_MAX_FRAME).unwrap();
        body.extend(std::iter::repeat_n(0u8, extra as usize));
        let refused = matches!(decode_payload::<ClientFrame>(&body, DEFAULT_MAX_FRAME), Err(FrameError::Invalid(_)));
        prop_assert!(refused, "trailing bytes accepted in a payload");
        let mut framed = (body.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&body);
        let refused = matches!(decode_frame::<ClientFrame>(&framed, DEFAULT_MAX_FRAME), Err(FrameError::Invalid(_)));
        prop_assert!(refused, "trailing bytes accepted in a frame");
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(data in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(&data);
    }

    #[test]
    fn mutated_valid_frames_never_panic_any_decoder(
        e in envelope(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut body = encode_payload(&e, DEFAULT_MAX_FRAME).unwrap();
        for (i, b) in flips {
            let at = i.index(body.len());
            body[at] = b;
        }
        decode_everything(&body);
        let mut framed = (body.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&body);
        decode_everything(&framed);
    }

    #[test]
    fn a_length_prefix_over_the_limit_is_refused_from_the_prefix_alone(
        max in MIN_MAX_FRAME..(4 << 20),
        over in 1usize..(1 << 20),
    ) {
        let len = (max + over).min(u32::MAX as usize);
        let prefix = (len as u32).to_be_bytes();
        // Only the 4-byte prefix is available: the answer must already be "too large".
        match decode_frame::<ClientFrame>(&prefix, max) {
            Err(FrameError::TooLarge { len: l, max: m }) => { prop_assert_eq!(l, len); prop_assert_eq!(m, max); }
            other => prop_assert!(false, "expected TooLarge, got {:?}", other),
        }
        use tokio_util::codec::Decoder;
        let mut codec = FrameCodec::<ClientFrame>::new(max);
        let mut buf = BytesMut::from(&prefix[..]);
        let refused = matches!(codec.decode(&mut buf), Err(FrameError::TooLarge { .. }));
        prop_assert!(refused, "codec accepted an oversized prefix");
        prop_assert!(buf.capacity() < 4096, "no buffer was reserved for the body");
    }
}
