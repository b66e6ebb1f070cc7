//! Identity key files: round trips, passphrases, damaged files, sizes and
//! permissions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::identity::{self, IdentityError, IdentityWarning};
use common::test_keys::key;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn plain_round_trip_writes_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id.pem");
    identity::save(&path, key(0), None).unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
    let loaded = identity::load(&path, None).unwrap();
    assert_eq!(loaded.key.public(), key(0).public());
    assert!(loaded.warnings.is_empty());
}

#[test]
fn encrypted_round_trip_and_wrong_or_missing_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id.pem");
    identity::save(&path, key(1), Some(b"correct horse battery staple")).unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));

    let loaded = identity::load(&path, Some(b"correct horse battery staple")).unwrap();
    assert_eq!(loaded.key.public(), key(1).public());

    let wrong = identity::load(&path, Some(b"Correct horse battery staple")).unwrap_err();
    assert!(
        matches!(wrong, IdentityError::WrongPassphrase(_)),
        "{wrong}"
    );
    assert!(wrong.to_string().contains("wrong passphrase"));

    let missing = identity::load(&path, None).unwrap_err();
    assert!(
        matches!(missing, IdentityError::PassphraseRequired(_)),
        "{missing}"
    );
}

#[test]
fn encrypted_file_is_pbes2_pbkdf2_sha256_aes256cbc() {
    use rsa::pkcs8::der::Decode;
    use rsa::pkcs8::EncryptedPrivateKeyInfo;
    let pem = identity::encode_pem(key(0), Some(b"pw")).unwrap();
    let (_, doc) = rsa::pkcs8::der::SecretDocument::from_pem(&pem).unwrap();
    let info = EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).unwrap();
    let pbes2 = info.encryption_algorithm.pbes2().expect("PBES2");
    let kdf = pbes2.kdf.pbkdf2().expect("PBKDF2");
    assert_eq!(kdf.iteration_count, identity::PBKDF2_ITERATIONS);
    assert_eq!(kdf.salt.len(), 16);
    assert_eq!(kdf.prf, rsa::pkcs8::pkcs5::pbes2::Pbkdf2Prf::HmacWithSha256);
    assert_eq!(
        pbes2.encryption.oid(),
        rsa::pkcs8::pkcs5::pbes2::AES_256_CBC_OID
    );
}

#[test]
fn missing_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let err = identity::load(&dir.path().join("nope.pem"), None).unwrap_err();
    assert!(matches!(err, IdentityError::NotFound(_)), "{err}");
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn truncated_or_garbage_pem_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read_to_string({
        let p = dir.path().join("good.pem");
        identity::save(&p, key(0), None).unwrap();
        p
    })
    .unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        (
            "no end line",
            good.replace("-----END PRIVATE KEY-----", "").into_bytes(),
        ),
        ("garbage text", b"hello world, not a key\n".to_vec()),
        ("binary", vec![0xff, 0xfe, 0x00, 0x80, 0x90]),
        (
            "bad base64",
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"
                .as_bytes()
                .to_vec(),
        ),
        (
            "valid base64, not DER",
            "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n"
                .as_bytes()
                .to_vec(),
        ),
        (
            "certificate",
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"
                .as_bytes()
                .to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let p = dir.path().join(format!("{}.pem", name.replace(' ', "_")));
        fs::write(&p, &bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let err = identity::load(&p, None).unwrap_err();
        assert!(
            matches!(err, IdentityError::NotPkcs8 { .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains(&p.display().to_string()),
            "{name}: {err}"
        );
    }
}

#[test]
fn pkcs1_file_gets_a_conversion_hint() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pkcs1.pem");
    let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    fs::write(
        &p,
        small
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let err = identity::load(&p, None).unwrap_err();
    assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
}

#[test]
fn rsa_2048_key_is_refused() {
    use rsa::pkcs8::EncodePrivateKey;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("small.pem");
    let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    fs::write(
        &p,
        small
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let err = identity::load(&p, None).unwrap_err();
    assert!(matches!(err, IdentityError::BadKey { .. }), "{err}");
    assert!(err.to_string().contains("2048 bits refused"), "{err}");
}

#[test]
fn non_rsa_pkcs8_key_is_refused_as_wrong_type() {
    // An Ed25519 PKCS#8 key (RFC 8410 section 10.3 example).
    let pem = "-----BEGIN PRIVATE KEY-----\n\
               MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
               -----END PRIVATE KEY-----\n";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ed25519.pem");
    fs::write(&p, pem).unwrap();
    let err = identity::load(&p, None).unwrap_err();
    match err {
        IdentityError::WrongKeyType { oid, .. } => assert_eq!(oid, "1.3.101.112"),
        other => panic!("expected WrongKeyType, got {other}"),
    }
}

#[test]
fn loose_permissions_load_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("id.pem");
    identity::save(&p, key(0), None).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = identity::load(&p, None).unwrap();
    assert_eq!(
        loaded.warnings,
        vec![IdentityWarning::LoosePermissions {
            path: p.clone(),
            mode: 0o644
        }]
    );
    assert!(loaded.warnings[0].to_string().contains("chmod 600"));
}

#[test]
fn saving_over_a_world_readable_file_leaves_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("id.pem");
    fs::write(&p, "old").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
    identity::save(&p, key(0), None).unwrap();
    assert_eq!(mode(&p), 0o600);
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn oversized_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.pem");
    fs::write(&p, vec![b'A'; 200_000]).unwrap();
    let err = identity::load(&p, None).unwrap_err();
    assert!(matches!(err, IdentityError::TooLarge(_)), "{err}");
}

