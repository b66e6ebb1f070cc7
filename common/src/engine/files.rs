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
//! A transfer is its offerer's: the receiver keys it by (offerer, id), so
//! another member's offer or cancel under the same id changes nothing of
//! it, and an id live under one sender is refused to every other (the
//! driver knows transfers by id alone).
//!
//! Nothing in a chunk's header is believed on its own word: any member
//! holds the epoch key and can seal a chunk naming any sender, transfer and
//! index. A chunk counts only for the transfer of the sender it names, is
//! opened only under an epoch that transfer's offerer may still send in
//! (the previous epoch's grace is decided by the offerer's membership, and
//! a transfer whose chunks have moved on to a newer epoch takes none from
//! an older one), and must be a chunk that transfer can have: its index
//! within the file and exactly the size the offer gives that index. A chunk
//! that fails any of this, or its MAC, or is a duplicate, is dropped (with a
//! warning at most once a second) and the transfer goes on. A well-formed
//! chunk past the next one shows a gap: the transfer ends
//! ([`FileEvent::Failed`]), as it does on a hash mismatch at the end, so a
//! member who seals a well-formed chunk in the sender's name can still
//! spoil a transfer, never make a wrong file be kept. The engine hands
//! accepted bytes to the driver ([`FileEvent::Data`]), which writes them to
//! a temporary file and keeps the file only after [`FileEvent::Done`].

use std::collections::{HashMap, VecDeque};
use std::fmt;

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
pub const RECENT_IDS: usize = 4096;
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

/// A transfer as a receiver knows it: who offered it, and its id.
type Key = (Fingerprint, TransferId);

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

#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
struct Outgoing {
    size: u64,
    next: u32,
    chunks: u64,
    /// Sent to one member: who, and the transfer's own keys.
    private: Option<(Fingerprint, SealKeys)>,
}

#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
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
    /// The epoch of the newest room chunk taken: the sender seals each
    /// chunk under the epoch current when it is sent, so an older one
    /// after it is not the sender's (a removed member still holds the
    /// previous epoch's key during its grace).
    epoch: u64,
}

/// The engine's transfer state.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub(crate) struct Files {
    outgoing: HashMap<TransferId, Outgoing>,
    incoming: HashMap<Key, Incoming>,
    /// Transfers that ended (ours under our own fingerprint, and others'),
    /// oldest first: a later offer of one of their ids is refused, so no
    /// one can take over a finished transfer's id (a file waiting for
    /// Accept keeps its id).
    recent: VecDeque<Key>,
    /// Chunks dropped since the last warning about them, and when that was.
    dropped: u64,
    last_warning_ms: u64,
    /// Largest file sent or accepted.
    pub max_size: u64,
}

impl Files {
    /// Remembers an ended transfer. When the list is full, whoever holds
    /// the most ids in it gives up its oldest: a sender who ends transfer
    /// after transfer (empty files cost one signature each) pushes out its
    /// own ids, never another's.
    fn ended(&mut self, key: Key) {
        if self.recent.len() >= RECENT_IDS {
            let mut held: HashMap<Fingerprint, usize> = HashMap::new();
            for (who, _) in &self.recent {
                *held.entry(*who).or_default() += 1;
            }
            let most = held.into_iter().max_by_key(|(who, n)| (*n, *who));
            let at = most.and_then(|(most, _)| self.recent.iter().position(|(w, _)| *w == most));
            self.recent.remove(at.unwrap_or(0));
        }
        self.recent.push_back(key);
    }

    /// Whether `t` names a transfer, live or ended, of anyone: ours or one
    /// we receive.
    fn in_use(&self, t: &TransferId) -> bool {
        self.outgoing.contains_key(t)
            || self.incoming.keys().any(|(_, id)| id == t)
            || self.recent.iter().any(|(_, id)| id == t)
    }

    /// The transfer we receive under id `t`, whoever offered it (a live id
    /// has one offerer: a second offer of it is refused).
    fn incoming_id(&self, t: &TransferId) -> Option<Key> {
        self.incoming.keys().find(|(_, id)| id == t).copied()
    }
}

