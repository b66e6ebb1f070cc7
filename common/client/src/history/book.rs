//! The rooms an app remembers (joined or opened), to reconnect them at
//! start: kept in the history database beside the lines, as one row of
//! the `meta` table per app (`rooms:admin`, `rooms:member`: two apps
//! given one file keep their own lists) sealed with the identity's history
//! keys under `"teamchat/v1/aad/history-rooms" ‖ 0x00 ‖ app`. The file names no room: the row is
//! opaque without the key. A row that does not open (damaged, or put there
//! by someone else) reads as no rooms, with a warning, and is replaced on
//! the next change. Removing the database loses the list (and the lines),
//! never the identity, which lives in its own file.

use serde::{Deserialize, Serialize};

use common::crypto::seal::{open, seal, SealKeys};
use common::crypto::{OsRng, PrivateKey};
use common::ids::RoomId;
use common::wire::{decode_payload, encode_payload, Sealed};

use super::{db_err, open_db, optional, HistoryError, HistoryOptions};

const AAD_ROOMS: &[u8] = b"teamchat/v1/aad/history-rooms";
/// Most rooms remembered.
pub const MAX_KEPT_ROOMS: usize = 64;
/// Largest list read back (64 rooms of a few KiB each).
const MAX_BOOK_BYTES: usize = 1 << 20;

/// A room to reconnect at start. `Debug` shows only the room's id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptRoom {
    /// Its id.
    pub room: RoomId,
    /// Its invite (relays, their certificate pins, the room, the admin's
    /// key): the member joins with it; the admin made it.
    pub invite: String,
    /// Its name, as last announced.
    pub name: String,
    /// Our name there.
    pub my_name: String,
    /// What notifies: "mentions", "all" or "nothing".
    pub notify: String,
    /// We opened it, as its admin.
    pub admin: bool,
    /// (Admin) the keys approved without asking (the roster it was opened
    /// with).
    pub roster: Vec<common::Fingerprint>,
}

impl std::fmt::Debug for KeptRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeptRoom {{ room: {}, admin: {} }}",
            self.room, self.admin
        )
    }
}

/// What reading the list found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    /// The rooms, in the order they were kept.
    pub rooms: Vec<KeptRoom>,
    /// A list was there but failed its check (damaged or tampered with):
    /// it is ignored.
    pub damaged: bool,
}

/// The remembered rooms of one app and identity.
pub struct RoomBook {
    conn: rusqlite::Connection,
    path: std::path::PathBuf,
    rows: SealKeys,
    /// The `meta` key and the associated data of this app's list.
    key: String,
    aad: Vec<u8>,
    /// The list as last read or kept here: kept again unchanged, it is not
    /// written (a write waits for the disk, and the window keeps its list
    /// as it starts).
    last: Option<Vec<KeptRoom>>,
}

