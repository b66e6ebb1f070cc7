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
//!
//! This file holds the limits, the transfer ids and state, and the file
//! work handed out ([`FileEvent`]); `send.rs` our files going out,
//! `receive.rs` files coming in.

mod receive;
mod send;

use std::collections::{HashMap, VecDeque};
use std::fmt;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{
    error, warning, Action, ChunkFault, Command, Core, Dropped, Event, Kind, MemberInfo,
    OfferRefusal, Participant, Warning,
};
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
/// Offers from one sender kept while [`MAX_INCOMING_PER_SENDER`] of its
/// files are arriving: taken up, in order, as those end. (Chunks travel in
/// the relay's bulk lane, so a sender's next offer can overtake the chunks
/// of its last file.)
pub const MAX_WAITING_OFFERS_PER_SENDER: usize = 8;
/// Offers kept waiting from everyone.
pub const MAX_WAITING_OFFERS: usize = 32;
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
    /// Offers that came while their sender had the most files arriving,
    /// oldest first.
    waiting: VecDeque<Waiting>,
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

/// An offer kept until its sender has a file fewer arriving.
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub(crate) struct Waiting {
    from: Participant,
    offer: FileOffer,
    keys: Option<SealKeys>,
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
            waiting: VecDeque::new(),
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
        // Their offers still waiting are dropped first: nothing more from
        // them is taken up.
        self.files
            .waiting
            .retain(|w| w.from.key.fingerprint() != *who);
        for key in from_them {
            self.end_incoming(key, "its sender is no longer in the room".into(), out);
        }
    }

    /// Ends every transfer, ours and others' (we were removed, or the
    /// room started afresh under a new admin run): nothing more is sealed
    /// or accepted for any of them.
    pub(crate) fn transfers_end_all(&mut self, why: &str, out: &mut Vec<Action>) {
        // In a fixed order, so that a seeded run replays exactly.
        let mut ours: Vec<TransferId> = self.files.outgoing.keys().copied().collect();
        ours.sort_unstable();
        for id in ours {
            self.end_outgoing(id, why.to_string(), out);
        }
        // Offers waiting are dropped first, so none is taken up below.
        self.files.waiting.clear();
        let mut theirs: Vec<Key> = self.files.incoming.keys().copied().collect();
        theirs.sort_unstable();
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
        let mismatch = Warning::FileMismatch {
            file: t.name.clone(),
        };
        let why = mismatch.to_string();
        out.push(warning(mismatch));
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
