//! What the engine tells its user when it drops a frame or when the room's
//! state needs saying: typed, so that front ends and tests match on the case
//! (rustls's `PeerMisbehaved` is the model), with a `Display` that gives the
//! text a person reads.
//!
//! [`Dropped`] (`dropped.rs`) is a frame (from the relay or a member) that
//! failed a check: it changed nothing. The other [`Warning`]s (this file)
//! say something about the room (the admin went quiet, sending is paused,
//! lines were missed) or refuse something a member offered (a file).

mod dropped;

use std::fmt;

pub use dropped::{Dropped, Kind, RosterError};

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

impl From<Dropped> for Warning {
    fn from(d: Dropped) -> Self {
        Warning::Dropped(d)
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
