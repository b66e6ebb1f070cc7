//! End-to-end envelopes: what clients publish to each other through the
//! relay. The relay never decodes these; to it they are opaque payloads.
//!
//! Rules that hold for every type here (and that `docs/PROTOCOL.md` details):
//! - Anything a member must trust from the admin is [`Signed`] by the admin's
//!   RSA key (announce, epoch, notice); members check the key against the
//!   fingerprint pinned in their invite.
//! - Anything confidential is [`Sealed`]: AES-256-CBC + HMAC-SHA256 with the
//!   header that names it as associated data, so a header cannot be moved to
//!   another payload.
//! - Signatures cover exact bytes (`Signed::body`, or an encoded header
//!   followed by the sealed parts), never a re-encoding.
//!
//! This issue fixes the types and their encoding; the engine gives them
//! behaviour.
//!
//! This file holds the control envelopes (announce, join, epoch, roster,
//! notice, beacon); `messages.rs` what members say to each other.

mod messages;

pub use messages::*;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{Fingerprint, RoomId};

/// An X25519 public key.
pub type DhKey = [u8; 32];

/// Signature contexts: each signed statement type has its own, so a
/// signature over one can never be presented as another. The signed input
/// is `context ‖ 0x00 ‖ bytes`.
pub mod context {
    /// [`super::Announce`] bodies, signed by the admin.
    pub const ANNOUNCE: &str = "teamchat/v1/announce";
    /// [`super::JoinInfo`] bodies, signed by the joining member.
    pub const JOIN: &str = "teamchat/v1/join";
    /// [`super::EpochBody`] bodies, signed by the admin.
    pub const EPOCH: &str = "teamchat/v1/epoch";
    /// [`super::Notice`] bodies, signed by the admin.
    pub const NOTICE: &str = "teamchat/v1/notice";
    /// [`super::Beacon`] bodies, signed by the admin.
    pub const BEACON: &str = "teamchat/v1/beacon";
    /// [`super::ChatMessage`]: encoded header ‖ iv ‖ ciphertext ‖ tag.
    pub const MESSAGE: &str = "teamchat/v1/message";
    /// [`super::PrivateMessage`]: encoded header ‖ iv ‖ ciphertext ‖ tag.
    pub const PRIVATE: &str = "teamchat/v1/private";
    /// HKDF purpose of the X25519 seal of a join request.
    pub const DH_JOIN: &str = "teamchat/v1/hkdf/dh-join";
    /// HKDF purpose of the X25519 seal of a private message.
    pub const DH_PRIVATE: &str = "teamchat/v1/hkdf/dh-private";
    /// Associated-data label of a [`super::JoinRequest`] seal.
    pub const AAD_JOIN: &str = "teamchat/v1/aad/join";
    /// Associated-data label of a [`super::RosterPart`] seal.
    pub const AAD_ROSTER: &str = "teamchat/v1/aad/roster";
    /// Associated-data label of a [`super::ChatMessage`] seal.
    pub const AAD_MESSAGE: &str = "teamchat/v1/aad/message";
    /// Associated-data label of a [`super::FileChunk`] seal.
    pub const AAD_CHUNK: &str = "teamchat/v1/aad/chunk";
    /// Associated-data label of a [`super::PrivateMessage`] seal.
    pub const AAD_PRIVATE: &str = "teamchat/v1/aad/private";
    /// HKDF purpose of the keys of a file sent to one member (from the
    /// secret in its [`super::PrivateFileOffer`]).
    pub const HKDF_PRIVATE_FILE: &str = "teamchat/v1/hkdf/private-file";
    /// Associated-data label of a chunk of a file sent to one member
    /// ([`super::Envelope::PrivateChunk`]).
    pub const AAD_PRIVATE_CHUNK: &str = "teamchat/v1/aad/private-chunk";
}

