//! Several rooms in one window (issue 23, item 2): the room list, switching
//! with a click, Ctrl+1…9 and Ctrl+K, joining another room through the
//! form over the rooms, leaving one, unread counts and the "new messages"
//! divider, and a room that cannot connect while the others work.

use super::*;
use slint::platform::{Key, WindowEvent};

/// An invite to room `id` (the same admin and relay as [`invite`]).
fn invite_to(id: u8) -> String {
    let relay = RelayEndpoint {
        host: common::invite::Host::V4(std::net::Ipv4Addr::LOCALHOST),
        port: 7443,
        cert: Fingerprint([7; 32]),
    };
    Invite::new(
        vec![relay],
        RoomId([id; 16]),
        test_keys::key(0).public().fingerprint(),
    )
    .unwrap()
    .to_string()
}

/// The epoch that seats alice in the room on screen, named `name`.
fn seat(w: &ui::MemberWindow, name: &str) {
    ui::room::apply(
        w,
        Update::Engine(Event::Epoch {
            epoch: 2,
            room_name: name.into(),
            members: vec![
                info(0, "boss", true),
                info(1, "alice", false),
                info(2, "bob", false),
            ],
        }),
    );
}

/// Joins one more room through the form over the rooms.
fn join_another(w: &ui::MemberWindow, id: u8, name: &str) {
    one(w, "Join a room").invoke_accessible_default_action();
    settle();
    assert!(w.room_list().get_adding(), "the join form is open");
    one(w, "Invite").set_accessible_value(invite_to(id));
    one(w, "Your name").set_accessible_value("alice");
    one(w, "Join").invoke_accessible_default_action();
    assert_eq!(w.get_join_error(), "");
    assert!(!w.room_list().get_adding(), "back to the rooms");
    seat(w, name);
    settle();
}

/// A line from bob, for the room `slot`.
fn bob_in(app: &MemberApp, slot: usize, text: &str, seq: u64) {
    let slot = app.rooms.slots()[slot].clone();
    app.rooms.deliver(
        &slot,
        Update::Engine(Event::Message {
            from: info(2, "bob", false),
            text: text.into(),
            sent_at_ms: 1_700_000_000_000,
            epoch: 2,
            seq,
        }),
    );
}

/// The room list's rows, as their accessible labels.
fn room_rows(w: &ui::MemberWindow) -> Vec<String> {
    labels_starting(w, "Room ")
}

fn texts(w: &ui::MemberWindow) -> Vec<String> {
    w.global::<Room>()
        .get_lines()
        .iter()
        .map(|l| l.text.to_string())
        .collect()
}

use ui::room::RoomWindow;

#[test]
fn each_room_keeps_its_own_conversation_and_counts_what_came_while_away() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    join_another(w, 3, "design");
    assert_eq!(app.rooms.slots().len(), 2);
    assert_eq!(w.global::<Room>().get_room_name(), "design");
    let rows = room_rows(w);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("Room launch team"), "{rows:?}");
    assert!(rows[1].starts_with("Room design"), "{rows:?}");

    // Lines for the room not on screen stay there, and are counted.
    bob_in(&app, 0, "launch at noon", 1);
    bob_in(&app, 0, "bring cake", 2);
    bob_in(&app, 1, "new logo draft", 1);
    settle();
    assert!(texts(w).contains(&"new logo draft".to_string()));
    assert!(!texts(w).iter().any(|t| t == "launch at noon"));
    let rows = room_rows(w);
    assert!(
        rows[0].starts_with("Room launch team, 2 unread"),
        "{rows:?}"
    );
    assert!(!rows[1].contains("unread"), "on screen: read {rows:?}");
    assert_eq!(w.room_list().get_total_unread(), 2);
    assert_eq!(w.get_shown_title(), "(2) TeamChat — design");

    // Back to the first room: its lines, the divider above the first
    // unread one, and nothing unread any more.
    one(w, &rows[0]).invoke_accessible_default_action();
    settle();
    assert_eq!(w.global::<Room>().get_room_name(), "launch team");
    let shown = texts(w);
    assert!(shown.contains(&"launch at noon".to_string()), "{shown:?}");
    assert!(!shown.contains(&"new logo draft".to_string()), "{shown:?}");
    let from = w.global::<Room>().get_unread_from();
    assert_eq!(
        usize::try_from(from).ok().and_then(|i| shown.get(i)),
        Some(&"launch at noon".to_string()),
        "the divider sits above the first unread line"
    );
    assert_eq!(labels_starting(w, "New messages below").len(), 1);
    assert_eq!(w.room_list().get_total_unread(), 0);
    assert!(!room_rows(w)[0].contains("unread"));

    // And back again: the other room's lines are as they were, with no
    // divider (nothing came meanwhile).
    w.room_list().invoke_select(1);
    settle();
    assert_eq!(texts(w).last().map(String::as_str), Some("new logo draft"));
    assert_eq!(w.global::<Room>().get_unread_from(), -1);
    assert!(labels_starting(w, "New messages below").is_empty());
}

#[test]
fn lines_count_as_unread_while_the_window_is_not_the_active_one() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    app.rooms.window_active(false);
    bob_in(&app, 0, "are you there?", 1);
    settle();
    assert_eq!(w.room_list().get_total_unread(), 1);
    // The title carries the count for the task bar.
    assert_eq!(w.get_shown_title(), "(1) TeamChat — launch team");
    app.rooms.window_active(true);
    assert_eq!(w.room_list().get_total_unread(), 0);
    assert_eq!(w.get_shown_title(), "TeamChat — launch team");
}

