//! The member window holding four rooms: the room list with unread and
//! mention counts, a room that cannot reach its relay, and the room on
//! screen opened at the "new messages" divider, with a line that mentions
//! us and the "@" list open in the composer. With `ROOMS_KEY_CHANGE=1`,
//! bob comes back with another key instead: the warning. A real window
//! (the platform's Slint backend), for a screenshot under Xvfb
//! (`scripts/screenshots.sh` runs it); it closes itself after
//! `ROOMS_SECONDS` seconds (default 20).
//!
//!   cargo run -p ui --example rooms
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use client::driver::Update;
use slint::ComponentHandle;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = support::Demo::new()?;
    demo.bob_says("morning! the release notes are in the shared folder", 1, 0);
    demo.bob_says("boss wants a go/no-go at 11", 2, 60);
    let design = demo.another_room(3, "design");
    let ops = demo.another_room(4, "ops on-call");
    let random = demo.another_room(5, "random");
    for room in [0, design, random] {
        let slot = demo.app.rooms.slots()[room].clone();
        demo.app.rooms.deliver(
            &slot,
            Update::Secured {
                relay: "127.0.0.1:7443".into(),
                cert: common::Fingerprint([7; 32]),
            },
        );
    }
    // Looking at "design" while the others talk.
    demo.app.rooms.show_index(design);
    demo.says_in(design, 2, "bob", "new logo draft attached", 1, 120);
    demo.says_in(0, 2, "bob", "no-go: the migration test failed", 3, 300);
    demo.says_in(0, 0, "boss", "ok, we move it to Thursday", 1, 360);
    demo.says_in(0, 2, "bob", "I'll write it up 📝", 4, 420);
    demo.mentions_in(
        0,
        0,
        "boss",
        "@alice can you check the rollback plan with bob?",
        2,
        450,
    );
    demo.says_in(design, 0, "boss", "looks good to me", 2, 460);
    demo.says_in(random, 2, "bob", "lunch? 🍕", 5, 400);
    demo.mentions_in(
        random,
        2,
        "bob",
        "@alice coming? we're at the usual place",
        6,
        470,
    );
    let slot = demo.app.rooms.slots()[ops].clone();
    demo.app.rooms.deliver(
        &slot,
        Update::Disconnected {
            reason: "cannot connect to 10.0.0.7:7443: connection refused".into(),
            relay_code: None,
            retry_in: std::time::Duration::from_secs(16),
        },
    );
    // Back to the first room: it opens at the divider.
    demo.app.rooms.show_index(0);
    let room = demo.app.window.global::<ui::Room>();
    if std::env::var("ROOMS_KEY_CHANGE").is_ok_and(|v| v == "1") {
        let first = demo.app.rooms.slots()[0].clone();
        demo.app.rooms.deliver(
            &first,
            Update::KeyChanged(client::history::KeyChange {
                name: "bob".into(),
                fingerprint: common::test_keys::key(3).public().fingerprint(),
                before: vec![(common::test_keys::key(2).public().fingerprint(), true)],
            }),
        );
    } else {
        // Answering, with the "@" list open.
        room.set_draft("on it, I'll ask @b".into());
        room.invoke_composer_edited("on it, I'll ask @b".into());
    }
    demo.run_for("ROOMS_SECONDS")
}
