//! The history's tests: sealing, order, retention, damage and clearing.

use super::*;
use common::test_keys::shared;

fn opts(dir: &Path) -> HistoryOptions {
    HistoryOptions {
        path: dir.join("h.sqlite3"),
        retention: Retention::default(),
    }
}

fn entry(n: u64, text: &str) -> Entry {
    Entry {
        at_ms: 1_790_000_000_000 + n,
        kind: if n.is_multiple_of(2) {
            EntryKind::Message
        } else {
            EntryKind::Own
        },
        who: "Zebulon Quartermaine".into(),
        fingerprint: Some([7; 32]),
        text: text.into(),
        path: None,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_run_floor_is_kept_per_room_and_never_goes_down() {
    let dir = tempfile::tempdir().unwrap();
    let me = shared(0);
    let room = RoomId([3; 16]);
    {
        let mut h = History::open(&opts(dir.path()), &me, &room).unwrap();
        assert_eq!(h.run_floor().unwrap(), 0);
        h.keep_run_floor(7).unwrap();
        h.keep_run_floor(5).unwrap();
    }
    let h = History::open(&opts(dir.path()), &me, &room).unwrap();
    assert_eq!(
        h.run_floor().unwrap(),
        7,
        "kept across a restart, never lowered"
    );
    let other = History::open(&opts(dir.path()), &me, &RoomId([4; 16])).unwrap();
    assert_eq!(other.run_floor().unwrap(), 0, "per room");
}

#[test]
fn entries_come_back_in_order_and_the_file_shows_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let room = RoomId([3; 16]);
    {
        let mut h = History::open(&opts(dir.path()), &shared(0), &room).unwrap();
        for n in 0..5 {
            h.add(&entry(n, &format!("purple elephant number {n}")))
                .unwrap();
        }
    }
    let h = History::open(&opts(dir.path()), &shared(0), &room).unwrap();
    let got = h.last(SHOW_ON_OPEN).unwrap();
    assert_eq!(got.skipped, 0);
    let texts: Vec<&str> = got.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        texts,
        (0..5)
            .map(|n| format!("purple elephant number {n}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(got.entries[0], entry(0, "purple elephant number 0"));
    assert_eq!(h.last(2).unwrap().entries.len(), 2);
    let bytes = std::fs::read(dir.path().join("h.sqlite3")).unwrap();
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    for needle in [
        &b"purple"[..],
        b"elephant",
        b"Zebulon",
        b"Quartermaine",
        &[3; 16],
        &[7; 32],
    ] {
        assert!(!contains(&bytes, needle), "{needle:?} is on disk");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("h.sqlite3"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only the owner can read it");
    }
}

#[test]
fn another_identity_cannot_read_it_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let room = RoomId([3; 16]);
    History::open(&opts(dir.path()), &shared(0), &room)
        .unwrap()
        .add(&entry(0, "secret"))
        .unwrap();
    let e = History::open(&opts(dir.path()), &shared(1), &room).unwrap_err();
    assert!(matches!(e, HistoryError::OtherIdentity(_)), "{e}");
    let h = History::open(&opts(dir.path()), &shared(0), &room).unwrap();
    assert_eq!(
        h.last(10).unwrap().entries.len(),
        1,
        "still there for its owner"
    );
}

#[test]
fn a_flipped_byte_or_a_row_moved_to_another_room_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (RoomId([3; 16]), RoomId([4; 16]));
    let mut h = History::open(&opts(dir.path()), &shared(0), &a).unwrap();
    for n in 0..3 {
        h.add(&entry(n, &format!("line {n}"))).unwrap();
    }
    let mut hb = History::open(&opts(dir.path()), &shared(0), &b).unwrap();
    hb.add(&entry(9, "other room")).unwrap();
    // Flip one byte deep in the second row's ciphertext.
    let (id, mut sealed): (i64, Vec<u8>) = h
        .conn
        .query_row(
            "SELECT id, sealed FROM entries WHERE room = ?1 ORDER BY id LIMIT 1 OFFSET 1",
            [&h.room[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let i = sealed.len() / 2;
    sealed[i] ^= 0x01;
    h.conn
        .execute(
            "UPDATE entries SET sealed = ?1 WHERE id = ?2",
            rusqlite::params![sealed, id],
        )
        .unwrap();
    let got = h.last(10).unwrap();
    assert_eq!(got.skipped, 1);
    let texts: Vec<&str> = got.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, vec!["line 0", "line 2"]);
    // A row of room b relabelled as room a's fails its check there.
    h.conn
        .execute(
            "UPDATE entries SET room = ?1 WHERE room = ?2",
            rusqlite::params![&h.room[..], &hb.room[..]],
        )
        .unwrap();
    let got = h.last(10).unwrap();
    assert_eq!(got.skipped, 2);
    assert!(!got.entries.iter().any(|e| e.text == "other room"));
    assert_eq!(hb.last(10).unwrap().entries.len(), 0);
    assert_eq!(h.clear().unwrap(), 4);
    assert_eq!(h.last(10).unwrap(), Loaded::default());
}

/// Swaps the stored (nonce, sealed) of two rows of `h`'s room, by
/// position: what someone with the file can do without any key.
fn swap_rows(h: &History, a: usize, b: usize) {
    let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = h
        .conn
        .prepare("SELECT id, nonce, sealed FROM entries WHERE room = ?1 ORDER BY id")
        .unwrap()
        .query_map([&h.room[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (to, from) in [(a, b), (b, a)] {
        h.conn
            .execute(
                "UPDATE entries SET nonce = ?1, sealed = ?2 WHERE id = ?3",
                rusqlite::params![rows[from].1, rows[from].2, rows[to].0],
            )
            .unwrap();
    }
}

#[test]
fn rows_swapped_in_the_file_are_reported_and_never_shown_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = History::open(&opts(dir.path()), &shared(0), &RoomId([3; 16])).unwrap();
    for n in 0..4 {
        h.add(&entry(n, &format!("line {n}"))).unwrap();
    }
    assert_eq!(h.last(10).unwrap().skipped, 0);
    swap_rows(&h, 1, 2);
    let got = h.last(10).unwrap();
    let texts: Vec<&str> = got.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        (texts, got.skipped),
        (vec!["line 0", "line 2", "line 3"], 1),
        "line 1 now follows line 2 in the file"
    );
}

/// The sequence numbers of `h`'s room's rows, in row order (`None`: a
/// row without one).
fn seqs(h: &History) -> Vec<Option<u64>> {
    h.conn
        .prepare("SELECT nonce, sealed FROM entries WHERE room = ?1 ORDER BY id")
        .unwrap()
        .query_map([&h.room[..]], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .unwrap()
        .map(|r| {
            let (nonce, sealed) = r.unwrap();
            open_row(&h.rows, &h.room, &nonce, &sealed).unwrap().0
        })
        .collect()
}

#[test]
fn a_database_written_before_sequence_numbers_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = History::open(&opts(dir.path()), &shared(0), &RoomId([3; 16])).unwrap();
    // Two rows as the previous version wrote them: the entry alone.
    for n in 0..2 {
        let nonce: [u8; 16] = common::crypto::random_array();
        let plain = encode_payload(&entry(n, &format!("old {n}")), MAX_ENTRY).unwrap();
        let sealed = seal(
            &mut OsRng,
            &h.rows,
            &aad(AAD_HISTORY, &h.room, &nonce),
            &plain,
        );
        h.conn
            .execute(
                "INSERT INTO entries (room, day, nonce, sealed) VALUES (?1, 0, ?2, ?3)",
                rusqlite::params![
                    &h.room[..],
                    &nonce[..],
                    encode_payload(&sealed, 2 * MAX_ENTRY).unwrap()
                ],
            )
            .unwrap();
    }
    for n in 2..4 {
        h.add(&entry(n, &format!("new {n}"))).unwrap();
    }
    assert_eq!(seqs(&h), vec![None, None, Some(0), Some(1)]);
    let got = h.last(10).unwrap();
    let texts: Vec<&str> = got.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        (texts, got.skipped),
        (vec!["old 0", "old 1", "new 2", "new 3"], 0)
    );
    // An old row has no place after numbered ones.
    h.conn
        .execute(
            "UPDATE entries SET id = 100 WHERE id = (SELECT MIN(id) FROM entries)",
            [],
        )
        .unwrap();
    let got = h.last(10).unwrap();
    let texts: Vec<&str> = got.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!((texts, got.skipped), (vec!["old 1", "new 2", "new 3"], 1));
}

#[test]
fn sequence_numbers_are_never_reused_after_a_rollback_a_removal_or_a_clear() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = History::open(&opts(dir.path()), &shared(0), &RoomId([3; 16])).unwrap();
    let counter = |h: &History| -> Vec<u8> {
        h.conn
            .query_row(
                "SELECT v FROM meta WHERE k = ?1",
                [counter_key(&h.room)],
                |r| r.get(0),
            )
            .unwrap()
    };
    let mut n = 0;
    let mut add = |h: &mut History, k: u64| {
        for _ in 0..k {
            h.add(&entry(n, &format!("line {n}"))).unwrap();
            n += 1;
        }
    };
    add(&mut h, 3);
    let old = counter(&h);
    add(&mut h, 2);
    // The counter rolled back to an earlier copy: the newest row wins.
    h.conn
        .execute(
            "UPDATE meta SET v = ?1 WHERE k = ?2",
            rusqlite::params![old, counter_key(&h.room)],
        )
        .unwrap();
    add(&mut h, 1);
    // Removed.
    h.conn
        .execute("DELETE FROM meta WHERE k = ?1", [counter_key(&h.room)])
        .unwrap();
    add(&mut h, 1);
    assert_eq!(seqs(&h), (0..7).map(Some).collect::<Vec<_>>());
    // The newest rows deleted: the counter remembers them.
    h.conn
        .execute(
            "DELETE FROM entries WHERE id IN (SELECT id FROM entries ORDER BY id DESC LIMIT 2)",
            [],
        )
        .unwrap();
    add(&mut h, 1);
    assert_eq!(seqs(&h).last(), Some(&Some(7)));
    assert_eq!(h.last(100).unwrap().skipped, 0);
    h.clear().unwrap();
    add(&mut h, 1);
    assert_eq!(seqs(&h), vec![Some(8)]);
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("h.sqlite3"), vec![0x42; 4096]).unwrap();
    let e = History::open(&opts(dir.path()), &shared(0), &RoomId([3; 16])).unwrap_err();
    assert!(matches!(e, HistoryError::Database { .. }), "{e}");
    assert!(e.to_string().contains("h.sqlite3"));
    // A directory where the file should be, too.
    let d2 = tempfile::tempdir().unwrap();
    std::fs::create_dir(d2.path().join("h.sqlite3")).unwrap();
    assert!(History::open(&opts(d2.path()), &shared(0), &RoomId([3; 16])).is_err());
}

#[test]
fn clock_shows_utc_dates() {
    assert_eq!(clock_utc(0), "1970-01-01 00:00");
    assert_eq!(clock_utc(951_782_400_000 + 3_660_000), "2000-02-29 01:01");
    assert_eq!(clock_utc(1_795_996_800_000), "2026-11-30 00:00");
}

#[test]
fn retention_keeps_the_newest_rows_and_drops_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let room = RoomId([3; 16]);
    let mut o = opts(dir.path());
    o.retention = Retention {
        max_rows: 10,
        max_days: 30,
    };
    let now = crate::now_ms();
    {
        let mut h = History::open(&o, &shared(0), &room).unwrap();
        let mut old = entry(0, "from last year");
        old.at_ms = now - 365 * MS_PER_DAY;
        h.add(&old).unwrap();
        for n in 0..150 {
            let mut e = entry(n, &format!("n{n}"));
            e.at_ms = now;
            h.add(&e).unwrap();
        }
    }
    let h = History::open(&o, &shared(0), &room).unwrap();
    let got = h.last(1000).unwrap();
    let texts: Vec<String> = got.entries.iter().map(|e| e.text.clone()).collect();
    assert_eq!(
        texts,
        (140..150).map(|n| format!("n{n}")).collect::<Vec<_>>()
    );
}
