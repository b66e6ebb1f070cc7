//! TeamChat's user interface, shared by `teamchat-admin` and
//! `teamchat-member`: the `.slint` files in `ui/ui/` (compiled once by
//! `build.rs`) and the Rust glue that connects them to the driver.
//!
//! - [`room`]: fills the shared `Room` global from the driver's updates and
//!   turns its callbacks (send, approve, kick, ...) into engine commands;
//! - [`session`]: runs the driver on a tokio runtime, off the UI thread, and
//!   hands updates to the UI thread with `slint::invoke_from_event_loop`;
//! - [`admin`] and [`member`]: the two windows' first screens (open a room,
//!   join a room) and their validation;
//! - [`settings`]: the theme and last-used fields, remembered between runs;
//! - [`keys`]: loading, unlocking or creating the identity key without a
//!   terminal.

#[allow(
    missing_docs,
    missing_debug_implementations,
    unsafe_code,
    clippy::all,
    clippy::restriction,
    clippy::pedantic
)]
mod generated {
    slint::include_modules!();
}

pub use generated::{
    AdminWindow, BanRow, BannerKind, ChatLine, DirEntry, FileRow, LineKind, LineState, MemberRow,
    MemberWindow, MentionRow, Moderation, NotifyLevel, PendingRow, Room, RoomList, RoomRow, Theme,
    Transfers,
};

pub mod admin;
pub mod keys;
pub mod lines;
pub mod member;
pub mod moderation;
pub mod notify;
pub mod room;
pub mod rooms;
pub mod session;
pub mod settings;
pub mod transfers;
pub mod window;

/// The version shown in the About dialog.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
