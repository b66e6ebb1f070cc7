//! Private messages: sealed by X25519 to one member's key of the current
//! epoch, signed by the sender, numbered per recipient, and shown only to
//! that member (the relay routes them to its connection alone).

use super::{
    check_signed, error, seal_signed, warning, Action, Checked, Core, Dropped, Event, Kind,
    MemberInfo, Participant, MAX_TEXT,
};
use crate::crypto::seal::open;
use crate::crypto::DhSecret;
use crate::ids::Fingerprint;
use crate::wire::{
    aad, context, decode_payload, ChatBody, Content, Envelope, PrivateHeader, PrivateMessage,
};

impl Core {
    /// Seals `content` to the member `to` of the current epoch (an
    /// ephemeral X25519 key against its roster key), signs it and publishes
    /// it: who it went to, the epoch and our sequence number, or `None`
    /// (with an error event) if it cannot be sent.
    pub fn seal_private(
        &mut self,
        now_ms: u64,
        to: Fingerprint,
        content: Content,
        out: &mut Vec<Action>,
    ) -> Option<(MemberInfo, u64, u64)> {
        let me = self.me.public().fingerprint();
        if let Some(why) = self.send_blocked(now_ms) {
            out.push(error(why));
            return None;
        }
        let Some(cur) = &self.current else {
            return None;
        };
        if to == me {
            out.push(error("a private message to yourself is not sent".into()));
            return None;
        }
        let Some(recipient) = cur.members.get(&to) else {
            out.push(error(format!(
                "{} is not in the room: private message not sent",
                to.short()
            )));
            return None;
        };
        let eph = DhSecret::generate(&mut self.rng);
        let eph_pub = eph.public();
        let Ok(keys) = eph.agree(
            &recipient.dh_key,
            context::DH_PRIVATE,
            &self.room,
            &eph_pub,
            &recipient.dh_key,
        ) else {
            out.push(error(format!(
                "{}'s private-message key is unusable: not sent",
                recipient.name
            )));
            return None;
        };
        let seq = self.private_seq.get(&to).copied().unwrap_or(0) + 1;
        let header = PrivateHeader {
            room: self.room,
            epoch: cur.epoch,
            sender: me,
            recipient: to,
            seq,
            prev: self.private_prev.get(&to).copied().unwrap_or_default(),
            ephemeral: eph_pub,
        };
        let body = ChatBody::padded(now_ms, content);
        let Some((sealed, signature)) = seal_signed(
            &mut self.rng,
            &self.me,
            self.max_frame,
            Kind::Private,
            &keys,
            &header,
            &body,
        ) else {
            out.push(error("message too large".into()));
            return None;
        };
        let to_info = recipient.info();
        let epoch = cur.epoch;
        let msg = PrivateMessage {
            header,
            sealed,
            signature,
        };
        if !self.publish(None, &Envelope::Private(msg), out) {
            return None;
        }
        self.private_seq.insert(to, seq);
        let frame = self.outbox.published.publish;
        self.outbox.published_message(frame, epoch, Some(to), seq);
        Some((to_info, epoch, seq))
    }

    /// Checks a private message: `Ok(None)` if it is addressed to someone
    /// else (every member receives every private message; only the
    /// recipient can open it), the sender and text if it verified and
    /// opened, or a warning. Order: room, recipient, epoch, roster, replay,
    /// signature, then the MAC and decryption.
    pub fn receive_private(
        &mut self,
        now_ms: u64,
        msg: &PrivateMessage,
        out: &mut Vec<Action>,
    ) -> Result<Option<(Participant, ChatBody)>, Dropped> {
        const KIND: Kind = Kind::Private;
        let h = &msg.header;
        if h.room != self.room {
            return Err(Dropped::ForAnotherRoom(KIND));
        }
        let me = self.me.public().fingerprint();
        if h.recipient != me {
            return Ok(None);
        }
        if h.sender == me {
            return Err(Dropped::ClaimsToBeUs);
        }
        let Checked {
            state,
            sender,
            last,
        } = check_signed(
            (&mut self.current, &mut self.previous),
            now_ms,
            self.max_frame,
            h,
            &msg.sealed,
            &msg.signature,
        )?;
        let name = || sender.name.clone();
        let failed = || Dropped::Unauthentic {
            kind: KIND,
            name: name(),
        };
        let my_dh = self.dh.public();
        let keys = self
            .dh
            .agree(
                &h.ephemeral,
                context::DH_PRIVATE,
                &self.room,
                &h.ephemeral,
                &my_dh,
            )
            .map_err(|_| failed())?;
        let plain =
            open(&keys, &aad(context::AAD_PRIVATE, h), &msg.sealed).map_err(|_| failed())?;
        let body: ChatBody =
            decode_payload(&plain, self.max_frame).map_err(|_| Dropped::Malformed {
                kind: KIND,
                name: name(),
            })?;
        state.last_private_seq.insert(h.sender, h.seq);
        self.account(true, &sender, (h.epoch, h.seq), last, h.prev, out);
        Ok(Some((sender, body)))
    }

    /// Handles a received private message: an event, a warning, or nothing
    /// (addressed to someone else).
    pub fn on_private(&mut self, now_ms: u64, msg: &PrivateMessage, out: &mut Vec<Action>) {
        match self.receive_private(now_ms, msg, out) {
            Ok(None) => {}
            Ok(Some((from, body))) => match body.content {
                Content::Text(_) | Content::Resent(_) => {
                    let (epoch, seq) = (msg.header.epoch, msg.header.seq);
                    let fp = from.key.fingerprint();
                    match self.line_to_show(fp, true, (epoch, seq), &body) {
                        // A resent copy of a line shown already.
                        None => {}
                        Some((text, sent_at_ms)) if text.len() <= MAX_TEXT => {
                            out.push(Action::Event(Event::Private {
                                from: from.info(),
                                text: self.show_mentions(&text),
                                sent_at_ms,
                                epoch,
                                seq,
                            }))
                        }
                        Some(_) => out.push(warning(Dropped::TooLong {
                            kind: Kind::Private,
                            name: from.name,
                        })),
                    }
                }
                Content::PrivateFileOffer(p) => {
                    let keys = crate::crypto::seal::private_file_keys(&p, &self.room);
                    self.on_file_offer(&from, p.offer.clone(), Some(keys), out)
                }
                Content::FileCancel(t) => self.on_file_cancel(&from.info(), t, out),
                _ => out.push(warning(Dropped::NotText { name: from.name })),
            },
            Err(w) => out.push(warning(w)),
        }
    }
}
