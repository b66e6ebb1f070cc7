//! Crypto benchmarks: seal/open at 1 KiB and 16 KiB, and the RSA-3072
//! operations. `scripts/bench-crypto.sh` runs these beside `openssl speed`
//! and prints the ratios recorded in docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use common::crypto::seal::{open, seal, SessionKey};
use common::crypto::testing::unwrap_session_key;
use common::crypto::OsRng;
use common::test_keys::key;
use common::RoomId;

const ROOM: RoomId = RoomId([1; 16]);

fn symmetric(c: &mut Criterion) {
    let keys = SessionKey::generate(&mut OsRng).epoch_keys(&ROOM, 1);
    let aad = [0x5au8; 64];
    for (name, len) in [("1KiB", 1024usize), ("16KiB", 16 * 1024)] {
        let pt = vec![0x42u8; len];
        let sealed = seal(&mut OsRng, &keys, &aad, &pt);

        let mut g = c.benchmark_group("seal");
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| {
            b.iter(|| seal(&mut OsRng, &keys, black_box(&aad), black_box(&pt)))
        });
        g.finish();

        let mut g = c.benchmark_group("open");
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| {
            b.iter(|| open(&keys, black_box(&aad), black_box(&sealed)).unwrap())
        });
        g.finish();
    }
}

fn rsa3072(c: &mut Criterion) {
    let k = key(0);
    let sk = SessionKey::generate(&mut OsRng);
    let wrapped = k.public().wrap_session_key(&ROOM, 1, &sk);
    let msg = [0x33u8; 256];
    let sig = k.sign(&mut OsRng, "bench", &msg);

    let mut g = c.benchmark_group("rsa3072");
    g.sample_size(30);
    g.bench_function("wrap", |b| {
        b.iter(|| k.public().wrap_session_key(&ROOM, 1, &sk))
    });
    g.bench_function("unwrap", |b| {
        b.iter(|| unwrap_session_key(k, &ROOM, 1, black_box(&wrapped)).unwrap())
    });
    g.bench_function("sign", |b| {
        b.iter(|| k.sign(&mut OsRng, "bench", black_box(&msg)))
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            k.public()
                .verify("bench", black_box(&msg), black_box(&sig))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, symmetric, rsa3072);
criterion_main!(benches);
