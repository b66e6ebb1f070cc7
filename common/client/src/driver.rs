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

use std::time::Duration;

use common::engine::{Action, Command, Engine, Event};
use common::ids::Fingerprint;
use common::invite::RelayEndpoint;
use tokio::sync::mpsc;

pub use crate::api::{FileUpdate, Liveness, Options, Request, StopReason, Update};
pub use crate::connect::{
    cert_file_fingerprint, connect, connect_pinned, presented_fingerprint, ConnectError, Connector,
    Trust, CONNECT_TIMEOUT,
};
use crate::files::FileOptions;
use crate::journal::Journal;
use crate::now_ms;
use crate::session::{session, show, Runtime, SessionEnd};
pub use crate::session::{KEEPALIVE, RELAY_SILENCE};
use crate::transfers::Transfers;

/// First and longest pause between reconnection attempts.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest pause between reconnection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A session shorter than this does not reset the backoff (a relay that
/// closes right after the handshake is not hammered), and does not count
/// as the relay working (the next attempt goes to the next relay).
const STABLE_SESSION: Duration = Duration::from_secs(10);

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
        ..Options::default()
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
        liveness: opts.liveness,
        away_since: None,
        own: Default::default(),
    };
    // Lines kept at the last stop: shown again, pending.
    for e in std::mem::take(&mut rt.journal.restored) {
        show(&mut rt, e).await;
    }
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
/// relay cannot be trusted. A relay whose session worked (lasted at least
/// `STABLE_SESSION`) is tried first again when it ends; one that could not
/// be reached, or let us go at once, gives way to the next of the invite
/// (so a reconnect does not wait out a dead relay's connect timeout before
/// the one that just worked).
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
                if matches!(end, SessionEnd::Lost(..)) {
                    if rt.away_since.is_none() {
                        rt.away_since = Some((tokio::time::Instant::now(), now_ms()));
                    }
                    // What we wrote waits for the next connection, and
                    // says so.
                    for a in engine.on_disconnected(now_ms()) {
                        if let Action::Event(e) = a {
                            show(rt, e).await;
                        }
                    }
                }
                rt.journal.keep_outbox(engine);
                let worked = started.elapsed() >= STABLE_SESSION;
                if worked {
                    backoff = BACKOFF_MIN;
                }
                match end {
                    SessionEnd::Left => return StopReason::Left,
                    SessionEnd::Lost(reason, code) => (reason, code, worked),
                }
            }
            // A wrong certificate is an attack or a misconfiguration, not
            // a hiccup: stop and say so.
            Err(e) if e.is_fatal() => return StopReason::Refused(e),
            Err(e) => (e.to_string(), None, false),
        };
        let (reason, relay_code, worked) = reason;
        if !worked {
            attempt += 1;
        }
        let _ = updates
            .send(Update::Disconnected {
                reason,
                relay_code,
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
                    None | Some(Request::Engine(Command::Leave)) => {
                        // What waits will not go: said, before we stop.
                        let mut actions = engine.handle_command(now_ms(), Command::Leave);
                        if rt.journal.is_on() {
                            rt.journal.keep_outbox(engine);
                            engine.outbox_kept(&mut actions);
                        } else {
                            engine.outbox_left(&mut actions);
                        }
                        for a in actions {
                            if let Action::Event(e) = a {
                                show(rt, e).await;
                            }
                        }
                        return StopReason::Left;
                    }
                    // A line typed meanwhile waits in the outbox for the
                    // next connection.
                    Some(Request::Engine(cmd @ (Command::Send(_) | Command::Private(..)))) => {
                        for a in engine.handle_command(now_ms(), cmd) {
                            if let Action::Event(e) = a {
                                show(rt, e).await;
                            }
                        }
                        rt.journal.keep_outbox(engine);
                    }
                    // Contacts live on this computer: no connection needed.
                    Some(Request::Contacts) => rt.journal.contacts(None).await,
                    Some(Request::Verify(fp, on)) => rt.journal.contacts(Some((fp, on))).await,
                    Some(_) => {
                        let _ = updates.send(Update::Engine(Event::Error { reason: "not connected: command dropped".into() })).await;
                    }
                },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
