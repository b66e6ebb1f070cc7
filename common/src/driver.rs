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

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_native_tls::TlsStream;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::engine::{Action, Command, Engine, Event};
use crate::ids::Fingerprint;
use crate::invite::RelayEndpoint;
use crate::wire::{ClientFrame, FrameCodec, RelayFrame, DEFAULT_MAX_FRAME};

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
#[derive(Debug, thiserror::Error)]
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
        reason: String,
    },
    /// Something the engine wants shown.
    Engine(Event),
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
            if !got.ct_eq(&relay.cert) {
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
pub async fn run(
    mut engine: Engine,
    relays: Vec<RelayEndpoint>,
    trust: Trust,
    mut commands: mpsc::Receiver<Command>,
    updates: mpsc::Sender<Update>,
) {
    let connector = match Connector::new(&trust) {
        Ok(c) => c,
        Err(e) => {
            let _ = updates
                .send(Update::Stopped {
                    reason: e.to_string(),
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
                    reason: "no relay to connect to".into(),
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
                let end = session(&mut engine, stream, &mut commands, &updates).await;
                if started.elapsed() >= STABLE_SESSION {
                    backoff = BACKOFF_MIN;
                }
                match end {
                    SessionEnd::Quit(reason) => {
                        let _ = updates.send(Update::Stopped { reason }).await;
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
                        reason: e.to_string(),
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
                        let _ = updates.send(Update::Stopped { reason: "left".into() }).await;
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

enum SessionEnd {
    Quit(String),
    Lost(String),
}

async fn session(
    engine: &mut Engine,
    stream: TlsStream<TcpStream>,
    commands: &mut mpsc::Receiver<Command>,
    updates: &mpsc::Sender<Update>,
) -> SessionEnd {
    let (r, w) = tokio::io::split(stream);
    let mut rx = FramedRead::new(r, FrameCodec::<RelayFrame>::new(DEFAULT_MAX_FRAME));
    let mut tx = FramedWrite::new(w, FrameCodec::<RelayFrame>::new(DEFAULT_MAX_FRAME));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let first = engine.on_connected(now_ms());
    if let Err(e) = perform(first, &mut tx, updates).await {
        return SessionEnd::Lost(e);
    }
    let mut last_rx = tokio::time::Instant::now();
    loop {
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
                None => return SessionEnd::Quit("quit".into()),
                Some(Command::Leave) => {
                    let actions = engine.handle_command(now_ms(), Command::Leave);
                    let _ = perform(actions, &mut tx, updates).await;
                    let _ = SinkExt::<ClientFrame>::close(&mut tx).await;
                    return SessionEnd::Quit("left the room".into());
                }
                Some(cmd) => engine.handle_command(now_ms(), cmd),
            },
            _ = tick.tick() => engine.handle_tick(now_ms()),
        };
        if let Err(e) = perform(actions, &mut tx, updates).await {
            return SessionEnd::Lost(e);
        }
    }
}

async fn perform<W>(
    actions: Vec<Action>,
    tx: &mut FramedWrite<W, FrameCodec<RelayFrame>>,
    updates: &mpsc::Sender<Update>,
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
            Action::Event(e) => {
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
