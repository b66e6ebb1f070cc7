//! Reaching a relay: TCP, TLS (`native-tls`), and the check of the relay's
//! certificate, before anything is written.
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
use std::time::Duration;

use common::ids::Fingerprint;
use common::invite::RelayEndpoint;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_native_tls::TlsStream;

/// How long to wait for TCP and TLS.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
        // One pinned connector serves every room of the process: a window
        // of ten rooms builds one TLS context, not ten (each build parses
        // OpenSSL's default certificate bundle only to drop it, tens of
        // milliseconds and a heap left fragmented). A CA file is read
        // again each time: it may have been replaced.
        static PINNED: std::sync::OnceLock<Connector> = std::sync::OnceLock::new();
        if *trust == Trust::Pinned {
            if let Some(c) = PINNED.get() {
                return Ok(c.clone());
            }
            let c = Self::build(trust)?;
            return Ok(PINNED.get_or_init(|| c).clone());
        }
        Self::build(trust)
    }

    fn build(trust: &Trust) -> Result<Self, ConnectError> {
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

/// Most unsent bytes the kernel holds for the connection.
#[cfg(any(target_os = "linux", target_os = "android"))]
const NOTSENT_LOWAT: u32 = 128 * 1024;

/// Data the relay has not acknowledged for this long ends the connection
/// (`TCP_USER_TIMEOUT`): a write into a dead link fails within the app's
/// own silence bound instead of TCP's quarter-hour of retries. TCP resends
/// a lost segment within a second or two even over a 300 ms round trip,
/// so a few per cent loss never comes near it.
#[cfg(any(target_os = "linux", target_os = "android"))]
const USER_TIMEOUT: Duration = Duration::from_secs(12);

async fn tcp(relay: &RelayEndpoint) -> Result<TcpStream, ConnectError> {
    let addr = relay.address();
    let target = (relay.host.to_dns_or_ip(), relay.port);
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            // Little unsent data waits in the kernel: what waits is in the
            // writer's lanes, where chat overtakes file chunks.
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                let sock = socket2::SockRef::from(&s);
                let _ = sock.set_tcp_notsent_lowat(NOTSENT_LOWAT);
                let _ = sock.set_tcp_user_timeout(Some(USER_TIMEOUT));
            }
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
