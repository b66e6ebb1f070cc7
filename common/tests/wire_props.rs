//! Property tests for the wire format: round trips, arbitrary and mutated
//! bytes into every decoder, and the length limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use common::invite::Invite;
use common::wire::*;
use common::{Fingerprint, RoomId};

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
            sealed()
        )
            .prop_map(
                |(room, epoch, sender, transfer, index, sealed)| Envelope::FileChunk(FileChunk {
                    header: ChunkHeader {
                        room,
                        epoch,
                        sender,
                        transfer,
                        index
                    },
                    sealed
                })
            ),
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
        prop_assert_eq!(decode_payload::<Envelope>(&bytes, DEFAULT_MAX_FRAME).unwrap(), e);
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

fn header_strategy(
) -> impl Strategy<Value = (MessageHeader, RosterPartHeader, ChunkHeader, PrivateHeader)> {
    (
        room(),
        any::<u64>(),
        fpr(),
        fpr(),
        any::<u64>(),
        any::<u16>(),
        any::<u16>(),
        any::<[u8; 16]>(),
        any::<u32>(),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |(room, epoch, a, b, seq, index, count, transfer, chunk, eph)| {
                (
                    MessageHeader {
                        room,
                        epoch,
                        sender: a,
                        seq,
                        prev: [(epoch, seq); 3],
                    },
                    RosterPartHeader {
                        room,
                        epoch,
                        index,
                        count,
                    },
                    ChunkHeader {
                        room,
                        epoch,
                        sender: a,
                        transfer,
                        index: chunk,
                    },
                    PrivateHeader {
                        room,
                        epoch,
                        sender: a,
                        recipient: b,
                        seq,
                        prev: [(seq, epoch); 3],
                        ephemeral: eph,
                    },
                )
            },
        )
}

fn invite_strategy() -> impl Strategy<Value = Invite> {
    use common::invite::{Host, RelayEndpoint};
    let host = prop_oneof![
        "[a-z][a-z0-9-]{0,10}[a-z0-9](\\.[a-z][a-z0-9]{0,8}){0,3}".prop_map(Host::Name),
        any::<[u8; 4]>().prop_map(|b| Host::V4(b.into())),
        any::<[u16; 8]>().prop_map(|s| Host::V6(s.into())),
    ];
    let relay =
        (host, 1u16.., fpr()).prop_map(|(host, port, cert)| RelayEndpoint { host, port, cert });
    (prop::collection::vec(relay, 1..4), room(), fpr())
        .prop_map(|(relays, room, admin)| Invite::new(relays, room, admin).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Headers are re-encoded by receivers to rebuild AAD and signed bytes:
    /// that is sound only while their encoding is fixed-size and canonical.
    #[test]
    fn authenticated_headers_have_a_fixed_size_encoding(h in header_strategy()) {
        prop_assert_eq!(encoded_len(&h.0).unwrap(), 112);
        prop_assert_eq!(encoded_len(&h.1).unwrap(), 28);
        prop_assert_eq!(encoded_len(&h.2).unwrap(), 76);
        prop_assert_eq!(encoded_len(&h.3).unwrap(), 176);
        let bytes = encode_payload(&h.0, DEFAULT_MAX_FRAME).unwrap();
        let back: MessageHeader = decode_payload(&bytes, DEFAULT_MAX_FRAME).unwrap();
        prop_assert_eq!(encode_payload(&back, DEFAULT_MAX_FRAME).unwrap(), bytes);
    }

    #[test]
    fn invites_round_trip_through_text(inv in invite_strategy()) {
        let text = inv.to_string();
        prop_assert_eq!(text.parse::<Invite>(), Ok(inv));
    }

    #[test]
    fn mutated_invites_never_panic(
        inv in invite_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..6),
    ) {
        let mut chars: Vec<char> = inv.to_string().chars().collect();
        for (i, c) in edits {
            let at = i.index(chars.len());
            chars[at] = c;
        }
        let text: String = chars.into_iter().collect();
        let _ = text.parse::<Invite>();
    }

    #[test]
    fn mutated_key_files_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        encrypted in any::<bool>(),
    ) {
        let pem = pem_text(encrypted);
        let mut bytes = pem.as_bytes().to_vec();
        for (i, b) in edits {
            let at = i.index(bytes.len());
            // Stay in the base64 alphabet half the time so decoding gets further.
            bytes[at] = if b % 2 == 0 { b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(b as usize / 2) % 64] } else { b };
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let r = common::identity::decode_pem(std::path::Path::new("fuzz.pem"), text, Some(b"pw"));
            // A mutated file never loads as some other valid key silently.
            if let Ok(k) = r {
                prop_assert_eq!(k.public(), common::test_keys::key(0).public());
            }
        }
    }
}

