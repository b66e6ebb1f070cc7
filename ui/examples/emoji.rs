//! The member window with emoji in the conversation, for the screenshots
//! that show they render on a stock desktop's fonts: run it under Xvfb with
//! `FONTCONFIG_FILE` naming only DejaVu, or DejaVu and Noto Color Emoji
//! (`scripts/screenshots.sh` does both and opens the picker). It closes
//! itself after `EMOJI_SECONDS` seconds (default 20).
//!
//!   cargo run -p ui --example emoji
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use common::engine::Event;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = support::Demo::new()?;
    demo.bob_says("the release is out 🚀🎉 thanks all 🙏", 1, 0);
    demo.bob_says("👍🏽 ❤️ ☕ ✅ ⚠️ 🔒 👩‍💻 🇫🇷 😀😂😍🤔", 2, 20);
    let at = support::AT;
    demo.event(Event::Sent {
        id: 1,
        text: "great work 👏 see you at 14:00 ☕".into(),
        sent_at_ms: at + 40_000,
    });
    demo.event(Event::Delivery {
        id: 1,
        state: common::engine::Delivery::Delivered,
    });
    demo.run_for("EMOJI_SECONDS")
}
