//! How the engine meets the network: a tokio task that connects to the
//! relay over TLS (`native-tls`), checks the relay's certificate, runs the
//! engine, and reconnects with backoff.
//!
//! Two ways to trust a relay:
//! - **pinned** (the default, from the invite): the certificate's SHA-256 must
//!   equal the pin; checked right after the handshake, before the first byte
//!   is written, by [`Connector::connect`]. [`Connector::new`] is the only
//!   place that turns off `native-tls`'s own verification, and only for a
//!   pinned connector, whose every connection is checked against the pin;
//! - **CA file**: normal chain and hostname verification against one CA
//!   (`scripts/gen-certs.sh` writes `certs/ca.crt`), built-in roots disabled.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_native_tls::TlsStream;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::files::{FileOptions, Partial};
use crate::history::{Entry, EntryKind, History, HistoryOptions, Loaded, SHOW_ON_OPEN};
use common::engine::files::{chunk_count, short_id, CHUNK_SIZE};
use common::engine::{Action, Command, Engine, Event, FileSpec, MemberInfo, TransferId};
use common::ids::Fingerprint;
use common::invite::RelayEndpoint;
use common::wire::{ClientFrame, FrameCodec, RelayFrame, DEFAULT_MAX_FRAME};

/// How long to wait for TCP and TLS.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
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

/// How the relay's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Compare the certificate's SHA-256 with the pin of each relay.
    Pinned,
    /// Verify the chain and hostname against this CA certificate (PEM).
    CaFile(PathBuf),
}

/// Why a connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// TCP failed or timed out.
    #[error("cannot reach relay {addr}: {why}")]
    Unreachable {
        /// host:port
        addr: String,
        /// The OS error.
        why: String,
    },
    /// The TLS handshake failed (includes a certificate the CA did not sign).
    #[error("TLS with relay {addr} failed: {why}")]
    Tls {
        /// host:port
        addr: String,
        /// The TLS error.
        why: String,
    },
    /// The relay presented a certificate other than the pinned one.
    #[error("relay certificate does not match the invite (expected {expected}, got {got}): connection closed before sending anything")]
    PinMismatch {
        /// The pin from the invite.
        expected: Fingerprint,
        /// SHA-256 of the certificate presented.
        got: Fingerprint,
    },
    /// The CA file could not be used.
    #[error("cannot use CA file {path}: {why}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
}

impl ConnectError {
    /// A wrong certificate is not a network hiccup: retrying will not help.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ConnectError::PinMismatch { .. } | ConnectError::CaFile { .. }
        )
    }
}

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
        /// Asked for with [`Command::History`] (not the opening load).
        requested: bool,
    },
    /// The room's local history was cleared.
    HistoryCleared,
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
        /// it waits for [`Command::AcceptFile`].
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

/// Milliseconds since the Unix epoch (the engine's clock input).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Connects to `relay` with TLS and checks its certificate per `trust`
/// (builds a [`Connector`] for this one connection).
pub async fn connect(
    relay: &RelayEndpoint,
    trust: &Trust,
) -> Result<TlsStream<TcpStream>, ConnectError> {
    Connector::new(trust)?.connect(relay).await
}

/// [`connect`] with certificate pinning.
pub async fn connect_pinned(relay: &RelayEndpoint) -> Result<TlsStream<TcpStream>, ConnectError> {
    connect(relay, &Trust::Pinned).await
}

/// A TLS client for relays, built once and reused for every connection
/// (building one makes OpenSSL load its default verify paths, which costs
/// tens of milliseconds).
#[derive(Clone)]
pub struct Connector {
    tls: tokio_native_tls::TlsConnector,
    trust: Trust,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("trust", &self.trust)
            .finish()
    }
}

impl Connector {
    /// A connector for `trust`.
    ///
    /// With [`Trust::Pinned`], `native-tls`'s own certificate checks are
    /// turned off here — the only place in TeamChat that does so — because
    /// `native-tls` has no custom verifier; [`Connector::connect`] then
    /// compares the certificate's SHA-256 with the invite's pin in constant
    /// time, right after the handshake and before anything is written.
    pub fn new(trust: &Trust) -> Result<Self, ConnectError> {
        let mut b = native_tls::TlsConnector::builder();
        b.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
        // Only one trust anchor ever applies: no system roots.
        b.disable_built_in_roots(true);
        match trust {
            Trust::Pinned => {
                b.danger_accept_invalid_certs(true)
                    .danger_accept_invalid_hostnames(true);
            }
            Trust::CaFile(path) => {
                let ca_err = |why: String| ConnectError::CaFile {
                    path: path.clone(),
                    why,
                };
                let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
                let cert =
                    native_tls::Certificate::from_pem(&pem).map_err(|e| ca_err(e.to_string()))?;
                b.add_root_certificate(cert);
            }
        }
        let tls = b.build().map_err(|e| ConnectError::Tls {
            addr: "-".into(),
            why: e.to_string(),
        })?;
        Ok(Connector {
            tls: tls.into(),
            trust: trust.clone(),
        })
    }

