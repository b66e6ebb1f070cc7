//! Headless UI tests: the real `.slint` windows on Slint's testing backend
//! (no display), driven through their accessible labels as a screen reader
//! or a person would, with the network replaced by a command channel and
//! driver updates fed in directly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::rc::Rc;

use client::driver::{Request, Update};
use common::engine::{Command, Event};
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
use ui::session::Session;
use ui::{BannerKind, LineKind, Room, Theme};

struct Fixture {
    dir: tempfile::TempDir,
    commands: mpsc::Receiver<Request>,
    session: Rc<Session>,
}

fn fixture() -> Fixture {
    i_slint_backend_testing::init_no_event_loop();
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(64);
    Fixture {
        dir,
        commands: rx,
        session: Rc::new(Session::detached(tx)),
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
        while let Ok(r) = self.commands.try_recv() {
            if !matches!(r, Request::Engine(Command::Typing(_))) {
                return Some(r);
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
        let opts = MemberOptions {
            invite: None,
            name: None,
            password: None,
            identity: self.identity(1),
            ca: None,
            join_now: false,
            settings: Some(self.settings()),
        };
        let app = MemberApp::new(opts, self.session.clone(), None).unwrap();
        app.window
            .window()
            .set_size(slint::LogicalSize::new(1000., 720.));
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
        let app = AdminApp::new(opts, self.session.clone(), None).unwrap();
        app.window
            .window()
            .set_size(slint::LogicalSize::new(1100., 760.));
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
fn joined(f: &Fixture) -> MemberApp {
    let app = f.member();
    let w = &app.window;
    one(w, "Invite").set_accessible_value(invite());
    one(w, "Your name").set_accessible_value("alice");
    one(w, "Join").invoke_accessible_default_action();
    assert!(w.get_room_open(), "join error: {}", w.get_join_error());
    ui::room::apply(
        w,
        Update::Engine(Event::Epoch {
            epoch: 2,
            room_name: "launch team".into(),
            members: vec![
                info(0, "boss", true),
                info(1, "alice", false),
                info(2, "bob", false),
            ],
        }),
    );
    settle();
    app
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
            text: "hello team".into(),
            sent_at_ms: 1_790_000_000_000,
            epoch: 2,
            seq: 1,
        }),
    );
    let lines = w.global::<Room>().get_lines();
    let last = lines.row_data(lines.row_count() - 1).unwrap();
    assert_eq!(last.kind, LineKind::Own);
    assert_eq!(last.text, "hello team");

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

#[test]
fn admin_approves_and_denies_pending_requests() {
    let mut f = fixture();
    let app = f.admin();
    let w = &app.window;
    one(w, "Open room").invoke_accessible_default_action();
    assert!(w.get_room_open(), "open error: {}", w.get_open_error());
    assert!(w.get_invite().starts_with("teamchat://"));
    for (id, n, name) in [(7u32, 2usize, "bob"), (8, 3, "carol")] {
        let i = info(n, name, false);
        ui::room::apply(
            w,
            Update::Engine(Event::PendingApproval {
                id,
                name: name.into(),
                fingerprint: i.fingerprint,
                safety_code: i.safety_code,
                banned: false,
            }),
        );
    }
    settle();
    assert_eq!(w.global::<Room>().get_pending().row_count(), 2);
    assert_eq!(labels_starting(w, "Approve ").len(), 2);
    // Asking again (a new id, the same key) replaces the old row: the list
    // cannot be padded by repeating a request.
    let again = info(2, "bob", false);
    for id in [9u32, 10, 11] {
        ui::room::apply(
            w,
            Update::Engine(Event::PendingApproval {
                id,
                name: "bob".into(),
                fingerprint: again.fingerprint,
                safety_code: again.safety_code.clone(),
                banned: false,
            }),
        );
    }
    assert_eq!(w.global::<Room>().get_pending().row_count(), 2);
    // The stale id is gone; approving uses the live one.

    settle();
    one(w, "Approve bob").invoke_accessible_default_action();
    assert_eq!(f.next_command(), Some(Command::Approve(11)));
    one(w, "Deny carol").invoke_accessible_default_action();
    assert!(matches!(f.next_command(), Some(Command::Deny(8, _))));
    settle();
    assert_eq!(w.global::<Room>().get_pending().row_count(), 0);
    assert!(
        labels_starting(w, "Approve ").is_empty(),
        "requests gone from the window"
    );
    // Many requests: three show, the rest are counted.
    for n in 0..5u32 {
        let i = info(n as usize, &format!("guest{n}"), false);
        ui::room::apply(
            w,
            Update::Engine(Event::PendingApproval {
                id: 20 + n,
                name: format!("guest{n}"),
                fingerprint: i.fingerprint,
                safety_code: i.safety_code,
                banned: false,
            }),
        );
    }
    settle();
    let shown: Vec<String> = labels_starting(w, "Approve ")
        .into_iter()
        .filter(|l| ElementHandle::find_by_accessible_label(w, l).any(|e| e.size().height > 0.0))
        .collect();
    assert_eq!(
        shown,
        vec!["Approve guest0", "Approve guest1", "Approve guest2"]
    );
    assert_eq!(labels_starting(w, "and 2 more waiting").len(), 1);
    // A key the admin removed before is said to be one, as a warning.
    let i = info(6, "mallory", false);
    ui::room::apply(
        w,
        Update::Engine(Event::PendingApproval {
            id: 40,
            name: "mallory".into(),
            fingerprint: i.fingerprint,
            safety_code: i.safety_code,
            banned: true,
        }),
    );
    settle();
    let lines = w.global::<Room>().get_lines();
    let last = lines.row_data(lines.row_count() - 1).unwrap();
    assert_eq!(last.kind, LineKind::Warning);
    assert!(
        last.text.contains("you removed this key before"),
        "{}",
        last.text
    );
}

#[test]
fn admin_form_errors_are_inline_and_the_password_meter_scores() {
    let f = fixture();
    let app = f.admin();
    let w = &app.window;
    one(w, "Relay address").set_accessible_value("no port here");
    one(w, "Open room").invoke_accessible_default_action();
    assert!(!w.get_room_open());
    assert!(
        w.get_open_error().starts_with("Relay address"),
        "{}",
        w.get_open_error()
    );
    one(w, "Relay address").set_accessible_value("127.0.0.1:7443");
    one(w, "Relay certificate").set_accessible_value("/nonexistent/relay.crt");
    one(w, "Open room").invoke_accessible_default_action();
    assert!(
        w.get_open_error().starts_with("Relay certificate"),
        "{}",
        w.get_open_error()
    );
    // Several relays sharing the room: one certificate for all, or one each.
    one(w, "Relay address").set_accessible_value("127.0.0.1:7443, 127.0.0.1:7444");
    let pins = ["aa", "bb", "cc"].map(|b| b.repeat(32)).join(",");
    one(w, "Relay certificate").set_accessible_value(pins.as_str());
    one(w, "Open room").invoke_accessible_default_action();
    assert!(
        w.get_open_error()
            .contains("2 relay addresses but 3 certificates"),
        "{}",
        w.get_open_error()
    );

    let pw = one(w, "Room password");
    pw.set_accessible_value("password");
    assert_eq!(w.get_password_score(), 0);
    pw.set_accessible_value("violet-anchor-drizzle-42-quasar");
    assert!(w.get_password_score() >= 3, "{}", w.get_password_score());
    pw.set_accessible_value("");
    assert_eq!(w.get_password_score(), -1);
}

#[test]
fn theme_switch_applies_at_once_and_is_remembered() {
    let f = fixture();
    {
        let app = joined(&f);
        let w = &app.window;
        assert!(w.global::<Theme>().get_dark(), "dark by default");
        one(w, "Switch theme").invoke_accessible_default_action();
        assert!(!w.global::<Theme>().get_dark());
        assert_eq!(ui::settings::load(&f.settings()).dark, Some(false));
    }
    let app = f.member();
    assert!(
        !app.window.global::<Theme>().get_dark(),
        "light again after a restart"
    );
    one(&app.window, "Switch theme").invoke_accessible_default_action();
    assert!(app.window.global::<Theme>().get_dark());
    assert_eq!(ui::settings::load(&f.settings()).dark, Some(true));
}

#[test]
fn typing_indicator_shows_who_types_and_we_signal_our_own() {
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let room = w.global::<Room>();
    assert_eq!(room.get_typing(), "");
    ui::room::apply(
        w,
        Update::Engine(Event::Typing {
            from: info(2, "bob", false),
            on: true,
        }),
    );
    assert_eq!(room.get_typing(), "bob is typing…");
    assert_eq!(
        labels_starting(w, "bob is typing").len(),
        1,
        "shown above the input"
    );
    ui::room::apply(
        w,
        Update::Engine(Event::Typing {
            from: info(0, "boss", true),
            on: true,
        }),
    );
    assert_eq!(room.get_typing(), "boss and bob are typing…");
    ui::room::apply(
        w,
        Update::Engine(Event::Typing {
            from: info(2, "bob", false),
            on: false,
        }),
    );
    assert_eq!(room.get_typing(), "boss is typing…");
    // A message from the typer ends the indicator.
    ui::room::apply(
        w,
        Update::Engine(Event::Message {
            from: info(0, "boss", true),
            text: "done".into(),
            sent_at_ms: 0,
            epoch: 2,
            seq: 3,
        }),
    );
    assert_eq!(room.get_typing(), "");

    // Typing in the composer tells the room, once, and clearing it stops.
    let input = one(w, "Message input");
    input.set_accessible_value("h");
    input.set_accessible_value("he");
    let mut typing = Vec::new();
    while let Ok(c) = f.commands.try_recv() {
        typing.push(c);
    }
    assert_eq!(typing, vec![Command::Typing(true).into()]);
    input.set_accessible_value("");
    assert_eq!(
        f.commands.try_recv().ok(),
        Some(Command::Typing(false).into())
    );
    assert_eq!(
        ui::room::typing_text(&["a".into(), "b".into(), "c".into()]),
        "3 people are typing…"
    );
}

#[test]
fn connection_state_and_warnings_are_visible() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let room = w.global::<Room>();
    ui::room::apply(
        w,
        Update::Secured {
            relay: "127.0.0.1:7443".into(),
            cert: Fingerprint([7; 32]),
        },
    );
    assert_eq!(room.get_connection(), "connected");
    assert!(room.get_online());
    assert!(room.get_members().iter().all(|m| m.online));
    ui::room::apply(
        w,
        Update::Disconnected {
            reason: "the relay closed the connection".into(),
            retry_in: std::time::Duration::from_secs(2),
        },
    );
    assert_eq!(room.get_connection(), "reconnecting in 2 s…");
    assert!(!room.get_can_send(), "no sending while offline");
    assert_eq!(room.get_tls(), "", "no TLS claim while offline");
    assert!(
        room.get_members().iter().all(|m| !m.online),
        "members shown offline while we are"
    );
    assert_eq!(room.get_banner_kind(), BannerKind::Warning);
    assert_eq!(labels_starting(w, "Warning: Connection lost").len(), 1);
    ui::room::apply(
        w,
        Update::Secured {
            relay: "127.0.0.1:7443".into(),
            cert: Fingerprint([7; 32]),
        },
    );
    assert_eq!(
        room.get_banner_kind(),
        BannerKind::None,
        "reconnected: banner gone"
    );
    assert!(room.get_can_send(), "back in with the key we hold");
    let long = "x".repeat(100_000);
    ui::room::apply(w, Update::Engine(Event::Error { reason: long }));
    assert!(
        room.get_banner_text().len() <= ui::room::MAX_BANNER + 3,
        "banner text is cut"
    );
    ui::room::apply(
        w,
        Update::Engine(Event::Warning {
            reason: "replayed message dropped".into(),
        }),
    );
    let lines = room.get_lines();
    assert_eq!(
        lines.row_data(lines.row_count() - 1).unwrap().kind,
        LineKind::Warning
    );
    ui::room::apply(
        w,
        Update::Engine(Event::Kicked {
            reason: "bye".into(),
        }),
    );
    assert!(!room.get_can_send());
    assert_eq!(room.get_banner_kind(), BannerKind::Error);
    ui::room::apply(
        w,
        Update::Secured {
            relay: "127.0.0.1:7443".into(),
            cert: Fingerprint([7; 32]),
        },
    );
    assert!(
        !room.get_can_send(),
        "removed stays removed across a reconnect"
    );
}

#[test]
fn emoji_picker_inserts_into_the_composer() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    assert!(labels_starting(w, "Emoji ").is_empty(), "closed at first");
    one(w, "Message input").set_accessible_value("ship it ");
    one(w, "Insert emoji").invoke_accessible_default_action();
    assert_eq!(labels_starting(w, "Emoji ").len(), 24);
    one(w, "Emoji 🚀").invoke_accessible_default_action();
    assert_eq!(
        one(w, "Message input").accessible_value().unwrap(),
        "ship it 🚀"
    );
    assert!(
        labels_starting(w, "Emoji ").is_empty(),
        "closed after picking"
    );
}

