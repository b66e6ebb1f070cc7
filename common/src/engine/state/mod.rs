//! What every participant keeps and does, admin or member: the installed
//! epochs and their replay and gap state, sending and receiving room
//! messages, and showing what arrived. The admin's and the member's own
//! rules are in [`super::admin`] and [`super::member`]; private messages in
//! `private.rs`, files in [`super::files`].
//!
//! This file holds the epochs and their accounting; `messages.rs` the
//! room messages.

mod messages;
mod signed;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::{
    clean_name, error, files, warning, Action, Dropped, Event, Kind, MemberInfo, Randomness,
    RosterError, BEACON_EVERY_MS, BEACON_STALE_MS, HELD_EPOCHS, MAX_CLAIMS, MAX_TEXT,
    PREVIOUS_EPOCH_GRACE_MS,
};
use crate::crypto::seal::{open, seal, SealKeys, SessionKey};
use crate::crypto::{DhSecret, PrivateKey, PublicKey};
use crate::ids::{Fingerprint, RoomId};
use crate::wire::{
    aad, context, decode_payload, encode_payload, signed_message_bytes, ChatBody, ChatMessage,
    ClientFrame, ConnId, Content, DhKey, Envelope, EpochCause, MessageHeader, Prev, Roster,
    RosterEntry, Welcome, DEFAULT_MAX_FRAME, PREV_EPOCHS, PROTOCOL_VERSION,
};

pub(crate) use signed::{check_signed, seal_signed, Checked};

/// What a beacon said the admin had of a sender's lines in an epoch.
#[derive(Debug, Clone)]
pub struct Claim {
    from: MemberInfo,
    epoch: u64,
    last: u64,
    /// The beacon's time (admin clock).
    made: u64,
}

/// A participant of an installed epoch.
#[derive(Clone)]
pub(crate) struct Participant {
    pub name: String,
    pub key: PublicKey,
    /// Static X25519 key (for this member's run), the address of private
    /// messages.
    pub dh_key: DhKey,
    pub admin: bool,
}

impl Participant {
    pub fn info(&self) -> MemberInfo {
        MemberInfo {
            name: self.name.clone(),
            fingerprint: self.key.fingerprint(),
            safety_code: self.key.safety_code().to_string(),
            admin: self.admin,
        }
    }
}

/// An installed epoch: its keys, roster and replay state.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub(crate) struct EpochState {
    pub epoch: u64,
    /// The room's name from the roster (cleaned).
    pub room_name: String,
    pub keys: SealKeys,
    /// Members by fingerprint, in roster order in `order`.
    pub members: HashMap<Fingerprint, Participant>,
    pub order: Vec<Fingerprint>,
    /// Highest sequence number seen per sender.
    pub last_seq: HashMap<Fingerprint, u64>,
    /// Highest private-message sequence number seen per sender (to us).
    pub last_private_seq: HashMap<Fingerprint, u64>,
    /// When it was installed.
    pub since_ms: u64,
    /// The member the admin removed to begin this epoch (the signed
    /// roster's cause), told apart from one who left.
    pub removed: Option<Fingerprint>,
}

impl EpochState {
    pub fn new(
        room: &RoomId,
        epoch: u64,
        key: &SessionKey,
        roster: &Roster,
        now_ms: u64,
    ) -> Result<Self, RosterError> {
        let people = roster
            .members
            .iter()
            .map(participant)
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_participants(room, epoch, key, roster, people, now_ms)
    }