/// Associated data for a seal: `label ‖ 0x00 ‖ encoded header`. The label
/// keeps the seals of different envelope types apart even under one key.
pub fn aad<T: serde::Serialize>(label: &str, header: &T) -> Vec<u8> {
    let mut v = Vec::with_capacity(label.len() + 1 + 128);
    v.extend_from_slice(label.as_bytes());
    v.push(0);
    // Headers are small fixed-size structs: encoding cannot fail.
    if let Ok(h) = crate::encode_payload(header, crate::DEFAULT_MAX_FRAME) {
        v.extend_from_slice(&h);
    }
    v
}

/// The size an encoded plaintext of `len` bytes is padded to before sealing,
/// so that ciphertext lengths fall into a few buckets: 64, then powers of two
/// up to 16 KiB, then multiples of 16 KiB. The relay cannot tell a typing
/// notice from a short line, nor learn a text's length beyond its bucket.
pub fn padded_size(len: usize) -> usize {
    const STEP: usize = 16 * 1024;
    if len <= 64 {
        64
    } else if len <= STEP {
        len.next_power_of_two()
    } else {
        len.div_ceil(STEP) * STEP
    }
}

/// Padding bytes that bring a value whose encoding (with empty padding) is
/// `unpadded` bytes long to [`padded_size`].
pub(crate) fn padding_for(unpadded: usize) -> Bytes {
    Bytes::from(vec![0u8; padded_size(unpadded) - unpadded])
}

/// Ciphertext with its IV and tag (see `crypto::seal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Random CBC IV.
    pub iv: [u8; 16],
    /// AES-256-CBC ciphertext with PKCS#7 padding (a non-zero multiple of 16
    /// bytes when valid).
    pub ciphertext: Bytes,
    /// HMAC-SHA256 over `u32be(len(aad)) ‖ aad ‖ iv ‖ ciphertext`.
    pub tag: [u8; 32],
}

/// Exact bytes and an RSA-PSS-SHA256 signature over `context ‖ 0 ‖ body`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// An encoded body (its type depends on the envelope variant).
    pub body: Bytes,
    /// 384 bytes for RSA-3072.
    pub signature: Bytes,
}

/// Everything a client publishes. Variant order is part of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Envelope {
    /// Admin → room: who the admin is and where to send join requests.
    /// `body` is an [`Announce`], signed with [`context::ANNOUNCE`].
    Announce(Signed),
    /// Anyone → room: asks the admin to announce again (after a reconnect).
    /// Carries nothing secret; the admin rate-limits its answers.
    Knock {
        /// The room, so a misrouted knock is ignored.
        room: RoomId,
        /// Random; the admin's answering [`Announce`] echoes it, which
        /// proves the announcement (and the epoch it names) is fresh.
        nonce: [u8; 16],
    },
    /// Member → admin: a join request sealed to the admin's X25519 key.
    JoinRequest(JoinRequest),
    /// Admin → room: a new epoch. `body` is an [`EpochBody`], signed with
    /// [`context::EPOCH`].
    Epoch(Signed),
    /// Admin → room: one part of the encrypted roster of an epoch.
    Roster(RosterPart),
    /// Admin → member or room: denial, kick, closing. `body` is a
    /// [`Notice`], signed with [`context::NOTICE`].
    Notice(Signed),
    /// Member → room: a chat message sealed under the epoch key.
    Message(ChatMessage),
    /// Member → member: a message only the recipient can open.
    Private(PrivateMessage),
    /// Member → room: one chunk of a file offered in a [`Content::FileOffer`].
    FileChunk(FileChunk),
    /// Member → one member: a chunk of a file offered privately
    /// ([`Content::PrivateFileOffer`]), sealed under that transfer's own
    /// keys. Every connection of the room receives it; only the recipient
    /// holds the keys.
    PrivateChunk(FileChunk),
    /// Admin → room: the admin is alive and the room's epoch is this one.
    /// `body` is a [`Beacon`], signed with [`context::BEACON`].
    Beacon(Signed),
}

