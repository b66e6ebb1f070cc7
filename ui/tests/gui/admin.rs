//! The admin window: pending requests approved and denied, the form's inline
//! errors and password meter, the theme switch.

use super::*;

#[test]
fn admin_approves_and_denies_pending_requests() {
    let mut f = fixture();
    let app = f.admin();
    let w = &app.window;
    one(w, "Open room").invoke_accessible_default_action();
    assert!(w.get_room_open(), "open error: {}", w.get_open_error());
    assert_eq!(f.next_command(), Some(Command::ListBans));
    assert!(w.global::<Room>().get_invite().starts_with("teamchat://"));
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
    assert_eq!(w.global::<Moderation>().get_pending().row_count(), 2);
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
    assert_eq!(w.global::<Moderation>().get_pending().row_count(), 2);
    // The stale id is gone; approving uses the live one.

    settle();
    one(w, "Approve bob").invoke_accessible_default_action();
    assert_eq!(f.next_command(), Some(Command::Approve(11)));
    one(w, "Deny carol").invoke_accessible_default_action();
    assert!(matches!(f.next_command(), Some(Command::Deny(8, _))));
    settle();
    assert_eq!(w.global::<Moderation>().get_pending().row_count(), 0);
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
fn copy_says_copied_for_two_seconds_then_is_copy_again() {
    let f = fixture();
    let app = f.admin();
    let w = &app.window;
    one(w, "Open room").invoke_accessible_default_action();
    assert!(w.get_room_open(), "open error: {}", w.get_open_error());
    ui::room::apply(
        w,
        Update::Secured {
            relay: "127.0.0.1:7443".into(),
            cert: Fingerprint([7; 32]),
        },
    );
    one(w, "Copy invite").invoke_accessible_default_action();
    settle();
    one(w, "Invite copied");
    i_slint_backend_testing::mock_elapsed_time(std::time::Duration::from_millis(1_500));
    settle();
    one(w, "Invite copied");
    i_slint_backend_testing::mock_elapsed_time(std::time::Duration::from_millis(700));
    settle();
    one(w, "Copy invite");
}

#[test]
fn the_admin_sees_the_banned_and_lifts_a_ban() {
    let mut f = fixture();
    let app = f.admin();
    let w = &app.window;
    one(w, "Open room").invoke_accessible_default_action();
    assert!(w.get_room_open(), "open error: {}", w.get_open_error());
    assert_eq!(
        f.next_command(),
        Some(Command::ListBans),
        "the bans of earlier runs are asked for"
    );
    settle();
    assert!(
        labels_starting(w, "Show banned people").is_empty(),
        "none yet"
    );
    let bob = info(2, "bob", false);
    let carol = info(3, "carol", false);
    // Removing someone: the engine bans them and says so (Bans).
    ui::room::apply(
        w,
        Update::Engine(Event::Epoch {
            epoch: 1,
            room_name: "launch team".into(),
            members: vec![info(0, "admin", true), bob.clone()],
        }),
    );
    settle();
    let row = labels_starting(w, "Member bob");
    one(w, &row[0]).invoke_accessible_default_action();
    settle();
    one(w, "Remove bob").invoke_accessible_default_action();
    one(w, "Remove bob").invoke_accessible_default_action();
    assert!(matches!(f.next_command(), Some(Command::Kick(fp, _)) if fp == bob.fingerprint));
    let ban = |i: &common::engine::MemberInfo, at_ms: u64| common::engine::admin::Ban {
        fingerprint: i.fingerprint,
        name: i.name.clone(),
        at_ms,
    };
    ui::room::apply(
        w,
        Update::Engine(Event::Bans(vec![
            ban(&bob, 1_764_620_000_000),
            ban(&carol, 1_764_620_060_000),
        ])),
    );
    settle();
    // Open at first; the header folds it away and back.
    one(w, "Hide banned people (2)").invoke_accessible_default_action();
    settle();
    assert!(labels_starting(w, "Banned ").is_empty(), "folded");
    one(w, "Show banned people (2)").invoke_accessible_default_action();
    settle();
    let rows = labels_starting(w, "Banned ");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].starts_with("Banned carol"),
        "newest first: {rows:?}"
    );
    assert!(
        rows[1].ends_with(&format!("safety code {}", bob.safety_code)),
        "{rows:?}"
    );
    // Lifting asks twice.
    one(w, "Lift the ban on bob").invoke_accessible_default_action();
    assert_eq!(f.next_command(), None, "not on the first press");
    one(w, "Lift the ban on bob").invoke_accessible_default_action();
    assert_eq!(f.next_command(), Some(Command::Unban(bob.fingerprint)));
    ui::room::apply(
        w,
        Update::Engine(Event::Bans(vec![ban(&carol, 1_764_620_060_000)])),
    );
    settle();
    assert_eq!(labels_starting(w, "Banned ").len(), 1);
    ui::room::apply(w, Update::Engine(Event::Bans(vec![])));
    settle();
    assert!(labels_starting(w, "Banned ").is_empty(), "the list goes");
}
