//! What the room shows besides lines: typing, connection state and warnings,
//! the emoji picker.

use super::*;

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
            mentions_me: false,
        }),
    );
    assert_eq!(room.get_typing(), "");

    // Typing in the composer tells the room, once, and clearing it stops.
    let input = one(w, "Message input");
    input.set_accessible_value("h");
    input.set_accessible_value("he");
    let mut typing = Vec::new();
    while let Ok((_, c)) = f.commands.try_recv() {
        typing.push(c);
    }
    assert_eq!(typing, vec![Command::Typing(true).into()]);
    input.set_accessible_value("");
    assert_eq!(
        f.commands.try_recv().ok().map(|(_, c)| c),
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
    secured(w);
    assert_eq!(room.get_connection(), "connected");
    assert!(room.get_online());
    assert!(room.get_members().iter().all(|m| m.online));
    ui::room::apply(
        w,
        Update::Disconnected {
            reason: "the relay closed the connection".into(),
            relay_code: None,
            retry_in: std::time::Duration::from_secs(2),
        },
    );
    assert_eq!(room.get_connection(), "reconnecting in 2 s…");
    assert!(
        room.get_can_send(),
        "writing goes on while offline: lines wait in the outbox"
    );
    assert_eq!(room.get_tls(), "", "no TLS claim while offline");
    assert!(
        room.get_members().iter().all(|m| !m.online),
        "members shown offline while we are"
    );
    assert_eq!(room.get_banner_kind(), BannerKind::Warning);
    assert_eq!(labels_starting(w, "Warning: Connection lost").len(), 1);
    secured(w);
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
        Update::Engine(Event::Warning(Warning::Dropped(Dropped::Replayed {
            kind: Kind::Message,
            name: "bob".into(),
            seq: 1,
            last: 2,
        }))),
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
    secured(w);
    assert!(
        !room.get_can_send(),
        "removed stays removed across a reconnect"
    );
    // The removed state is plain: what happened and what can be done,
    // instead of a member list of people we are no longer with; no hint
    // that writing is near; "not in the room", not "connected"; and the
    // room's later lines (which we cannot read) are not a warning each.
    settle();
    let panel = labels_starting(w, "You were removed from the room. ");
    assert_eq!(panel.len(), 1, "{panel:?}");
    assert!(panel[0].contains("banned"), "{}", panel[0]);
    assert!(labels_starting(w, "alice").is_empty(), "no member list");
    assert_eq!(room.get_connection(), "not in the room");
    let before = room.get_lines().row_count();
    for _ in 0..3 {
        ui::room::apply(
            w,
            Update::Engine(Event::Warning(Warning::Dropped(Dropped::NoKey(
                Kind::Message,
            )))),
        );
    }
    assert_eq!(room.get_lines().row_count(), before, "no warning per line");
    // A replayed (or forged) frame is still said.
    ui::room::apply(
        w,
        Update::Engine(Event::Warning(Warning::Dropped(Dropped::Replayed {
            kind: Kind::Message,
            name: "bob".into(),
            seq: 3,
            last: 3,
        }))),
    );
    assert_eq!(room.get_lines().row_count(), before + 1, "a replay is said");
    let before = before + 1;
    let input = one(w, "Message input");
    assert!(!input.accessible_enabled().unwrap_or(true));
    // A gap is still said, removed or not.
    ui::room::apply(
        w,
        Update::Engine(Event::Warning(Warning::EpochsMissed { from: 3, to: 4 })),
    );
    assert_eq!(room.get_lines().row_count(), before + 1, "a gap is said");
    // Let back in (the app asked again, the admin approved): the room is
    // as before, and says so.
    let_in_at(w, 5);
    settle();
    assert!(!room.get_removed());
    assert!(room.get_can_send());
    assert!(labels_starting(w, "You were removed").is_empty());
    assert_eq!(
        labels_starting(w, "Member alice").len(),
        1,
        "the list is back"
    );
    assert_eq!(room.get_connection(), "connected");
    let lines = room.get_lines();
    let last = lines.row_data(lines.row_count() - 1).unwrap();
    assert!(last.text.starts_with("you're in"), "{}", last.text);
}

