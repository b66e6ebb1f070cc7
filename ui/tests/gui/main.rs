//! Headless UI tests: the real `.slint` windows on Slint's testing backend
//! (no display), driven through their accessible labels as a screen reader
//! or a person would, with the network replaced by a command channel and
//! driver updates fed in directly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use client::driver::{Request, Update};
use common::engine::{Command, Delivery, Dropped, Event, Kind, Warning};
use common::identity;
use common::invite::{Invite, RelayEndpoint};
use common::test_keys;
use common::test_keys::member_info as info;
use common::{Fingerprint, RoomId};
use i_slint_backend_testing::{ElementHandle, ElementRoot};
use slint::{ComponentHandle, Model};
use tokio::sync::mpsc;
use ui::admin::{AdminApp, AdminOptions};
use ui::member::{MemberApp, MemberOptions};
use ui::rooms::Network;
use ui::{BannerKind, LineKind, LineState, Moderation, Room, Theme, Transfers};

mod admin;
mod files;
mod private;
mod rooms;
mod status;

struct Fixture {
    dir: tempfile::TempDir,
    commands: mpsc::Receiver<(RoomId, Request)>,
    net: Network,
}

fn fixture() -> Fixture {
    i_slint_backend_testing::init_no_event_loop();
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(64);
    let history = client::history::HistoryOptions {
        path: dir.path().join("history.sqlite3"),
        retention: client::history::Retention::default(),
    };
    Fixture {
        dir,
        commands: rx,
        net: Network::Detached(tx, Some(history)),
    }
}

impl Fixture {
    fn identity(&self, n: usize) -> PathBuf {
        let path = self.dir.path().join(format!("id{n}.pem"));
        identity::save(&path, test_keys::key(n), None).unwrap();
        path
    }

    fn settings(&self) -> PathBuf {
        self.dir.path().join("settings.toml")
    }

    /// The next request other than a typing signal.
    fn next_request(&mut self) -> Option<Request> {
        self.next_request_in().map(|(_, r)| r)
    }

    /// The next request other than a typing signal, with the room it went
    /// to.
    fn next_request_in(&mut self) -> Option<(RoomId, Request)> {
        while let Ok((room, r)) = self.commands.try_recv() {
            if !matches!(r, Request::Engine(Command::Typing(_))) {
                return Some((room, r));
            }
        }
        None
    }

    /// The next engine command other than a typing signal.
    fn next_command(&mut self) -> Option<Command> {
        self.next_request().map(|r| match r {
            Request::Engine(c) => c,
            other => panic!("a runtime request, not an engine command: {other:?}"),
        })
    }

    fn member(&self) -> MemberApp {
        self.member_at(self.identity(1))
    }

    /// The member window with the identity file at `identity` as it is.
    fn member_at(&self, identity: PathBuf) -> MemberApp {
        let opts = MemberOptions {
            invite: None,
            name: None,
            password: None,
            identity,
            ca: None,
            join_now: false,
            settings: Some(self.settings()),
        };
        let app = MemberApp::new(opts, self.net.clone(), None).unwrap();
        app.window
            .window()
            .set_size(slint::LogicalSize::new(1160., 720.));
        app.window.show().unwrap();
        app
    }

    fn admin(&self) -> AdminApp {
        let opts = AdminOptions {
            relay: "127.0.0.1:7443".into(),
            relay_cert: "ab".repeat(32),
            room_name: "launch team".into(),
            name: "boss".into(),
            room_password: None,
            roster: None,
            identity: self.identity(0),
            room: None,
            ca: None,
            rekey_after_messages: 0,
            rekey_after_ms: 0,
            open_now: false,
            settings: Some(self.settings()),
        };
        let app = AdminApp::new(opts, self.net.clone(), None).unwrap();
        app.window
            .window()
            .set_size(slint::LogicalSize::new(1240., 760.));
        app.window.show().unwrap();
        app
    }
}

