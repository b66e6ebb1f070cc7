//! Contacts: everyone met in a room, by key, with the names they used
//! there, and whether we compared safety codes with them (verified). Trust
//! on first use, made visible: a name we know (or one that looks like it)
//! appearing with a key we have never seen is a key change, said before
//! anything from that key is shown.
//!
//! Each contact is one row of the history database's `meta` table, under
//! `contact:` and a keyed tag of its fingerprint (so the file names no key),
//! sealed with the identity's history keys under
//! `"teamchat/v1/aad/history-contact" ‖ 0x00 ‖ tag`: one row per key, so
//! rooms (each with its own connection to the file) never overwrite each
//! other's contacts. A row that does not open is skipped.

use serde::{Deserialize, Serialize};

use common::crypto::seal::{open, seal};
use common::crypto::OsRng;
use common::engine::{name_key, MemberInfo};
use common::wire::{decode_payload, encode_payload, Sealed};
use common::Fingerprint;

use super::{db_err, History, HistoryError};

const AAD_CONTACT: &[u8] = b"teamchat/v1/aad/history-contact";
/// Most contacts read (the oldest rows first).
pub const MAX_CONTACTS: usize = 4096;
/// Most names kept per contact (the newest).
pub const MAX_NAMES: usize = 8;
/// Largest sealed contact read back.
const MAX_CONTACT_BYTES: usize = 16 * 1024;

/// Someone met in a room. `Debug` shows only the key's short form.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Their key.
    pub fingerprint: Fingerprint,
    /// The names they used, oldest first (at most [`MAX_NAMES`]).
    pub names: Vec<String>,
    /// When we first met them (ms since 1970).
    pub first_seen_ms: u64,
    /// We compared safety codes with them.
    pub verified: bool,
    /// A key change not settled yet: the keys we knew under their name,
    /// each with whether we had verified it. Said again in each room (once
    /// per room and run of the app) until they are verified.
    pub changed_from: Vec<(Fingerprint, bool)>,
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Contact {{ {}, {} names, verified: {} }}",
            self.fingerprint.short(),
            self.names.len(),
            self.verified
        )
    }
}

impl Contact {
    /// The name they used last.
    pub fn name(&self) -> &str {
        self.names.last().map_or("", String::as_str)
    }
}

/// A name we know, met with a key we did not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    /// The name now (as the roster shows it).
    pub name: String,
    /// The new key.
    pub fingerprint: Fingerprint,
    /// The keys we knew under that name (or one that looks like it), and
    /// whether we had verified each.
    pub before: Vec<(Fingerprint, bool)>,
}

impl History {
    fn contact_tag(&self, fp: &Fingerprint) -> [u8; 32] {
        self.tags.tag(&fp.0)
    }

    fn contact_key(tag: &[u8; 32]) -> String {
        format!("contact:{}", hex::encode(tag))
    }

    fn contact_aad(tag: &[u8; 32]) -> Vec<u8> {
        let mut aad = AAD_CONTACT.to_vec();
        aad.push(0);
        aad.extend_from_slice(tag);
        aad
    }

