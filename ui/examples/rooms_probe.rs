//! Times, in the member window on a real display (the platform's Slint
//! backend; `scripts/bench-gui.sh` runs it under Xvfb), what issue 23 asks
//! of a window holding ten rooms, each opened with the 200 lines of
//! history a room shows (`client::history::SHOW_ON_OPEN`):
//!
//! - switching rooms: the room list's switch, then the new room's first
//!   frame rendered whole (`Window::take_snapshot`, the software renderer
//!   drawing every pixel: an upper bound of the partial frame the window
//!   draws), 100 switches;
//! - while 1,000 lines a second arrive across the rooms (10 every 10 ms,
//!   round robin, for `PROBE_SECONDS`, default 10): how long the window's
//!   thread is held by each batch, how late its 10 ms timer fires (a frame
//!   cannot be drawn meanwhile), and a whole frame rendered every 100 ms.
//!
//! Prints one line of figures (ms): `switch median p95 max`, `stall max`,
//! `late p99 max`, `frame median p99 max`.
//!
//!   cargo run --release -p ui --example rooms_probe
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use client::driver::Update;
use client::history::{Entry, EntryKind, Loaded, SHOW_ON_OPEN};
use common::engine::Event;
use common::test_keys::member_info as info;
use slint::ComponentHandle;

const ROOMS: usize = 10;
const SWITCHES: usize = 100;

/// The median, the `p` quantile and the maximum of `ms`.
fn stats(mut ms: Vec<f64>, p: f64) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(p), ms[ms.len() - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::var("PROBE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let demo = Rc::new(support::Demo::new()?);
    for r in 1..ROOMS {
        demo.another_room(r as u8 + 10, &format!("room {}", r + 1));
    }
    // Each room opens with its last 200 lines, as the driver reads them.
    for (r, slot) in demo.app.rooms.slots().iter().enumerate() {
        let entries = (0..SHOW_ON_OPEN)
            .map(|i| Entry {
                at_ms: support::AT + i as u64 * 1000,
                kind: EntryKind::Message,
                who: "bob".into(),
                fingerprint: Some(common::test_keys::key(2).public().fingerprint().0),
                text: format!(
                    "line {i} in room {}: the quick brown fox jumps over the lazy dog, status update",
                    r + 1
                ),
                path: None,
            })
            .collect();
        demo.app.rooms.deliver(
            slot,
            Update::History {
                loaded: Loaded {
                    entries,
                    skipped: 0,
                },
                requested: false,
            },
        );
    }
    demo.app.rooms.show_index(0);
    let window = demo.app.window.clone_strong();
    let script = slint::Timer::default();
    let d = demo.clone();
    let seq = Rc::new(RefCell::new(1000u64));
    let load = Rc::new(slint::Timer::default());
    let frames = Rc::new(slint::Timer::default());
    let done = Rc::new(slint::Timer::default());
    script.start(slint::TimerMode::SingleShot, Duration::from_secs(2), move || {
        // Switches, each with its first frame.
        let mut switch = Vec::new();
        for k in 0..SWITCHES {
            let t0 = Instant::now();
            d.app.rooms.show_index((k + 1) % ROOMS);
            window.window().take_snapshot().expect("a frame");
            switch.push(ms(t0.elapsed()));
        }
        d.app.rooms.show_index(0);
        let (sw_med, sw_p95, sw_max) = stats(switch, 0.95);
        // Lines arriving, 10 every 10 ms.
        let stalls = Rc::new(RefCell::new(Vec::new()));
        let late = Rc::new(RefCell::new(Vec::new()));
        let frame = Rc::new(RefCell::new(Vec::new()));
        let last = Rc::new(RefCell::new(Instant::now()));
        let (d2, seq, st, lt, ls) = (d.clone(), seq.clone(), stalls.clone(), late.clone(), last.clone());
        load.start(slint::TimerMode::Repeated, Duration::from_millis(10), move || {
            let now = Instant::now();
            let gap = now - std::mem::replace(&mut *ls.borrow_mut(), now);
            lt.borrow_mut().push(ms(gap.saturating_sub(Duration::from_millis(10))));
            let slots = d2.app.rooms.slots();
            for _ in 0..10 {
                let n = {
                    let mut s = seq.borrow_mut();
                    *s += 1;
                    *s
                };
                let slot = &slots[n as usize % slots.len()];
                d2.app.rooms.deliver(
                    slot,
                    Update::Engine(Event::Message {
                        from: info(2, "bob", false),
                        text: format!("live line {n}: the deploy is green, the canary holds"),
                        sent_at_ms: support::AT + n * 1000,
                        epoch: 2,
                        seq: n,
                        mentions_me: n % 50 == 0,
                    }),
                );
            }
            st.borrow_mut().push(ms(now.elapsed()));
        });
        let (w2, fr) = (window.clone_strong(), frame.clone());
        frames.start(slint::TimerMode::Repeated, Duration::from_millis(100), move || {
            let t0 = Instant::now();
            w2.window().take_snapshot().expect("a frame");
            fr.borrow_mut().push(ms(t0.elapsed()));
        });
        let (load, frames) = (load.clone(), frames.clone());
        done.start(slint::TimerMode::SingleShot, Duration::from_secs(seconds), move || {
            load.stop();
            frames.stop();
            let (_, _, stall_max) = stats(stalls.borrow().clone(), 0.99);
            let (_, late_p99, late_max) = stats(late.borrow().clone(), 0.99);
            let (f_med, f_p99, f_max) = stats(frame.borrow().clone(), 0.99);
            println!(
                "switch {sw_med:.1} {sw_p95:.1} {sw_max:.1} stall {stall_max:.1} late {late_p99:.1} {late_max:.1} frame {f_med:.1} {f_p99:.1} {f_max:.1}"
            );
            let _ = slint::quit_event_loop();
        });
    });
    demo.app.window.run()?;
    Ok(())
}
