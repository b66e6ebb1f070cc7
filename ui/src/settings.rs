//! What the apps remember between runs: the theme and the fields last
//! typed into the first screen. A small TOML file in the platform's config
//! directory (`TEAMCHAT_SETTINGS` names another file). Never a secret: no
//! password, passphrase or invite is written.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::NotifyLevel;

/// Environment variable naming the settings file.
pub const SETTINGS_ENV: &str = "TEAMCHAT_SETTINGS";

/// The remembered values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Dark theme (`None`: not chosen yet, dark).
    pub dark: Option<bool>,
    /// Last display name.
    pub name: Option<String>,
    /// Last relay address (admin).
    pub relay: Option<String>,
    /// Last relay certificate file or pin (admin).
    pub relay_cert: Option<String>,
    /// Whether notifications show the message's text (`None`: not chosen,
    /// off).
    pub notify_text: Option<bool>,
    /// What notifies, per room: "mentions", "all" or "nothing" (a room
    /// not here: mentions). Keyed by [`room_key`], so the file names no
    /// room.
    pub notify: std::collections::BTreeMap<String, String>,
}

/// The key a room's entries are kept under: a hash of its id (16 bytes
/// of SHA-256, hex), never the id itself (an id lets anyone knock on the
/// room at its relay).
pub fn room_key(room: &common::RoomId) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"teamchat/v1/settings-room");
    h.update(room.0);
    hex::encode(&h.finalize()[..16])
}

/// The word a [`NotifyLevel`] is remembered by.
pub fn level_name(level: NotifyLevel) -> &'static str {
    match level {
        NotifyLevel::Mentions => "mentions",
        NotifyLevel::All => "all",
        NotifyLevel::Nothing => "nothing",
    }
}

/// The [`NotifyLevel`] remembered as `word` (anything else: mentions).
pub fn level_from(word: &str) -> NotifyLevel {
    match word {
        "all" => NotifyLevel::All,
        "nothing" => NotifyLevel::Nothing,
        _ => NotifyLevel::Mentions,
    }
}

/// Sets `room`'s notification settings from what `settings` remember for
/// the room `id`, and the key they are remembered under.
pub fn restore_notify<T: crate::window::RoomWindow>(
    slot: &crate::rooms::RoomSlot<T>,
    settings: &Settings,
    id: &common::RoomId,
) {
    let id = room_key(id);
    let room = slot.room();
    room.set_room_id(id.as_str().into());
    if let Some(win) = slot.window() {
        win.room()
            .set_notify_text(settings.notify_text.unwrap_or(false));
    }
    room.set_notify_level(level_from(
        settings.notify.get(&id).map_or("", String::as_str),
    ));
}

impl Settings {
    /// Whether the dark theme is on.
    pub fn is_dark(&self) -> bool {
        self.dark.unwrap_or(true)
    }
}

/// `TEAMCHAT_SETTINGS`, or `settings.toml` in the platform's config directory.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os(SETTINGS_ENV) {
        return PathBuf::from(p);
    }
    match directories::ProjectDirs::from("org", "TeamChat", "teamchat") {
        Some(d) => d.config_dir().join("settings.toml"),
        None => PathBuf::from("teamchat-settings.toml"),
    }
}

/// Reads the settings; a missing or unreadable file gives the defaults (a
/// damaged file is not fatal: it is rewritten on the next change).
pub fn load(path: &Path) -> Settings {
    let small = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= 64 * 1024);
    if !small {
        return Settings::default();
    }
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| toml::from_str(&text).ok())
        .unwrap_or_default()
}

/// Writes the settings (through a temporary file, so a crash never leaves
/// half a file).
pub fn save(path: &Path, settings: &Settings) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let text = toml::to_string(settings).map_err(std::io::Error::other)?;
    // A fresh temporary file beside the target (created exclusively, so it
    // never follows a planted link), then renamed over it.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Loads, changes and saves in one step; errors are returned for the UI to
/// show, never fatal.
pub fn update(path: &Path, change: impl FnOnce(&mut Settings)) -> std::io::Result<()> {
    let mut s = load(path);
    change(&mut s);
    save(path, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/settings.toml");
        assert_eq!(load(&path), Settings::default());
        assert!(load(&path).is_dark());
        update(&path, |s| {
            s.dark = Some(false);
            s.name = Some("alice".into());
        })
        .unwrap();
        let s = load(&path);
        assert_eq!(s.dark, Some(false));
        assert_eq!(s.name.as_deref(), Some("alice"));
        std::fs::write(&path, "dark = [not toml").unwrap();
        assert_eq!(load(&path), Settings::default());
    }
}
