//! What the engine tells its user when it drops a frame or when the room's
//! state needs saying: typed, so that front ends and tests match on the case
//! (rustls's `PeerMisbehaved` is the model), with a `Display` that gives the
//! text a person reads.
//!
//! [`Dropped`] is a frame (from the relay or a member) that failed a check:
//! it changed nothing. The other [`Warning`]s say something about the room
//! (the admin went quiet, sending is paused, lines were missed) or refuse
//! something a member offered (a file).

use std::fmt;

use wire::ConnId;

use crate::crypto::KeyError;

/// Something the user should know: shown as a warning line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A frame failed a check and was dropped; nothing changed.
    Dropped(Dropped),
    /// The admin's connection left the relay.
    AdminDisconnected,
    /// The admin came back on a new connection: we ask to be seated again.
    AdminReconnected,
    /// The admin started a new run: we ask to be seated in it.
    AdminRestarted,
    /// No signed word from the admin for `secs` seconds: sending is paused.
    AdminSilent {
        /// Seconds of silence that count as stale.
        secs: u64,
    },
    /// The admin's beacon named an epoch whose key never reached us: we ask
    /// to be seated again.
    KeyNeverArrived,
    /// A member said goodbye: sending waits for the key without them.
    PausedAfterGoodbye {
        /// Who left.
        name: String,
    },
    /// The admin's beacon shows a newer epoch than ours: sending is paused.
    EpochBehind {
        /// The room's epoch.
        room: u64,
        /// The one we hold.
        held: u64,
    },
    /// Epochs of this run that never reached us: what was said in them is
    /// missing.
    EpochsMissed {
        /// The first missed.
        from: u64,
        /// The last missed.
        to: u64,
    },
    /// A signed epoch without a key for us: our seat was let go.
    SeatReleased {
        /// That epoch.
        epoch: u64,
    },
    /// (Admin) Too many wrong room passwords: approval by password is off
    /// until restart.
    PasswordGuessing,
    /// (Admin) A wrong room password: the request was denied.
    WrongPassword {
        /// Who knocked.
        name: String,
    },
    /// (Admin) A removed member knew the room password: approval by
    /// password is off until a new one is set.
    PasswordRevoked,
    /// (Admin) A ban of a key not seen in this run.
    BannedUnseen {
        /// The key's short fingerprint.
        who: String,
    },
    /// A member offered a file we will not take.
    OfferIgnored {
        /// The offerer's name.
        from: String,
        /// The file's (cleaned) name.
        file: String,
        /// Why.
        why: OfferRefusal,
    },
    /// File chunks that changed nothing, reported at most once a second.
    ChunksDropped {
        /// How many since the last report.
        count: u64,
        /// What was wrong with the last one.
        last: ChunkFault,
    },
    /// A chunk of a file we receive is missing: the transfer ended.
    FileGap {
        /// The missing chunk.
        index: u32,
        /// The file.
        file: String,
    },
    /// A received file does not hash to the value its sender signed: it was
    /// discarded.
    FileMismatch {
        /// The file.
        file: String,
    },
}

/// Which kind of sealed message a check refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A message to the room.
    Message,
    /// A private message.
    Private,
}

