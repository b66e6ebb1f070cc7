//! The window's network side against a real relay on 127.0.0.1: a member
//! window joins through its form, and closing it leaves the room cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::rc::Rc;
use std::time::Duration;

use client::driver::{self, Request, Trust, Update};
use common::engine::admin::Admin;
use common::engine::{AdminConfig, Command, Engine, Event};
use common::identity;
use common::invite::{Host, Invite, RelayEndpoint};
use common::test_keys;
use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use relay::testing::{test_limits, TestRelay};
use tokio::sync::mpsc;
use ui::member::{MemberApp, MemberOptions};
use ui::session::Session;
use zeroize::Zeroizing;

const WAIT: Duration = Duration::from_secs(20);

async fn expect(up: &mut mpsc::Receiver<Update>, what: &str, pred: impl Fn(&Event) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, up.recv()).await {
            Ok(Some(Update::Engine(e))) if pred(&e) => return,
            Ok(Some(_)) => {}
            Ok(None) => panic!("admin driver ended while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

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
    let endpoint = RelayEndpoint {
        host: Host::V4(std::net::Ipv4Addr::LOCALHOST),
        port: relay.addr.port(),
        cert: relay.fingerprint.parse().unwrap(),
    };
    let room = common::crypto::random_room_id();
    let admin_key = test_keys::shared(4);
    let cfg = AdminConfig {
        room,
        room_name: "gui".into(),
        admin_name: "boss".into(),
        password: Some(Zeroizing::new("let me in please".into())),
        roster: Default::default(),
        rekey_after_messages: 0,
        rekey_after_ms: 0,
        state: Default::default(),
    };
    let (admin_cmd, admin_cmd_rx) = mpsc::channel::<Request>(16);
    let (admin_up_tx, mut admin_up) = mpsc::channel(256);
    rt.spawn(driver::run(
        Engine::Admin(Box::new(Admin::new(cfg, admin_key.clone()))),
        vec![endpoint.clone()],
        Trust::Pinned,
        admin_cmd_rx,
        admin_up_tx,
    ));
    rt.block_on(expect(&mut admin_up, "the first epoch", |e| {
        matches!(e, Event::Epoch { .. })
    }));

    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("member.pem");
    identity::save(&id, test_keys::key(1), None).unwrap();
    let invite = Invite::new(vec![endpoint], room, admin_key.public().fingerprint()).unwrap();
    let session = Rc::new(Session::new(rt.handle().clone()));
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
        session.clone(),
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
    rt.block_on(expect(
        &mut admin_up,
        "wendy in an epoch",
        |e| matches!(e, Event::Epoch { members, .. } if members.iter().any(|m| m.name == "wendy")),
    ));

    // The window closes (run() returned): the app leaves.
    drop(app);
    assert!(
        session.leave(Duration::from_secs(5)),
        "the driver finished in time"
    );
    rt.block_on(expect(
        &mut admin_up,
        "wendy leaving",
        |e| matches!(e, Event::MemberLeft(m) if m.name == "wendy"),
    ));
    assert!(!session.is_started());
    assert!(
        session.send(Command::Send("late".into())).is_err(),
        "nothing is sent after leaving"
    );
    drop(admin_cmd);
}
