//! The member window with its own lines in each state of the outbox
//! (issue 22): delivered (a tick), pending while the relay is away (a
//! clock, and why), failed (a cross, why, and Resend) and unconfirmed (a
//! question mark), and the notice of an absence: a real window (the
//! platform's Slint backend) fed the events the engine and the driver give,
//! for a screenshot under Xvfb (`scripts/screenshots.sh` runs it). It
//! closes itself after `OUTBOX_MARKS_SECONDS` seconds (default 20).
//!
//!   cargo run -p ui --example outbox_marks
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::rc::Rc;

use client::driver::Update;
use common::engine::{Delivery, Event};
use common::invite::{Host, Invite, RelayEndpoint};
use common::test_keys::member_info as info;
use common::{identity, test_keys, Fingerprint, RoomId};
use slint::ComponentHandle;
use ui::member::{MemberApp, MemberOptions};
use ui::session::Session;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let id = dir.path().join("alice.pem");
    identity::save(&id, test_keys::key(1), None)?;
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    let invite = Invite::new(
        vec![RelayEndpoint {
            host: Host::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 7443,
            cert: Fingerprint([7; 32]),
        }],
        RoomId([9; 16]),
        test_keys::key(0).public().fingerprint(),
    )?;
    let opts = MemberOptions {
        invite: Some(invite.to_string()),
        name: Some("alice".into()),
        password: None,
        identity: id,
        ca: None,
        join_now: true,
        settings: Some(dir.path().join("settings.toml")),
    };
    let app = MemberApp::new(opts, Rc::new(Session::detached(tx)), None)?;
    let w = &app.window;
    w.window().set_size(slint::LogicalSize::new(1000., 720.));
    let apply = |u: Event| ui::room::apply(w, Update::Engine(u));
    apply(Event::Epoch {
        epoch: 2,
        room_name: "launch team".into(),
        members: vec![
            info(0, "boss", true),
            info(1, "alice", false),
            info(2, "bob", false),
        ],
    });
    let at = 1_764_620_000_000u64;
    apply(Event::Message {
        from: info(2, "bob", false),
        text: "can everyone see the new build?".into(),
        sent_at_ms: at,
        epoch: 2,
        seq: 1,
    });
    let mine = |id: u64, text: &str, secs: u64| Event::Sent {
        id,
        text: text.into(),
        sent_at_ms: at + secs * 1000,
    };
    let state = |id: u64, state: Delivery| Event::Delivery { id, state };
    apply(mine(1, "yes, it runs here", 20));
    apply(state(1, Delivery::Delivered));
    apply(mine(
        2,
        "this one never reached the relay before a kick",
        40,
    ));
    apply(state(
        2,
        Delivery::Failed("you were removed from the room".into()),
    ));
    apply(mine(3, "and this one went out but was never confirmed", 50));
    apply(state(
        3,
        Delivery::Unconfirmed(
            "someone joined the room since it went out, so it was not sent again".into(),
        ),
    ));
    ui::room::apply(
        w,
        Update::Away {
            away: std::time::Duration::from_millis(7_800),
            since_ms: at + 55_000,
        },
    );
    ui::room::apply(
        w,
        Update::Disconnected {
            reason: "no traffic from the relay for 6 s".into(),
            relay_code: None,
            retry_in: std::time::Duration::from_secs(1),
        },
    );
    apply(mine(4, "typing while the relay is away", 60));
    apply(state(
        4,
        Delivery::Waiting("waiting to be sent: not connected to the relay: reconnecting".into()),
    ));
    let seconds = std::env::var("OUTBOX_MARKS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20u64);
    let timer = slint::Timer::default();
    timer.start(
        slint::TimerMode::SingleShot,
        std::time::Duration::from_secs(seconds),
        || {
            let _ = slint::quit_event_loop();
        },
    );
    w.run()?;
    Ok(())
}
