//! Known answers from KAT.md and the sealed format.

use super::*;

// Known answers from common/tests/KAT.md
// ---------------------------------------------------------------------------

/// Each known answer below must appear, as written, in `KAT.md`: the
/// constants cannot drift from the sources the file names.
fn require_in_kat_md(values: &[&str]) {
    for v in values {
        assert!(KAT_MD.contains(v), "{v} is not in common/tests/KAT.md");
    }
}

/// RFC 4231 (M. Nystrom, 2005), section 4.2 (test case 1) and 4.3 (test
/// case 2), HMAC-SHA-256; copied from `KAT.md`.
#[test]
fn kat_hmac_sha256_rfc4231() {
    require_in_kat_md(&[
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ]);
    let cases: [(&str, &[u8], &[u8], &str); 2] = [
        (
            "RFC 4231 test case 1",
            &[0x0b; 20],
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            "RFC 4231 test case 2",
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
    ];
    for (what, key, data, expected) in cases {
        let expected = unhex(expected);
        assert_eq!(hmac_sha256(key, data).to_vec(), expected, "{what}");
        assert!(hmac_sha256_verify(key, data, &expected), "{what}: verify");
        let mut wrong = expected.clone();
        wrong[31] ^= 1;
        assert!(!hmac_sha256_verify(key, data, &wrong), "{what}: bad tag");
    }
    println!("KAT RFC 4231 HMAC-SHA-256: 2 run (cases 1 and 2)");
}

/// NIST SP 800-38A (M. Dworkin, 2001), appendix F.2.5 CBC-AES256.Encrypt;
/// copied from `KAT.md` (which took them from OpenSSL's
/// `evpciph_aes_common.txt` and checked them against Go's `cbc_aes_test.go`).
const NIST_KEY: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
const NIST_IV: &str = "000102030405060708090a0b0c0d0e0f";
const NIST_PT: &str = "6bc1bee22e409f96e93d7e117393172a\
                       ae2d8a571e03ac9c9eb76fac45af8e51\
                       30c81c46a35ce411e5fbc1191a0a52ef\
                       f69f2445df4f9b17ad2b417be66c3710";
const NIST_CT: &str = "f58c4c04d6e5f1ba779eabfb5f7bfbd6\
                       9cfc4e967edb808d679f777bc6702c7d\
                       39f23369a9d9bacfa530e26304231461\
                       b2eb05e2c39be9fcda6c19078c6a9d1b";
/// Not part of SP 800-38A: the PKCS#7 padding block (16 × 0x10) that follows
/// the NIST ciphertext under the same key, computed on 2026-11-23 with
/// `openssl enc -aes-256-cbc -K <key> -iv <iv>` (OpenSSL 3.0) over the NIST
/// plaintext.
const PAD_BLOCK_CT: &str = "3f461796d6b0d6b2e0c2a72b4d80e644";

#[test]
fn kat_aes256_cbc_sp800_38a() {
    require_in_kat_md(&[NIST_KEY, NIST_IV, PAD_BLOCK_CT]);
    for block in 0..4 {
        let at = block * 32..block * 32 + 32;
        require_in_kat_md(&[&NIST_PT[at.clone()], &NIST_CT[at]]);
    }
    let key: [u8; 32] = arr(&unhex(NIST_KEY));
    let iv: [u8; 16] = arr(&unhex(NIST_IV));
    let pt = unhex(NIST_PT);
    let nist_ct = unhex(NIST_CT);

    // The crate pads with PKCS#7: 4 NIST blocks plus one block of padding.
    let ours = cbc_encrypt(&key, &iv, &pt);
    assert_eq!(ours.len(), 80);
    assert_eq!(
        hex::encode(&ours[..64]),
        NIST_CT,
        "SP 800-38A F.2.5 blocks 1-4"
    );

    // The fifth block is the encryption of 16 × 0x10 chained from block 4.
    let chain_iv: [u8; 16] = arr(&nist_ct[48..]);
    let pad_block = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &chain_iv.into())
        .encrypt_padded_vec_mut::<NoPadding>(&[0x10; 16]);
    assert_eq!(ours[64..], pad_block[..], "PKCS#7 padding block");
    assert_eq!(
        hex::encode(&ours[64..]),
        PAD_BLOCK_CT,
        "OpenSSL padding block"
    );

    // Raw CBC decryption of the NIST ciphertext (no padding) gives the
    // plaintext, as does the crate's decryption of NIST ct ‖ padding block.
    let raw = cbc::Decryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<NoPadding>(&nist_ct)
        .unwrap();
    assert_eq!(raw, pt, "SP 800-38A F.2.6 (decrypt)");
    let mut padded = nist_ct.clone();
    padded.extend_from_slice(&unhex(PAD_BLOCK_CT));
    assert_eq!(cbc_decrypt(&key, &iv, &padded), Ok(pt.clone()));

    // Without the padding block the last plaintext byte is 0x10 but the
    // block is not sixteen 0x10s: PKCS#7 unpadding must refuse it.
    assert_eq!(cbc_decrypt(&key, &iv, &nist_ct), Err(OpenError));
    println!("KAT NIST SP 800-38A F.2.5 AES-256-CBC: 1 run (4 blocks, encrypt and decrypt)");
}

