//! What members say to each other: room messages (header, sealed body,
//! signature) and what a body holds (text, typing, leaving, file offers),
//! file chunks, and private messages to one member.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{padding_for, DhKey, Sealed};
use crate::ids::{Fingerprint, RoomId};

/// The authenticated header of a [`ChatMessage`]: associated data of the seal
/// and the first part of the signed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageHeader {
    /// The room.
    pub room: RoomId,
    /// The epoch whose key sealed this message.
    pub epoch: u64,
    /// The sender's key fingerprint (must be in the epoch's roster).
    pub sender: Fingerprint,
    /// Per-sender sequence number: 1, 2, 3… within an epoch, with no gaps,
    /// so a receiver notices a message the relay dropped.
    pub seq: u64,
    /// How the sender's last [`PREV_EPOCHS`] epochs with messages before
    /// this one ended: (epoch, last `seq`), newest first, zeros where none.
    /// A receiver also notices the lines dropped at the end of those epochs,
    /// or in a whole epoch that never reached it.
    pub prev: Prev,
}

/// How many earlier epochs a message header accounts for.
pub const PREV_EPOCHS: usize = 3;

/// The (epoch, last seq) of a sender's last epochs with messages, newest
/// first; `(0, 0)` where none.
pub type Prev = [(u64, u64); PREV_EPOCHS];

/// A message to the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Authenticated header.
    pub header: MessageHeader,
    /// Sealed encoded [`ChatBody`].
    pub sealed: Sealed,
    /// Sender's RSA-PSS signature, context [`context::MESSAGE`](super::context::MESSAGE), over
    /// `encoded header ‖ iv ‖ ciphertext ‖ tag`.
    pub signature: Bytes,
}

/// The plaintext of a chat or private message.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatBody {
    /// Sender clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// What was said.
    pub content: Content,
    /// Zero bytes that bring the encoding to [`padded_size`](super::padded_size): typing
    /// notices and short lines seal to the same length.
    pub padding: Bytes,
}

impl ChatBody {
    /// A body padded to its size bucket.
    pub fn padded(sent_at_ms: u64, content: Content) -> Self {
        let mut body = ChatBody {
            sent_at_ms,
            content,
            padding: Bytes::new(),
        };
        let len = crate::encoded_len(&body).unwrap_or(0);
        body.padding = padding_for(len);
        body
    }
}

impl std::fmt::Debug for ChatBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatBody")
            .field("sent_at_ms", &self.sent_at_ms)
            .field("content", &self.content)
            .field("padding_len", &self.padding.len())
            .finish()
    }
}

/// Kinds of content. `Debug` shows the kind and sizes, never the text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A line of text (UTF-8).
    Text(String),
    /// The sender started (`true`) or stopped (`false`) typing.
    Typing(bool),
    /// The sender leaves the room.
    Leave,
    /// The sender offers a file; its chunks follow as [`FileChunk`]s.
    FileOffer(FileOffer),
    /// The sender stopped sending this transfer: receivers discard it.
    FileCancel([u8; 16]),
    /// Only inside a [`PrivateMessage`]: a file for its recipient alone,
    /// with the secret its chunks are sealed under.
    PrivateFileOffer(PrivateFileOffer),
    /// (Version 2) A line sent again after a reconnect, sealed anew: its
    /// first sealing may have reached some readers (the relay took it but
    /// its acknowledgement was lost), so it names that first sealing; a
    /// reader that shows a line of this sender with that epoch and
    /// sequence number drops it.
    Resent(Resent),
}

/// A line sent again: what it was first sealed as, and the text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resent {
    /// The epoch of its first sealing.
    pub epoch: u64,
    /// Its sequence number then (the room's, or the private one to this
    /// recipient).
    pub seq: u64,
    /// When it was first sent (sender clock, ms since the Unix epoch).
    pub sent_at_ms: u64,
    /// The line (UTF-8).
    pub text: String,
}

impl std::fmt::Debug for Resent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Resent({}/{}, {} bytes)",
            self.epoch,
            self.seq,
            self.text.len()
        )
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Content::Typing(on) => write!(f, "Typing({on})"),
            Content::Leave => f.write_str("Leave"),
            Content::FileOffer(o) => write!(f, "FileOffer({o:?})"),
            Content::FileCancel(t) => write!(f, "FileCancel({})", hex::encode(t)),
            Content::PrivateFileOffer(o) => write!(f, "PrivateFileOffer({:?})", o.offer),
            Content::Resent(r) => write!(f, "{r:?}"),
        }
    }
}