impl std::fmt::Debug for RoomBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomBook")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RoomBook {
    /// Opens (or creates) the database at `opts.path`, with keys from `me`,
    /// for the list of `app` ("admin" or "member").
    pub fn open(opts: &HistoryOptions, me: &PrivateKey, app: &str) -> Result<Self, HistoryError> {
        let (conn, rows, _tags) = open_db(&opts.path, me)?;
        let mut aad = AAD_ROOMS.to_vec();
        aad.push(0);
        aad.extend_from_slice(app.as_bytes());
        Ok(RoomBook {
            conn,
            path: opts.path.clone(),
            rows,
            key: format!("rooms:{app}"),
            aad,
            last: None,
        })
    }

    /// The rooms kept.
    pub fn read(&mut self) -> Result<Book, HistoryError> {
        let err = db_err(&self.path);
        let kept: Option<Vec<u8>> = optional(self.conn.query_row(
            "SELECT v FROM meta WHERE k = ?1",
            [&self.key],
            |r| r.get(0),
        ))
        .map_err(&err)?;
        let Some(bytes) = kept else {
            self.last = Some(Vec::new());
            return Ok(Book::default());
        };
        let rooms = decode_payload::<Sealed>(&bytes, 2 * MAX_BOOK_BYTES)
            .ok()
            .and_then(|s| open(&self.rows, &self.aad, &s).ok())
            .and_then(|p| decode_payload::<Vec<KeptRoom>>(&p, MAX_BOOK_BYTES).ok());
        Ok(match rooms {
            Some(mut rooms) => {
                rooms.truncate(MAX_KEPT_ROOMS);
                self.last = Some(rooms.clone());
                Book {
                    rooms,
                    damaged: false,
                }
            }
            None => {
                self.last = None;
                Book {
                    rooms: Vec::new(),
                    damaged: true,
                }
            }
        })
    }

    /// Keeps `rooms` (the first [`MAX_KEPT_ROOMS`]) as the list, replacing
    /// what was kept.
    pub fn keep(&mut self, rooms: &[KeptRoom]) -> Result<(), HistoryError> {
        let err = db_err(&self.path);
        let fail = |e: common::wire::FrameError| HistoryError::Database {
            path: self.path.clone(),
            why: e.to_string(),
        };
        let rooms = &rooms[..rooms.len().min(MAX_KEPT_ROOMS)];
        if self.last.as_deref() == Some(rooms) {
            return Ok(());
        }
        let plain = encode_payload(&rooms, MAX_BOOK_BYTES).map_err(fail)?;
        let sealed = seal(&mut OsRng, &self.rows, &self.aad, &plain);
        let bytes = encode_payload(&sealed, 2 * MAX_BOOK_BYTES).map_err(fail)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
                rusqlite::params![self.key, bytes],
            )
            .map_err(&err)?;
        self.last = Some(rooms.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::test_keys::shared;

    fn opts(dir: &tempfile::TempDir) -> HistoryOptions {
        HistoryOptions {
            path: dir.path().join("h.sqlite3"),
            retention: super::super::Retention::default(),
        }
    }

    /// The sealed row as stored (a new seal has a new nonce).
    fn stored(dir: &tempfile::TempDir) -> Vec<u8> {
        rusqlite::Connection::open(dir.path().join("h.sqlite3"))
            .unwrap()
            .query_row("SELECT v FROM meta WHERE k = 'rooms:member'", [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    #[test]
    fn a_list_kept_unchanged_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let me = shared(1);
        let rooms = vec![room(1, "ops"), room(2, "design")];
        let mut book = RoomBook::open(&opts(&dir), &me, "member").unwrap();
        book.keep(&rooms).unwrap();
        let first = stored(&dir);
        book.keep(&rooms).unwrap();
        assert_eq!(stored(&dir), first, "the same list was written again");
        // As a window starts: the list read, then kept as it stands.
        let mut book = RoomBook::open(&opts(&dir), &me, "member").unwrap();
        assert_eq!(book.read().unwrap().rooms, rooms);
        book.keep(&rooms).unwrap();
        assert_eq!(stored(&dir), first, "the list read was written back");
        // A change is written.
        book.keep(&rooms[..1]).unwrap();
        assert_ne!(stored(&dir), first);
        assert_eq!(book.read().unwrap().rooms, rooms[..1]);
    }

    fn room(n: u8, name: &str) -> KeptRoom {
        KeptRoom {
            room: RoomId([n; 16]),
            invite: format!("teamchat://invite-{n}"),
            name: name.into(),
            my_name: "alice".into(),
            notify: "mentions".into(),
            admin: false,
            roster: Vec::new(),
        }
    }

    #[test]
    fn the_list_round_trips_and_the_file_names_no_room() {
        let dir = tempfile::tempdir().unwrap();
        let me = shared(1);
        let mut book = RoomBook::open(&opts(&dir), &me, "member").unwrap();
        assert_eq!(book.read().unwrap(), Book::default());
        let rooms = vec![room(1, "launch team"), room(2, "design")];
        book.keep(&rooms).unwrap();
        drop(book);
        let mut book = RoomBook::open(&opts(&dir), &me, "member").unwrap();
        assert_eq!(book.read().unwrap().rooms, rooms);
        let file = std::fs::read(dir.path().join("h.sqlite3")).unwrap();
        for needle in [&b"launch team"[..], b"design", b"teamchat://", b"alice"] {
            assert!(!file.windows(needle.len()).any(|w| w == needle));
        }
        // Another identity cannot open it at all.
        assert!(matches!(
            RoomBook::open(&opts(&dir), &shared(2), "member"),
            Err(HistoryError::OtherIdentity(_))
        ));
    }

    #[test]
    fn a_damaged_or_foreign_list_reads_as_none_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let me = shared(1);
        let mut book = RoomBook::open(&opts(&dir), &me, "member").unwrap();
        book.keep(&[room(1, "launch team")]).unwrap();
        // One byte flipped in the sealed list.
        let v: Vec<u8> = book
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'rooms:member'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let mut bad = v.clone();
        let at = bad.len() - 40;
        bad[at] ^= 1;
        book.conn
            .execute("UPDATE meta SET v = ?1 WHERE k = 'rooms:member'", [bad])
            .unwrap();
        let read = book.read().unwrap();
        assert!(read.damaged && read.rooms.is_empty(), "{read:?}");
        // A list sealed as another meta value (an outbox) does not pass as
        // the room list either.
        let sealed = seal(
            &mut OsRng,
            &book.rows,
            b"teamchat/v1/aad/history-outbox",
            b"x",
        );
        let bytes = encode_payload(&sealed, 1024).unwrap();
        book.conn
            .execute("UPDATE meta SET v = ?1 WHERE k = 'rooms:member'", [bytes])
            .unwrap();
        assert!(book.read().unwrap().damaged);
        // The next change replaces it.
        book.keep(&[room(3, "ops")]).unwrap();
        assert_eq!(book.read().unwrap().rooms, vec![room(3, "ops")]);
    }

    #[test]
    fn the_admin_and_the_member_app_keep_their_own_lists_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let me = shared(1);
        let mut member = RoomBook::open(&opts(&dir), &me, "member").unwrap();
        let mut admin = RoomBook::open(&opts(&dir), &me, "admin").unwrap();
        member.keep(&[room(1, "joined")]).unwrap();
        admin.keep(&[room(2, "opened")]).unwrap();
        assert_eq!(member.read().unwrap().rooms, vec![room(1, "joined")]);
        assert_eq!(admin.read().unwrap().rooms, vec![room(2, "opened")]);
        // One app's list copied over the other's does not open.
        let v: Vec<u8> = admin
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'rooms:admin'", [], |r| {
                r.get(0)
            })
            .unwrap();
        admin
            .conn
            .execute("UPDATE meta SET v = ?1 WHERE k = 'rooms:member'", [v])
            .unwrap();
        assert!(member.read().unwrap().damaged);
    }

    #[test]
    fn at_most_the_limit_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let me = shared(1);
        let mut book = RoomBook::open(&opts(&dir), &me, "member").unwrap();
        let many: Vec<KeptRoom> = (0..=MAX_KEPT_ROOMS as u8).map(|n| room(n, "r")).collect();
        book.keep(&many).unwrap();
        assert_eq!(book.read().unwrap().rooms.len(), MAX_KEPT_ROOMS);
    }
}
