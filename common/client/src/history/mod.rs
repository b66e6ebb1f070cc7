//! The encrypted local history: each app keeps its rooms' messages in an
//! embedded SQLite database, every row sealed so the file holds no text,
//! names or room ids in the clear.
//!
//! Keys come from the identity ([`PrivateKey::history_keys`]: HKDF-SHA256
//! over the RSA secret exponent), so the database is as well protected as
//! the identity file and its passphrase, and another identity cannot read
//! it. A row is `(id, room tag, day, nonce, sealed entry)`:
//! - the room tag is a keyed HMAC of the room id: rows are found by room
//!   without the room id on disk;
//! - the day (days since 1970) is in the clear for the age limit;
//! - the entry (time, kind, name, fingerprint, text, saved path) is sealed
//!   (AES-256-CBC + HMAC-SHA256) together with its sequence number in the
//!   room, with `"teamchat/v1/aad/history-row" ‖ 0x00 ‖ room tag ‖ nonce`
//!   as associated data, so a row moved to another room or altered in any
//!   byte fails its check and is skipped with a warning, never shown.
//!
//! Sequence numbers give the rows an order someone with the file cannot
//! change: they increase with the row id, so a row whose number is not
//! above every one before it (rows swapped, or an old row put back) is
//! counted with the skipped rows and not shown, and what is shown is in the
//! order it was written. Each room's next number is kept sealed in the
//! `meta` table and is never below the newest row's, so numbers are never
//! reused, not after a clear, nor with the counter rolled back or removed.
//! Rows of databases written before sequence numbers (sealed under
//! `"teamchat/v1/aad/history"`, the entry alone) are still read; they have
//! no order of their own and are shown only before every numbered row.
//!
//! Every error (not a database, locked, another identity's, full disk) is
//! reported and the app goes on without history.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use common::crypto::seal::{open, seal, SealKeys};
use common::crypto::{OsRng, PrivateKey};
use common::ids::RoomId;
use common::wire::{decode_payload, encode_payload, Sealed};

/// Entries shown when a room opens.
pub const SHOW_ON_OPEN: usize = 200;
/// Default most entries kept per room.
pub const DEFAULT_MAX_ROWS: u64 = 10_000;
/// Default most days an entry is kept.
pub const DEFAULT_MAX_DAYS: u64 = 90;
/// Most entries one request (`/history N`) loads.
pub const MAX_LOAD: usize = 10_000;
/// Largest sealed entry read back (a text is at most 16 KiB).
const MAX_ENTRY: usize = 64 * 1024;
/// Rows written before sequence numbers: read, never written.
const AAD_HISTORY: &[u8] = b"teamchat/v1/aad/history";
const AAD_ROW: &[u8] = b"teamchat/v1/aad/history-row";
const AAD_COUNTER: &[u8] = b"teamchat/v1/aad/history-counter";
const AAD_CHECK: &[u8] = b"teamchat/v1/aad/history-check";
const AAD_RUN: &[u8] = b"teamchat/v1/aad/history-run";
const AAD_OUTBOX: &[u8] = b"teamchat/v1/aad/history-outbox";
/// Largest sealed outbox read back (256 lines of at most 16 KiB).
const MAX_OUTBOX_BYTES: usize = 8 << 20;
const CHECK_PLAIN: &[u8] = b"teamchat history v1";
const MS_PER_DAY: u64 = 86_400_000;

/// What kind of line an entry was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A message from someone in the room.
    Message,
    /// A message we sent to the room.
    Own,
    /// A private message to us.
    PrivateIn,
    /// A private message we sent.
    PrivateOut,
    /// A file we received and saved (`text` is its name, `path` where).
    File,
}

/// One remembered line. `Debug` shows no text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When (sender's clock for received lines), ms since 1970.
    pub at_ms: u64,
    /// Kind.
    pub kind: EntryKind,
    /// The other person's name (sender, or recipient of what we sent
    /// privately); empty for our own room messages.
    pub who: String,
    /// Their key fingerprint, if any.
    pub fingerprint: Option<[u8; 32]>,
    /// The text, or the file's name.
    pub text: String,
    /// Where a received file was saved.
    pub path: Option<String>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Entry {{ at_ms: {}, kind: {:?}, text: {} bytes }}",
            self.at_ms,
            self.kind,
            self.text.len()
        )
    }
}