    /// TCP, TLS, then (pinned) the certificate check; nothing is written
    /// before it passes.
    pub async fn connect(
        &self,
        relay: &RelayEndpoint,
    ) -> Result<TlsStream<TcpStream>, ConnectError> {
        let addr = relay.address();
        let stream = tcp(relay).await?;
        let stream = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.tls.connect(&relay.host.to_dns_or_ip(), stream),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(ConnectError::Tls {
                    addr,
                    why: e.to_string(),
                })
            }
            Err(_) => {
                return Err(ConnectError::Tls {
                    addr,
                    why: "handshake timed out".into(),
                })
            }
        };
        if self.trust == Trust::Pinned {
            let got = presented_fingerprint(&stream).ok_or_else(|| ConnectError::Tls {
                addr: relay.address(),
                why: "the relay presented no certificate".into(),
            })?;
            if !common::crypto::same_fingerprint(&got, &relay.cert) {
                // Dropping the stream closes it; nothing was written.
                return Err(ConnectError::PinMismatch {
                    expected: relay.cert,
                    got,
                });
            }
        }
        Ok(stream)
    }
}

async fn tcp(relay: &RelayEndpoint) -> Result<TcpStream, ConnectError> {
    let addr = relay.address();
    let target = (relay.host.to_dns_or_ip(), relay.port);
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(ConnectError::Unreachable {
            addr,
            why: e.to_string(),
        }),
        Err(_) => Err(ConnectError::Unreachable {
            addr,
            why: "timed out".into(),
        }),
    }
}

/// SHA-256 of the certificate the peer presented.
pub fn presented_fingerprint(stream: &TlsStream<TcpStream>) -> Option<Fingerprint> {
    let cert = stream.get_ref().peer_certificate().ok()??;
    let der = cert.to_der().ok()?;
    Some(Fingerprint(Sha256::digest(&der).into()))
}

