//! Nothing typed is lost: every line and private message the user writes
//! waits in the outbox until the relay acknowledges it
//! ([`RelayFrame::Ack`](crate::wire::RelayFrame::Ack)), and goes again on
//! the next connection if the relay never did.
//!
//! A line is sealed as soon as sending is allowed (in order: a line never
//! overtakes an earlier one), and its `Publish` is numbered on this
//! connection; the relay's cumulative count of the `Publish` frames it took
//! marks it delivered. A new connection starts the count afresh, and every
//! line still unacknowledged is sealed again under the epoch of then as a
//! [`Content::Resent`] naming its first sealing: a reader that already
//! shows that line (the relay took it and its acknowledgement was lost)
//! drops the copy, and one that missed it shows it now. A line waits while
//! sending is paused (reconnecting, waiting for the key), for
//! [`OUTBOX_EXPIRY_MS`] at most, and fails, with the reason, when it can
//! never be sent (we were removed, the recipient left). The outbox holds
//! [`MAX_OUTBOX`] lines: readers remember as many shown lines per sender
//! ([`SHOWN_PER_SENDER`]), so any copy of a line still in an outbox is
//! recognised.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::{error, Action, Core, Event, MAX_TEXT};
use crate::ids::Fingerprint;
use crate::wire::{Ack, ChatBody, Content, Resent};

/// Lines an outbox holds at most; one more is refused with an error.
pub const MAX_OUTBOX: usize = 256;
/// A line not acknowledged this long after it was typed fails.
pub const OUTBOX_EXPIRY_MS: u64 = 10 * 60 * 1000;
/// Lines remembered per sender (room and private apart), by the epoch and
/// sequence number they were first sealed with: a resent copy of one of
/// them is not shown again. At least [`MAX_OUTBOX`].
pub const SHOWN_PER_SENDER: usize = 2 * MAX_OUTBOX;

/// Where one of our lines stands, for the front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Kept, to be sent when sending is allowed again (why it waits).
    Waiting(String),
    /// The relay took it: on its way to the room.
    Delivered,
    /// It will not be sent (why); it never left us, so the user may send
    /// it again without anyone reading it twice.
    Failed(String),
    /// It went out but the relay never confirmed it, and it will not go
    /// again (why): some may have read it, some not. Sending it again
    /// would show it twice to those who did.
    Unconfirmed(String),
}

/// One of our lines, kept until the relay took it.
#[derive(Clone)]
pub struct Outgoing {
    /// The front end's handle on it (unique in this engine).
    pub id: u64,
    /// A private message's recipient; `None` for the room.
    pub to: Option<Fingerprint>,
    /// The line.
    pub text: String,
    /// When it was typed (ms since the Unix epoch): what readers are shown.
    pub typed_ms: u64,
    /// Its first sealing (epoch, sequence number), once sealed.
    pub first: Option<(u64, u64)>,
    /// The number of its `Publish` on this connection, while in flight.
    frame: Option<u64>,
    /// Put back from an earlier run of the app: whom its first sealing
    /// reached is not known.
    restored: bool,
    /// (Room lines) who could read its first sealing: it is sent again
    /// only to them (nobody who joined since reads it).
    audience: Option<Arc<HashSet<Fingerprint>>>,
}

impl Outgoing {
    /// A line kept from an earlier run of the app (see
    /// [`crate::engine::Engine::restore_line`]).
    pub fn new(
        id: u64,
        to: Option<Fingerprint>,
        text: String,
        typed_ms: u64,
        first: Option<(u64, u64)>,
    ) -> Self {
        Outgoing {
            id,
            to,
            text,
            typed_ms,
            first,
            frame: None,
            restored: false,
            audience: None,
        }
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("id", &self.id)
            .field("to", &self.to.map(|t| t.short()))
            .field("text_len", &self.text.len())
            .field("first", &self.first)
            .field("frame", &self.frame)
            .finish()
    }
}

