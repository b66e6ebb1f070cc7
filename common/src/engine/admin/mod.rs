//! The admin role: announce the room, receive join requests sealed to a
//! per-run X25519 key (never RSA-decrypting a stranger's bytes), approve by
//! hand, by roster file or by password proof, and start a new epoch — fresh
//! key, one signed message with every wrap, sealed roster — on every
//! membership change, on request and periodically.
//!
//! This file holds the configuration, the kept state and the dispatch of
//! frames, commands and ticks; `joins.rs` the join requests, `epochs.rs`
//! the announcements, beacons and new epochs.

mod epochs;
mod joins;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{
    envelope, error, warning, Action, Command, Core, Dropped, EpochState, Event, Randomness,
    Warning,
};
use crate::crypto::password::{
    password_check, password_check_matches, password_key, verify_password_proof,
};
use crate::crypto::seal::{open, seal, SessionKey};
use crate::crypto::{DhSecret, PrivateKey, PublicKey};
use crate::ids::{Fingerprint, RoomId};
use serde::{Deserialize, Serialize};

use crate::wire::{
    aad, context, decode_payload, Announce, Beacon, ConnId, Content, DhKey, Envelope, EpochBody,
    EpochCause, JoinInfo, JoinRequest, KeyWrap, Notice, NoticeKind, RelayFrame, Roster,
    RosterEntry, RosterPart, RosterPartHeader, Signed,
};

/// Plaintext bytes of roster per part (a 1,000-member roster needs 3).
pub const ROSTER_PART: usize = 192 * 1024;
/// Join requests the admin opens per second, at most (the rest are dropped
/// with a warning): bounds the work a stranger can cause.
pub const JOIN_REQUESTS_PER_SECOND: u32 = 20;
/// Knocks answered per second, at most.
pub const KNOCKS_PER_SECOND: u32 = 50;
/// Requests waiting for a decision, at most.
pub const MAX_PENDING: usize = 256;

/// Join-request ephemeral keys remembered against replays: more than an
/// hour of requests at the admin's whole budget, so a relay cannot flush a
/// recorded request out of the set within the hour.
const SEEN_REQUESTS: usize = 80_000;
const _: () = assert!(SEEN_REQUESTS as u64 > JOIN_REQUESTS_PER_SECOND as u64 * 3600);

/// Someone the admin removed: they come back only when the admin approves
/// them by hand (or lifts the ban). Kept with the admin's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// Their key's fingerprint.
    pub fingerprint: Fingerprint,
    /// The name they had in the room (cleaned).
    pub name: String,
    /// When they were removed (admin clock, ms since 1970).
    pub at_ms: u64,
}

/// What the admin keeps for a room across restarts (the driver stores it
/// sealed beside the admin's identity): the run number, the bans, and the
/// passwords removed members knew.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminState {
    /// This run's number; the next run takes a larger one
    /// ([`AdminState::next_run`]).
    pub run: u64,
    /// Removed members.
    pub bans: Vec<Ban>,
    /// A check value of each room password in use when someone was removed
    /// (HMAC of its PBKDF2 key, never the password), oldest first, at most
    /// [`MAX_COMPROMISED`]: a password matching any of them approves
    /// nobody, now or after a restart, and cannot be set again.
    #[serde(deserialize_with = "crate::wire::bounded::vec")]
    pub compromised: Vec<[u8; 32]>,
}

/// Password check values kept in [`AdminState::compromised`].
pub const MAX_COMPROMISED: usize = 256;

impl std::fmt::Debug for AdminState {
    /// The bans and the run; the password check values only counted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("run", &self.run)
            .field("bans", &self.bans)
            .field("compromised", &self.compromised.len())
            .finish()
    }
}

impl AdminState {
    /// The number of the run that follows: larger than the last one kept
    /// and than the clock (milliseconds since 1970), so that a lost state
    /// file still gives a larger number than any earlier run.
    pub fn next_run(&self, now_ms: u64) -> u64 {
        self.run.saturating_add(1).max(now_ms)
    }
}

/// Most bans kept (the oldest go first).
pub const MAX_BANS: usize = 4096;

