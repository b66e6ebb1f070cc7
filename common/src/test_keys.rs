//! Pre-generated RSA-3072 test identities, for tests only (feature
//! `test-support`).
//!
//! Generating an RSA-3072 key takes about a second; tests need a handful.
//! The first call generates the keys and caches them as PKCS#8 files (mode
//! 0600) under `target/test-keys/`, which git ignores; later runs load them.
//! They are throwaway keys made on this machine, never committed, never a
//! real user's.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::crypto::{PrivateKey, MIN_RSA_BITS};
use crate::identity;

/// How many distinct test keys exist.
pub const COUNT: usize = 8;

static KEYS: [OnceLock<Arc<PrivateKey>>; COUNT] = [const { OnceLock::new() }; COUNT];

fn cache_dir() -> PathBuf {
    match std::env::var_os("TEAMCHAT_TEST_KEY_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/test-keys")),
    }
}

/// Test key number `n` (0-based, below [`COUNT`]).
///
/// # Panics
/// If `n >= COUNT` or a key can be neither loaded nor generated: this is test
/// support, where a panic is the right report.
pub fn key(n: usize) -> &'static PrivateKey {
    shared_ref(n)
}

/// How the engine describes the holder of test key `n` named `name` (for
/// feeding a window or a printer the events a room would give).
pub fn member_info(n: usize, name: &str, admin: bool) -> crate::engine::MemberInfo {
    let public = key(n).public();
    crate::engine::MemberInfo {
        name: name.into(),
        fingerprint: public.fingerprint(),
        safety_code: public.safety_code().to_string(),
        admin,
    }
}

/// Test key number `n`, shared (engines take an `Arc`).
pub fn shared(n: usize) -> Arc<PrivateKey> {
    Arc::clone(shared_ref(n))
}

#[allow(clippy::panic, clippy::expect_used)]
fn shared_ref(n: usize) -> &'static Arc<PrivateKey> {
    assert!(n < COUNT, "only {COUNT} test keys exist");
    KEYS[n].get_or_init(|| Arc::new(load_or_make(n)))
}

#[allow(clippy::panic, clippy::expect_used)]
fn load_or_make(n: usize) -> PrivateKey {
    let dir = cache_dir();
    let path = dir.join(format!("test-key-{n}.pem"));
    if let Ok(loaded) = identity::load(&path, None) {
        return loaded.key;
    }
    let key = PrivateKey::generate(MIN_RSA_BITS).expect("generate test key");
    // A failed cache write only costs time on the next run.
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = identity::save(&path, &key, None);
    }
    key
}
