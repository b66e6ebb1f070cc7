//! The client runtime's fuzz corpus in the ordinary test suite: history
//! rows, admin state files and file names (the wire, invite, identity and
//! engine targets are in `common/tests/fuzz_corpus.rs`).
//!
//! - `committed_corpus_replays_cleanly` runs every committed input under
//!   `fuzz/corpus/<target>/` through the entry point its libFuzzer target
//!   calls, on stable Rust, on every run.
//! - `record_seed_corpus` (ignored; `scripts/fuzz.sh --record` runs it)
//!   writes the seeds: real history rows and admin state files (with their
//!   plaintexts), and file names people and attackers send.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use client::fuzzing;

/// The client runtime's targets, each with its entry point.
const TARGETS: [(&str, common::fuzzing::EntryPoint); 3] = [
    ("history_row", |d| {
        fuzzing::history_row(d);
    }),
    ("admin_state", |d| {
        fuzzing::admin_state(d);
    }),
    ("file_name", fuzzing::file_name),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn committed_corpus_replays_cleanly() {
    common::fuzzing::replay_corpus(&corpus_dir(), &TARGETS);
}

/// The seeds made from files the product writes are read back: a seed
/// that no longer opens (a changed key or layout) would fuzz only the
/// rejection path.
#[test]
fn seeds_from_real_files_are_accepted() {
    let seeds = fuzzing::disk_seeds();
    assert!(seeds.len() >= 10, "{} seeds", seeds.len());
    for (target, bytes) in seeds {
        let accepted = match target {
            "history_row" => fuzzing::history_row(&bytes),
            "admin_state" => fuzzing::admin_state(&bytes),
            other => panic!("no disk target {other}"),
        };
        assert!(accepted, "a {target} seed is refused");
    }
}

#[test]
#[ignore = "writes fuzz/corpus/; run by scripts/fuzz.sh --record"]
fn record_seed_corpus() {
    let mut seeds: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    for (target, bytes) in fuzzing::disk_seeds() {
        seeds.entry(target).or_default().push(bytes);
    }
    // File names people send, and what an attacker would.
    let names = seeds.entry("file_name").or_default();
    for name in [
        "report.pdf",
        "../../etc/passwd",
        "C:\\Windows\\system32\\CON.txt",
        "photo\u{202e}gpj.exe",
        "  .hidden. ",
        "archive.tar.gz",
        "日本語のファイル名.txt",
        "a\u{0}b\u{7}c",
        "NUL",
        "..",
    ] {
        names.push(name.as_bytes().to_vec());
    }
    names.push("x".repeat(300).into_bytes());
    names.push(format!("{}.{}", "é".repeat(150), "ext").into_bytes());
    common::fuzzing::write_seeds(&corpus_dir(), &seeds);
}
