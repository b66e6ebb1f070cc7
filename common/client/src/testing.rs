//! Test support (feature `test-support`): apps over a real relay, for the
//! app-level suites (`member/tests`, `ui/tests`, the benchmarks). A
//! [`Peer`] is one app without a front end: the real driver, fed
//! requests, its updates collected, with waits that fail the test with
//! what was seen. Relays come from `relay::testing`; engines for the
//! suites' rooms from [`admin_engine`] and [`member_engine`] with the
//! cached test keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::engine::admin::Admin;
use common::engine::member::Member;
use common::engine::{AdminConfig, Engine, Event, MemberConfig, Warning};
use common::invite::{Host, RelayEndpoint};
use common::test_keys::shared;
use common::{Fingerprint, RoomId};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::driver::{self, FileUpdate, Request, Trust, Update};
use crate::files::FileOptions;

/// How long a wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// One app, driven by a test: requests in, updates collected.
#[derive(Debug)]
pub struct Peer {
    /// Requests to its driver.
    pub cmd: mpsc::Sender<Request>,
    /// Its driver's updates not read yet.
    pub up: mpsc::Receiver<Update>,
    /// Every engine event read so far.
    pub seen: Vec<Event>,
    /// Every file update read so far.
    pub files: Vec<FileUpdate>,
    /// Every warning of the runtime itself (disk, history) read so far.
    pub local_warnings: Vec<String>,
    /// The connection's updates (connecting, secured, disconnected), with
    /// when they were read.
    pub links: Vec<(std::time::Instant, Update)>,
    /// When each of our lines was read as delivered.
    pub delivered: Vec<(u64, std::time::Instant)>,
    /// Room messages, with when they were read.
    pub seen_at: Vec<(std::time::Instant, Event)>,
    /// Key changes, each with how many events were read before it.
    pub key_changes: Vec<(usize, crate::history::KeyChange)>,
    /// The contacts the driver last told.
    pub contacts: Vec<crate::history::Contact>,
}

impl Peer {
    /// Starts the driver for `engine` on `relays` (tried in turn, pinned),
    /// with these file settings and no history.
    pub fn start(engine: Engine, relays: Vec<RelayEndpoint>, files: FileOptions) -> Peer {
        let opts = driver::Options {
            files,
            ..driver::Options::default()
        };
        Peer::start_with(engine, relays, opts)
    }

    /// [`Peer::start`] with all the driver's settings.
    pub fn start_with(engine: Engine, relays: Vec<RelayEndpoint>, opts: driver::Options) -> Peer {
        let (cmd, cmd_rx) = mpsc::channel(16);
        let (up_tx, up) = mpsc::channel(256);
        tokio::spawn(driver::run_with(
            engine,
            relays,
            Trust::Pinned,
            opts,
            cmd_rx,
            up_tx,
        ));
        Peer {
            cmd,
            up,
            seen: Vec::new(),
            files: Vec::new(),
            local_warnings: Vec::new(),
            links: Vec::new(),
            delivered: Vec::new(),
            seen_at: Vec::new(),
            key_changes: Vec::new(),
            contacts: Vec::new(),
        }
    }

    /// Keeps an update read.
    fn keep(&mut self, u: Update) {
        let now = std::time::Instant::now();
        match u {
            Update::Engine(e) => {
                if let Event::Delivery {
                    id,
                    state: common::engine::Delivery::Delivered,
                } = &e
                {
                    self.delivered.push((*id, now));
                }
                if matches!(e, Event::Message { .. }) {
                    self.seen_at.push((now, e.clone()));
                }
                self.seen.push(e)
            }
            Update::File(f) => self.files.push(f),
            Update::Warning(w) => self.local_warnings.push(w),
            Update::KeyChanged(c) => self.key_changes.push((self.seen.len(), c)),
            Update::Contacts(all) => self.contacts = all,
            u @ (Update::Connecting { .. }
            | Update::Secured { .. }
            | Update::Disconnected { .. }
            | Update::Away { .. }) => self.links.push((now, u)),
            _ => {}
        }
    }

