//! Variant indices, equal sizes, maximum payloads, Debug and AAD labels as
//! docs/PROTOCOL.md gives them.

use super::*;

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
        RelayFrame::Ack(Ack::default()),
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
    let resent = Content::Resent(Resent {
        epoch: 0,
        seq: 0,
        sent_at_ms: 0,
        text: String::new(),
    });
    assert_eq!(
        tag(&resent),
        6,
        "Resent is content variant 6 (PROTOCOL.md §7)"
    );
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