/// A PEM of test key 0, plain or encrypted with "pw" (encrypting costs
/// 600,000 PBKDF2 rounds, so it is made once).
fn pem_text(encrypted: bool) -> String {
    use std::sync::OnceLock;
    static PLAIN: OnceLock<String> = OnceLock::new();
    static ENC: OnceLock<String> = OnceLock::new();
    let key = common::test_keys::key(0);
    if encrypted {
        ENC.get_or_init(|| {
            common::identity::encode_pem(key, Some(b"pw"))
                .unwrap()
                .to_string()
        })
        .clone()
    } else {
        PLAIN
            .get_or_init(|| common::identity::encode_pem(key, None).unwrap().to_string())
            .clone()
    }
}

#[test]
fn variant_indices_match_the_protocol_document() {
    fn tag<T: serde::Serialize>(v: &T) -> u32 {
        let b = encode_payload(v, DEFAULT_MAX_FRAME).unwrap();
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    let room = RoomId([0; 16]);
    let sealed = Sealed {
        iv: [0; 16],
        ciphertext: Bytes::new(),
        tag: [0; 32],
    };
    let signed = Signed {
        body: Bytes::new(),
        signature: Bytes::new(),
    };
    let mh = MessageHeader {
        room,
        epoch: 0,
        sender: Fingerprint([0; 32]),
        seq: 0,
        prev: [(0, 0); 3],
    };
    let ph = PrivateHeader {
        room,
        epoch: 0,
        sender: Fingerprint([0; 32]),
        recipient: Fingerprint([0; 32]),
        seq: 0,
        prev: [(0, 0); 3],
        ephemeral: [0; 32],
    };
    let ch = ChunkHeader {
        room,
        epoch: 0,
        sender: Fingerprint([0; 32]),
        transfer: [0; 16],
        index: 0,
    };
    let rh = RosterPartHeader {
        room,
        epoch: 0,
        index: 0,
        count: 0,
    };
    let envelopes = [
        Envelope::Announce(signed.clone()),
        Envelope::Knock {
            room,
            nonce: [0; 16],
        },
        Envelope::JoinRequest(JoinRequest {
            room,
            ephemeral: [0; 32],
            sealed: sealed.clone(),
        }),
        Envelope::Epoch(signed.clone()),
        Envelope::Roster(RosterPart {
            header: rh,
            sealed: sealed.clone(),
        }),
        Envelope::Notice(signed.clone()),
        Envelope::Message(ChatMessage {
            header: mh,
            sealed: sealed.clone(),
            signature: Bytes::new(),
        }),
        Envelope::Private(PrivateMessage {
            header: ph,
            sealed: sealed.clone(),
            signature: Bytes::new(),
        }),
        Envelope::FileChunk(FileChunk {
            header: ch.clone(),
            sealed: sealed.clone(),
        }),
        Envelope::PrivateChunk(FileChunk { header: ch, sealed }),
        Envelope::Beacon(signed.clone()),
    ];
    for (i, e) in envelopes.iter().enumerate() {
        assert_eq!(tag(e) as usize, i, "{e:?}");
    }
    let client = [
        ClientFrame::Hello(Hello { version: 1, room }),
        ClientFrame::Publish {
            to: None,
            payload: Bytes::new(),
        },
        ClientFrame::Ping(0),
        ClientFrame::Pong(0),
    ];
    for (i, f) in client.iter().enumerate() {
        assert_eq!(tag(f) as usize, i);
    }
    let relay = [
        RelayFrame::Welcome(Welcome {
            version: 1,
            conn_id: 0,
            peers: vec![],
            max_frame: 0,
        }),
        RelayFrame::Deliver {
            from: 0,
            payload: Bytes::new(),
        },
        RelayFrame::PeerJoined(0),
        RelayFrame::PeerLeft(0),
        RelayFrame::Ping(0),
        RelayFrame::Pong(0),
        RelayFrame::Error(RelayError {
            code: ErrorCode::GoingAway,
            message: String::new(),
        }),
    ];
    for (i, f) in relay.iter().enumerate() {
        assert_eq!(tag(f) as usize, i);
    }
    let codes = [
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
    ];
    for (i, c) in codes.iter().enumerate() {
        assert_eq!(tag(c) as usize, i);
    }
    let f = Fingerprint([0; 32]);
    let causes = [
        EpochCause::Opened,
        EpochCause::Joined(f),
        EpochCause::Left(f),
        EpochCause::Kicked(f),
        EpochCause::Rekey,
        EpochCause::Periodic,
    ];
    for (i, c) in causes.iter().enumerate() {
        assert_eq!(tag(c) as usize, i);
    }
    let offer = FileOffer {
        transfer: [0; 16],
        name: String::new(),
        size: 0,
        media_type: String::new(),
        sha256: [0; 32],
        chunk_size: 0,
    };
    let contents = [
        Content::Text(String::new()),
        Content::Typing(true),
        Content::Leave,
        Content::FileOffer(offer),
    ];
    for (i, c) in contents.iter().enumerate() {
        assert_eq!(tag(c) as usize, i);
    }
    for (i, k) in [NoticeKind::Denied, NoticeKind::Kicked, NoticeKind::Closed]
        .iter()
        .enumerate()
    {
        assert_eq!(tag(k) as usize, i);
    }
}

#[test]
fn typing_leave_and_short_lines_seal_to_the_same_length() {
    let sizes: Vec<usize> = [
        Content::Typing(true),
        Content::Typing(false),
        Content::Leave,
        Content::Text(String::new()),
        Content::Text("ok".into()),
        Content::Text("a line of thirty characters...".into()),
    ]
    .into_iter()
    .map(|c| {
        encode_payload(&ChatBody::padded(1_700_000_000_000, c), DEFAULT_MAX_FRAME)
            .unwrap()
            .len()
    })
    .collect();
    assert!(sizes.iter().all(|&s| s == 64), "{sizes:?}");
    let long = ChatBody::padded(0, Content::Text("x".repeat(100)));
    assert_eq!(encode_payload(&long, DEFAULT_MAX_FRAME).unwrap().len(), 128);
    let huge = ChatBody::padded(0, Content::Text("x".repeat(20_000)));
    assert_eq!(
        encode_payload(&huge, DEFAULT_MAX_FRAME).unwrap().len(),
        32 * 1024
    );
    assert_eq!(padded_size(0), 64);
    assert_eq!(padded_size(65), 128);
    assert_eq!(padded_size(16 * 1024), 16 * 1024);
    assert_eq!(padded_size(16 * 1024 + 1), 32 * 1024);
}

#[test]
fn join_requests_with_and_without_password_proof_have_the_same_size() {
    let info = |proof: Option<[u8; 32]>, name: &str| {
        JoinInfo {
            room: RoomId([1; 16]),
            join_key: [2; 32],
            ephemeral: [3; 32],
            name: name.into(),
            member_key: Bytes::from(vec![0u8; 422]),
            dh_key: [4; 32],
            password_proof: proof,
            sent_at_ms: 1,
            padding: Bytes::new(),
        }
        .pad()
    };
    let a = encode_payload(&info(None, "al"), DEFAULT_MAX_FRAME)
        .unwrap()
        .len();
    let b = encode_payload(
        &info(Some([9; 32]), "alexandra-the-great"),
        DEFAULT_MAX_FRAME,
    )
    .unwrap()
    .len();
    assert_eq!(a, b);
    assert_eq!(a, 1024);
}

#[test]
fn a_maximum_payload_fits_in_publish_and_deliver() {
    for max in [MIN_MAX_FRAME, 4096, DEFAULT_MAX_FRAME] {
        let payload = Bytes::from(vec![0u8; max_payload(max)]);
        let publish = ClientFrame::Publish {
            to: Some(u64::MAX),
            payload: payload.clone(),
        };
        let deliver = RelayFrame::Deliver {
            from: u64::MAX,
            payload,
        };
        assert!(encoded_len(&publish).unwrap() <= max);
        assert!(encoded_len(&deliver).unwrap() <= max);
        assert_eq!(
            encoded_len(&publish).unwrap(),
            max,
            "the overhead constant is exact"
        );
    }
}

#[test]
fn debug_output_never_shows_payloads_or_plaintext() {
    let f = ClientFrame::Publish {
        to: None,
        payload: Bytes::from_static(b"SECRETPAYLOAD"),
    };
    assert_eq!(format!("{f:?}"), "Publish { to: None, payload: 13 bytes }");
    let d = RelayFrame::Deliver {
        from: 3,
        payload: Bytes::from_static(b"SECRETPAYLOAD"),
    };
    assert!(!format!("{d:?}").contains("SECRET"));
    let body = ChatBody::padded(0, Content::Text("SECRET text".into()));
    assert!(!format!("{body:?}").contains("SECRET"), "{body:?}");
    let entry = RosterEntry {
        name: "SECRET name".into(),
        member_key: Bytes::new(),
        dh_key: [0; 32],
        admin: false,
    };
    let roster = Roster {
        room_name: "SECRET room".into(),
        cause: EpochCause::Rekey,
        members: vec![entry],
        padding: Bytes::new(),
    }
    .pad(64);
    assert!(!format!("{roster:?}").contains("SECRET"), "{roster:?}");
    let offer = FileOffer {
        transfer: [0; 16],
        name: "SECRET.pdf".into(),
        size: 1,
        media_type: "a/b".into(),
        sha256: [0; 32],
        chunk_size: 1,
    };
    assert!(!format!("{:?}", Content::FileOffer(offer)).contains("SECRET"));
}

#[test]
fn aad_labels_keep_envelope_types_apart() {
    let h = RosterPartHeader {
        room: RoomId([0; 16]),
        epoch: 1,
        index: 0,
        count: 1,
    };
    let a = aad(context::AAD_ROSTER, &h);
    let b = aad(context::AAD_MESSAGE, &h);
    assert_ne!(a, b);
    assert!(a.starts_with(b"teamchat/v1/aad/roster\0"));
    assert_eq!(a.len(), "teamchat/v1/aad/roster".len() + 1 + 28);
}