    /// An epoch from already-parsed participants (the admin's own install:
    /// no need to parse back the keys it just encoded).
    pub fn from_participants(
        room: &RoomId,
        epoch: u64,
        key: &SessionKey,
        roster: &Roster,
        people: Vec<Participant>,
        now_ms: u64,
    ) -> Result<Self, RosterError> {
        let mut members = HashMap::with_capacity(people.len());
        let mut order = Vec::with_capacity(people.len());
        for p in people {
            let fp = p.key.fingerprint();
            if members.insert(fp, p).is_some() {
                return Err(RosterError::DuplicateKey);
            }
            order.push(fp);
        }
        Ok(EpochState {
            epoch,
            room_name: clean_name(&roster.room_name),
            keys: key.epoch_keys(room, epoch),
            members,
            order,
            last_seq: HashMap::new(),
            last_private_seq: HashMap::new(),
            since_ms: now_ms,
            removed: match roster.cause {
                EpochCause::Kicked(fp) => Some(fp),
                _ => None,
            },
        })
    }

    pub fn infos(&self) -> Vec<MemberInfo> {
        self.order
            .iter()
            .filter_map(|f| self.members.get(f))
            .map(Participant::info)
            .collect()
    }
}

pub(crate) fn participant(entry: &RosterEntry) -> Result<Participant, RosterError> {
    let key = PublicKey::from_spki_der(&entry.member_key).map_err(RosterError::BadKey)?;
    Ok(Participant {
        name: clean_name(&entry.name),
        key,
        dh_key: entry.dh_key,
        admin: entry.admin,
    })
}

/// State every participant keeps: who we are, the room, the epochs.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub(crate) struct Core {
    pub room: RoomId,
    pub me: Arc<PrivateKey>,
    /// Our static X25519 secret for this run: the roster lists its public
    /// half, private messages to us are sealed to it.
    pub dh: DhSecret,
    pub conn_id: Option<ConnId>,
    pub current: Option<EpochState>,
    pub previous: Option<EpochState>,
    pub my_seq: u64,
    /// Our private-message sequence numbers in this epoch, per recipient.
    pub private_seq: HashMap<Fingerprint, u64>,
    /// File transfers.
    pub files: files::Files,
    pub max_frame: usize,
    /// Do not send until an epoch at least this new is installed (someone
    /// was removed and the epoch without them has not arrived yet).
    pub hold_below: Option<u64>,
    /// A newer epoch of our run that we know of (a signed epoch message or
    /// beacon named it) but do not hold yet: we do not send until we do.
    pub behind: Option<u64>,
    /// (Member) when the admin was last heard to be on our epoch (a fresh
    /// beacon naming it, or the join request the epoch that seated us
    /// answers); `None` for the admin, whose own word is always current.
    pub heard_ms: Option<u64>,
    /// (Member) seated on this connection: in an epoch that answers a join
    /// request we sent on it. The admin is always seated.
    pub seated: bool,
    /// How our last epochs with messages ended, newest first.
    pub my_prev: Prev,
    /// The same for our private messages to each member.
    pub private_prev: HashMap<Fingerprint, Prev>,
    /// Per sender, the last seq received (or accounted for) in each of its
    /// recent epochs, and the same for private messages to us: where a gap
    /// is measured from. Kept for the whole run (members come and go).
    pub seen: HashMap<Fingerprint, Vec<(u64, u64)>>,
    pub seen_private: HashMap<Fingerprint, Vec<(u64, u64)>>,
    /// Epochs of this run we held, oldest first.
    pub held: std::collections::VecDeque<u64>,
    /// Every epoch from this one on was ours to hold (the seat began in
    /// it): one we did not hold never reached us.
    pub held_from: u64,
    /// Epochs before `held_from` that were ours (a seat the relay cut
    /// short) but never reached us: gaps in them are reported too.
    pub owed: std::collections::VecDeque<u64>,
    /// (Member) someone said goodbye in the epoch below this one (at our
    /// time): no sending until we hold it, or a later beacon names ours.
    pub leave_hold: Option<(u64, u64)>,
    /// (Member) the room lines the admin's beacons said it had: settled by
    /// a beacon made [`BEACON_EVERY_MS`] later, so a line still in flight
    /// to us when the admin counted it is not taken for a missing one.
    pub claims: Vec<Claim>,
    /// Our lines until the relay takes them (`outbox.rs`).
    pub outbox: super::outbox::Outbox,
    /// Lines shown per sender (room, and private to us), by first sealing:
    /// a resent copy is dropped.
    pub shown: super::outbox::Shown,
    pub shown_private: super::outbox::Shown,
    /// Where every random byte comes from (see `rng.rs`).
    pub rng: Randomness,
}