/// Runs `engine` against the relays until told to leave or a certificate
/// is wrong. Commands come in on `commands`; updates go out on `updates`.
/// Ends when `commands` closes (the front end quit) or after `Leave`.
/// Files go to the platform's download folder with the default limits.
pub async fn run(
    engine: Engine,
    relays: Vec<RelayEndpoint>,
    trust: Trust,
    commands: mpsc::Receiver<Command>,
    updates: mpsc::Sender<Update>,
) {
    run_with_files(
        engine,
        relays,
        trust,
        FileOptions::default(),
        commands,
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
    commands: mpsc::Receiver<Command>,
    updates: mpsc::Sender<Update>,
) {
    let opts = Options {
        files,
        history: None,
        admin_state: None,
    };
    run_with(engine, relays, trust, opts, commands, updates).await;
}

/// [`run`] with all settings: files, and the encrypted local history (its
/// last entries are shown first; a history that cannot be opened is
/// reported and the room works on without it).
pub async fn run_with(
    mut engine: Engine,
    relays: Vec<RelayEndpoint>,
    trust: Trust,
    opts: Options,
    mut commands: mpsc::Receiver<Command>,
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
    let mut transfers = Transfers::new(opts.files);
    if let Some(h) = &opts.history {
        let (me, room, h) = (engine.me(), engine.room(), h.clone());
        let opened = tokio::task::spawn_blocking(move || {
            let hist = History::open(&h, &me, &room)?;
            let loaded = hist.last(SHOW_ON_OPEN)?;
            Ok::<_, crate::history::HistoryError>((hist, loaded))
        })
        .await;
        match opened {
            Ok(Ok((hist, loaded))) => {
                // The highest admin run held here before: never below it.
                if let Ok(floor) = hist.run_floor() {
                    engine.raise_run_floor(floor);
                    transfers.kept_run_floor = floor;
                }
                let _ = updates
                    .send(Update::History {
                        loaded,
                        requested: false,
                    })
                    .await;
                transfers.history = Some(hist);
            }
            Ok(Err(e)) => {
                let _ = updates
                    .send(Update::Engine(Event::Warning {
                        reason: format!("{e}; the room works on without history"),
                    }))
                    .await;
            }
            Err(_) => {}
        }
    }
    let connector = match Connector::new(&trust) {
        Ok(c) => c,
        Err(e) => {
            let _ = updates
                .send(Update::Stopped {
                    reason: StopReason::Refused(e),
                })
                .await;
            return;
        }
    };
    let mut backoff = BACKOFF_MIN;
    let mut attempt = 0usize;
    loop {
        let Some(relay) = relays.get(attempt % relays.len().max(1)).cloned() else {
            let _ = updates
                .send(Update::Stopped {
                    reason: StopReason::NoRelay,
                })
                .await;
            return;
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
                let end = session(
                    &mut engine,
                    stream,
                    &mut commands,
                    &updates,
                    &mut transfers,
                    state_file.as_ref(),
                )
                .await;
                // Our files cannot go on: the receivers drop them when no
                // chunk comes (a new connection starts a new epoch).
                for (t, _) in std::mem::take(&mut transfers.sending) {
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
                    SessionEnd::Left => {
                        let _ = updates
                            .send(Update::Stopped {
                                reason: StopReason::Left,
                            })
                            .await;
                        return;
                    }
                    SessionEnd::Lost(reason) => reason,
                }
            }
            Err(e) if e.is_fatal() => {
                // A wrong certificate is an attack or a misconfiguration, not
                // a hiccup: stop and say so.
                let _ = updates
                    .send(Update::Stopped {
                        reason: StopReason::Refused(e),
                    })
                    .await;
                return;
            }
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
                c = commands.recv() => match c {
                    None | Some(Command::Leave) => {
                        let _ = updates.send(Update::Stopped { reason: StopReason::Left }).await;
                        return;
                    }
                    Some(_) => {
                        let _ = updates.send(Update::Engine(Event::Error { reason: "not connected: command dropped".into() })).await;
                    }
                },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// How a session ended: we left, or the connection was lost (and why).
enum SessionEnd {
    Left,
    Lost(String),
}

async fn session(
    engine: &mut Engine,
    stream: TlsStream<TcpStream>,
    commands: &mut mpsc::Receiver<Command>,
    updates: &mpsc::Sender<Update>,
    transfers: &mut Transfers,
    state_file: Option<&crate::admin_state::StateFile>,
) -> SessionEnd {
    let (r, w) = tokio::io::split(stream);
    let mut rx = FramedRead::new(r, FrameCodec::<RelayFrame>::new(DEFAULT_MAX_FRAME));
    let mut tx = FramedWrite::new(w, FrameCodec::<RelayFrame>::new(DEFAULT_MAX_FRAME));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let first = engine.on_connected(now_ms());
    if let Err(e) = perform(first, &mut tx, updates, transfers).await {
        return SessionEnd::Lost(e);
    }
    let mut last_rx = tokio::time::Instant::now();
    loop {
        let next_chunk = transfers.next_chunk;
        let sending = !transfers.sending.is_empty();
        let actions = tokio::select! {
            _ = tokio::time::sleep_until(last_rx + RELAY_SILENCE) => {
                return SessionEnd::Lost(format!("no traffic from the relay for {} s", RELAY_SILENCE.as_secs()));
            }
            f = rx.next() => match f {
                Some(Ok(frame)) => {
                    last_rx = tokio::time::Instant::now();
                    engine.handle_frame(now_ms(), frame)
                }
                Some(Err(e)) => return SessionEnd::Lost(format!("relay connection failed: {e}")),
                None => return SessionEnd::Lost("the relay closed the connection".into()),
            },
            c = commands.recv() => match c {
                None => return SessionEnd::Left,
                Some(Command::Leave) => {
                    let actions = engine.handle_command(now_ms(), Command::Leave);
                    let _ = perform(actions, &mut tx, updates, transfers).await;
                    let _ = SinkExt::<ClientFrame>::close(&mut tx).await;
                    return SessionEnd::Left;
                }
                Some(Command::SendFile(path)) => transfers.start(path, None),
                Some(Command::SendFileTo(to, path)) => transfers.start(path, Some(to)),
                Some(Command::History(n)) => {
                    transfers.show_history(n, updates).await;
                    Vec::new()
                }
                Some(Command::ClearHistory) => {
                    transfers.clear_history(updates).await;
                    Vec::new()
                }
                Some(Command::AcceptFile(t)) => {
                    transfers.accept(t, updates).await;
                    Vec::new()
                }
                Some(Command::CancelFile(t)) => {
                    let mut actions = engine.handle_command(now_ms(), Command::CancelFile(t));
                    if let Some(u) = transfers.forget(t, "cancelled") {
                        actions.retain(|a| !matches!(a, Action::Event(Event::FileFailed { .. })));
                        let _ = updates.send(Update::File(u)).await;
                    }
                    actions
                }
                Some(cmd) => engine.handle_command(now_ms(), cmd),
            },
            Some(read) = transfers.preparing.join_next(), if !transfers.preparing.is_empty() => {
                transfers.prepared(engine, read, updates).await
            }
            Some(done) = transfers.saving.join_next(), if !transfers.saving.is_empty() => {
                if let Some(u) = transfers.saved(done) {
                    let _ = updates.send(Update::File(u)).await;
                }
                if let Some(reason) = transfers.history_error.take() {
                    let _ = updates.send(Update::Engine(Event::Warning { reason })).await;
                }
                Vec::new()
            }
            _ = tokio::time::sleep_until(next_chunk), if sending => {
                // Every chunk that is due, up to a burst.
                let mut actions = Vec::new();
                for _ in 0..CHUNK_BURST {
                    actions.extend(transfers.send_next(engine, updates).await);
                    if transfers.sending.is_empty()
                        || transfers.next_chunk > tokio::time::Instant::now()
                    {
                        break;
                    }
                }
                actions
            }
            _ = tick.tick() => {
                let mut actions = engine.handle_tick(now_ms());
                for t in transfers.stalled(updates).await {
                    actions.extend(engine.handle_command(now_ms(), Command::CancelFile(t)));
                }
                actions
            }
        };
        // (Admin) a ban to keep: written before the frames that announce it
        // go out, so a crash in between cannot forget it.
        if let Some(state) = engine.take_admin_state() {
            if let Some(f) = state_file {
                if let Err(e) = f.save(&state) {
                    let reason = format!("{e}: bans made now last only until this app closes");
                    let _ = updates
                        .send(Update::Engine(Event::Warning { reason }))
                        .await;
                }
            }
        }
        if let Err(e) = perform(actions, &mut tx, updates, transfers).await {
            return SessionEnd::Lost(e);
        }
        // (Member) a newer admin run held: kept with the history, so that a
        // restart never goes back below it.
        let floor = engine.run_floor();
        if floor > transfers.kept_run_floor {
            transfers.kept_run_floor = floor;
            if let Some(h) = &mut transfers.history {
                let _ = h.keep_run_floor(floor);
            }
        }
        // Transfers the driver dropped (disk error, over budget): the
        // engine forgets them too.
        for t in std::mem::take(&mut transfers.to_cancel) {
            let actions = engine.handle_command(now_ms(), Command::CancelFile(t));
            if let Err(e) = perform(actions, &mut tx, updates, transfers).await {
                return SessionEnd::Lost(e);
            }
        }
    }
}

/// Time between two progress reports of one transfer.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// An incoming file with no chunk for this long is abandoned.
const FILE_STALL: Duration = Duration::from_secs(60);
/// A complete file nobody accepted is deleted after this long.
const ACCEPT_WAIT: Duration = Duration::from_secs(600);
/// Files saved without asking, per sender, per minute; more wait for Accept.
const AUTO_SAVES_PER_MINUTE: u32 = 20;
/// Incoming files (arriving, or complete and waiting for Accept) kept from
/// one sender; more are refused.
const WAITING_PER_SENDER: usize = 8;
/// Incoming files kept from everyone.
const WAITING_IN_ALL: usize = 32;
/// How far behind its schedule the sender may fall and still catch up.
const PACE_SLACK: Duration = Duration::from_millis(20);
/// Slowest pace however large the room (a chunk every 4 s).
const MIN_FANOUT_RATE: u64 = 16 * 1024;
/// Most chunks sent at one wake-up (1 MiB).
const CHUNK_BURST: usize = 16;
/// Pause while we hold no key to send a chunk with (someone was removed
/// and the new epoch has not arrived).
const KEY_WAIT: Duration = Duration::from_millis(200);

struct Sending {
    name: String,
    file: tokio::fs::File,
    size: u64,
    next: u32,
    chunks: u64,
    sent: u64,
    reported: tokio::time::Instant,
}

struct Receiving {
    from: MemberInfo,
    name: String,
    size: u64,
    partial: Option<Partial>,
    accepted: bool,
    complete: bool,
    last_data: tokio::time::Instant,
    reported: tokio::time::Instant,
    /// When it was complete (waiting for Accept).
    complete_at: Option<tokio::time::Instant>,
}

/// Files on their way, in and out, across the driver's sessions, and the
/// local history they and the messages are written to.
struct Transfers {
    opts: FileOptions,
    history: Option<History>,
    /// The admin run floor last kept in the history.
    kept_run_floor: u64,
    /// A history failure not reported yet.
    history_error: Option<String>,
    /// Transfers the driver dropped (disk error, over budget) that the
    /// engine must forget too.
    to_cancel: Vec<TransferId>,
    /// Files saved without asking per sender in the current minute.
    auto_saves: HashMap<common::ids::Fingerprint, (tokio::time::Instant, u32)>,
    /// Sent in turn, one chunk each, paced at `opts.rate`.
    sending: Vec<(TransferId, Sending)>,
    receiving: HashMap<TransferId, Receiving>,
    next_chunk: tokio::time::Instant,
    /// Files being opened and hashed off the driver's loop, to be offered
    /// when done.
    preparing: tokio::task::JoinSet<Prepared>,
    /// Complete files being flushed and renamed off the driver's loop.
    saving: tokio::task::JoinSet<Saving>,
}

/// A file being saved: the transfer, its sender, its name, and where it
/// went (or why not).
type Saving = (TransferId, MemberInfo, String, std::io::Result<PathBuf>);

/// A file read for offering: to whom, and what was learned.
type Prepared = (
    Option<common::ids::Fingerprint>,
    Result<crate::files::Described, String>,
);

impl Transfers {
    fn new(opts: FileOptions) -> Self {
        Transfers {
            opts,
            history: None,
            kept_run_floor: 0,
            history_error: None,
            to_cancel: Vec::new(),
            auto_saves: HashMap::new(),
            sending: Vec::new(),
            receiving: HashMap::new(),
            next_chunk: tokio::time::Instant::now(),
            preparing: tokio::task::JoinSet::new(),
            saving: tokio::task::JoinSet::new(),
        }
    }

    /// Remembers an entry; a history that fails is closed with a warning
    /// (the room goes on).
    async fn remember(&mut self, entry: Entry, updates: &mpsc::Sender<Update>) {
        let Some(h) = &mut self.history else { return };
        if let Err(e) = h.add(&entry) {
            self.history = None;
            let _ = updates
                .send(Update::Engine(Event::Warning {
                    reason: format!("{e}; history is off for this session"),
                }))
                .await;
        }
    }

    async fn show_history(&mut self, n: usize, updates: &mpsc::Sender<Update>) {
        let update = match &self.history {
            None => Update::Engine(Event::Error {
                reason: "no history for this room (off, or it could not be opened)".into(),
            }),
            Some(h) => match h.last(n) {
                Ok(loaded) => Update::History {
                    loaded,
                    requested: true,
                },
                Err(e) => Update::Engine(Event::Warning {
                    reason: e.to_string(),
                }),
            },
        };
        let _ = updates.send(update).await;
    }

    async fn clear_history(&mut self, updates: &mpsc::Sender<Update>) {
        let update = match &mut self.history {
            None => Update::Engine(Event::Error {
                reason: "no history for this room (off, or it could not be opened)".into(),
            }),
            Some(h) => match h.clear() {
                Ok(_) => Update::HistoryCleared,
                Err(e) => Update::Engine(Event::Warning {
                    reason: e.to_string(),
                }),
            },
        };
        let _ = updates.send(update).await;
    }

    /// Starts reading and hashing `path` (on a blocking thread: a large
    /// file takes a while, and chat goes on meanwhile); it is offered to
    /// the room, or to the member `to`, when [`Transfers::prepared`] gets it.
    fn start(&mut self, path: PathBuf, to: Option<common::ids::Fingerprint>) -> Vec<Action> {
        // Files being read count with those being sent: a script that
        // queues hundreds of files neither hashes them all at once nor
        // fills the blocking pool the chunk reads need.
        if self.preparing.len() + self.sending.len() >= common::engine::files::MAX_OUTGOING {
            return vec![Action::Event(Event::Error {
                reason: format!(
                    "already sending {} files: wait for one to finish",
                    common::engine::files::MAX_OUTGOING
                ),
            })];
        }
        let max = self.opts.max_size;
        self.preparing
            .spawn_blocking(move || (to, crate::files::describe(&path, max)));
        Vec::new()
    }

    /// A file was read: offers it, and queues its chunks.
    async fn prepared(
        &mut self,
        engine: &mut Engine,
        read: Result<Prepared, tokio::task::JoinError>,
        updates: &mpsc::Sender<Update>,
    ) -> Vec<Action> {
        let (to, d) = match read {
            Ok((to, Ok(d))) => (to, d),
            Ok((_, Err(why))) => return vec![Action::Event(Event::Error { reason: why })],
            Err(_) => {
                return vec![Action::Event(Event::Error {
                    reason: "a file could not be read".into(),
                })]
            }
        };
        let crate::files::Described {
            name,
            size,
            media_type,
            sha256,
            file,
        } = d;
        let file = tokio::fs::File::from_std(file);
        let transfer: TransferId = rand_transfer();
        let actions = engine.handle_command(
            now_ms(),
            Command::OfferFile(FileSpec {
                transfer,
                name: name.clone(),
                size,
                media_type,
                sha256,
                to,
            }),
        );
        let offered = actions.iter().any(
            |a| matches!(a, Action::Event(Event::FileOffered { transfer: t, .. }) if *t == transfer),
        );
        if offered {
            if size == 0 {
                // Nothing to send after the offer.
                let _ = updates
                    .send(Update::File(FileUpdate::Sent { transfer }))
                    .await;
            } else {
                self.sending.push((
                    transfer,
                    Sending {
                        name,
                        file,
                        size,
                        next: 0,
                        chunks: chunk_count(size, CHUNK_SIZE),
                        sent: 0,
                        reported: tokio::time::Instant::now(),
                    },
                ));
            }
        }
        actions
    }

    /// Seals and sends the next chunk of the first file in turn.
    async fn send_next(
        &mut self,
        engine: &mut Engine,
        updates: &mpsc::Sender<Update>,
    ) -> Vec<Action> {
        use tokio::io::AsyncReadExt;
        let now = tokio::time::Instant::now();
        if self.sending.is_empty() {
            return Vec::new();
        }
        if !engine.can_send(now_ms()) {
            self.next_chunk = now + KEY_WAIT;
            return Vec::new();
        }
        let (transfer, mut s) = self.sending.remove(0);
        if !engine.sending(&transfer) {
            // Cancelled or ended by the engine.
            return Vec::new();
        }
        let len = (s.size - s.sent).min(u64::from(CHUNK_SIZE)) as usize;
        let mut buf = vec![0u8; len];
        if let Err(e) = s.file.read_exact(&mut buf).await {
            let mut actions = engine.handle_command(now_ms(), Command::CancelFile(transfer));
            actions.retain(|a| !matches!(a, Action::Event(Event::FileFailed { .. })));
            let _ = updates
                .send(Update::File(FileUpdate::Failed {
                    transfer,
                    reason: format!("cannot read {}: {e}", s.name),
                }))
                .await;
            return actions;
        }
        let actions = engine.handle_command(
            now_ms(),
            Command::FileChunk {
                transfer,
                index: s.next,
                data: Bytes::from(buf),
            },
        );
        if actions.iter().any(
            |a| matches!(a, Action::Event(Event::FileFailed { transfer: t, .. }) if *t == transfer),
        ) {
            // The engine ended it (the chunk did not fit): its FileFailed
            // goes out through `perform`.
            self.sending.push((transfer, s));
            return actions;
        }
        s.next += 1;
        s.sent += len as u64;
        // Keep to the schedule: timers fire late (they tick in
        // milliseconds), and a late chunk is made up by the next ones, but
        // never by more than PACE_SLACK's worth.
        // Every other connection in the room receives a copy (a private
        // file's too): the relay counts them all against the sender.
        let recipients = (engine.members().len().saturating_sub(1)).max(1) as u64;
        let rate = self
            .opts
            .rate
            .max(crate::files::MIN_FILE_RATE)
            .min(self.opts.fanout_budget / recipients)
            .max(MIN_FANOUT_RATE);
        let floor = now.checked_sub(PACE_SLACK).unwrap_or(now);
        self.next_chunk =
            self.next_chunk.max(floor) + Duration::from_secs_f64(len as f64 / rate as f64);
        let done = u64::from(s.next) >= s.chunks;
        if done || now.duration_since(s.reported) >= PROGRESS_EVERY {
            s.reported = now;
            let _ = updates
                .send(Update::File(FileUpdate::Progress {
                    transfer,
                    done: s.sent,
                    total: s.size,
                    outgoing: true,
                }))
                .await;
        }
        if done {
            let _ = updates
                .send(Update::File(FileUpdate::Sent { transfer }))
                .await;
        } else if engine.sending(&transfer) {
            self.sending.push((transfer, s));
        }
        actions
    }

    /// The user accepts an incoming file.
    async fn accept(&mut self, t: TransferId, updates: &mpsc::Sender<Update>) {
        let Some(r) = self.receiving.get_mut(&t) else {
            let _ = updates
                .send(Update::Engine(Event::Error {
                    reason: format!("no file offer {} is waiting", short_id(&t)),
                }))
                .await;
            return;
        };
        r.accepted = true;
        if r.complete {
            self.save(t);
        }
    }

    /// Moves a complete, verified file to its final name, on a blocking
    /// thread (the file is flushed to disk first, which can take a while;
    /// chat goes on meanwhile). [`Transfers::saved`] reports it.
    fn save(&mut self, t: TransferId) {
        let Some(mut r) = self.receiving.remove(&t) else {
            return;
        };
        let Some(partial) = r.partial.take() else {
            return;
        };
        let dir = self.opts.download_dir.clone();
        self.saving.spawn_blocking(move || {
            let saved = partial.save(&dir, &r.name);
            (t, r.from, r.name, saved)
        });
    }

    /// A file was saved (or could not be): remembered in the history, and
    /// the update to show.
    fn saved(&mut self, done: Result<Saving, tokio::task::JoinError>) -> Option<FileUpdate> {
        let (t, from, name, saved) = done.ok()?;
        Some(match saved {
            Ok(path) => {
                if let Some(h) = &mut self.history {
                    let entry = Entry {
                        at_ms: now_ms(),
                        kind: EntryKind::File,
                        who: from.name.clone(),
                        fingerprint: Some(from.fingerprint.0),
                        text: name,
                        path: Some(path.display().to_string()),
                    };
                    if let Err(e) = h.add(&entry) {
                        self.history = None;
                        self.history_error = Some(format!("{e}; history is off for this session"));
                    }
                }
                FileUpdate::Saved { transfer: t, path }
            }
            Err(e) => FileUpdate::Failed {
                transfer: t,
                reason: format!(
                    "cannot save {name} in {}: {e}",
                    self.opts.download_dir.display()
                ),
            },
        })
    }

    /// Drops a transfer (its partial file is deleted); the update to show,
    /// if it was one of ours.
    fn forget(&mut self, t: TransferId, reason: &str) -> Option<FileUpdate> {
        let known = if self.receiving.remove(&t).is_some() {
            true
        } else {
            let before = self.sending.len();
            self.sending.retain(|(x, _)| *x != t);
            before != self.sending.len()
        };
        known.then(|| FileUpdate::Failed {
            transfer: t,
            reason: reason.into(),
        })
    }

    /// Bytes of incoming files not saved yet (their temporary files).
    fn pending_bytes(&self) -> u64 {
        self.receiving.values().map(|r| r.size).sum()
    }

    /// Incoming files that stopped arriving, and complete ones nobody
    /// accepted in time: dropped (their temporary files deleted), with the
    /// updates to show and their ids for the engine.
    async fn stalled(&mut self, updates: &mpsc::Sender<Update>) -> Vec<TransferId> {
        let now = tokio::time::Instant::now();
        let stale: Vec<(TransferId, &'static str)> = self
            .receiving
            .iter()
            .filter_map(|(t, r)| match r.complete_at {
                None if now.duration_since(r.last_data) >= FILE_STALL => {
                    Some((*t, "no data for 60 s; the sender stopped or left"))
                }
                Some(at) if now.duration_since(at) >= ACCEPT_WAIT => {
                    Some((*t, "not accepted within 10 minutes: deleted"))
                }
                _ => None,
            })
            .collect();
        let mut ids = Vec::with_capacity(stale.len());
        for (t, why) in stale {
            if let Some(u) = self.forget(t, why) {
                let _ = updates.send(Update::File(u)).await;
            }
            ids.push(t);
        }
        ids
    }

    /// Whether a file of `size` from `from` is saved without asking.
    fn auto_accept(&mut self, from: &common::ids::Fingerprint, size: u64) -> bool {
        if size > self.opts.auto_accept {
            return false;
        }
        let now = tokio::time::Instant::now();
        if self.auto_saves.len() > 1024 {
            self.auto_saves
                .retain(|_, (at, _)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let slot = self.auto_saves.entry(*from).or_insert((now, 0));
        if now.duration_since(slot.0) >= Duration::from_secs(60) {
            *slot = (now, 0);
        }
        slot.1 += 1;
        slot.1 <= AUTO_SAVES_PER_MINUTE
    }

    /// Handles a file event from the engine; the update to show, if any.
    /// After a disk error the transfer is dropped here; the engine's later
    /// events for it find nothing and are ignored.
    fn on_event(&mut self, e: Event) -> Option<Update> {
        let now = tokio::time::Instant::now();
        match e {
            Event::FileOffered {
                transfer,
                name,
                size,
                to,
            } => Some(Update::File(FileUpdate::Sending {
                transfer,
                name,
                size,
                to,
            })),
            Event::FileIncoming {
                from,
                transfer,
                name,
                size,
                media_type,
                private,
                ..
            } => {
                // Files arriving or waiting for Accept, per sender and in
                // all: each is a temporary file and a row on screen, and a
                // tiny file costs its sender one signature.
                let from_them = self
                    .receiving
                    .values()
                    .filter(|r| r.from.fingerprint == from.fingerprint)
                    .count();
                if from_them >= WAITING_PER_SENDER || self.receiving.len() >= WAITING_IN_ALL {
                    self.to_cancel.push(transfer);
                    return Some(Update::Engine(Event::Warning {
                        reason: format!(
                            "{} offered {name}, but too many files from {} are already waiting or arriving: refused",
                            from.name,
                            if from_them >= WAITING_PER_SENDER { "them" } else { "everyone" }
                        ),
                    }));
                }
                // Files not saved yet share one budget on disk: twice the
                // largest file.
                let budget = self.opts.max_size.saturating_mul(2);
                if self.pending_bytes().saturating_add(size) > budget {
                    self.to_cancel.push(transfer);
                    return Some(Update::Engine(Event::Warning {
                        reason: format!(
                            "{} offered {name}, but {} of files are already waiting or arriving: refused",
                            from.name,
                            crate::terminal::human_size(self.pending_bytes())
                        ),
                    }));
                }
                let partial = match Partial::create(&self.opts.download_dir) {
                    Ok(p) => p,
                    Err(e) => {
                        self.to_cancel.push(transfer);
                        return Some(Update::File(FileUpdate::Failed {
                            transfer,
                            reason: format!(
                                "cannot write to {}: {e}",
                                self.opts.download_dir.display()
                            ),
                        }));
                    }
                };
                let accepted = self.auto_accept(&from.fingerprint, size);
                self.receiving.insert(
                    transfer,
                    Receiving {
                        from: from.clone(),
                        name: name.clone(),
                        size,
                        partial: Some(partial),
                        accepted,
                        complete: false,
                        last_data: now,
                        reported: now,
                        complete_at: None,
                    },
                );
                Some(Update::File(FileUpdate::Offered {
                    from,
                    transfer,
                    name,
                    size,
                    media_type,
                    accepted,
                    private,
                }))
            }
            Event::FileData { transfer, data, .. } => {
                let r = self.receiving.get_mut(&transfer)?;
                r.last_data = now;
                let written = match r
                    .partial
                    .as_mut()
                    .map(|p| p.write(&data).map(|()| p.written()))
                {
                    Some(Ok(w)) => w,
                    Some(Err(e)) => {
                        let reason = format!("cannot write {}: {e}", r.name);
                        self.receiving.remove(&transfer);
                        self.to_cancel.push(transfer);
                        return Some(Update::File(FileUpdate::Failed { transfer, reason }));
                    }
                    None => return None,
                };
                if written == r.size || now.duration_since(r.reported) >= PROGRESS_EVERY {
                    r.reported = now;
                    return Some(Update::File(FileUpdate::Progress {
                        transfer,
                        done: written,
                        total: r.size,
                        outgoing: false,
                    }));
                }
                None
            }
            Event::FileDone { transfer } => {
                let r = self.receiving.get_mut(&transfer)?;
                r.complete = true;
                r.complete_at = Some(now);
                if r.accepted {
                    self.save(transfer);
                    None
                } else {
                    // Waits for Accept without holding a file descriptor.
                    if let Some(p) = r.partial.as_mut() {
                        p.close();
                    }
                    Some(Update::File(FileUpdate::Ready { transfer }))
                }
            }
            Event::FileFailed { transfer, reason } => {
                self.forget(transfer, &reason).map(Update::File)
            }
            other => Some(Update::Engine(other)),
        }
    }
}

/// What of an event goes into the history.
fn history_entry(e: &Event) -> Option<Entry> {
    let (at_ms, kind, who, fingerprint, text) = match e {
        Event::Message {
            from,
            text,
            sent_at_ms,
            ..
        } => (
            *sent_at_ms,
            EntryKind::Message,
            from.name.clone(),
            Some(from.fingerprint.0),
            text,
        ),
        Event::Sent { text, .. } => (now_ms(), EntryKind::Own, String::new(), None, text),
        Event::Private {
            from,
            text,
            sent_at_ms,
            ..
        } => (
            *sent_at_ms,
            EntryKind::PrivateIn,
            from.name.clone(),
            Some(from.fingerprint.0),
            text,
        ),
        Event::PrivateSent { to, text, .. } => (
            now_ms(),
            EntryKind::PrivateOut,
            to.name.clone(),
            Some(to.fingerprint.0),
            text,
        ),
        _ => return None,
    };
    Some(Entry {
        at_ms,
        kind,
        who,
        fingerprint,
        text: text.clone(),
        path: None,
    })
}

/// A fresh random transfer id.
fn rand_transfer() -> TransferId {
    common::crypto::random_array()
}

async fn perform<W>(
    actions: Vec<Action>,
    tx: &mut FramedWrite<W, FrameCodec<RelayFrame>>,
    updates: &mpsc::Sender<Update>,
    transfers: &mut Transfers,
) -> Result<(), String>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut wrote = false;
    for a in actions {
        match a {
            Action::Send(frame) => {
                tx.feed(frame)
                    .await
                    .map_err(|e| format!("cannot write to the relay: {e}"))?;
                wrote = true;
            }
            Action::Event(
                e @ (Event::FileOffered { .. }
                | Event::FileIncoming { .. }
                | Event::FileData { .. }
                | Event::FileDone { .. }
                | Event::FileFailed { .. }),
            ) => {
                if let Some(u) = transfers.on_event(e) {
                    let _ = updates.send(u).await;
                }
                if let Some(reason) = transfers.history_error.take() {
                    let _ = updates
                        .send(Update::Engine(Event::Warning { reason }))
                        .await;
                }
            }
            Action::Event(e) => {
                if let Some(entry) = history_entry(&e) {
                    transfers.remember(entry, updates).await;
                }
                let _ = updates.send(Update::Engine(e)).await;
            }
        }
    }
    if wrote {
        SinkExt::<ClientFrame>::flush(tx)
            .await
            .map_err(|e| format!("cannot write to the relay: {e}"))?;
    }
    Ok(())
}

/// SHA-256 of the first certificate in a PEM file: the pin that goes into
/// an invite (`scripts/gen-certs.sh` prints the same value).
pub fn cert_file_fingerprint(path: &std::path::Path) -> Result<Fingerprint, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read certificate {}: {e}", path.display()))?;
    let cert = native_tls::Certificate::from_pem(&pem)
        .map_err(|e| format!("{} is not a PEM certificate: {e}", path.display()))?;
    let der = cert
        .to_der()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Fingerprint(Sha256::digest(&der).into()))
}