/// One of our lines the relay had not confirmed, kept so that a restart
/// of the app loses none (see `common::engine::Outgoing`). `Debug` shows
/// no text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptLine {
    /// Its handle in the engine.
    pub id: u64,
    /// A private line's recipient.
    pub to: Option<[u8; 32]>,
    /// The text.
    pub text: String,
    /// When it was typed (ms since 1970).
    pub typed_ms: u64,
    /// Its first sealing (epoch, sequence number), if it went out.
    pub first: Option<(u64, u64)>,
}

impl std::fmt::Debug for KeptLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeptLine {{ id: {}, text: {} bytes }}",
            self.id,
            self.text.len()
        )
    }
}

/// What a row seals: the entry and its place in the room's order.
#[derive(Serialize, Deserialize)]
struct Row<E> {
    seq: u64,
    entry: E,
}

/// How much is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most entries per room (the oldest go first).
    pub max_rows: u64,
    /// Most days an entry is kept.
    pub max_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_rows: DEFAULT_MAX_ROWS,
            max_days: DEFAULT_MAX_DAYS,
        }
    }
}

/// Where the history is and how much is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryOptions {
    /// The database file.
    pub path: PathBuf,
    /// Limits.
    pub retention: Retention,
}

impl HistoryOptions {
    /// The default database of `app` ("admin" or "member") in the
    /// platform's data directory.
    pub fn default_for(app: &str) -> Self {
        let path = match directories::ProjectDirs::from("org", "TeamChat", "teamchat") {
            Some(d) => d.data_dir().join(format!("{app}-history.sqlite3")),
            None => PathBuf::from(format!("teamchat-{app}-history.sqlite3")),
        };
        HistoryOptions {
            path,
            retention: Retention::default(),
        }
    }
}

/// The history flags both apps take.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Keep no history (nothing is read or written).
    #[arg(long)]
    pub no_history: bool,
    /// The history database [default: APP-history.sqlite3 in the data directory].
    #[arg(long, value_name = "FILE")]
    pub history_file: Option<PathBuf>,
    /// Most messages kept per room.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ROWS)]
    pub history_max: u64,
    /// Most days a message is kept.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_MAX_DAYS)]
    pub history_days: u64,
}

impl HistoryArgs {
    /// The options these flags describe for `app`, or none.
    pub fn options(&self, app: &str) -> Option<HistoryOptions> {
        if self.no_history {
            return None;
        }
        let mut o = HistoryOptions::default_for(app);
        if let Some(p) = &self.history_file {
            o.path = p.clone();
        }
        o.retention = Retention {
            max_rows: self.history_max.max(1),
            max_days: self.history_days.max(1),
        };
        Some(o)
    }
}

/// Why the history cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// SQLite refused (not a database, locked, I/O).
    #[error("history database {path}: {why}")]
    Database {
        /// The file.
        path: PathBuf,
        /// SQLite's words.
        why: String,
    },
    /// The database was written by another identity.
    #[error("history database {0} belongs to another identity: it is left untouched")]
    OtherIdentity(PathBuf),
}

/// What a load found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Entries, oldest first.
    pub entries: Vec<Entry>,
    /// Rows that failed their check (tampered or damaged) or stand out of
    /// their sealed order: not shown.
    pub skipped: usize,
}

