//! Why a frame was dropped: every check a frame from the relay or a member
//! can fail, with what the reader needs to know (whose, which epoch, which
//! number), and the line shown for it.

use std::fmt;

use wire::ConnId;

use crate::crypto::KeyError;

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

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Message => "message",
            Kind::Private => "private message",
        })
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
