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

/// The lines the app writes to its standard output, as they come (read on
/// a thread of their own).
fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
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
    let rx = stdout_lines(&mut child);
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

/// The JSON lines an admin run printed, and whether it exited successfully.
fn run_to_end(mut cmd: Command) -> (Vec<serde_json::Value>, bool, String) {
    let out = cmd.output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (lines, out.status.success(), err)
}

/// The last `stopped` event of a run.
fn stopped(lines: &[serde_json::Value]) -> &serde_json::Value {
    lines
        .iter()
        .rev()
        .find(|v| v["type"] == "stopped")
        .unwrap_or_else(|| panic!("no stopped event in {lines:?}"))
}

#[test]
fn an_unusable_ca_file_stops_the_app_with_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = admin(
        dir.path(),
        &format!("127.0.0.1:{}", free_port()),
        &"aa".repeat(32),
    );
    cmd.arg("--ca").arg(dir.path().join("no-such-ca.crt"));
    let (lines, success, err) = run_to_end(cmd);
    let stop = stopped(&lines);
    assert_eq!(stop["failure"], true, "{stop}");
    assert!(
        stop["reason"]
            .as_str()
            .unwrap()
            .contains("cannot use CA file"),
        "{stop}"
    );
    assert!(!success, "the exit status says it failed");
    assert!(
        err.contains("cannot use CA file"),
        "and stderr says why: {err}"
    );
}

/// Control for the test above: leaving (here, at the end of its input) is
/// not a failure, even with no relay reachable.
#[test]
fn leaving_at_the_end_of_input_exits_successfully() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = admin(
        dir.path(),
        &format!("127.0.0.1:{}", free_port()),
        &"aa".repeat(32),
    );
    let (lines, success, err) = run_to_end(cmd);
    let stop = stopped(&lines);
    assert_eq!(stop["failure"], false, "{stop}");
    assert_eq!(stop["reason"], "left the room");
    assert!(success, "exit status 0; stderr: {err}");
}

/// Ctrl-C leaves the room as `/quit` does (the goodbye goes out, the
/// history is written), and the app exits successfully; before, SIGINT
/// killed the process on the spot.
#[test]
fn ctrl_c_leaves_the_room_and_exits_successfully() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = admin(
        dir.path(),
        &format!("127.0.0.1:{}", free_port()),
        &"aa".repeat(32),
    );
    // Input stays open: only the signal can end the run.
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let rx = stdout_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    // Running: it tries to reach the relay.
    while !lines
        .iter()
        .any(|l: &serde_json::Value| l["type"] == "connecting")
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            panic!("the admin never started connecting: {lines:?}");
        };
        lines.push(serde_json::from_str(&line).unwrap());
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // It exits by itself, input still open, within the connect timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 20 s after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(serde_json::from_str(&line).unwrap());
    }
    assert_eq!(stopped(&lines)["reason"], "left the room", "{lines:?}");
    assert!(status.success(), "exit status {status:?}");
}
