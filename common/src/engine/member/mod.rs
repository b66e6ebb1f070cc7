//! The member role: verify the admin against the invite pin, ask to join
//! (sealed to the admin's X25519 key, never to its RSA key), accept only
//! epochs signed by the pinned admin, and chat.
//!
//! This file holds the configuration, the state and the dispatch of
//! frames, commands and ticks; `join.rs` the way in, `epochs.rs` taking new
//! epochs and their rosters.

mod epochs;
mod join;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{
    envelope, error, warning, Action, Command, Core, Dropped, EpochState, Event, Randomness,
    Warning,
};
use crate::crypto::password::{password_key, password_proof};
use crate::crypto::seal::{open, seal, SessionKey};
use crate::crypto::{DhSecret, PrivateKey, PublicKey, VerifiedEpoch};
use crate::ids::{Fingerprint, RoomId};
use crate::wire::{
    context, decode_payload, encode_payload, Announce, Beacon, ConnId, Content, DhKey, Envelope,
    JoinInfo, JoinRequest, Notice, NoticeKind, RelayFrame, Roster, RosterPart, Signed,
};

/// Seconds between knocks while no admin has answered.
const KNOCK_EVERY_MS: u64 = 5_000;
/// Knocks prompted by the room (a peer joined, an announcement that is not
/// an answer to ours) come at most this often: a burst of joins (a room's
/// peers on another relay arriving at once) makes one knock, not one each.
const KNOCK_GAP_MS: u64 = 250;
/// Our last knocks on this connection: an answer to any of them is fresh
/// (answers to an older knock must not set off yet another), but only an
/// answer to the latest may switch admin runs, and each is used once.
const KNOCKS_KEPT: usize = 4;
/// Join requests of this run remembered: an epoch must name one of them.
const REQUESTS_KEPT: usize = 16;
/// A clock-gap measure older than this is replaced by the next one.
const CLOCK_GAP_FOR_MS: u64 = 60_000;
/// A join request unanswered for this long is sent again; a newer epoch
/// not received for this long makes us ask to be seated again.
const REQUEST_AGAIN_MS: u64 = 15_000;
/// Roster parts kept for an epoch whose key has not arrived yet.
const MAX_EARLY_PARTS: usize = 64;
/// Bytes of roster parts kept for an epoch whose key has not arrived yet
/// (they are unauthenticated until it does).
const MAX_EARLY_BYTES: usize = 2 << 20;

/// What a member needs to join.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub struct MemberConfig {
    /// The room (from the invite).
    pub room: RoomId,
    /// The admin's fingerprint (from the invite).
    pub admin_pin: Fingerprint,
    /// The display name to ask for.
    pub name: String,
    /// The room password, if the member knows it.
    pub password: Option<Zeroizing<String>>,
    /// The highest admin run this member held in this room before (kept
    /// with its history): runs numbered below it are never adopted.
    pub min_run: u64,
}

impl std::fmt::Debug for MemberConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberConfig")
            .field("room", &self.room)
            .field("admin_pin", &self.admin_pin)
            .field("password", &self.password.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// Where the admin of our run is now: its connection.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
struct AdminView {
    conn: ConnId,
}

/// The admin run we hold: its join key (which its epochs and notices
/// name) and its number.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Run {
    join_key: DhKey,
    number: u64,
}

#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
struct PendingEpoch {
    epoch: u64,
    key: SessionKey,
    /// The signed SHA-256 of each part.
    hashes: Vec<[u8; 32]>,
    parts: Vec<Option<Vec<u8>>>,
    /// When we sent the join request it answers.
    request_at: u64,
    /// It answers a request sent on this connection: installing it seats us.
    seats_here: bool,
    /// The first epoch of the seat (from our wrap): ours to hold from it on.
    since: u64,
    /// Our seat before this one, if it ended: (first, last epoch).
    before: (u64, u64),
    /// The closing count of the epoch before, and when the admin made it.
    closing: Vec<(u32, u64)>,
    sent_at_ms: u64,
}