/// Why a frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dropped {
    /// The relay delivered bytes that are no envelope.
    Undecodable,
    /// The relay welcomed us twice on one connection.
    SecondWelcome,
    /// An announcement that did not decode.
    MalformedAnnouncement,
    /// An announcement of another room.
    AnnouncementForAnotherRoom,
    /// An announcement signed by a key that is not the invite's admin.
    AnnouncementNotFromAdmin,
    /// An announcement carrying a key we cannot use.
    AnnouncementUnusableKey(KeyError),
    /// An announcement whose signature does not verify.
    AnnouncementBadSignature,
    /// An announcement of an admin run before the one we hold.
    EarlierRun {
        /// Its run.
        run: u64,
        /// Ours (or the lowest we accept).
        ours: u64,
    },
    /// An answer to an earlier knock cannot start a new admin run.
    AnswerCannotStartRun,
    /// The announced join key is unusable.
    UnusableJoinKey,
    /// A notice not signed by the admin.
    NoticeNotFromAdmin,
    /// A notice that did not decode.
    MalformedNotice,
    /// A notice of another room or admin run.
    NoticeFromElsewhere,
    /// A beacon not signed by the admin.
    BeaconNotFromAdmin,
    /// A beacon that did not decode.
    MalformedBeacon,
    /// A beacon of another room.
    BeaconForAnotherRoom,
    /// An epoch message before any verified announcement.
    EpochBeforeAnnouncement,
    /// An epoch message not signed by the pinned admin.
    EpochNotFromAdmin,
    /// An epoch message of another room.
    EpochForAnotherRoom,
    /// An epoch message of another admin run.
    EpochFromAnotherRun,
    /// An epoch older than ours.
    StaleEpoch {
        /// Its epoch.
        epoch: u64,
        /// Ours.
        current: u64,
    },
    /// An epoch message whose roster cannot be used.
    EpochWithoutRoster,
    /// An epoch that answers none of our join requests.
    EpochAnswersNothing {
        /// Its epoch.
        epoch: u64,
    },
    /// Our wrap in a signed epoch message did not unwrap.
    UnwrapFailed,
    /// A roster part that does not fit its epoch.
    RosterPartMisfit,
    /// A roster part that is not the one the admin signed.
    RosterPartForged,
    /// A roster part that failed authentication.
    RosterPartUnauthentic,
    /// A roster that did not decode.
    MalformedRoster,
    /// A roster that decoded but cannot be used.
    UnusableRoster(RosterError),
    /// (Admin) A join request for another room.
    JoinForAnotherRoom,
    /// (Admin) A join request that failed authentication.
    JoinUnauthentic {
        /// The connection it came from.
        conn: ConnId,
    },
    /// (Admin) A join request that did not decode.
    MalformedJoin,
    /// (Admin) A join request bound to another room or admin run.
    JoinBoundElsewhere,
    /// (Admin) A join request carrying an unusable key.
    JoinUnusableKey(KeyError),
    /// (Admin) A join request not signed by the key it carries.
    JoinNotSelfSigned,
    /// (Admin) A join request carrying the admin's own key.
    JoinWithAdminKey,
    /// (Admin) A join request seen before.
    JoinReplayed,
    /// (Admin) Too many join requests waiting for a decision.
    TooManyPending,
    /// (Admin) Join requests over the rate limit.
    TooManyJoins,
    /// (Admin) A member sent a frame only the admin may send.
    AdminOnly {
        /// The connection it came from.
        conn: ConnId,
    },
    /// A message for another room.
    ForAnotherRoom(Kind),
    /// Our own message came back from the relay.
    OwnEcho,
    /// A private message claiming to be from us.
    ClaimsToBeUs,
    /// A message while we hold no key for the room.
    NoKey(Kind),
    /// A message from an epoch before ours.
    OldEpoch {
        /// Room or private.
        kind: Kind,
        /// Its epoch.
        epoch: u64,
        /// Ours.
        current: u64,
    },
    /// A message from an epoch we do not know.
    UnknownEpoch {
        /// Room or private.
        kind: Kind,
        /// Its epoch.
        epoch: u64,
    },
    /// A message from a key not in its epoch's roster.
    NotInRoster {
        /// Room or private.
        kind: Kind,
        /// The key's short fingerprint.
        sender: String,
    },
    /// A message whose sequence number we have seen (replay or duplicate).
    /// Checked before the signature (a replay costs no RSA verification),
    /// so the sender is only the one its header claims.
    Replayed {
        /// Room or private.
        kind: Kind,
        /// The sender.
        name: String,
        /// Its sequence number.
        seq: u64,
        /// The last one we took from this sender.
        last: u64,
    },
    /// A message whose signature does not verify.
    BadSignature {
        /// Room or private.
        kind: Kind,
        /// The sender it claims.
        name: String,
    },
    /// A message that failed authentication (MAC or key agreement).
    Unauthentic {
        /// Room or private.
        kind: Kind,
        /// The sender.
        name: String,
    },
    /// A message that opened but did not decode.
    Malformed {
        /// Room or private.
        kind: Kind,
        /// The sender.
        name: String,
    },
    /// A text over the length limit.
    TooLong {
        /// Room or private.
        kind: Kind,
        /// The sender.
        name: String,
    },
    /// A private message with content other than text.
    NotText {
        /// The sender.
        name: String,
    },
    /// A private file offer sent to the whole room.
    PrivateOfferToRoom {
        /// The sender.
        name: String,
    },
    /// A file chunk for another room.
    ChunkForAnotherRoom,
}

