//! The window's network side against a real relay on 127.0.0.1: a member
//! window joins through its form, and closing it leaves the room cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::Duration;

use client::files::FileOptions;
use client::testing::{admin_engine, epoch_with, local_endpoint, Peer};
use common::engine::{Command, Event};
use common::identity;
use common::invite::Invite;
use common::test_keys;
use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use relay::testing::{test_limits, TestRelay};
use ui::member::{MemberApp, MemberOptions};
use ui::rooms::Network;

fn field(win: &ui::MemberWindow, label: &str) -> ElementHandle {
    ElementHandle::find_by_accessible_label(win, label)
        .find(|e| e.accessible_role() != Some(AccessibleRole::Text))
        .unwrap()
}

#[test]
fn closing_the_window_leaves_the_room_cleanly() {
    i_slint_backend_testing::init_no_event_loop();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let relay = rt.block_on(TestRelay::start(test_limits()));
    let endpoint = local_endpoint(relay.addr.port(), &relay.fingerprint);
    let room = common::crypto::random_room_id();
    let admin_key = test_keys::shared(4);
    let mut admin = {
        let _in_runtime = rt.enter();
        let engine = admin_engine(room, "gui", 4, Some("let me in please"), HashSet::new());
        Peer::start(engine, vec![endpoint.clone()], FileOptions::default())
    };
    rt.block_on(admin.expect("the first epoch", epoch_with(1)));

    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("member.pem");
    identity::save(&id, test_keys::key(1), None).unwrap();
    let invite = Invite::new(vec![endpoint], room, admin_key.public().fingerprint()).unwrap();
    let net = Network::Runtime(rt.handle().clone(), client::driver::Options::default());
    let app = MemberApp::new(
        MemberOptions {
            invite: Some(invite.to_string()),
            name: Some("wendy".into()),
            password: None,
            identity: id,
            ca: None,
            join_now: false,
            settings: None,
        },
        net,
        Some(rt.handle().clone()),
    )
    .unwrap();
    field(&app.window, "Room password").set_accessible_value("let me in please");
    field(&app.window, "Join").invoke_accessible_default_action();
    assert!(
        app.window.get_room_open(),
        "{}",
        app.window.get_join_error()
    );
    rt.block_on(admin.expect(
        "wendy in an epoch",
        |e| matches!(e, Event::Epoch { members, .. } if members.iter().any(|m| m.name == "wendy")),
    ));

    // The window closes (run() returned): the app leaves its rooms.
    let slot = app.rooms.shown().expect("the room on screen");
    let MemberApp { window, rooms } = app;
    drop(window);
    assert!(
        rooms.leave_all(Duration::from_secs(5)),
        "the driver finished in time"
    );
    let session = &slot.session;
    rt.block_on(admin.expect(
        "wendy leaving",
        |e| matches!(e, Event::MemberLeft(m) if m.name == "wendy"),
    ));
    assert!(!session.is_started());
    assert!(
        session.send(Command::Send("late".into())).is_err(),
        "nothing is sent after leaving"
    );
    drop(admin);
}