impl Core {
    pub fn new(room: RoomId, me: Arc<PrivateKey>, mut rng: Randomness) -> Self {
        Core {
            room,
            me,
            dh: DhSecret::generate(&mut rng),
            conn_id: None,
            current: None,
            previous: None,
            my_seq: 0,
            private_seq: HashMap::new(),
            files: files::Files::default(),
            max_frame: DEFAULT_MAX_FRAME,
            hold_below: None,
            behind: None,
            heard_ms: None,
            seated: true,
            my_prev: [(0, 0); PREV_EPOCHS],
            private_prev: HashMap::new(),
            seen: HashMap::new(),
            seen_private: HashMap::new(),
            held: std::collections::VecDeque::new(),
            held_from: u64::MAX,
            owed: std::collections::VecDeque::new(),
            leave_hold: None,
            claims: Vec::new(),
            outbox: Default::default(),
            shown: Default::default(),
            shown_private: Default::default(),
            rng,
        }
    }

    /// Forgets every epoch and everything counted in them: the room
    /// started afresh (a new admin run) or we were removed.
    pub fn reset_epochs(&mut self) {
        self.current = None;
        self.previous = None;
        self.hold_below = None;
        self.behind = None;
        self.my_seq = 0;
        self.my_prev = [(0, 0); PREV_EPOCHS];
        self.private_seq.clear();
        self.private_prev.clear();
        self.seen.clear();
        self.seen_private.clear();
        self.held.clear();
        self.held_from = u64::MAX;
        self.owed.clear();
        self.leave_hold = None;
        self.claims.clear();
        // A new run numbers its epochs afresh: lines of the old one are
        // neither recognised nor named.
        self.shown.clear();
        self.shown_private.clear();
        self.outbox.forget_first_sealings();
    }

    /// Epoch `e` was ours but never reached us (kept for gap reports, the
    /// newest [`HELD_EPOCHS`]).
    pub fn owe(&mut self, e: u64) {
        if !self.owed.contains(&e) {
            if self.owed.len() >= HELD_EPOCHS {
                self.owed.pop_front();
            }
            self.owed.push_back(e);
        }
    }

    /// Takes a fresh beacon of our run (admin clock `made`): the lines
    /// earlier beacons said the admin had, counted at least a beacon period
    /// before it, that have still not reached us are reported as missed
    /// (and counted as had, so never again); then this beacon's count of
    /// `epoch` (if we hold it) waits its turn.
    pub fn settle_claims(
        &mut self,
        epoch: u64,
        made: u64,
        lines: &[(u32, u64)],
        out: &mut Vec<Action>,
    ) {
        let (due, waiting): (Vec<Claim>, Vec<Claim>) = std::mem::take(&mut self.claims)
            .into_iter()
            .partition(|c| c.made.saturating_add(BEACON_EVERY_MS) <= made);
        // An admin clock that stepped back: they wait a period from now.
        self.claims = waiting
            .into_iter()
            .map(|c| Claim {
                made: c.made.min(made),
                ..c
            })
            .collect();
        for c in due {
            let seen = self.seen.entry(c.from.fingerprint).or_default();
            let had = seen_seq(seen, c.epoch);
            if c.last > had {
                note_seen(seen, c.epoch, c.last);
                out.push(Action::Event(Event::Missed {
                    from: c.from,
                    epoch: c.epoch,
                    count: c.last - had,
                    private: false,
                }));
            }
        }
        let held = [&self.current, &self.previous];
        let Some(state) = held.into_iter().flatten().find(|s| s.epoch == epoch) else {
            return;
        };
        let me = self.me.public().fingerprint();
        for &(i, last) in lines {
            if self.claims.len() >= MAX_CLAIMS {
                // The next beacon counts them again.
                break;
            }
            let Some(fp) = usize::try_from(i).ok().and_then(|i| state.order.get(i)) else {
                continue;
            };
            let Some(who) = state.members.get(fp).filter(|_| *fp != me) else {
                continue;
            };
            let had = self.seen.get(fp).map_or(0, |s| seen_seq(s, epoch));
            let known = self
                .claims
                .iter()
                .any(|c| c.from.fingerprint == *fp && c.epoch == epoch && c.last >= last);
            if last > had && !known {
                self.claims.push(Claim {
                    from: who.info(),
                    epoch,
                    last,
                    made,
                });
            }
        }
    }

