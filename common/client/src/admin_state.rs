//! What the admin keeps for a room across restarts, on disk beside its
//! identity: the run number (so members never take a restarted admin for
//! an older run, nor an older run for the current one), the removed
//! members, and the room passwords removed members knew ([`AdminState`]).
//!
//! One file per room, named by a keyed tag of the room id (no room id on
//! disk), mode 0600, sealed (AES-256-CBC + HMAC-SHA256) under keys derived
//! from the identity, and replaced atomically (written beside, synced,
//! renamed), so a crash leaves the old state or the new one, never half.
//! A file that does not open is an error the admin must act on: starting
//! without it would forget who was removed.

use std::io::Write;
use std::path::{Path, PathBuf};

use common::crypto::seal::{open, seal, SealKeys};
use common::crypto::{OsRng, PrivateKey};
use common::engine::AdminState;
use common::ids::RoomId;
use common::wire::{decode_payload, encode_payload, Sealed};

const AAD_STATE: &[u8] = b"teamchat/v1/aad/admin-state";
/// Largest state file read (4,096 bans with their names fit easily).
const MAX_STATE: usize = 1 << 20;

/// The layout the first release with a state file wrote (one password
/// check value at most): read and carried over.
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct FirstLayout {
    run: u64,
    #[serde(deserialize_with = "common::wire::bounded::vec")]
    bans: Vec<common::engine::admin::Ban>,
    password_suspended: Option<[u8; 32]>,
}

impl From<FirstLayout> for AdminState {
    fn from(old: FirstLayout) -> Self {
        AdminState {
            run: old.run,
            bans: old.bans,
            compromised: old.password_suspended.into_iter().collect(),
        }
    }
}

/// The state in an opened file, in either layout.
fn decode_plain(plain: &[u8]) -> Option<AdminState> {
    decode_payload::<AdminState>(plain, MAX_STATE)
        .or_else(|_| decode_payload::<FirstLayout>(plain, MAX_STATE).map(Into::into))
        .ok()
}

/// The fuzz entry point ([`crate::fuzzing::admin_state`]): `data` as a
/// state file's bytes, and as the plaintext of one sealed under the right
/// key. A state that opens must save and open again unchanged.
#[cfg(feature = "test-support")]
#[allow(clippy::expect_used)]
pub(crate) fn fuzz_state(data: &[u8]) -> bool {
    let file = fuzz_file();
    let Some((&mode, data)) = data.split_first() else {
        return false;
    };
    let state = if mode & 1 == 0 {
        file.decode(data)
    } else {
        let sealed = seal(&mut OsRng, &file.keys, &file.aad(), data);
        let bytes = encode_payload(&sealed, MAX_STATE + 1024).ok();
        bytes.and_then(|b| file.decode(&b))
    };
    let Some(state) = state else {
        return false;
    };
    let plain = encode_payload(&state, MAX_STATE).expect("a read state re-encodes");
    assert!(
        decode_plain(&plain) == Some(state),
        "decode(encode(state)) != state"
    );
    true
}

/// The state file the fuzz target reads: fixed keys, so that committed
/// seeds open on every machine.
#[cfg(feature = "test-support")]
fn fuzz_file() -> StateFile {
    let keys = SealKeys::from_parts([0x51; 32], [0x52; 32]);
    let tag = keys.tag(RoomId([7; 16]).as_bytes());
    StateFile {
        path: PathBuf::from("fuzz.state"),
        keys,
        tag,
    }
}

/// Seed inputs for [`fuzz_state`]: a state file as saved (mode 0) and its
/// plaintext in both layouts (mode 1).
#[cfg(feature = "test-support")]
#[allow(clippy::expect_used)]
pub(crate) fn fuzz_seeds() -> Vec<Vec<u8>> {
    use common::engine::admin::Ban;
    let file = fuzz_file();
    let state = AdminState {
        run: 7,
        bans: vec![Ban {
            fingerprint: common::Fingerprint([0x22; 32]),
            name: "mallory".into(),
            at_ms: 1_700_000_000_000,
        }],
        compromised: vec![[5; 32], [6; 32]],
    };
    let plain = encode_payload(&state, MAX_STATE).expect("a small state encodes");
    let sealed = seal(&mut OsRng, &file.keys, &file.aad(), &plain);
    let stored = encode_payload(&sealed, MAX_STATE + 1024).expect("a state seals");
    let first = encode_payload(&(7u64, &state.bans, Some([5u8; 32])), MAX_STATE)
        .expect("the first layout encodes");
    vec![
        [&[0][..], &stored].concat(),
        [&[1][..], &plain].concat(),
        [&[1][..], &first].concat(),
    ]
}

/// Why the admin's state could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing the file failed.
    #[error("admin state {path}: {why}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The file is not one this identity wrote for this room (damaged,
    /// altered, or another identity's).
    #[error("admin state {0} does not open with this identity (damaged or altered); move it away to start this room without its bans and run number")]
    Damaged(PathBuf),
}

/// The state file of one room.
pub struct StateFile {
    path: PathBuf,
    keys: SealKeys,
    tag: [u8; 32],
}

impl std::fmt::Debug for StateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The folder of the admin's state files beside the identity file `identity`
/// (`admin-identity.pem` → `admin-identity.rooms/`).
pub fn folder_for(identity: &Path) -> PathBuf {
    let stem = identity
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "identity".into());
    identity.with_file_name(format!("{stem}.rooms"))
}