fn invite() -> String {
    let relay = RelayEndpoint {
        host: common::invite::Host::V4(std::net::Ipv4Addr::LOCALHOST),
        port: 7443,
        cert: Fingerprint([7; 32]),
    };
    Invite::new(
        vec![relay],
        RoomId([9; 16]),
        test_keys::key(0).public().fingerprint(),
    )
    .unwrap()
    .to_string()
}

/// The one interactive element labelled `label` (a form's caption text
/// carries the same words, but is not interactive).
fn one(win: &impl ElementRoot, label: &str) -> ElementHandle {
    use i_slint_backend_testing::AccessibleRole;
    let all: Vec<ElementHandle> = ElementHandle::find_by_accessible_label(win, label)
        .filter(|e| e.accessible_role() != Some(AccessibleRole::Text))
        .collect();
    assert_eq!(all.len(), 1, "one interactive element labelled {label:?}");
    all.into_iter().next().unwrap()
}

/// The accessible labels that start with `prefix`, of elements that exist
/// (rows outside the visible part of a list do not).
fn labels_starting(win: &impl ElementRoot, prefix: &str) -> Vec<String> {
    let p = prefix.to_string();
    win.root_element()
        .query_descendants()
        .match_predicate(move |e| e.accessible_label().is_some_and(|l| l.starts_with(&p)))
        .find_all()
        .iter()
        .filter_map(|e| e.accessible_label().map(|l| l.to_string()))
        .collect()
}

fn settle() {
    slint::platform::update_timers_and_animations();
}

/// Joins the member window with a valid invite, then installs an epoch
/// with the admin, the member and bob.
/// alice's window, the join form sent: waiting to be let in.
fn joining(f: &Fixture) -> MemberApp {
    let app = f.member();
    let w = &app.window;
    one(w, "Invite").set_accessible_value(invite());
    one(w, "Your name").set_accessible_value("alice");
    one(w, "Join").invoke_accessible_default_action();
    assert!(w.get_room_open(), "join error: {}", w.get_join_error());
    app
}

/// alice's window, in the room of three (epoch 2).
fn joined(f: &Fixture) -> MemberApp {
    let app = joining(f);
    let_in(&app.window);
    app
}

/// The epoch that seats alice, boss the admin and bob.
fn let_in(w: &ui::MemberWindow) {
    let_in_at(w, 2);
}

/// [`let_in`] at `epoch`.
fn let_in_at(w: &ui::MemberWindow, epoch: u64) {
    ui::room::apply(
        w,
        Update::Engine(Event::Epoch {
            epoch,
            room_name: "launch team".into(),
            members: vec![
                info(0, "boss", true),
                info(1, "alice", false),
                info(2, "bob", false),
            ],
        }),
    );
    settle();
}

#[test]
fn join_dialog_shows_a_bad_invite_inline_and_keeps_the_form() {
    let f = fixture();
    let app = f.member();
    let w = &app.window;
    one(w, "Invite").set_accessible_value("teamchat://not-an-invite");
    one(w, "Your name").set_accessible_value("alice");
    one(w, "Join").invoke_accessible_default_action();
    settle();
    assert!(!w.get_room_open());
    let errors = labels_starting(w, "Error: This invite is not valid");
    assert_eq!(errors.len(), 1, "inline error shown: {errors:?}");
    // Nothing the user typed is lost.
    assert_eq!(w.get_invite(), "teamchat://not-an-invite");
    assert_eq!(w.get_display_name(), "alice");

    // An empty name is refused too, with its own message.
    one(w, "Invite").set_accessible_value(invite());
    one(w, "Your name").set_accessible_value("   ");
    one(w, "Join").invoke_accessible_default_action();
    assert!(!w.get_room_open());
    assert!(
        w.get_join_error().starts_with("Your name"),
        "{}",
        w.get_join_error()
    );

    // A valid invite, even wrapped over lines as mail clients do, opens the room.
    let inv = invite();
    let (a, b) = inv.split_at(30);
    one(w, "Invite").set_accessible_value(format!("  {a}\n{b}\n"));
    one(w, "Your name").set_accessible_value("alice");
    one(w, "Join").invoke_accessible_default_action();
    assert!(w.get_room_open(), "join error: {}", w.get_join_error());
    assert_eq!(w.get_join_error(), "");
}

