//! A desktop notification for a private message, for the screenshot that
//! shows it on screen: the member window, not the active one, receives a
//! private message from bob two seconds after it opens, and the desktop's
//! notification service (under `dbus-run-session` with `dunst`, as
//! `scripts/screenshots.sh` runs it) shows "bob wrote to you privately".
//! It closes itself after `NOTIFY_SECONDS` seconds (default 20).
//!
//!   dbus-run-session -- sh -c 'dunst & cargo run -p ui --example notification'
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use client::driver::Update;
use common::engine::Event;
use common::test_keys::member_info as info;
use slint::ComponentHandle;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ui::notify::start();
    let demo = support::Demo::new()?;
    demo.bob_says("the review moved to 15:00", 1, 0);
    let w = demo.app.window.as_weak();
    let later = slint::Timer::default();
    later.start(
        slint::TimerMode::SingleShot,
        std::time::Duration::from_secs(2),
        move || {
            let Some(w) = w.upgrade() else { return };
            // As if the person had switched to another window.
            w.global::<ui::Room>().set_window_active(false);
            ui::room::apply(
                &w,
                Update::Engine(Event::Private {
                    from: info(2, "bob", false),
                    text: "can you call me when you are free?".into(),
                    sent_at_ms: support::AT + 60_000,
                    epoch: 2,
                    seq: 1,
                }),
            );
        },
    );
    demo.run_for("NOTIFY_SECONDS")
}
