//! Files coming in: offers checked and limited, chunks verified, ordered
//! and handed out as file work, a transfer ended on the first bad chunk.

use super::*;

impl Core {
    /// A verified offer from `from`.
    pub(crate) fn on_file_offer(
        &mut self,
        from: &Participant,
        offer: FileOffer,
        keys: Option<SealKeys>,
        out: &mut Vec<Action>,
    ) {
        self.offer_in(from, offer, keys, false, out);
    }

    /// An offer, new or (`taken_up`) one that waited.
    fn offer_in(
        &mut self,
        from: &Participant,
        offer: FileOffer,
        keys: Option<SealKeys>,
        taken_up: bool,
        out: &mut Vec<Action>,
    ) {
        let info = from.info();
        let name = display_name(&offer.name);
        let ignored = |why| {
            warning(Warning::OfferIgnored {
                from: info.name.clone(),
                file: name.clone(),
                why,
            })
        };
        if offer.size > self.files.max_size {
            out.push(ignored(OfferRefusal::TooLarge {
                size: offer.size,
                limit: self.files.max_size,
            }));
            return;
        }
        if offer.chunk_size != CHUNK_SIZE {
            out.push(ignored(OfferRefusal::ChunkSize));
            return;
        }
        let key = (info.fingerprint, offer.transfer);
        let waits = |w: &Waiting| (w.from.key.fingerprint(), w.offer.transfer) == key;
        if self.files.incoming.contains_key(&key)
            || self.files.recent.contains(&key)
            || self.files.waiting.iter().any(waits)
        {
            out.push(ignored(OfferRefusal::IdInUse));
            return;
        }
        if self.files.in_use(&offer.transfer) {
            // Someone else's (or our own) transfer has this id: the driver
            // knows transfers by id alone, so a second one would be
            // ambiguous; the first goes on untouched.
            out.push(ignored(OfferRefusal::IdTaken));
            return;
        }
        let from_sender = self
            .files
            .incoming
            .values()
            .filter(|t| t.from == info.fingerprint)
            .count();
        // Kept, within bounds, until one of theirs ends; a new offer waits
        // behind those already waiting, so they are taken up in order.
        let theirs = self
            .files
            .waiting
            .iter()
            .filter(|w| w.from.key.fingerprint() == info.fingerprint)
            .count();
        if from_sender >= MAX_INCOMING_PER_SENDER || (theirs > 0 && !taken_up) {
            if theirs < MAX_WAITING_OFFERS_PER_SENDER
                && self.files.waiting.len() < MAX_WAITING_OFFERS
            {
                self.files.waiting.push_back(Waiting {
                    from: from.clone(),
                    offer,
                    keys,
                });
            } else {
                out.push(ignored(OfferRefusal::BusySender(MAX_INCOMING_PER_SENDER)));
            }
            return;
        }
        if self.files.incoming.len() >= MAX_INCOMING {
            out.push(ignored(OfferRefusal::Busy(MAX_INCOMING)));
            return;
        }
        out.push(Action::File(FileEvent::Incoming {
            from: info.clone(),
            transfer: offer.transfer,
            name: name.clone(),
            size: offer.size,
            media_type: display_name(&offer.media_type),
            sha256: offer.sha256,
            private: keys.is_some(),
        }));
        let mut t = Incoming {
            from: info.fingerprint,
            name,
            size: offer.size,
            chunk_size: offer.chunk_size,
            sha256: offer.sha256,
            next: 0,
            received: 0,
            hash: Sha256::new(),
            keys,
            epoch: 0,
        };
        if offer.size == 0 {
            self.files.ended(key);
            finish(offer.transfer, &mut t, out);
            return;
        }
        self.files.incoming.insert(key, t);
    }

    /// The sender cancelled.
    pub(crate) fn on_file_cancel(
        &mut self,
        from: &MemberInfo,
        transfer: TransferId,
        out: &mut Vec<Action>,
    ) {
        let key = (from.fingerprint, transfer);
        if self.files.incoming.contains_key(&key) {
            self.end_incoming(key, format!("{} cancelled it", from.name), out);
        }
        // An offer still waiting is forgotten; its id stays used.
        let waited = self
            .files
            .waiting
            .iter()
            .position(|w| (w.from.key.fingerprint(), w.offer.transfer) == key);
        if let Some(at) = waited {
            self.files.waiting.remove(at);
            self.files.ended(key);
        }
    }