/// Our lines not yet acknowledged, oldest first, and this connection's
/// count of what we published.
#[derive(Clone, Default)]
pub(crate) struct Outbox {
    lines: VecDeque<Outgoing>,
    next_id: u64,
    /// `Publish` and `PublishBulk` frames sent on this connection.
    pub published: Ack,
    /// Sending was paused when the oldest waiting line was queued: said once.
    told_waiting: bool,
    /// Why no line can be sent until an epoch seats us again (we were
    /// removed, denied, the room closed): new lines are refused.
    pub refuse: Option<String>,
    /// Every message we published on this connection and the relay has
    /// not acknowledged yet.
    in_flight: VecDeque<InFlight>,
    /// Members we know were removed (a kick notice named them): no private
    /// line waits for them.
    pub removed: HashSet<Fingerprint>,
    /// After a reconnect: who was in the room before, and since when
    /// sending is allowed again (ms), while the lines wait for them.
    settle: Option<(HashSet<Fingerprint>, Option<u64>)>,
    /// The members of the epoch our room lines were last first sealed in
    /// (shared by those lines).
    audience: Option<(u64, Arc<HashSet<Fingerprint>>)>,
    /// What a lost connection never got acknowledged: the end of its
    /// epoch may be told without them (`prev`), so readers are not told of
    /// missing lines that come back resent ([`Core::claimed`]).
    withdrawn: Vec<InFlight>,
    /// Lines given up on their own (a new admin run): their end, said at
    /// the next turn.
    ended: Vec<(u64, Delivery)>,
}

/// A message we published and the relay has not acknowledged.
#[derive(Clone, Copy)]
struct InFlight {
    /// Its `Publish` number on this connection.
    frame: u64,
    epoch: u64,
    /// A private message's recipient.
    to: Option<Fingerprint>,
    seq: u64,
    /// The outbox line it carries, if any (else a notice: typing, a
    /// goodbye, a file offer, which nobody misses).
    line: Option<u64>,
}

/// Messages remembered as in flight at most (the oldest then count as
/// taken).
const MAX_IN_FLIGHT: usize = 8_192;

/// After a reconnect, how long the lines that wait are held for the room
/// to be whole again (everyone who was in it before, back in the epoch we
/// send in), counted from when sending is allowed: a relay that died takes
/// every member with it, and the first one back must not say what the
/// others, a moment behind, would miss.
pub const SETTLE_MS: u64 = 5_000;

/// Senders whose shown lines are remembered at most: past it, the one
/// heard from least recently is forgotten.
const SHOWN_SENDERS: usize = 4_096;

/// Lines shown per sender, by first sealing, the oldest forgotten first.
#[derive(Clone, Default)]
pub(crate) struct Shown {
    /// Per sender: when it was last heard (a count of lines shown) and its
    /// lines.
    by: HashMap<Fingerprint, (u64, VecDeque<(u64, u64)>)>,
    count: u64,
}

impl Shown {
    /// Records a line of `from` first sealed as `first`; false if it was
    /// shown already.
    pub fn first_time(&mut self, from: Fingerprint, first: (u64, u64)) -> bool {
        self.count += 1;
        if !self.by.contains_key(&from) && self.by.len() >= SHOWN_SENDERS {
            if let Some(oldest) = self
                .by
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(fp, _)| *fp)
            {
                self.by.remove(&oldest);
            }
        }
        let (at, seen) = self.by.entry(from).or_default();
        *at = self.count;
        if seen.contains(&first) {
            return false;
        }
        if seen.len() >= SHOWN_PER_SENDER {
            seen.pop_front();
        }
        seen.push_back(first);
        true
    }

    pub fn clear(&mut self) {
        self.by.clear();
    }
}

impl Outbox {
    /// The withdrawn messages were told (an epoch was installed).
    pub fn clear_withdrawn(&mut self) {
        self.withdrawn.clear();
    }