/// How the admin decides on join requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalPolicy {
    /// Approved by hand (after comparing the safety code).
    Manual,
    /// The fingerprint is on the roster file.
    Roster,
    /// The member proved the room password.
    Password,
    /// The member was approved earlier in this session and came back.
    Returning,
}

/// The admin's settings.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub struct AdminConfig {
    /// The room.
    pub room: RoomId,
    /// The room's name (travels only inside sealed rosters).
    pub room_name: String,
    /// The admin's display name.
    pub admin_name: String,
    /// The room password for automatic approval, if any.
    pub password: Option<Zeroizing<String>>,
    /// Fingerprints approved automatically.
    pub roster: HashSet<Fingerprint>,
    /// Start a new epoch after this many messages (0: never).
    pub rekey_after_messages: u64,
    /// Start a new epoch after this long, in ms (0: never).
    pub rekey_after_ms: u64,
    /// What was kept from earlier runs, with `run` already set to this
    /// run's number (larger than every earlier one).
    pub state: AdminState,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("room", &self.room)
            .field("password", &self.password.as_ref().map(|_| ".."))
            .field("roster", &self.roster.len())
            .finish_non_exhaustive()
    }
}

#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
struct Seat {
    name: String,
    key: PublicKey,
    dh_key: DhKey,
    conn: ConnId,
    /// The join request that seated it (named in its wraps).
    request: DhKey,
    /// The first epoch it is in (named in its wraps).
    since: u64,
    /// The key's seat before this one in this run, if any: (first, last).
    before: (u64, u64),
}

/// Seats that ended in this run, remembered at most (oldest forgotten).
const ENDED_SEATS: usize = 4096;

#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
struct PendingJoin {
    conn: ConnId,
    name: String,
    key: PublicKey,
    dh_key: DhKey,
    ephemeral: DhKey,
}

/// Whether the password with PBKDF2 key `k` is one a removed member knew.
fn compromised(state: &AdminState, k: &[u8; 32], room: &RoomId) -> bool {
    // Every entry is checked (no early exit): the time taken does not say
    // which one matched.
    state.compromised.iter().fold(false, |hit, check| {
        password_check_matches(k, room, check) | hit
    })
}

/// A simple per-second counter.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
struct Window {
    second: u64,
    count: u32,
    limit: u32,
}

impl Window {
    fn new(limit: u32) -> Self {
        Window {
            second: 0,
            count: 0,
            limit,
        }
    }

    fn allow(&mut self, now_ms: u64) -> bool {
        let s = now_ms / 1000;
        if s != self.second {
            self.second = s;
            self.count = 0;
        }
        self.count += 1;
        self.count <= self.limit
    }
}

/// The admin engine.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub struct Admin {
    pub(crate) core: Core,
    cfg: AdminConfig,
    join_secret: DhSecret,
    join_key: DhKey,
    password_key: Option<Zeroizing<[u8; 32]>>,
    seats: Vec<Seat>,
    approved: HashSet<Fingerprint>,
    pending: BTreeMap<u32, PendingJoin>,
    next_pending: u32,
    epoch: u64,
    epoch_started_ms: u64,
    messages_in_epoch: u64,
    joins: Window,
    knocks: Window,
    /// The same budgets per connection (forgotten when it leaves).
    per_conn: std::collections::HashMap<ConnId, ConnBudget>,
    /// What is kept across runs: the run number, the removed members (only
    /// a decision by hand lets them back in), the password suspension.
    state: AdminState,
    /// `state` changed since the driver last took it.
    state_dirty: bool,
    /// Password approval is off: someone was removed while this password
    /// was in use.
    password_suspended: bool,
    /// The last beacon: its number and when it went out.
    beacon_seq: u64,
    beacon_ms: u64,
    /// Ephemeral keys of join requests already opened in this run (a
    /// replayed request is dropped), oldest first for eviction.
    seen_requests: HashSet<DhKey>,
    /// Seats that ended in this run: (key, (first epoch, last epoch)).
    ended_seats: std::collections::VecDeque<(Fingerprint, (u64, u64))>,
    seen_order: std::collections::VecDeque<DhKey>,
    /// Wrong password proofs, per key and in all.
    password_failures: std::collections::HashMap<Fingerprint, u32>,
    password_failures_total: u32,
}

