//! What the protocol does next: a sans-IO client engine.
//!
//! The engine is a state machine. The driver feeds it relay frames, user
//! commands and the time (`now_ms`, milliseconds since the Unix epoch), and
//! carries out the [`Action`]s it returns: frames to send and events to show.
//! The engine never touches a socket, a thread or a clock, and draws every
//! random byte from the source it is built with (`rng.rs`: the OS CSPRNG in
//! the apps, a seed in tests), so every protocol rule is tested by feeding
//! frames in and reading actions out, and a test run replays bit for bit.
//!
//! One engine serves both apps: the admin role ([`admin`]) adds approvals,
//! key distribution and notices, the member role ([`member`]) joining and
//! following the admin, on top of what every participant does (`state/`:
//! install epochs, send, verify and open messages; `private.rs`: private
//! messages; [`files`]: file transfers). Its interface is in `types.rs`,
//! text cleaning in `text.rs`; this file holds the constants, the shared
//! helpers and the [`Engine`] both apps drive.
//!
//! Every frame that fails a check becomes an [`Event::Warning`] carrying a
//! typed [`Dropped`] (`warning/`), never a message.

pub mod admin;
pub mod files;
pub mod member;
pub mod mentions;
mod outbox;
mod private;
mod rng;
mod state;
mod text;
mod types;
mod warning;

use std::fmt;
use std::sync::Arc;

use crate::crypto::PrivateKey;
use crate::ids::RoomId;
use crate::wire::{decode_payload, ClientFrame, Envelope, RelayFrame};

pub use admin::{AdminConfig, AdminState, ApprovalPolicy, Ban};
pub use files::{FileEvent, FileSpec, TransferId};
pub use member::MemberConfig;
pub use outbox::{Delivery, Outgoing, MAX_OUTBOX, OUTBOX_EXPIRY_MS, SETTLE_MS, SHOWN_PER_SENDER};
pub use rng::Randomness;
pub use state::Claim;
pub(crate) use state::{
    check_signed, epoch_for, seal_signed, Checked, Core, EpochState, Participant,
};
pub use text::{clean_name, is_format_char, name_key, printable};
pub use types::{Action, Command, Event, MemberInfo};
pub use warning::{ChunkFault, Dropped, Kind, OfferRefusal, RosterError, Warning};

/// Longest text accepted in one message, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;
/// Longest display name, in bytes.
pub const MAX_NAME: usize = 64;
/// How long messages of the previous epoch are still accepted after a
/// rekey (from senders still in the room), for frames in flight.
pub const PREVIOUS_EPOCH_GRACE_MS: u64 = 10_000;
/// How often the admin signs a liveness beacon (run, epoch, time) for the
/// room.
pub const BEACON_EVERY_MS: u64 = 5_000;
/// A member that has heard no fresh beacon naming its epoch for this long
/// stops sending, with a warning: the relay may be hiding a removal.
pub const BEACON_STALE_MS: u64 = 20_000;
/// Beacon counts waiting to be settled, at most (a beacon lists each
/// sender once; more than this many senders wait for a later beacon).
pub(crate) const MAX_CLAIMS: usize = 16_384;

/// Epochs of this run remembered as held, for gap reports across epochs.
pub(crate) const HELD_EPOCHS: usize = 64;

pub(crate) fn warning(w: impl Into<Warning>) -> Action {
    Action::Event(Event::Warning(w.into()))
}

pub(crate) fn error(reason: String) -> Action {
    Action::Event(Event::Error { reason })
}

/// What both roles do with the relay's own keepalive and error frames.
pub(crate) fn relay_control(frame: &RelayFrame, out: &mut Vec<Action>) {
    match frame {
        RelayFrame::Ping(n) => out.push(Action::Send(ClientFrame::Pong(*n))),
        RelayFrame::Error(e) => {
            let code = e.code.to_string();
            let text = if e.message.is_empty() || e.message == code {
                format!("relay: {code}")
            } else {
                format!("relay: {code} ({})", printable(&e.message))
            };
            out.push(error(text));
        }
        _ => {}
    }
}

/// Decodes a relay payload into an envelope, or a warning.
pub(crate) fn envelope(payload: &[u8], max: usize) -> Result<Envelope, Dropped> {
    decode_payload(payload, max).map_err(|_| Dropped::Undecodable)
}

/// Either role, behind one interface for the driver.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub enum Engine {
    /// The admin app.
    Admin(Box<admin::Admin>),
    /// The member app.
    Member(Box<member::Member>),
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Admin(_) => f.write_str("Engine::Admin"),
            Engine::Member(_) => f.write_str("Engine::Member"),
        }
    }
}

impl Engine {
    /// The frames to send once connected (the hello).
    pub fn on_connected(&mut self, now_ms: u64) -> Vec<Action> {
        match self {
            Engine::Admin(a) => a.on_connected(now_ms),
            Engine::Member(m) => m.on_connected(now_ms),
        }
    }

    /// A frame from the relay.
    pub fn handle_frame(&mut self, now_ms: u64, frame: RelayFrame) -> Vec<Action> {
        match self {
            Engine::Admin(a) => a.handle_frame(now_ms, frame),
            Engine::Member(m) => m.handle_frame(now_ms, frame),
        }
    }

