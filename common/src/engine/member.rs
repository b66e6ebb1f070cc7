//! The member role: verify the admin against the invite pin, ask to join
//! (sealed to the admin's X25519 key, never to its RSA key), accept only
//! epochs signed by the pinned admin, and chat.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{envelope, error, warning, Action, Command, Core, EpochState, Event};
use crate::crypto::password::{password_key, password_proof};
use crate::crypto::seal::{open, seal, SessionKey};
use crate::crypto::{random_array, DhSecret, PrivateKey, PublicKey, VerifiedEpoch};
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
    /// A member engine for `cfg`, signing with `me`. Derives the password
    /// key now if a password is given (600,000 PBKDF2 rounds).
    pub fn new(cfg: MemberConfig, me: Arc<PrivateKey>) -> Self {
        let password_key = cfg
            .password
            .as_ref()
            .map(|p| password_key(p.as_bytes(), &cfg.room));
        let run_floor = cfg.min_run;
        let mut core = Core::new(cfg.room, me);
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
        vec![self.core.hello()]
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
                    out.push(warning(
                        "the admin disconnected; waiting for it to come back".into(),
                    ));
                }
            }
            f @ (RelayFrame::Ping(_) | RelayFrame::Pong(_) | RelayFrame::Error(_)) => {
                super::relay_control(&f, &mut out)
            }
        }
        out
    }

    /// A user command.
    pub fn handle_command(&mut self, now_ms: u64, cmd: Command) -> Vec<Action> {
        let mut out = Vec::new();
        match cmd {
            Command::Send(text) => {
                self.core.send_text(now_ms, text, &mut out);
            }
            Command::Private(to, text) => {
                self.core.send_private(now_ms, to, text, &mut out);
            }
            Command::Typing(on) => {
                if self.core.can_send(now_ms) {
                    self.core
                        .send_content(now_ms, Content::Typing(on), &mut out);
                }
            }
            Command::Leave => {
                if self.core.can_send(now_ms) {
                    self.core.send_content(now_ms, Content::Leave, &mut out);
                }
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
                    out.push(warning(
                        "a newer room key never reached us; asking to be seated again".into(),
                    ));
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
            out.push(warning(format!(
                "no word from the admin for over {} s: sending is paused, and what is shown may not be current",
                super::BEACON_STALE_MS / 1000
            )));
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
        out
    }

    /// A knock the room prompted: now, or at the first tick after
    /// [`KNOCK_GAP_MS`] since the last one.
    fn knock_prompted(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        match self.knock {
            Some((_, at)) if now_ms >= at && now_ms - at < KNOCK_GAP_MS => self.knock_soon = true,
            _ => self.send_knock(now_ms, out),
        }
    }

    fn send_knock(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let nonce = random_array();
        self.knock = Some((nonce, now_ms));
        if self.knocks.len() >= KNOCKS_KEPT {
            self.knocks.remove(0);
        }
        self.knocks.push((nonce, now_ms));
        self.knock_soon = false;
        self.core.publish(
            None,
            &Envelope::Knock {
                room: self.cfg.room,
                nonce,
            },
            out,
        );
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

    fn on_announce(&mut self, now_ms: u64, from: ConnId, signed: &Signed, out: &mut Vec<Action>) {
        let Ok(a) = decode_payload::<Announce>(&signed.body, self.core.max_frame) else {
            out.push(warning("malformed announcement dropped".into()));
            return;
        };
        if a.room != self.cfg.room {
            out.push(warning("announcement for another room dropped".into()));
            return;
        }
        if !crate::crypto::same_fingerprint(
            &crate::crypto::fingerprint_of(&a.admin_key),
            &self.cfg.admin_pin,
        ) {
            out.push(warning(
                "an announcement signed by a key that is not the invite's admin was rejected (impersonation attempt?)"
                    .into(),
            ));
            return;
        }
        let key = match PublicKey::from_spki_der(&a.admin_key) {
            Ok(k) => k,
            Err(e) => {
                out.push(warning(format!(
                    "announcement with an unusable admin key: {e}"
                )));
                return;
            }
        };
        if key
            .verify(context::ANNOUNCE, &signed.body, &signed.signature)
            .is_err()
        {
            out.push(warning("announcement with a bad signature dropped".into()));
            return;
        }
        let answered = a
            .answers
            .and_then(|n| self.knocks.iter().position(|(k, _)| *k == n));
        let Some(pos) = answered else {
            // Unsolicited (the admin starting) or an answer to someone
            // else's knock: it could be a replay, so it proves nothing. If we
            // have no admin, ask for a fresh one.
            // From another connection than the admin's we know: perhaps it
            // reconnected (across relays the old connection's leave can come
            // seconds later), perhaps a replay. Only a fresh answer to our
            // knock tells, so a replayed announcement costs one knock and
            // never a seat.
            if self.admin.as_ref().is_none_or(|a| a.conn != from) {
                self.knock_prompted(now_ms, out);
            }
            return;
        };
        // Each knock is answered once: a recorded answer cannot be played
        // to us again.
        let latest = pos + 1 == self.knocks.len();
        let (_, knocked_at) = self.knocks.remove(pos);
        let gap = i128::from(a.sent_at_ms) - i128::from(knocked_at);
        let same_run = self
            .run
            .is_some_and(|r| r.join_key == a.join_key && r.number == a.run);
        if !same_run {
            if a.run < self.run_floor || self.run.is_some_and(|r| a.run <= r.number) {
                out.push(warning(format!(
                    "an announcement of an earlier admin run ({}, ours is {}) rejected: replayed by the relay?",
                    a.run,
                    self.run.map_or(self.run_floor, |r| r.number)
                )));
                return;
            }
            if !latest {
                // Only the answer to our latest knock may move us to a new
                // run: an older answer may have been held back.
                out.push(warning(
                    "an answer to an earlier knock cannot start a new admin run: ignored".into(),
                ));
                return;
            }
            if self.run.is_some() {
                // A newer admin run: its epochs start afresh, and whatever
                // we held from the old run is no longer the room's key.
                self.core.reset_epochs();
                // A fresh private-message key for the new run: epochs
                // count from 1 again, so a private message (or private
                // file) recorded in the old run would otherwise open and
                // verify again under the same epoch number.
                self.core.dh = crate::crypto::DhSecret::generate();
                self.core
                    .transfers_end_all("the room started afresh (the admin restarted)", out);
                self.pending = None;
                self.early_parts.clear();
                self.core.seated = false;
                self.request = None;
            }
            self.knocks.clear();
            self.requests.clear();
            self.conn_requests.clear();
            self.beacon_seq = 0;
            // Another admin process: its clock is measured afresh.
            self.clock_gap = None;
            self.run = Some(Run {
                join_key: a.join_key,
                number: a.run,
            });
            self.run_floor = self.run_floor.max(a.run);
            self.min_epoch = a.epoch;
        } else {
            self.min_epoch = self.min_epoch.max(a.epoch);
        }
        // The smallest recent measure (an older one may predate a step of
        // either clock; a delayed answer only makes the measure larger).
        self.clock_gap = match self.clock_gap {
            Some((g, at)) if now_ms >= at && now_ms - at < CLOCK_GAP_FOR_MS => {
                Some((g.min(gap), at))
            }
            _ => Some((gap, now_ms)),
        };
        if self.admin.as_ref().is_some_and(|a| a.conn != from) && same_run {
            // The admin answers fresh from another connection: it
            // reconnected, and our seat went with its old connection.
            self.request = None;
            self.core.seated = false;
            self.core.held_from = u64::MAX;
            out.push(warning("the admin reconnected; asking to rejoin".into()));
        }
        self.admin_key = Some(key);
        self.admin = Some(AdminView { conn: from });
        if !self.verified_once {
            self.verified_once = true;
            out.push(Action::Event(Event::AdminVerified {
                fingerprint: self.cfg.admin_pin,
                safety_code: crate::crypto::SafetyCode::of(&self.cfg.admin_pin).to_string(),
            }));
        }
        if !self.core.seated && self.request.is_none() {
            self.send_join_request(now_ms, out);
        }
    }

    fn send_join_request(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let (Some(admin), Some(run)) = (&self.admin, self.run) else {
            return;
        };
        let join_key = run.join_key;
        let room = self.cfg.room;
        let eph = DhSecret::generate();
        let eph_pub = eph.public();
        let Ok(keys) = eph.agree(&join_key, context::DH_JOIN, &room, &eph_pub, &join_key) else {
            out.push(warning("the admin's join key is unusable".into()));
            return;
        };
        let me = self.core.me.public();
        let proof = self
            .password_key
            .as_ref()
            .map(|k| password_proof(k, &room, &join_key, &eph_pub, me.spki_der()));
        let info = JoinInfo {
            room,
            join_key,
            ephemeral: eph_pub,
            name: super::clean_name(&self.cfg.name),
            member_key: me.spki_der().to_vec().into(),
            dh_key: self.core.dh.public(),
            password_proof: proof,
            sent_at_ms: now_ms,
            padding: Default::default(),
        }
        .pad();
        let Ok(signed) = self
            .core
            .me
            .sign_body(context::JOIN, &info, self.core.max_frame)
        else {
            return;
        };
        let Ok(plain) = encode_payload(&signed, self.core.max_frame) else {
            return;
        };
        let sealed = seal(&keys, &JoinRequest::aad(&room, &eph_pub, &join_key), &plain);
        let req = JoinRequest {
            room,
            ephemeral: eph_pub,
            sealed,
        };
        let to = Some(admin.conn);
        self.core.publish(to, &Envelope::JoinRequest(req), out);
        self.request = Some(eph_pub);
        if self.requests.len() >= REQUESTS_KEPT {
            self.requests.remove(0);
        }
        self.requests.push((eph_pub, now_ms));
        if self.conn_requests.len() >= REQUESTS_KEPT {
            self.conn_requests.remove(0);
        }
        self.conn_requests.push(eph_pub);
        self.request_at = now_ms;
        out.push(Action::Event(Event::JoinRequested));
    }

    fn on_epoch(&mut self, now_ms: u64, signed: &Signed, out: &mut Vec<Action>) {
        let (Some(admin_key), Some(run)) = (&self.admin_key, self.run) else {
            out.push(warning(
                "epoch message before any verified announcement dropped".into(),
            ));
            return;
        };
        let v = match VerifiedEpoch::verify(
            admin_key,
            &self.cfg.admin_pin,
            signed,
            self.core.max_frame,
        ) {
            Ok(v) => v,
            Err(_) => {
                out.push(warning(
                    "epoch message not signed by the pinned admin rejected".into(),
                ));
                return;
            }
        };
        let body = v.body();
        let current = self.core.current.as_ref().map(|c| c.epoch).unwrap_or(0);
        if body.room != self.cfg.room {
            out.push(warning("epoch message for another room dropped".into()));
            return;
        }
        if body.run != run.join_key {
            out.push(warning(
                "epoch message from another admin session rejected (replay?)".into(),
            ));
            return;
        }
        if self.pending.as_ref().is_some_and(|p| p.epoch == body.epoch) {
            // A repeat of the epoch we are assembling: keep the parts we have.
            return;
        }
        if body.epoch <= current || body.epoch < self.min_epoch {
            out.push(warning(format!(
                "stale epoch {} ignored (current {current})",
                body.epoch
            )));
            return;
        }
        if body.roster.is_empty() || body.roster.len() > usize::from(u16::MAX) {
            out.push(warning(
                "epoch message without a usable roster dropped".into(),
            ));
            return;
        }
        let me = self.core.me.public().fingerprint();
        let Some(wrap) = body.wraps.iter().find(|w| w.member == me) else {
            // An epoch without us: the admin let our seat go. A removal
            // comes with its signed notice (handled there); without one the
            // admin thinks we left (a lost connection, or a relay faking
            // our departure): we ask again, and the admin decides. While
            // not seated (already asking), it is just our old seat going.
            self.min_epoch = self.min_epoch.max(body.epoch.saturating_add(1));
            if self.joined() && self.core.seated && !self.left {
                self.core.seated = false;
                self.core.held_from = u64::MAX;
                self.pending = None;
                self.core
                    .transfers_end_all("the admin let our seat go", out);
                out.push(warning(format!(
                    "epoch {} has no key for us: the admin let our seat go; asking to rejoin",
                    body.epoch
                )));
                if self.request.is_none() {
                    self.send_join_request(now_ms, out);
                }
            }
            return;
        };
        // The epoch must answer a join request we sent ourselves in this
        // run: one recorded before we restarted (or before we left) names
        // a request we no longer know and is not for us.
        let seats_here = self.conn_requests.contains(&wrap.request);
        let Some(&(_, request_at)) = self.requests.iter().find(|(r, _)| *r == wrap.request) else {
            out.push(warning(format!(
                "epoch {} answers none of our join requests: ignored (replayed from before a restart?)",
                body.epoch
            )));
            return;
        };
        let epoch = body.epoch;
        let hashes = body.roster.clone();
        let parts = hashes.len();
        let key = match self.core.me.unwrap_epoch_key(&v) {
            Ok(k) => k,
            Err(_) => {
                out.push(warning(
                    "our key in a signed epoch message could not be unwrapped".into(),
                ));
                return;
            }
        };
        // A newer epoch exists: nothing more goes out under the old key.
        self.core.behind = Some(self.core.behind.unwrap_or(0).max(epoch));
        self.pending = Some(PendingEpoch {
            epoch,
            key,
            hashes,
            parts: vec![None; parts],
            request_at,
            seats_here,
            since: wrap.since,
            before: wrap.before,
            closing: body.lines.clone(),
            sent_at_ms: body.sent_at_ms,
        });
        let early: Vec<RosterPart> = std::mem::take(&mut self.early_parts);
        for part in early {
            if part.header.epoch == epoch {
                self.add_part(part, out);
            } else if part.header.epoch > epoch {
                self.early_parts.push(part);
            }
        }
        self.try_complete(now_ms, out);
    }

    fn on_roster_part(&mut self, now_ms: u64, part: RosterPart, out: &mut Vec<Action>) {
        match &self.pending {
            Some(p) if p.epoch == part.header.epoch => self.add_part(part, out),
            _ => {
                let current = self.core.current.as_ref().map(|c| c.epoch).unwrap_or(0);
                if part.header.epoch > current {
                    self.early_parts.push(part);
                    let bytes = |v: &[RosterPart]| {
                        v.iter().map(|p| p.sealed.ciphertext.len()).sum::<usize>()
                    };
                    while self.early_parts.len() > MAX_EARLY_PARTS
                        || (self.early_parts.len() > 1
                            && bytes(&self.early_parts) > MAX_EARLY_BYTES)
                    {
                        self.early_parts.remove(0);
                    }
                }
            }
        }
        self.try_complete(now_ms, out);
    }

    fn add_part(&mut self, part: RosterPart, out: &mut Vec<Action>) {
        let Some(p) = &mut self.pending else { return };
        let h = &part.header;
        if h.room != self.cfg.room
            || h.count as usize != p.parts.len()
            || h.index as usize >= p.parts.len()
        {
            out.push(warning(
                "roster part that does not fit its epoch dropped".into(),
            ));
            return;
        }
        let keys = p.key.epoch_keys(&self.cfg.room, p.epoch);
        let i = h.index as usize;
        if p.parts[i].is_some() {
            // The genuine part is in: a second one for the slot is a repeat
            // or a forgery, and changes nothing.
            return;
        }
        match open(
            &keys,
            &crate::wire::aad(context::AAD_ROSTER, h),
            &part.sealed,
        ) {
            // A member holds the epoch key and could seal a part of its own:
            // only the part the admin signed the hash of counts.
            Ok(plain) if <[u8; 32]>::from(Sha256::digest(&*plain)) == p.hashes[i] => {
                p.parts[i] = Some(plain.to_vec())
            }
            Ok(_) => out.push(warning(
                "roster part that is not the one the admin signed dropped (forged by a member?)"
                    .into(),
            )),
            Err(_) => out.push(warning("roster part failed authentication: dropped".into())),
        }
    }

    fn try_complete(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let complete = self
            .pending
            .as_ref()
            .is_some_and(|p| p.parts.iter().all(Option::is_some));
        if !complete {
            return;
        }
        let Some(p) = self.pending.take() else { return };
        let bytes: Vec<u8> = p.parts.into_iter().flatten().flatten().collect();
        let roster: Roster = match decode_payload(&bytes, usize::MAX) {
            Ok(r) => r,
            Err(_) => {
                out.push(warning("malformed roster: epoch rejected".into()));
                return;
            }
        };
        match EpochState::new(&self.cfg.room, p.epoch, &p.key, &roster, now_ms) {
            Ok(state) => {
                let me = self.core.me.public().fingerprint();
                let current = self.core.current.as_ref().map(|c| c.epoch);
                if self.core.seated {
                    if let Some(c) = current.filter(|c| p.epoch > c + 1) {
                        // Seated throughout: the epochs between were ours.
                        out.push(epochs_missed(c + 1, p.epoch - 1));
                    }
                } else if state.members.contains_key(&me) && p.seats_here {
                    // Seated: the admin was current when it answered the
                    // request we sent at `request_at`, and every epoch from
                    // this one on is ours to hold.
                    self.core.seated = true;
                    self.request = None;
                    // The admin seated us from `since` on: if that epoch
                    // (or those after it) never reached us, what was said
                    // in them is reported, not passed over.
                    let since = if (1..p.epoch).contains(&p.since) {
                        p.since
                    } else {
                        p.epoch
                    };
                    let after_ours = current.map_or(0, |c| c + 1);
                    let first_missing = since.max(after_ours);
                    if first_missing < p.epoch {
                        out.push(epochs_missed(first_missing, p.epoch - 1));
                    }
                    // Our seat before this one: its epochs after the last
                    // we hold never reached us either.
                    let (first, last) = p.before;
                    let owed = first.max(after_ours).max(1)..=last.min(p.epoch - 1);
                    if !owed.is_empty() && *owed.end() < first_missing {
                        out.push(epochs_missed(*owed.start(), *owed.end()));
                        for e in owed.rev().take(super::HELD_EPOCHS) {
                            self.core.owe(e);
                        }
                    }
                    self.core.held_from = since;
                    let heard = self.core.heard_ms.unwrap_or(0).max(p.request_at);
                    self.core.heard_ms = Some(heard);
                }
                // How the epoch we leave ended, even if every beacon that
                // said so was dropped: counted as a beacon's would be.
                if current.is_some_and(|c| c + 1 == p.epoch) {
                    self.core
                        .settle_claims(p.epoch - 1, p.sent_at_ms, &p.closing, out);
                }
                // Never again an epoch at or below one we held.
                self.min_epoch = self.min_epoch.max(p.epoch.saturating_add(1));
                self.core.install(state, out);
            }
            Err(e) => out.push(warning(format!("unusable roster: {e}"))),
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
            out.push(warning("notice not signed by the admin rejected".into()));
            return;
        }
        let Ok(n) = decode_payload::<Notice>(&signed.body, self.core.max_frame) else {
            out.push(warning("malformed notice dropped".into()));
            return;
        };
        if n.room != self.cfg.room || n.join_key != run.join_key {
            out.push(warning(
                "notice from another room or an earlier admin session ignored".into(),
            ));
            return;
        }
        let me = self.core.me.public().fingerprint();
        let for_me = n.target.is_none_or(|t| t == me);
        let current = self.core.current.as_ref().map(|c| c.epoch).unwrap_or(0);
        match n.kind {
            NoticeKind::Denied if for_me && n.request.is_some() && n.request == self.request => {
                self.request = None;
                out.push(Action::Event(Event::Denied { reason: n.reason }));
            }
            NoticeKind::Denied => {}
            NoticeKind::Kicked if !for_me => {
                // Someone was removed in the epoch after `n.epoch`: until we
                // hold that one, sending would let them read it. Measured
                // from the notice, not from what we hold, so a member behind
                // by an epoch is not freed by the one that still has them.
                let hold = n.epoch.saturating_add(1);
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
                    self.core.reset_epochs();
                    self.core.seated = false;
                    self.core.dh = crate::crypto::DhSecret::generate();
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
            NoticeKind::Closed => out.push(Action::Event(Event::Closed { reason: n.reason })),
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
            out.push(warning(format!(
                "{} said goodbye: nothing is sent until the room key without them arrives",
                who.name
            )));
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
            out.push(warning("beacon not signed by the admin rejected".into()));
            return;
        }
        let Ok(b) = decode_payload::<Beacon>(&signed.body, self.core.max_frame) else {
            out.push(warning("malformed beacon dropped".into()));
            return;
        };
        if b.room != self.cfg.room {
            out.push(warning("beacon for another room dropped".into()));
            return;
        }
        if b.run > run.number {
            // The admin runs anew: what we hold belongs to a run it left.
            if self.core.seated || self.admin.is_some() {
                self.admin = None;
                self.request = None;
                self.core.seated = false;
                out.push(warning("the admin started afresh; asking to rejoin".into()));
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
                out.push(warning(format!(
                    "the room is on epoch {}, we hold {current}: sending is paused until its key arrives",
                    b.epoch
                )));
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
    warning(format!(
        "epochs {from} to {to} never reached us: anything said in them is missing"
    ))
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("room", &self.cfg.room)
            .field("joined", &self.joined())
            .finish_non_exhaustive()
    }
}
