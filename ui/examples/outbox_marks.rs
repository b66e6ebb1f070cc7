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

mod support;

use client::driver::Update;
use common::engine::{Delivery, Event};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = support::Demo::new()?;
    demo.bob_says("can everyone see the new build?", 1, 0);
    let at = support::AT;
    let mine = |id: u64, text: &str, secs: u64| Event::Sent {
        id,
        text: text.into(),
        sent_at_ms: at + secs * 1000,
    };
    let state = |id: u64, state: Delivery| Event::Delivery { id, state };
    demo.event(mine(1, "yes, it runs here", 20));
    demo.event(state(1, Delivery::Delivered));
    demo.event(mine(
        2,
        "this one never reached the relay before a kick",
        40,
    ));
    demo.event(state(
        2,
        Delivery::Failed("you were removed from the room".into()),
    ));
    demo.event(mine(3, "and this one went out but was never confirmed", 50));
    demo.event(state(
        3,
        Delivery::Unconfirmed(
            "someone joined the room since it went out, so it was not sent again".into(),
        ),
    ));
    demo.update(Update::Away {
        away: std::time::Duration::from_millis(7_800),
        since_ms: at + 55_000,
    });
    demo.update(Update::Disconnected {
        reason: "no traffic from the relay for 6 s".into(),
        relay_code: None,
        retry_in: std::time::Duration::from_secs(1),
    });
    demo.event(mine(4, "typing while the relay is away", 60));
    demo.event(state(
        4,
        Delivery::Waiting("waiting to be sent: not connected to the relay: reconnecting".into()),
    ));
    demo.run_for("OUTBOX_MARKS_SECONDS")
}