/// The member engine.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub struct Member {
    pub(crate) core: Core,
    cfg: MemberConfig,
    password_key: Option<Zeroizing<[u8; 32]>>,
    knock: Option<([u8; 16], u64)>,
    /// Our last [`KNOCKS_KEPT`] knocks on this connection (nonce, when sent),
    /// newest last.
    knocks: Vec<([u8; 16], u64)>,
    /// How far the admin's clock can be ahead of ours, at most (ms): the
    /// smallest `answer.sent_at_ms − knock sent` over our answered knocks
    /// (an answer is made after its knock). A beacon stamped `t` by the
    /// admin was made at `t − clock_gap` or later on our clock, however
    /// long the relay held it.
    clock_gap: Option<(i128, u64)>,
    /// When our pending join request went out (re-sent if unanswered).
    request_at: u64,
    /// Since when we have known of a newer epoch we do not hold.
    behind_since: Option<u64>,
    /// Join requests sent on this connection: only an epoch naming one of
    /// them seats us on it.
    conn_requests: Vec<DhKey>,
    /// A knock the room prompted within [`KNOCK_GAP_MS`] of the last: sent
    /// at the next tick after the gap.
    knock_soon: bool,
    admin: Option<AdminView>,
    /// The admin's key, once an announcement signed by it verified against
    /// the pin: notices, epochs and beacons are checked against it even
    /// while we do not know where the admin is.
    admin_key: Option<PublicKey>,
    /// Our join request on this connection still waiting for an answer.
    request: Option<DhKey>,
    /// Every join request we sent in this run (ephemeral key, when), newest
    /// last: an epoch is accepted only if it names one of them.
    requests: Vec<(DhKey, u64)>,
    min_epoch: u64,
    pending: Option<PendingEpoch>,
    early_parts: Vec<RosterPart>,
    verified_once: bool,
    /// The admin run our epochs come from.
    run: Option<Run>,
    /// The highest run number held, now or before (never goes down).
    run_floor: u64,
    /// The last beacon of our run accepted.
    beacon_seq: u64,
    /// A warning about a silent admin was shown for this silence.
    stale_warned: bool,
    /// We left the room: nothing brings us back in.
    left: bool,
}

impl Member {
    /// A member engine for `cfg`, signing with `me`, drawing from the OS
    /// CSPRNG. Derives the password key now if a password is given
    /// (600,000 PBKDF2 rounds).
    pub fn new(cfg: MemberConfig, me: Arc<PrivateKey>) -> Self {
        Self::with_rng(cfg, me, Randomness::os())
    }

    /// [`Member::new`] drawing every random byte from `rng`.
    pub fn with_rng(cfg: MemberConfig, me: Arc<PrivateKey>, rng: Randomness) -> Self {
        let password_key = cfg
            .password
            .as_ref()
            .map(|p| password_key(p.as_bytes(), &cfg.room));
        let run_floor = cfg.min_run;
        let mut core = Core::new(cfg.room, me, rng);
        // Seated only once an epoch answering our own request arrives.
        core.seated = false;
        Member {
            core,
            cfg,
            password_key,
            knock: None,
            knocks: Vec::new(),
            clock_gap: None,
            request_at: 0,
            behind_since: None,
            conn_requests: Vec::new(),
            knock_soon: false,
            admin: None,
            admin_key: None,
            request: None,
            requests: Vec::new(),
            min_epoch: 0,
            pending: None,
            early_parts: Vec::new(),
            verified_once: false,
            run: None,
            run_floor,
            beacon_seq: 0,
            stale_warned: false,
            left: false,
        }
    }

    /// The highest admin run this member has held: the driver keeps it
    /// with the room's history and gives it back as
    /// [`MemberConfig::min_run`] after a restart.
    pub fn run_floor(&self) -> u64 {
        self.run_floor
    }

    /// Never adopt an admin run below `floor` (kept from before a restart).
    pub fn raise_run_floor(&mut self, floor: u64) {
        self.run_floor = self.run_floor.max(floor);
    }

    /// Whether we hold the key of the current epoch.
    pub fn joined(&self) -> bool {
        self.core.current.is_some()
    }

    /// The hello.
    pub fn on_connected(&mut self, _now_ms: u64) -> Vec<Action> {
        // A new connection: the relay forgot us, and the admin may have moved.
        self.admin = None;
        self.knock = None;
        self.knocks.clear();
        self.knock_soon = false;
        self.request = None;
        self.conn_requests.clear();
        self.core.seated = false;
        self.core.conn_id = None;
        self.core.outbox_reconnected();
        vec![self.core.hello()]
    }

    /// Sends what waits in the outbox, if sending is allowed now.
    fn flush(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        if !self.left {
            self.core.flush_outbox(now_ms, u64::MAX, out);
        }
    }