/// Why a roster cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RosterError {
    /// It lists a key twice.
    DuplicateKey,
    /// An entry's key is unusable.
    BadKey(KeyError),
}

/// Why a file offer is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OfferRefusal {
    /// Larger than we take.
    TooLarge {
        /// Its size.
        size: u64,
        /// Our limit.
        limit: u64,
    },
    /// A chunk size other than the protocol's.
    ChunkSize,
    /// The sender already used this transfer id.
    IdInUse,
    /// Someone else's transfer has this id.
    IdTaken,
    /// This many of the sender's files are still arriving.
    BusySender(usize),
    /// This many files are arriving in all.
    Busy(usize),
}

/// Why a file chunk changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkFault {
    /// It names a transfer it was not sent by.
    NotFromItsSender,
    /// A room chunk under a private transfer's id.
    WrongWay {
        /// The file.
        file: String,
    },
    /// A size no chunk can have.
    ImpossibleSize,
    /// From an epoch its transfer has left.
    LeftEpoch {
        /// The file.
        file: String,
    },
    /// For an epoch we hold no key for.
    NoKey,
    /// The MAC did not verify.
    Unauthentic,
    /// It cannot belong to the transfer it names.
    NotItsTransfer,
    /// A chunk already taken.
    Duplicate {
        /// Its index.
        index: u32,
        /// The file.
        file: String,
    },
    /// Numbered past the end of the file.
    PastEnd {
        /// Its index.
        index: u32,
        /// The file.
        file: String,
        /// The file's chunks.
        chunks: u64,
    },
    /// Not the size its index must have.
    WrongSize {
        /// Its index.
        index: u32,
        /// The file.
        file: String,
    },
}

impl Dropped {
    /// The kind of sealed message the dropped frame was, if it was one.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Dropped::ForAnotherRoom(kind) | Dropped::NoKey(kind) => Some(*kind),
            Dropped::OldEpoch { kind, .. }
            | Dropped::UnknownEpoch { kind, .. }
            | Dropped::NotInRoster { kind, .. }
            | Dropped::Replayed { kind, .. }
            | Dropped::BadSignature { kind, .. }
            | Dropped::Unauthentic { kind, .. }
            | Dropped::Malformed { kind, .. }
            | Dropped::TooLong { kind, .. } => Some(*kind),
            Dropped::OwnEcho | Dropped::PrivateOfferToRoom { .. } => Some(Kind::Message),
            Dropped::ClaimsToBeUs | Dropped::NotText { .. } => Some(Kind::Private),
            _ => None,
        }
    }
}