/// A file offer: signed as part of its [`ChatMessage`], so one signature
/// covers the whole file through its hash. `Debug` omits the name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffer {
    /// Random id of this transfer.
    pub transfer: [u8; 16],
    /// File name (no path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type, e.g. `image/png`.
    pub media_type: String,
    /// SHA-256 of the whole content.
    pub sha256: [u8; 32],
    /// Plaintext bytes per chunk (the last may be shorter).
    pub chunk_size: u32,
}

impl std::fmt::Debug for FileOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileOffer")
            .field("transfer", &hex::encode(self.transfer))
            .field("size", &self.size)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

/// A file offered to one member: the offer, and a fresh random secret from
/// which both ends derive the transfer's seal keys (HKDF,
/// [`context::HKDF_PRIVATE_FILE`](super::context::HKDF_PRIVATE_FILE)). It travels only inside a
/// [`PrivateMessage`], sealed to the recipient and signed by the sender.
/// The secret is wiped on drop and never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateFileOffer {
    /// The offer (name, size, media type, SHA-256, chunk size).
    pub offer: FileOffer,
    /// Keys the transfer's chunks.
    pub secret: [u8; 32],
}

impl std::fmt::Debug for PrivateFileOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateFileOffer")
            .field("offer", &self.offer)
            .finish_non_exhaustive()
    }
}

impl Drop for PrivateFileOffer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

/// The authenticated header of a [`FileChunk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHeader {
    /// The room.
    pub room: RoomId,
    /// The epoch whose key sealed the chunk.
    pub epoch: u64,
    /// The offering member.
    pub sender: Fingerprint,
    /// The transfer (from the offer).
    pub transfer: [u8; 16],
    /// 0-based chunk index.
    pub index: u32,
}

/// One chunk of a file, sealed under the epoch key with its header as
/// associated data. Not signed: the signed offer's SHA-256 covers the content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChunk {
    /// Authenticated header.
    pub header: ChunkHeader,
    /// The sealed chunk bytes.
    pub sealed: Sealed,
}

/// The authenticated header of a [`PrivateMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateHeader {
    /// The room.
    pub room: RoomId,
    /// The room epoch when sent: receivers accept the current epoch only, so
    /// sequence numbers restart safely and removed members are refused.
    pub epoch: u64,
    /// Sender's key fingerprint.
    pub sender: Fingerprint,
    /// Recipient's key fingerprint.
    pub recipient: Fingerprint,
    /// Per-sender, per-recipient sequence number: 1, 2, 3… within an
    /// epoch, with no gaps.
    pub seq: u64,
    /// How the sender's last epochs with private messages to this recipient
    /// ended, as in [`MessageHeader::prev`].
    pub prev: Prev,
    /// Sender's ephemeral X25519 key for this message.
    pub ephemeral: DhKey,
}

/// A private message: X25519(ephemeral, recipient's roster `dh_key`) → HKDF
/// with purpose [`context::DH_PRIVATE`](super::context::DH_PRIVATE) → seal, signed by the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateMessage {
    /// Authenticated header.
    pub header: PrivateHeader,
    /// Sealed encoded [`ChatBody`].
    pub sealed: Sealed,
    /// Sender's RSA-PSS signature, context [`context::PRIVATE`](super::context::PRIVATE), over
    /// `encoded header ‖ iv ‖ ciphertext ‖ tag`.
    pub signature: Bytes,
}

/// The bytes a sender signs for a message: `encoded header ‖ iv ‖
/// ciphertext ‖ tag` (the caller passes the encoded header).
pub fn signed_message_bytes(encoded_header: &[u8], sealed: &Sealed) -> Vec<u8> {
    let mut v = Vec::with_capacity(encoded_header.len() + 48 + sealed.ciphertext.len());
    v.extend_from_slice(encoded_header);
    v.extend_from_slice(&sealed.iv);
    v.extend_from_slice(&sealed.ciphertext);
    v.extend_from_slice(&sealed.tag);
    v
}
