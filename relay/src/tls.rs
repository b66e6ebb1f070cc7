//! The relay's TLS configuration (OpenSSL): TLS 1.2 minimum, TLS 1.3
//! preferred, ECDHE key exchange and AEAD ciphers only, no compression, no
//! renegotiation, server cipher preference.

use std::path::Path;

use anyhow::{Context, Result};
use openssl::hash::MessageDigest;
use openssl::ssl::{
    SslAcceptor, SslFiletype, SslMethod, SslMode, SslOptions, SslSessionCacheMode, SslVersion,
};
use openssl::x509::X509;

/// TLS 1.2 suites: ECDHE only, AEAD only (TLS 1.3 suites are all AEAD and
/// all (EC)DHE).
pub const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// TLS 1.3 suites, in preference order.
pub const TLS13_SUITES: &str =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/// Key-exchange groups, in preference order.
pub const GROUPS: &str = "X25519:P-256:P-384";

/// Builds the acceptor from PEM files and returns it with the SHA-256
/// fingerprint (lowercase hex) of the leaf certificate: the value members pin.
pub fn acceptor(cert: &Path, key: &Path) -> Result<(SslAcceptor, String)> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .context("cannot initialise OpenSSL")?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_max_proto_version(Some(SslVersion::TLS1_3))?;
    b.set_cipher_list(TLS12_CIPHERS)?;
    b.set_ciphersuites(TLS13_SUITES)?;
    b.set_groups_list(GROUPS)?;
    b.set_options(
        SslOptions::NO_COMPRESSION
            | SslOptions::NO_RENEGOTIATION
            | SslOptions::CIPHER_SERVER_PREFERENCE
            | SslOptions::NO_TICKET,
    );
    // Idle connections give their TLS record buffers back (memory per idle
    // connection is a goal of the relay).
    b.set_mode(SslMode::RELEASE_BUFFERS);
    // Stateless: no session cache, no TLS 1.3 tickets (no per-session
    // memory, no resumption state to protect).
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_num_tickets(0)?;
    b.set_certificate_chain_file(cert)
        .with_context(|| format!("cannot load certificate chain {}", cert.display()))?;
    b.set_private_key_file(key, SslFiletype::PEM)
        .with_context(|| format!("cannot load private key {}", key.display()))?;
    b.check_private_key().with_context(|| {
        format!(
            "private key {} does not match certificate {}",
            key.display(),
            cert.display()
        )
    })?;
    let fingerprint = cert_fingerprint(cert)?;
    Ok((b.build(), fingerprint))
}

/// SHA-256 of the DER of the first certificate in a PEM file, lowercase hex.
pub fn cert_fingerprint(cert: &Path) -> Result<String> {
    let pem = std::fs::read(cert)
        .with_context(|| format!("cannot read certificate {}", cert.display()))?;
    let x509 = X509::from_pem(&pem)
        .with_context(|| format!("{} is not a PEM certificate", cert.display()))?;
    let digest = x509.digest(MessageDigest::sha256())?;
    Ok(hex::encode(digest))
}