#[test]
fn sending_a_message_with_the_button_and_with_enter() {
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    assert!(w.global::<Room>().get_can_send());

    let input = one(w, "Message input");
    input.set_accessible_value("hello team");
    one(w, "Send").invoke_accessible_default_action();
    assert_eq!(f.next_command(), Some(Command::Send("hello team".into())));
    assert_eq!(
        input.accessible_value().unwrap(),
        "",
        "input cleared after sending"
    );

    // Enter sends; Shift+Enter adds a line instead.
    input.set_accessible_value("second");
    w.window()
        .dispatch_event(slint::platform::WindowEvent::KeyPressed { text: "a".into() });
    let _ = f.next_command();
    // Focus the input by clicking it, type, press Enter.
    input.mock_single_click(slint::platform::PointerEventButton::Left);
    input.set_accessible_value("line one");
    w.window()
        .dispatch_event(slint::platform::WindowEvent::KeyPressed {
            text: slint::platform::Key::Shift.into(),
        });
    w.window()
        .dispatch_event(slint::platform::WindowEvent::KeyPressed {
            text: slint::platform::Key::Return.into(),
        });
    w.window()
        .dispatch_event(slint::platform::WindowEvent::KeyReleased {
            text: slint::platform::Key::Return.into(),
        });
    w.window()
        .dispatch_event(slint::platform::WindowEvent::KeyReleased {
            text: slint::platform::Key::Shift.into(),
        });
    assert_eq!(f.next_command(), None, "Shift+Enter does not send");
    assert!(
        input.accessible_value().unwrap().contains('\n'),
        "Shift+Enter adds a new line"
    );
    input.set_accessible_value("sent with enter");
    w.window()
        .dispatch_event(slint::platform::WindowEvent::KeyPressed {
            text: slint::platform::Key::Return.into(),
        });
    w.window()
        .dispatch_event(slint::platform::WindowEvent::KeyReleased {
            text: slint::platform::Key::Return.into(),
        });
    assert_eq!(
        f.next_command(),
        Some(Command::Send("sent with enter".into()))
    );
    assert_eq!(input.accessible_value().unwrap(), "");

    // What the engine reports as sent shows as our own line.
    ui::room::apply(
        w,
        Update::Engine(Event::Sent {
            id: 7,
            text: "hello team".into(),
            sent_at_ms: 1_790_000_000_000,
        }),
    );
    let lines = w.global::<Room>().get_lines();
    let last = lines.row_data(lines.row_count() - 1).unwrap();
    assert_eq!(last.kind, LineKind::Own);
    assert_eq!(last.text, "hello team");
    // Pending (a clock mark) until the relay takes it, then delivered.
    assert_eq!(last.state, LineState::Pending);
    settle();
    assert_eq!(labels_starting(w, "You at ").len(), 1);
    assert!(labels_starting(w, "You at ")[0].contains(", pending: hello team"));
    ui::room::apply(
        w,
        Update::Engine(Event::Delivery {
            id: 7,
            state: Delivery::Delivered,
        }),
    );
    settle();
    assert!(labels_starting(w, "You at ")[0].contains(", delivered: hello team"));
    // A line that could not go says why, and Resend sends it again.
    ui::room::apply(
        w,
        Update::Engine(Event::Sent {
            id: 8,
            text: "try again".into(),
            sent_at_ms: 1_790_000_000_000,
        }),
    );
    ui::room::apply(
        w,
        Update::Engine(Event::Delivery {
            id: 8,
            state: Delivery::Failed("you were removed from the room".into()),
        }),
    );
    settle();
    assert!(labels_starting(w, "You at ")
        .iter()
        .any(|l| l.contains(", not sent: you were removed from the room: try again")));
    one(w, "Resend this line").invoke_accessible_default_action();
    assert_eq!(f.next_command(), Some(Command::Send("try again".into())));

    // Blank text is not sent; text too long is kept, with a warning.
    input.set_accessible_value("   ");
    one(w, "Send").invoke_accessible_default_action();
    assert_eq!(f.next_command(), None);
    let long = "x".repeat(common::engine::MAX_TEXT + 1);
    input.set_accessible_value(long.as_str());
    one(w, "Send").invoke_accessible_default_action();
    assert_eq!(f.next_command(), None);
    assert_eq!(
        input.accessible_value().unwrap().len(),
        long.len(),
        "nothing lost"
    );
    assert_eq!(w.global::<Room>().get_banner_kind(), BannerKind::Warning);
}

