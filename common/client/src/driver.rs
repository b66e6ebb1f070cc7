//! The client runtime's entry point: a tokio task that runs the engine
//! against a room's relays for a front end (the window or the terminal),
//! reconnecting with backoff, until the front end leaves or a relay's
//! certificate is wrong.
//!
//! A front end sends [`Request`]s (protocol commands for the engine, and
//! the runtime's own: files and history) and receives [`Update`]s. The
//! parts: [`crate::connect`] reaches a relay, [`crate::session`] runs one
//! connection, [`crate::transfers`] does the files' disk work and
//! [`crate::journal`] the history's.

use std::path::PathBuf;
use std::time::Duration;

use common::engine::{Command, Engine, Event, TransferId};
use common::ids::Fingerprint;
use common::invite::RelayEndpoint;
use tokio::sync::mpsc;

pub use crate::connect::{
    cert_file_fingerprint, connect, connect_pinned, presented_fingerprint, ConnectError, Connector,
    Trust, CONNECT_TIMEOUT,
};
use crate::files::FileOptions;
use crate::history::{HistoryOptions, Loaded};
use crate::journal::Journal;
use crate::now_ms;
use crate::session::{session, Runtime, SessionEnd};
pub use crate::transfers::FileUpdate;
use crate::transfers::Transfers;

/// First and longest pause between reconnection attempts.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest pause between reconnection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Silence from the relay after which the connection counts as dead (the
/// relay pings idle connections every 30 s by default).
pub const RELAY_SILENCE: Duration = Duration::from_secs(120);
/// A session shorter than this does not reset the backoff (a relay that
/// closes right after the handshake is not hammered).
const STABLE_SESSION: Duration = Duration::from_secs(10);

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
}

/// Runs `engine` against the relays until told to leave or a certificate
/// is wrong. Requests come in on `requests`; updates go out on `updates`,
/// the last one [`Update::Stopped`]. Ends when `requests` closes (the front
/// end quit) or after [`Command::Leave`].
/// Files go to the platform's download folder with the default limits.
pub async fn run(
    engine: Engine,
    relays: Vec<RelayEndpoint>,
    trust: Trust,
    requests: mpsc::Receiver<Request>,
    updates: mpsc::Sender<Update>,
) {
    run_with_files(
        engine,
        relays,
        trust,
        FileOptions::default(),
        requests,
        updates,
    )
    .await;
}

/// [`run`] with file settings: where files are saved, the size limit, the
/// size saved without asking, and the pace files are sent at. No history.
pub async fn run_with_files(
    engine: Engine,
    relays: Vec<RelayEndpoint>,
    trust: Trust,
    files: FileOptions,
    requests: mpsc::Receiver<Request>,
    updates: mpsc::Sender<Update>,
) {
    let opts = Options {
        files,
        history: None,
        admin_state: None,
    };
    run_with(engine, relays, trust, opts, requests, updates).await;
}

/// [`run`] with all settings: files, and the encrypted local history (its
/// last entries are shown first; a history that cannot be opened is
/// reported and the room works on without it).
pub async fn run_with(
    mut engine: Engine,
    relays: Vec<RelayEndpoint>,
    trust: Trust,
    opts: Options,
    mut requests: mpsc::Receiver<Request>,
    updates: mpsc::Sender<Update>,
) {
    engine.set_max_file_size(opts.files.max_size);
    // Temporary files a crashed run left behind.
    // Not awaited: a slow folder does not hold up connecting, and live
    // temporary files are far younger than the age swept.
    let dir = opts.files.download_dir.clone();
    drop(tokio::task::spawn_blocking(move || {
        crate::files::sweep_partials(&dir, crate::files::STALE_PARTIAL)
    }));
    let state_file = opts
        .admin_state
        .as_ref()
        .filter(|_| matches!(engine, Engine::Admin(_)))
        .map(|dir| crate::admin_state::StateFile::new(dir, &engine.me(), &engine.room()));
    let journal = Journal::open(opts.history.as_ref(), &mut engine, &updates).await;
    let mut rt = Runtime {
        updates: updates.clone(),
        transfers: Transfers::new(opts.files),
        journal,
        state_file,
    };
    let reason = match Connector::new(&trust) {
        Ok(connector) => reconnect(&mut engine, &relays, &connector, &mut requests, &mut rt).await,
        Err(e) => StopReason::Refused(e),
    };
    // What was said before leaving is in the history before we say so.
    rt.journal.finish().await;
    let _ = updates.send(Update::Stopped { reason }).await;
}

/// Connects to the relays in turn, runs a session on each connection, and
/// waits with a growing backoff between attempts, until we leave or a
/// relay cannot be trusted.
async fn reconnect(
    engine: &mut Engine,
    relays: &[RelayEndpoint],
    connector: &Connector,
    requests: &mut mpsc::Receiver<Request>,
    rt: &mut Runtime,
) -> StopReason {
    let updates = rt.updates.clone();
    let mut backoff = BACKOFF_MIN;
    let mut attempt = 0usize;
    loop {
        let Some(relay) = relays.get(attempt % relays.len().max(1)).cloned() else {
            return StopReason::NoRelay;
        };
        let _ = updates
            .send(Update::Connecting {
                relay: relay.address(),
            })
            .await;
        let reason = match connector.connect(&relay).await {
            Ok(stream) => {
                let cert = presented_fingerprint(&stream).unwrap_or(Fingerprint([0; 32]));
                let _ = updates
                    .send(Update::Secured {
                        relay: relay.address(),
                        cert,
                    })
                    .await;
                let started = tokio::time::Instant::now();
                let end = session(engine, stream, requests, rt).await;
                // Our files cannot go on: the receivers drop them when no
                // chunk comes (a new connection starts a new epoch).
                for t in rt.transfers.drop_sending() {
                    let _ = engine.handle_command(now_ms(), Command::CancelFile(t));
                    let _ = updates
                        .send(Update::File(FileUpdate::Failed {
                            transfer: t,
                            reason: "the connection to the relay was lost".into(),
                        }))
                        .await;
                }
                if started.elapsed() >= STABLE_SESSION {
                    backoff = BACKOFF_MIN;
                }
                match end {
                    SessionEnd::Left => return StopReason::Left,
                    SessionEnd::Lost(reason) => reason,
                }
            }
            // A wrong certificate is an attack or a misconfiguration, not
            // a hiccup: stop and say so.
            Err(e) if e.is_fatal() => return StopReason::Refused(e),
            Err(e) => e.to_string(),
        };
        attempt += 1;
        let _ = updates
            .send(Update::Disconnected {
                reason,
                retry_in: backoff,
            })
            .await;
        // Wait, but stay responsive to the front end quitting.
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                r = requests.recv() => match r {
                    None | Some(Request::Engine(Command::Leave)) => return StopReason::Left,
                    Some(_) => {
                        let _ = updates.send(Update::Engine(Event::Error { reason: "not connected: command dropped".into() })).await;
                    }
                },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
