//! Authenticated headers and invites: round trips of arbitrary values.

use super::*;

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