#[test]
fn received_messages_appear_in_the_view() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let at = 1_700_000_000_000u64;
    ui::room::apply(
        w,
        Update::Engine(Event::Message {
            from: info(2, "bob", false),
            text: "the build is green".into(),
            sent_at_ms: at,
            epoch: 2,
            seq: 1,
            mentions_me: false,
        }),
    );
    // A name carrying terminal escapes and bidi overrides is shown harmless.
    ui::room::apply(
        w,
        Update::Engine(Event::Message {
            from: info(0, "boss\u{202e}", true),
            text: "ship it\u{1b}[2J".into(),
            sent_at_ms: at,
            epoch: 2,
            seq: 1,
            mentions_me: false,
        }),
    );
    settle();
    let lines = w.global::<Room>().get_lines();
    let texts: Vec<(LineKind, String, String)> = lines
        .iter()
        .map(|l| (l.kind, l.sender.to_string(), l.text.to_string()))
        .collect();
    assert!(texts.contains(&(LineKind::Message, "bob".into(), "the build is green".into())));
    assert!(texts
        .iter()
        .all(|(_, s, t)| !s.contains('\u{202e}') && !t.contains('\u{1b}')));
    let time = ui::room::clock(at);
    let shown = labels_starting(w, "bob at ");
    assert_eq!(
        shown,
        vec![format!("bob at {time}: the build is green")],
        "row rendered in the list"
    );
    assert_eq!(w.global::<Room>().get_room_name(), "launch team");
}

#[test]
fn a_gap_is_shown_where_it_happened_and_in_the_banner() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let at = 1_700_000_000_000u64;
    let line = |text: &str, seq| {
        Update::Engine(Event::Message {
            from: info(2, "bob", false),
            text: text.into(),
            sent_at_ms: at,
            epoch: 2,
            seq,
            mentions_me: false,
        })
    };
    ui::room::apply(w, line("first", 1));
    ui::room::apply(
        w,
        Update::Engine(Event::Missed {
            from: info(2, "bob", false),
            epoch: 2,
            count: 2,
            private: false,
        }),
    );
    ui::room::apply(w, line("fourth", 4));
    settle();
    let room = w.global::<Room>();
    let lines = room.get_lines();
    let shown: Vec<(LineKind, String)> =
        lines.iter().map(|l| (l.kind, l.text.to_string())).collect();
    let gap = shown
        .iter()
        .position(|(k, t)| {
            *k == LineKind::Warning && t.contains("2 messages from bob never reached you")
        })
        .unwrap_or_else(|| panic!("no gap line: {shown:?}"));
    let first = shown.iter().position(|(_, t)| t == "first").unwrap();
    let fourth = shown.iter().position(|(_, t)| t == "fourth").unwrap();
    assert!(
        first < gap && gap < fourth,
        "the gap sits between: {shown:?}"
    );
    assert_eq!(room.get_banner_kind(), BannerKind::Warning);
    assert!(room.get_banner_text().contains("bob"));
}
