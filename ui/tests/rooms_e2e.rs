//! One member window in three rooms on two real relays (127.0.0.1): each
//! room's lines arrive in that room and no other, the rooms not on screen
//! count what came (and what was for us), and after a restart the three
//! rooms come back from the room book and reconnect by themselves.
//!
//! The window runs on Slint's testing backend with its event loop (driver
//! updates reach the window through `invoke_from_event_loop`, as in the
//! app); a scenario thread plays the three admins and reads the window's
//! state through the event loop. One test per binary: the backend's event
//! loop can be set up once per process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use client::files::FileOptions;
use client::history::{HistoryOptions, Retention};
use client::testing::{admin_engine, epoch_with, local_endpoint, Peer};
use common::engine::{Command, Event};
use common::invite::Invite;
use common::{identity, test_keys, RoomId};
use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use relay::testing::{test_limits, TestRelay};
use slint::{ComponentHandle, Model};
use ui::member::{MemberApp, MemberOptions};
use ui::rooms::{Network, Rooms};
use ui::MemberWindow;

/// The longest any one step may take.
const STEP: Duration = Duration::from_secs(20);

fn field(win: &MemberWindow, label: &str) -> ElementHandle {
    ElementHandle::find_by_accessible_label(win, label)
        .find(|e| e.accessible_role() != Some(AccessibleRole::Text))
        .unwrap_or_else(|| panic!("no field {label:?}"))
}

/// What the window shows of each room: name, unread, for us, lines.
type Seen = Vec<(String, u32, u32, Vec<String>)>;

