//! The member's side of joining: the admin's announce checked against the
//! invite pin, knocks, and the join request sealed to the admin's X25519
//! key (never to its RSA key).

use super::*;

impl Member {
    /// A knock the room prompted: now, or at the first tick after
    /// [`KNOCK_GAP_MS`] since the last one.
    pub(super) fn knock_prompted(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        match self.knock {
            Some((_, at)) if now_ms >= at && now_ms - at < KNOCK_GAP_MS => self.knock_soon = true,
            _ => self.send_knock(now_ms, out),
        }
    }

    pub(super) fn send_knock(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let nonce = self.core.rng.array();
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

    pub(super) fn on_announce(
        &mut self,
        now_ms: u64,
        from: ConnId,
        signed: &Signed,
        out: &mut Vec<Action>,
    ) {
        let Ok(a) = decode_payload::<Announce>(&signed.body, self.core.max_frame) else {
            out.push(warning(Dropped::MalformedAnnouncement));
            return;
        };
        if a.room != self.cfg.room {
            out.push(warning(Dropped::AnnouncementForAnotherRoom));
            return;
        }
        if !crate::crypto::same_fingerprint(
            &crate::crypto::fingerprint_of(&a.admin_key),
            &self.cfg.admin_pin,
        ) {
            out.push(warning(Dropped::AnnouncementNotFromAdmin));
            return;
        }
        let key = match PublicKey::from_spki_der(&a.admin_key) {
            Ok(k) => k,
            Err(e) => {
                out.push(warning(Dropped::AnnouncementUnusableKey(e)));
                return;
            }
        };
        if key
            .verify(context::ANNOUNCE, &signed.body, &signed.signature)
            .is_err()
        {
            out.push(warning(Dropped::AnnouncementBadSignature));
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
                out.push(warning(Dropped::EarlierRun {
                    run: a.run,
                    ours: self.run.map_or(self.run_floor, |r| r.number),
                }));
                return;
            }
            if !latest {
                // Only the answer to our latest knock may move us to a new
                // run: an older answer may have been held back.
                out.push(warning(Dropped::AnswerCannotStartRun));
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
                self.core.dh = crate::crypto::DhSecret::generate(&mut self.core.rng);
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
            out.push(warning(Warning::AdminReconnected));
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

    pub(super) fn send_join_request(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let (Some(admin), Some(run)) = (&self.admin, self.run) else {
            return;
        };
        let join_key = run.join_key;
        let room = self.cfg.room;
        let eph = DhSecret::generate(&mut self.core.rng);
        let eph_pub = eph.public();
        let Ok(keys) = eph.agree(&join_key, context::DH_JOIN, &room, &eph_pub, &join_key) else {
            out.push(warning(Dropped::UnusableJoinKey));
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
            name: crate::engine::clean_name(&self.cfg.name),
            member_key: me.spki_der().to_vec().into(),
            dh_key: self.core.dh.public(),
            password_proof: proof,
            sent_at_ms: now_ms,
            padding: Default::default(),
        }
        .pad();
        let core = &mut self.core;
        let Ok(signed) = core
            .me
            .sign_body(&mut core.rng, context::JOIN, &info, core.max_frame)
        else {
            return;
        };
        let Ok(plain) = encode_payload(&signed, self.core.max_frame) else {
            return;
        };
        let sealed = seal(
            &mut self.core.rng,
            &keys,
            &JoinRequest::aad(&room, &eph_pub, &join_key),
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
}
