//! Frames between a client and the relay.
//!
//! The relay reads only these outer frames. A [`ClientFrame::Publish`]
//! payload is an opaque byte string to it (an encoded
//! [`Envelope`](super::Envelope), sealed where it matters); the relay copies
//! it into a [`RelayFrame::Deliver`] for the other connections of the room.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::RoomId;

/// A connection's id, assigned by the relay, unique per relay process.
/// Several relays sharing a room (a backplane) give each connection an id
/// unique across them.
pub type ConnId = u64;

/// Encoded bytes a `Publish` adds around its payload at most (prefix
/// excluded): variant 4, `Some(to)` 9, length 8. A `Deliver` adds 20, less.
pub const PUBLISH_OVERHEAD: usize = 21;

/// Largest hello body a relay accepts (a version-1 hello is 22 bytes).
pub const MAX_HELLO: usize = 1024;

/// The largest payload a client may publish under a frame limit of
/// `max_frame`: its `Publish` and the relay's `Deliver` both fit the limit.
pub fn max_payload(max_frame: usize) -> usize {
    max_frame.saturating_sub(PUBLISH_OVERHEAD)
}

/// Sent by a client. Variant order is part of the protocol: `Hello` stays
/// variant 0 and `version` stays its first field in every version.
/// `Debug` shows payload sizes, never payload bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// First frame on a connection: join `room` speaking `version`.
    Hello(Hello),
    /// Deliver `payload` to every other connection of the room, or to
    /// the one named by `to`.
    Publish {
        /// One recipient, or `None` for the whole room.
        to: Option<ConnId>,
        /// Opaque to the relay.
        payload: Bytes,
    },
    /// Keepalive; the relay answers `Pong` with the same value.
    Ping(u64),
    /// Answer to a relay `Ping`.
    Pong(u64),
    /// [`ClientFrame::Publish`] for bulk data (file chunks): delivered the
    /// same way, in order with this connection's other `PublishBulk`
    /// frames, but a `Publish` sent later may overtake it in the relay's
    /// queues, so a line typed during a transfer is not stuck behind the
    /// file.
    PublishBulk {
        /// One recipient, or `None` for the whole room.
        to: Option<ConnId>,
        /// Opaque to the relay.
        payload: Bytes,
    },
}

impl ClientFrame {
    /// The recipient and payload of a `Publish` or `PublishBulk`.
    pub fn published(&self) -> Option<(Option<ConnId>, &Bytes)> {
        match self {
            ClientFrame::Publish { to, payload } | ClientFrame::PublishBulk { to, payload } => {
                Some((*to, payload))
            }
            _ => None,
        }
    }
}

impl std::fmt::Debug for ClientFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientFrame::Hello(h) => write!(f, "Hello({h:?})"),
            ClientFrame::Publish { to, payload } => write!(
                f,
                "Publish {{ to: {to:?}, payload: {} bytes }}",
                payload.len()
            ),
            ClientFrame::Ping(n) => write!(f, "Ping({n})"),
            ClientFrame::Pong(n) => write!(f, "Pong({n})"),
            ClientFrame::PublishBulk { to, payload } => write!(
                f,
                "PublishBulk {{ to: {to:?}, payload: {} bytes }}",
                payload.len()
            ),
        }
    }
}

/// The hello: version first, then the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION) of the client.
    pub version: u16,
    /// The room to join.
    pub room: RoomId,
}

/// Sent by the relay. `Debug` shows payload sizes, never payload bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayFrame {
    /// Answer to a valid hello.
    Welcome(Welcome),
    /// A payload published by connection `from`.
    Deliver {
        /// The publishing connection.
        from: ConnId,
        /// Exactly the bytes it published.
        payload: Bytes,
    },
    /// A connection entered the room.
    PeerJoined(ConnId),
    /// A connection left the room (closed, timed out, or was dropped).
    PeerLeft(ConnId),
    /// Keepalive; the client answers `Pong` with the same value.
    Ping(u64),
    /// Answer to a client `Ping`.
    Pong(u64),
    /// The relay refuses or ends something; fatal codes close the connection.
    Error(RelayError),
    /// (Version 2) How many of this connection's `Publish` and
    /// `PublishBulk` frames the relay has taken so far (delivered to the
    /// room's queues and, with several relays, handed to the broker),
    /// counted from the welcome, each lane on its own: a client keeps what
    /// it sent until a count covers it.
    Ack(Ack),
}

