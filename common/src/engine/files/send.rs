//! Our files going out: the signed offer (to the room, or sealed for one
//! member), each chunk sealed in order, and the end of a transfer.

use super::*;

impl Core {
    /// Offers a file to the room: a signed, sealed chat message.
    pub(crate) fn offer_file(&mut self, now_ms: u64, spec: FileSpec, out: &mut Vec<Action>) {
        if spec.size > self.files.max_size {
            out.push(error(format!(
                "{} is {} bytes; the limit is {} bytes: not sent",
                spec.name, spec.size, self.files.max_size
            )));
            return;
        }
        if self.files.outgoing.len() >= MAX_OUTGOING {
            out.push(error(format!(
                "already sending {MAX_OUTGOING} files: wait for one to finish"
            )));
            return;
        }
        if self.files.in_use(&spec.transfer) {
            out.push(error("that transfer id is already in use".into()));
            return;
        }
        if let Some(why) = self.send_blocked(now_ms) {
            out.push(error(why));
            return;
        }
        let name = display_name(&spec.name);
        let offer = FileOffer {
            transfer: spec.transfer,
            name: name.clone(),
            size: spec.size,
            media_type: spec.media_type.chars().take(MAX_MEDIA_TYPE).collect(),
            sha256: spec.sha256,
            chunk_size: CHUNK_SIZE,
        };
        let mut private = None;
        let mut to_info = None;
        if let Some(to) = spec.to {
            let offer = PrivateFileOffer {
                offer,
                secret: self.rng.array(),
            };
            let keys = crate::crypto::seal::private_file_keys(&offer, &self.room);
            let Some((info, _, _)) =
                self.seal_private(now_ms, to, Content::PrivateFileOffer(offer), out)
            else {
                return;
            };
            private = Some((to, keys));
            to_info = Some(info);
        } else if !self.send_content(now_ms, Content::FileOffer(offer), out) {
            return;
        }
        if spec.size == 0 {
            // Nothing follows the offer.
            let me = self.me.public().fingerprint();
            self.files.ended((me, spec.transfer));
        } else {
            self.files.outgoing.insert(
                spec.transfer,
                Outgoing {
                    size: spec.size,
                    next: 0,
                    chunks: chunk_count(spec.size, CHUNK_SIZE),
                    private,
                },
            );
        }
        out.push(Action::File(FileEvent::Offered {
            transfer: spec.transfer,
            name,
            size: spec.size,
            to: to_info,
        }));
    }

    /// Seals chunk `index` of an outgoing transfer under the current epoch.
    /// Chunks go in order; the last one ends the transfer. A chunk that
    /// cannot be published (too large for the relay's frames) ends it with
    /// [`FileEvent::Failed`].
    pub(crate) fn send_chunk(
        &mut self,
        now_ms: u64,
        transfer: TransferId,
        index: u32,
        data: &[u8],
        out: &mut Vec<Action>,
    ) {
        let Some(t) = self.files.outgoing.get(&transfer) else {
            out.push(error(format!(
                "no file transfer {} is being sent",
                short_id(&transfer)
            )));
            return;
        };
        let last = u64::from(index) + 1 == t.chunks;
        let want = if last {
            t.size - u64::from(index) * u64::from(CHUNK_SIZE)
        } else {
            u64::from(CHUNK_SIZE)
        };
        if index != t.next || u64::from(index) >= t.chunks || data.len() as u64 != want {
            out.push(error(format!(
                "file transfer {}: chunk {index} out of order or of the wrong size",
                short_id(&transfer)
            )));
            return;
        }
        // Private chunks too: nothing goes out while we may not send.
        if let Some(why) = self.send_blocked(now_ms) {
            out.push(error(why));
            return;
        }
        let sender = self.me.public().fingerprint();
        let env = if let Some((to, keys)) = &t.private {
            // Only while the recipient is still a member: nothing sealed
            // for someone after their removal.
            let Some(cur) = self.current.as_ref().filter(|c| c.members.contains_key(to)) else {
                let to = *to;
                self.end_outgoing(
                    transfer,
                    format!("{} is no longer in the room", to.short()),
                    out,
                );
                return;
            };
            let header = ChunkHeader {
                room: self.room,
                epoch: cur.epoch,
                sender,
                transfer,
                index,
            };
            let sealed = seal(
                &mut self.rng,
                keys,
                &aad(context::AAD_PRIVATE_CHUNK, &header),
                data,
            );
            Envelope::PrivateChunk(FileChunk { header, sealed })
        } else {
            let Some(cur) = self.current.as_ref() else {
                out.push(error("no room key to send with right now".into()));
                return;
            };
            let header = ChunkHeader {
                room: self.room,
                epoch: cur.epoch,
                sender,
                transfer,
                index,
            };
            let sealed = seal(
                &mut self.rng,
                &cur.keys,
                &aad(context::AAD_CHUNK, &header),
                data,
            );
            Envelope::FileChunk(FileChunk { header, sealed })
        };
        if !self.publish_bulk(None, &env, out) {
            self.end_outgoing(
                transfer,
                "a chunk does not fit the relay's frames".into(),
                out,
            );
            return;
        }
        if last {
            self.files.outgoing.remove(&transfer);
            self.files.ended((sender, transfer));
        } else if let Some(t) = self.files.outgoing.get_mut(&transfer) {
            t.next += 1;
        }
    }

    /// Stops a transfer: ours (the others are told) or one we receive.
    pub(crate) fn cancel_file(&mut self, now_ms: u64, transfer: TransferId, out: &mut Vec<Action>) {
        if let Some(t) = self.files.outgoing.remove(&transfer) {
            let me = self.me.public().fingerprint();
            self.files.ended((me, transfer));
            match t.private {
                Some((to, _)) => {
                    // Told privately; no one else knew of it.
                    let mut told = Vec::new();
                    self.seal_private(now_ms, to, Content::FileCancel(transfer), &mut told);
                    out.extend(
                        told.into_iter()
                            .filter(|a| !matches!(a, Action::Event(Event::Error { .. }))),
                    );
                }
                None => {
                    self.send_content(now_ms, Content::FileCancel(transfer), out);
                }
            }
            out.push(Action::File(FileEvent::Failed {
                transfer,
                reason: "cancelled".into(),
            }));
        } else if let Some(key) = self.files.incoming_id(&transfer) {
            self.end_incoming(key, "cancelled".into(), out);
        }
    }

    /// Ends an outgoing transfer we can no longer send (no one is told).
    pub(super) fn end_outgoing(
        &mut self,
        transfer: TransferId,
        why: String,
        out: &mut Vec<Action>,
    ) {
        if self.files.outgoing.remove(&transfer).is_some() {
            let me = self.me.public().fingerprint();
            self.files.ended((me, transfer));
            out.push(Action::File(FileEvent::Failed {
                transfer,
                reason: why,
            }));
        }
    }
}
