//! Fuzz entry points of the client runtime's decoders (feature
//! `test-support`): the history rows and admin state files it reads from
//! disk, and the names it gives files other members send. Each takes
//! arbitrary bytes and must never panic; the cargo fuzz targets in `fuzz/`
//! and the corpus replay in `tests/fuzz_corpus.rs` call them. The wire
//! and engine entry points are in `common::fuzzing`.

/// A row of the history database, as stored (sealed), and the plaintext of
/// one sealed under the right key (a row written by a buggy or older
/// version must not break the reader either). Returns whether a row opened.
pub fn history_row(data: &[u8]) -> bool {
    crate::history::fuzz_row(data)
}

/// The admin's state file, as stored (sealed), and a plaintext sealed under
/// the right key, in either layout. Returns whether a state was read.
pub fn admin_state(data: &[u8]) -> bool {
    crate::admin_state::fuzz_state(data)
}

/// A file name from another member, made safe to create: never empty, `.`
/// or `..`, one path component, no control or invisible characters, at
/// most 200 bytes, no trailing dot or space, not a Windows device name, not
/// a name a file manager acts on, and already safe names stay as they are.
pub fn file_name(data: &[u8]) {
    let name = String::from_utf8_lossy(data);
    let safe = crate::files::safe_file_name(&name);
    assert!(!safe.is_empty() && safe != "." && safe != "..", "{safe:?}");
    assert!(
        safe.len() <= crate::files::MAX_SAVED_NAME,
        "{} bytes",
        safe.len()
    );
    assert!(
        !safe.contains(['/', '\\', '<', '>', ':', '"', '|', '?', '*']),
        "{safe:?}"
    );
    assert!(
        !safe
            .chars()
            .any(|c| c.is_control() || common::engine::is_format_char(c)),
        "{safe:?}"
    );
    assert!(!safe.ends_with(['.', ' ']), "{safe:?}");
    assert!(
        !crate::files::is_device_name(&safe),
        "a device name: {safe:?}"
    );
    assert!(
        !crate::files::acts_when_listed(&safe),
        "a name a file manager acts on: {safe:?}"
    );
    assert_eq!(
        crate::files::safe_file_name(&safe),
        safe,
        "a safe name changed"
    );
}

/// Seed inputs for the disk targets, as `(target, bytes)`: real history
/// rows and admin state files, with their plaintexts.
pub fn disk_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let rows = crate::history::fuzz_seeds().into_iter();
    let states = crate::admin_state::fuzz_seeds().into_iter();
    rows.map(|b| ("history_row", b))
        .chain(states.map(|b| ("admin_state", b)))
        .collect()
}