/// The relay's cumulative count of what it took from a connection: sent
/// in batches (after a pause in the connection's frames, or every
/// [`ACK_EVERY`] publishes), never to a version-1 client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ack {
    /// `Publish` frames taken since the welcome.
    pub publish: u64,
    /// `PublishBulk` frames taken since the welcome.
    pub bulk: u64,
}

/// Publishes a relay takes at most before it sends an [`Ack`], however
/// fast they come.
pub const ACK_EVERY: u64 = 256;

/// (Version 2) A client sends something (at least a `Ping`) at least this
/// often, seconds; a relay may take a version-2 client silent for three
/// times as long for a dead or half-open link.
pub const KEEPALIVE_SECS: u64 = 5;

impl std::fmt::Debug for RelayFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayFrame::Welcome(w) => write!(f, "Welcome({w:?})"),
            RelayFrame::Deliver { from, payload } => write!(
                f,
                "Deliver {{ from: {from}, payload: {} bytes }}",
                payload.len()
            ),
            RelayFrame::PeerJoined(id) => write!(f, "PeerJoined({id})"),
            RelayFrame::PeerLeft(id) => write!(f, "PeerLeft({id})"),
            RelayFrame::Ping(n) => write!(f, "Ping({n})"),
            RelayFrame::Pong(n) => write!(f, "Pong({n})"),
            RelayFrame::Error(e) => write!(f, "Error({e:?})"),
            RelayFrame::Ack(a) => write!(f, "Ack({}, {})", a.publish, a.bulk),
        }
    }
}

/// The relay's answer to a valid hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version the relay speaks.
    pub version: u16,
    /// This connection's id.
    pub conn_id: ConnId,
    /// Connections already in the room.
    #[serde(deserialize_with = "crate::bounded::vec")]
    pub peers: Vec<ConnId>,
    /// The relay's maximum frame body, in bytes.
    pub max_frame: u32,
}

/// An error frame: a code for programs and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayError {
    /// What went wrong.
    pub code: ErrorCode,
    /// Human-readable detail (never payload bytes).
    pub message: String,
}

/// Reasons the relay refuses a request or closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The hello's version is not spoken by this relay (fatal).
    UnsupportedVersion,
    /// The room has reached its connection limit (fatal).
    RoomFull,
    /// The relay has reached its connection or room limit (fatal).
    ServerFull,
    /// Too many connections from this source address (fatal).
    TooManyFromAddress,
    /// A frame exceeded the size limit (fatal).
    FrameTooLarge,
    /// A frame could not be decoded, or came out of order (fatal).
    BadFrame,
    /// The connection exceeded its frame or byte rate (fatal).
    RateLimited,
    /// No hello, or no traffic, within the allowed time (fatal).
    Timeout,
    /// The connection could not keep up with the room (fatal).
    SlowReader,
    /// `Publish.to` named a connection not in the room (not fatal).
    NoSuchPeer,
    /// The relay is shutting down (fatal).
    GoingAway,
}

impl ErrorCode {
    /// True if the relay closes the connection after sending this code.
    pub fn is_fatal(self) -> bool {
        !matches!(self, ErrorCode::NoSuchPeer)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::RoomFull => "room is full",
            ErrorCode::ServerFull => "relay is full",
            ErrorCode::TooManyFromAddress => "too many connections from this address",
            ErrorCode::FrameTooLarge => "frame too large",
            ErrorCode::BadFrame => "malformed or unexpected frame",
            ErrorCode::RateLimited => "rate limit exceeded",
            ErrorCode::Timeout => "timed out",
            ErrorCode::SlowReader => "connection too slow to keep up",
            ErrorCode::NoSuchPeer => "no such connection in the room",
            ErrorCode::GoingAway => "relay is shutting down",
        };
        f.write_str(s)
    }
}