#[test]
fn a_private_conversation_opens_from_the_member_list() {
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let bob = info(2, "bob", false);
    let room = w.global::<Room>();
    ui::room::apply(
        w,
        Update::Engine(Event::Message {
            from: bob.clone(),
            text: "a line for everyone".into(),
            sent_at_ms: 1_700_000_000_000,
            epoch: 2,
            seq: 1,
        }),
    );
    // Open bob's row, then his private conversation.
    let row = labels_starting(w, "Member bob");
    assert_eq!(row.len(), 1, "{row:?}");
    ElementHandle::find_by_accessible_label(w, &row[0])
        .next()
        .unwrap()
        .invoke_accessible_default_action();
    settle();
    assert!(
        labels_starting(w, "Private message to alice").is_empty(),
        "no private conversation with oneself"
    );
    one(w, "Private message to bob").invoke_accessible_default_action();
    settle();
    assert_eq!(room.get_private_to(), bob.fingerprint.to_string().as_str());
    assert_eq!(
        labels_starting(w, "Private conversation with bob").len(),
        1,
        "marked as private"
    );

    // Only the private lines with bob show here.
    let at = 1_700_000_000_500;
    ui::room::apply(
        w,
        Update::Engine(Event::Private {
            from: bob.clone(),
            text: "psst".into(),
            sent_at_ms: at,
            epoch: 2,
            seq: 1,
        }),
    );
    settle();
    let time = ui::room::clock(at);
    assert_eq!(
        labels_starting(w, "🔒 Private from bob at "),
        vec![format!("🔒 Private from bob at {time}: psst")]
    );
    assert!(
        labels_starting(w, "bob at ").is_empty(),
        "room lines hidden"
    );

    // What is written here goes to bob only, and no typing notice reaches
    // the room meanwhile.
    while f.commands.try_recv().is_ok() {}
    let input = one(w, "Message input");
    input.set_accessible_value("only for you");
    one(w, "Send").invoke_accessible_default_action();
    let mut commands = Vec::new();
    while let Ok(c) = f.commands.try_recv() {
        commands.push(c);
    }
    assert_eq!(
        commands,
        vec![Command::Private(bob.fingerprint, "only for you".into()).into()]
    );
    ui::room::apply(
        w,
        Update::Engine(Event::PrivateSent {
            to: bob.clone(),
            text: "only for you".into(),
            sent_at_ms: 1_790_000_000_000,
            epoch: 2,
            seq: 1,
        }),
    );
    settle();
    assert_eq!(labels_starting(w, "🔒 Private to bob at ").len(), 1);
    let lines = room.get_lines();
    let kinds: Vec<LineKind> = lines.iter().map(|l| l.kind).collect();
    assert!(kinds.contains(&LineKind::PrivateIn) && kinds.contains(&LineKind::PrivateOut));

    // A file picked inside the private conversation goes to bob alone.
    let outbox = f.dir.path().join("private-outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(outbox.join("plan.txt"), b"secret plan").unwrap();
    room.set_chooser_dir(outbox.display().to_string().into());
    one(w, "Send a file").invoke_accessible_default_action();
    settle();
    one(w, "File plan.txt").invoke_accessible_default_action();
    settle();
    one(w, "Send the file").invoke_accessible_default_action();
    settle();
    let plan = outbox.join("plan.txt").canonicalize().unwrap();
    assert_eq!(
        f.next_request(),
        Some(Request::SendFile {
            path: plan,
            to: Some(bob.fingerprint)
        })
    );
    ui::transfers::apply(
        w,
        client::driver::FileUpdate::Sending {
            transfer: [9; 16],
            name: "plan.txt".into(),
            size: 11,
            to: Some(bob.clone()),
        },
    );
    settle();
    let row = labels_starting(w, "File plan.txt, ");
    assert_eq!(row.len(), 1, "{row:?}");
    assert!(row[0].contains("privately to bob"), "{row:?}");

    // Back in the room: everything shows, private lines still marked.
    one(w, "Close the private conversation").invoke_accessible_default_action();
    settle();
    assert_eq!(room.get_private_to(), "");
    assert!(labels_starting(w, "Private conversation with").is_empty());
    assert_eq!(labels_starting(w, "bob at ").len(), 1);
    assert_eq!(labels_starting(w, "🔒 Private from bob at ").len(), 1);
    input.set_accessible_value("to the room");
    one(w, "Send").invoke_accessible_default_action();
    assert_eq!(f.next_command(), Some(Command::Send("to the room".into())));
}

#[test]
fn files_show_offers_progress_accept_and_the_chooser_sends() {
    use client::driver::FileUpdate;
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let room = w.global::<Room>();
    let t = [5u8; 16];
    ui::room::apply(
        w,
        Update::File(FileUpdate::Offered {
            from: info(2, "bob", false),
            transfer: t,
            name: "plan.pdf".into(),
            size: 20 * 1024 * 1024,
            media_type: "application/pdf".into(),
            accepted: false,
            private: false,
        }),
    );
    settle();
    assert_eq!(
        labels_starting(w, "File plan.pdf"),
        vec!["File plan.pdf, 20.0 MiB · application/pdf · from bob: Offered: accept to save it"]
    );
    ui::room::apply(
        w,
        Update::File(FileUpdate::Progress {
            transfer: t,
            done: 10 * 1024 * 1024,
            total: 20 * 1024 * 1024,
            outgoing: false,
        }),
    );
    settle();
    assert!(labels_starting(w, "File plan.pdf")[0].ends_with("Arriving… 50% · accept to save it"));
    let rows = room.get_files();
    assert!((rows.row_data(0).unwrap().progress - 0.5).abs() < 1e-6);
    while f.commands.try_recv().is_ok() {}
    one(w, "Accept plan.pdf").invoke_accessible_default_action();
    assert_eq!(f.next_request(), Some(Request::AcceptFile(t)));
    settle();
    assert!(labels_starting(w, "Accept plan.pdf").is_empty());
    ui::room::apply(
        w,
        Update::File(FileUpdate::Saved {
            transfer: t,
            path: "/downloads/plan.pdf".into(),
        }),
    );
    settle();
    assert!(labels_starting(w, "File plan.pdf")[0].ends_with("Saved to /downloads/plan.pdf"));
    assert!(labels_starting(w, "Cancel plan.pdf").is_empty());
    let lines: Vec<String> = room
        .get_lines()
        .iter()
        .map(|l| l.text.to_string())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l == "plan.pdf saved to /downloads/plan.pdf"),
        "{lines:?}"
    );

    // A failed transfer says so, and why.
    let t2 = [6u8; 16];
    ui::room::apply(
        w,
        Update::File(FileUpdate::Offered {
            from: info(2, "bob", false),
            transfer: t2,
            name: "evil.bin".into(),
            size: 100,
            media_type: "application/octet-stream".into(),
            accepted: true,
            private: false,
        }),
    );
    ui::room::apply(
        w,
        Update::File(FileUpdate::Failed {
            transfer: t2,
            reason: "a file chunk failed authentication".into(),
        }),
    );
    settle();
    assert!(labels_starting(w, "File evil.bin")[0]
        .ends_with("Failed: a file chunk failed authentication. Nothing was saved."));
    let last = room
        .get_lines()
        .row_data(room.get_lines().row_count() - 1)
        .unwrap();
    assert_eq!(last.kind, LineKind::Warning);

    // Sending: the paper clip opens the chooser on a folder; a file is
    // picked from the list and sent.
    let dir = f.dir.path().join("outbox");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("notes.txt"), b"hello").unwrap();
    std::fs::write(dir.join(".hidden"), b"x").unwrap();
    room.set_chooser_dir(dir.display().to_string().into());
    one(w, "Send a file").invoke_accessible_default_action();
    settle();
    assert!(room.get_chooser_open());
    assert_eq!(labels_starting(w, "Folder sub").len(), 1);
    assert!(labels_starting(w, "File .hidden").is_empty());
    one(w, "File notes.txt").invoke_accessible_default_action();
    settle();
    one(w, "Send the file").invoke_accessible_default_action();
    settle();
    assert_eq!(
        f.next_request(),
        Some(Request::SendFile {
            path: dir.join("notes.txt").canonicalize().unwrap(),
            to: None
        })
    );
    assert!(
        !room.get_chooser_open(),
        "the chooser closes once the file is taken"
    );

    // A file dragged in from another application: a hint while it hovers,
    // then the same command as the chooser's.
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Hover);
    settle();
    assert!(room.get_drop_hover());
    assert_eq!(
        labels_starting(w, "📎 Drop to send the file to the room").len(),
        1
    );
    let notes = dir.join("notes.txt").canonicalize().unwrap();
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Dropped(notes.clone()));
    settle();
    assert!(!room.get_drop_hover());
    assert_eq!(
        f.next_request(),
        Some(Request::SendFile {
            path: notes,
            to: None
        })
    );
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Hover);
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Cancelled);
    assert!(!room.get_drop_hover());
    // A folder dropped is refused with a warning, and nothing is sent.
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Dropped(dir.join("sub")));
    settle();
    assert!(
        room.get_banner_text().contains("is not a file"),
        "{}",
        room.get_banner_text()
    );
    assert_eq!(f.next_command(), None);

    // A path that is not a file is refused in the chooser, which stays open.
    one(w, "Send a file").invoke_accessible_default_action();
    settle();
    one(w, "File to send").set_accessible_value(dir.join("missing.txt").display().to_string());
    one(w, "Send the file").invoke_accessible_default_action();
    settle();
    assert!(room.get_chooser_open());
    assert!(room.get_chooser_error().contains("cannot use"));
    assert_eq!(f.next_command(), None);
}

