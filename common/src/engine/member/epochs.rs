//! New epochs as a member takes them: only signed by the pinned admin, for
//! this room and run, never older than one held; roster parts gathered,
//! checked and installed.

use super::*;

impl Member {
    pub(super) fn on_epoch(&mut self, now_ms: u64, signed: &Signed, out: &mut Vec<Action>) {
        let (Some(admin_key), Some(run)) = (&self.admin_key, self.run) else {
            out.push(warning(Dropped::EpochBeforeAnnouncement));
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
                out.push(warning(Dropped::EpochNotFromAdmin));
                return;
            }
        };
        let body = v.body();
        let current = self.core.current.as_ref().map(|c| c.epoch).unwrap_or(0);
        if body.room != self.cfg.room {
            out.push(warning(Dropped::EpochForAnotherRoom));
            return;
        }
        if body.run != run.join_key {
            out.push(warning(Dropped::EpochFromAnotherRun));
            return;
        }
        if self.pending.as_ref().is_some_and(|p| p.epoch == body.epoch) {
            // A repeat of the epoch we are assembling: keep the parts we have.
            return;
        }
        if body.epoch <= current || body.epoch < self.min_epoch {
            out.push(warning(Dropped::StaleEpoch {
                epoch: body.epoch,
                current,
            }));
            return;
        }
        if body.roster.is_empty() || body.roster.len() > usize::from(u16::MAX) {
            out.push(warning(Dropped::EpochWithoutRoster));
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
                out.push(warning(Warning::SeatReleased { epoch: body.epoch }));
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
            out.push(warning(Dropped::EpochAnswersNothing { epoch: body.epoch }));
            return;
        };
        let epoch = body.epoch;
        let hashes = body.roster.clone();
        let parts = hashes.len();
        let key = match self.core.me.unwrap_epoch_key(&v) {
            Ok(k) => k,
            Err(_) => {
                out.push(warning(Dropped::UnwrapFailed));
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

    pub(super) fn on_roster_part(&mut self, now_ms: u64, part: RosterPart, out: &mut Vec<Action>) {
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

    pub(super) fn add_part(&mut self, part: RosterPart, out: &mut Vec<Action>) {
        let Some(p) = &mut self.pending else { return };
        let h = &part.header;
        if h.room != self.cfg.room
            || h.count as usize != p.parts.len()
            || h.index as usize >= p.parts.len()
        {
            out.push(warning(Dropped::RosterPartMisfit));
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
            Ok(_) => out.push(warning(Dropped::RosterPartForged)),
            Err(_) => out.push(warning(Dropped::RosterPartUnauthentic)),
        }
    }

    pub(super) fn try_complete(&mut self, now_ms: u64, out: &mut Vec<Action>) {
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
                out.push(warning(Dropped::MalformedRoster));
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
                        for e in owed.rev().take(crate::engine::HELD_EPOCHS) {
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
            Err(e) => out.push(warning(Dropped::UnusableRoster(e))),
        }
    }
}