impl StateFile {
    /// The state file of `room` in `folder`, sealed with `me`'s keys.
    pub fn new(folder: &Path, me: &PrivateKey, room: &RoomId) -> Self {
        let keys = me.admin_state_keys();
        let tag = keys.tag(room.as_bytes());
        let path = folder.join(format!("{}.state", hex::encode(&tag[..16])));
        StateFile { path, keys, tag }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn aad(&self) -> Vec<u8> {
        let mut v = AAD_STATE.to_vec();
        v.push(0);
        v.extend_from_slice(&self.tag);
        v
    }

    fn io(&self) -> impl Fn(std::io::Error) -> StateError + '_ {
        move |e| StateError::Io {
            path: self.path.clone(),
            why: e.to_string(),
        }
    }

    /// The state kept, or the default for a room never opened here.
    pub fn load(&self) -> Result<AdminState, StateError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AdminState::default()),
            Err(e) => return Err(self.io()(e)),
        };
        if !meta.is_file() || meta.len() > MAX_STATE as u64 + 1024 {
            return Err(StateError::Damaged(self.path.clone()));
        }
        let bytes = std::fs::read(&self.path).map_err(self.io())?;
        self.decode(&bytes)
            .ok_or_else(|| StateError::Damaged(self.path.clone()))
    }

    /// The state in a file's bytes, if they open under this file's key and
    /// hold either layout.
    fn decode(&self, bytes: &[u8]) -> Option<AdminState> {
        decode_payload::<Sealed>(bytes, MAX_STATE)
            .ok()
            .and_then(|s| open(&self.keys, &self.aad(), &s).ok())
            .and_then(|plain| decode_plain(&plain))
    }

    /// Keeps `state`: written beside the file, synced, then renamed over it.
    pub fn save(&self, state: &AdminState) -> Result<(), StateError> {
        let bad = |e: common::wire::FrameError| StateError::Io {
            path: self.path.clone(),
            why: e.to_string(),
        };
        let plain = zeroize::Zeroizing::new(encode_payload(state, MAX_STATE).map_err(bad)?);
        let sealed = seal(&mut OsRng, &self.keys, &self.aad(), &plain);
        let bytes = encode_payload(&sealed, MAX_STATE + 1024).map_err(bad)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(self.io())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            }
        }
        // A fresh file of our own (never through a link someone left).
        let tmp = self.path.with_extension("state.new");
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(self.io()(e)),
            _ => {}
        }
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp).map_err(self.io())?;
        f.write_all(&bytes).map_err(self.io())?;
        f.sync_all().map_err(self.io())?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(self.io())?;
        // The rename itself is durable once the folder is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Starts a run: loads the state, gives it the next run number, and
    /// keeps that before anything is announced, so a crash right after
    /// cannot hand the same number to two runs.
    pub fn begin_run(&self, now_ms: u64) -> Result<AdminState, StateError> {
        let mut state = self.load()?;
        state.run = state.next_run(now_ms);
        self.save(&state)?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::engine::Ban;
    use common::test_keys::shared;
    use common::Fingerprint;

    const ROOM: RoomId = RoomId([5; 16]);

    #[test]
    fn runs_only_go_up_and_bans_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path(), &shared(4), &ROOM);
        let first = f.begin_run(1_000).unwrap();
        assert_eq!(first.run, 1_000);
        let mut s = first.clone();
        s.bans.push(Ban {
            fingerprint: Fingerprint([9; 32]),
            name: "carol".into(),
            at_ms: 1_500,
        });
        f.save(&s).unwrap();
        // A clock that went back still gives a larger run number.
        let second = f.begin_run(500).unwrap();
        assert_eq!(second.run, 1_001);
        assert_eq!(second.bans, s.bans);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(f.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
        // Nothing in clear: not the name, not the room id.
        let bytes = std::fs::read(f.path()).unwrap();
        assert!(!bytes.windows(5).any(|w| w == b"carol"));
        assert!(!bytes.windows(16).any(|w| w == ROOM.as_bytes()));
    }

    #[test]
    fn a_file_in_the_first_layout_is_read_with_its_password_check() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path(), &shared(4), &ROOM);
        let old = FirstLayout {
            run: 7,
            bans: vec![Ban {
                fingerprint: Fingerprint([9; 32]),
                name: "carol".into(),
                at_ms: 1_500,
            }],
            password_suspended: Some([3; 32]),
        };
        let plain = encode_payload(&old, MAX_STATE).unwrap();
        let sealed = seal(&mut OsRng, &f.keys, &f.aad(), &plain);
        std::fs::write(f.path(), encode_payload(&sealed, MAX_STATE + 1024).unwrap()).unwrap();
        let state = f.load().unwrap();
        assert_eq!(state.run, 7);
        assert_eq!(state.bans.len(), 1);
        assert_eq!(state.compromised, vec![[3; 32]]);
    }

    #[test]
    fn a_damaged_or_foreign_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path(), &shared(4), &ROOM);
        f.begin_run(1).unwrap();
        // Another identity's keys (same path on purpose) do not open it.
        let other = StateFile {
            path: f.path().to_path_buf(),
            keys: shared(5).admin_state_keys(),
            tag: f.tag,
        };
        assert!(matches!(other.load(), Err(StateError::Damaged(_))));
        // A flipped byte is refused, and nothing panics on a short file.
        let mut bytes = std::fs::read(f.path()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(f.path(), &bytes).unwrap();
        assert!(matches!(f.load(), Err(StateError::Damaged(_))));
        std::fs::write(f.path(), [1, 2, 3]).unwrap();
        assert!(matches!(f.load(), Err(StateError::Damaged(_))));
        // Another room has its own file.
        let g = StateFile::new(dir.path(), &shared(4), &RoomId([6; 16]));
        assert_ne!(f.path(), g.path());
        assert_eq!(g.load().unwrap(), AdminState::default());
    }
}
