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

mod support;

use client::driver::Update;
use common::engine::Event;
use common::test_keys::member_info as info;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = support::Demo::new()?;
    demo.bob_says("the release branch is cut", 1, 0);
    demo.event(Event::Missed {
        from: info(2, "bob", false),
        epoch: 2,
        count: 2,
        private: false,
    });
    demo.bob_says("so please rebase before noon", 4, 40);
    if std::env::var("GAP_BANNER_CUT").is_ok_and(|v| v == "1") {
        demo.update(Update::Disconnected {
            reason: "you fell behind the room and the relay let you go".into(),
            relay_code: Some(common::wire::ErrorCode::SlowReader),
            retry_in: std::time::Duration::from_secs(2),
        });
    }
    demo.run_for("GAP_BANNER_SECONDS")
}
