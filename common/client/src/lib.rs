//! TeamChat's client runtime: everything the admin and member apps share
//! that touches the world — the network, the disk, the terminal.
//!
//! - [`driver`]: runs the `common` engine against a room's relays for a
//!   front end, reconnecting with backoff; built from [`connect`] (TLS and
//!   the relay's certificate), `session` (one connection's loop),
//!   `transfers` (the files' disk work) and `journal` (the history's
//!   writer thread).
//! - [`files`]: where received files go, and the names they are saved under.
//! - [`history`]: the room's encrypted local history (SQLite).
//! - [`admin_state`]: the admin's sealed per-room state file (bans, run
//!   number).
//! - [`terminal`]: the `--cli` / `--json` front end.
//!
//! The protocol itself (what to send, what to accept) is `common::engine`;
//! this crate performs its I/O. docs/ARCHITECTURE.md has the map.

pub mod admin_state;
mod api;
pub mod connect;
pub mod driver;
pub mod files;
#[cfg(feature = "test-support")]
pub mod fuzzing;
pub mod history;
mod journal;
mod outgoing;
mod session;
pub mod terminal;
#[cfg(feature = "test-support")]
pub mod testing;
mod transfers;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the engine's clock input.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