    /// Why we may not send to the room now, or `None` if we may: no key,
    /// a removal whose epoch has not arrived, a newer epoch we do not hold,
    /// no fresh word from the admin, or not seated on this connection.
    pub fn send_blocked(&self, now_ms: u64) -> Option<String> {
        if self.conn_id.is_none() {
            return Some("not connected to the relay: reconnecting".into());
        }
        let Some(cur) = &self.current else {
            return Some("not in the room yet: no key for this epoch".into());
        };
        if self.leave_hold.is_some_and(|(h, _)| cur.epoch < h) {
            return Some(
                "not sent: someone said goodbye and the room key without them has not arrived yet"
                    .into(),
            );
        }
        if self.hold_below.is_some_and(|h| cur.epoch < h) {
            return Some(
                "not sent: someone left or was removed and the new room key has not arrived yet"
                    .into(),
            );
        }
        if let Some(e) = self.behind.filter(|e| *e > cur.epoch) {
            return Some(format!(
                "not sent: the room has moved to epoch {e}, whose key has not reached us yet"
            ));
        }
        if !self.seated {
            return Some("not sent: rejoining the room (waiting for the admin)".into());
        }
        if let Some(at) = self.heard_ms {
            let quiet = now_ms.saturating_sub(at);
            if quiet > BEACON_STALE_MS {
                return Some(format!(
                    "not sent: no word from the admin for {} s; the room key may be out of date",
                    quiet / 1000
                ));
            }
        }
        None
    }

    pub fn hello(&self) -> Action {
        Action::Send(ClientFrame::Hello(crate::wire::Hello {
            version: PROTOCOL_VERSION,
            room: self.room,
        }))
    }

    /// Takes the relay's welcome; false (with a warning) for a second one on
    /// the same connection.
    pub fn welcome(&mut self, w: &Welcome, out: &mut Vec<Action>) -> bool {
        if self.conn_id.is_some() {
            out.push(warning(Dropped::SecondWelcome));
            return false;
        }
        self.conn_id = Some(w.conn_id);
        self.max_frame =
            (w.max_frame as usize).clamp(crate::wire::MIN_MAX_FRAME, DEFAULT_MAX_FRAME);
        out.push(Action::Event(Event::Connected { conn_id: w.conn_id }));
        true
    }

    /// Encodes `env` for publishing; false (with an error event) if it does
    /// not fit the relay's frame limit.
    pub fn publish(&mut self, to: Option<ConnId>, env: &Envelope, out: &mut Vec<Action>) -> bool {
        self.publish_in(false, to, env, out)
    }

    /// [`Self::publish`] as bulk data (a file chunk): later messages may
    /// overtake it.
    pub fn publish_bulk(
        &mut self,
        to: Option<ConnId>,
        env: &Envelope,
        out: &mut Vec<Action>,
    ) -> bool {
        self.publish_in(true, to, env, out)
    }