/// Reads every room of the window, on the UI thread.
fn look(weak: &slint::Weak<MemberWindow>) -> Seen {
    let (tx, rx) = std_mpsc::channel();
    let w = weak.clone();
    slint::invoke_from_event_loop(move || {
        let seen: Seen = w
            .upgrade()
            .and_then(|w| Rooms::of(&w))
            .map(|rooms| {
                rooms
                    .slots()
                    .iter()
                    .map(|s| {
                        (
                            s.room().get_room_name().to_string(),
                            s.unread(),
                            s.mentions(),
                            s.room()
                                .get_lines()
                                .iter()
                                .map(|l| l.text.to_string())
                                .collect(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = tx.send(seen);
    })
    .unwrap();
    rx.recv_timeout(STEP).expect("the event loop answers")
}

/// Waits (bounded) until `ok` holds for what the window shows.
fn wait_for(weak: &slint::Weak<MemberWindow>, what: &str, ok: impl Fn(&Seen) -> bool) -> Seen {
    let deadline = Instant::now() + STEP;
    loop {
        let seen = look(weak);
        if ok(&seen) {
            return seen;
        }
        assert!(Instant::now() < deadline, "{what}: {seen:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the event loop on this thread while `scenario` runs on another;
/// the loop ends when the scenario does (its panic is passed on).
fn with_event_loop(scenario: impl FnOnce() + Send + 'static) {
    let done = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(scenario));
        let _ = slint::invoke_from_event_loop(|| {
            let _ = slint::quit_event_loop();
        });
        r
    });
    slint::run_event_loop_until_quit().unwrap();
    if let Err(p) = done.join().unwrap() {
        std::panic::resume_unwind(p);
    }
}

fn is_in(e: &Event) -> bool {
    matches!(e, Event::Epoch { members, .. } if members.iter().any(|m| m.name == "wendy"))
}

#[test]
fn one_member_in_three_rooms_on_two_relays() {
    i_slint_backend_testing::init_integration_test_with_system_time();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let relays = [
        rt.block_on(TestRelay::start(test_limits())),
        rt.block_on(TestRelay::start(test_limits())),
    ];
    let endpoints: Vec<_> = relays
        .iter()
        .map(|r| local_endpoint(r.addr.port(), &r.fingerprint))
        .collect();
    let wendy = test_keys::key(1).public().fingerprint();
    // Rooms "alpha" and "beta" on the first relay, "gamma" on the second;
    // their admins know wendy (roster), so she is let in at once, also
    // when she comes back after a restart.
    let plan = [("alpha", 0usize), ("beta", 0), ("gamma", 1)];
    let mut admins = Vec::new();
    let mut invites = Vec::new();
    for (name, relay) in plan {
        let room = common::crypto::random_room_id();
        let mut admin = {
            let _in = rt.enter();
            let engine = admin_engine(room, name, 4, None, HashSet::from([wendy]));
            Peer::start(
                engine,
                vec![endpoints[relay].clone()],
                FileOptions::default(),
            )
        };
        rt.block_on(admin.expect("the first epoch", epoch_with(1)));
        let invite = Invite::new(
            vec![endpoints[relay].clone()],
            room,
            test_keys::shared(4).public().fingerprint(),
        )
        .unwrap();
        invites.push((room, invite.to_string()));
        admins.push(admin);
    }

    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("wendy.pem");
    identity::save(&id, test_keys::key(1), None).unwrap();
    let net = || {
        Network::Runtime(
            rt.handle().clone(),
            client::driver::Options {
                history: Some(HistoryOptions {
                    path: dir.path().join("history.sqlite3"),
                    retention: Retention::default(),
                }),
                ..client::driver::Options::default()
            },
        )
    };
    let opts = MemberOptions {
        invite: None,
        name: Some("wendy".into()),
        password: None,
        identity: id,
        ca: None,
        join_now: false,
        settings: None,
    };

    // ---- first run: join the three rooms through the form ----------------
    let app = MemberApp::new(opts.clone(), net(), Some(rt.handle().clone())).unwrap();
    let w = &app.window;
    for (i, (_, invite)) in invites.iter().enumerate() {
        if i > 0 {
            field(w, "Join a room").invoke_accessible_default_action();
        }
        field(w, "Invite").set_accessible_value(invite.as_str());
        field(w, "Your name").set_accessible_value("wendy");
        field(w, "Join").invoke_accessible_default_action();
        assert!(w.get_room_open(), "{}", w.get_join_error());
    }
    assert_eq!(app.rooms.slots().len(), 3);
    let weak = w.as_weak();
    let handle = rt.handle().clone();
    let scenario = move || {
        for a in &mut admins {
            handle.block_on(a.expect("wendy let in", is_in));
        }
        // One line in each room, and a private one in alpha.
        for (a, (name, _)) in admins.iter().zip(plan) {
            handle
                .block_on(a.cmd.send(Command::Send(format!("hello {name}")).into()))
                .unwrap();
        }
        handle
            .block_on(
                admins[0]
                    .cmd
                    .send(Command::Private(wendy, "just for you".into()).into()),
            )
            .unwrap();
        let seen = wait_for(&weak, "each line in its room", |s| {
            s.len() == 3
                && s.iter().zip(plan).all(|((_, _, _, lines), (name, _))| {
                    lines.iter().any(|l| *l == format!("hello {name}"))
                })
                && s[0].3.iter().any(|l| l == "just for you")
        });
        for (i, (name, _)) in plan.iter().enumerate() {
            assert_eq!(seen[i].0, *name);
            for (other, _) in plan.iter().filter(|(o, _)| o != name) {
                assert!(
                    !seen[i].3.iter().any(|l| *l == format!("hello {other}")),
                    "{other}'s line in {name}: {seen:#?}"
                );
            }
        }
        // gamma (joined last) is on screen: read; alpha and beta counted,
        // and alpha's private line is for us.
        assert_eq!((seen[0].1, seen[0].2), (2, 1), "alpha: {seen:#?}");
        assert_eq!((seen[1].1, seen[1].2), (1, 0), "beta: {seen:#?}");
        assert_eq!((seen[2].1, seen[2].2), (0, 0), "gamma: {seen:#?}");
        admins
    };
    let (tx, rx) = std_mpsc::channel();
    with_event_loop(move || {
        let _ = tx.send(scenario());
    });
    let mut admins = rx.recv().unwrap();
    // The window closes: the app leaves its rooms.
    let MemberApp { window, rooms } = app;
    drop(window);
    assert!(rooms.leave_all(Duration::from_secs(5)));
    drop(rooms);
    for a in &mut admins {
        rt.block_on(a.expect(
            "wendy leaving",
            |e| matches!(e, Event::MemberLeft(m) if m.name == "wendy"),
        ));
        a.seen.clear();
    }

    // ---- restart: the three rooms come back by themselves ---------------
    let app = MemberApp::new(opts, net(), Some(rt.handle().clone())).unwrap();
    let w = &app.window;
    assert!(w.get_room_open(), "the rooms, not the join form");
    let kept: Vec<RoomId> = app
        .rooms
        .slots()
        .iter()
        .filter_map(|s| s.room_id())
        .collect();
    assert_eq!(
        kept,
        invites.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        "the same rooms, in the same order"
    );
    let weak = w.as_weak();
    let handle = rt.handle().clone();
    with_event_loop(move || {
        for a in &mut admins {
            handle.block_on(a.expect("wendy back", is_in));
        }
        handle
            .block_on(
                admins[2]
                    .cmd
                    .send(Command::Send("welcome back".into()).into()),
            )
            .unwrap();
        wait_for(&weak, "gamma's line after the restart", |s| {
            s.len() == 3 && s[2].3.iter().any(|l| l == "welcome back")
        });
    });
    let MemberApp { window, rooms } = app;
    drop(window);
    assert!(rooms.leave_all(Duration::from_secs(5)));
    drop(relays);
}
