//! Room messages as every participant sends and takes them: sealed and
//! signed under the current epoch, numbered with the previous epochs'
//! counts; verified, replay-checked and opened, gaps in a sender's numbers
//! reported; and what arrived shown (text, typing, leaving, file offers).

use super::*;

impl Core {
    /// `text` with its mentions shown by the names the roster gives their
    /// keys (this epoch's, else the last one's).
    pub fn show_mentions(&self, text: &str) -> String {
        crate::engine::mentions::shown(text, |fp| {
            [&self.current, &self.previous]
                .into_iter()
                .flatten()
                .find_map(|c| c.members.get(fp))
                .map(|p| p.name.clone())
        })
    }

    /// Whether we may send to the room now.
    pub fn can_send(&self, now_ms: u64) -> bool {
        self.send_blocked(now_ms).is_none()
    }

    /// Seals, signs and publishes `content` under the current epoch; false
    /// (with an error event) if it could not be sent.
    pub fn send_content(&mut self, now_ms: u64, content: Content, out: &mut Vec<Action>) -> bool {
        if let Some(why) = self.send_blocked(now_ms) {
            out.push(error(why));
            return false;
        }
        let Some(cur) = &self.current else {
            return false;
        };
        let header = MessageHeader {
            room: self.room,
            epoch: cur.epoch,
            sender: self.me.public().fingerprint(),
            seq: self.my_seq + 1,
            prev: self.my_prev,
        };
        let body = ChatBody::padded(now_ms, content);
        let Some((sealed, signature)) = seal_signed(
            &mut self.rng,
            &self.me,
            self.max_frame,
            Kind::Message,
            &cur.keys,
            &header,
            &body,
        ) else {
            out.push(error("message too large".into()));
            return false;
        };
        let msg = ChatMessage {
            header,
            sealed,
            signature,
        };
        let (epoch, seq) = (msg.header.epoch, msg.header.seq);
        if !self.publish(None, &Envelope::Message(msg), out) {
            return false;
        }
        // Counted only once it went out: receivers see no gap for a
        // message that was never sent.
        self.my_seq = seq;
        let frame = self.outbox.published.publish;
        self.outbox.published_message(frame, epoch, None, seq);
        true
    }

    /// Verifies, replay-checks and opens a chat message; returns the sender
    /// and body, or a warning.
    pub fn receive_message(
        &mut self,
        now_ms: u64,
        msg: &ChatMessage,
        out: &mut Vec<Action>,
    ) -> Result<(Participant, ChatBody), Dropped> {
        const KIND: Kind = Kind::Message;
        let h = &msg.header;
        if h.room != self.room {
            return Err(Dropped::ForAnotherRoom(KIND));
        }
        if h.sender == self.me.public().fingerprint() {
            return Err(Dropped::OwnEcho);
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
        let plain =
            open(&state.keys, &aad(context::AAD_MESSAGE, h), &msg.sealed).map_err(|_| {
                Dropped::Unauthentic {
                    kind: KIND,
                    name: name(),
                }
            })?;
        let body: ChatBody =
            decode_payload(&plain, self.max_frame).map_err(|_| Dropped::Malformed {
                kind: KIND,
                name: name(),
            })?;
        state.last_seq.insert(h.sender, h.seq);
        self.account(false, &sender, (h.epoch, h.seq), last, h.prev, out);
        Ok((sender, body))
    }

    /// Turns a received chat body into events.
    pub fn show(
        &mut self,
        from: &Participant,
        body: ChatBody,
        epoch: u64,
        seq: u64,
        out: &mut Vec<Action>,
    ) {
        let info = from.info();
        match body.content {
            Content::Text(_) | Content::Resent(_) => {
                let Some((text, sent_at_ms)) =
                    self.line_to_show(info.fingerprint, false, (epoch, seq), &body)
                else {
                    // A resent copy of a line shown already.
                    return;
                };
                if text.len() > MAX_TEXT {
                    out.push(warning(Dropped::TooLong {
                        kind: Kind::Message,
                        name: info.name,
                    }));
                    return;
                }
                let mentions_me = crate::engine::mentions::mentioned(&text)
                    .contains(&self.me.public().fingerprint());
                let text = self.show_mentions(&text);
                out.push(Action::Event(Event::Message {
                    from: info,
                    text,
                    sent_at_ms,
                    epoch,
                    seq,
                    mentions_me,
                }))
            }
            Content::Typing(on) => out.push(Action::Event(Event::Typing { from: info, on })),
            Content::Leave => {}
            Content::FileOffer(offer) => self.on_file_offer(from, offer, None, out),
            Content::FileCancel(t) => self.on_file_cancel(&info, t, out),
            Content::PrivateFileOffer(_) => {
                out.push(warning(Dropped::PrivateOfferToRoom { name: info.name }))
            }
        }
    }
}
