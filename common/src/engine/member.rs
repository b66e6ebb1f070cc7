//! The member role: verify the admin against the invite pin, ask to join
//! (sealed to the admin's X25519 key, never to its RSA key), accept only
//! epochs signed by the pinned admin, and chat.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{envelope, error, warning, Action, Command, Core, EpochState, Event};
use crate::crypto::password::{password_key, password_proof};
use crate::crypto::seal::{open, seal, SessionKey};
use crate::crypto::{random_array, DhSecret, KeyError, PrivateKey, PublicKey, VerifiedEpoch};
use crate::ids::{Fingerprint, RoomId};
use crate::wire::{
    context, decode_payload, encode_payload, Announce, ConnId, Content, DhKey, Envelope, JoinInfo,
    JoinRequest, Notice, NoticeKind, RelayFrame, Roster, RosterPart, Signed,
};

/// Seconds between knocks while no admin has answered.
const KNOCK_EVERY_MS: u64 = 5_000;
/// Knocks prompted by the room (a peer joined, an announcement that is not
/// an answer to ours) come at most this often: a burst of joins (a room's
/// peers on another relay arriving at once) makes one knock, not one each.
const KNOCK_GAP_MS: u64 = 250;
/// Our last knocks on this connection: an answer to any of them is fresh
/// (answers to an older knock must not set off yet another).
const KNOCKS_KEPT: usize = 4;
/// Roster parts kept for an epoch whose key has not arrived yet.
const MAX_EARLY_PARTS: usize = 64;
/// Bytes of roster parts kept for an epoch whose key has not arrived yet
/// (they are unauthenticated until it does).
const MAX_EARLY_BYTES: usize = 2 << 20;