    /// Everyone met so far, the first met first (rows that do not open
    /// are skipped, whatever they hold).
    pub fn contacts(&self) -> Result<Vec<Contact>, HistoryError> {
        let err = db_err(&self.path);
        let mut stmt = self
            .conn
            .prepare("SELECT k, v FROM meta WHERE k LIKE 'contact:%'")
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(&err)? {
            // Read as they are: a value of another type is skipped, not an
            // error that would stop every check.
            let (Ok(k), Ok(v)) = (row.get_ref(0), row.get_ref(1)) else {
                continue;
            };
            let (Ok(k), Ok(v)) = (k.as_str(), v.as_blob()) else {
                continue;
            };
            let Some(tag) = k
                .strip_prefix("contact:")
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                continue;
            };
            let contact = decode_payload::<Sealed>(v, 2 * MAX_CONTACT_BYTES)
                .ok()
                .and_then(|s| open(&self.rows, &Self::contact_aad(&tag), &s).ok())
                .and_then(|p| decode_payload::<Contact>(&p, MAX_CONTACT_BYTES).ok())
                .filter(|c| self.contact_tag(&c.fingerprint) == tag);
            out.extend(contact);
        }
        out.sort_by_key(|c| c.first_seen_ms);
        Ok(out)
    }

    fn keep_contact(&self, c: &Contact) -> Result<(), HistoryError> {
        let err = db_err(&self.path);
        let fail = |e: common::wire::FrameError| HistoryError::Database {
            path: self.path.clone(),
            why: e.to_string(),
        };
        let tag = self.contact_tag(&c.fingerprint);
        let plain = encode_payload(c, MAX_CONTACT_BYTES).map_err(fail)?;
        let sealed = seal(&mut OsRng, &self.rows, &Self::contact_aad(&tag), &plain);
        let bytes = encode_payload(&sealed, 2 * MAX_CONTACT_BYTES).map_err(fail)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
                rusqlite::params![Self::contact_key(&tag), bytes],
            )
            .map_err(&err)?;
        Ok(())
    }

    /// The key change `name` with key `fp` would be, if we know the name
    /// (or one that looks like it) only with other keys.
    pub fn key_change(
        &self,
        name: &str,
        fp: &Fingerprint,
    ) -> Result<Option<KeyChange>, HistoryError> {
        let all = self.contacts()?;
        // A key we know under this name is no change.
        if all
            .iter()
            .any(|c| c.fingerprint == *fp && c.names.iter().any(|n| same_name(n, name)))
        {
            return Ok(None);
        }
        Ok(change_in(&all, name, fp))
    }

    /// Meets `members` (not `me`): each new key is a contact from now on,
    /// each new name is added to its contact, in one transaction. Returns
    /// the key changes among them (a name we know, or one that looks like
    /// it, with another key: a new key, or a key we knew under other names),
    /// with any change not settled yet; and, if they could not be written,
    /// why (the changes are said all the same, and found again next time).
    pub fn meet(
        &mut self,
        members: &[MemberInfo],
        me: &Fingerprint,
        now_ms: u64,
    ) -> Result<(Vec<KeyChange>, Option<HistoryError>), HistoryError> {
        let mut all = self.contacts()?;
        let mut changes = Vec::new();
        let mut write: Vec<Contact> = Vec::new();
        for m in members.iter().filter(|m| m.fingerprint != *me) {
            let name = m.name.clone();
            let change = change_in(&all, &name, &m.fingerprint);
            match all.iter_mut().find(|c| c.fingerprint == m.fingerprint) {
                Some(c) => {
                    let known_name = c.names.iter().any(|n| same_name(n, &name));
                    let mut changed = false;
                    if !known_name {
                        // A key we met, now with a name another key had.
                        if let Some(change) = change {
                            if !c.verified {
                                c.changed_from = change.before.clone();
                            }
                            changes.push(change);
                        }
                    } else if !c.verified && !c.changed_from.is_empty() {
                        // Not settled yet: said again.
                        changes.push(KeyChange {
                            name: name.clone(),
                            fingerprint: m.fingerprint,
                            before: c.changed_from.clone(),
                        });
                    }
                    if c.names.last() != Some(&name) {
                        c.names.retain(|n| *n != name);
                        c.names.push(name);
                        if c.names.len() > MAX_NAMES {
                            c.names.remove(0);
                        }
                        changed = true;
                    }
                    if changed || !known_name {
                        write.push(c.clone());
                    }
                }
                None => {
                    let c = Contact {
                        fingerprint: m.fingerprint,
                        names: vec![name],
                        first_seen_ms: now_ms,
                        verified: false,
                        changed_from: change
                            .as_ref()
                            .map(|c| c.before.clone())
                            .unwrap_or_default(),
                    };
                    changes.extend(change);
                    write.push(c.clone());
                    all.push(c);
                }
            }
        }
        // Full: the first met of those not verified make room.
        let mut evict: Vec<Fingerprint> = Vec::new();
        if all.len() > MAX_CONTACTS {
            let over = all.len() - MAX_CONTACTS;
            evict = all
                .iter()
                .filter(|c| !c.verified)
                .take(over)
                .map(|c| c.fingerprint)
                .collect();
            write.retain(|w| !evict.contains(&w.fingerprint));
        }
        if write.is_empty() && evict.is_empty() {
            return Ok((changes, None));
        }
        let written = self.write_contacts(&write, &evict).err();
        Ok((changes, written))
    }

    /// Writes `contacts` and removes `evict` in one transaction.
    fn write_contacts(
        &mut self,
        contacts: &[Contact],
        evict: &[Fingerprint],
    ) -> Result<(), HistoryError> {
        let err = db_err(&self.path);
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(&err)?;
        let done = (|| {
            for c in contacts {
                self.keep_contact(c)?;
            }
            for fp in evict {
                let key = Self::contact_key(&self.contact_tag(fp));
                self.conn
                    .execute("DELETE FROM meta WHERE k = ?1", [key])
                    .map_err(&err)?;
            }
            Ok(())
        })();
        match done {
            Ok(()) => self.conn.execute_batch("COMMIT").map_err(&err),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Marks the contact of `fp` verified (or not); false if we never met
    /// that key.
    pub fn set_verified(&mut self, fp: &Fingerprint, verified: bool) -> Result<bool, HistoryError> {
        let Some(mut c) = self.contacts()?.into_iter().find(|c| c.fingerprint == *fp) else {
            return Ok(false);
        };
        c.verified = verified;
        if verified {
            // Compared: the change is settled.
            c.changed_from.clear();
        }
        self.keep_contact(&c)?;
        Ok(true)
    }
}

/// Names compared as people see them, without the admin's "(1a2b3c4d)"
/// that tells two alike names apart.
fn same_name(a: &str, b: &str) -> bool {
    base_key(a) == base_key(b)
}

fn base_key(name: &str) -> String {
    let bare = name
        .rsplit_once(" (")
        .filter(|(_, tail)| {
            tail.strip_suffix(')')
                .is_some_and(|h| h.len() >= 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .map_or(name, |(head, _)| head);
    name_key(bare)
}

/// The key change of `fp` showing as `name`, given the contacts: the other
/// keys known under that name (or one that looks like it).
fn change_in(all: &[Contact], name: &str, fp: &Fingerprint) -> Option<KeyChange> {
    let key = base_key(name);
    let before: Vec<(Fingerprint, bool)> = all
        .iter()
        .filter(|c| c.fingerprint != *fp)
        .filter(|c| c.names.iter().any(|n| base_key(n) == key))
        .map(|c| (c.fingerprint, c.verified))
        .collect();
    (!before.is_empty()).then(|| KeyChange {
        name: name.to_string(),
        fingerprint: *fp,
        before,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{HistoryOptions, Retention};
    use super::*;
    use common::test_keys::{member_info, shared};

    fn history(dir: &tempfile::TempDir) -> History {
        let opts = HistoryOptions {
            path: dir.path().join("h.sqlite3"),
            retention: Retention::default(),
        };
        History::open(&opts, &shared(1), &common::RoomId([1; 16])).unwrap()
    }

    /// The key changes of a meeting (the write went through).
    fn met(h: &mut History, who: &[MemberInfo], me: &Fingerprint, at: u64) -> Vec<KeyChange> {
        let (changes, failed) = h.meet(who, me, at).unwrap();
        assert!(failed.is_none(), "{failed:?}");
        changes
    }

    #[test]
    fn a_known_name_with_a_new_key_is_a_key_change_until_verified() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = history(&dir);
        let me = member_info(1, "alice", false).fingerprint;
        let bob = member_info(2, "bob", false);
        assert!(met(
            &mut h,
            &[bob.clone(), member_info(1, "alice", false)],
            &me,
            1
        )
        .is_empty());
        assert_eq!(h.contacts().unwrap().len(), 1, "not ourselves");
        assert!(h.set_verified(&bob.fingerprint, true).unwrap());
        // "Bob" with another key (any case, or a look-alike): a key change.
        let new_bob = member_info(3, "B\u{43e}b", false);
        let change = KeyChange {
            name: new_bob.name.clone(),
            fingerprint: new_bob.fingerprint,
            before: vec![(bob.fingerprint, true)],
        };
        assert_eq!(
            met(&mut h, std::slice::from_ref(&new_bob), &me, 2),
            vec![change.clone()]
        );
        // Not settled: said again at the next meeting (the journal says it
        // once per room), until the new key is verified.
        assert_eq!(
            met(&mut h, std::slice::from_ref(&new_bob), &me, 3),
            vec![change]
        );
        assert!(h.set_verified(&new_bob.fingerprint, true).unwrap());
        assert!(met(&mut h, &[new_bob], &me, 4).is_empty());
        // A known key with a new name nobody had: the name is added.
        let renamed = member_info(2, "robert", false);
        assert!(met(&mut h, &[renamed], &me, 5).is_empty());
        let c = h.contacts().unwrap();
        let bob_c = c.iter().find(|c| c.fingerprint == bob.fingerprint).unwrap();
        assert_eq!(bob_c.names, vec!["bob", "robert"]);
        assert!(bob_c.verified);
        // What a knock would be, without meeting.
        let stranger = member_info(0, "robert", false);
        assert!(h
            .key_change(&stranger.name, &stranger.fingerprint)
            .unwrap()
            .is_some());
        assert!(h.key_change("robert", &bob.fingerprint).unwrap().is_none());
        assert_eq!(h.contacts().unwrap().len(), 2);
    }

    #[test]
    fn a_key_we_met_taking_a_name_another_key_had_is_a_key_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = history(&dir);
        let me = member_info(1, "alice", false).fingerprint;
        let bob = member_info(2, "bob", false);
        // mallory is met as herself; bob as bob; then mallory rejoins as
        // "bob", or shows as the admin's "bob (0a1b2c3d)".
        met(
            &mut h,
            &[bob.clone(), member_info(3, "mallory", false)],
            &me,
            1,
        );
        for name in ["bob", "bob (0a1b2c3d)"] {
            let as_bob = member_info(3, name, false);
            let changes = met(&mut h, std::slice::from_ref(&as_bob), &me, 2);
            assert_eq!(changes.len(), 1, "{name}: {changes:?}");
            assert_eq!(changes[0].before, vec![(bob.fingerprint, false)]);
        }
        // bob himself, shown disambiguated, is no change.
        assert!(met(&mut h, &[member_info(2, "bob (4e5f6a7b)", false)], &me, 3).is_empty());
    }

    #[test]
    fn a_full_table_makes_room_and_still_says_key_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = history(&dir);
        let me = member_info(1, "alice", false).fingerprint;
        let bob = member_info(2, "bob", false);
        met(&mut h, std::slice::from_ref(&bob), &me, 0);
        assert!(h.set_verified(&bob.fingerprint, true).unwrap());
        // A flood of fresh keys fills the table.
        let flood: Vec<MemberInfo> = (0..MAX_CONTACTS as u32)
            .map(|i| {
                let mut fp = [0u8; 32];
                fp[..4].copy_from_slice(&i.to_be_bytes());
                fp[4] = 0xee;
                MemberInfo {
                    name: format!("x{i}"),
                    fingerprint: Fingerprint(fp),
                    safety_code: String::new(),
                    admin: false,
                }
            })
            .collect();
        met(&mut h, &flood, &me, 1);
        assert_eq!(h.contacts().unwrap().len(), MAX_CONTACTS);
        // The impostor still warns, bob (verified) was kept.
        let impostor = member_info(3, "bob", false);
        assert_eq!(met(&mut h, &[impostor], &me, 2).len(), 1);
        let all = h.contacts().unwrap();
        assert_eq!(all.len(), MAX_CONTACTS);
        assert!(all
            .iter()
            .any(|c| c.fingerprint == bob.fingerprint && c.verified));
    }

    #[test]
    fn a_row_of_another_type_is_skipped_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = history(&dir);
        let me = member_info(1, "alice", false).fingerprint;
        met(&mut h, &[member_info(2, "bob", false)], &me, 1);
        h.conn
            .execute("INSERT INTO meta (k, v) VALUES ('contact:zz', 42)", [])
            .unwrap();
        assert_eq!(h.contacts().unwrap().len(), 1);
        assert_eq!(
            met(&mut h, &[member_info(3, "bob", false)], &me, 2).len(),
            1
        );
    }

    #[test]
    fn the_file_names_no_contact_and_a_moved_row_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = history(&dir);
        let me = member_info(1, "alice", false).fingerprint;
        met(
            &mut h,
            &[
                member_info(2, "bobbington", false),
                member_info(3, "carol", false),
            ],
            &me,
            1,
        );
        let file = std::fs::read(dir.path().join("h.sqlite3")).unwrap();
        assert!(!file.windows(10).any(|w| w == b"bobbington"));
        let fp = member_info(2, "x", false).fingerprint;
        assert!(!file.windows(32).any(|w| w == fp.0));
        // bob's sealed row put under carol's tag: neither counts as carol.
        let rows: Vec<(String, Vec<u8>)> = h
            .conn
            .prepare("SELECT k, v FROM meta WHERE k LIKE 'contact:%'")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        h.conn
            .execute(
                "UPDATE meta SET v = ?1 WHERE k = ?2",
                rusqlite::params![rows[0].1, rows[1].0],
            )
            .unwrap();
        assert_eq!(h.contacts().unwrap().len(), 1);
    }
}
