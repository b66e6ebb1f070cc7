//! TeamChat's client runtime: everything the admin and member apps share
//! that touches the world — the network, the disk, the terminal.
//!
//! - [`driver`]: connects to the relay over TLS, checks its certificate,
//!   runs the `common` engine and reconnects with backoff.
//! - [`files`]: where received files go, and the names they are saved under.
//! - [`history`]: the room's encrypted local history (SQLite).
//! - [`admin_state`]: the admin's sealed per-room state file (bans, run
//!   number).
//! - [`terminal`]: the `--cli` / `--json` front end.
//!
//! The protocol itself (what to send, what to accept) is `common::engine`;
//! this crate performs its I/O. docs/ARCHITECTURE.md has the map.

pub mod admin_state;
pub mod driver;
pub mod files;
#[cfg(feature = "test-support")]
pub mod fuzzing;
pub mod history;
pub mod terminal;