    /// A new admin run (its epochs count from 1 again, readers forget the
    /// old run's): a line that never went out goes as new; one that went
    /// out ends unconfirmed (sent again, it could reach people of the new
    /// run who were not there, or show twice to those who were).
    pub fn forget_first_sealings(&mut self) {
        let (gone, kept): (Vec<Outgoing>, Vec<Outgoing>) = std::mem::take(&mut self.lines)
            .into_iter()
            .partition(|l| l.first.is_some());
        self.lines = kept.into();
        for l in gone {
            self.ended.push((
                l.id,
                Delivery::Unconfirmed(
                    "the admin restarted the room before the relay confirmed it".into(),
                ),
            ));
        }
        self.withdrawn.clear();
        self.in_flight.clear();
    }

    /// A message we just published (`Publish` number `frame`).
    pub fn published_message(&mut self, frame: u64, epoch: u64, to: Option<Fingerprint>, seq: u64) {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back(InFlight {
            frame,
            epoch,
            to,
            seq,
            line: None,
        });
    }
}

impl Core {
    /// Takes a line the user wrote (to the room, or privately to `to`)
    /// into the outbox and sends it if sending is allowed; false (with an
    /// error, and no line) if it can never be sent.
    pub fn write_line(
        &mut self,
        now_ms: u64,
        to: Option<Fingerprint>,
        text: String,
        out: &mut Vec<Action>,
    ) -> bool {
        if text.len() > MAX_TEXT {
            out.push(error(format!(
                "message too long (at most {MAX_TEXT} bytes)"
            )));
            return false;
        }
        if let Some(why) = &self.outbox.refuse {
            out.push(error(format!("not sent: {why}")));
            return false;
        }
        if let Some(to) = to {
            if to == self.me.public().fingerprint() {
                out.push(error("a private message to yourself is not sent".into()));
                return false;
            }
            // In the room as we know it, or just before (reconnecting:
            // the line waits for them).
            let known = [&self.current, &self.previous]
                .into_iter()
                .flatten()
                .any(|c| c.members.contains_key(&to));
            if !known || self.outbox.removed.contains(&to) {
                out.push(error(format!(
                    "{} is not in the room: private message not sent",
                    to.short()
                )));
                return false;
            }
        }
        if self.outbox.lines.len() >= MAX_OUTBOX {
            out.push(error(format!(
                "not sent: {MAX_OUTBOX} lines are still waiting for the relay"
            )));
            return false;
        }
        self.outbox.next_id += 1;
        let id = self.outbox.next_id;
        let line = Outgoing::new(id, to, text.clone(), now_ms, None);
        self.outbox.lines.push_back(line);
        let recipient = to.and_then(|t| {
            [&self.current, &self.previous]
                .into_iter()
                .flatten()
                .find_map(|c| c.members.get(&t))
        });
        // Shown as the readers will see it (mentions by name).
        let text = self.show_mentions(&text);
        let shown = match recipient {
            Some(p) => Event::PrivateSent {
                id,
                to: p.info(),
                text,
                sent_at_ms: now_ms,
            },
            None => Event::Sent {
                id,
                text,
                sent_at_ms: now_ms,
            },
        };
        out.push(Action::Event(shown));
        // Sent now if sending is allowed (by the role's flush, after this
        // command); otherwise it waits, and the user is told why.
        if let Some(why) = self.send_blocked(now_ms) {
            self.outbox.told_waiting = true;
            out.push(delivery(id, Delivery::Waiting(waiting_because(&why))));
        }
        true
    }