/// What one connection may ask of the admin.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
struct ConnBudget {
    joins: Window,
    knocks: Window,
}

/// Join requests and knocks one connection may send per second.
const JOINS_PER_CONN: u32 = 2;
const KNOCKS_PER_CONN: u32 = 5;
/// Connections tracked at once (beyond that the oldest budgets reset).
const MAX_TRACKED_CONNS: usize = 4096;

/// Wrong passwords after which a key can only be approved by hand.
const PASSWORD_TRIES_PER_KEY: u32 = 5;
/// Wrong passwords after which password approval is off for this run.
const PASSWORD_TRIES_TOTAL: u32 = 100;

impl Admin {
    /// An admin engine for `cfg`, signing with `me`, drawing from the OS
    /// CSPRNG. A fresh X25519 join key is made for this run; the password
    /// key is derived now.
    pub fn new(cfg: AdminConfig, me: Arc<PrivateKey>) -> Self {
        Self::with_rng(cfg, me, Randomness::os())
    }

    /// [`Admin::new`] drawing every random byte from `rng`.
    pub fn with_rng(mut cfg: AdminConfig, me: Arc<PrivateKey>, mut rng: Randomness) -> Self {
        let join_secret = DhSecret::generate(&mut rng);
        let join_key = join_secret.public();
        let password_key = cfg
            .password
            .as_ref()
            .map(|p| password_key(p.as_bytes(), &cfg.room));
        let state = std::mem::take(&mut cfg.state);
        let password_suspended = password_key
            .as_ref()
            .is_some_and(|k| compromised(&state, k, &cfg.room));
        Admin {
            core: Core {
                // Every epoch of the run is the admin's: a gap in any is told.
                held_from: 1,
                ..Core::new(cfg.room, me, rng)
            },
            cfg,
            join_secret,
            join_key,
            password_key,
            seats: Vec::new(),
            approved: HashSet::new(),
            pending: BTreeMap::new(),
            next_pending: 1,
            epoch: 0,
            epoch_started_ms: 0,
            messages_in_epoch: 0,
            joins: Window::new(JOIN_REQUESTS_PER_SECOND),
            knocks: Window::new(KNOCKS_PER_SECOND),
            per_conn: std::collections::HashMap::new(),
            state,
            state_dirty: false,
            password_suspended,
            beacon_seq: 0,
            beacon_ms: 0,
            seen_requests: HashSet::new(),
            ended_seats: std::collections::VecDeque::new(),
            seen_order: std::collections::VecDeque::new(),
            password_failures: std::collections::HashMap::new(),
            password_failures_total: 0,
        }
    }

    /// The hello.
    pub fn on_connected(&mut self, _now_ms: u64) -> Vec<Action> {
        self.core.conn_id = None;
        self.core.outbox_reconnected();
        vec![self.core.hello()]
    }

    /// Sends what waits in the outbox, if sending is allowed now (room
    /// lines count towards a rekey as any other).
    fn flush(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        // One line at a time: a rekey after N messages comes after the
        // Nth, not after a whole burst of lines sent again.
        for _ in 0..super::MAX_OUTBOX {
            if self.core.flush_outbox(now_ms, 1, out) == 0 {
                break;
            }
            self.count_message(now_ms, out);
        }
    }

    /// What must be kept across restarts, if it changed since the last
    /// call: the driver stores it (sealed) before it goes on.
    pub fn take_state(&mut self) -> Option<AdminState> {
        std::mem::take(&mut self.state_dirty).then(|| self.state.clone())
    }

    /// Whether approval by password is off since a removal (until a new
    /// password is set).
    pub fn password_suspended(&self) -> bool {
        self.password_suspended
    }

    fn is_banned(&self, fp: &Fingerprint) -> bool {
        self.state.bans.iter().any(|b| b.fingerprint == *fp)
    }

