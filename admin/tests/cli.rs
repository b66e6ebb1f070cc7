//! The terminal admin writes every relay it is given into the invite, each
//! with its certificate pin, and refuses lists that do not pair up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::invite::Invite;

/// A loopback port nothing listens on (taken, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn admin(dir: &std::path::Path, relays: &str, pins: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_teamchat-admin"));
    c.args(["--cli", "--json", "--relay", relays, "--relay-pin", pins])
        .arg("--identity")
        .arg(dir.join("admin.pem"))
        .arg("--no-history")
        .env("TEAMCHAT_PASSPHRASE", "")
        .env_remove("TEAMCHAT_RELAY")
        .env_remove("TEAMCHAT_RELAY_CERT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn several_relays_and_their_pins_go_into_the_invite() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (free_port(), free_port());
    let (a, b) = ("aa".repeat(32), "bb".repeat(32));
    let mut child = admin(
        dir.path(),
        &format!("127.0.0.1:{p1},127.0.0.1:{p2}"),
        &format!("{a},{b}"),
    )
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let invite = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no invite printed");
        };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["type"] == "invite" {
            break v["invite"].as_str().unwrap().to_string();
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let invite: Invite = invite.parse().unwrap();
    let relays: Vec<(String, String)> = invite
        .relays()
        .iter()
        .map(|r| (r.address(), r.cert.to_string()))
        .collect();
    assert_eq!(
        relays,
        vec![
            (format!("127.0.0.1:{p1}"), a.clone()),
            (format!("127.0.0.1:{p2}"), b.clone())
        ]
    );
}

#[test]
fn relays_and_pins_that_do_not_pair_up_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pins = format!("{},{}", "aa".repeat(32), "bb".repeat(32));
    let out = admin(dir.path(), "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", &pins)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 relay addresses but 2 certificates"),
        "{err}"
    );
}