impl Envelope {
    /// Whether an encoded envelope is a file chunk (room or private), from
    /// its variant tag alone: a client may take the messages it has read
    /// before the chunks read with them.
    pub fn is_chunk(encoded: &[u8]) -> bool {
        // bincode: the variant index as a u32, little-endian, first.
        matches!(
            encoded
                .get(..4)
                .map(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]])),
            Some(FILE_CHUNK_TAG | PRIVATE_CHUNK_TAG)
        )
    }
}

/// The variant indices of [`Envelope::FileChunk`] and
/// [`Envelope::PrivateChunk`].
const FILE_CHUNK_TAG: u32 = 8;
const PRIVATE_CHUNK_TAG: u32 = 9;

/// The admin's signed announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// The room announced.
    pub room: RoomId,
    /// The admin's RSA public key (SPKI DER); its SHA-256 must equal the
    /// invite's `admin` fingerprint.
    pub admin_key: Bytes,
    /// A fresh X25519 key for this run of the admin app: join requests are
    /// sealed to it, so the admin never RSA-decrypts a stranger's bytes.
    pub join_key: DhKey,
    /// The run's number: strictly greater than that of every earlier run
    /// of this admin in this room (the admin keeps it across restarts). A
    /// member never goes back to a run numbered below the one it holds.
    pub run: u64,
    /// The current epoch (0 before the first).
    pub epoch: u64,
    /// Whether the room accepts a password proof for automatic approval.
    pub password_enabled: bool,
    /// The nonce of the [`Envelope::Knock`] this announcement answers, if
    /// any. A member that knocked accepts only an announcement echoing its
    /// nonce, and then no epoch older than `epoch`.
    pub answers: Option<[u8; 16]>,
    /// Admin clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
}

/// A join request: ephemeral X25519 key and a sealed [`Signed`] whose body is
/// a [`JoinInfo`]. Seal keys: X25519(ephemeral, announce.join_key) → HKDF
/// with purpose [`context::DH_JOIN`]; associated data: [`JoinRequest::aad`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The room joined.
    pub room: RoomId,
    /// The member's ephemeral X25519 public key for this request.
    pub ephemeral: DhKey,
    /// Sealed encoded [`Signed`] ([`JoinInfo`] signed with [`context::JOIN`]).
    pub sealed: Sealed,
}

impl JoinRequest {
    /// Associated data of the seal: [`context::AAD_JOIN`] `‖ 0x00 ‖ room ‖
    /// ephemeral ‖ join_key`.
    pub fn aad(room: &RoomId, ephemeral: &DhKey, join_key: &DhKey) -> Vec<u8> {
        aad(context::AAD_JOIN, &(room, ephemeral, join_key))
    }
}

/// What a member tells the admin when asking to join, signed by the
/// member's RSA key (proof of possession) and sealed to the admin.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinInfo {
    /// The room joined.
    pub room: RoomId,
    /// The admin join key this request was sealed to (binds the request to
    /// one admin run).
    pub join_key: DhKey,
    /// The request's ephemeral key (binds the signature to this seal).
    pub ephemeral: DhKey,
    /// Display name chosen by the member.
    pub name: String,
    /// The member's RSA public key (SPKI DER).
    pub member_key: Bytes,
    /// The member's static X25519 key for private messages; covered by the
    /// member's signature over this whole body.
    pub dh_key: DhKey,
    /// HMAC-SHA256(PBKDF2(password, room), transcript) when the member
    /// knows the room password; see `docs/PROTOCOL.md`.
    pub password_proof: Option<[u8; 32]>,
    /// Member clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// Zero bytes that bring the encoding to [`padded_size`], so that the
    /// sealed request's length reveals neither the name's length nor whether
    /// a password proof is present.
    pub padding: Bytes,
}