    /// Every frame we publish is counted, each lane on its own, as the
    /// relay counts what it takes (its acknowledgements mark our lines).
    fn publish_in(
        &mut self,
        bulk: bool,
        to: Option<ConnId>,
        env: &Envelope,
        out: &mut Vec<Action>,
    ) -> bool {
        match encode_payload(env, crate::wire::max_payload(self.max_frame)) {
            Ok(p) => {
                let payload = Bytes::from(p);
                let sent = &mut self.outbox.published;
                out.push(Action::Send(if bulk {
                    sent.bulk += 1;
                    ClientFrame::PublishBulk { to, payload }
                } else {
                    sent.publish += 1;
                    ClientFrame::Publish { to, payload }
                }));
                true
            }
            Err(e) => {
                out.push(error(format!("cannot send: {e}")));
                false
            }
        }
    }

    /// Installs `next` as the current epoch, keeping the old one for grace,
    /// and reports who joined and left.
    pub fn install(&mut self, next: EpochState, out: &mut Vec<Action>) {
        let epoch = next.epoch;
        if let Some(old) = &self.current {
            for fp in &next.order {
                if !old.members.contains_key(fp) {
                    if let Some(p) = next.members.get(fp) {
                        out.push(Action::Event(Event::MemberJoined(p.info())));
                    }
                }
            }
            let mut left = Vec::new();
            for fp in &old.order {
                if !next.members.contains_key(fp) {
                    if let Some(p) = old.members.get(fp) {
                        // Removed by the admin: this epoch's signed cause,
                        // or the admin's signed notice, should the epoch
                        // that removed them never have reached us.
                        let removed = next.removed == Some(*fp) || self.outbox.removed.contains(fp);
                        out.push(Action::Event(if removed {
                            Event::MemberRemoved(p.info())
                        } else {
                            Event::MemberLeft(p.info())
                        }));
                        left.push(*fp);
                    }
                }
            }
            for fp in &left {
                self.private_transfers_end(fp, out);
            }
        }
        out.push(Action::Event(Event::Epoch {
            epoch,
            room_name: next.room_name.clone(),
            members: next.infos(),
        }));
        if self.hold_below.is_some_and(|h| epoch >= h) {
            self.hold_below = None;
        }
        if self.leave_hold.is_some_and(|(h, _)| epoch >= h) {
            self.leave_hold = None;
        }
        if self.behind.is_some_and(|b| epoch >= b) {
            self.behind = None;
        }
        if let Some(old) = &self.current {
            let mine = self.claimed(None, old.epoch, self.my_seq, &next.members);
            if mine > 0 {
                push_prev(&mut self.my_prev, (old.epoch, mine));
            }
            let private: Vec<(Fingerprint, u64)> = self.private_seq.drain().collect();
            for (to, seq) in private {
                let seq = self.claimed(Some(to), old.epoch, seq, &next.members);
                push_prev(self.private_prev.entry(to).or_default(), (old.epoch, seq));
            }
        }
        self.outbox.clear_withdrawn();
        self.private_seq.clear();
        if self.held.len() >= HELD_EPOCHS {
            self.held.pop_front();
        }
        self.held.push_back(epoch);
        self.previous = self.current.take();
        self.current = Some(next);
        self.my_seq = 0;
        // An epoch with us in it: we may write again; whoever is in it
        // was let back.
        self.outbox.refuse = None;
        if let Some(cur) = &self.current {
            self.outbox
                .removed
                .retain(|fp| !cur.members.contains_key(fp));
        }
    }

