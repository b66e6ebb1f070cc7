//! The backplane fuzz target's corpus in the ordinary test suite:
//! `committed_corpus_replays_cleanly` runs every input under
//! `fuzz/corpus/backplane/` through `relay::hub::fuzz_backplane`, the
//! function the libFuzzer target calls; `record_seed_corpus` (ignored;
//! `scripts/fuzz.sh --record`) writes the seeds: runs of real backplane
//! messages of every kind, as relays sharing a room send them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use relay::backplane::{Envelope, Message};
use relay::hub::fuzz_backplane;
use wire::encode_payload;
use wire::RoomId;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/backplane")
}

#[test]
fn committed_corpus_replays_cleanly() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no backplane corpus committed");
    for f in &files {
        fuzz_backplane(&std::fs::read(f).unwrap());
    }
    println!("fuzz corpus backplane: {} inputs replayed", files.len());
}

/// What the target reads: each message with its `u16` length before it.
fn run(envs: &[Envelope]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in envs {
        let b = encode_payload(e, 1 << 16).unwrap();
        out.extend_from_slice(&u16::try_from(b.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&b);
    }
    out
}

#[test]
#[ignore = "writes fuzz/corpus/backplane; run by scripts/fuzz.sh --record"]
fn record_seed_corpus() {
    let room = RoomId([0x42; 16]);
    let env = |relay: u32, seq: u64, message: Message| Envelope {
        relay,
        room,
        seq,
        message,
    };
    let them = |n: u64| (7u64 << 32) | n;
    let deliver = |from, to| Message::Deliver {
        from,
        to,
        payload: Bytes::from_static(b"sealed bytes the relay cannot read"),
        bulk: false,
    };
    let runs = [
        vec![env(7, 1, Message::Hello)],
        vec![
            env(7, 1, Message::Hello),
            env(7, 2, Message::Present(vec![them(1), them(2)])),
            env(7, 3, Message::Joined(them(3))),
            env(7, 4, deliver(them(1), None)),
            env(7, 5, Message::Left(them(2))),
        ],
        vec![env(7, 1, deliver(them(1), Some(them(2))))],
        vec![
            env(7, 1, Message::Joined(them(1))),
            env(7, 3, deliver(them(1), None)),
        ],
        vec![
            env(7, 1, Message::Present((1..=20).map(them).collect())),
            env(9, 1, Message::Present(vec![(9u64 << 32) | 1])),
            env(7, 2, Message::Left(them(20))),
        ],
    ];
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (i, r) in runs.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), run(r)).unwrap();
    }
    println!("seed corpus backplane: {} inputs", runs.len());
}
