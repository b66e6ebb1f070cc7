//! The identity key for a window: found at start (cheap), then unlocked or
//! created when the user submits the first screen (slow: key derivation or
//! RSA-3072 generation, so the apps run it off the UI thread).

use std::path::Path;
use std::sync::Arc;

use common::crypto::{PrivateKey, MIN_RSA_BITS};
use common::identity::{self, IdentityError};

/// What is at the identity path.
#[derive(Debug)]
pub enum KeyState {
    /// A usable key (not passphrase-protected), with warnings to show.
    Ready(Arc<PrivateKey>, Vec<String>),
    /// An encrypted key: ask for the passphrase.
    Locked,
    /// No key yet: one is created (optionally protected by a passphrase).
    Missing,
    /// A file that cannot be used; the message says why.
    Broken(String),
}

/// Looks at the identity file without asking for anything.
pub fn probe(path: &Path) -> KeyState {
    match identity::load(path, None) {
        Ok(l) => KeyState::Ready(
            Arc::new(l.key),
            l.warnings.iter().map(ToString::to_string).collect(),
        ),
        Err(IdentityError::PassphraseRequired(_)) => KeyState::Locked,
        Err(IdentityError::NotFound(_)) => KeyState::Missing,
        Err(e) => KeyState::Broken(e.to_string()),
    }
}

/// Unlocks the key at `path` with `passphrase`, or creates one there when
/// there is none (protected by `passphrase` when it is not empty). Returns
/// the key and notes for the user.
pub fn unlock_or_create(
    path: &Path,
    passphrase: &str,
) -> Result<(PrivateKey, Vec<String>), String> {
    let pass = (!passphrase.is_empty()).then_some(passphrase.as_bytes());
    match identity::load(path, pass) {
        Ok(l) => Ok((l.key, l.warnings.iter().map(ToString::to_string).collect())),
        Err(IdentityError::NotFound(_)) => {
            let key = PrivateKey::generate(MIN_RSA_BITS).map_err(|e| e.to_string())?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            identity::save(path, &key, pass).map_err(|e| e.to_string())?;
            let note = format!(
                "created a new identity at {} ({})",
                path.display(),
                if pass.is_some() {
                    "passphrase-protected"
                } else {
                    "not passphrase-protected"
                }
            );
            Ok((key, vec![note]))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A window's identity: where its key lives, what is there, and where slow
/// key work runs (`None`: inline, for tests).
#[derive(Debug)]
pub struct Identity {
    /// The key file.
    pub path: std::path::PathBuf,
    /// What is at `path` (becomes `Ready` once unlocked or created).
    pub state: KeyState,
    runtime: Option<tokio::runtime::Handle>,
}

/// The key and notes for the user, or why there is none.
pub type Obtained = Result<(Arc<PrivateKey>, Vec<String>), String>;

impl Identity {
    /// Probes `path` (cheap: no passphrase, no key generation).
    pub fn probe(path: std::path::PathBuf, runtime: Option<tokio::runtime::Handle>) -> Self {
        let state = probe(&path);
        Identity {
            path,
            state,
            runtime,
        }
    }
}

/// Gets the key for a submitted form and hands it to `done` on the UI
/// thread: at once when it is ready, else after unlocking it with
/// `passphrase` or creating it (key derivation or RSA generation take
/// seconds, so they run on the runtime's blocking pool). What the user must
/// fix first (an unusable file, a missing passphrase) comes back as `Err`
/// without calling `done`.
pub fn obtain(
    id: &std::rc::Rc<std::cell::RefCell<Identity>>,
    passphrase: zeroize::Zeroizing<String>,
    done: impl FnOnce(Obtained) + 'static,
) -> Result<(), String> {
    let (path, runtime) = {
        let me = id.borrow();
        match &me.state {
            KeyState::Ready(k, notes) => {
                let ready = (k.clone(), notes.clone());
                drop(me);
                done(Ok(ready));
                return Ok(());
            }
            KeyState::Broken(e) => return Err(format!("Your identity cannot be used: {e}")),
            KeyState::Locked if passphrase.is_empty() => {
                return Err("Enter the passphrase of your identity key.".into())
            }
            KeyState::Locked | KeyState::Missing => {}
        }
        (me.path.clone(), me.runtime.clone())
    };
    let id = id.clone();
    let finish = move |r: Result<(PrivateKey, Vec<String>), String>| {
        let r = r.map(|(key, notes)| {
            let key = Arc::new(key);
            id.borrow_mut().state = KeyState::Ready(key.clone(), notes.clone());
            (key, notes)
        });
        done(r);
    };
    let Some(rt) = runtime else {
        finish(unlock_or_create(&path, &passphrase));
        return Ok(());
    };
    let job = rt.spawn_blocking(move || unlock_or_create(&path, &passphrase));
    slint::spawn_local(async move {
        finish(
            job.await
                .unwrap_or_else(|e| Err(format!("key task failed: {e}"))),
        );
    })
    .map(drop)
    .map_err(|e| format!("cannot unlock the key: {e}"))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use zeroize::Zeroizing;

    use super::*;

    fn ask(id: &Rc<RefCell<Identity>>, pass: &str) -> Result<Option<Obtained>, String> {
        let got = Rc::new(RefCell::new(None));
        let g = got.clone();
        obtain(id, Zeroizing::new(pass.into()), move |r| {
            *g.borrow_mut() = Some(r);
        })?;
        let r = got.borrow_mut().take();
        Ok(r)
    }

    #[test]
    fn a_locked_key_needs_its_passphrase_then_stays_unlocked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.pem");
        let key = common::test_keys::key(0);
        identity::save(&path, key, Some(b"open sesame")).unwrap();
        let id = Rc::new(RefCell::new(Identity::probe(path, None)));
        assert!(matches!(id.borrow().state, KeyState::Locked));

        let err = ask(&id, "").unwrap_err();
        assert!(err.contains("passphrase"), "{err}");
        let wrong = ask(&id, "not it").unwrap().unwrap().unwrap_err();
        assert!(wrong.contains("wrong passphrase"), "{wrong}");
        assert!(
            matches!(id.borrow().state, KeyState::Locked),
            "still locked"
        );

        let (k, _) = ask(&id, "open sesame").unwrap().unwrap().unwrap();
        assert_eq!(k.public().fingerprint(), key.public().fingerprint());
        assert!(matches!(id.borrow().state, KeyState::Ready(..)));
        // Ready now: no passphrase needed again.
        let (again, _) = ask(&id, "").unwrap().unwrap().unwrap();
        assert_eq!(again.public().fingerprint(), key.public().fingerprint());
    }

    #[test]
    fn a_broken_file_is_refused_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.pem");
        std::fs::write(&path, "not a key").unwrap();
        let id = Rc::new(RefCell::new(Identity::probe(path, None)));
        let err = ask(&id, "").unwrap_err();
        assert!(err.starts_with("Your identity cannot be used"), "{err}");
    }
}