    /// Messages of `sender` that never reached us, judged from the one just
    /// authenticated (`at`: its epoch and seq, with the sender's `prev`) and
    /// what we had: an event per epoch with a gap. Then records this one.
    pub(crate) fn account(
        &mut self,
        private: bool,
        sender: &Participant,
        at: (u64, u64),
        last_in_epoch: u64,
        prev: Prev,
        out: &mut Vec<Action>,
    ) {
        let (epoch, seq) = at;
        let fp = sender.key.fingerprint();
        let (held, owed, held_from) = (&self.held, &self.owed, self.held_from);
        let seen = if private {
            self.seen_private.entry(fp).or_default()
        } else {
            self.seen.entry(fp).or_default()
        };
        let mut missed = Vec::new();
        // The sender's first message of this epoch: did we get the end of
        // its earlier epochs (those we held, or should have)?
        if last_in_epoch == 0 {
            for (prev_epoch, prev_seq) in prev {
                if prev_epoch == 0 || prev_epoch >= epoch || prev_seq == 0 {
                    continue;
                }
                let ours = held.contains(&prev_epoch)
                    || owed.contains(&prev_epoch)
                    || prev_epoch >= held_from;
                let had = seen_seq(seen, prev_epoch);
                if ours && prev_seq > had {
                    missed.push((prev_epoch, prev_seq - had));
                    // Told once: counted as had from now on.
                    note_seen(seen, prev_epoch, prev_seq);
                }
            }
        }
        // Lines a beacon already reported missing are not reported again.
        // (A sender's own `prev` may have claimed any number: saturating.)
        let had = last_in_epoch.max(seen_seq(seen, epoch));
        if seq > had.saturating_add(1) {
            missed.push((epoch, seq - had - 1));
        }
        note_seen(seen, epoch, seq);
        missed.sort_unstable();
        for (epoch, count) in missed {
            out.push(Action::Event(Event::Missed {
                from: sender.info(),
                epoch,
                count,
                private,
            }));
        }
    }
}

/// Puts `(epoch, seq)` first in `prev`, the oldest falling off.
fn push_prev(prev: &mut Prev, last: (u64, u64)) {
    prev.rotate_right(1);
    prev[0] = last;
}

/// Per-sender epochs remembered for gap accounting.
const SEEN_EPOCHS: usize = 8;

/// The last seq we had from a sender in `epoch` (0 if none).
fn seen_seq(seen: &[(u64, u64)], epoch: u64) -> u64 {
    seen.iter()
        .find(|(e, _)| *e == epoch)
        .map_or(0, |(_, s)| *s)
}

/// Records `seq` as had in `epoch` (never lowers it), keeping the newest
/// [`SEEN_EPOCHS`] epochs.
fn note_seen(seen: &mut Vec<(u64, u64)>, epoch: u64, seq: u64) {
    match seen.iter_mut().find(|(e, _)| *e == epoch) {
        Some(entry) => entry.1 = entry.1.max(seq),
        None => {
            seen.push((epoch, seq));
            seen.sort_unstable();
            if seen.len() > SEEN_EPOCHS {
                seen.remove(0);
            }
        }
    }
}

/// The installed epoch a frame sealed in `epoch` by `sender` belongs to:
/// the current one, or the previous one for `PREVIOUS_EPOCH_GRACE_MS` after
/// a rekey if the sender is still a member. Otherwise why a frame of
/// `kind` is dropped.
pub(crate) fn epoch_for<'a>(
    current: &'a mut Option<EpochState>,
    previous: &'a mut Option<EpochState>,
    now_ms: u64,
    epoch: u64,
    sender: &Fingerprint,
    kind: Kind,
) -> Result<&'a mut EpochState, Dropped> {
    let in_grace = |c: &EpochState| {
        now_ms.saturating_sub(c.since_ms) <= PREVIOUS_EPOCH_GRACE_MS
            && c.members.contains_key(sender)
    };
    let current_epoch = current.as_ref().map(|c| c.epoch);
    let previous_ok = match (current.as_ref(), previous.as_ref()) {
        (Some(c), Some(p)) => p.epoch == epoch && in_grace(c),
        _ => false,
    };
    let dropped = match current_epoch {
        Some(e) if e == epoch => return current.as_mut().ok_or(Dropped::NoKey(kind)),
        _ if previous_ok => return previous.as_mut().ok_or(Dropped::NoKey(kind)),
        None => Dropped::NoKey(kind),
        Some(current) if epoch < current => Dropped::OldEpoch {
            kind,
            epoch,
            current,
        },
        Some(_) => Dropped::UnknownEpoch { kind, epoch },
    };
    Err(dropped)
}