    /// A frame from the relay.
    pub fn handle_frame(&mut self, now_ms: u64, frame: RelayFrame) -> Vec<Action> {
        let mut out = Vec::new();
        match frame {
            RelayFrame::Welcome(w) => {
                if self.core.welcome(&w, &mut out) {
                    self.send_knock(now_ms, &mut out);
                }
            }
            RelayFrame::Deliver { from, payload } => {
                match envelope(&payload, self.core.max_frame) {
                    Ok(env) => self.on_envelope(now_ms, from, env, &mut out),
                    Err(w) => out.push(warning(w)),
                }
            }
            RelayFrame::PeerJoined(_) => {
                if self.admin.is_none() {
                    self.knock_prompted(now_ms, &mut out);
                }
            }
            RelayFrame::PeerLeft(id) => {
                if self.admin.as_ref().is_some_and(|a| a.conn == id) {
                    // The admin lets every seat go when its connection
                    // ends: we will have to ask again.
                    self.admin = None;
                    self.request = None;
                    self.core.seated = false;
                    out.push(warning(Warning::AdminDisconnected));
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
                if self.core.can_send(now_ms) {
                    // In the bulk lane, behind our file chunks still on
                    // their way: a goodbye that overtook them would end our
                    // membership before the files' last chunks arrive.
                    let mut said = Vec::new();
                    self.core.send_content(now_ms, Content::Leave, &mut said);
                    let sent = &mut self.core.outbox.published;
                    out.extend(said.into_iter().map(|a| match a {
                        Action::Send(crate::wire::ClientFrame::Publish { to, payload }) => {
                            sent.publish -= 1;
                            sent.bulk += 1;
                            Action::Send(crate::wire::ClientFrame::PublishBulk { to, payload })
                        }
                        a => a,
                    }));
                }
                self.core.leaving("you left the room");
                self.left = true;
            }
            Command::Approve(_)
            | Command::Deny(..)
            | Command::Kick(..)
            | Command::Rekey
            | Command::ListBans
            | Command::Unban(_)
            | Command::SetPassword(_) => out.push(error("only the admin can do that".into())),
            file => self.core.file_command(now_ms, file, &mut out),
        }
        self.flush(now_ms, &mut out);
        out
    }

    /// Time passes: knock again while no admin has answered; say so once
    /// when the admin has been silent too long to send safely.
    pub fn handle_tick(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.left {
            return out;
        }
        // Our clock stepped back past the admin's last word: it proves
        // nothing now (measure again by knocking).
        if self.core.heard_ms.is_some_and(|h| h > now_ms) {
            self.core.heard_ms = Some(0);
            self.clock_gap = None;
        }
        // A join request lost on the way (or its answer): ask again.
        let asking_long = now_ms < self.request_at || now_ms - self.request_at >= REQUEST_AGAIN_MS;
        if self.admin.is_some() && !self.core.seated && self.request.is_some() && asking_long {
            self.request = None;
            self.send_join_request(now_ms, &mut out);
        }
        // A newer epoch that never reaches us (dropped, or the admin let
        // our seat go and that epoch was lost): ask to be seated again.
        match (self.core.behind, self.behind_since) {
            (Some(_), None) => self.behind_since = Some(now_ms),
            (None, _) => self.behind_since = None,
            (Some(_), Some(since)) => {
                if self.core.seated
                    && self.admin.is_some()
                    && (now_ms < since || now_ms - since >= REQUEST_AGAIN_MS)
                {
                    self.behind_since = Some(now_ms);
                    self.core.seated = false;
                    self.core.held_from = u64::MAX;
                    self.request = None;
                    out.push(warning(Warning::KeyNeverArrived));
                    self.send_join_request(now_ms, &mut out);
                }
            }
        }
        let silent = self.joined()
            && self.core.seated
            && self
                .core
                .heard_ms
                .is_some_and(|at| now_ms.saturating_sub(at) > super::BEACON_STALE_MS);
        if silent && !self.stale_warned {
            self.stale_warned = true;
            out.push(warning(Warning::AdminSilent {
                secs: super::BEACON_STALE_MS / 1000,
            }));
        }
        // Silent: knock now and then, which also measures the admin's clock
        // again (it may have been set back).
        let knock_due = self
            .knock
            .is_none_or(|(_, at)| now_ms < at || now_ms - at >= KNOCK_EVERY_MS);
        if silent && knock_due && self.core.conn_id.is_some() {
            self.send_knock(now_ms, &mut out);
        }
        let due = match self.knock {
            Some((_, at)) => {
                // A clock that stepped back makes the knock due, not late.
                let since = now_ms.saturating_sub(at);
                now_ms < at || since >= KNOCK_EVERY_MS || (self.knock_soon && since >= KNOCK_GAP_MS)
            }
            None => false,
        };
        if self.admin.is_none() && self.core.conn_id.is_some() && due {
            self.send_knock(now_ms, &mut out);
        }
        self.core.outbox_tick(now_ms, &mut out);
        self.flush(now_ms, &mut out);
        out
    }

    fn on_envelope(&mut self, now_ms: u64, from: ConnId, env: Envelope, out: &mut Vec<Action>) {
        match env {
            Envelope::Announce(signed) => self.on_announce(now_ms, from, &signed, out),
            Envelope::Epoch(signed) => self.on_epoch(now_ms, &signed, out),
            Envelope::Roster(part) => self.on_roster_part(now_ms, part, out),
            Envelope::Notice(signed) => self.on_notice(&signed, out),
            Envelope::Beacon(signed) => self.on_beacon(now_ms, &signed, out),
            Envelope::Message(msg) => match self.core.receive_message(now_ms, &msg, out) {
                Ok((sender, body)) => {
                    if body.content == Content::Leave {
                        self.on_leave(now_ms, &sender, msg.header.epoch, out);
                    }
                    self.core
                        .show(&sender, body, msg.header.epoch, msg.header.seq, out)
                }
                Err(w) => out.push(warning(w)),
            },
            // Other members knock too; join requests go to the admin only.
            Envelope::Knock { .. } | Envelope::JoinRequest(_) => {}
            Envelope::Private(pm) => self.core.on_private(now_ms, &pm, out),
            Envelope::FileChunk(chunk) => self.core.on_chunk(now_ms, &chunk, out),
            Envelope::PrivateChunk(chunk) => self.core.on_private_chunk(now_ms, &chunk, out),
        }
    }

    /// The admin's key and our run's join key, once known.
    fn admin_of_run(&self) -> Option<(&PublicKey, Run)> {
        Some((self.admin_key.as_ref()?, self.run?))
    }

    fn on_notice(&mut self, signed: &Signed, out: &mut Vec<Action>) {
        // Checked against the admin's key even while we do not know where
        // the admin is: a relay that makes the admin look gone (a replayed
        // announcement from a made-up connection) cannot hide a removal.
        let Some((key, run)) = self.admin_of_run() else {
            return;
        };
        if key
            .verify(context::NOTICE, &signed.body, &signed.signature)
            .is_err()
        {
            out.push(warning(Dropped::NoticeNotFromAdmin));
            return;
        }
        let Ok(n) = decode_payload::<Notice>(&signed.body, self.core.max_frame) else {
            out.push(warning(Dropped::MalformedNotice));
            return;
        };
        if n.room != self.cfg.room || n.join_key != run.join_key {
            out.push(warning(Dropped::NoticeFromElsewhere));
            return;
        }
        let me = self.core.me.public().fingerprint();
        let for_me = n.target.is_none_or(|t| t == me);
        let current = self.core.current.as_ref().map(|c| c.epoch).unwrap_or(0);
        match n.kind {
            NoticeKind::Denied if for_me && n.request.is_some() && n.request == self.request => {
                self.request = None;
                self.core.fail_outbox("you were not let into the room", out);
                out.push(Action::Event(Event::Denied { reason: n.reason }));
            }
            NoticeKind::Denied => {}
            NoticeKind::Kicked if !for_me => {
                // Someone was removed in the epoch after `n.epoch`: until we
                // hold that one, sending would let them read it. Measured
                // from the notice, not from what we hold, so a member behind
                // by an epoch is not freed by the one that still has them.
                let hold = n.epoch.saturating_add(1);
                // A notice from before an epoch that seats its target again
                // (a relay replaying an old kick) is stale: it must not make
                // them "removed" now.
                let stale = |t: &Fingerprint| {
                    n.epoch < current
                        && self
                            .core
                            .current
                            .as_ref()
                            .is_some_and(|c| c.members.contains_key(t))
                };
                if let Some(t) = n.target.filter(|t| !stale(t)) {
                    self.core.note_removed(t, out);
                }
                if hold > current {
                    self.core.hold_below = Some(self.core.hold_below.unwrap_or(0).max(hold));
                    if let Some(t) = n.target {
                        self.core.private_transfers_end(&t, out);
                    }
                }
            }
            NoticeKind::Kicked if for_me && n.target.is_some() => {
                if n.epoch >= current && self.joined() {
                    // Out for good in this run: no epoch up to the one
                    // without us is taken again, no request of ours stands.
                    self.min_epoch = self.min_epoch.max(n.epoch.saturating_add(2));
                    // Before the epochs are forgotten: what went out is
                    // told apart from what never did.
                    self.core.fail_outbox("you were removed from the room", out);
                    self.core.reset_epochs();
                    self.core.seated = false;
                    self.core.dh = crate::crypto::DhSecret::generate(&mut self.core.rng);
                    self.requests.clear();
                    self.conn_requests.clear();
                    self.request = None;
                    self.pending = None;
                    self.core
                        .transfers_end_all("you were removed from the room", out);
                    out.push(Action::Event(Event::Kicked { reason: n.reason }));
                }
            }
            NoticeKind::Kicked => {}
            NoticeKind::Closed => {
                self.core.fail_outbox("the admin closed the room", out);
                out.push(Action::Event(Event::Closed { reason: n.reason }))
            }
        }
    }

    /// A member said it left in `epoch`: it holds that epoch's key, so we
    /// send nothing more under it until the next epoch, or until a beacon
    /// made after we heard it still names it (the admin, who makes the
    /// next epoch on a goodbye, did not hear one: the leaver is still a
    /// member, and a goodbye sent to us alone cannot silence the room).
    fn on_leave(
        &mut self,
        now_ms: u64,
        who: &super::Participant,
        epoch: u64,
        out: &mut Vec<Action>,
    ) {
        let current = self.core.current.as_ref().map_or(0, |c| c.epoch);
        if epoch == current && current > 0 {
            self.core.leave_hold = Some((epoch.saturating_add(1), now_ms));
            out.push(warning(Warning::PausedAfterGoodbye {
                name: who.name.clone(),
            }));
        }
    }

    fn on_beacon(&mut self, now_ms: u64, signed: &Signed, out: &mut Vec<Action>) {
        let Some((key, run)) = self.admin_of_run() else {
            return;
        };
        if key
            .verify(context::BEACON, &signed.body, &signed.signature)
            .is_err()
        {
            out.push(warning(Dropped::BeaconNotFromAdmin));
            return;
        }
        let Ok(b) = decode_payload::<Beacon>(&signed.body, self.core.max_frame) else {
            out.push(warning(Dropped::MalformedBeacon));
            return;
        };
        if b.room != self.cfg.room {
            out.push(warning(Dropped::BeaconForAnotherRoom));
            return;
        }
        if b.run > run.number {
            // The admin runs anew: what we hold belongs to a run it left.
            if self.core.seated || self.admin.is_some() {
                self.admin = None;
                self.request = None;
                self.core.seated = false;
                out.push(warning(Warning::AdminRestarted));
                self.knock_prompted(now_ms, out);
            }
            return;
        }
        // Another (earlier) run's beacon, or one we have seen: a replay
        // proves nothing about now.
        if b.run != run.number || b.join_key != run.join_key || b.seq <= self.beacon_seq {
            return;
        }
        self.beacon_seq = b.seq;
        self.core
            .settle_claims(b.epoch, b.sent_at_ms, &b.lines, out);
        let current = self.core.current.as_ref().map(|c| c.epoch).unwrap_or(0);
        if b.epoch > current {
            if self.joined() && self.core.seated && self.core.behind.is_none_or(|e| e < b.epoch) {
                out.push(warning(Warning::EpochBehind {
                    room: b.epoch,
                    held: current,
                }));
            }
            self.core.behind = Some(self.core.behind.unwrap_or(0).max(b.epoch));
        } else if b.epoch == current && current > 0 {
            // Made at `sent_at_ms − clock_gap` or later on our clock, however
            // long the relay held it.
            let Some((gap, _)) = self.clock_gap else {
                return;
            };
            let made = (i128::from(b.sent_at_ms) - gap).clamp(0, i128::from(now_ms));
            let made = u64::try_from(made).unwrap_or(0);
            if self.core.heard_ms.is_none_or(|h| made > h) {
                self.core.heard_ms = Some(made);
            }
            if now_ms.saturating_sub(made) <= super::BEACON_STALE_MS {
                self.stale_warned = false;
            }
            if self.core.leave_hold.is_some_and(|(_, heard)| made > heard) {
                self.core.leave_hold = None;
            }
        }
    }
}

/// The warning for epochs `from` to `to` that were ours and never came.
fn epochs_missed(from: u64, to: u64) -> Action {
    warning(Warning::EpochsMissed { from, to })
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("room", &self.cfg.room)
            .field("joined", &self.joined())
            .finish_non_exhaustive()
    }
}