/// An open history for one room.
pub struct History {
    conn: rusqlite::Connection,
    path: PathBuf,
    rows: SealKeys,
    /// Keys of the keyed tags (rooms, contacts).
    tags: SealKeys,
    room: [u8; 32],
    retention: Retention,
    added: u64,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Opens (or creates, mode 0600) the database at `path` and checks that
/// `me`'s keys wrote it: the connection, the row keys and the tag keys.
fn open_db(
    path: &Path,
    me: &PrivateKey,
) -> Result<(rusqlite::Connection, SealKeys, SealKeys), HistoryError> {
    let path = path.to_path_buf();
    let owned = path.clone();
    let err = db_err(&owned);
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| HistoryError::Database {
                path: path.clone(),
                why: e.to_string(),
            })?;
        }
    }
    create_private(&path).map_err(|e| HistoryError::Database {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let conn = rusqlite::Connection::open(&path).map_err(&err)?;
    conn.busy_timeout(std::time::Duration::from_millis(500))
        .map_err(&err)?;
    // A small page cache (the default is 2 MB per connection, and a window
    // holds one connection per room): reads are the newest lines, writes
    // are appends, and the operating system caches the file anyway.
    conn.execute_batch(
        "PRAGMA secure_delete = ON;
             PRAGMA cache_size = -256;
             CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS entries (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 room BLOB NOT NULL,
                 day INTEGER NOT NULL,
                 nonce BLOB NOT NULL,
                 sealed BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS entries_room ON entries (room, id);
             CREATE INDEX IF NOT EXISTS entries_day ON entries (room, day);",
    )
    .map_err(&err)?;
    let (rows, tags) = me.history_keys();
    // A sealed constant tells whether these keys wrote the database. A new
    // file gets ours (`OR IGNORE`: two openers at once, the driver's and
    // the room book's, both find none; one writes it, and both check it).
    let sealed = seal(&mut OsRng, &rows, AAD_CHECK, CHECK_PLAIN);
    let bytes = encode_payload(&sealed, 1024).map_err(|e| HistoryError::Database {
        path: path.clone(),
        why: e.to_string(),
    })?;
    conn.execute(
        "INSERT OR IGNORE INTO meta (k, v) VALUES ('check', ?1)",
        [bytes],
    )
    .map_err(&err)?;
    let check: Vec<u8> = conn
        .query_row("SELECT v FROM meta WHERE k = 'check'", [], |r| r.get(0))
        .map_err(&err)?;
    let ok = decode_payload::<Sealed>(&check, 1024)
        .ok()
        .and_then(|s| open(&rows, AAD_CHECK, &s).ok())
        .is_some_and(|p| p.as_slice() == CHECK_PLAIN);
    if !ok {
        return Err(HistoryError::OtherIdentity(path));
    }
    Ok((conn, rows, tags))
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
    move |e| HistoryError::Database {
        path: path.to_path_buf(),
        why: e.to_string(),
    }
}

/// `label ‖ 0x00 ‖ room tag ‖ nonce`.
fn aad(label: &[u8], room: &[u8; 32], nonce: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(label.len() + 1 + 32 + nonce.len());
    v.extend_from_slice(label);
    v.push(0);
    v.extend_from_slice(room);
    v.extend_from_slice(nonce);
    v
}

/// The `meta` key of a room's next sequence number.
fn counter_key(room: &[u8; 32]) -> String {
    format!("seq:{}", hex::encode(room))
}

/// Seals one entry as a row: (day, nonce, sealed bytes).
fn seal_row(
    keys: &SealKeys,
    room: &[u8; 32],
    seq: u64,
    entry: &Entry,
) -> Result<(i64, [u8; 16], Vec<u8>), common::wire::FrameError> {
    let nonce: [u8; 16] = common::crypto::random_array();
    let plain = encode_payload(&Row { seq, entry }, MAX_ENTRY)?;
    let sealed = seal(&mut OsRng, keys, &aad(AAD_ROW, room, &nonce), &plain);
    let bytes = encode_payload(&sealed, 2 * MAX_ENTRY)?;
    let day = i64::try_from(entry.at_ms / MS_PER_DAY).unwrap_or(i64::MAX);
    Ok((day, nonce, bytes))
}

/// Opens a row: its sequence number (none for a row written before them)
/// and entry, or `None` if it fails its check.
fn open_row(
    keys: &SealKeys,
    room: &[u8; 32],
    nonce: &[u8],
    bytes: &[u8],
) -> Option<(Option<u64>, Entry)> {
    if nonce.len() != 16 || bytes.len() > 2 * MAX_ENTRY {
        return None;
    }
    let sealed: Sealed = decode_payload(bytes, 2 * MAX_ENTRY).ok()?;
    if let Ok(plain) = open(keys, &aad(AAD_ROW, room, nonce), &sealed) {
        let row: Row<Entry> = decode_payload(&plain, MAX_ENTRY).ok()?;
        return Some((Some(row.seq), row.entry));
    }
    let plain = open(keys, &aad(AAD_HISTORY, room, nonce), &sealed).ok()?;
    Some((None, decode_payload(&plain, MAX_ENTRY).ok()?))
}

/// The room's next sequence number, read inside the transaction that
/// uses it: the sealed counter, but never at or below the newest row's
/// number (a counter rolled back or removed does not reuse numbers).
fn next_seq(
    conn: &rusqlite::Connection,
    keys: &SealKeys,
    room: &[u8; 32],
) -> rusqlite::Result<u64> {
    let counter: Option<Vec<u8>> = optional(conn.query_row(
        "SELECT v FROM meta WHERE k = ?1",
        [counter_key(room)],
        |r| r.get(0),
    ))?;
    let counter = counter
        .and_then(|b| decode_payload::<Sealed>(&b, 1024).ok())
        .and_then(|s| open(keys, &aad(AAD_COUNTER, room, &[]), &s).ok())
        .and_then(|p| <[u8; 8]>::try_from(p.as_slice()).ok())
        .map_or(0, u64::from_be_bytes);
    let newest: Option<(Vec<u8>, Vec<u8>)> = optional(conn.query_row(
        "SELECT nonce, sealed FROM entries WHERE room = ?1 ORDER BY id DESC LIMIT 1",
        [&room[..]],
        |r| Ok((r.get(0)?, r.get(1)?)),
    ))?;
    let after_newest = newest
        .and_then(|(nonce, bytes)| open_row(keys, room, &nonce, &bytes))
        .and_then(|(seq, _)| seq)
        .map_or(0, |s| s.saturating_add(1));
    Ok(counter.max(after_newest))
}

/// Stores the room's next sequence number, sealed.
fn store_seq(
    conn: &rusqlite::Connection,
    keys: &SealKeys,
    room: &[u8; 32],
    next: u64,
) -> rusqlite::Result<()> {
    let sealed = seal(
        &mut OsRng,
        keys,
        &aad(AAD_COUNTER, room, &[]),
        &next.to_be_bytes(),
    );
    let bytes = encode_payload(&sealed, 1024)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.execute(
        "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
        rusqlite::params![counter_key(room), bytes],
    )?;
    Ok(())
}

/// A row that may not exist.
fn optional<T>(r: rusqlite::Result<T>) -> rusqlite::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

impl History {
    /// Opens (or creates, mode 0600) the database at `opts.path` for `room`,
    /// with keys from `me`.
    pub fn open(
        opts: &HistoryOptions,
        me: &PrivateKey,
        room: &RoomId,
    ) -> Result<Self, HistoryError> {
        let (conn, rows, tags) = open_db(&opts.path, me)?;
        let path = opts.path.clone();
        let room = tags.tag(room.as_bytes());
        let mut h = History {
            conn,
            path,
            rows,
            tags,
            room,
            retention: opts.retention,
            added: 0,
        };
        h.prune(crate::now_ms())?;
        // What pruning read: given back.
        h.conn
            .execute_batch("PRAGMA shrink_memory")
            .map_err(db_err(&h.path))?;
        Ok(h)
    }

    /// Remembers one entry.
    pub fn add(&mut self, entry: &Entry) -> Result<(), HistoryError> {
        self.add_all(std::slice::from_ref(entry))
    }

    /// Remembers entries in one transaction (all or none), numbered after
    /// every row of the room written before.
    pub fn add_all(&mut self, entries: &[Entry]) -> Result<(), HistoryError> {
        let owned = self.path.clone();
        let err = db_err(&owned);
        let History {
            conn, rows, room, ..
        } = self;
        // Immediate: another app on the same file waits rather than take
        // the same numbers.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        let mut seq = next_seq(&tx, rows, room).map_err(&err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO entries (room, day, nonce, sealed) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(&err)?;
            for e in entries {
                let (day, nonce, bytes) =
                    seal_row(rows, room, seq, e).map_err(|e| HistoryError::Database {
                        path: owned.clone(),
                        why: e.to_string(),
                    })?;
                stmt.execute(rusqlite::params![&room[..], day, &nonce[..], bytes])
                    .map_err(&err)?;
                seq = seq.saturating_add(1);
            }
        }
        store_seq(&tx, rows, room, seq).map_err(&err)?;
        tx.commit().map_err(&err)?;
        let before = self.added;
        self.added += entries.len() as u64;
        if self.added / 100 != before / 100 {
            let now = entries.last().map_or(0, |e| e.at_ms);
            self.prune(now)?;
        }
        Ok(())
    }

    /// The last `n` entries of the room, oldest first; rows that fail their
    /// check, or whose sequence number is not above every shown row's
    /// before them (in row order), are counted, not returned.
    pub fn last(&self, n: usize) -> Result<Loaded, HistoryError> {
        let err = db_err(&self.path);
        let n = n.min(MAX_LOAD);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT nonce, sealed FROM entries WHERE room = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(
                rusqlite::params![&self.room[..], i64::try_from(n).unwrap_or(i64::MAX)],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .map_err(&err)?;
        let mut opened: Vec<Option<(Option<u64>, Entry)>> = rows
            .map(|row| {
                row.ok()
                    .and_then(|(nonce, bytes)| open_row(&self.rows, &self.room, &nonce, &bytes))
            })
            .collect();
        opened.reverse();
        let mut out = Loaded::default();
        // The highest number shown so far: rows without one (written
        // before numbers) belong before it.
        let mut highest: Option<u64> = None;
        for row in opened {
            match row {
                Some((seq, e)) if in_order(highest, seq) => {
                    highest = seq.or(highest);
                    out.entries.push(e);
                }
                _ => out.skipped += 1,
            }
        }
        Ok(out)
    }

    /// Forgets everything of this room (deleted pages are overwritten).
    pub fn clear(&mut self) -> Result<usize, HistoryError> {
        self.conn
            .execute("DELETE FROM entries WHERE room = ?1", [&self.room[..]])
            .map_err(db_err(&self.path))
    }

    /// Forgets the room (it was left): its lines and the lines that were
    /// waiting to be sent. (Its sealed counters stay: numbers are never
    /// reused, and a member never goes back to an older admin run.)
    pub fn forget(&mut self) -> Result<(), HistoryError> {
        self.clear()?;
        self.conn
            .execute("DELETE FROM meta WHERE k = ?1", [self.outbox_key()])
            .map_err(db_err(&self.path))?;
        Ok(())
    }

    /// Applies the retention limits to this room.
    fn prune(&mut self, now_ms: u64) -> Result<(), HistoryError> {
        let err = db_err(&self.path);
        let cutoff = (now_ms / MS_PER_DAY).saturating_sub(self.retention.max_days);
        self.conn
            .execute(
                "DELETE FROM entries WHERE room = ?1 AND day < ?2",
                rusqlite::params![&self.room[..], i64::try_from(cutoff).unwrap_or(i64::MAX)],
            )
            .map_err(&err)?;
        self.conn
            .execute(
                "DELETE FROM entries WHERE room = ?1 AND id <= (
                     SELECT id FROM entries WHERE room = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                rusqlite::params![
                    &self.room[..],
                    i64::try_from(self.retention.max_rows).unwrap_or(i64::MAX)
                ],
            )
            .map_err(&err)?;
        Ok(())
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn run_key(&self) -> String {
        format!("run:{}", hex::encode(self.room))
    }

    /// The highest admin run the member held in this room (0 if none, or if
    /// the value does not open: then only the knock nonces protect).
    pub fn run_floor(&self) -> Result<u64, HistoryError> {
        let owned = self.path.clone();
        let err = db_err(&owned);
        let kept: Option<Vec<u8>> = optional(self.conn.query_row(
            "SELECT v FROM meta WHERE k = ?1",
            [self.run_key()],
            |r| r.get(0),
        ))
        .map_err(&err)?;
        Ok(kept
            .and_then(|b| decode_payload::<Sealed>(&b, 1024).ok())
            .and_then(|s| open(&self.rows, &aad(AAD_RUN, &self.room, &[]), &s).ok())
            .and_then(|p| <[u8; 8]>::try_from(p.as_slice()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    fn outbox_key(&self) -> String {
        format!("outbox:{}", hex::encode(self.room))
    }

    /// Our lines the relay had not confirmed when the app last stopped
    /// (none if there were none, or if the value does not open: it is
    /// sealed like every row).
    pub fn outbox(&self) -> Result<Vec<KeptLine>, HistoryError> {
        let owned = self.path.clone();
        let err = db_err(&owned);
        let kept: Option<Vec<u8>> = optional(self.conn.query_row(
            "SELECT v FROM meta WHERE k = ?1",
            [self.outbox_key()],
            |r| r.get(0),
        ))
        .map_err(&err)?;
        Ok(kept
            .and_then(|b| decode_payload::<Sealed>(&b, 2 * MAX_OUTBOX_BYTES).ok())
            .and_then(|s| open(&self.rows, &aad(AAD_OUTBOX, &self.room, &[]), &s).ok())
            .and_then(|p| decode_payload::<Vec<KeptLine>>(&p, MAX_OUTBOX_BYTES).ok())
            .unwrap_or_default())
    }

    /// Keeps `lines` as the room's outbox (replacing what was kept).
    pub fn keep_outbox(&mut self, lines: &[KeptLine]) -> Result<(), HistoryError> {
        let owned = self.path.clone();
        let err = db_err(&owned);
        if lines.is_empty() {
            self.conn
                .execute("DELETE FROM meta WHERE k = ?1", [self.outbox_key()])
                .map_err(&err)?;
            return Ok(());
        }
        let fail = |e: common::wire::FrameError| HistoryError::Database {
            path: owned.clone(),
            why: e.to_string(),
        };
        let plain = encode_payload(&lines, MAX_OUTBOX_BYTES).map_err(fail)?;
        let sealed = seal(
            &mut OsRng,
            &self.rows,
            &aad(AAD_OUTBOX, &self.room, &[]),
            &plain,
        );
        let bytes = encode_payload(&sealed, 2 * MAX_OUTBOX_BYTES).map_err(fail)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
                rusqlite::params![self.outbox_key(), bytes],
            )
            .map_err(&err)?;
        Ok(())
    }

    /// Keeps `run` as the highest admin run held here (never lowers it).
    pub fn keep_run_floor(&mut self, run: u64) -> Result<(), HistoryError> {
        if run <= self.run_floor()? {
            return Ok(());
        }
        let owned = self.path.clone();
        let err = db_err(&owned);
        let sealed = seal(
            &mut OsRng,
            &self.rows,
            &aad(AAD_RUN, &self.room, &[]),
            &run.to_be_bytes(),
        );
        let bytes = encode_payload(&sealed, 1024).map_err(|e| HistoryError::Database {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
                rusqlite::params![self.run_key(), bytes],
            )
            .map_err(&err)?;
        Ok(())
    }
}

/// Whether a row numbered `seq` (`None`: written before numbers) may
/// follow rows up to number `highest`.
fn in_order(highest: Option<u64>, seq: Option<u64>) -> bool {
    match (highest, seq) {
        (None, _) => true,
        (Some(h), Some(s)) => s > h,
        (Some(_), None) => false,
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of a time in ms since 1970.
pub fn clock_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}")
}

/// Creates `path` with mode 0600 if it does not exist (SQLite would use the
/// umask), so other users cannot read even the sealed rows.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

mod book;
mod contacts;
pub use book::{Book, KeptRoom, RoomBook, MAX_KEPT_ROOMS};
pub use contacts::{Contact, KeyChange, MAX_CONTACTS, MAX_NAMES};

#[cfg(feature = "test-support")]
mod fuzz;
#[cfg(feature = "test-support")]
pub(crate) use fuzz::{fuzz_row, fuzz_seeds};

#[cfg(test)]
mod tests;
