//! The admin's side of joining: budgets per connection, the join request
//! (sealed to this run's X25519 key, checked for replay, room, name, ban,
//! roster and password proof before any approval), and seating a member.

use super::*;

impl Admin {
    pub(super) fn per_conn(&mut self, conn: ConnId) -> &mut ConnBudget {
        if self.per_conn.len() >= MAX_TRACKED_CONNS && !self.per_conn.contains_key(&conn) {
            self.per_conn.clear();
        }
        self.per_conn.entry(conn).or_insert_with(|| ConnBudget {
            joins: Window::new(JOINS_PER_CONN),
            knocks: Window::new(KNOCKS_PER_CONN),
        })
    }

    pub(super) fn on_join_request(
        &mut self,
        now_ms: u64,
        from: ConnId,
        req: &JoinRequest,
        out: &mut Vec<Action>,
    ) {
        let room = self.cfg.room;
        if req.room != room {
            out.push(warning(Dropped::JoinForAnotherRoom));
            return;
        }
        let opened = self
            .join_secret
            .agree(
                &req.ephemeral,
                context::DH_JOIN,
                &room,
                &req.ephemeral,
                &self.join_key,
            )
            .ok()
            .and_then(|keys| {
                open(
                    &keys,
                    &JoinRequest::aad(&room, &req.ephemeral, &self.join_key),
                    &req.sealed,
                )
                .ok()
            });
        let Some(plain) = opened else {
            out.push(warning(Dropped::JoinUnauthentic { conn: from }));
            return;
        };
        let Ok(signed) = decode_payload::<Signed>(&plain, self.core.max_frame) else {
            out.push(warning(Dropped::MalformedJoin));
            return;
        };
        let Ok(info) = decode_payload::<JoinInfo>(&signed.body, self.core.max_frame) else {
            out.push(warning(Dropped::MalformedJoin));
            return;
        };
        if info.room != room || info.join_key != self.join_key || info.ephemeral != req.ephemeral {
            out.push(warning(Dropped::JoinBoundElsewhere));
            return;
        }
        let key = match PublicKey::from_spki_der(&info.member_key) {
            Ok(k) => k,
            Err(e) => {
                out.push(warning(Dropped::JoinUnusableKey(e)));
                return;
            }
        };
        if key
            .verify(context::JOIN, &signed.body, &signed.signature)
            .is_err()
        {
            out.push(warning(Dropped::JoinNotSelfSigned));
            return;
        }
        let fp = key.fingerprint();
        if fp == self.core.me.public().fingerprint() {
            out.push(warning(Dropped::JoinWithAdminKey));
            return;
        }
        if !self.seen_requests.insert(info.ephemeral) {
            out.push(warning(Dropped::JoinReplayed));
            return;
        }
        self.seen_order.push_back(info.ephemeral);
        if self.seen_order.len() > SEEN_REQUESTS {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen_requests.remove(&old);
            }
        }
        let pending = PendingJoin {
            conn: from,
            name: crate::engine::clean_name(&info.name),
            key,
            dh_key: info.dh_key,
            ephemeral: info.ephemeral,
        };
        // Policy: a removed member only by hand; then returning member,
        // roster file, password; else by hand.
        let password_open = self.password_failures_total < PASSWORD_TRIES_TOTAL
            && self.password_failures.get(&fp).copied().unwrap_or(0) < PASSWORD_TRIES_PER_KEY;
        let password_open = password_open && !self.password_suspended;
        let policy = if self.is_banned(&fp) {
            None
        } else if self.approved.contains(&fp)
            || self.seats.iter().any(|s| s.key.fingerprint() == fp)
        {
            Some(ApprovalPolicy::Returning)
        } else if self.cfg.roster.contains(&fp) {
            Some(ApprovalPolicy::Roster)
        } else {
            match (&self.password_key, info.password_proof) {
                (Some(k), Some(proof)) if password_open => {
                    if verify_password_proof(
                        k,
                        &room,
                        &self.join_key,
                        &info.ephemeral,
                        &info.member_key,
                        &proof,
                    ) {
                        Some(ApprovalPolicy::Password)
                    } else {
                        *self.password_failures.entry(fp).or_insert(0) += 1;
                        self.password_failures_total += 1;
                        if self.password_failures_total == PASSWORD_TRIES_TOTAL {
                            out.push(warning(Warning::PasswordGuessing));
                        }
                        self.notice(
                            Some(from),
                            Some(fp),
                            NoticeKind::Denied,
                            "wrong room password",
                            Some(info.ephemeral),
                            out,
                        );
                        out.push(warning(Warning::WrongPassword {
                            name: pending.name.clone(),
                        }));
                        return;
                    }
                }
                _ => None,
            }
        };
        match policy {
            Some(_) => {
                // A returning member on a new connection replaces its seat,
                // which it keeps from the epoch it began in: epochs the
                // old one was in and that never reached it are reported.
                let keep = self
                    .seats
                    .iter()
                    .find(|s| s.key.fingerprint() == fp)
                    .map(|s| (s.since, s.before));
                self.seats.retain(|s| s.key.fingerprint() != fp);
                self.pending.retain(|_, p| p.key.fingerprint() != fp);
                self.seat(now_ms, pending, keep, out);
            }
            None => {
                if self.pending.len() >= MAX_PENDING {
                    out.push(warning(Dropped::TooManyPending));
                    return;
                }
                // One waiting request per key and per connection.
                self.pending
                    .retain(|_, p| p.key.fingerprint() != fp && p.conn != from);
                let id = self.next_pending;
                self.next_pending = self.next_pending.wrapping_add(1).max(1);
                out.push(Action::Event(Event::PendingApproval {
                    id,
                    name: pending.name.clone(),
                    fingerprint: fp,
                    safety_code: pending.key.safety_code().to_string(),
                    banned: self.state.bans.iter().any(|b| b.fingerprint == fp),
                }));
                self.pending.insert(id, pending);
            }
        }
    }

    /// Seats `p` in a new epoch; `keep` (a seat of the same key that still
    /// stands) gives its first epoch and the seat before it.
    pub(super) fn seat(
        &mut self,
        now_ms: u64,
        p: PendingJoin,
        keep: Option<(u64, (u64, u64))>,
        out: &mut Vec<Action>,
    ) {
        let fp = p.key.fingerprint();
        self.approved.insert(fp);
        // Names are unique in a room as people see them (NFKC, case and
        // confusable skeleton): nobody can look like someone else. A name
        // that is taken gets its key's fingerprint, 8 hex characters or as
        // many as it takes (someone may have picked "bob (1a2b3c4d)").
        let admin_name = crate::engine::clean_name(&self.cfg.admin_name);
        let mut taken: HashSet<String> = self
            .seats
            .iter()
            .map(|s| crate::engine::name_key(&s.name))
            .collect();
        taken.insert(crate::engine::name_key(&admin_name));
        let hex = fp.to_string();
        let mut name = p.name;
        if taken.contains(&crate::engine::name_key(&name)) {
            let base = name.clone();
            for digits in [8, 16, 64] {
                name = format!("{base} ({})", &hex[..digits]);
                if !taken.contains(&crate::engine::name_key(&name)) {
                    break;
                }
            }
        }
        let before = match keep {
            Some((_, before)) => before,
            None => self.ended_seat(&fp),
        };
        self.seats.push(Seat {
            name,
            key: p.key,
            dh_key: p.dh_key,
            conn: p.conn,
            request: p.ephemeral,
            since: keep.map_or(self.epoch + 1, |k| k.0),
            before,
        });
        if !self.new_epoch(now_ms, EpochCause::Joined(fp), out) {
            // Not sent, so not seated: the member stays outside.
            self.seats.retain(|s| s.key.fingerprint() != fp);
            self.approved.remove(&fp);
        }
    }
}