#[test]
fn excessive_kdf_cost_is_refused_without_trying() {
    use rsa::pkcs8::pkcs5::pbes2;
    use rsa::pkcs8::LineEnding;
    // An encrypted file claiming 50 million PBKDF2 iterations (minutes of work).
    let salt = [1u8; 16];
    let iv = [2u8; 16];
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(50_000_000, &salt, &iv).unwrap();
    // Encrypting with that many iterations would itself take minutes, so
    // write the parameters around a dummy ciphertext instead.
    let enc = rsa::pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: params.into(),
        encrypted_data: &[0u8; 64],
    };
    let pem = rsa::pkcs8::der::EncodePem::to_pem(&enc, LineEnding::LF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("costly.pem");
    fs::write(&p, pem).unwrap();
    let start = std::time::Instant::now();
    let err = identity::load(&p, Some(b"pw")).unwrap_err();
    assert!(matches!(err, IdentityError::ExcessiveCost(_)), "{err}");
    assert!(start.elapsed().as_secs() < 5);
}

#[test]
fn scrypt_encrypted_files_are_refused_without_trying() {
    use rsa::pkcs8::pkcs5::{pbes2, scrypt};
    use rsa::pkcs8::LineEnding;
    // N = 2^20, r = 16, p = 4 would ask scrypt for gigabytes of memory.
    let params = scrypt::Params::new(20, 16, 4, 32).unwrap();
    let (salt, iv) = ([1u8; 16], [2u8; 16]);
    let enc = rsa::pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: pbes2::Parameters::scrypt_aes256cbc(params, &salt, &iv)
            .unwrap()
            .into(),
        encrypted_data: &[0u8; 64],
    };
    let pem = rsa::pkcs8::der::EncodePem::to_pem(&enc, LineEnding::LF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("scrypt.pem");
    fs::write(&p, pem).unwrap();
    let err = identity::load(&p, Some(b"pw")).unwrap_err();
    assert!(matches!(err, IdentityError::ExcessiveCost(_)), "{err}");
}

#[test]
fn a_fifo_is_refused_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fifo.pem");
    let made = std::process::Command::new("mkfifo").arg(&p).status();
    if !matches!(made, Ok(s) if s.success()) {
        println!("mkfifo unavailable; skipped");
        return;
    }
    let err = identity::load(&p, None).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn a_damaged_private_key_says_so() {
    use rsa::pkcs1::der::{Decode, Encode};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{der::asn1::UintRef, LineEnding};
    // Flip one bit of the first prime inside a valid key's DER, keeping the
    // encoding well-formed: the key parses but its parts no longer fit.
    let pem = identity::encode_pem(key(0), None).unwrap();
    let k = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem).unwrap();
    let pkcs1 = k.to_pkcs1_der().unwrap();
    let mut parsed = rsa::pkcs1::RsaPrivateKey::from_der(pkcs1.as_bytes()).unwrap();
    let mut p = parsed.prime1.as_bytes().to_vec();
    let last = p.len() - 1;
    p[last] ^= 2;
    parsed.prime1 = UintRef::new(&p).unwrap();
    let damaged_pkcs1 = parsed.to_der().unwrap();
    let info = rsa::pkcs8::PrivateKeyInfo::new(rsa::pkcs1::ALGORITHM_ID, &damaged_pkcs1);
    let doc = rsa::pkcs8::SecretDocument::try_from(info).unwrap();
    let text = doc.to_pem("PRIVATE KEY", LineEnding::LF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.pem");
    fs::write(&path, text.as_bytes()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let err = identity::load(&path, None).unwrap_err();
    assert!(err.to_string().contains("inconsistent"), "{err}");
}
