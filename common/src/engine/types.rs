//! The engine's interface: what a front end asks for ([`Command`]), what it
//! is shown ([`Event`], [`MemberInfo`]), and what the runtime must do
//! ([`Action`]).

use std::fmt;

use bytes::Bytes;

use super::{admin, Delivery, FileEvent, FileSpec, TransferId, Warning};
use crate::ids::Fingerprint;
use crate::wire::{ClientFrame, ConnId};

/// What the user (or a script) asks for.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// Send a line of text to the room.
    Send(String),
    /// Send a private line to the member with this fingerprint: only that
    /// member can read it.
    Private(Fingerprint, String),
    /// Tell the room we started or stopped typing.
    Typing(bool),
    /// Leave the room (tells the others, then the driver closes).
    Leave,
    /// Admin: list the removed members who may not come back on their own.
    ListBans,
    /// Admin: let this removed member come back (by the usual approval).
    Unban(Fingerprint),
    /// Admin: set a new room password (or none): approval by password
    /// resumes after a removal only with a password the removed member
    /// did not know.
    SetPassword(Option<zeroize::Zeroizing<String>>),
    /// Admin: approve pending request `id`.
    Approve(u32),
    /// Admin: deny pending request `id` with a reason.
    Deny(u32, String),
    /// Admin: remove the member with this fingerprint.
    Kick(Fingerprint, String),
    /// Admin: start a new epoch now.
    Rekey,
    /// Offer a file the client runtime has read and hashed (to the room,
    /// or, with [`FileSpec::to`], sealed for one member alone).
    OfferFile(FileSpec),
    /// Seal and send one chunk of an offered file (in order).
    FileChunk {
        /// The transfer.
        transfer: TransferId,
        /// 0-based index.
        index: u32,
        /// Exactly the chunk size, or the rest for the last chunk.
        data: Bytes,
    },
    /// Stop a transfer, sent or received.
    CancelFile(TransferId),
}

impl fmt::Debug for Command {
    /// Shows kinds and ids, never message text, a reason or a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Send(text) => write!(f, "Send({} bytes)", text.len()),
            Command::Private(to, text) => {
                write!(f, "Private({}, {} bytes)", to.short(), text.len())
            }
            Command::Typing(on) => write!(f, "Typing({on})"),
            Command::Leave => f.write_str("Leave"),
            Command::ListBans => f.write_str("ListBans"),
            Command::Unban(fp) => write!(f, "Unban({})", fp.short()),
            Command::SetPassword(None) => f.write_str("SetPassword(None)"),
            Command::SetPassword(Some(_)) => f.write_str("SetPassword(..)"),
            Command::Approve(id) => write!(f, "Approve({id})"),
            Command::Deny(id, _) => write!(f, "Deny({id})"),
            Command::Kick(fp, _) => write!(f, "Kick({})", fp.short()),
            Command::Rekey => f.write_str("Rekey"),
            Command::OfferFile(spec) => write!(
                f,
                "OfferFile({}, {} bytes)",
                super::files::short_id(&spec.transfer),
                spec.size
            ),
            Command::FileChunk {
                transfer,
                index,
                data,
            } => write!(
                f,
                "FileChunk({}, {index}, {} bytes)",
                super::files::short_id(transfer),
                data.len()
            ),
            Command::CancelFile(t) => write!(f, "CancelFile({})", super::files::short_id(t)),
        }
    }
}

/// Someone in the room, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Display name (chosen by the member, shown as is).
    pub name: String,
    /// SHA-256 of the member's public key.
    pub fingerprint: Fingerprint,
    /// Safety code of that key, for comparison aloud.
    pub safety_code: String,
    /// Whether this is the admin.
    pub admin: bool,
}

