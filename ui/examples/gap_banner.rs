//! The member window as it looks when the relay dropped lines: a real
//! window (the platform's Slint backend, not the testing one) fed the
//! events the engine gives for such a conversation, for a screenshot under
//! Xvfb (`scripts/screenshots.sh` runs it). It closes itself after
//! `GAP_BANNER_SECONDS` seconds (default 20). With `GAP_BANNER_CUT=1` the
//! relay then lets the member go for falling behind (`SlowReader`), as the
//! driver reports it: the banner says so, and that it reconnects.
//!
//!   cargo run -p ui --example gap_banner
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::rc::Rc;

use client::driver::Update;
use common::engine::Event;
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
    let line = |text: &str, seq: u64, secs: u64| Event::Message {
        from: info(2, "bob", false),
        text: text.into(),
        sent_at_ms: at + secs * 1000,
        epoch: 2,
        seq,
    };
    apply(line("the release branch is cut", 1, 0));
    apply(Event::Missed {
        from: info(2, "bob", false),
        epoch: 2,
        count: 2,
        private: false,
    });
    apply(line("so please rebase before noon", 4, 40));
    if std::env::var("GAP_BANNER_CUT").is_ok_and(|v| v == "1") {
        ui::room::apply(
            w,
            Update::Disconnected {
                reason: "you fell behind the room and the relay let you go".into(),
                relay_code: Some(common::wire::ErrorCode::SlowReader),
                retry_in: std::time::Duration::from_secs(2),
            },
        );
    }
    let seconds = std::env::var("GAP_BANNER_SECONDS")
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