    /// A chunk from the relay. Checks, in order: room, not our own, a
    /// transfer we receive from the sender it names (otherwise it is not
    /// even opened), a room transfer, a possible size, an epoch its offerer
    /// may send in and the transfer has not left, the MAC; then, in
    /// [`Core::take_chunk`], its place and size in the file.
    pub(crate) fn on_chunk(&mut self, now_ms: u64, chunk: &FileChunk, out: &mut Vec<Action>) {
        let h = &chunk.header;
        if h.room != self.room {
            out.push(warning(Dropped::ChunkForAnotherRoom));
            return;
        }
        if h.sender == self.me.public().fingerprint() {
            return;
        }
        let key = (h.sender, h.transfer);
        let Some(t) = self.files.incoming.get(&key) else {
            if self.files.incoming_id(&h.transfer).is_some() {
                // Another member's chunk under a transfer's id: not part
                // of it, whatever it holds.
                self.dropped_chunk(now_ms, ChunkFault::NotFromItsSender, out);
            }
            // Otherwise not a transfer we receive (we joined after its
            // offer, refused it, or it ended): nothing it says could
            // count, so it is not even opened (a member who refused a
            // large file does not pay to authenticate all of it).
            return;
        };
        let (from, newest, private) = (t.from, t.epoch, t.keys.is_some());
        if private {
            // A room chunk under a private transfer's id (any member could
            // seal one): not part of it.
            let why = ChunkFault::WrongWay {
                file: t.name.clone(),
            };
            self.dropped_chunk(now_ms, why, out);
            return;
        }
        if !plausible_size(chunk) {
            self.dropped_chunk(now_ms, ChunkFault::ImpossibleSize, out);
            return;
        }
        if h.epoch < newest {
            let why = ChunkFault::LeftEpoch {
                file: t.name.clone(),
            };
            self.dropped_chunk(now_ms, why, out);
            return;
        }
        // The previous epoch's grace is the offerer's (still a member),
        // never the header's word. Until the MAC has verified, nothing in
        // the header is trusted: a chunk that fails here is dropped with a
        // warning and changes no transfer (the next authentic chunk shows
        // any gap).
        // Past the grace, the previous epoch still counts for a transfer
        // that has not moved on (`newest`, above) while its offerer is in
        // the current epoch: its chunks may have waited behind the rekey in
        // a slow receiver's queue (the relay's bulk lane), and a member
        // removed since cannot spoil it for longer than those chunks take.
        let offerer_stayed = self
            .current
            .as_ref()
            .is_some_and(|c| c.members.contains_key(&from));
        let keys = match crate::engine::epoch_for(
            &mut self.current,
            &mut self.previous,
            now_ms,
            h.epoch,
            &from,
            Kind::Message,
        ) {
            Ok(state) => &state.keys,
            Err(_) => match self.previous.as_ref() {
                Some(p) if p.epoch == h.epoch && offerer_stayed => &p.keys,
                _ => {
                    self.dropped_chunk(now_ms, ChunkFault::NoKey, out);
                    return;
                }
            },
        };
        let Ok(data) = open(keys, &aad(context::AAD_CHUNK, h), &chunk.sealed) else {
            self.dropped_chunk(now_ms, ChunkFault::Unauthentic, out);
            return;
        };
        self.take_chunk(now_ms, key, h, data, false, out);
    }

    /// A chunk of a file sent to one member. Others drop it silently (it is
    /// not theirs, and they cannot open it); the recipient opens it with
    /// the transfer's own keys before anything in its header counts.
    pub(crate) fn on_private_chunk(
        &mut self,
        now_ms: u64,
        chunk: &FileChunk,
        out: &mut Vec<Action>,
    ) {
        let h = &chunk.header;
        if h.room != self.room || h.sender == self.me.public().fingerprint() {
            return;
        }
        let key = (h.sender, h.transfer);
        let Some(keys) = self.files.incoming.get(&key).and_then(|t| t.keys.as_ref()) else {
            if self.files.incoming_id(&h.transfer).is_some() {
                // Names a transfer we receive, but not as its sender, or
                // privately where it came to the room.
                self.dropped_chunk(now_ms, ChunkFault::NotItsTransfer, out);
            }
            // Otherwise someone else's private file, or one that ended.
            return;
        };
        // Only the offer's sender holds the keys with the recipient; and
        // no chunk is larger than a sealed 64 KiB.
        if !plausible_size(chunk) {
            self.dropped_chunk(now_ms, ChunkFault::NotItsTransfer, out);
            return;
        }
        let Ok(data) = open(keys, &aad(context::AAD_PRIVATE_CHUNK, h), &chunk.sealed) else {
            self.dropped_chunk(now_ms, ChunkFault::Unauthentic, out);
            return;
        };
        self.take_chunk(now_ms, key, h, data, true, out);
    }