impl From<Dropped> for Warning {
    fn from(d: Dropped) -> Self {
        Warning::Dropped(d)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Message => "message",
            Kind::Private => "private message",
        })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Dropped(d) => d.fmt(f),
            Warning::AdminDisconnected => {
                f.write_str("the admin disconnected; waiting for it to come back")
            }
            Warning::AdminReconnected => f.write_str("the admin reconnected; asking to rejoin"),
            Warning::AdminRestarted => f.write_str("the admin started afresh; asking to rejoin"),
            Warning::AdminSilent { secs } => write!(
                f,
                "no word from the admin for over {secs} s: sending is paused, and what is shown may not be current"
            ),
            Warning::KeyNeverArrived => {
                f.write_str("a newer room key never reached us; asking to be seated again")
            }
            Warning::PausedAfterGoodbye { name } => write!(
                f,
                "{name} said goodbye: nothing is sent until the room key without them arrives"
            ),
            Warning::EpochBehind { room, held } => write!(
                f,
                "the room is on epoch {room}, we hold {held}: sending is paused until its key arrives"
            ),
            Warning::EpochsMissed { from, to } => write!(
                f,
                "epochs {from} to {to} never reached us: anything said in them is missing"
            ),
            Warning::SeatReleased { epoch } => write!(
                f,
                "epoch {epoch} has no key for us: the admin let our seat go; asking to rejoin"
            ),
            Warning::PasswordGuessing => f.write_str(
                "too many wrong room passwords: approval by password is off until restart",
            ),
            Warning::WrongPassword { name } => {
                write!(f, "{name} gave a wrong room password: denied")
            }
            Warning::PasswordRevoked => f.write_str(
                "approval by room password is off: the removed member knew it. Set a new password to turn it back on (or approve by hand)",
            ),
            Warning::BannedUnseen { who } => write!(
                f,
                "{who} has not been in the room since the admin started: banned all the same"
            ),
            Warning::OfferIgnored { from, file, why } => match why {
                OfferRefusal::TooLarge { size, limit } => write!(
                    f,
                    "{from} offered {file} of {size} bytes, over the limit of {limit} bytes: ignored"
                ),
                OfferRefusal::ChunkSize => {
                    write!(f, "{from} offered {file} with an unusable chunk size: ignored")
                }
                OfferRefusal::IdInUse => write!(
                    f,
                    "{from} offered {file} under a transfer id already in use: ignored"
                ),
                OfferRefusal::IdTaken => write!(
                    f,
                    "{from} offered {file} under a transfer id already in use by someone else: ignored"
                ),
                OfferRefusal::BusySender(n) => write!(
                    f,
                    "{from} offered {file} while {n} of their files are still arriving: ignored"
                ),
                OfferRefusal::Busy(n) => write!(
                    f,
                    "{from} offered {file}, but {n} files are already arriving: ignored"
                ),
            },
            Warning::ChunksDropped { count: 1, last } => {
                write!(f, "a file chunk {last} was dropped")
            }
            Warning::ChunksDropped { count, last } => {
                write!(f, "{count} file chunks dropped, the last one {last}")
            }
            Warning::FileGap { index, file } => {
                write!(f, "chunk {index} of {file} is missing or out of order")
            }
            Warning::FileMismatch { file } => write!(
                f,
                "{file} does not match the SHA-256 its sender signed: discarded"
            ),
        }
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::Undecodable => f.write_str("undecodable frame from the relay dropped"),
            Dropped::SecondWelcome => f.write_str("a second welcome on one connection ignored"),
            Dropped::MalformedAnnouncement => f.write_str("malformed announcement dropped"),
            Dropped::AnnouncementForAnotherRoom => {
                f.write_str("announcement for another room dropped")
            }
            Dropped::AnnouncementNotFromAdmin => f.write_str(
                "an announcement signed by a key that is not the invite's admin was rejected (impersonation attempt?)",
            ),
            Dropped::AnnouncementUnusableKey(e) => {
                write!(f, "announcement with an unusable admin key: {e}")
            }
            Dropped::AnnouncementBadSignature => {
                f.write_str("announcement with a bad signature dropped")
            }
            Dropped::EarlierRun { run, ours } => write!(
                f,
                "an announcement of an earlier admin run ({run}, ours is {ours}) rejected: replayed by the relay?"
            ),
            Dropped::AnswerCannotStartRun => f.write_str(
                "an answer to an earlier knock cannot start a new admin run: ignored",
            ),
            Dropped::UnusableJoinKey => f.write_str("the admin's join key is unusable"),
            Dropped::NoticeNotFromAdmin => f.write_str("notice not signed by the admin rejected"),
            Dropped::MalformedNotice => f.write_str("malformed notice dropped"),
            Dropped::NoticeFromElsewhere => {
                f.write_str("notice from another room or an earlier admin session ignored")
            }
            Dropped::BeaconNotFromAdmin => f.write_str("beacon not signed by the admin rejected"),
            Dropped::MalformedBeacon => f.write_str("malformed beacon dropped"),
            Dropped::BeaconForAnotherRoom => f.write_str("beacon for another room dropped"),
            Dropped::EpochBeforeAnnouncement => {
                f.write_str("epoch message before any verified announcement dropped")
            }
            Dropped::EpochNotFromAdmin => {
                f.write_str("epoch message not signed by the pinned admin rejected")
            }
            Dropped::EpochForAnotherRoom => f.write_str("epoch message for another room dropped"),
            Dropped::EpochFromAnotherRun => {
                f.write_str("epoch message from another admin session rejected (replay?)")
            }
            Dropped::StaleEpoch { epoch, current } => {
                write!(f, "stale epoch {epoch} ignored (current {current})")
            }
            Dropped::EpochWithoutRoster => {
                f.write_str("epoch message without a usable roster dropped")
            }
            Dropped::EpochAnswersNothing { epoch } => write!(
                f,
                "epoch {epoch} answers none of our join requests: ignored (replayed from before a restart?)"
            ),
            Dropped::UnwrapFailed => {
                f.write_str("our key in a signed epoch message could not be unwrapped")
            }
            Dropped::RosterPartMisfit => {
                f.write_str("roster part that does not fit its epoch dropped")
            }
            Dropped::RosterPartForged => f.write_str(
                "roster part that is not the one the admin signed dropped (forged by a member?)",
            ),
            Dropped::RosterPartUnauthentic => {
                f.write_str("roster part failed authentication: dropped")
            }
            Dropped::MalformedRoster => f.write_str("malformed roster: epoch rejected"),
            Dropped::UnusableRoster(e) => write!(f, "unusable roster: {e}"),
            Dropped::JoinForAnotherRoom => f.write_str("join request for another room dropped"),
            Dropped::JoinUnauthentic { conn } => write!(
                f,
                "join request from connection {conn} failed authentication: dropped"
            ),
            Dropped::MalformedJoin => f.write_str("malformed join request dropped"),
            Dropped::JoinBoundElsewhere => {
                f.write_str("join request bound to another room or session dropped")
            }
            Dropped::JoinUnusableKey(e) => write!(f, "join request with an unusable key: {e}"),
            Dropped::JoinNotSelfSigned => {
                f.write_str("join request not signed by the key it carries: dropped")
            }
            Dropped::JoinWithAdminKey => {
                f.write_str("join request carrying the admin's own key dropped")
            }
            Dropped::JoinReplayed => f.write_str("a replayed join request was dropped"),
            Dropped::TooManyPending => f.write_str("too many pending join requests: one dropped"),
            Dropped::TooManyJoins => f.write_str("too many join requests: one dropped"),
            Dropped::AdminOnly { conn } => write!(
                f,
                "connection {conn} sent a frame only the admin may send: ignored (forgery attempt?)"
            ),
            Dropped::ForAnotherRoom(kind) => write!(f, "{kind} for another room dropped"),
            Dropped::OwnEcho => f.write_str("our own message came back from the relay: dropped"),
            Dropped::ClaimsToBeUs => f.write_str("a private message claiming to be from us dropped"),
            Dropped::NoKey(kind) => write!(
                f,
                "{kind} dropped: we hold no key for this room (not approved, or removed)"
            ),
            Dropped::OldEpoch {
                kind,
                epoch,
                current,
            } => write!(f, "{kind} from an old epoch {epoch} dropped (current {current})"),
            Dropped::UnknownEpoch { kind, epoch } => {
                write!(f, "{kind} for unknown epoch {epoch} dropped")
            }
            Dropped::NotInRoster { kind, sender } => write!(
                f,
                "{kind} from {sender} who is not in this epoch's roster dropped"
            ),
            Dropped::Replayed {
                kind,
                name,
                seq,
                last,
            } => write!(
                f,
                "replayed or duplicated {kind} claiming to be from {name} (seq {seq} after {last}) dropped"
            ),
            Dropped::BadSignature { kind, name } => write!(
                f,
                "{kind} claiming to be from {name} has a bad signature: dropped"
            ),
            Dropped::Unauthentic { kind, name } => {
                write!(f, "{kind} from {name} failed authentication: dropped")
            }
            Dropped::Malformed { kind, name } => write!(f, "malformed {kind} from {name} dropped"),
            Dropped::TooLong { kind, name } => write!(f, "over-long {kind} from {name} dropped"),
            Dropped::NotText { name } => write!(
                f,
                "private message from {name} with content other than text dropped"
            ),
            Dropped::PrivateOfferToRoom { name } => write!(
                f,
                "a private file offer from {name} sent to the whole room dropped"
            ),
            Dropped::ChunkForAnotherRoom => f.write_str("file chunk for another room dropped"),
        }
    }
}