impl JoinInfo {
    /// Sets `padding` so that the encoding fills its size bucket.
    pub fn pad(mut self) -> Self {
        self.padding = Bytes::new();
        let len = crate::encoded_len(&self).unwrap_or(0);
        self.padding = padding_for(len);
        self
    }
}

impl std::fmt::Debug for JoinInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinInfo")
            .field("room", &self.room)
            .field("name_len", &self.name.len())
            .field("member_key_len", &self.member_key.len())
            .field("password_proof", &self.password_proof.map(|_| ".."))
            .field("sent_at_ms", &self.sent_at_ms)
            .field("padding_len", &self.padding.len())
            .finish_non_exhaustive()
    }
}

/// The signed part of an epoch change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochBody {
    /// The room.
    pub room: RoomId,
    /// Strictly greater than every earlier epoch of the room in this admin
    /// run.
    pub epoch: u64,
    /// The admin run: the join key of the announcement of the run that made
    /// this epoch. Members accept only epochs of the run they were
    /// (freshly) announced, so a relay cannot replay another run's epochs.
    pub run: DhKey,
    /// Admin clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// The new session key wrapped for each member (admin included) with
    /// RSA-OAEP-SHA256, label `teamchat/v1/wrap room=<hex> epoch=<n>`.
    #[serde(deserialize_with = "crate::bounded::vec")]
    pub wraps: Vec<KeyWrap>,
    /// SHA-256 of the plaintext of each [`RosterPart`] of the epoch, in
    /// order (their concatenation is the encoded [`Roster`]); its length is
    /// the number of parts (1 to 65,535). Each part is checked on arrival,
    /// so a forged part (sealed by a member, who holds the epoch key) is
    /// dropped alone and the genuine one still completes the epoch.
    #[serde(deserialize_with = "crate::bounded::vec")]
    pub roster: Vec<[u8; 32]>,
    /// The closing count of the epoch before (`epoch − 1`), as in
    /// [`Beacon::lines`]: a member that installs this epoch learns how many
    /// lines each sender wrote in the one it leaves, even if the relay
    /// dropped every beacon that said so.
    #[serde(deserialize_with = "crate::bounded::vec")]
    pub lines: Vec<(u32, u64)>,
}

/// One member's wrapped session key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyWrap {
    /// Fingerprint of the member's RSA key.
    pub member: Fingerprint,
    /// The `ephemeral` key of the join request that seated this member on
    /// its current connection (zeros for the admin's own wrap): a member
    /// accepts only epochs that name a request it sent itself, in this run
    /// of its app, so no epoch recorded before can be replayed to it.
    pub request: DhKey,
    /// The first epoch that seated this member by that request (0 for the
    /// admin's own wrap): every epoch from it on was the member's to hold,
    /// so one it never received is reported as a gap, not passed over.
    pub since: u64,
    /// The member's seat before this one in the admin's run, if it ended:
    /// its first and last epoch (zeros if none). Epochs in it that never
    /// reached the member are reported as gaps, not passed over.
    pub before: (u64, u64),
    /// RSA-OAEP-SHA256 ciphertext of the 32-byte session key.
    pub wrapped: Bytes,
}

/// A part of an epoch's roster, sealed under that epoch's keys with
/// associated data [`RosterPartHeader`] (encoded). Parts keep a 1,000-member
/// roster within the frame limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterPart {
    /// Which part this is.
    pub header: RosterPartHeader,
    /// A slice of the encoded [`Roster`].
    pub sealed: Sealed,
}

/// The authenticated header of a [`RosterPart`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterPartHeader {
    /// The room.
    pub room: RoomId,
    /// The epoch whose roster this is.
    pub epoch: u64,
    /// 0-based part index.
    pub index: u16,
    /// Number of parts (equals the length of `EpochBody::roster`).
    pub count: u16,
}

