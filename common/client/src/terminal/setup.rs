//! Who the terminal app is: its identity file (made on first start,
//! encrypted with a passphrase when one is given), the passphrase itself,
//! and the admin's roster file.

use std::path::{Path, PathBuf};

use common::crypto::{PrivateKey, MIN_RSA_BITS};
use common::identity::{self, IdentityError};
use common::ids::Fingerprint;

/// Environment variable holding the identity passphrase.
pub const PASSPHRASE_ENV: &str = "TEAMCHAT_PASSPHRASE";

/// The default identity file of `app` ("admin" or "member") in the
/// platform's data directory.
pub fn default_identity_path(app: &str) -> PathBuf {
    match directories::ProjectDirs::from("org", "TeamChat", "teamchat") {
        Some(d) => d.data_dir().join(format!("{app}-identity.pem")),
        None => PathBuf::from(format!("teamchat-{app}-identity.pem")),
    }
}

/// The passphrase from `TEAMCHAT_PASSPHRASE`, or asked on the terminal
/// when there is one (empty answer: none), else none.
pub fn passphrase(prompt: &str) -> Option<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return (!p.is_empty()).then(|| zeroize::Zeroizing::new(p));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        if let Ok(p) = rpassword::prompt_password(prompt) {
            return (!p.is_empty()).then(|| zeroize::Zeroizing::new(p));
        }
    }
    None
}

/// Loads the identity at `path`, or creates one there (RSA-3072, mode 0600,
/// encrypted when a passphrase is given). Returns the key and notes for the
/// user (warnings, "created ...").
pub fn load_or_create_identity(path: &Path) -> Result<(PrivateKey, Vec<String>), IdentityError> {
    let mut notes = Vec::new();
    match identity::load(path, None) {
        Ok(l) => {
            notes.extend(l.warnings.iter().map(ToString::to_string));
            return Ok((l.key, notes));
        }
        Err(IdentityError::PassphraseRequired(_)) => {
            let pass = passphrase(&format!("passphrase for {}: ", path.display()));
            let l = identity::load(path, pass.as_ref().map(|p| p.as_bytes()))?;
            notes.extend(l.warnings.iter().map(ToString::to_string));
            return Ok((l.key, notes));
        }
        Err(IdentityError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let key = PrivateKey::generate(MIN_RSA_BITS).map_err(|source| IdentityError::BadKey {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| IdentityError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let pass = passphrase("new identity: choose a passphrase (empty for none): ");
    identity::save(path, &key, pass.as_ref().map(|p| p.as_bytes()))?;
    notes.push(format!(
        "created a new identity at {} ({})",
        path.display(),
        if pass.is_some() {
            "passphrase-protected"
        } else {
            "not passphrase-protected"
        }
    ));
    Ok((key, notes))
}

/// Reads a roster file: one fingerprint (64 hex) per line; `#` comments.
pub fn read_roster(path: &Path) -> Result<Vec<Fingerprint>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read roster {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .parse::<Fingerprint>()
            .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        out.push(f);
    }
    Ok(out)
}