    /// Lifts `fp`'s ban, if any; the new list goes out as an event (the
    /// window's Banned list follows it).
    fn unban(&mut self, fp: &Fingerprint, out: &mut Vec<Action>) -> bool {
        let before = self.state.bans.len();
        self.state.bans.retain(|b| b.fingerprint != *fp);
        let lifted = self.state.bans.len() != before;
        self.state_dirty |= lifted;
        if lifted {
            out.push(Action::Event(Event::Bans(self.state.bans.clone())));
        }
        lifted
    }

    /// Seats a member directly, without a join request or a new epoch: for
    /// benchmarks of large rooms only (feature `test-support`).
    #[cfg(feature = "test-support")]
    pub fn seat_for_benchmark(&mut self, name: &str, key: PublicKey, dh_key: DhKey) {
        self.approved.insert(key.fingerprint());
        self.seats.push(Seat {
            name: name.into(),
            key,
            dh_key,
            conn: 0,
            request: [0; 32],
            since: self.epoch + 1,
            before: (0, 0),
        });
    }

    /// Requests waiting for a decision: (id, name, fingerprint).
    pub fn pending(&self) -> Vec<(u32, String, Fingerprint)> {
        self.pending
            .iter()
            .map(|(id, p)| (*id, p.name.clone(), p.key.fingerprint()))
            .collect()
    }

    /// A frame from the relay.
    pub fn handle_frame(&mut self, now_ms: u64, frame: RelayFrame) -> Vec<Action> {
        let mut out = Vec::new();
        match frame {
            RelayFrame::Welcome(w) => {
                if !self.core.welcome(&w, &mut out) {
                    return out;
                }
                // Announce first, so members already in the room know the
                // admin before its epoch message arrives.
                self.announce(now_ms, None, None, &mut out);
                // A new connection: earlier connection ids mean nothing now.
                // Members reconnect and rejoin (approved again automatically).
                if !self.seats.is_empty() {
                    for seat in std::mem::take(&mut self.seats) {
                        self.seat_ended(&seat);
                    }
                    self.pending.clear();
                    self.new_epoch(now_ms, EpochCause::Rekey, &mut out);
                } else if self.epoch == 0 {
                    self.new_epoch(now_ms, EpochCause::Opened, &mut out);
                }
            }
            RelayFrame::Deliver { from, payload } => {
                match envelope(&payload, self.core.max_frame) {
                    Ok(env) => self.on_envelope(now_ms, from, env, &mut out),
                    Err(w) => out.push(warning(w)),
                }
            }
            RelayFrame::PeerJoined(_) => {}
            RelayFrame::PeerLeft(id) => {
                self.per_conn.remove(&id);
                self.pending.retain(|_, p| p.conn != id);
                if let Some(i) = self.seats.iter().position(|s| s.conn == id) {
                    let seat = self.seats.remove(i);
                    self.seat_ended(&seat);
                    self.new_epoch(now_ms, EpochCause::Left(seat.key.fingerprint()), &mut out);
                }
            }
            RelayFrame::Ack(a) => self.core.on_ack(a, &mut out),
            f @ (RelayFrame::Ping(_) | RelayFrame::Pong(_) | RelayFrame::Error(_)) => {
                super::relay_control(&f, &mut out)
            }
        }
        self.flush(now_ms, &mut out);
        out
    }