#[test]
fn history_shows_above_a_divider_when_the_room_opens() {
    use client::history::{Entry, EntryKind, Loaded};
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let room = w.global::<Room>();
    let before = room.get_lines().row_count();
    let at = 1_700_000_000_000u64;
    let entry = |n: u64, kind, who: &str, text: &str| Entry {
        at_ms: at + n * 60_000,
        kind,
        who: who.into(),
        fingerprint: Some([n as u8; 32]),
        text: text.into(),
        path: None,
    };
    ui::room::apply(
        w,
        Update::History {
            loaded: Loaded {
                entries: vec![
                    entry(1, EntryKind::Message, "bob", "yesterday's build was red"),
                    entry(2, EntryKind::Own, "", "I'll look into it"),
                    entry(3, EntryKind::PrivateIn, "bob", "thanks"),
                ],
                skipped: 1,
            },
            requested: false,
        },
    );
    settle();
    let lines = room.get_lines();
    let kinds: Vec<LineKind> = lines.iter().take(5).map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        vec![
            LineKind::Message,
            LineKind::Own,
            LineKind::PrivateIn,
            LineKind::Warning,
            LineKind::Divider
        ],
        "the history comes first, then the divider"
    );
    assert_eq!(lines.row_data(4).unwrap().text, ui::room::EARLIER);
    assert_eq!(lines.row_count(), before + 5, "what was there stays, below");
    assert!(lines
        .row_data(3)
        .unwrap()
        .text
        .contains("1 history entries failed"));
    assert_eq!(
        labels_starting(w, "bob at "),
        vec![format!(
            "bob at {}: yesterday's build was red",
            ui::room::clock(at + 60_000)
        )]
    );
    assert_eq!(
        labels_starting(w, "↑ earlier messages").len(),
        1,
        "the divider is drawn"
    );

    // Clearing asks first; "Keep" changes nothing.
    let mut f = f;
    while f.commands.try_recv().is_ok() {}
    one(w, "Clear history").invoke_accessible_default_action();
    settle();
    one(w, "Keep the history").invoke_accessible_default_action();
    settle();
    assert_eq!(f.next_command(), None);
    assert!(labels_starting(w, "Keep the history").is_empty());
    one(w, "Clear history").invoke_accessible_default_action();
    settle();
    one(w, "Confirm clearing the history").invoke_accessible_default_action();
    settle();
    assert_eq!(f.next_request(), Some(Request::ClearHistory));
    ui::room::apply(w, Update::HistoryCleared);
    settle();
    let lines = room.get_lines();
    assert_eq!(lines.row_count(), 1, "the view starts afresh");
    assert!(lines.row_data(0).unwrap().text.contains("cleared"));
    assert!(labels_starting(w, "bob at ").is_empty());
}
