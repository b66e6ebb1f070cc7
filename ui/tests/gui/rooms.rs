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
            mentions_me: false,
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
    assert_eq!(
        one(w, "Message input").accessible_value().unwrap(),
        "",
        "and nothing is typed"
    );
    // Ctrl+K, a few letters, Enter.
    with_ctrl("k");
    assert!(w.room_list().get_search_open());
    one(w, "Room name").set_accessible_value("OP");
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
    assert_eq!(
        f.next_request_in(),
        Some((RoomId([3; 16]), Command::Send("still here".into()).into())),
        "to the room on screen"
    );
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
    // What this computer kept of the room: a line, and one waiting to go.
    let history = client::history::HistoryOptions {
        path: f.dir.path().join("history.sqlite3"),
        retention: client::history::Retention::default(),
    };
    let kept_of = |room: u8| {
        client::history::History::open(&history, test_keys::key(1), &RoomId([room; 16])).unwrap()
    };
    let line = client::history::Entry {
        at_ms: client::now_ms(),
        kind: client::history::EntryKind::Message,
        who: "bob".into(),
        fingerprint: None,
        text: "the vault code is 4711".into(),
        path: None,
    };
    for room in [9, 3] {
        let mut h = kept_of(room);
        h.add(&line).unwrap();
        h.keep_outbox(&[client::history::KeptLine {
            id: 1,
            to: None,
            text: "not sent yet".into(),
            typed_ms: 0,
            first: None,
        }])
        .unwrap();
    }
    one(w, "Leave launch team").invoke_accessible_default_action();
    settle();
    assert_eq!(app.rooms.slots().len(), 2, "asked first");
    let left = app.rooms.slots()[0].clone();
    one(w, "Confirm leaving launch team").invoke_accessible_default_action();
    settle();
    // The others are told, by that room's driver, not the other's.
    assert_eq!(
        f.next_request_in(),
        Some((RoomId([9; 16]), Command::Leave.into()))
    );
    // This computer forgot its lines and what was waiting; not the other
    // room's.
    assert!(kept_of(9).last(10).unwrap().entries.is_empty());
    assert!(kept_of(9).outbox().unwrap().is_empty());
    assert_eq!(kept_of(3).last(10).unwrap().entries.len(), 1);
    assert_eq!(kept_of(3).outbox().unwrap().len(), 1);
    assert_eq!(app.rooms.slots().len(), 1);
    assert_eq!(w.global::<Room>().get_room_name(), "design");
    assert!(w.get_room_open());
    assert!(room_rows(w).iter().all(|r| !r.contains("launch team")));
    // It takes no more commands.
    assert!(left.session.send(Command::Send("late".into())).is_err());

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

#[test]
fn what_is_started_in_one_room_stays_with_it() {
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    join_another(w, 3, "design");
    w.room_list().invoke_select(0);
    settle();
    // A draft, a file being chosen, a question asked once: each belongs
    // to the room it was started in.
    let input = one(w, "Message input");
    input.set_accessible_value("the vault code is 4711");
    one(w, "Clear history").invoke_accessible_default_action();
    settle();
    assert_eq!(labels_starting(w, "Confirm clearing the history").len(), 1);
    w.global::<Transfers>().invoke_browse("".into());
    w.global::<Transfers>().set_chooser_open(true);
    settle();
    w.room_list().invoke_select(1);
    settle();
    assert_eq!(input.accessible_value().unwrap(), "", "no draft in design");
    assert!(
        !w.global::<Transfers>().get_chooser_open(),
        "the chooser closed"
    );
    assert!(
        labels_starting(w, "Confirm clearing the history").is_empty(),
        "the question was for the other room"
    );
    while f.next_request().is_some() {}
    one(w, "Send").invoke_accessible_default_action();
    assert_eq!(f.next_request(), None, "nothing sent to design");
    w.room_list().invoke_select(0);
    settle();
    assert_eq!(
        input.accessible_value().unwrap(),
        "the vault code is 4711",
        "the draft is back in its room"
    );

    // While the form to add a room is open, Ctrl+2 does not switch the
    // room underneath.
    one(w, "Join a room").invoke_accessible_default_action();
    settle();
    w.window().dispatch_event(WindowEvent::KeyPressed {
        text: Key::Control.into(),
    });
    w.window()
        .dispatch_event(WindowEvent::KeyPressed { text: "2".into() });
    w.window()
        .dispatch_event(WindowEvent::KeyReleased { text: "2".into() });
    w.window().dispatch_event(WindowEvent::KeyReleased {
        text: Key::Control.into(),
    });
    settle();
    assert_eq!(w.global::<Room>().get_room_name(), "launch team");
}

