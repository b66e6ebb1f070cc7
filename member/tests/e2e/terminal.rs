//! The terminal app holds several rooms: a member in two rooms on two
//! relays joins the second with `/join`, sees lines of the room away
//! counted (and a mention of them said at once), switches, writes to the
//! room shown only, and leaves one room for good (its history on this
//! computer goes, the other room's stays).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use common::engine::mentions;
use common::invite::Invite;

use super::*;

/// The app's JSON lines, as they come, read on a thread of their own.
struct App {
    child: std::process::Child,
    /// None once a test took it to write from a thread of its own.
    stdin: Option<std::process::ChildStdin>,
    lines: std_mpsc::Receiver<serde_json::Value>,
    /// Every line seen, for the failure message.
    seen: Vec<String>,
}

impl App {
    /// Starts `teamchat-member` with the arguments `args` gives.
    fn spawn(args: impl FnOnce(&mut Process)) -> App {
        let mut p = Process::new(env!("CARGO_BIN_EXE_teamchat-member"));
        args(&mut p);
        let mut child = p
            .env("TEAMCHAT_PASSPHRASE", "")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, lines) = std_mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        App {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line that `pred` accepts, within 60 s.
    fn wait(&mut self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.to_string());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no {what} within 60 s; the app printed:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }
}

