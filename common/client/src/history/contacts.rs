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

    fn contact_aad(tag: &[u8; 32]) -> Vec<u8> {
        let mut aad = AAD_CONTACT.to_vec();
        aad.push(0);
        aad.extend_from_slice(tag);
        aad
    }

    /// Everyone met so far (rows that do not open are skipped).
    pub fn contacts(&self) -> Result<Vec<Contact>, HistoryError> {
        let err = db_err(&self.path);
        let mut stmt = self
            .conn
            .prepare("SELECT k, v FROM meta WHERE k LIKE 'contact:%' ORDER BY rowid LIMIT ?1")
            .map_err(&err)?;
        let rows = stmt
            .query_map([i64::try_from(MAX_CONTACTS).unwrap_or(i64::MAX)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let (k, v) = row.map_err(&err)?;
            let Some(tag) = k
                .strip_prefix("contact:")
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                continue;
            };
            let contact = decode_payload::<Sealed>(&v, 2 * MAX_CONTACT_BYTES)
                .ok()
                .and_then(|s| open(&self.rows, &Self::contact_aad(&tag), &s).ok())
                .and_then(|p| decode_payload::<Contact>(&p, MAX_CONTACT_BYTES).ok())
                // A row moved under another key's tag does not count.
                .filter(|c| self.contact_tag(&c.fingerprint) == tag);
            out.extend(contact);
        }
        Ok(out)
    }

    fn keep_contact(&mut self, c: &Contact) -> Result<(), HistoryError> {
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
                rusqlite::params![format!("contact:{}", hex::encode(tag)), bytes],
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
        Ok(change_in(&all, name, fp))
    }

    /// Meets `members` (not `me`): each new key is a contact from now on,
    /// each new name is added to its contact; returns the key changes
    /// among them.
    pub fn meet(
        &mut self,
        members: &[MemberInfo],
        me: &Fingerprint,
        now_ms: u64,
    ) -> Result<Vec<KeyChange>, HistoryError> {
        let mut all = self.contacts()?;
        let mut changes = Vec::new();
        for m in members.iter().filter(|m| m.fingerprint != *me) {
            let name = m.name.clone();
            match all.iter_mut().find(|c| c.fingerprint == m.fingerprint) {
                Some(c) => {
                    if c.names.last() != Some(&name) {
                        c.names.retain(|n| *n != name);
                        c.names.push(name);
                        if c.names.len() > MAX_NAMES {
                            c.names.remove(0);
                        }
                        let c = c.clone();
                        self.keep_contact(&c)?;
                    }
                }
                None => {
                    if all.len() >= MAX_CONTACTS {
                        continue;
                    }
                    changes.extend(change_in(&all, &name, &m.fingerprint));
                    let c = Contact {
                        fingerprint: m.fingerprint,
                        names: vec![name],
                        first_seen_ms: now_ms,
                        verified: false,
                    };
                    self.keep_contact(&c)?;
                    all.push(c);
                }
            }
        }
        Ok(changes)
    }

    /// Marks the contact of `fp` verified (or not); false if we never met
    /// that key.
    pub fn set_verified(&mut self, fp: &Fingerprint, verified: bool) -> Result<bool, HistoryError> {
        let Some(mut c) = self.contacts()?.into_iter().find(|c| c.fingerprint == *fp) else {
            return Ok(false);
        };
        c.verified = verified;
        self.keep_contact(&c)?;
        Ok(true)
    }
}

/// The key change of meeting `name` with `fp`, given the contacts `all`.
fn change_in(all: &[Contact], name: &str, fp: &Fingerprint) -> Option<KeyChange> {
    if all.iter().any(|c| c.fingerprint == *fp) {
        return None;
    }
    let key = name_key(name);
    let before: Vec<(Fingerprint, bool)> = all
        .iter()
        .filter(|c| c.names.iter().any(|n| name_key(n) == key))
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

    #[test]
    fn a_known_name_with_a_new_key_is_a_key_change_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = history(&dir);
        let me = member_info(1, "alice", false).fingerprint;
        let bob = member_info(2, "bob", false);
        assert!(h
            .meet(&[bob.clone(), member_info(1, "alice", false)], &me, 1)
            .unwrap()
            .is_empty());
        assert_eq!(h.contacts().unwrap().len(), 1, "not ourselves");
        assert!(h.set_verified(&bob.fingerprint, true).unwrap());
        // "Bob" with another key (any case, or a look-alike): a key change.
        let new_bob = member_info(3, "B\u{43e}b", false);
        let changes = h.meet(std::slice::from_ref(&new_bob), &me, 2).unwrap();
        assert_eq!(
            changes,
            vec![KeyChange {
                name: new_bob.name.clone(),
                fingerprint: new_bob.fingerprint,
                before: vec![(bob.fingerprint, true)],
            }]
        );
        // Met once, the new key is a contact: no second warning.
        assert!(h.meet(&[new_bob], &me, 3).unwrap().is_empty());
        // A known key with a new name: the name is added, no warning.
        let renamed = member_info(2, "robert", false);
        assert!(h.meet(&[renamed], &me, 4).unwrap().is_empty());
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
        assert_eq!(h.contacts().unwrap().len(), 2);
    }

    #[test]
    fn the_file_names_no_contact_and_a_moved_row_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = history(&dir);
        let me = member_info(1, "alice", false).fingerprint;
        h.meet(
            &[
                member_info(2, "bobbington", false),
                member_info(3, "carol", false),
            ],
            &me,
            1,
        )
        .unwrap();
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
