//! Time to show the last 200 of 100,000 history rows (goal: under 50 ms):
//! opening the database (key derivation, identity check, retention) and
//! loading, opening and decoding the 200 newest rows of the room.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use client::history::{Entry, EntryKind, History, HistoryOptions, Retention, SHOW_ON_OPEN};
use common::test_keys::shared;
use common::RoomId;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this once quickly; `cargo bench` measures.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rows: usize = if quick { 2_000 } else { 100_000 };
    let rounds = if quick { 1 } else { 7 };
    let dir = tempfile::tempdir().unwrap();
    let opts = HistoryOptions {
        path: dir.path().join("bench-history.sqlite3"),
        retention: Retention {
            max_rows: rows as u64,
            max_days: 36_500,
        },
    };
    let room = RoomId([5; 16]);
    let me = shared(0);
    let now = client::now_ms();
    let filled = Instant::now();
    {
        let mut h = History::open(&opts, &me, &room).unwrap();
        let batch: Vec<Entry> = (0..1000)
            .map(|n| Entry {
                at_ms: now,
                kind: EntryKind::Message,
                who: "someone with a name".into(),
                fingerprint: Some([n as u8; 32]),
                text: format!(
                    "a line of chat of ordinary length, number {n}, with a few words more"
                ),
                path: None,
            })
            .collect();
        for _ in 0..rows / 1000 {
            h.add_all(&batch).unwrap();
        }
    }
    let size = std::fs::metadata(&opts.path).unwrap().len();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let h = History::open(&opts, &me, &room).unwrap();
        let got = h.last(SHOW_ON_OPEN).unwrap();
        times.push(t.elapsed());
        assert_eq!(got.entries.len(), SHOW_ON_OPEN);
        assert_eq!(got.skipped, 0);
    }
    let m = median(times.clone());
    println!(
        "history: {rows} rows ({:.1} MiB, written in {:.1} s); open + last {SHOW_ON_OPEN}: median {:.1} ms of {rounds} (runs: {})",
        size as f64 / (1024.0 * 1024.0),
        filled.elapsed().as_secs_f64(),
        m.as_secs_f64() * 1e3,
        times
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if !quick {
        println!(
            "goal: under 50 ms -> {}",
            if m < Duration::from_millis(50) {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