fn is(v: &serde_json::Value, kind: &str, room: &str) -> bool {
    v["type"] == kind && v["room"] == room
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_terminal_holds_two_rooms_on_two_relays_and_leaves_one_for_good() {
    use client::history::{History, HistoryOptions, KeptRoom, Retention, RoomBook};
    let (relay_a, relay_b) = (
        TestRelay::start(test_limits()).await,
        TestRelay::start(test_limits()).await,
    );
    let (ea, eb) = (endpoint(&relay_a), endpoint(&relay_b));
    let (ops, design) = (
        common::crypto::random_room_id(),
        common::crypto::random_room_id(),
    );
    let (ops_hex, design_hex) = (hex::encode(ops.0), hex::encode(design.0));
    let start = |room, name: &str, key: usize, pw: &str, ep: &RelayEndpoint| {
        Peer::start(
            admin_engine(room, name, key, Some(pw), HashSet::new()),
            vec![ep.clone()],
            FileOptions::default(),
        )
    };
    let mut admin_ops = start(ops, "ops", 4, "pw-ops", &ea);
    let mut admin_design = start(design, "design", 5, "pw-design", &eb);
    admin_ops.expect("the first epoch", epoch_with(1)).await;
    admin_design.expect("the first epoch", epoch_with(1)).await;
    let invite = |ep: &RelayEndpoint, room, key: usize| {
        Invite::new(vec![ep.clone()], room, shared(key).public().fingerprint())
            .unwrap()
            .to_string()
    };

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("carol-history.sqlite3");
    let opts = HistoryOptions {
        path: db.clone(),
        retention: Retention::default(),
    };
    // Carol's window remembers both rooms (the same database).
    let key = shared(3);
    common::identity::save(&dir.path().join("carol.pem"), &key, None).unwrap();
    let kept = |room, ep: &RelayEndpoint, admin: usize, name: &str| KeptRoom {
        room,
        invite: invite(ep, room, admin),
        name: name.into(),
        my_name: "carol".into(),
        notify: "mentions".into(),
        admin: false,
        roster: Vec::new(),
    };
    RoomBook::open(&opts, &key, "member")
        .unwrap()
        .keep(&[kept(ops, &ea, 4, "ops"), kept(design, &eb, 5, "design")])
        .unwrap();
    let mut app = App::spawn(|p| {
        p.args(["--json", "--name", "carol", "--password", "pw-ops"])
            .args(["--invite", &invite(&ea, ops, 4)])
            .arg("--identity")
            .arg(dir.path().join("carol.pem"))
            .arg("--history-file")
            .arg(&db)
            .arg("--download-dir")
            .arg(dir.path().join("downloads"));
    });

    app.wait("carol in ops", |v| is(v, "epoch", &ops_hex));
    app.type_line(&format!("/join {} pw-design", invite(&eb, design, 5)));
    app.wait("design shown", |v| is(v, "switched", &design_hex));
    app.wait("carol in design", |v| is(v, "epoch", &design_hex));

    // A mention in ops, away: counted, and said as a mention.
    let epoch = admin_ops.expect("carol in ops", epoch_with(2)).await;
    let Event::Epoch { members, .. } = epoch else {
        unreachable!()
    };
    let carol = members.iter().find(|m| m.name == "carol").unwrap();
    admin_ops
        .say(&format!(
            "{} the deploy is yours",
            mentions::token(&carol.fingerprint)
        ))
        .await;
    app.wait("the mention", |v| {
        is(v, "mention", &ops_hex) && v["from"] == "boss"
    });
    let unread = app.wait("ops unread", |v| is(v, "unread", &ops_hex));
    assert_eq!(
        (unread["unread"].as_u64(), unread["for_you"].as_u64()),
        (Some(1), Some(1))
    );
    admin_design.expect("carol in design", epoch_with(2)).await;
    admin_design.say("mockups are up").await;
    app.wait("design's line", |v| {
        is(v, "message", &design_hex) && v["text"] == "mockups are up"
    });

    app.type_line("/rooms");
    let list = app.wait("the room list", |v| v["type"] == "rooms");
    let rows = list["rooms"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!(
        (
            rows[0]["name"].as_str(),
            rows[0]["unread"].as_u64(),
            rows[0]["for_you"].as_u64(),
            rows[0]["current"].as_bool()
        ),
        (Some("ops"), Some(1), Some(1), Some(false))
    );
    assert_eq!(
        (
            rows[1]["name"].as_str(),
            rows[1]["unread"].as_u64(),
            rows[1]["current"].as_bool()
        ),
        (Some("design"), Some(0), Some(true))
    );

    // Switched back, the count is cleared; a line goes to the room shown.
    app.type_line("/switch OPS");
    app.wait("ops shown", |v| is(v, "switched", &ops_hex));
    let cleared = app.wait("ops read", |v| is(v, "unread", &ops_hex));
    assert_eq!(cleared["unread"].as_u64(), Some(0));
    app.type_line("on it");
    admin_ops
        .expect(
            "carol's line in ops",
            |e| matches!(e, Event::Message { text, .. } if text == "on it"),
        )
        .await;
    app.wait("carol's line kept", |v| is(v, "sent", &ops_hex));

    // Left for good, asked twice: ops's history goes, design's stays.
    app.type_line("/leave");
    app.wait("the question", |v| {
        is(v, "info", &ops_hex) && v["text"].as_str().unwrap_or("").starts_with("/leave again")
    });
    app.type_line("/leave");
    admin_ops
        .expect(
            "carol left ops",
            |e| matches!(e, Event::MemberLeft(m) if m.name == "carol"),
        )
        .await;
    app.wait("ops stopped", |v| is(v, "stopped", &ops_hex));
    app.wait("design shown again", |v| is(v, "switched", &design_hex));
    app.type_line("/quit");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = app.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the app did not end after /quit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        !admin_design.texts().iter().any(|t| t == "on it"),
        "a line for ops reached design"
    );

    let kept = |room| {
        History::open(&opts, &key, &room)
            .unwrap()
            .last(100)
            .unwrap()
            .entries
            .len()
    };
    assert_eq!(kept(ops), 0, "ops was left for good: its history is gone");
    assert!(kept(design) > 0, "design was only quit: its history stays");
    let book = RoomBook::open(&opts, &key, "member")
        .unwrap()
        .read()
        .unwrap();
    let rooms: Vec<RoomId> = book.rooms.iter().map(|k| k.room).collect();
    assert_eq!(rooms, vec![design], "the window no longer reconnects ops");
    relay_a.stop.cancel();
    relay_b.stop.cancel();
}

/// A burst of input (a paste, or lines piped in) larger than a room's
/// queue: every line goes out, in order, while the app goes on showing
/// what comes back. Before, the terminal waited on the full queue while
/// the room's driver waited for it to take its updates, and both waited
/// for ever after a few hundred lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_piped_lines_all_go_out_in_order_while_the_app_shows_what_comes_back() {
    const LINES: usize = 2000;
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let room_hex = hex::encode(room.0);
    let mut admin = Peer::start(
        admin_engine(room, "ops", 4, Some("pw"), HashSet::new()),
        vec![ep.clone()],
        FileOptions::default(),
    );
    admin.expect("the first epoch", epoch_with(1)).await;
    let invite = Invite::new(vec![ep], room, shared(4).public().fingerprint())
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    common::identity::save(&dir.path().join("carol.pem"), &shared(3), None).unwrap();
    let mut app = App::spawn(|p| {
        p.args([
            "--json",
            "--name",
            "carol",
            "--password",
            "pw",
            "--no-history",
        ])
        .args(["--invite", &invite])
        .arg("--identity")
        .arg(dir.path().join("carol.pem"))
        .arg("--download-dir")
        .arg(dir.path().join("downloads"));
    });
    app.wait("carol in the room", |v| is(v, "epoch", &room_hex));
    admin.expect("carol in the room", epoch_with(2)).await;

    // All at once, from a thread: the pipe fills and the writer waits
    // while the app works through it.
    let mut stdin = app.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let text: String = (0..LINES).map(|i| format!("line {i:04}\n")).collect();
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    while sent < LINES {
        let left = deadline.saturating_duration_since(Instant::now());
        match app.lines.recv_timeout(left) {
            Ok(v) if is(&v, "sent", &room_hex) => {
                assert_eq!(v["text"], format!("line {sent:04}"), "out of order");
                sent += 1;
            }
            Ok(_) => {}
            Err(_) => {
                let _ = app.child.kill();
                panic!("the app sent {sent} of {LINES} lines, then nothing for 60 s");
            }
        }
    }
    writer.join().unwrap().unwrap();
    let last = format!("line {:04}", LINES - 1);
    let wait_until = tokio::time::Instant::now() + Duration::from_secs(60);
    while !admin.texts().contains(&last) {
        admin.next("carol's last line", wait_until).await;
    }
    let expected: Vec<String> = (0..LINES).map(|i| format!("line {i:04}")).collect();
    assert_eq!(
        admin.texts(),
        expected,
        "the admin got every line, in order"
    );
    // The writer's end closed: end of input leaves the room.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the app did not end at end of input"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.stop.cancel();
}