/// The room's membership in an epoch, visible to members only. `Debug`
/// omits names.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// The room's human name.
    pub room_name: String,
    /// Why this epoch began.
    pub cause: EpochCause,
    /// Every member, the admin first.
    #[serde(deserialize_with = "crate::bounded::vec")]
    pub members: Vec<RosterEntry>,
    /// Zero bytes that bring the encoding to [`padded_size`], so the sizes
    /// of the roster parts do not reveal the lengths of the names.
    pub padding: Bytes,
}

impl Roster {
    /// Sets `padding` so that the encoding is as long as it would be with
    /// every name (and the room name) `name_budget` bytes long, rounded up
    /// to its size bucket: the sizes of the parts tell the member count,
    /// never the lengths of the names.
    pub fn pad(mut self, name_budget: usize) -> Self {
        self.padding = Bytes::new();
        let len = crate::encoded_len(&self).unwrap_or(0);
        let short = |n: &String| name_budget.saturating_sub(n.len());
        let missing: usize =
            self.members.iter().map(|m| short(&m.name)).sum::<usize>() + short(&self.room_name);
        self.padding = Bytes::from(vec![0u8; padded_size(len + missing) - len]);
        self
    }
}

impl std::fmt::Debug for Roster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roster")
            .field("cause", &self.cause)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// Why an epoch began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpochCause {
    /// The room was opened.
    Opened,
    /// A member was approved.
    Joined(Fingerprint),
    /// A member left.
    Left(Fingerprint),
    /// A member was removed by the admin.
    Kicked(Fingerprint),
    /// The admin asked for a new key.
    Rekey,
    /// The message or time budget of the previous key ran out.
    Periodic,
}

/// One member in a [`Roster`]. `Debug` omits the name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// Display name.
    pub name: String,
    /// RSA public key (SPKI DER).
    pub member_key: Bytes,
    /// Static X25519 key for private messages.
    pub dh_key: DhKey,
    /// Whether this is the admin.
    pub admin: bool,
}

impl std::fmt::Debug for RosterEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RosterEntry")
            .field("member_key_len", &self.member_key.len())
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// An admin statement about one member or the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The room.
    pub room: RoomId,
    /// The room's epoch when the notice was issued (a replayed notice from
    /// an earlier epoch is stale).
    pub epoch: u64,
    /// The join key of the admin run that issued it (binds it to that run).
    pub join_key: DhKey,
    /// Whom it concerns (`None`: the whole room).
    pub target: Option<Fingerprint>,
    /// For a denial: the `ephemeral` key of the join request it answers, so
    /// it cannot be replayed against a later request.
    pub request: Option<DhKey>,
    /// What happened.
    pub kind: NoticeKind,
    /// Free text from the admin.
    pub reason: String,
    /// Admin clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
}

/// The admin's liveness beacon, sent every few seconds to the room: a
/// member that has not heard a fresh one for a while, or hears of an epoch
/// it does not hold, stops sending (a relay that withholds a removal cannot
/// keep members writing under a key the removed member holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beacon {
    /// The room.
    pub room: RoomId,
    /// The join key of the admin run that sends it.
    pub join_key: DhKey,
    /// That run's number (as in its [`Announce`]).
    pub run: u64,
    /// The room's current epoch.
    pub epoch: u64,
    /// Strictly increasing within the run: a member accepts only a beacon
    /// newer than the last it accepted, so an old one cannot be replayed.
    pub seq: u64,
    /// Admin clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// The room lines the admin has of `epoch`, per sender that wrote in it:
    /// (the sender's index in the epoch's roster, the last sequence number
    /// the admin has from it), in index order. A member that has fewer is
    /// told which sender's lines it missed, even if that sender writes no
    /// more (the gap would otherwise show only at its next line).
    #[serde(deserialize_with = "crate::bounded::vec")]
    pub lines: Vec<(u32, u64)>,
}

/// Kinds of [`Notice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    /// A join request was refused.
    Denied,
    /// A member was removed.
    Kicked,
    /// The admin closed the room.
    Closed,
}