#[test]
fn keyboard_switches_rooms_with_ctrl_number_and_finds_them_with_ctrl_k() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    join_another(w, 3, "design");
    join_another(w, 4, "ops");
    assert_eq!(w.global::<Room>().get_room_name(), "ops");
    let press = |t: slint::SharedString| {
        w.window()
            .dispatch_event(WindowEvent::KeyPressed { text: t.clone() });
        w.window()
            .dispatch_event(WindowEvent::KeyReleased { text: t });
    };
    let with_ctrl = |t: &str| {
        w.window().dispatch_event(WindowEvent::KeyPressed {
            text: Key::Control.into(),
        });
        press(t.into());
        w.window().dispatch_event(WindowEvent::KeyReleased {
            text: Key::Control.into(),
        });
        settle();
    };
    // Focus in the composer, as while writing.
    one(w, "Message input").mock_single_click(slint::platform::PointerEventButton::Left);
    with_ctrl("1");
    assert_eq!(w.global::<Room>().get_room_name(), "launch team");
    with_ctrl("2");
    assert_eq!(w.global::<Room>().get_room_name(), "design");
    with_ctrl("9");
    assert_eq!(
        w.global::<Room>().get_room_name(),
        "design",
        "no ninth room: nothing happens"
    );
    // Ctrl+K, a few letters, Enter.
    with_ctrl("k");
    assert!(w.room_list().get_search_open());
    one(w, "Room name").set_accessible_value("OP");
    w.room_list().invoke_search_changed("OP".into());
    settle();
    assert_eq!(labels_starting(w, "Show "), vec!["Show ops".to_string()]);
    one(w, "Show ops").invoke_accessible_default_action();
    settle();
    assert!(!w.room_list().get_search_open());
    assert_eq!(w.global::<Room>().get_room_name(), "ops");
    // Nothing matches: said so.
    with_ctrl("k");
    w.room_list().invoke_search_changed("zzz".into());
    settle();
    assert!(labels_starting(w, "Show ").is_empty());
    press(Key::Escape.into());
    settle();
    assert!(!w.room_list().get_search_open(), "Escape closes the search");
}

#[test]
fn a_room_that_cannot_connect_says_so_in_its_row_and_the_others_work() {
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    join_another(w, 3, "design");
    let first = app.rooms.slots()[0].clone();
    app.rooms.deliver(
        &first,
        Update::Disconnected {
            reason: "connection refused".into(),
            relay_code: None,
            retry_in: std::time::Duration::from_secs(8),
        },
    );
    settle();
    let rows = room_rows(w);
    assert!(
        rows[0].contains("Connection lost: connection refused"),
        "{rows:?}"
    );
    // The room on screen is untouched and still sends.
    assert_eq!(w.global::<Room>().get_banner_kind(), BannerKind::None);
    while f.next_request().is_some() {}
    one(w, "Message input").set_accessible_value("still here");
    one(w, "Send").invoke_accessible_default_action();
    assert_eq!(f.next_command(), Some(Command::Send("still here".into())));
    // Back in: the row is well again.
    app.rooms.deliver(
        &first,
        Update::Secured {
            relay: "127.0.0.1:7443".into(),
            cert: Fingerprint([7; 32]),
        },
    );
    settle();
    assert!(!room_rows(w)[0].contains("Connection lost"));
}

#[test]
fn joining_a_room_twice_shows_it_and_leaving_asks_first_then_forgets_it() {
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    join_another(w, 3, "design");
    // The first invite again: no second copy, the room is shown.
    one(w, "Join a room").invoke_accessible_default_action();
    one(w, "Invite").set_accessible_value(invite());
    one(w, "Join").invoke_accessible_default_action();
    settle();
    assert_eq!(app.rooms.slots().len(), 2);
    assert_eq!(w.global::<Room>().get_room_name(), "launch team");
    // The form can be left without joining.
    one(w, "Join a room").invoke_accessible_default_action();
    settle();
    one(w, "Back to my rooms").invoke_accessible_default_action();
    settle();
    assert!(!w.room_list().get_adding());

    while f.next_request().is_some() {}
    one(w, "Leave launch team").invoke_accessible_default_action();
    settle();
    assert_eq!(app.rooms.slots().len(), 2, "asked first");
    one(w, "Confirm leaving launch team").invoke_accessible_default_action();
    settle();
    assert_eq!(f.next_command(), Some(Command::Leave));
    assert_eq!(app.rooms.slots().len(), 1);
    assert_eq!(w.global::<Room>().get_room_name(), "design");
    assert!(w.get_room_open());
    // Lines from the left room's driver no longer reach the window.
    assert!(room_rows(w).iter().all(|r| !r.contains("launch team")));

    // The last one: the join form is the window again.
    one(w, "Leave design").invoke_accessible_default_action();
    one(w, "Confirm leaving design").invoke_accessible_default_action();
    settle();
    assert!(!w.get_room_open());
    assert!(app.rooms.slots().is_empty());
    assert_eq!(w.global::<Room>().get_room_name(), "");
}

#[test]
fn the_admin_opens_several_rooms_each_with_its_own_invite() {
    let f = fixture();
    let app = f.admin();
    let w = &app.window;
    one(w, "Open room").invoke_accessible_default_action();
    assert!(w.get_room_open(), "{}", w.get_open_error());
    let first = w.global::<Room>().get_invite();
    one(w, "Open a room").invoke_accessible_default_action();
    settle();
    one(w, "Room name").set_accessible_value("second team");
    one(w, "Open room").invoke_accessible_default_action();
    settle();
    assert_eq!(app.rooms.slots().len(), 2);
    assert_eq!(w.global::<Room>().get_room_name(), "second team");
    let second = w.global::<Room>().get_invite();
    assert!(second.starts_with("teamchat://") && second != first);
    w.room_list().invoke_select(0);
    assert_eq!(w.global::<Room>().get_invite(), first);
    assert_eq!(w.global::<Room>().get_room_name(), "launch team");
}