    /// A user command.
    pub fn handle_command(&mut self, now_ms: u64, cmd: Command) -> Vec<Action> {
        let mut out = Vec::new();
        match cmd {
            Command::Send(text) => {
                self.core.write_line(now_ms, None, text, &mut out);
            }
            Command::Private(to, text) => {
                self.core.write_line(now_ms, Some(to), text, &mut out);
            }
            Command::Typing(on) => {
                if self.core.can_send(now_ms) {
                    self.core
                        .send_content(now_ms, Content::Typing(on), &mut out);
                }
            }
            Command::Leave => {
                self.notice(
                    None,
                    None,
                    NoticeKind::Closed,
                    "the admin closed the room",
                    None,
                    &mut out,
                );
                self.core.leaving("you closed the room");
                return out;
            }
            Command::Approve(id) => match self.pending.remove(&id) {
                Some(p) => {
                    // A decision by hand lifts a ban.
                    self.unban(&p.key.fingerprint(), &mut out);
                    self.seat(now_ms, p, None, &mut out)
                }
                None => out.push(error(format!("no pending request {id}"))),
            },
            // Reasons typed by the admin stay local: notices cross the relay
            // in clear (signed, not sealed), so they carry fixed text only.
            Command::Deny(id, _reason) => match self.pending.remove(&id) {
                Some(p) => {
                    let target = Some(p.key.fingerprint());
                    self.notice(
                        Some(p.conn),
                        target,
                        NoticeKind::Denied,
                        "denied by the admin",
                        Some(p.ephemeral),
                        &mut out,
                    );
                }
                None => out.push(error(format!("no pending request {id}"))),
            },
            Command::Kick(fp, _reason) => {
                match self.seats.iter().position(|s| s.key.fingerprint() == fp) {
                    Some(i) => {
                        let seat = self.seats.remove(i);
                        self.seat_ended(&seat);
                        self.approved.remove(&fp);
                        self.core.note_removed(fp, &mut out);
                        self.ban(now_ms, fp, seat.name, &mut out);
                        self.notice(
                            None,
                            Some(fp),
                            NoticeKind::Kicked,
                            "removed by the admin",
                            None,
                            &mut out,
                        );
                        self.new_epoch(now_ms, EpochCause::Kicked(fp), &mut out);
                    }
                    None => {
                        // Not in the room now (offline, or waiting for a
                        // decision): banned all the same, so that coming
                        // back is not automatic.
                        let pending = self
                            .pending
                            .values()
                            .find(|p| p.key.fingerprint() == fp)
                            .map(|p| p.name.clone());
                        // A key not seen in this run (approved before a
                        // restart, by hand or the password) is banned too:
                        // the admin's word, said back so a typo shows.
                        if !(self.approved.contains(&fp)
                            || pending.is_some()
                            || self.cfg.roster.contains(&fp))
                        {
                            out.push(warning(Warning::BannedUnseen { who: fp.short() }));
                        }
                        self.approved.remove(&fp);
                        self.pending.retain(|_, p| p.key.fingerprint() != fp);
                        let name = pending.unwrap_or_else(|| format!("({})", fp.short()));
                        self.ban(now_ms, fp, name, &mut out);
                    }
                }
            }
            Command::Rekey => {
                self.new_epoch(now_ms, EpochCause::Rekey, &mut out);
            }
            Command::ListBans => out.push(Action::Event(Event::Bans(self.state.bans.clone()))),
            Command::Unban(fp) => {
                if self.unban(&fp, &mut out) {
                    self.approved.remove(&fp);
                } else {
                    out.push(error(format!("{} is not banned", fp.short())));
                }
            }
            Command::SetPassword(p) => self.set_password(now_ms, p, &mut out),
            file => self.core.file_command(now_ms, file, &mut out),
        }
        self.flush(now_ms, &mut out);
        out
    }

    /// Time passes: periodic rekey, and the liveness beacon.
    pub fn handle_tick(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let t = self.cfg.rekey_after_ms;
        if self.epoch > 0 && t > 0 && now_ms.saturating_sub(self.epoch_started_ms) >= t {
            self.new_epoch(now_ms, EpochCause::Periodic, &mut out);
        }
        // A clock that stepped back makes the beacon due, not late.
        let since = now_ms.wrapping_sub(self.beacon_ms);
        if now_ms < self.beacon_ms || since >= super::BEACON_EVERY_MS {
            self.beacon(now_ms, &mut out);
        }
        self.core.outbox_tick(now_ms, &mut out);
        self.flush(now_ms, &mut out);
        out
    }