/// Waiting to be let in, the member sees its own safety code (the admin is
/// told to compare it); the first epoch says we are in; a kick of someone
/// else says the admin removed them; the admin's row goes grey when the
/// admin's connection ends.
#[test]
fn waiting_admitted_removed_and_the_admin_gone_are_each_said() {
    let f = fixture();
    let app = joining(&f);
    let w = &app.window;
    settle();
    let mine = info(1, "alice", false).safety_code;
    assert_eq!(
        labels_starting(w, "Your safety code "),
        vec![format!("Your safety code {mine}")],
        "shown while waiting"
    );
    ui::room::apply(w, Update::Engine(Event::JoinRequested));
    let_in(w);
    let lines = w.global::<Room>().get_lines();
    let last = lines.row_data(lines.row_count() - 1).unwrap();
    assert!(last.text.starts_with("you're in"), "{}", last.text);
    assert!(
        labels_starting(w, "Your safety code ").is_empty(),
        "in: gone"
    );
    ui::room::apply(
        w,
        Update::Engine(Event::MemberRemoved(info(2, "bob", false))),
    );
    let last = lines.row_data(lines.row_count() - 1).unwrap();
    assert_eq!(last.text, "bob was removed by the admin");
    secured(w);
    let admin_row = |w: &ui::MemberWindow| {
        let m = w.global::<Room>().get_members();
        (0..m.row_count())
            .filter_map(|i| m.row_data(i))
            .find(|r| r.admin)
            .unwrap()
    };
    assert!(admin_row(w).online);
    ui::room::apply(
        w,
        Update::Engine(Event::Warning(Warning::AdminDisconnected)),
    );
    assert!(!admin_row(w).online, "a departed admin is not shown online");
    assert!(
        w.global::<Room>()
            .get_members()
            .iter()
            .filter(|r| !r.admin)
            .all(|r| r.online),
        "the others stay"
    );
}

/// A member the relay let go for falling behind is told so in the banner,
/// and that it reconnects.
#[test]
fn a_slow_reader_cut_says_we_fell_behind_and_reconnect() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let room = w.global::<Room>();
    secured(w);
    ui::room::apply(
        w,
        Update::Disconnected {
            reason: "you fell behind the room and the relay let you go".into(),
            relay_code: Some(common::wire::ErrorCode::SlowReader),
            retry_in: std::time::Duration::from_millis(500),
        },
    );
    assert_eq!(room.get_banner_kind(), BannerKind::Warning);
    let text = room.get_banner_text().to_string();
    assert!(text.starts_with("You fell behind the room"), "{text}");
    assert!(text.contains("Reconnecting in 1 s"), "{text}");
    assert_eq!(room.get_connection(), "reconnecting in 1 s…");
    assert!(room.get_can_send(), "lines written meanwhile wait");
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
    // The caret follows the emoji: what is typed next lands after it,
    // even when the caret was at the start before the picker opened.
    let input = one(w, "Message input");
    input.set_accessible_value("ok ");
    w.window()
        .dispatch_event(slint::platform::WindowEvent::KeyPressed {
            text: slint::platform::Key::Home.into(),
        });
    one(w, "Insert emoji").invoke_accessible_default_action();
    one(w, "Emoji 👍").invoke_accessible_default_action();
    for c in ["n", "o", "w"] {
        w.window()
            .dispatch_event(slint::platform::WindowEvent::KeyPressed { text: c.into() });
        w.window()
            .dispatch_event(slint::platform::WindowEvent::KeyReleased { text: c.into() });
    }
    assert_eq!(input.accessible_value().unwrap(), "ok 👍now");
}

/// The driver reports the connection secured.
fn secured(w: &ui::MemberWindow) {
    ui::room::apply(
        w,
        Update::Secured {
            relay: "127.0.0.1:7443".into(),
            cert: Fingerprint([7; 32]),
        },
    );
}

