//! Relay counters, logged periodically. Counts and sizes only, never content.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a connection ended (for logs and the stats line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum CloseReason {
    /// The client closed the connection.
    ClientClosed = 0,
    /// TLS handshake failed (includes plain TCP garbage, old TLS versions).
    TlsFailed,
    /// TLS handshake took too long.
    HandshakeTimeout,
    /// No hello in time.
    HelloTimeout,
    /// No traffic for the idle timeout.
    IdleTimeout,
    /// A frame was malformed or out of place.
    BadFrame,
    /// A frame exceeded the size limit.
    FrameTooLarge,
    /// The hello's version is not spoken here.
    UnsupportedVersion,
    /// The outbound queue overflowed.
    SlowReader,
    /// The relay or address was at its connection limit.
    Refused,
    /// The room was full, or no room could be created.
    RoomFull,
    /// A read or write failed.
    IoError,
    /// The relay is shutting down.
    Shutdown,
    /// Frames to or from other relays may have been lost (the backplane
    /// link dropped or could not keep up): the client must rejoin.
    Rejoin,
}

impl CloseReason {
    /// All reasons, in index order.
    pub const ALL: [CloseReason; 14] = [
        CloseReason::ClientClosed,
        CloseReason::TlsFailed,
        CloseReason::HandshakeTimeout,
        CloseReason::HelloTimeout,
        CloseReason::IdleTimeout,
        CloseReason::BadFrame,
        CloseReason::FrameTooLarge,
        CloseReason::UnsupportedVersion,
        CloseReason::SlowReader,
        CloseReason::Refused,
        CloseReason::RoomFull,
        CloseReason::IoError,
        CloseReason::Shutdown,
        CloseReason::Rejoin,
    ];

    /// Short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "client_closed",
            CloseReason::TlsFailed => "tls_failed",
            CloseReason::HandshakeTimeout => "handshake_timeout",
            CloseReason::HelloTimeout => "hello_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::BadFrame => "bad_frame",
            CloseReason::FrameTooLarge => "frame_too_large",
            CloseReason::UnsupportedVersion => "unsupported_version",
            CloseReason::SlowReader => "slow_reader",
            CloseReason::Refused => "refused",
            CloseReason::RoomFull => "room_full",
            CloseReason::IoError => "io_error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Rejoin => "rejoin",
        }
    }
}

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted (TCP).
    pub accepted: AtomicU64,
    /// Frames received from clients.
    pub frames_in: AtomicU64,
    /// Bytes of frames received (prefix included).
    pub bytes_in: AtomicU64,
    /// Frames queued to clients (each delivery counts once).
    pub frames_out: AtomicU64,
    /// Bytes queued to clients.
    pub bytes_out: AtomicU64,
    closes: [AtomicU64; 15],
}

impl Stats {
    /// Counts a closed connection.
    pub fn closed(&self, reason: CloseReason) {
        self.closes[reason as usize].fetch_add(1, Relaxed);
    }

    /// Connections closed for `reason` so far.
    pub fn closes(&self, reason: CloseReason) -> u64 {
        self.closes[reason as usize].load(Relaxed)
    }

    /// The non-zero close counts as `name=count` pairs.
    pub fn closes_summary(&self) -> String {
        let parts: Vec<String> = CloseReason::ALL
            .iter()
            .filter_map(|r| {
                let n = self.closes(*r);
                (n > 0).then(|| format!("{}={n}", r.as_str()))
            })
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(",")
        }
    }
}
