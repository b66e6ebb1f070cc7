//! The `teamchat-relay` binary: starts from flags, prints its address and
//! certificate fingerprint, serves TLS 1.3, and stops cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use wire::RoomId;
use wire::{ErrorCode, RelayFrame};

#[test]
fn help_explains_every_option_and_its_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_teamchat-relay"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--cert",
        "--key",
        "--config",
        "--max-frame",
        "--max-conns",
        "--max-conns-per-ip",
        "--max-rooms",
        "--max-room-conns",
        "--rate-frames",
        "--rate-bytes",
        "--rate-fanout-bytes",
        "--queue-frames",
        "--handshake-timeout",
        "--hello-timeout",
        "--idle-timeout",
        "--stats-interval",
        "--shutdown-grace",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
        let env = format!(
            "TEAMCHAT_RELAY_{}",
            flag.trim_start_matches("--")
                .replace('-', "_")
                .to_uppercase()
        );
        assert!(help.contains(&env), "--help does not mention {env}");
    }
}

#[test]
fn missing_certificate_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_teamchat-relay"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("TEAMCHAT_RELAY_CERT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--cert"), "{err}");
}

#[test]
fn binary_serves_tls_and_stops_on_sigterm_with_going_away() {
    let cert = make_cert();
    let mut child = Command::new(env!("CARGO_BIN_EXE_teamchat-relay"))
        .args(["--listen", "127.0.0.1:0", "--stats-interval", "0"])
        .arg("--cert")
        .arg(&cert.cert)
        .arg("--key")
        .arg(&cert.key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let addr: std::net::SocketAddr = first.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        first.starts_with("teamchat-relay listening on 127.0.0.1:"),
        "{first}"
    );
    let fp = second
        .split("sha256=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(fp, relay::tls::cert_fingerprint(&cert.cert).unwrap());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tls = tls_connect(addr, &cert.cert, None).await.unwrap();
        assert_eq!(tls.ssl().version_str(), "TLSv1.3");
        let der = tls.ssl().peer_certificate().unwrap().to_der().unwrap();
        assert_eq!(hex::encode(openssl::sha::sha256(&der)), fp);
        let mut c = Client::new(tls);
        c.send(wire::ClientFrame::Hello(wire::Hello {
            version: wire::PROTOCOL_VERSION,
            room: RoomId(rand_room()),
        }))
        .await;
        assert!(matches!(c.recv().await, Some(RelayFrame::Welcome(_))));

        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        match c.recv().await {
            Some(RelayFrame::Error(e)) => assert_eq!(e.code, ErrorCode::GoingAway),
            other => panic!("expected going-away, got {other:?}"),
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "relay did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("relay stopped"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes when not on a terminal"
    );
}