/// Resizing the window keeps the newest line in view (the list only holds
/// the rows in view, so the newest line's row exists and the oldest's not).
#[test]
fn the_newest_line_stays_in_view_across_resizes() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    w.window().set_size(slint::LogicalSize::new(1160., 720.));
    w.show().unwrap();
    for seq in 1..=60u64 {
        ui::room::apply(
            w,
            Update::Engine(Event::Message {
                from: info(2, "bob", false),
                text: format!("line {seq}"),
                sent_at_ms: 1_764_620_000_000 + seq,
                epoch: 2,
                seq,
                mentions_me: false,
            }),
        );
    }
    let tick = || {
        for _ in 0..3 {
            i_slint_backend_testing::mock_elapsed_time(std::time::Duration::from_millis(20));
            settle();
        }
    };
    tick();
    let shows = |text: &str| {
        labels_starting(w, "bob at ")
            .iter()
            .any(|l| l.ends_with(&format!(": {text}")))
    };
    assert!(
        shows("line 60"),
        "the newest line, before resizing: {:?}",
        labels_starting(w, "bob at ")
    );
    for (width, height) in [(900., 600.), (880., 560.), (1200., 900.), (920., 580.)] {
        w.window().set_size(slint::LogicalSize::new(width, height));
        tick();
        assert!(shows("line 60"), "the newest line at {width}x{height}");
        assert!(!shows("line 1"), "not the oldest at {width}x{height}");
    }
}

/// Notifications: a room at its default setting notifies of private
/// messages only, never while the window is the active one, with the room
/// and the sender but not the text unless asked; the settings panel
/// changes that and remembers it (under a hash of the room id).
#[test]
fn notifications_follow_the_room_setting_and_the_window_focus() {
    ui::notify::keep();
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let room = w.global::<Room>();
    // A line from bob, to us alone or to the room.
    let from_bob = |private: bool, text: &str, seq: u64| {
        let (from, text, sent_at_ms) = (info(2, "bob", false), text.to_string(), 1_764_620_000_000);
        let e = if private {
            Event::Private {
                from,
                text,
                sent_at_ms,
                epoch: 2,
                seq,
            }
        } else {
            Event::Message {
                from,
                text,
                sent_at_ms,
                epoch: 2,
                seq,
                mentions_me: false,
            }
        };
        ui::room::apply(w, Update::Engine(e))
    };
    let private = |text: &str, seq: u64| from_bob(true, text, seq);
    let line = |text: &str, seq: u64| from_bob(false, text, seq);
    private("while active", 1);
    assert!(
        ui::notify::kept().is_empty(),
        "the window is the active one"
    );
    room.set_window_active(false);
    private("the code is 4471", 2);
    line("a room line", 3);
    let kept = ui::notify::kept();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].summary, "TeamChat · launch team");
    assert_eq!(kept[0].body, "bob wrote to you privately");

    // The panel: every message, with its text.
    one(w, "Notification settings").invoke_accessible_default_action();
    settle();
    let show_text = one(w, "Show the message's text in notifications");
    show_text.invoke_accessible_default_action();
    settle();
    assert!(room.get_notify_text());
    room.set_notify_level(ui::NotifyLevel::All);
    room.invoke_notify_changed();
    line("a room line", 4);
    let kept = ui::notify::kept();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].body, "bob: a room line");
    let saved = ui::settings::load(&f.settings());
    assert_eq!(saved.notify_text, Some(true));
    assert_eq!(
        saved.notify.values().collect::<Vec<_>>(),
        vec!["all"],
        "{saved:?}"
    );
    let raw = std::fs::read_to_string(f.settings()).unwrap();
    assert!(
        !raw.contains(&hex::encode([9u8; 16])) && !raw.contains(&format!("{:?}", [9u8; 16])),
        "the file names no room: {raw}"
    );
    room.set_notify_level(ui::NotifyLevel::Nothing);
    private("quiet now", 5);
    assert!(ui::notify::kept().is_empty());
}
