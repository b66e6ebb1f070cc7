//! How a benchmark connection reaches the relay: TCP (no Nagle) then a TLS
//! 1.3 client handshake with OpenSSL.
//!
//! Verification is either against one CA file (and the relay's address or
//! `--server-name`), or — for loopback benchmarks only — switched off. This
//! module never sends application data.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;

use anyhow::{bail, Context, Result};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// A TLS stream to the relay.
pub type TlsStream = SslStream<TcpStream>;

/// How to trust the relay.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Verify the chain against the certificates in this PEM file only (no
    /// system roots), and the name or IP address against the certificate.
    CaFile(std::path::PathBuf),
    /// No verification at all. Refused unless the address is loopback.
    InsecureLoopback,
}

/// Where and how to connect: built once, used for every connection.
pub struct Target {
    addr: SocketAddr,
    server_name: String,
    connector: SslConnector,
    verify: bool,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .field("verify", &self.verify)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A target at `addr`. `server_name` defaults to the IP address itself
    /// (checked against the certificate's IP SANs).
    pub fn new(addr: SocketAddr, trust: &Trust, server_name: Option<String>) -> Result<Self> {
        let mut builder =
            SslConnector::builder(SslMethod::tls_client()).context("creating the TLS context")?;
        builder
            .set_min_proto_version(Some(SslVersion::TLS1_3))
            .context("requiring TLS 1.3")?;
        let verify = match trust {
            Trust::CaFile(path) => {
                builder.set_cert_store(ca_store(path)?);
                builder.set_verify(SslVerifyMode::PEER);
                true
            }
            Trust::InsecureLoopback => {
                if !addr.ip().is_loopback() {
                    bail!(
                        "--insecure is for loopback benchmarks only; {addr} is not a loopback \
                         address (give --ca FILE instead)"
                    );
                }
                builder.set_verify(SslVerifyMode::NONE);
                false
            }
        };
        Ok(Target {
            addr,
            server_name: server_name.unwrap_or_else(|| addr.ip().to_string()),
            connector: builder.build(),
            verify,
        })
    }

    /// The relay's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens TCP, disables Nagle, and completes the TLS handshake.
    pub async fn connect(&self) -> Result<TlsStream> {
        let tcp = self.connect_tcp().await?;
        self.handshake(tcp).await
    }

    /// Opens TCP only (for protocols that talk in plain text before TLS,
    /// like NATS's INFO line), with Nagle disabled.
    pub async fn connect_tcp(&self) -> Result<TcpStream> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true).context("setting TCP_NODELAY")?;
        Ok(tcp)
    }

    /// Opens TCP from `source` (an address of this machine: on loopback,
    /// any of 127.0.0.0/8), with Nagle disabled.
    pub async fn connect_tcp_from(&self, source: std::net::IpAddr) -> Result<TcpStream> {
        let socket = if self.addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .context("creating a socket")?;
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("binding to {source}"))?;
        let tcp = socket
            .connect(self.addr)
            .await
            .with_context(|| format!("connecting to {} from {source}", self.addr))?;
        tcp.set_nodelay(true).context("setting TCP_NODELAY")?;
        Ok(tcp)
    }

    /// Completes a TLS 1.3 client handshake on an open TCP stream.
    pub async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream> {
        let ssl = self
            .connector
            .configure()
            .context("configuring the TLS connection")?
            .verify_hostname(self.verify)
            .into_ssl(&self.server_name)
            .context("configuring the TLS connection")?;
        let mut stream = SslStream::new(ssl, tcp).context("creating the TLS stream")?;
        if let Err(e) = Pin::new(&mut stream).connect().await {
            let verify = stream.ssl().verify_result();
            if self.verify && verify != openssl::x509::X509VerifyResult::OK {
                bail!(
                    "TLS handshake with {} failed: certificate not trusted for {:?}: {}",
                    self.addr,
                    self.server_name,
                    verify.error_string()
                );
            }
            bail!("TLS handshake with {} failed: {e}", self.addr);
        }
        Ok(stream)
    }
}

/// A certificate store holding exactly the certificates of one PEM file.
fn ca_store(path: &Path) -> Result<openssl::x509::store::X509Store> {
    let pem = std::fs::read(path).with_context(|| format!("reading CA file {}", path.display()))?;
    let certs = X509::stack_from_pem(&pem)
        .with_context(|| format!("parsing CA file {} (PEM expected)", path.display()))?;
    if certs.is_empty() {
        bail!("CA file {} holds no certificate", path.display());
    }
    let mut store = X509StoreBuilder::new().context("creating a certificate store")?;
    for cert in certs {
        store
            .add_cert(cert)
            .with_context(|| format!("adding a certificate from {}", path.display()))?;
    }
    Ok(store.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_is_refused_off_loopback() {
        let addr: SocketAddr = "192.0.2.1:7443".parse().unwrap();
        let err = Target::new(addr, &Trust::InsecureLoopback, None).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn insecure_is_allowed_on_loopback() {
        let addr: SocketAddr = "127.0.0.1:7443".parse().unwrap();
        let t = Target::new(addr, &Trust::InsecureLoopback, None).unwrap();
        assert_eq!(t.server_name, "127.0.0.1");
    }
}