    /// Sends the lines that wait, in order, while sending is allowed, at
    /// most `max` room lines; the number of room lines sealed (the admin
    /// counts each towards a rekey). A private line whose recipient is not
    /// in the room now waits for them (they may be reconnecting) without
    /// holding up the others.
    pub fn flush_outbox(&mut self, now_ms: u64, max: u64, out: &mut Vec<Action>) -> u64 {
        for (id, state) in std::mem::take(&mut self.outbox.ended) {
            out.push(delivery(id, state));
        }
        let mut room_lines = 0;
        // (The hold after a reconnect runs from when sending is allowed,
        // whether or not a line waits.)
        if self.outbox.settle.is_none() && self.outbox.lines.iter().all(|l| l.frame.is_some()) {
            return 0;
        }
        if self.send_blocked(now_ms).is_some() || self.settling(now_ms) {
            return 0;
        }
        if self.outbox.lines.iter().all(|l| l.frame.is_some()) {
            return 0;
        }
        let mut i = 0;
        while i < self.outbox.lines.len() && room_lines < max {
            if self.outbox.lines[i].frame.is_some() {
                i += 1;
                continue;
            }
            let line = self.outbox.lines[i].clone();
            let Some(cur) = &self.current else { break };
            if line.to.is_some() && line.first.is_some() && line.restored {
                // Put back after a restart: the run and epochs it named
                // may be gone (and a copy could hide a later line).
                self.outbox.lines.remove(i);
                out.push(delivery(
                    line.id,
                    Delivery::Unconfirmed("the app restarted before the relay confirmed it".into()),
                ));
                continue;
            }
            if let Some(to) = line.to {
                if !cur.members.contains_key(&to) {
                    i += 1;
                    continue;
                }
            } else if line.first.is_some() {
                // Sent again only to those who could read it the first
                // time: never to a newcomer (a line said before they
                // joined is not theirs to read).
                let me = self.me.public().fingerprint();
                let newcomer = match &line.audience {
                    Some(a) => cur.order.iter().any(|fp| *fp != me && !a.contains(fp)),
                    // Kept across a restart: whom it reached is not known.
                    None => true,
                };
                if newcomer {
                    self.outbox.lines.remove(i);
                    let why = if line.audience.is_some() {
                        "someone joined the room since it went out, so it was not sent again"
                    } else {
                        "the app restarted before the relay confirmed it"
                    };
                    out.push(delivery(
                        line.id,
                        Delivery::Unconfirmed(format!(
                            "{why}; the relay never confirmed it reached the room"
                        )),
                    ));
                    continue;
                }
            }
            let content = match line.first {
                None => Content::Text(line.text.clone()),
                Some((epoch, seq)) => Content::Resent(Resent {
                    epoch,
                    seq,
                    sent_at_ms: line.typed_ms,
                    text: line.text.clone(),
                }),
            };
            let mut said = Vec::new();
            let sealed = match line.to {
                None => self
                    .seal_content(now_ms, content, &mut said)
                    .inspect(|_| room_lines += 1),
                Some(to) => self
                    .seal_private(now_ms, to, content, &mut said)
                    .map(|(_, epoch, seq)| (epoch, seq)),
            };
            match sealed {
                Some(at) => {
                    out.extend(said);
                    let frame = self.outbox.published.publish;
                    if let Some(m) = self
                        .outbox
                        .in_flight
                        .back_mut()
                        .filter(|m| m.frame == frame)
                    {
                        m.line = Some(line.id);
                    }
                    let audience =
                        (line.to.is_none() && line.first.is_none()).then(|| self.audience_of(at.0));
                    let l = &mut self.outbox.lines[i];
                    l.first = l.first.or(Some(at));
                    l.audience = l.audience.take().or(audience.flatten());
                    l.frame = Some(self.outbox.published.publish);
                    i += 1;
                }
                None => {
                    // It can never go (the recipient left, or it no longer
                    // fits): said, and the lines after it go on.
                    let why = said
                        .into_iter()
                        .find_map(|a| match a {
                            Action::Event(Event::Error { reason }) => Some(reason),
                            _ => None,
                        })
                        .unwrap_or_else(|| "it could not be sealed".into());
                    self.outbox.lines.remove(i);
                    out.push(delivery(line.id, Delivery::Failed(why)));
                }
            }
        }
        room_lines
    }

