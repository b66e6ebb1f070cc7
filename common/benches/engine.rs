//! Admin CPU for a rekey of a 1,000-member room (goal: under 150 ms), with
//! key wraps through OpenSSL (the admin's path on Linux) beside the `rsa`
//! crate's own OAEP in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use common::crypto::keys::{oaep_encrypt, wrap_label};
use common::crypto::{random_array, OsRng, PublicKey};
use common::engine::admin::Admin;
use common::engine::{AdminConfig, Command};
use common::test_keys::shared;
use rsa::pkcs8::EncodePublicKey;

const MEMBERS: usize = 1000;

/// A distinct 3072-bit public key (a random odd modulus: wrapping needs no
/// private key, and generating 1,000 real ones would take a quarter hour).
fn fake_key() -> PublicKey {
    let mut n = random_array::<384>();
    n[0] |= 0x80;
    n[383] |= 1;
    let n = rsa::BigUint::from_bytes_be(&n);
    let k = rsa::RsaPublicKey::new(n, rsa::BigUint::from(65_537u32)).unwrap();
    PublicKey::from_spki_der(k.to_public_key_der().unwrap().as_bytes()).unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this once quickly; `cargo bench` measures.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 1 } else { 7 };
    let members: Vec<PublicKey> = (0..if quick { 50 } else { MEMBERS })
        .map(|_| fake_key())
        .collect();
    let room = common::crypto::random_room_id();
    let cfg = AdminConfig {
        room,
        room_name: "large".into(),
        admin_name: "admin".into(),
        password: None,
        roster: Default::default(),
        rekey_after_messages: 0,
        rekey_after_ms: 0,
        state: Default::default(),
    };
    let mut admin = Admin::new(cfg, shared(4));
    for (i, k) in members.iter().enumerate() {
        admin.seat_for_benchmark(&format!("member {i}"), k.clone(), [1; 32]);
    }
    let mut times = Vec::new();
    let mut bytes = 0;
    for r in 0..rounds {
        let t = Instant::now();
        let actions = admin.handle_command(1_700_000_000_000 + r as u64, Command::Rekey);
        times.push(t.elapsed());
        bytes = actions.len();
    }
    let rekey = median(times);

    // The same wraps through the rsa crate, for comparison.
    let label = wrap_label(&room, 1);
    let t = Instant::now();
    for k in &members {
        let _ = oaep_encrypt(&mut OsRng, k.rsa(), Some(&label), &[7u8; 32]).unwrap();
    }
    let rsa_wraps = t.elapsed();

    println!(
        "rekey of a room of {} members + admin, median of {rounds}:",
        members.len()
    );
    println!(
        "  admin CPU per rekey (wraps via OpenSSL, sign, roster seal, install): {:>8.1} ms",
        rekey.as_secs_f64() * 1e3
    );
    println!(
        "  the same number of wraps via the rsa crate alone:                   {:>8.1} ms",
        rsa_wraps.as_secs_f64() * 1e3
    );
    println!(
        "  ratio rsa-crate wraps / whole rekey:                                  {:>6.1}x",
        rsa_wraps.as_secs_f64() / rekey.as_secs_f64()
    );
    println!("  frames sent per rekey: {bytes}");
    if !quick {
        println!(
            "goal: rekey of 1,000 members under 150 ms of admin CPU: {}",
            if rekey < Duration::from_millis(150) {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