    /// An authentic chunk of transfer `key` (the sender it names), which
    /// came the transfer's way (room or private): counts if it is the next
    /// one and has exactly the size the offer gives its index. One that cannot
    /// be part of the file is dropped and changes nothing; a well-formed
    /// one past the next shows a gap and ends the transfer.
    pub(super) fn take_chunk(
        &mut self,
        now_ms: u64,
        key: Key,
        h: &ChunkHeader,
        mut data: zeroize::Zeroizing<Vec<u8>>,
        private: bool,
        out: &mut Vec<Action>,
    ) {
        let Some(t) = self.files.incoming.get_mut(&key) else {
            return;
        };
        let chunks = chunk_count(t.size, t.chunk_size);
        let index = u64::from(h.index);
        let size = if index < chunks {
            (t.size - index * u64::from(t.chunk_size)).min(u64::from(t.chunk_size))
        } else {
            0
        };
        // These change nothing and are reported at most once a second (a
        // relay replaying one chunk over and over gets one warning a
        // second, not one per copy; a member sealing chunks in the
        // sender's name cannot end the transfer with one of them).
        let why = if h.index < t.next {
            Some(ChunkFault::Duplicate {
                index: h.index,
                file: t.name.clone(),
            })
        } else if index >= chunks {
            Some(ChunkFault::PastEnd {
                index: h.index,
                file: t.name.clone(),
                chunks,
            })
        } else if data.len() as u64 != size {
            Some(ChunkFault::WrongSize {
                index: h.index,
                file: t.name.clone(),
            })
        } else {
            None
        };
        if let Some(why) = why {
            self.dropped_chunk(now_ms, why, out);
            return;
        }
        if h.index > t.next {
            let gap = Warning::FileGap {
                index: t.next,
                file: t.name.clone(),
            };
            let why = gap.to_string();
            out.push(warning(gap));
            self.end_incoming(key, why, out);
            return;
        }
        t.hash.update(&data[..]);
        t.received += size;
        t.next += 1;
        if !private {
            t.epoch = t.epoch.max(h.epoch);
        }
        out.push(Action::File(FileEvent::Data {
            transfer: h.transfer,
            index: h.index,
            // File content, not key material: handed over without a copy.
            data: Bytes::from(std::mem::take(&mut *data)),
        }));
        if t.received == t.size {
            if let Some(mut t) = self.files.incoming.remove(&key) {
                self.files.ended(key);
                finish(h.transfer, &mut t, out);
                self.take_up_waiting(&key.0, out);
            }
        }
    }

    /// A file from `sender` ended: its waiting offers are taken up, oldest
    /// first (each checked again as if it came now), while the sender has
    /// fewer than [`MAX_INCOMING_PER_SENDER`] arriving (an empty file, or
    /// one refused now, makes room for the next at once).
    fn take_up_waiting(&mut self, sender: &Fingerprint, out: &mut Vec<Action>) {
        loop {
            let arriving = self
                .files
                .incoming
                .values()
                .filter(|t| t.from == *sender)
                .count();
            if arriving >= MAX_INCOMING_PER_SENDER {
                return;
            }
            let at = self
                .files
                .waiting
                .iter()
                .position(|w| w.from.key.fingerprint() == *sender);
            let Some(w) = at.and_then(|at| self.files.waiting.remove(at)) else {
                return;
            };
            self.offer_in(&w.from, w.offer, w.keys, true, out);
        }
    }

    /// A chunk that changes nothing (it did not authenticate, or cannot be
    /// part of the transfer it names): counted, and reported at most once
    /// a second (a removed member receives a whole file it cannot open).
    pub(super) fn dropped_chunk(&mut self, now_ms: u64, why: ChunkFault, out: &mut Vec<Action>) {
        self.files.dropped += 1;
        if now_ms.saturating_sub(self.files.last_warning_ms) >= CHUNK_WARNING_EVERY_MS {
            let n = std::mem::take(&mut self.files.dropped);
            self.files.last_warning_ms = now_ms;
            out.push(warning(Warning::ChunksDropped {
                count: n,
                last: why,
            }));
        }
    }

    /// Ends a transfer we receive (if it is still running).
    pub(super) fn end_incoming(&mut self, key: Key, why: String, out: &mut Vec<Action>) {
        if self.files.incoming.remove(&key).is_some() {
            self.files.ended(key);
            out.push(Action::File(FileEvent::Failed {
                transfer: key.1,
                reason: why,
            }));
            self.take_up_waiting(&key.0, out);
        }
    }
}