    /// The relay took our frames up to `ack`: those lines are delivered.
    pub fn on_ack(&mut self, ack: Ack, out: &mut Vec<Action>) {
        // A count beyond what we sent is the relay's error (or lie): it
        // marks nothing we did not send on this connection.
        let upto = ack.publish.min(self.outbox.published.publish);
        while self
            .outbox
            .in_flight
            .front()
            .is_some_and(|m| m.frame <= upto)
        {
            self.outbox.in_flight.pop_front();
        }
        // In flight in order; a private line waiting for its recipient
        // may stand before them.
        let (taken, rest): (Vec<Outgoing>, Vec<Outgoing>) = std::mem::take(&mut self.outbox.lines)
            .into_iter()
            .partition(|l| l.frame.is_some_and(|f| f <= upto));
        self.outbox.lines = rest.into();
        for l in taken {
            out.push(delivery(l.id, Delivery::Delivered));
        }
    }

    /// A new connection: nothing of ours is in flight on it; what the old
    /// one never acknowledged goes again once sending is allowed.
    pub fn outbox_reconnected(&mut self) {
        // Who the lines that wait were for: held for them a moment.
        if self.outbox.settle.is_none() {
            let me = self.me.public().fingerprint();
            let before: HashSet<Fingerprint> = self
                .current
                .iter()
                .flat_map(|c| c.order.iter().copied())
                .filter(|fp| *fp != me && !self.outbox.removed.contains(fp))
                .collect();
            self.outbox.settle = Some((before, None));
        }
        // A new connection, a new hold: counted from when sending is
        // allowed on it.
        if let Some((_, since)) = &mut self.outbox.settle {
            *since = None;
        }
        // What the relay never acknowledged is withdrawn (see `claimed`).
        let in_flight = std::mem::take(&mut self.outbox.in_flight);
        self.outbox.withdrawn.extend(in_flight);
        let over = self.outbox.withdrawn.len().saturating_sub(MAX_IN_FLIGHT);
        self.outbox.withdrawn.drain(..over);
        self.outbox.published = Ack::default();
        self.outbox.told_waiting = false;
        for l in &mut self.outbox.lines {
            l.frame = None;
        }
    }

    /// Lines typed too long ago fail; and if sending is paused with lines
    /// waiting, the reason is said once.
    pub fn outbox_tick(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        for (id, state) in std::mem::take(&mut self.outbox.ended) {
            out.push(delivery(id, state));
        }
        let (expired, kept): (Vec<Outgoing>, Vec<Outgoing>) =
            std::mem::take(&mut self.outbox.lines)
                .into_iter()
                .partition(|l| now_ms.saturating_sub(l.typed_ms) >= OUTBOX_EXPIRY_MS);
        self.outbox.lines = kept.into();
        for l in expired {
            let why = format!(
                "not confirmed by the relay within {} minutes",
                OUTBOX_EXPIRY_MS / 60_000
            );
            out.push(delivery(l.id, ended(&l, why)));
        }
        let waiting = self.outbox.lines.iter().any(|l| l.frame.is_none());
        if !waiting {
            self.outbox.told_waiting = false;
        } else if !self.outbox.told_waiting {
            if let Some(why) = self.send_blocked(now_ms) {
                self.outbox.told_waiting = true;
                for l in self.outbox.lines.iter().filter(|l| l.frame.is_none()) {
                    out.push(delivery(l.id, Delivery::Waiting(waiting_because(&why))));
                }
            }
        }
    }

    /// Every waiting line fails with `why` (we were removed, the room
    /// closed), and so does every new one until an epoch seats us again.
    pub fn fail_outbox(&mut self, why: &str, out: &mut Vec<Action>) {
        self.outbox.refuse = Some(why.to_string());
        for l in std::mem::take(&mut self.outbox.lines) {
            out.push(delivery(l.id, ended(&l, why.to_string())));
        }
    }

