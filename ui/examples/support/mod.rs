//! What the screenshot examples share: a real member window (the
//! platform's Slint backend, not the testing one) already in a room of
//! three ("launch team": boss the admin, alice (us) and bob), fed events as
//! the engine and the driver give them, and closed after a set time.
#![allow(dead_code)]

use client::driver::Update;
use common::engine::Event;
use common::invite::{Host, Invite, RelayEndpoint};
use common::test_keys::member_info as info;
use common::{identity, test_keys, Fingerprint, RoomId};
use slint::ComponentHandle;
use ui::member::{MemberApp, MemberOptions};
use ui::rooms::Network;

/// The time the example lines were "sent" (1 December 2025, 20:13 UTC).
pub const AT: u64 = 1_764_620_000_000;

/// A member window in the room; keep the `TempDir` alive with it.
pub struct Demo {
    pub app: MemberApp,
    _dir: tempfile::TempDir,
}

impl Demo {
    pub fn new() -> Result<Self, Box<dyn std::error::Error>> {
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
        let app = MemberApp::new(opts, Network::Detached(tx, None), None)?;
        app.window
            .window()
            .set_size(slint::LogicalSize::new(1160., 720.));
        let demo = Demo { app, _dir: dir };
        demo.event(Event::Epoch {
            epoch: 2,
            room_name: "launch team".into(),
            members: vec![
                info(0, "boss", true),
                info(1, "alice", false),
                info(2, "bob", false),
            ],
        });
        Ok(demo)
    }

    /// Feeds the window one driver update.
    pub fn update(&self, u: Update) {
        ui::room::apply(&self.app.window, u);
    }

    /// Feeds the window one engine event.
    pub fn event(&self, e: Event) {
        self.update(Update::Engine(e));
    }

    /// A line from bob, `secs` after [`AT`].
    pub fn bob_says(&self, text: &str, seq: u64, secs: u64) {
        self.event(Event::Message {
            from: info(2, "bob", false),
            text: text.into(),
            sent_at_ms: AT + secs * 1000,
            epoch: 2,
            seq,
            mentions_me: false,
        });
    }

    /// Another room in the window (not shown), named `name`, with alice
    /// seated in it; returns its place in the room list.
    pub fn another_room(&self, id: u8, name: &str) -> usize {
        let rooms = &self.app.rooms;
        let slot = rooms.add(RoomId([id; 16])).expect("a new room");
        rooms.deliver(
            &slot,
            Update::Engine(Event::Epoch {
                epoch: 2,
                room_name: name.into(),
                members: vec![
                    info(0, "boss", true),
                    info(1, "alice", false),
                    info(2, "bob", false),
                ],
            }),
        );
        rooms.slots().len() - 1
    }

    /// A line from `who` (test key `key`) in the room at `room`.
    pub fn says_in(&self, room: usize, key: usize, who: &str, text: &str, seq: u64, secs: u64) {
        self.line_in(room, key, who, text, seq, secs, false);
    }

    /// [`Demo::says_in`] for a line that mentions us (its `text` shows it
    /// as the engine does, by name).
    pub fn mentions_in(&self, room: usize, key: usize, who: &str, text: &str, seq: u64, secs: u64) {
        self.line_in(room, key, who, text, seq, secs, true);
    }

    #[allow(clippy::too_many_arguments)]
    fn line_in(
        &self,
        room: usize,
        key: usize,
        who: &str,
        text: &str,
        seq: u64,
        secs: u64,
        mentions_me: bool,
    ) {
        let slot = self.app.rooms.slots()[room].clone();
        self.app.rooms.deliver(
            &slot,
            Update::Engine(Event::Message {
                from: info(key, who, false),
                text: text.into(),
                sent_at_ms: AT + secs * 1000,
                epoch: 2,
                seq,
                mentions_me,
            }),
        );
    }

    /// Runs the window until `$<var>` seconds (default 20) have passed.
    pub fn run_for(&self, var: &str) -> Result<(), Box<dyn std::error::Error>> {
        let seconds = std::env::var(var)
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
        self.app.window.run()?;
        Ok(())
    }
}
