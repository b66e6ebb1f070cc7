//! The admin's announcements: the signed announce, notices, liveness
//! beacons with the lines it holds, and new epochs (fresh key, one signed
//! message with every wrap, sealed roster parts) on every change.

use super::*;

impl Admin {
    /// Signs and sends the beacon: this run, this epoch, now.
    pub(super) fn beacon(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        if self.epoch == 0 || self.core.conn_id.is_none() {
            return;
        }
        self.beacon_seq += 1;
        self.beacon_ms = now_ms;
        let b = Beacon {
            room: self.cfg.room,
            join_key: self.join_key,
            run: self.state.run,
            epoch: self.epoch,
            seq: self.beacon_seq,
            sent_at_ms: now_ms,
            lines: self.lines_held(),
        };
        let core = &mut self.core;
        match core
            .me
            .sign_body(&mut core.rng, context::BEACON, &b, core.max_frame)
        {
            Ok(signed) => {
                self.core.publish(None, &Envelope::Beacon(signed), out);
            }
            Err(e) => out.push(error(format!("cannot sign the beacon: {e}"))),
        }
    }

    /// Remembers where a seat that held at least one epoch began and ended,
    /// for the wrap of the key's next seat in this run.
    pub(super) fn seat_ended(&mut self, seat: &Seat) {
        if seat.since > self.epoch {
            return;
        }
        let fp = seat.key.fingerprint();
        self.ended_seats.retain(|(f, _)| *f != fp);
        if self.ended_seats.len() >= ENDED_SEATS {
            self.ended_seats.pop_front();
        }
        self.ended_seats.push_back((fp, (seat.since, self.epoch)));
    }

    /// The last seat of `fp` that ended in this run, taken: (first, last).
    pub(super) fn ended_seat(&mut self, fp: &Fingerprint) -> (u64, u64) {
        match self.ended_seats.iter().position(|(f, _)| f == fp) {
            Some(i) => self.ended_seats.remove(i).map_or((0, 0), |(_, r)| r),
            None => (0, 0),
        }
    }

    /// The beacon's count of this epoch's room lines: per sender that wrote
    /// in it (ourselves included), its roster index and last seq we have.
    pub(super) fn lines_held(&self) -> Vec<(u32, u64)> {
        let Some(cur) = &self.core.current else {
            return Vec::new();
        };
        let me = self.core.me.public().fingerprint();
        cur.order
            .iter()
            .enumerate()
            .filter_map(|(i, fp)| {
                let last = if *fp == me {
                    self.core.my_seq
                } else {
                    cur.last_seq.get(fp).copied().unwrap_or(0)
                };
                Some((u32::try_from(i).ok()?, last)).filter(|_| last > 0)
            })
            .collect()
    }

    /// Signs and sends the announcement; `sent_at_ms` is now, so that a
    /// member measures from its knock how far the admin's clock is ahead
    /// of its own (and reads the beacons' times with it).
    pub(super) fn announce(
        &mut self,
        now_ms: u64,
        to: Option<ConnId>,
        answers: Option<[u8; 16]>,
        out: &mut Vec<Action>,
    ) {
        let a = Announce {
            room: self.cfg.room,
            admin_key: self.core.me.public().spki_der().to_vec().into(),
            join_key: self.join_key,
            run: self.state.run,
            epoch: self.epoch,
            password_enabled: self.password_key.is_some() && !self.password_suspended,
            answers,
            sent_at_ms: now_ms,
        };
        let core = &mut self.core;
        match core
            .me
            .sign_body(&mut core.rng, context::ANNOUNCE, &a, core.max_frame)
        {
            Ok(signed) => {
                self.core.publish(to, &Envelope::Announce(signed), out);
            }
            Err(e) => out.push(error(format!("cannot announce: {e}"))),
        }
    }

    pub(super) fn notice(
        &mut self,
        to: Option<ConnId>,
        target: Option<Fingerprint>,
        kind: NoticeKind,
        reason: &str,
        request: Option<DhKey>,
        out: &mut Vec<Action>,
    ) {
        let n = Notice {
            room: self.cfg.room,
            epoch: self.epoch,
            join_key: self.join_key,
            target,
            request,
            kind,
            reason: reason.chars().take(200).collect(),
            sent_at_ms: self.epoch_started_ms,
        };
        let core = &mut self.core;
        match core
            .me
            .sign_body(&mut core.rng, context::NOTICE, &n, core.max_frame)
        {
            Ok(signed) => {
                self.core.publish(to, &Envelope::Notice(signed), out);
            }
            Err(e) => out.push(error(format!("cannot send notice: {e}"))),
        }
    }

