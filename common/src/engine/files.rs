//! File transfers in the engine: offers, sealed chunks, and the checks a
//! receiver makes before a single byte counts as part of a file.
//!
//! A sender offers a file in a signed, sealed chat message
//! ([`Content::FileOffer`]: name, size, media type, SHA-256, chunk size),
//! then sends its chunks in order, each sealed under the epoch key current
//! when it is sent, with the transfer id and chunk index in the
//! authenticated header. Chunks are not signed: the signed offer's SHA-256
//! covers the whole content, checked when the last chunk arrives.
//!
//! A receiver keeps a transfer only while every chunk arrives in order:
//! a duplicated chunk is dropped with a warning; a missing, reordered,
//! oversized, foreign (another sender) or unauthenticated chunk ends the
//! transfer ([`Event::FileFailed`]), and so does a hash mismatch at the end.
//! The engine hands accepted bytes to the driver ([`Event::FileData`]),
//! which writes them to a temporary file and keeps the file only after
//! [`Event::FileDone`].

use std::collections::HashMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{error, warning, Action, Command, Core, Event, MemberInfo, Participant};
use crate::crypto::seal::{open, seal, SealKeys};
use crate::ids::Fingerprint;
use crate::wire::{
    aad, context, ChunkHeader, Content, Envelope, FileChunk, FileOffer, PrivateFileOffer,
};

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: u32 = 64 * 1024;
/// Default largest file sent or accepted (100 MiB).
pub const DEFAULT_MAX_FILE: u64 = 100 * 1024 * 1024;
/// Most transfers received at once (offers beyond are refused).
pub const MAX_INCOMING: usize = 16;
/// Most transfers received at once from one sender.
pub const MAX_INCOMING_PER_SENDER: usize = 4;
/// Transfer ids remembered after they end, so an id cannot be reused.
const RECENT_IDS: usize = 4096;
/// Least time between two warnings about dropped chunks.
const CHUNK_WARNING_EVERY_MS: u64 = 1000;
/// Most transfers sent at once.
pub const MAX_OUTGOING: usize = 8;
/// Longest file name kept from an offer, in bytes.
pub const MAX_FILE_NAME: usize = 255;
/// Longest media type kept from an offer, in bytes.
const MAX_MEDIA_TYPE: usize = 127;

/// A transfer id: 16 random bytes.
pub type TransferId = [u8; 16];

/// Short form of a transfer id for people and commands (`/accept`).
pub fn short_id(t: &TransferId) -> String {
    hex::encode(&t[..4])
}

/// What the driver knows about a file it is about to offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Random transfer id (the driver picks it, so it can stream chunks).
    pub transfer: TransferId,
    /// File name without its directories.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type (`application/octet-stream` when unknown).
    pub media_type: String,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// One member to send it to privately, or `None` for the whole room.
    pub to: Option<Fingerprint>,
}

/// Number of chunks of a file of `size` bytes.
pub fn chunk_count(size: u64, chunk: u32) -> u64 {
    size.div_ceil(u64::from(chunk.max(1)))
}

struct Outgoing {
    size: u64,
    next: u32,
    chunks: u64,
    /// Sent to one member: who, and the transfer's own keys.
    private: Option<(Fingerprint, SealKeys)>,
}

struct Incoming {
    from: Fingerprint,
    name: String,
    size: u64,
    chunk_size: u32,
    sha256: [u8; 32],
    next: u32,
    received: u64,
    hash: Sha256,
    /// Sent to us privately: the transfer's own keys (its chunks come as
    /// [`Envelope::PrivateChunk`] and nothing else counts).
    keys: Option<SealKeys>,
}

/// The engine's transfer state.
pub(crate) struct Files {
    outgoing: HashMap<TransferId, Outgoing>,
    incoming: HashMap<TransferId, Incoming>,
    /// Ids of transfers that ended (ours and others'), oldest first: a
    /// later offer with one of them is refused, so no one can take over a
    /// finished transfer's id (a file waiting for Accept keeps its id).
    recent: std::collections::VecDeque<TransferId>,
    /// Chunks dropped since the last warning about them, and when that was.
    dropped: u64,
    last_warning_ms: u64,
    /// Largest file sent or accepted.
    pub max_size: u64,
}