/// Something to show.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// The relay welcomed us.
    Connected {
        /// Our connection id.
        conn_id: ConnId,
    },
    /// (Member) the admin's announcement verified against the invite pin.
    AdminVerified {
        /// The admin's fingerprint.
        fingerprint: Fingerprint,
        /// Its safety code.
        safety_code: String,
    },
    /// (Member) a join request went to the admin.
    JoinRequested,
    /// (Admin) someone asks to join and waits for a decision.
    PendingApproval {
        /// Id for `/approve` and `/deny`.
        id: u32,
        /// Requested display name.
        name: String,
        /// Key fingerprint.
        fingerprint: Fingerprint,
        /// Safety code to compare with the requester.
        safety_code: String,
        /// The admin removed this key before (approving lifts the ban).
        banned: bool,
    },
    /// A new epoch is installed: these are the members.
    Epoch {
        /// Epoch number.
        epoch: u64,
        /// The room's name, as the admin set it (cleaned like a name).
        room_name: String,
        /// Members, admin first.
        members: Vec<MemberInfo>,
    },
    /// Someone joined (seen in a new epoch).
    MemberJoined(MemberInfo),
    /// Someone left (seen in a new epoch).
    MemberLeft(MemberInfo),
    /// Someone the admin removed (seen in a new epoch whose signed roster
    /// says so).
    MemberRemoved(MemberInfo),
    /// A message from a member, verified and decrypted.
    Message {
        /// Sender.
        from: MemberInfo,
        /// The text.
        text: String,
        /// Sender's clock.
        sent_at_ms: u64,
        /// Epoch it was sealed in.
        epoch: u64,
        /// Sender's sequence number.
        seq: u64,
        /// It mentions us (by our key: [`crate::engine::mentions`]).
        mentions_me: bool,
    },
    /// A line we wrote to the room: in the outbox, sent as soon as
    /// sending is allowed and kept until the relay takes it (then a
    /// [`Event::Delivery`] with the same `id` says so, or why it failed).
    Sent {
        /// Its handle in this engine (for [`Event::Delivery`]).
        id: u64,
        /// The text.
        text: String,
        /// Our clock when it was typed (what the readers are told).
        sent_at_ms: u64,
    },
    /// A private message to us, verified and decrypted.
    Private {
        /// Sender.
        from: MemberInfo,
        /// The text.
        text: String,
        /// Sender's clock.
        sent_at_ms: u64,
        /// Epoch it was sent in.
        epoch: u64,
        /// Sender's sequence number (per recipient).
        seq: u64,
    },
    /// A private message we wrote: in the outbox as a room line
    /// ([`Event::Sent`]), sealed to the recipient alone.
    PrivateSent {
        /// Its handle in this engine (for [`Event::Delivery`]).
        id: u64,
        /// Recipient.
        to: MemberInfo,
        /// The text.
        text: String,
        /// Our clock when it was typed (what the recipient is told).
        sent_at_ms: u64,
    },
    /// One of our lines ([`Event::Sent`], [`Event::PrivateSent`]) moved on:
    /// it waits (and why), the relay took it, or it will not be sent.
    Delivery {
        /// The line.
        id: u64,
        /// Where it stands.
        state: Delivery,
    },
    /// Messages from a member that never reached us: the relay dropped
    /// them (or we could not read them at the time). The conversation we
    /// show is missing `count` of that sender's messages in `epoch`.
    Missed {
        /// Whose messages.
        from: MemberInfo,
        /// The epoch they were sent in.
        epoch: u64,
        /// How many (lines, files or typing notices: the relay cannot tell
        /// which, and neither can we).
        count: u64,
        /// Private messages to us, rather than messages to the room.
        private: bool,
    },
    /// (Admin) the removed members who may come back only by hand.
    Bans(Vec<admin::Ban>),
    /// Typing state of a member.
    Typing {
        /// Who.
        from: MemberInfo,
        /// Started (`true`) or stopped.
        on: bool,
    },
    /// Our join request was denied.
    Denied {
        /// The admin's reason.
        reason: String,
    },
    /// We were removed from the room.
    Kicked {
        /// The admin's reason.
        reason: String,
    },
    /// The admin closed the room.
    Closed {
        /// The admin's reason.
        reason: String,
    },
    /// A frame failed a check and was dropped, or the room's state needs
    /// saying (sending paused, lines missed): see [`Warning`].
    Warning(Warning),
    /// A command could not be carried out.
    Error {
        /// Why.
        reason: String,
    },
}

impl fmt::Debug for Event {
    /// Shows kinds and ids, never message text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Message {
                from,
                epoch,
                seq,
                text,
                ..
            } => write!(
                f,
                "Message {{ from: {}, epoch: {epoch}, seq: {seq}, text: {} bytes }}",
                from.fingerprint.short(),
                text.len()
            ),
            Event::Connected { conn_id } => write!(f, "Connected({conn_id})"),
            Event::AdminVerified { fingerprint, .. } => {
                write!(f, "AdminVerified({})", fingerprint.short())
            }
            Event::JoinRequested => f.write_str("JoinRequested"),
            Event::PendingApproval {
                id, fingerprint, ..
            } => {
                write!(f, "PendingApproval({id}, {})", fingerprint.short())
            }
            Event::Epoch { epoch, members, .. } => {
                write!(f, "Epoch({epoch}, {} members)", members.len())
            }
            Event::MemberJoined(m) => write!(f, "MemberJoined({})", m.fingerprint.short()),
            Event::MemberLeft(m) => write!(f, "MemberLeft({})", m.fingerprint.short()),
            Event::MemberRemoved(m) => write!(f, "MemberRemoved({})", m.fingerprint.short()),
            Event::Sent { id, text, .. } => {
                write!(f, "Sent {{ id: {id}, text: {} bytes }}", text.len())
            }
            Event::Delivery { id, state } => write!(f, "Delivery({id}, {state:?})"),
            Event::Private {
                from,
                epoch,
                seq,
                text,
                ..
            } => write!(
                f,
                "Private {{ from: {}, epoch: {epoch}, seq: {seq}, text: {} bytes }}",
                from.fingerprint.short(),
                text.len()
            ),
            Event::PrivateSent { id, to, text, .. } => write!(
                f,
                "PrivateSent {{ id: {id}, to: {}, text: {} bytes }}",
                to.fingerprint.short(),
                text.len()
            ),
            Event::Typing { from, on } => write!(f, "Typing({}, {on})", from.fingerprint.short()),
            Event::Missed {
                from,
                epoch,
                count,
                private,
            } => write!(
                f,
                "Missed({} x{count} in epoch {epoch}{})",
                from.fingerprint.short(),
                if *private { ", private" } else { "" }
            ),
            Event::Bans(b) => write!(f, "Bans({})", b.len()),
            Event::Denied { .. } => f.write_str("Denied"),
            Event::Kicked { .. } => f.write_str("Kicked"),
            Event::Closed { .. } => f.write_str("Closed"),
            Event::Warning(w) => write!(f, "Warning({w})"),
            Event::Error { reason } => write!(f, "Error({reason})"),
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this frame to the relay.
    Send(ClientFrame),
    /// Show this event.
    Event(Event),
    /// Do this file work (the disk is the client runtime's): chunks to
    /// write, a file to keep or drop, ours to send.
    File(FileEvent),
}