    /// Starts epoch `self.epoch + 1`: fresh key, roster, wraps, one signed
    /// epoch message, roster parts; installs it locally.
    /// Returns false (with an error event) if the epoch could not be made
    /// or sent; then nothing changed.
    pub(super) fn new_epoch(
        &mut self,
        now_ms: u64,
        cause: EpochCause,
        out: &mut Vec<Action>,
    ) -> bool {
        let room = self.cfg.room;
        let epoch = self.epoch + 1;
        let session = SessionKey::generate(&mut self.core.rng);
        let me = self.core.me.public().clone();
        let mut members = vec![RosterEntry {
            name: crate::engine::clean_name(&self.cfg.admin_name),
            member_key: me.spki_der().to_vec().into(),
            dh_key: self.core.dh.public(),
            admin: true,
        }];
        members.extend(self.seats.iter().map(|s| RosterEntry {
            name: s.name.clone(),
            member_key: s.key.spki_der().to_vec().into(),
            dh_key: s.dh_key,
            admin: false,
        }));
        let roster = Roster {
            room_name: crate::engine::clean_name(&self.cfg.room_name),
            cause,
            members,
            padding: Default::default(),
        }
        .pad(crate::engine::MAX_NAME);
        let Ok(plain) = crate::wire::encode_payload(&roster, usize::MAX) else {
            out.push(error("cannot encode the roster".into()));
            return false;
        };
        // Parts small enough for the relay's frame limit, with room for the
        // envelope around them.
        let part_size = ROSTER_PART
            .min(crate::wire::max_payload(self.core.max_frame).saturating_sub(256))
            .max(256);
        let count = plain.len().div_ceil(part_size).max(1);
        let Ok(count16) = u16::try_from(count) else {
            out.push(error("roster too large".into()));
            return false;
        };
        let rng = &mut self.core.rng;
        let wraps = std::iter::once((&me, [0; 32], 0, (0, 0)))
            .chain(
                self.seats
                    .iter()
                    .map(|s| (&s.key, s.request, s.since, s.before)),
            )
            .map(|(k, request, since, before)| KeyWrap {
                member: k.fingerprint(),
                request,
                since,
                before,
                wrapped: rng.wrap(k, &room, epoch, &session).into(),
            })
            .collect();
        let body = EpochBody {
            room,
            epoch,
            run: self.join_key,
            sent_at_ms: now_ms,
            wraps,
            roster: plain
                .chunks(part_size)
                .map(|c| Sha256::digest(c).into())
                .collect(),
            lines: self.lines_held(),
        };
        let signed = match self.core.me.sign_body(
            &mut self.core.rng,
            context::EPOCH,
            &body,
            crate::wire::max_payload(self.core.max_frame),
        ) {
            Ok(s) => s,
            Err(e) => {
                out.push(error(format!("cannot sign the epoch: {e}")));
                return false;
            }
        };
        let people = std::iter::once(crate::engine::Participant {
            name: crate::engine::clean_name(&self.cfg.admin_name),
            key: me.clone(),
            dh_key: self.core.dh.public(),
            admin: true,
        })
        .chain(self.seats.iter().map(|s| crate::engine::Participant {
            name: s.name.clone(),
            key: s.key.clone(),
            dh_key: s.dh_key,
            admin: false,
        }))
        .collect();
        let state =
            match EpochState::from_participants(&room, epoch, &session, &roster, people, now_ms) {
                Ok(s) => s,
                Err(e) => {
                    out.push(error(format!("cannot install the epoch: {e}")));
                    return false;
                }
            };
        // Nothing is installed unless the whole epoch can be sent.
        let mut frames = Vec::new();
        if !self
            .core
            .publish(None, &Envelope::Epoch(signed), &mut frames)
        {
            out.append(&mut frames);
            out.push(error(format!(
                "epoch {epoch} does not fit the relay's frame limit: the room stays on epoch {}",
                self.epoch
            )));
            return false;
        }
        for (i, chunk) in plain.chunks(part_size).enumerate() {
            let header = RosterPartHeader {
                room,
                epoch,
                index: i as u16,
                count: count16,
            };
            let sealed = seal(
                &mut self.core.rng,
                &state.keys,
                &aad(context::AAD_ROSTER, &header),
                chunk,
            );
            if !self.core.publish(
                None,
                &Envelope::Roster(RosterPart { header, sealed }),
                &mut frames,
            ) {
                out.append(&mut frames);
                out.push(error(format!(
                    "the roster of epoch {epoch} cannot be sent: the room stays on epoch {}",
                    self.epoch
                )));
                return false;
            }
        }
        // The closing count of the epoch ending: a sender's last lines in
        // it that never reached a member are reported all the same.
        self.beacon(now_ms, out);
        out.append(&mut frames);
        self.epoch = epoch;
        self.epoch_started_ms = now_ms;
        self.messages_in_epoch = 0;
        self.core.install(state, out);
        // Members hear at once that this epoch is current.
        self.beacon(now_ms, out);
        true
    }
}