    /// `fp` was removed from the room: private lines to it will not wait.
    pub fn note_removed(&mut self, fp: Fingerprint, out: &mut Vec<Action>) {
        if self.outbox.removed.len() < MAX_OUTBOX {
            self.outbox.removed.insert(fp);
        }
        let (gone, kept): (Vec<Outgoing>, Vec<Outgoing>) = std::mem::take(&mut self.outbox.lines)
            .into_iter()
            .partition(|l| l.to == Some(fp) && l.frame.is_none());
        self.outbox.lines = kept.into();
        for l in gone {
            let why = format!("{} was removed from the room", fp.short());
            out.push(delivery(l.id, ended(&l, why)));
        }
    }

    /// We left and the relay's last acknowledgements are in: what is
    /// left was never confirmed.
    pub fn outbox_left(&mut self, out: &mut Vec<Action>) {
        self.fail_outbox("you left before the relay confirmed it", out);
    }

    /// We leave: no new line is taken (`why`); the lines that wait stay,
    /// for the relay's acknowledgement that may still come, then for the
    /// client runtime to keep them for the next start (or give them up,
    /// [`Core::outbox_left`]).
    pub fn leaving(&mut self, why: &str) {
        self.outbox.refuse = Some(why.to_string());
        self.outbox.settle = None;
    }

    /// We left, and the lines that never went out are kept on this
    /// computer (said); those that went out end unconfirmed (they are not
    /// sent again after a restart).
    pub fn outbox_kept(&mut self, out: &mut Vec<Action>) {
        let (sent, kept): (Vec<Outgoing>, Vec<Outgoing>) = std::mem::take(&mut self.outbox.lines)
            .into_iter()
            .partition(|l| l.first.is_some());
        self.outbox.lines = kept.into();
        for l in sent {
            let why = "you left before the relay confirmed it".to_string();
            out.push(delivery(l.id, Delivery::Unconfirmed(why)));
        }
        for l in &self.outbox.lines {
            out.push(delivery(
                l.id,
                Delivery::Waiting(
                    "kept on this computer: it goes when you open the room again".into(),
                ),
            ));
        }
    }

    /// The connection is gone: nothing of ours is on its way now; what
    /// waits is said to wait.
    pub fn outbox_disconnected(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        self.conn_id = None;
        self.outbox_reconnected();
        self.outbox_tick(now_ms, out);
    }

    /// The lines not yet acknowledged, oldest first (kept by the client
    /// runtime across a restart).
    pub fn outbox_lines(&self) -> impl Iterator<Item = &Outgoing> {
        self.outbox.lines.iter()
    }

    /// Puts back a line kept from an earlier run of the app (its id, text,
    /// time typed and first sealing), to be sent again: false if the
    /// outbox is full or the line is too long.
    pub fn restore_line(&mut self, line: Outgoing) -> bool {
        if self.outbox.lines.len() >= MAX_OUTBOX || line.text.len() > MAX_TEXT {
            return false;
        }
        self.outbox.next_id = self.outbox.next_id.max(line.id);
        self.outbox.lines.push_back(Outgoing {
            frame: None,
            restored: true,
            ..line
        });
        true
    }

    /// Whether the lines that wait are still held for the room to be whole
    /// again after a reconnect ([`SETTLE_MS`]).
    fn settling(&mut self, now_ms: u64) -> bool {
        let Some((before, since)) = &mut self.outbox.settle else {
            return false;
        };
        let since = *since.get_or_insert(now_ms);
        let whole = self.current.as_ref().is_some_and(|c| {
            before
                .iter()
                .all(|fp| c.members.contains_key(fp) || self.outbox.removed.contains(fp))
        });
        if whole || now_ms.saturating_sub(since) >= SETTLE_MS || now_ms < since {
            self.outbox.settle = None;
            return false;
        }
        true
    }

