//! What a front end and the client runtime say to each other: the
//! [`Request`]s a front end sends, the [`Update`]s it receives (with the
//! files' [`FileUpdate`]s and the final [`StopReason`]), and the runtime's
//! [`Options`]. Types only: every part of the runtime and both front ends
//! use them, and they use nothing of the runtime but its settings' types.

use std::path::PathBuf;
use std::time::Duration;

use common::engine::{Command, Event, MemberInfo, TransferId};
use common::ids::Fingerprint;

use crate::connect::ConnectError;
use crate::files::FileOptions;
use crate::history::{HistoryOptions, Loaded};

/// Why the driver stopped for good. The apps turn it into their exit
/// status ([`StopReason::exit_code`]); the window shows every reason but
/// [`StopReason::Left`] as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StopReason {
    /// We left the room: the front end asked, or dropped its command
    /// channel.
    #[error("left the room")]
    Left,
    /// A connection attempt failed in a way retrying cannot mend: the
    /// relay's certificate is not the trusted one, or the CA file or TLS
    /// settings cannot be used ([`ConnectError::is_fatal`]).
    #[error(transparent)]
    Refused(ConnectError),
    /// The driver was given no relay to connect to.
    #[error("no relay to connect to")]
    NoRelay,
    /// The driver's task ended without saying why (it panicked): seen by a
    /// front end whose update channel closed.
    #[error("the connection task ended unexpectedly")]
    Ended,
}

impl StopReason {
    /// Every stop but leaving is a failure.
    pub fn is_failure(&self) -> bool {
        !matches!(self, StopReason::Left)
    }

    /// The process exit status: success after leaving, failure otherwise.
    pub fn exit_code(&self) -> std::process::ExitCode {
        if self.is_failure() {
            std::process::ExitCode::FAILURE
        } else {
            std::process::ExitCode::SUCCESS
        }
    }
}

/// What the driver reports to the front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Trying this relay.
    Connecting {
        /// host:port
        relay: String,
    },
    /// TLS is up and the relay's certificate checked.
    Secured {
        /// host:port
        relay: String,
        /// SHA-256 of the certificate the relay presented.
        cert: Fingerprint,
    },
    /// The connection ended; the driver retries after `retry_in`.
    Disconnected {
        /// Why.
        reason: String,
        /// The code of the relay's error frame, when the relay closed the
        /// connection and said why (`SlowReader`: we fell behind the room).
        relay_code: Option<common::wire::ErrorCode>,
        /// Pause before the next attempt.
        retry_in: Duration,
    },
    /// The driver stopped for good (wrong certificate, or leave).
    Stopped {
        /// Why.
        reason: StopReason,
    },
    /// Something the engine wants shown.
    Engine(Event),
    /// A local problem the user should know about (the disk, the history
    /// file, the admin's state file); the engine's own warnings come as
    /// [`Event::Warning`].
    Warning(String),
    /// A file transfer moved on.
    File(FileUpdate),
    /// Entries of the room's local history, oldest first: at the start
    /// (the earlier messages, shown above a divider) or on request.
    History {
        /// What was found.
        loaded: Loaded,
        /// Asked for with [`Request::History`] (not the opening load).
        requested: bool,
    },
    /// The room's local history was cleared.
    HistoryCleared,
    /// A name we know (or one that looks like it) with a key we never met:
    /// said before anything from that key is shown. (For a join request,
    /// said with it, before the admin decides.)
    KeyChanged(crate::history::KeyChange),
    /// Everyone met so far, after each meeting and on request.
    Contacts(Vec<crate::history::Contact>),
    /// We are back in the room after a lost connection: what was said in
    /// the room while we were away never reached us (the relay keeps
    /// nothing, and the epochs of that time were not ours); lines we missed
    /// before we left are reported as [`Event::Missed`].
    Away {
        /// How long we were out of the room.
        away: Duration,
        /// When the connection was lost (ms since the Unix epoch).
        since_ms: u64,
    },
}

impl Update {
    /// The words the apps show for [`Update::Away`].
    pub fn away_text(away: Duration, since_ms: u64) -> String {
        format!(
            "you were away for {:.1} s (since {} UTC): what was said in the room meanwhile \
             never reached you (the relay keeps nothing, and you held no key for it); lines \
             missed before you left are reported as missed",
            away.as_secs_f32(),
            crate::history::clock_utc(since_ms)
        )
    }
}

