//! Identity keys: wraps, signatures, fingerprints and safety codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use common::crypto::keys::{wrap_label, KeyError, PrivateKey, PublicKey, SafetyCode};
use common::crypto::seal::{open, seal, SessionKey};
use common::test_keys::key;
use common::{Fingerprint, RoomId};

const ROOM: RoomId = RoomId([0x10; 16]);

#[test]
fn wrap_unwrap_round_trip_gives_the_same_epoch_keys() {
    let member = key(0);
    let sk = SessionKey::generate();
    let wrapped = member.public().wrap_session_key(&ROOM, 5, &sk);
    assert_eq!(wrapped.len(), 384);
    let back = member.unwrap_session_key(&ROOM, 5, &wrapped).unwrap();
    let sealed = seal(&sk.epoch_keys(&ROOM, 5), b"h", b"hello");
    assert_eq!(
        open(&back.epoch_keys(&ROOM, 5), b"h", &sealed).unwrap(),
        b"hello"
    );
}

#[test]
fn wrap_is_bound_to_room_epoch_and_recipient() {
    let sk = SessionKey::generate();
    let wrapped = key(0).public().wrap_session_key(&ROOM, 5, &sk);
    assert_eq!(
        key(0).unwrap_session_key(&ROOM, 6, &wrapped).err(),
        Some(KeyError::Unwrap)
    );
    assert_eq!(
        key(0)
            .unwrap_session_key(&RoomId([0x11; 16]), 5, &wrapped)
            .err(),
        Some(KeyError::Unwrap)
    );
    assert_eq!(
        key(1).unwrap_session_key(&ROOM, 5, &wrapped).err(),
        Some(KeyError::Unwrap)
    );
    let mut flipped = wrapped.clone();
    flipped[100] ^= 1;
    assert_eq!(
        key(0).unwrap_session_key(&ROOM, 5, &flipped).err(),
        Some(KeyError::Unwrap)
    );
    assert_eq!(
        key(0).unwrap_session_key(&ROOM, 5, &wrapped[1..]).err(),
        Some(KeyError::Unwrap)
    );
    assert_eq!(
        key(0).unwrap_session_key(&ROOM, 5, &[]).err(),
        Some(KeyError::Unwrap)
    );
}

#[test]
fn wraps_are_randomised() {
    let sk = SessionKey::generate();
    let a = key(0).public().wrap_session_key(&ROOM, 1, &sk);
    let b = key(0).public().wrap_session_key(&ROOM, 1, &sk);
    assert_ne!(a, b);
}

#[test]
fn wrap_label_is_text_binding_room_and_epoch() {
    assert_eq!(
        wrap_label(&RoomId([0xab; 16]), 42),
        format!("teamchat/v1/wrap room={} epoch=42", "ab".repeat(16))
    );
}

#[test]
fn signatures_verify_only_for_same_key_context_and_message() {
    let k = key(2);
    let sig = k.sign("teamchat/v1/message", b"payload");
    assert_eq!(sig.len(), 384);
    k.public()
        .verify("teamchat/v1/message", b"payload", &sig)
        .unwrap();
    let bad = Err(KeyError::BadSignature);
    assert_eq!(
        k.public().verify("teamchat/v1/epoch", b"payload", &sig),
        bad
    );
    assert_eq!(
        k.public().verify("teamchat/v1/message", b"payloaD", &sig),
        bad
    );
    assert_eq!(
        key(3)
            .public()
            .verify("teamchat/v1/message", b"payload", &sig),
        bad
    );
    for i in [0, 1, 191, 383] {
        let mut s = sig.clone();
        s[i] ^= 0x80;
        assert_eq!(
            k.public().verify("teamchat/v1/message", b"payload", &s),
            bad,
            "byte {i}"
        );
    }
    assert_eq!(
        k.public()
            .verify("teamchat/v1/message", b"payload", &sig[..383]),
        bad
    );
    assert_eq!(
        k.public().verify("teamchat/v1/message", b"payload", &[]),
        bad
    );
    // The context separator keeps ("ab", "c") apart from ("a", "bc").
    let s2 = k.sign("ab", b"c");
    assert_eq!(k.public().verify("a", b"bc", &s2), bad);
}

#[test]
fn signing_is_randomised_pss() {
    let k = key(2);
    assert_ne!(k.sign("c", b"m"), k.sign("c", b"m"));
}

#[test]
fn spki_round_trips_and_fingerprint_is_its_sha256() {
    use sha2::{Digest, Sha256};
    let pk = key(0).public();
    let parsed = PublicKey::from_spki_der(pk.spki_der()).unwrap();
    assert_eq!(&parsed, pk);
    assert_eq!(parsed.fingerprint(), pk.fingerprint());
    let expect: [u8; 32] = Sha256::digest(pk.spki_der()).into();
    assert_eq!(pk.fingerprint(), Fingerprint(expect));
    assert_eq!(pk.bits(), 3072);
}

#[test]
fn spki_parsing_refuses_garbage_small_keys_and_trailing_bytes() {
    use rsa::pkcs8::EncodePublicKey;
    assert_eq!(
        PublicKey::from_spki_der(&[]).err(),
        Some(KeyError::NotRsaPublicKey)
    );
    assert_eq!(
        PublicKey::from_spki_der(&[0x30; 500]).err(),
        Some(KeyError::NotRsaPublicKey)
    );
    let mut trailing = key(0).public().spki_der().to_vec();
    trailing.push(0);
    assert_eq!(
        PublicKey::from_spki_der(&trailing).err(),
        Some(KeyError::NotRsaPublicKey)
    );
    let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let der = small.to_public_key().to_public_key_der().unwrap();
    assert_eq!(
        PublicKey::from_spki_der(der.as_bytes()).err(),
        Some(KeyError::BadSize { bits: 1024 })
    );
}

#[test]
fn generation_refuses_sizes_outside_3072_to_4096() {
    assert_eq!(
        PrivateKey::generate(2048).err(),
        Some(KeyError::BadSize { bits: 2048 })
    );
    assert_eq!(
        PrivateKey::generate(8192).err(),
        Some(KeyError::BadSize { bits: 8192 })
    );
}

#[test]
fn safety_code_is_twelve_groups_of_five_digits_and_differs_per_key() {
    let a = key(0).public().safety_code();
    let b = key(1).public().safety_code();
    assert_ne!(a, b);
    let text = a.to_string();
    let groups: Vec<&str> = text.split(' ').collect();
    assert_eq!(groups.len(), 12);
    assert!(groups
        .iter()
        .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit())));
    assert_eq!(format!("{a:#}").lines().count(), 3);
    assert_eq!(a, SafetyCode::of(&key(0).public().fingerprint()));
}

#[test]
fn safety_code_known_answer() {
    // SHA-512("teamchat/v1/safety-code" ‖ 32 zero bytes), 5-byte chunks mod 1e5;
    // computed independently with Python's hashlib (see docs/PROTOCOL.md).
    let code = SafetyCode::of(&Fingerprint([0; 32]));
    assert_eq!(
        code.to_string(),
        include_str!("data/safety_code_zero.txt").trim()
    );
}

#[test]
fn debug_output_shows_no_key_material() {
    let k = key(0);
    let dbg = format!("{k:?}");
    assert!(dbg.starts_with("PrivateKey(rsa3072, "), "{dbg}");
    assert!(dbg.len() < 60, "{dbg}");
    let sk = SessionKey::generate();
    assert_eq!(format!("{sk:?}"), "SessionKey(..)");
}