/// What a member needs to join.
pub struct MemberConfig {
    /// The room (from the invite).
    pub room: RoomId,
    /// The admin's fingerprint (from the invite).
    pub admin_pin: Fingerprint,
    /// The display name to ask for.
    pub name: String,
    /// The room password, if the member knows it.
    pub password: Option<Zeroizing<String>>,
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

struct AdminView {
    conn: ConnId,
    key: PublicKey,
    join_key: DhKey,
}

struct PendingEpoch {
    epoch: u64,
    key: SessionKey,
    digest: [u8; 32],
    parts: Vec<Option<Vec<u8>>>,
}

/// The member engine.
pub struct Member {
    pub(crate) core: Core,
    cfg: MemberConfig,
    password_key: Option<Zeroizing<[u8; 32]>>,
    knock: Option<([u8; 16], u64)>,
    /// The nonces of our last [`KNOCKS_KEPT`] knocks, newest last.
    knocks: Vec<[u8; 16]>,
    /// A knock the room prompted within [`KNOCK_GAP_MS`] of the last: sent
    /// at the next tick after the gap.
    knock_soon: bool,
    admin: Option<AdminView>,
    request: Option<DhKey>,
    min_epoch: u64,
    pending: Option<PendingEpoch>,
    early_parts: Vec<RosterPart>,
    verified_once: bool,
    /// The admin run (its announced join key) our epochs come from.
    run: Option<DhKey>,
    /// In an epoch the admin made after our request on this connection. A
    /// new connection always needs a new request: the admin let our seat go
    /// when the old connection ended.
    seated: bool,
}

impl Member {
    /// A member engine for `cfg`, signing with `me`. Derives the password
    /// key now if a password is given (600,000 PBKDF2 rounds).
    pub fn new(cfg: MemberConfig, me: Arc<PrivateKey>) -> Self {
        let password_key = cfg
            .password
            .as_ref()
            .map(|p| password_key(p.as_bytes(), &cfg.room));
        Member {
            core: Core::new(cfg.room, me),
            cfg,
            password_key,
            knock: None,
            knocks: Vec::new(),
            knock_soon: false,
            admin: None,
            request: None,
            min_epoch: 0,
            pending: None,
            early_parts: Vec::new(),
            verified_once: false,
            run: None,
            seated: false,
        }
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
        self.seated = false;
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
                    self.seated = false;
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
                if self.joined() {
                    self.core
                        .send_content(now_ms, Content::Typing(on), &mut out);
                }
            }
            Command::Leave => {
                if self.joined() {
                    self.core.send_content(now_ms, Content::Leave, &mut out);
                }
            }
            Command::Approve(_) | Command::Deny(..) | Command::Kick(..) | Command::Rekey => {
                out.push(error("only the admin can do that".into()))
            }
            file => self.core.file_command(now_ms, file, &mut out),
        }
        out
    }

    /// Time passes: knock again while no admin has answered.
    pub fn handle_tick(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
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
        self.knocks.push(nonce);
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
            Envelope::Message(msg) => match self.core.receive_message(now_ms, &msg) {
                Ok((sender, body)) => {
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
        if !Fingerprint::of_der(&a.admin_key).ct_eq(&self.cfg.admin_pin) {
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
        let fresh = a.answers.is_some_and(|n| self.knocks.contains(&n));
        if !fresh {
            // Unsolicited (the admin starting) or an answer to someone
            // else's knock: it could be a replay, so it proves nothing. If we
            // have no admin, ask for a fresh one.
            if self.admin.as_ref().is_some_and(|a| a.conn != from) {
                // The admin announces itself from another connection: it
                // reconnected, and its seats went with the old connection.
                // Across relays the old one's leave can come seconds later
                // (presence expiry after a relay crash), after the admin's
                // next epoch: ask again now rather than read that epoch as
                // our removal. A replayed announcement only costs a knock.
                self.admin = None;
                self.request = None;
                self.seated = false;
                out.push(warning("the admin reconnected; asking to rejoin".into()));
            }
            if self.admin.is_none() {
                self.knock_prompted(now_ms, out);
            }
            return;
        }
        if self.run != Some(a.join_key) {
            // A different admin run: its epochs start afresh, and whatever
            // we held from another run is no longer the room's key.
            if self.run.is_some() {
                self.core.current = None;
                self.core.previous = None;
                self.core.hold_below = None;
                // A fresh private-message key for the new run: epochs
                // count from 1 again, so a private message (or private
                // file) recorded in the old run would otherwise open and
                // verify again under the same epoch number.
                self.core.dh = crate::crypto::DhSecret::generate();
                self.core
                    .transfers_end_all("the room started afresh (the admin restarted)", out);
                self.pending = None;
                self.early_parts.clear();
                self.seated = false;
                self.request = None;
            }
            self.run = Some(a.join_key);
            self.min_epoch = a.epoch;
        } else {
            self.min_epoch = self.min_epoch.max(a.epoch);
        }
        self.admin = Some(AdminView {
            conn: from,
            key,
            join_key: a.join_key,
        });
        if !self.verified_once {
            self.verified_once = true;
            out.push(Action::Event(Event::AdminVerified {
                fingerprint: self.cfg.admin_pin,
                safety_code: crate::crypto::SafetyCode::of(&self.cfg.admin_pin).to_string(),
            }));
        }
        if !self.seated && self.request.is_none() {
            self.send_join_request(now_ms, out);
        }
    }

    fn send_join_request(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let Some(admin) = &self.admin else { return };
        let room = self.cfg.room;
        let eph = DhSecret::generate();
        let eph_pub = eph.public();
        let Ok(keys) = eph.agree(
            &admin.join_key,
            context::DH_JOIN,
            &room,
            &eph_pub,
            &admin.join_key,
        ) else {
            out.push(warning("the admin's join key is unusable".into()));
            return;
        };
        let me = self.core.me.public();
        let proof = self
            .password_key
            .as_ref()
            .map(|k| password_proof(k, &room, &admin.join_key, &eph_pub, me.spki_der()));
        let info = JoinInfo {
            room,
            join_key: admin.join_key,
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
        let sealed = seal(
            &keys,
            &JoinRequest::aad(&room, &eph_pub, &admin.join_key),
            &plain,
        );
        let req = JoinRequest {
            room,
            ephemeral: eph_pub,
            sealed,
        };
        let to = Some(admin.conn);
        self.core.publish(to, &Envelope::JoinRequest(req), out);
        self.request = Some(eph_pub);
        out.push(Action::Event(Event::JoinRequested));
    }

    fn on_epoch(&mut self, now_ms: u64, signed: &Signed, out: &mut Vec<Action>) {
        let Some(admin) = &self.admin else {
            out.push(warning(
                "epoch message before any verified announcement dropped".into(),
            ));
            return;
        };
        let v = match VerifiedEpoch::verify(
            &admin.key,
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
        if Some(body.run) != self.run {
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
        if body.roster_parts == 0 {
            out.push(warning("epoch message without a roster dropped".into()));
            return;
        }
        let key = match self.core.me.unwrap_epoch_key(&v) {
            Ok(k) => k,
            Err(KeyError::NotAMember) => {
                if self.joined() {
                    self.core.current = None;
                    self.core.previous = None;
                    self.pending = None;
                    self.core
                        .transfers_end_all("you were removed from the room", out);
                    out.push(Action::Event(Event::Kicked {
                        reason: format!(
                            "removed from the room: no key for us in epoch {}",
                            body.epoch
                        ),
                    }));
                }
                return;
            }
            Err(_) => {
                out.push(warning(
                    "our key in a signed epoch message could not be unwrapped".into(),
                ));
                return;
            }
        };
        self.pending = Some(PendingEpoch {
            epoch: body.epoch,
            key,
            digest: body.roster_digest,
            parts: vec![None; body.roster_parts as usize],
        });
        let early: Vec<RosterPart> = std::mem::take(&mut self.early_parts);
        for part in early {
            if part.header.epoch == body.epoch {
                self.add_part(part, out);
            } else if part.header.epoch > body.epoch {
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
        match open(
            &keys,
            &crate::wire::aad(context::AAD_ROSTER, h),
            &part.sealed,
        ) {
            Ok(plain) => p.parts[h.index as usize] = Some(plain.to_vec()),
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
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if digest != p.digest {
            out.push(warning(
                "roster does not match the admin's signed digest: epoch rejected".into(),
            ));
            return;
        }
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
                if state.members.contains_key(&me) {
                    self.seated = true;
                    self.request = None;
                }
                self.core.install(state, out);
            }
            Err(e) => out.push(warning(format!("unusable roster: {e}"))),
        }
    }

    fn on_notice(&mut self, signed: &Signed, out: &mut Vec<Action>) {
        let Some(admin) = &self.admin else { return };
        if admin
            .key
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
        if n.room != self.cfg.room || n.join_key != admin.join_key {
            out.push(warning(
                "notice from another room or an earlier admin session ignored".into(),
            ));
            return;
        }
        let me = self.core.me.public().fingerprint();
        let for_me = n.target.is_none_or(|t| t == me);
        match n.kind {
            NoticeKind::Denied if for_me && n.request.is_some() && n.request == self.request => {
                self.request = None;
                out.push(Action::Event(Event::Denied { reason: n.reason }));
            }
            NoticeKind::Denied => {}
            NoticeKind::Kicked if !for_me => {
                // Someone was removed: until the epoch without them arrives,
                // sending under the current key would let them read it.
                let current = self.core.current.as_ref().map(|c| c.epoch).unwrap_or(0);
                if n.epoch >= current && self.joined() {
                    self.core.hold_below = Some(current + 1);
                    if let Some(t) = n.target {
                        self.core.private_transfers_end(&t, out);
                    }
                }
            }
            NoticeKind::Kicked if for_me && n.target.is_some() => {
                let current = self.core.current.as_ref().map(|c| c.epoch).unwrap_or(0);
                if n.epoch >= current && self.joined() {
                    self.core.current = None;
                    self.core.previous = None;
                    self.core
                        .transfers_end_all("you were removed from the room", out);
                    out.push(Action::Event(Event::Kicked { reason: n.reason }));
                }
            }
            NoticeKind::Kicked => {}
            NoticeKind::Closed => out.push(Action::Event(Event::Closed { reason: n.reason })),
        }
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("room", &self.cfg.room)
            .field("joined", &self.joined())
            .finish_non_exhaustive()
    }
}