    /// Removes `fp` for good: banned (kept across restarts), and approval
    /// by the current password stops until a new one is set.
    fn ban(&mut self, now_ms: u64, fp: Fingerprint, name: String, out: &mut Vec<Action>) {
        self.state.bans.retain(|b| b.fingerprint != fp);
        if self.state.bans.len() >= MAX_BANS {
            self.state.bans.remove(0);
        }
        self.state.bans.push(Ban {
            fingerprint: fp,
            name,
            at_ms: now_ms,
        });
        out.push(Action::Event(Event::Bans(self.state.bans.clone())));
        if let Some(k) = &self.password_key {
            if !compromised(&self.state, k, &self.cfg.room) {
                if self.state.compromised.len() >= MAX_COMPROMISED {
                    self.state.compromised.remove(0);
                }
                self.state
                    .compromised
                    .push(password_check(k, &self.cfg.room));
            }
            if !self.password_suspended {
                self.password_suspended = true;
                out.push(warning(Warning::PasswordRevoked));
            }
        }
        self.state_dirty = true;
    }

    /// A new room password (or none): approval by password resumes, unless
    /// it is the one a removed member knew.
    fn set_password(
        &mut self,
        now_ms: u64,
        password: Option<Zeroizing<String>>,
        out: &mut Vec<Action>,
    ) {
        let key = password.map(|p| password_key(p.as_bytes(), &self.cfg.room));
        if key
            .as_ref()
            .is_some_and(|k| compromised(&self.state, k, &self.cfg.room))
        {
            out.push(error(
                "that is a password a removed member knew: choose another".into(),
            ));
            return;
        }
        self.password_key = key;
        self.password_suspended = false;
        self.password_failures.clear();
        self.password_failures_total = 0;
        // Members learn whether a password is accepted from announcements.
        self.announce(now_ms, None, None, out);
    }

    fn count_message(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        self.messages_in_epoch += 1;
        let n = self.cfg.rekey_after_messages;
        if n > 0 && self.messages_in_epoch >= n {
            self.new_epoch(now_ms, EpochCause::Periodic, out);
        }
    }

    fn on_envelope(&mut self, now_ms: u64, from: ConnId, env: Envelope, out: &mut Vec<Action>) {
        match env {
            Envelope::Knock { room, nonce } => {
                // Cheap checks first, then this connection's share, then the
                // global budget: one noisy connection cannot use it all.
                if room == self.cfg.room
                    && self.per_conn(from).knocks.allow(now_ms)
                    && self.knocks.allow(now_ms)
                {
                    self.announce(now_ms, Some(from), Some(nonce), out);
                }
            }
            Envelope::JoinRequest(req) => {
                if req.room != self.cfg.room {
                    out.push(warning(Dropped::JoinForAnotherRoom));
                } else if self.per_conn(from).joins.allow(now_ms) && self.joins.allow(now_ms) {
                    self.on_join_request(now_ms, from, &req, out);
                } else {
                    out.push(warning(Dropped::TooManyJoins));
                }
            }
            Envelope::Message(msg) => match self.core.receive_message(now_ms, &msg, out) {
                Ok((sender, body)) => {
                    let fp = sender.key.fingerprint();
                    let leaving = body.content == Content::Leave;
                    self.core
                        .show(&sender, body, msg.header.epoch, msg.header.seq, out);
                    if leaving {
                        if let Some(i) = self.seats.iter().position(|s| s.key.fingerprint() == fp) {
                            let seat = self.seats.remove(i);
                            self.seat_ended(&seat);
                            self.new_epoch(now_ms, EpochCause::Left(fp), out);
                        }
                    } else {
                        self.count_message(now_ms, out);
                    }
                }
                Err(w) => out.push(warning(w)),
            },
            Envelope::Announce(_)
            | Envelope::Epoch(_)
            | Envelope::Roster(_)
            | Envelope::Notice(_)
            | Envelope::Beacon(_) => out.push(warning(Dropped::AdminOnly { conn: from })),
            Envelope::Private(pm) => self.core.on_private(now_ms, &pm, out),
            Envelope::FileChunk(chunk) => self.core.on_chunk(now_ms, &chunk, out),
            Envelope::PrivateChunk(chunk) => self.core.on_private_chunk(now_ms, &chunk, out),
        }
    }
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("room", &self.cfg.room)
            .field("epoch", &self.epoch)
            .field("members", &self.seats.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}