impl Default for Files {
    fn default() -> Self {
        Files {
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            recent: VecDeque::new(),
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

/// File work for the client runtime: the engine seals, checks and orders
/// a transfer's chunks; what touches the disk is the runtime's. Goes out as
/// [`Action::File`], never shown as such.
#[derive(Clone, PartialEq, Eq)]
pub enum FileEvent {
    /// Our file offer went out; the driver now sends its chunks.
    Offered {
        /// The transfer.
        transfer: TransferId,
        /// The name as offered.
        name: String,
        /// Size in bytes.
        size: u64,
        /// The one member it goes to, or `None` for the whole room.
        to: Option<MemberInfo>,
    },
    /// A member offers a file (signature verified); chunks follow.
    Incoming {
        /// Who offers it.
        from: MemberInfo,
        /// The transfer.
        transfer: TransferId,
        /// The name the sender gave (control characters removed; not yet
        /// safe as a path).
        name: String,
        /// Size in bytes.
        size: u64,
        /// Media type the sender claims.
        media_type: String,
        /// SHA-256 the sender signed.
        sha256: [u8; 32],
        /// Sent to us alone (no one else can read it).
        private: bool,
    },
    /// The next bytes of an incoming file, in order, authenticated.
    Data {
        /// The transfer.
        transfer: TransferId,
        /// Chunk index.
        index: u32,
        /// The bytes.
        data: Bytes,
    },
    /// An incoming file is complete and matches its signed SHA-256.
    Done {
        /// The transfer.
        transfer: TransferId,
    },
    /// A transfer ended without a file (failed check, cancelled).
    Failed {
        /// The transfer.
        transfer: TransferId,
        /// Why.
        reason: String,
    },
}

impl fmt::Debug for FileEvent {
    /// Names, sizes and ids only: never file contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileEvent::Offered { transfer, size, .. } => {
                write!(f, "Offered({}, {size} bytes)", short_id(transfer))
            }
            FileEvent::Incoming {
                from,
                transfer,
                size,
                ..
            } => write!(
                f,
                "Incoming({} from {}, {size} bytes)",
                short_id(transfer),
                from.fingerprint.short()
            ),
            FileEvent::Data {
                transfer,
                index,
                data,
            } => write!(
                f,
                "Data({} #{index}, {} bytes)",
                short_id(transfer),
                data.len()
            ),
            FileEvent::Done { transfer } => write!(f, "Done({})", short_id(transfer)),
            FileEvent::Failed { transfer, reason } => {
                write!(f, "Failed({}, {reason})", short_id(transfer))
            }
        }
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
            } => self.send_chunk(now_ms, transfer, index, &data, out),
            Command::CancelFile(t) => self.cancel_file(now_ms, t, out),
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
                secret: crate::crypto::random_array(),
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
            let sealed = seal(keys, &aad(context::AAD_PRIVATE_CHUNK, &header), data);
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
            let sealed = seal(&cur.keys, &aad(context::AAD_CHUNK, &header), data);
            Envelope::FileChunk(FileChunk { header, sealed })
        };
        if !self.publish(None, &env, out) {
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
        let key = (info.fingerprint, offer.transfer);
        if self.files.incoming.contains_key(&key) || self.files.recent.contains(&key) {
            out.push(warning(format!(
                "{} offered {name} under a transfer id already in use: ignored",
                info.name
            )));
            return;
        }
        if self.files.in_use(&offer.transfer) {
            // Someone else's (or our own) transfer has this id: the driver
            // knows transfers by id alone, so a second one would be
            // ambiguous; the first goes on untouched.
            out.push(warning(format!(
                "{} offered {name} under a transfer id already in use by someone else: ignored",
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
    }

    /// A chunk from the relay. Checks, in order: room, not our own, a
    /// transfer we receive from the sender it names (otherwise it is not
    /// even opened), a room transfer, a possible size, an epoch its offerer
    /// may send in and the transfer has not left, the MAC; then, in
    /// [`Core::take_chunk`], its place and size in the file.
    pub(crate) fn on_chunk(&mut self, now_ms: u64, chunk: &FileChunk, out: &mut Vec<Action>) {
        let h = &chunk.header;
        if h.room != self.room {
            out.push(warning("file chunk for another room dropped".into()));
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
                self.dropped_chunk(now_ms, "from someone other than its sender", out);
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
            let why = format!("for {} sent the wrong way", t.name);
            self.dropped_chunk(now_ms, &why, out);
            return;
        }
        if !plausible_size(chunk) {
            self.dropped_chunk(now_ms, "of an impossible size", out);
            return;
        }
        if h.epoch < newest {
            let why = format!("of {} from an epoch its transfer has left", t.name);
            self.dropped_chunk(now_ms, &why, out);
            return;
        }
        // The previous epoch's grace is the offerer's (still a member),
        // never the header's word. Until the MAC has verified, nothing in
        // the header is trusted: a chunk that fails here is dropped with a
        // warning and changes no transfer (the next authentic chunk shows
        // any gap).
        let keys = match super::epoch_for(
            &mut self.current,
            &mut self.previous,
            now_ms,
            h.epoch,
            &from,
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
                self.dropped_chunk(now_ms, "that cannot belong to its transfer", out);
            }
            // Otherwise someone else's private file, or one that ended.
            return;
        };
        // Only the offer's sender holds the keys with the recipient; and
        // no chunk is larger than a sealed 64 KiB.
        if !plausible_size(chunk) {
            self.dropped_chunk(now_ms, "that cannot belong to its transfer", out);
            return;
        }
        let Ok(data) = open(keys, &aad(context::AAD_PRIVATE_CHUNK, h), &chunk.sealed) else {
            self.dropped_chunk(
                now_ms,
                "that failed authentication (forged or damaged)",
                out,
            );
            return;
        };
        self.take_chunk(now_ms, key, h, data, true, out);
    }

    /// An authentic chunk of transfer `key` (the sender it names), which
    /// came the transfer's way (room or private): counts if it is the next
    /// one and has exactly the size the offer gives its index. One that cannot
    /// be part of the file is dropped and changes nothing; a well-formed
    /// one past the next shows a gap and ends the transfer.
    fn take_chunk(
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
            Some(format!("duplicated (chunk {} of {})", h.index, t.name))
        } else if index >= chunks {
            Some(format!(
                "numbered {}, past the end of {} ({chunks} chunks)",
                h.index, t.name
            ))
        } else if data.len() as u64 != size {
            Some(format!(
                "of the wrong size (chunk {} of {})",
                h.index, t.name
            ))
        } else {
            None
        };
        if let Some(why) = why {
            self.dropped_chunk(now_ms, &why, out);
            return;
        }
        if h.index > t.next {
            let why = format!("chunk {} of {} is missing or out of order", t.next, t.name);
            out.push(warning(why.clone()));
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
            }
        }
    }

    /// A chunk that changes nothing (it did not authenticate, or cannot be
    /// part of the transfer it names): counted, and reported at most once
    /// a second (a removed member receives a whole file it cannot open).
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

    /// Ends a transfer we receive (if it is still running).
    fn end_incoming(&mut self, key: Key, why: String, out: &mut Vec<Action>) {
        if self.files.incoming.remove(&key).is_some() {
            self.files.ended(key);
            out.push(Action::File(FileEvent::Failed {
                transfer: key.1,
                reason: why,
            }));
        }
    }

    /// Ends an outgoing transfer we can no longer send (no one is told).
    fn end_outgoing(&mut self, transfer: TransferId, why: String, out: &mut Vec<Action>) {
        if self.files.outgoing.remove(&transfer).is_some() {
            let me = self.me.public().fingerprint();
            self.files.ended((me, transfer));
            out.push(Action::File(FileEvent::Failed {
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
        let from_them: Vec<Key> = self
            .files
            .incoming
            .iter()
            .filter(|(_, t)| t.keys.is_some() && t.from == *who)
            .map(|(key, _)| *key)
            .collect();
        for key in from_them {
            self.end_incoming(key, "its sender is no longer in the room".into(), out);
        }
    }

    /// Ends every transfer, ours and others' (we were removed, or the
    /// room started afresh under a new admin run): nothing more is sealed
    /// or accepted for any of them.
    pub(crate) fn transfers_end_all(&mut self, why: &str, out: &mut Vec<Action>) {
        let ours: Vec<TransferId> = self.files.outgoing.keys().copied().collect();
        for id in ours {
            self.end_outgoing(id, why.to_string(), out);
        }
        let theirs: Vec<Key> = self.files.incoming.keys().copied().collect();
        for key in theirs {
            self.end_incoming(key, why.to_string(), out);
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
        out.push(Action::File(FileEvent::Done { transfer }));
    } else {
        let why = format!(
            "{} does not match the SHA-256 its sender signed: discarded",
            t.name
        );
        out.push(warning(why.clone()));
        out.push(Action::File(FileEvent::Failed {
            transfer,
            reason: why,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_ending_transfer_after_transfer_pushes_out_only_its_own_ids() {
        let (alice, mallory) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let mut files = Files::default();
        files.ended((alice, [7; 16]));
        for n in 0..2 * RECENT_IDS as u32 {
            let mut t = [0; 16];
            t[..4].copy_from_slice(&n.to_be_bytes());
            files.ended((mallory, t));
        }
        assert_eq!(files.recent.len(), RECENT_IDS);
        assert!(files.in_use(&[7; 16]), "alice's id is still remembered");
        assert!(!files.in_use(&[0; 16]), "mallory's oldest went first");
    }
}
