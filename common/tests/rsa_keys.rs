//! Identity keys: wraps, signatures, fingerprints and safety codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use common::crypto::keys::{wrap_label, KeyError, PrivateKey, PublicKey, SafetyCode};
use common::crypto::seal::{open, seal, SessionKey};
use common::crypto::testing::unwrap_session_key as unwrap;
use common::crypto::{OsRng, VerifiedEpoch};
use common::test_keys::key;
use common::wire::{context, EpochBody, KeyWrap, Signed, DEFAULT_MAX_FRAME};
use common::{Fingerprint, RoomId};

const ROOM: RoomId = RoomId([0x10; 16]);

#[test]
fn wrap_unwrap_round_trip_gives_the_same_epoch_keys() {
    let member = key(0);
    let sk = SessionKey::generate(&mut OsRng);
    let wrapped = member.public().wrap_session_key(&ROOM, 5, &sk);
    assert_eq!(wrapped.len(), 384);
    let back = unwrap(member, &ROOM, 5, &wrapped).unwrap();
    let sealed = seal(&mut OsRng, &sk.epoch_keys(&ROOM, 5), b"h", b"hello");
    assert_eq!(
        *open(&back.epoch_keys(&ROOM, 5), b"h", &sealed).unwrap(),
        b"hello"
    );
}

#[test]
fn wrap_is_bound_to_room_epoch_and_recipient() {
    let sk = SessionKey::generate(&mut OsRng);
    let wrapped = key(0).public().wrap_session_key(&ROOM, 5, &sk);
    assert_eq!(
        unwrap(key(0), &ROOM, 6, &wrapped).err(),
        Some(KeyError::Unwrap)
    );
    assert_eq!(
        unwrap(key(0), &RoomId([0x11; 16]), 5, &wrapped).err(),
        Some(KeyError::Unwrap)
    );
    assert_eq!(
        unwrap(key(1), &ROOM, 5, &wrapped).err(),
        Some(KeyError::Unwrap)
    );
    let mut flipped = wrapped.clone();
    flipped[100] ^= 1;
    assert_eq!(
        unwrap(key(0), &ROOM, 5, &flipped).err(),
        Some(KeyError::Unwrap)
    );
    assert_eq!(
        unwrap(key(0), &ROOM, 5, &wrapped[1..]).err(),
        Some(KeyError::Unwrap)
    );
    assert_eq!(unwrap(key(0), &ROOM, 5, &[]).err(), Some(KeyError::Unwrap));
}

#[test]
fn wraps_are_randomised() {
    let sk = SessionKey::generate(&mut OsRng);
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
    let sig = k.sign(&mut OsRng, "teamchat/v1/message", b"payload");
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
    let s2 = k.sign(&mut OsRng, "ab", b"c");
    assert_eq!(k.public().verify("a", b"bc", &s2), bad);
}

#[test]
fn signing_is_randomised_pss() {
    let k = key(2);
    assert_ne!(k.sign(&mut OsRng, "c", b"m"), k.sign(&mut OsRng, "c", b"m"));
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
    let sk = SessionKey::generate(&mut OsRng);
    assert_eq!(format!("{sk:?}"), "SessionKey(..)");
}

fn epoch_for(members: &[&PrivateKey], epoch: u64, sk: &SessionKey) -> EpochBody {
    EpochBody {
        room: ROOM,
        epoch,
        run: [0; 32],
        sent_at_ms: 0,
        wraps: members
            .iter()
            .map(|m| KeyWrap {
                member: m.public().fingerprint(),
                request: [0; 32],
                since: 0,
                before: (0, 0),
                wrapped: m.public().wrap_session_key(&ROOM, epoch, sk).into(),
            })
            .collect(),
        roster: vec![[0; 32]],
        lines: vec![],
    }
}