#[test]
fn a_join_request_in_a_room_not_on_screen_is_counted_for_the_admin() {
    let f = fixture();
    let app = f.admin();
    let w = &app.window;
    one(w, "Open room").invoke_accessible_default_action();
    one(w, "Open a room").invoke_accessible_default_action();
    settle();
    one(w, "Room name").set_accessible_value("second team");
    one(w, "Open room").invoke_accessible_default_action();
    settle();
    let first = app.rooms.slots()[0].clone();
    app.rooms.deliver(
        &first,
        Update::Engine(Event::PendingApproval {
            id: 1,
            name: "carol".into(),
            fingerprint: test_keys::key(3).public().fingerprint(),
            safety_code: test_keys::key(3).public().safety_code().to_string(),
            banned: false,
        }),
    );
    settle();
    let rows = labels_starting(w, "Room launch team");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("1 unread, 1 for you"), "{rows:?}");
    assert_eq!(w.room_list().get_total_mentions(), 1);
}

#[test]
fn remembered_rooms_come_back_at_start_and_a_room_left_does_not() {
    let mut f = fixture();
    {
        let app = joined(&f);
        join_another(&app.window, 3, "design");
        // The setting chosen for a room is kept with it.
        let w = &app.window;
        w.global::<Room>().set_notify_level(ui::NotifyLevel::All);
        w.global::<Room>().invoke_notify_changed();
    }
    // The notification setting comes from the room book, not settings.toml.
    std::fs::remove_file(f.settings()).unwrap();
    let app = f.member();
    let w = &app.window;
    settle();
    let names: Vec<String> = app
        .rooms
        .slots()
        .iter()
        .map(|s| s.room().get_room_name().to_string())
        .collect();
    assert_eq!(names, vec!["launch team", "design"]);
    assert!(w.get_room_open(), "the rooms, not the join form");
    assert_eq!(w.global::<Room>().get_room_name(), "launch team");
    assert_eq!(
        app.rooms.slots()[1].room().get_notify_level(),
        ui::NotifyLevel::All
    );
    // They reconnect by themselves: each room's driver was started (a
    // detached session takes commands once started).
    assert!(app.rooms.slots().iter().all(|s| s.session.is_started()));
    // Left: forgotten.
    while f.next_request().is_some() {}
    w.room_list().invoke_select(1);
    settle();
    one(w, "Leave design").invoke_accessible_default_action();
    one(w, "Confirm leaving design").invoke_accessible_default_action();
    drop(app);
    let app = f.member();
    assert_eq!(app.rooms.slots().len(), 1);
    drop(app);

    // Without the database: no rooms, and the same identity.
    let code = {
        let app = f.member();
        app.window.global::<Room>().get_my_safety_code()
    };
    std::fs::remove_file(f.dir.path().join("history.sqlite3")).unwrap();
    let app = f.member();
    assert!(app.rooms.slots().is_empty());
    assert!(!app.window.get_room_open());
    assert_eq!(app.window.global::<Room>().get_my_safety_code(), code);
}