    /// When our line `id` was read as delivered, if it was.
    pub fn delivered_at(&self, id: u64) -> Option<std::time::Instant> {
        self.delivered
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, at)| *at)
    }

    /// Reads one update, failing the test (naming `what` it waited for)
    /// at `deadline`, or if the driver stops.
    pub async fn next(&mut self, what: &str, deadline: tokio::time::Instant) {
        match tokio::time::timeout_at(deadline, self.up.recv()).await {
            Ok(Some(Update::Stopped { reason })) => {
                panic!("stopped while waiting for {what}: {reason}")
            }
            Ok(Some(u)) => self.keep(u),
            Ok(None) => panic!("driver ended while waiting for {what}"),
            Err(_) => panic!(
                "timed out waiting for {what}; seen {:?}; files {:?}",
                self.seen, self.files
            ),
        }
    }

    /// Waits (up to [`WAIT`]) for an event matching `pred`, seen before
    /// or arriving now.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(e) = self.seen.iter().find(|e| pred(e)) {
                return e.clone();
            }
            self.next(what, deadline).await;
        }
    }

    /// Waits (up to `wait`) for a file update matching `pred`.
    pub async fn expect_file(
        &mut self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&FileUpdate) -> bool,
    ) -> FileUpdate {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(f) = self.files.iter().find(|f| pred(f)) {
                return f.clone();
            }
            self.next(what, deadline).await;
        }
    }

    /// Collects what arrives during `d` (frames in flight, late events).
    pub async fn settle(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(u)) = tokio::time::timeout_at(deadline, self.up.recv()).await {
            self.keep(u);
        }
    }

    /// Hands a request (or an engine command) to the driver.
    pub async fn send(&self, req: impl Into<Request>) {
        self.cmd.send(req.into()).await.unwrap();
    }

    /// Says `text` to the room.
    pub async fn say(&self, text: &str) {
        self.send(common::engine::Command::Send(text.into())).await;
    }

    /// The room messages seen, in order.
    pub fn texts(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Message { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Waits (up to [`WAIT`]) for a warning of the runtime itself (not
    /// the engine's) matching `pred`, seen before or arriving now.
    pub async fn expect_local_warning(
        &mut self,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(w) = self.local_warnings.iter().find(|w| pred(w)) {
                return w.clone();
            }
            self.next(what, deadline).await;
        }
    }

    /// The engine's warnings seen, in order.
    pub fn warnings(&self) -> Vec<Warning> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Warning(w) => Some(w.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Matches an epoch of `n` members.
pub fn epoch_with(n: usize) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Epoch { members, .. } if members.len() == n)
}

/// A relay on 127.0.0.1 at `port`, pinned to the certificate whose SHA-256
/// is `fingerprint` (hex), as `relay::testing::TestRelay` reports them.
pub fn local_endpoint(port: u16, fingerprint: &str) -> RelayEndpoint {
    RelayEndpoint {
        host: Host::V4(std::net::Ipv4Addr::LOCALHOST),
        port,
        cert: fingerprint.parse().unwrap(),
    }
}

/// File settings for a test: `dir` for downloads, a size limit, the size
/// saved without asking, and the default pace (as fast as the relay takes
/// the chunks).
pub fn files_in(dir: &Path, max_size: u64, auto_accept: u64) -> FileOptions {
    FileOptions {
        download_dir: dir.to_path_buf(),
        max_size,
        auto_accept,
        rate: None,
    }
}

/// An admin engine for `room` with test key `key`, admin name "boss",
/// no automatic rekeys and no kept state.
pub fn admin_engine(
    room: RoomId,
    room_name: &str,
    key: usize,
    password: Option<&str>,
    roster: HashSet<Fingerprint>,
) -> Engine {
    let cfg = AdminConfig {
        room,
        room_name: room_name.into(),
        admin_name: "boss".into(),
        password: password.map(|p| Zeroizing::new(p.into())),
        roster,
        rekey_after_messages: 0,
        rekey_after_ms: 0,
        state: Default::default(),
    };
    Engine::Admin(Box::new(Admin::new(cfg, shared(key))))
}

/// A member engine for `room` (admin pinned by `admin`) with test key
/// `key`, asking to join as `name`.
pub fn member_engine(
    room: RoomId,
    admin: Fingerprint,
    name: &str,
    key: usize,
    password: Option<&str>,
) -> Engine {
    let cfg = MemberConfig {
        room,
        admin_pin: admin,
        name: name.into(),
        password: password.map(|p| Zeroizing::new(p.to_string())),
        min_run: 0,
    };
    Engine::Member(Box::new(Member::new(cfg, shared(key))))
}