#[test]
fn a_verified_epoch_unwraps_for_each_member_and_nobody_else() {
    let admin = key(4);
    let sk = SessionKey::generate(&mut OsRng);
    let body = epoch_for(&[key(0), key(1)], 9, &sk);
    let signed = admin
        .sign_body(&mut OsRng, context::EPOCH, &body, DEFAULT_MAX_FRAME)
        .unwrap();
    let pin = admin.public().fingerprint();
    let v = VerifiedEpoch::verify(admin.public(), &pin, &signed, DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(v.body(), &body);
    let sealed = seal(&mut OsRng, &sk.epoch_keys(&ROOM, 9), b"", b"m");
    for m in [key(0), key(1)] {
        let k = m.unwrap_epoch_key(&v).unwrap();
        assert_eq!(*open(&k.epoch_keys(&ROOM, 9), b"", &sealed).unwrap(), b"m");
    }
    assert_eq!(
        key(2).unwrap_epoch_key(&v).err(),
        Some(KeyError::NotAMember)
    );
}

#[test]
fn an_epoch_is_refused_before_any_decryption_unless_the_pinned_admin_signed_it() {
    let admin = key(4);
    let pin = admin.public().fingerprint();
    let sk = SessionKey::generate(&mut OsRng);
    let body = epoch_for(&[key(0)], 3, &sk);
    // Signed by someone else, presented with that someone's key: not the pin.
    let forged = key(5)
        .sign_body(&mut OsRng, context::EPOCH, &body, DEFAULT_MAX_FRAME)
        .unwrap();
    assert_eq!(
        VerifiedEpoch::verify(key(5).public(), &pin, &forged, DEFAULT_MAX_FRAME).err(),
        Some(KeyError::NotPinnedAdmin)
    );
    // Presented with the admin's key: the signature fails.
    assert_eq!(
        VerifiedEpoch::verify(admin.public(), &pin, &forged, DEFAULT_MAX_FRAME).err(),
        Some(KeyError::BadSignature)
    );
    // Signed by the admin under another context (e.g. a notice).
    let wrong_ctx = admin
        .sign_body(&mut OsRng, context::NOTICE, &body, DEFAULT_MAX_FRAME)
        .unwrap();
    assert_eq!(
        VerifiedEpoch::verify(admin.public(), &pin, &wrong_ctx, DEFAULT_MAX_FRAME).err(),
        Some(KeyError::BadSignature)
    );
    // A body swapped under a valid signature.
    let good = admin
        .sign_body(&mut OsRng, context::EPOCH, &body, DEFAULT_MAX_FRAME)
        .unwrap();
    let mut other = body.clone();
    other.epoch = 4;
    let swapped = Signed {
        body: common::wire::encode_payload(&other, DEFAULT_MAX_FRAME)
            .unwrap()
            .into(),
        signature: good.signature.clone(),
    };
    assert_eq!(
        VerifiedEpoch::verify(admin.public(), &pin, &swapped, DEFAULT_MAX_FRAME).err(),
        Some(KeyError::BadSignature)
    );
    // A validly signed body that is not an EpochBody.
    let junk = admin
        .sign_body(
            &mut OsRng,
            context::EPOCH,
            &"not an epoch",
            DEFAULT_MAX_FRAME,
        )
        .unwrap();
    assert_eq!(
        VerifiedEpoch::verify(admin.public(), &pin, &junk, DEFAULT_MAX_FRAME).err(),
        Some(KeyError::Malformed)
    );
}

#[test]
fn spki_with_a_non_standard_exponent_or_oversized_key_is_refused() {
    use rsa::pkcs8::EncodePublicKey;
    use rsa::traits::PublicKeyParts;
    let base = key(0).public().rsa().clone();
    let e3 = rsa::RsaPublicKey::new(base.n().clone(), rsa::BigUint::from(3u32)).unwrap();
    let der = e3.to_public_key_der().unwrap();
    assert_eq!(
        PublicKey::from_spki_der(der.as_bytes()).err(),
        Some(KeyError::BadExponent)
    );
    // A 4,160-bit modulus (any odd number will do for a public-key parse).
    let n = (rsa::BigUint::from(1u32) << 4159usize) + rsa::BigUint::from(1u32);
    let big = rsa::RsaPublicKey::new_with_max_size(n, rsa::BigUint::from(65_537u32), 8192).unwrap();
    let der = big.to_public_key_der().unwrap();
    assert!(PublicKey::from_spki_der(der.as_bytes()).is_err());
    assert_eq!(
        PublicKey::from_spki_der(&[0x30; 1025]).err(),
        Some(KeyError::NotRsaPublicKey)
    );
}

#[test]
fn wraps_made_by_either_implementation_unwrap_with_the_rsa_crate() {
    use common::crypto::keys::{oaep_encrypt, openssl_oaep_encrypt, wrap_label};
    let sk = SessionKey::generate(&mut OsRng);
    let label = wrap_label(&ROOM, 11);
    // The unwrapped key must open what the original key sealed.
    let secret = seal(&mut OsRng, &sk.epoch_keys(&ROOM, 11), b"", b"interop");
    let ossl = openssl::pkey::PKey::public_key_from_der(key(0).public().spki_der()).unwrap();
    let via_openssl = key(0).public().wrap_session_key(&ROOM, 11, &sk);
    assert_eq!(via_openssl.len(), 384);
    let k1 = unwrap(key(0), &ROOM, 11, &via_openssl).unwrap();
    assert_eq!(
        *open(&k1.epoch_keys(&ROOM, 11), b"", &secret).unwrap(),
        b"interop"
    );
    // The rsa crate's own encryption of the same message, for comparison.
    let k_bytes = [9u8; 32];
    let a = openssl_oaep_encrypt(&ossl, &label, &k_bytes).unwrap();
    let b = oaep_encrypt(&mut OsRng, key(0).public().rsa(), Some(&label), &k_bytes).unwrap();
    assert_ne!(a, b, "randomised");
    for w in [a, b] {
        let k = unwrap(key(0), &ROOM, 11, &w).unwrap();
        let s = seal(
            &mut OsRng,
            &SessionKey::from_bytes(k_bytes).epoch_keys(&ROOM, 11),
            b"",
            b"x",
        );
        assert_eq!(*open(&k.epoch_keys(&ROOM, 11), b"", &s).unwrap(), b"x");
    }
    // A wrong label does not unwrap.
    let c = openssl_oaep_encrypt(&ossl, &wrap_label(&ROOM, 12), &k_bytes).unwrap();
    assert!(unwrap(key(0), &ROOM, 11, &c).is_err());
}