#[test]
fn a_locked_key_is_unlocked_to_reconnect_the_remembered_rooms() {
    let f = fixture();
    let id = f.identity(1);
    identity::save(&id, test_keys::key(1), Some(b"correct horse")).unwrap();
    {
        let app = f.member_at(id.clone());
        let w = &app.window;
        assert!(!w.get_can_restore(), "nothing remembered yet");
        one(w, "Invite").set_accessible_value(invite());
        one(w, "Your name").set_accessible_value("alice");
        one(w, "Identity passphrase").set_accessible_value("correct horse");
        one(w, "Join").invoke_accessible_default_action();
        assert!(w.get_room_open(), "{}", w.get_join_error());
    }
    let app = f.member_at(id);
    let w = &app.window;
    assert!(app.rooms.slots().is_empty(), "locked: nothing read yet");
    assert!(w.get_can_restore());
    one(w, "Identity passphrase").set_accessible_value("wrong");
    one(w, "Unlock and reconnect my rooms").invoke_accessible_default_action();
    assert!(app.rooms.slots().is_empty());
    assert!(!w.get_join_error().is_empty());
    one(w, "Identity passphrase").set_accessible_value("correct horse");
    one(w, "Unlock and reconnect my rooms").invoke_accessible_default_action();
    assert_eq!(app.rooms.slots().len(), 1, "{}", w.get_join_error());
    assert!(w.get_room_open());
}

#[test]
fn without_history_no_room_is_remembered() {
    let mut f = fixture();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    f.commands = rx;
    f.net = Network::Detached(tx, None);
    drop(joined(&f));
    let app = f.member();
    assert!(app.rooms.slots().is_empty());
    assert!(!f.dir.path().join("history.sqlite3").exists());
}

#[test]
fn the_admin_reopens_its_rooms_with_the_same_invite() {
    let f = fixture();
    let invite = {
        let app = f.admin();
        one(&app.window, "Open room").invoke_accessible_default_action();
        app.window.global::<Room>().get_invite()
    };
    let app = f.admin();
    let w = &app.window;
    assert!(w.get_room_open(), "{}", w.get_open_error());
    assert_eq!(app.rooms.slots().len(), 1);
    assert_eq!(w.global::<Room>().get_invite(), invite);
    assert_eq!(w.global::<Room>().get_room_name(), "launch team");
}

#[test]
fn typing_at_offers_the_members_and_a_mention_goes_by_key() {
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let input = one(w, "Message input");
    input.set_accessible_value("ping @BO");
    settle();
    // The others whose names start so (any case), not alice herself.
    assert_eq!(
        labels_starting(w, "Mention "),
        vec!["Mention boss".to_string(), "Mention bob".to_string()]
    );
    one(w, "Mention bob").invoke_accessible_default_action();
    settle();
    assert_eq!(input.accessible_value().unwrap(), "ping @bob ");
    assert!(
        labels_starting(w, "Mention ").is_empty(),
        "closed once picked"
    );
    // With the keyboard: "@" alone offers everyone else; Down, Enter.
    input.set_accessible_value("ping @bob and @");
    settle();
    assert_eq!(
        labels_starting(w, "Mention "),
        vec!["Mention boss".to_string(), "Mention bob".to_string()]
    );
    input.mock_single_click(slint::platform::PointerEventButton::Left);
    for k in [Key::DownArrow, Key::Return] {
        w.window()
            .dispatch_event(WindowEvent::KeyPressed { text: k.into() });
        w.window()
            .dispatch_event(WindowEvent::KeyReleased { text: k.into() });
    }
    settle();
    assert_eq!(input.accessible_value().unwrap(), "ping @bob and @bob ");
    // An e-mail address offers nobody.
    input.set_accessible_value("mail bob@");
    settle();
    assert!(labels_starting(w, "Mention ").is_empty());
    // Sent: the names become the members' keys.
    while f.next_request().is_some() {}
    input.set_accessible_value("ping @bob, and @boss too");
    one(w, "Send").invoke_accessible_default_action();
    let bob = test_keys::key(2).public().fingerprint();
    let boss = test_keys::key(0).public().fingerprint();
    assert_eq!(
        f.next_command(),
        Some(Command::Send(format!(
            "ping {}, and {} too",
            common::engine::mentions::token(&bob),
            common::engine::mentions::token(&boss)
        )))
    );
}