    /// How an epoch of ours ended, as told to readers (`prev`) when `next`
    /// is installed: `seq`, or less if a lost connection withdrew its last
    /// messages and each will reach the same people again (a notice, which
    /// nobody misses; or a line still in the outbox that nobody new would
    /// read and whose readers are all in `next` or waited for after the
    /// reconnect, [`SETTLE_MS`]: one who is not back by then was away when
    /// it was said, and is told so). A withdrawn line that may not reach
    /// them stays counted: a reader it does not reach is told it missed
    /// it.
    pub(crate) fn claimed(
        &self,
        to: Option<Fingerprint>,
        epoch: u64,
        seq: u64,
        next: &HashMap<Fingerprint, super::Participant>,
    ) -> u64 {
        // Those the lines wait for after a reconnect (the room whole
        // again): back in the next epoch, or told they were away.
        let empty = HashSet::new();
        let before = self.outbox.settle.as_ref().map_or(&empty, |(b, _)| b);
        let back = |fp: &Fingerprint| next.contains_key(fp) || before.contains(fp);
        let again = |w: &InFlight| match w.line {
            None => true,
            Some(id) => self.outbox.lines.iter().any(|l| {
                l.id == id
                    && match (&l.to, &l.audience) {
                        (Some(r), _) => back(r),
                        // Nobody new, and everyone it was for back (or
                        // waited for).
                        (None, Some(a)) => {
                            next.keys().all(|fp| a.contains(fp)) && a.iter().all(back)
                        }
                        (None, None) => false,
                    }
            }),
        };
        let mut claim = seq;
        while claim > 0
            && self
                .outbox
                .withdrawn
                .iter()
                .any(|w| w.to == to && w.epoch == epoch && w.seq == claim && again(w))
        {
            claim -= 1;
        }
        claim
    }

    /// The members of `epoch` (the current one), shared by the lines first
    /// sealed in it.
    fn audience_of(&mut self, epoch: u64) -> Option<Arc<HashSet<Fingerprint>>> {
        let cur = self.current.as_ref().filter(|c| c.epoch == epoch)?;
        if let Some((e, a)) = &self.outbox.audience {
            if *e == epoch {
                return Some(Arc::clone(a));
            }
        }
        let a = Arc::new(cur.order.iter().copied().collect::<HashSet<_>>());
        self.outbox.audience = Some((epoch, Arc::clone(&a)));
        Some(a)
    }

    /// Seals and publishes a room body (no outbox): its epoch and sequence
    /// number, or `None` with an error event.
    pub(crate) fn seal_content(
        &mut self,
        now_ms: u64,
        content: Content,
        out: &mut Vec<Action>,
    ) -> Option<(u64, u64)> {
        let before = self.my_seq;
        if !self.send_content(now_ms, content, out) {
            return None;
        }
        let epoch = self.current.as_ref()?.epoch;
        (self.my_seq > before).then_some((epoch, self.my_seq))
    }

    /// A received line (text, or resent text) of `from`, first sealed as
    /// `first` in its `private` or room sequence: its text and time to
    /// show, or `None` if it was shown already (a resent copy).
    pub(crate) fn line_to_show(
        &mut self,
        from: Fingerprint,
        private: bool,
        first: (u64, u64),
        body: &ChatBody,
    ) -> Option<(String, u64)> {
        let shown = if private {
            &mut self.shown_private
        } else {
            &mut self.shown
        };
        let (first, text, at) = match &body.content {
            Content::Text(t) => (first, t, body.sent_at_ms),
            Content::Resent(r) => ((r.epoch, r.seq), &r.text, r.sent_at_ms),
            _ => return None,
        };
        shown.first_time(from, first).then(|| (text.clone(), at))
    }
}

/// Why a line waits, said to the user.
fn waiting_because(blocked: &str) -> String {
    let why = blocked.strip_prefix("not sent: ").unwrap_or(blocked);
    format!("waiting to be sent: {why}")
}

/// How a line that will not go on ends: failed if it never went out,
/// unconfirmed if it did.
fn ended(l: &Outgoing, why: String) -> Delivery {
    if l.first.is_some() {
        Delivery::Unconfirmed(why)
    } else {
        Delivery::Failed(why)
    }
}

fn delivery(id: u64, state: Delivery) -> Action {
    Action::Event(Event::Delivery { id, state })
}