    /// A command from the user.
    pub fn handle_command(&mut self, now_ms: u64, cmd: Command) -> Vec<Action> {
        match self {
            Engine::Admin(a) => a.handle_command(now_ms, cmd),
            Engine::Member(m) => m.handle_command(now_ms, cmd),
        }
    }

    /// Time passes (call about once a second).
    pub fn handle_tick(&mut self, now_ms: u64) -> Vec<Action> {
        match self {
            Engine::Admin(a) => a.handle_tick(now_ms),
            Engine::Member(m) => m.handle_tick(now_ms),
        }
    }

    fn core(&self) -> &Core {
        match self {
            Engine::Admin(a) => &a.core,
            Engine::Member(m) => &m.core,
        }
    }

    fn core_mut(&mut self) -> &mut Core {
        match self {
            Engine::Admin(a) => &mut a.core,
            Engine::Member(m) => &mut m.core,
        }
    }

    /// The connection to the relay is lost (the driver reconnects): the
    /// lines in the outbox are said to wait, and new ones wait with them.
    pub fn on_disconnected(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if let Engine::Member(m) = self {
            m.core.seated = false;
        }
        self.core_mut().outbox_disconnected(now_ms, &mut out);
        out
    }

    /// We left: the lines the relay never confirmed are said so (the
    /// driver calls this after the last acknowledgements had their chance).
    pub fn outbox_left(&mut self, out: &mut Vec<Action>) {
        self.core_mut().outbox_left(out);
    }

    /// We left and the client runtime keeps the lines that wait for the
    /// next start (with the history): they are said to be kept.
    pub fn outbox_kept(&mut self, out: &mut Vec<Action>) {
        self.core_mut().outbox_kept(out);
    }

    /// A summary that changes whenever the outbox does (a line in, out,
    /// or sealed for the first time): the client runtime keeps the outbox
    /// on disk when it changes.
    pub fn outbox_mark(&self) -> (usize, u64, usize) {
        let lines = self.core().outbox_lines();
        lines.fold((0, 0, 0), |(n, ids, sealed), l| {
            (
                n + 1,
                ids.wrapping_add(l.id),
                sealed + usize::from(l.first.is_some()),
            )
        })
    }

    /// How many of our lines the relay has not taken yet.
    pub fn pending_lines(&self) -> usize {
        self.core().outbox_lines().count()
    }

    /// Our lines the relay has not taken yet, oldest first: what the
    /// client runtime keeps so that a restart loses none of them.
    pub fn outbox(&self) -> Vec<Outgoing> {
        self.core().outbox_lines().cloned().collect()
    }

    /// Puts back a line kept from an earlier run of the app, to be sent
    /// again (as a resent line, if it was sealed before); false if the
    /// outbox is full or the line is too long.
    pub fn restore_line(&mut self, line: Outgoing) -> bool {
        self.core_mut().restore_line(line)
    }

    /// Our identity.
    pub fn me(&self) -> Arc<PrivateKey> {
        Arc::clone(&self.core().me)
    }

    /// The room.
    pub fn room(&self) -> RoomId {
        self.core().room
    }

    /// Whether we may send to the room now (a file's chunks wait while we
    /// may not).
    pub fn can_send(&self, now_ms: u64) -> bool {
        self.core().can_send(now_ms)
    }

    /// Whether our transfer `t` is still being sent.
    pub fn sending(&self, t: &TransferId) -> bool {
        self.core().sending(t)
    }

    /// The largest file sent or accepted (default 100 MiB).
    pub fn set_max_file_size(&mut self, bytes: u64) {
        self.core_mut().files.max_size = bytes;
    }

    /// The largest file sent or accepted.
    pub fn max_file_size(&self) -> u64 {
        self.core().files.max_size
    }

    /// Sets our message counter and what our next first message says of
    /// earlier epochs: a member that lies about its counters, for tests
    /// only (feature `test-support`).
    #[cfg(feature = "test-support")]
    pub fn lie_about_counters(&mut self, seq: u64, prev: Option<crate::wire::Prev>) {
        let core = self.core_mut();
        core.my_seq = seq;
        if let Some(p) = prev {
            core.my_prev = p;
        }
    }

    /// (Admin) what must be kept across restarts, if it changed since the
    /// last call.
    pub fn take_admin_state(&mut self) -> Option<AdminState> {
        match self {
            Engine::Admin(a) => a.take_state(),
            Engine::Member(_) => None,
        }
    }

    /// (Member) the highest admin run held in this room; 0 for the admin.
    pub fn run_floor(&self) -> u64 {
        match self {
            Engine::Admin(_) => 0,
            Engine::Member(m) => m.run_floor(),
        }
    }

    /// (Member) never adopt an admin run below `floor` (kept from before a
    /// restart).
    pub fn raise_run_floor(&mut self, floor: u64) {
        if let Engine::Member(m) = self {
            m.raise_run_floor(floor);
        }
    }

    /// The members of the current epoch.
    pub fn members(&self) -> Vec<MemberInfo> {
        let core = self.core();
        core.current
            .as_ref()
            .map(EpochState::infos)
            .unwrap_or_default()
    }
}