#[test]
fn a_line_that_mentions_us_stands_out_counts_and_notifies() {
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    join_another(w, 3, "design");
    ui::notify::keep();
    app.rooms.window_active(false);
    let first = app.rooms.slots()[0].clone();
    for (text, mentions_me, seq) in [("@alice can you look?", true, 1), ("lunch?", false, 2)] {
        app.rooms.deliver(
            &first,
            Update::Engine(Event::Message {
                from: info(2, "bob", false),
                text: text.into(),
                sent_at_ms: 1_700_000_000_000,
                epoch: 2,
                seq,
                mentions_me,
            }),
        );
    }
    settle();
    let rows = room_rows(w);
    assert!(
        rows[0].starts_with("Room launch team, 2 unread, 1 for you"),
        "{rows:?}"
    );
    // One notification, for the mention (the room's default setting).
    let kept = ui::notify::kept();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].body, "bob mentioned you");
    w.room_list().invoke_select(0);
    settle();
    let lines = labels_starting(w, "bob at ");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(", mentions you: @alice can you look?")),
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.ends_with(": lunch?") && !l.contains("mentions you")));
}

#[test]
fn a_damaged_room_list_is_said_on_the_form_and_left_as_found() {
    let f = fixture();
    drop(joined(&f));
    // One byte of the sealed list flipped by someone without the key.
    let db = rusqlite_flip(&f.dir.path().join("history.sqlite3"));
    let app = f.member();
    let w = &app.window;
    assert!(app.rooms.slots().is_empty());
    assert!(
        w.get_join_error().contains("failed its check"),
        "{}",
        w.get_join_error()
    );
    assert_eq!(
        rusqlite_read(&f.dir.path().join("history.sqlite3")),
        db,
        "evidence kept"
    );
}

/// Flips one byte of the member's sealed room list; returns the new value.
fn rusqlite_flip(path: &std::path::Path) -> Vec<u8> {
    let mut v = rusqlite_read(path);
    let at = v.len() - 40;
    v[at] ^= 1;
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute("UPDATE meta SET v = ?1 WHERE k = 'rooms:member'", [&v])
        .unwrap();
    v
}

fn rusqlite_read(path: &std::path::Path) -> Vec<u8> {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("SELECT v FROM meta WHERE k = 'rooms:member'", [], |r| {
        r.get(0)
    })
    .unwrap()
}

#[test]
fn a_key_change_is_said_and_verified_members_carry_a_mark() {
    use client::history::{Contact, KeyChange};
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let bob = test_keys::key(2).public().fingerprint();
    let boss = test_keys::key(0).public().fingerprint();
    // The driver's word: bob is a contact we verified.
    ui::room::apply(
        w,
        Update::Contacts(vec![Contact {
            fingerprint: bob,
            names: vec!["bob".into()],
            first_seen_ms: 0,
            verified: true,
            changed_from: Vec::new(),
        }]),
    );
    settle();
    let row = labels_starting(w, "Member bob");
    assert!(row[0].contains(", verified"), "{row:?}");
    assert!(!labels_starting(w, "Member boss")[0].contains("verified"));
    // Marking the admin verified asks the driver.
    one(w, &labels_starting(w, "Member boss")[0]).invoke_accessible_default_action();
    settle();
    while f.next_request().is_some() {}
    one(w, "Mark boss as verified").invoke_accessible_default_action();
    assert_eq!(f.next_request(), Some(Request::Verify(boss, true)));
    // Someone is "bob" with another key: said in the conversation and the
    // banner, with the new safety code and that the old key was verified.
    let new = test_keys::key(3).public();
    ui::room::apply(
        w,
        Update::KeyChanged(KeyChange {
            name: "bob".into(),
            fingerprint: new.fingerprint(),
            before: vec![(bob, true)],
        }),
    );
    settle();
    let room = w.global::<Room>();
    assert_eq!(room.get_banner_kind(), BannerKind::Warning);
    let said = room.get_banner_text().to_string();
    assert!(
        said.starts_with("bob's key has changed (you had verified the old one)")
            && said.contains(&new.safety_code().to_string()),
        "{said}"
    );
    assert!(texts(w).contains(&said));
    // Away from the window: counted for us, and notified.
    ui::notify::keep();
    app.rooms.window_active(false);
    ui::room::apply(
        w,
        Update::KeyChanged(KeyChange {
            name: "carol".into(),
            fingerprint: test_keys::key(5).public().fingerprint(),
            before: vec![(bob, false)],
        }),
    );
    assert_eq!(w.room_list().get_total_mentions(), 1);
    let kept = ui::notify::kept();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        kept[0].body,
        "carol's key has changed: compare safety codes"
    );
}