impl fmt::Display for RosterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RosterError::DuplicateKey => f.write_str("roster lists a key twice"),
            RosterError::BadKey(e) => write!(f, "roster entry: {e}"),
        }
    }
}

impl fmt::Display for ChunkFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkFault::NotFromItsSender => f.write_str("from someone other than its sender"),
            ChunkFault::WrongWay { file } => write!(f, "for {file} sent the wrong way"),
            ChunkFault::ImpossibleSize => f.write_str("of an impossible size"),
            ChunkFault::LeftEpoch { file } => {
                write!(f, "of {file} from an epoch its transfer has left")
            }
            ChunkFault::NoKey => f.write_str("for an epoch we hold no key for"),
            ChunkFault::Unauthentic => {
                f.write_str("that failed authentication (forged or damaged)")
            }
            ChunkFault::NotItsTransfer => f.write_str("that cannot belong to its transfer"),
            ChunkFault::Duplicate { index, file } => {
                write!(f, "duplicated (chunk {index} of {file})")
            }
            ChunkFault::PastEnd {
                index,
                file,
                chunks,
            } => write!(
                f,
                "numbered {index}, past the end of {file} ({chunks} chunks)"
            ),
            ChunkFault::WrongSize { index, file } => {
                write!(f, "of the wrong size (chunk {index} of {file})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts people read did not change when warnings became typed.
    #[test]
    fn display_gives_the_text_shown_before() {
        let cases: [(Warning, &str); 6] = [
            (
                Dropped::Replayed {
                    kind: Kind::Private,
                    name: "bob".into(),
                    seq: 3,
                    last: 5,
                }
                .into(),
                "replayed or duplicated private message claiming to be from bob (seq 3 after 5) dropped",
            ),
            (
                Dropped::NoKey(Kind::Message).into(),
                "message dropped: we hold no key for this room (not approved, or removed)",
            ),
            (
                Warning::ChunksDropped {
                    count: 1,
                    last: ChunkFault::Unauthentic,
                },
                "a file chunk that failed authentication (forged or damaged) was dropped",
            ),
            (
                Warning::ChunksDropped {
                    count: 7,
                    last: ChunkFault::Duplicate {
                        index: 2,
                        file: "a.txt".into(),
                    },
                },
                "7 file chunks dropped, the last one duplicated (chunk 2 of a.txt)",
            ),
            (
                Dropped::UnusableRoster(RosterError::DuplicateKey).into(),
                "unusable roster: roster lists a key twice",
            ),
            (
                Warning::EpochsMissed { from: 4, to: 6 },
                "epochs 4 to 6 never reached us: anything said in them is missing",
            ),
        ];
        for (w, text) in cases {
            assert_eq!(w.to_string(), text);
        }
    }
}
