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