// ---------------------------------------------------------------------------
// The sealed format
// ---------------------------------------------------------------------------

/// Independent implementation of the seal, from the format's definition:
/// ciphertext = AES-256-CBC-PKCS7(enc, iv, pt),
/// tag = HMAC-SHA256(mac, u32be(len(aad)) ‖ aad ‖ iv ‖ ciphertext).
fn reference_seal(
    enc: &[u8; 32],
    mac: &[u8; 32],
    aad: &[u8],
    iv: &[u8; 16],
    pt: &[u8],
) -> (Vec<u8>, [u8; 32]) {
    let ct = cbc::Encryptor::<aes::Aes256>::new(enc.into(), iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(pt);
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(mac).unwrap();
    m.update(&u32::try_from(aad.len()).unwrap().to_be_bytes());
    m.update(aad);
    m.update(iv);
    m.update(&ct);
    (ct, m.finalize().into_bytes().into())
}

#[test]
fn kat_seal_format() {
    require_in_kat_md(&[
        PAD_BLOCK_CT,
        "2da5cf9b92d3e52c061d737e109150917690020a95922acd830ba018ea16b00e",
    ]);
    let enc: [u8; 32] = arr(&unhex(NIST_KEY));
    let mac: [u8; 32] = std::array::from_fn(|i| 0x20 + i as u8);
    let iv: [u8; 16] = arr(&unhex(NIST_IV));
    let pt = unhex(NIST_PT);
    let aad = b"teamchat/v1 KAT header";
    let keys = SealKeys::from_parts(enc, mac);

    // 1. Against an independent HMAC over the NIST ciphertext, hard-coded:
    //    python3 hmac.new(bytes(range(0x20, 0x40)), struct.pack('>I', 22)
    //    + aad + iv + ct, hashlib.sha256), with ct from `openssl enc`
    //    (NIST_CT ‖ PAD_BLOCK_CT), computed on 2026-11-23.
    let sealed = seal_with_iv(&keys, aad, iv, &pt);
    assert_eq!(sealed.iv, iv);
    assert_eq!(
        hex::encode(&sealed.ciphertext),
        format!("{NIST_CT}{PAD_BLOCK_CT}")
    );
    assert_eq!(
        hex::encode(sealed.tag),
        "2da5cf9b92d3e52c061d737e109150917690020a95922acd830ba018ea16b00e"
    );
    assert_eq!(
        open(&keys, aad, &sealed).map(|p| p.to_vec()),
        Ok(pt.clone())
    );

    // 2. Against the reference built from `cbc`/`aes`/`hmac`/`sha2`, over
    //    lengths around block boundaries and empty / non-empty AAD.
    let mut n = 1;
    for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 64, 100] {
        for aad in [&b""[..], b"h", &[0xa5; 300][..]] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let (ct, tag) = reference_seal(&enc, &mac, aad, &iv, &pt);
            let sealed = seal_with_iv(&keys, aad, iv, &pt);
            assert_eq!(
                sealed.ciphertext[..],
                ct[..],
                "len {len}, aad {}",
                aad.len()
            );
            assert_eq!(sealed.tag, tag, "len {len}, aad {}", aad.len());
            assert_eq!(
                open(&keys, aad, &sealed).map(|p| p.to_vec()),
                Ok(pt),
                "len {len}"
            );
            n += 1;
        }
    }

    // 3. The tag binds the AAD and its length, the key halves are not
    //    interchangeable, and a tampered tag is refused.
    assert_eq!(
        open(&keys, b"teamchat/v1 KAT headeR", &sealed),
        Err(OpenError)
    );
    assert_eq!(open(&keys, b"", &sealed), Err(OpenError));
    assert_eq!(
        open(&SealKeys::from_parts(mac, enc), aad, &sealed),
        Err(OpenError)
    );
    let mut bad_tag = sealed.tag;
    bad_tag[0] ^= 0x80;
    let tampered = Sealed {
        iv: sealed.iv,
        ciphertext: sealed.ciphertext.clone(),
        tag: bad_tag,
    };
    assert_eq!(open(&keys, aad, &tampered), Err(OpenError));
    println!(
        "KAT sealed format: {n} seals checked (1 hard-coded, {} against the reference)",
        n - 1
    );
}