/// What a front end asks of the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A protocol command, for the engine ([`Command::Leave`] also ends
    /// the driver).
    Engine(Command),
    /// Offer a file: to the room, or (`to`) to one member alone.
    SendFile {
        /// The file.
        path: PathBuf,
        /// The one member it is for, or `None` for the whole room.
        to: Option<Fingerprint>,
    },
    /// Save an offered file that waits to be accepted.
    AcceptFile(TransferId),
    /// Stop a transfer, ours or incoming; its partial file is deleted.
    CancelFile(TransferId),
    /// Show the last N entries of the room's local history.
    History(usize),
    /// Delete the room's local history on this computer.
    ClearHistory,
    /// Everyone met so far ([`Update::Contacts`] answers).
    Contacts,
    /// Mark a contact verified (safety codes compared) or not.
    Verify(Fingerprint, bool),
}

impl From<Command> for Request {
    fn from(c: Command) -> Self {
        Request::Engine(c)
    }
}

/// The driver's settings besides the engine and the relays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Files: where they go, limits, pace.
    pub files: FileOptions,
    /// The encrypted local history, or none (`--no-history`).
    pub history: Option<HistoryOptions>,
    /// (Admin) the folder of its per-room state files
    /// ([`crate::admin_state`]): bans and the run number are kept there as
    /// they change. `None` keeps them in memory only (tests).
    pub admin_state: Option<PathBuf>,
    /// How soon a dead or half-open link to the relay is found.
    pub liveness: Liveness,
}

/// How soon a dead link to the relay is found: every `keepalive` the app
/// pings the relay (the relay answers as soon as it reads the ping; at
/// most every 4 s, the pace the protocol promises the relay), and after
/// `silence` (and a second's grace) with nothing from the relay and none
/// of our writes taken, the link counts as lost and the app reconnects (or
/// fails over to another relay of the invite). `silence` should be several
/// times `keepalive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Time between the app's pings.
    pub keepalive: std::time::Duration,
    /// Silence after which the link counts as lost.
    pub silence: std::time::Duration,
}

impl Default for Liveness {
    /// A ping every 2 s; lost after 6 s of silence (and a second's
    /// grace): three pings' worth, so a 300 ms round trip with a few per
    /// cent loss (TCP resends within a second or two) never counts as a
    /// dead link.
    fn default() -> Self {
        Liveness {
            keepalive: crate::session::KEEPALIVE,
            silence: crate::session::RELAY_SILENCE,
        }
    }
}

/// What happens to files, for the front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileUpdate {
    /// We offered a file; its chunks are being sent.
    Sending {
        /// The transfer.
        transfer: TransferId,
        /// Its name.
        name: String,
        /// Its size.
        size: u64,
        /// The one member it goes to, or `None` for the whole room.
        to: Option<MemberInfo>,
    },
    /// Someone offers a file (signature verified).
    Offered {
        /// Who.
        from: MemberInfo,
        /// The transfer.
        transfer: TransferId,
        /// The offered name (shown; saved under its safe form).
        name: String,
        /// Size in bytes.
        size: u64,
        /// The media type the sender claims.
        media_type: String,
        /// Saved without asking (at most the auto-accept size); otherwise
        /// it waits for [`crate::driver::Request::AcceptFile`].
        accepted: bool,
        /// Sent to us alone.
        private: bool,
    },
    /// Bytes sent or received so far (at most a few times a second).
    Progress {
        /// The transfer.
        transfer: TransferId,
        /// Bytes so far.
        done: u64,
        /// All bytes.
        total: u64,
        /// Ours, going out.
        outgoing: bool,
    },
    /// Our file went out entirely.
    Sent {
        /// The transfer.
        transfer: TransferId,
    },
    /// An incoming file is complete and verified and waits to be accepted.
    Ready {
        /// The transfer.
        transfer: TransferId,
    },
    /// An incoming file is complete, verified and saved here.
    Saved {
        /// The transfer.
        transfer: TransferId,
        /// Where.
        path: PathBuf,
    },
    /// The transfer ended without a file; any partial file was deleted.
    Failed {
        /// The transfer.
        transfer: TransferId,
        /// Why.
        reason: String,
    },
}