impl Files {
    fn ended(&mut self, t: TransferId) {
        if self.recent.len() >= RECENT_IDS {
            self.recent.pop_front();
        }
        self.recent.push_back(t);
    }

    fn known(&self, t: &TransferId) -> bool {
        self.outgoing.contains_key(t) || self.incoming.contains_key(t) || self.recent.contains(t)
    }
}

impl Default for Files {
    fn default() -> Self {
        Files {
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            recent: std::collections::VecDeque::new(),
            dropped: 0,
            last_warning_ms: 0,
            max_size: DEFAULT_MAX_FILE,
        }
    }
}

/// A file name from another person made harmless for display (the driver
/// makes it safe for the file system separately).
fn display_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .filter(|c| !c.is_control() && !super::is_format_char(*c))
        .collect();
    if out.len() > MAX_FILE_NAME {
        let mut end = MAX_FILE_NAME;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    if out.trim().is_empty() {
        "file".into()
    } else {
        out
    }
}

impl Core {
    /// The file commands, shared by both roles.
    pub(crate) fn file_command(&mut self, now_ms: u64, cmd: Command, out: &mut Vec<Action>) {
        match cmd {
            Command::OfferFile(spec) => self.offer_file(now_ms, spec, out),
            Command::FileChunk {
                transfer,
                index,
                data,
            } => self.send_chunk(transfer, index, &data, out),
            Command::CancelFile(t) => self.cancel_file(now_ms, t, out),
            Command::SendFile(_)
            | Command::SendFileTo(..)
            | Command::AcceptFile(_)
            | Command::History(_)
            | Command::ClearHistory => out.push(error(
                "files and history are handled by the driver: command ignored".into(),
            )),
            _ => {}
        }
    }

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
        if self.files.known(&spec.transfer) {
            out.push(error("that transfer id is already in use".into()));
            return;
        }
        if !self.can_send() {
            out.push(error("not in the room yet: no key for this epoch".into()));
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
                secret: crate::crypto::random_array(),
            };
            let keys = offer.keys(&self.room);
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
            self.files.ended(spec.transfer);
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
        out.push(Action::Event(Event::FileOffered {
            transfer: spec.transfer,
            name,
            size: spec.size,
            to: to_info,
        }));
    }

    /// Seals chunk `index` of an outgoing transfer under the current epoch.
    /// Chunks go in order; the last one ends the transfer. A chunk that
    /// cannot be published (too large for the relay's frames) ends it with
    /// [`Event::FileFailed`].
    pub(crate) fn send_chunk(
        &mut self,
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
            let sealed = seal(keys, &aad(context::AAD_PRIVATE_CHUNK, &header), data);
            Envelope::PrivateChunk(FileChunk { header, sealed })
        } else {
            let Some(cur) = self
                .current
                .as_ref()
                .filter(|c| self.hold_below.is_none_or(|h| c.epoch >= h))
            else {
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
            let sealed = seal(&cur.keys, &aad(context::AAD_CHUNK, &header), data);
            Envelope::FileChunk(FileChunk { header, sealed })
        };
        if !self.publish(None, &env, out) {
            self.files.outgoing.remove(&transfer);
            self.files.ended(transfer);
            out.push(Action::Event(Event::FileFailed {
                transfer,
                reason: "a chunk does not fit the relay's frames".into(),
            }));
            return;
        }
        if last {
            self.files.outgoing.remove(&transfer);
            self.files.ended(transfer);
        } else if let Some(t) = self.files.outgoing.get_mut(&transfer) {
            t.next += 1;
        }
    }

    /// Stops a transfer: ours (the others are told) or one we receive.
    pub(crate) fn cancel_file(&mut self, now_ms: u64, transfer: TransferId, out: &mut Vec<Action>) {
        if let Some(t) = self.files.outgoing.remove(&transfer) {
            self.files.ended(transfer);
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
            out.push(Action::Event(Event::FileFailed {
                transfer,
                reason: "cancelled".into(),
            }));
        } else if self.files.incoming.remove(&transfer).is_some() {
            self.files.ended(transfer);
            out.push(Action::Event(Event::FileFailed {
                transfer,
                reason: "cancelled".into(),
            }));
        }
    }

    /// A verified offer from `from`.
    pub(crate) fn on_file_offer(
        &mut self,
        from: &Participant,
        offer: FileOffer,
        keys: Option<SealKeys>,
        out: &mut Vec<Action>,
    ) {
        let info = from.info();
        let name = display_name(&offer.name);
        if offer.size > self.files.max_size {
            out.push(warning(format!(
                "{} offered {name} of {} bytes, over the limit of {} bytes: ignored",
                info.name, offer.size, self.files.max_size
            )));
            return;
        }
        if offer.chunk_size != CHUNK_SIZE {
            out.push(warning(format!(
                "{} offered {name} with an unusable chunk size: ignored",
                info.name
            )));
            return;
        }
        if self.files.known(&offer.transfer) {
            out.push(warning(format!(
                "{} offered {name} under a transfer id already in use: ignored",
                info.name
            )));
            return;
        }
        let from_sender = self
            .files
            .incoming
            .values()
            .filter(|t| t.from == info.fingerprint)
            .count();
        if from_sender >= MAX_INCOMING_PER_SENDER {
            out.push(warning(format!(
                "{} offered {name} while {MAX_INCOMING_PER_SENDER} of their files are still arriving: ignored",
                info.name
            )));
            return;
        }
        if self.files.incoming.len() >= MAX_INCOMING {
            out.push(warning(format!(
                "{} offered {name}, but {MAX_INCOMING} files are already arriving: ignored",
                info.name
            )));
            return;
        }
        out.push(Action::Event(Event::FileIncoming {
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
        };
        if offer.size == 0 {
            self.files.ended(offer.transfer);
            finish(offer.transfer, &mut t, out);
            return;
        }
        self.files.incoming.insert(offer.transfer, t);
    }

    /// The sender cancelled.
    pub(crate) fn on_file_cancel(
        &mut self,
        from: &MemberInfo,
        transfer: TransferId,
        out: &mut Vec<Action>,
    ) {
        if self
            .files
            .incoming
            .get(&transfer)
            .is_some_and(|t| t.from == from.fingerprint)
        {
            self.files.incoming.remove(&transfer);
            self.files.ended(transfer);
            out.push(Action::Event(Event::FileFailed {
                transfer,
                reason: format!("{} cancelled it", from.name),
            }));
        }
    }

    /// A chunk from the relay. Checks, in order: room, not our own, an
    /// epoch we hold, the MAC (a chunk from outside the room fails here),
    /// then the transfer, its sender and the chunk's place and size.
    pub(crate) fn on_chunk(&mut self, now_ms: u64, chunk: &FileChunk, out: &mut Vec<Action>) {
        let h = &chunk.header;
        if h.room != self.room {
            out.push(warning("file chunk for another room dropped".into()));
            return;
        }
        if h.sender == self.me.public().fingerprint() {
            return;
        }
        if !self.files.incoming.contains_key(&h.transfer) {
            // Not a transfer we receive (we joined after its offer, refused
            // it, or it ended): nothing it says could count, so it is not
            // even opened (a member who refused a large file does not pay
            // to authenticate all of it).
            return;
        }
        if !plausible_size(chunk) {
            self.dropped_chunk(now_ms, "of an impossible size", out);
            return;
        }
        // Until the MAC has verified, nothing in the header is trusted: a
        // chunk that fails here is dropped with a warning and changes no
        // transfer (the next authentic chunk shows the gap).
        let keys = match super::epoch_for(
            &mut self.current,
            &mut self.previous,
            now_ms,
            h.epoch,
            &h.sender,
            "file chunk",
        ) {
            Ok(state) => &state.keys,
            Err(_) => {
                self.dropped_chunk(now_ms, "for an epoch we hold no key for", out);
                return;
            }
        };
        let Ok(data) = open(keys, &aad(context::AAD_CHUNK, h), &chunk.sealed) else {
            self.dropped_chunk(
                now_ms,
                "that failed authentication (forged or damaged)",
                out,
            );
            return;
        };
        self.take_chunk(now_ms, h, data, false, out);
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
        let Some(t) = self
            .files
            .incoming
            .get(&h.transfer)
            .filter(|t| t.keys.is_some())
        else {
            // Someone else's private file, or one that ended.
            return;
        };
        // Only the offer's sender holds the keys with the recipient; and
        // no chunk is larger than a sealed 64 KiB.
        if h.sender != t.from || !plausible_size(chunk) {
            self.dropped_chunk(now_ms, "that cannot belong to its transfer", out);
            return;
        }
        let Some(keys) = t.keys.as_ref() else {
            return;
        };
        let Ok(data) = open(keys, &aad(context::AAD_PRIVATE_CHUNK, h), &chunk.sealed) else {
            self.dropped_chunk(
                now_ms,
                "that failed authentication (forged or damaged)",
                out,
            );
            return;
        };
        self.take_chunk(now_ms, h, data, true, out);
    }

    /// An authentic chunk: counts if it is the next one of a transfer we
    /// receive, from its sender, by the right way (room or private).
    fn take_chunk(
        &mut self,
        now_ms: u64,
        h: &ChunkHeader,
        mut data: zeroize::Zeroizing<Vec<u8>>,
        private: bool,
        out: &mut Vec<Action>,
    ) {
        let Some(t) = self.files.incoming.get_mut(&h.transfer) else {
            // Authentic, but of a transfer we were not offered (we joined
            // later) or have ended: not ours to keep.
            return;
        };
        // These three change nothing and are reported at most once a
        // second (a relay replaying one chunk over and over gets one
        // warning a second, not one per copy).
        if t.keys.is_some() != private {
            // A room chunk under a private transfer's id (any member could
            // seal one), or the reverse: not part of it.
            let why = format!("for {} sent the wrong way", t.name);
            self.dropped_chunk(now_ms, &why, out);
            return;
        }
        if h.sender != t.from {
            // Another member's chunk under this transfer's id: not part of
            // it (and not allowed to end it).
            let why = format!("for {} from someone other than its sender", t.name);
            self.dropped_chunk(now_ms, &why, out);
            return;
        }
        if h.index < t.next {
            let why = format!("duplicated (chunk {} of {})", h.index, t.name);
            self.dropped_chunk(now_ms, &why, out);
            return;
        }
        if h.index > t.next {
            let why = format!("chunk {} of {} is missing or out of order", t.next, t.name);
            self.fail(h.transfer, &why, out);
            return;
        }
        let left = t.size - t.received;
        let want = left.min(u64::from(t.chunk_size));
        if data.len() as u64 != want {
            let why = format!("a chunk of {} has the wrong size", t.name);
            self.fail(h.transfer, &why, out);
            return;
        }
        t.hash.update(&data[..]);
        t.received += want;
        t.next += 1;
        out.push(Action::Event(Event::FileData {
            transfer: h.transfer,
            index: h.index,
            // File content, not key material: handed over without a copy.
            data: Bytes::from(std::mem::take(&mut *data)),
        }));
        if t.received == t.size {
            if let Some(mut t) = self.files.incoming.remove(&h.transfer) {
                self.files.ended(h.transfer);
                finish(h.transfer, &mut t, out);
            }
        }
    }

    /// A chunk that did not authenticate: counted, and reported at most
    /// once a second (a removed member receives a whole file it cannot
    /// open).
    fn dropped_chunk(&mut self, now_ms: u64, why: &str, out: &mut Vec<Action>) {
        self.files.dropped += 1;
        if now_ms.saturating_sub(self.files.last_warning_ms) >= CHUNK_WARNING_EVERY_MS {
            let n = std::mem::take(&mut self.files.dropped);
            self.files.last_warning_ms = now_ms;
            out.push(warning(if n == 1 {
                format!("a file chunk {why} was dropped")
            } else {
                format!("{n} file chunks dropped, the last one {why}")
            }));
        }
    }

    /// Ends a transfer we receive with a warning (if it is one of ours).
    fn fail(&mut self, transfer: TransferId, why: &str, out: &mut Vec<Action>) {
        out.push(warning(why.to_string()));
        if self.files.incoming.remove(&transfer).is_some() {
            self.files.ended(transfer);
            out.push(Action::Event(Event::FileFailed {
                transfer,
                reason: why.to_string(),
            }));
        }
    }

    /// Ends an outgoing transfer we can no longer send (no one is told).
    fn end_outgoing(&mut self, transfer: TransferId, why: String, out: &mut Vec<Action>) {
        if self.files.outgoing.remove(&transfer).is_some() {
            self.files.ended(transfer);
            out.push(Action::Event(Event::FileFailed {
                transfer,
                reason: why,
            }));
        }
    }

    /// `who` was removed or left: private transfers to or from them end
    /// now (nothing more is sealed for them; nothing more from them
    /// counts).
    pub(crate) fn private_transfers_end(&mut self, who: &Fingerprint, out: &mut Vec<Action>) {
        let to_them: Vec<TransferId> = self
            .files
            .outgoing
            .iter()
            .filter(|(_, t)| t.private.as_ref().is_some_and(|(to, _)| to == who))
            .map(|(id, _)| *id)
            .collect();
        for id in to_them {
            self.end_outgoing(id, format!("{} is no longer in the room", who.short()), out);
        }
        let from_them: Vec<TransferId> = self
            .files
            .incoming
            .iter()
            .filter(|(_, t)| t.keys.is_some() && t.from == *who)
            .map(|(id, _)| *id)
            .collect();
        for id in from_them {
            if self.files.incoming.remove(&id).is_some() {
                self.files.ended(id);
                out.push(Action::Event(Event::FileFailed {
                    transfer: id,
                    reason: "its sender is no longer in the room".into(),
                }));
            }
        }
    }

    /// Ends every transfer, ours and others' (we were removed, or the
    /// room started afresh under a new admin run): nothing more is sealed
    /// or accepted for any of them.
    pub(crate) fn transfers_end_all(&mut self, why: &str, out: &mut Vec<Action>) {
        let ids: Vec<TransferId> = self
            .files
            .outgoing
            .keys()
            .chain(self.files.incoming.keys())
            .copied()
            .collect();
        for id in ids {
            self.files.outgoing.remove(&id);
            self.files.incoming.remove(&id);
            self.files.ended(id);
            out.push(Action::Event(Event::FileFailed {
                transfer: id,
                reason: why.to_string(),
            }));
        }
    }

    /// Whether an outgoing transfer is still running.
    pub(crate) fn sending(&self, transfer: &TransferId) -> bool {
        self.files.outgoing.contains_key(transfer)
    }
}

/// Whether a sealed chunk could hold at most [`CHUNK_SIZE`] bytes (CBC with
/// PKCS#7 adds 1 to 16 bytes): checked before any MAC is computed.
fn plausible_size(chunk: &FileChunk) -> bool {
    let n = chunk.sealed.ciphertext.len();
    n > 0 && n.is_multiple_of(16) && n <= CHUNK_SIZE as usize + 16
}

/// The last chunk arrived: the whole content must hash to the offer's value.
fn finish(transfer: TransferId, t: &mut Incoming, out: &mut Vec<Action>) {
    let digest: [u8; 32] = std::mem::take(&mut t.hash).finalize().into();
    if bool::from(subtle::ConstantTimeEq::ct_eq(&digest[..], &t.sha256[..])) {
        out.push(Action::Event(Event::FileDone { transfer }));
    } else {
        let why = format!(
            "{} does not match the SHA-256 its sender signed: discarded",
            t.name
        );
        out.push(warning(why.clone()));
        out.push(Action::Event(Event::FileFailed {
            transfer,
            reason: why,
        }));
    }
}
