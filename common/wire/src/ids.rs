//! Identifiers shared by every layer: room ids and SHA-256 fingerprints.
//!
//! Both are plain byte arrays with a canonical lowercase-hex text form. This
//! module holds no secrets and does no cryptography: fingerprints are
//! computed, random room ids drawn and pins compared in `common::crypto`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a hex identifier could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// The text has the wrong number of characters.
    #[error("expected {expected} hex characters, got {got}")]
    Length {
        /// Characters expected.
        expected: usize,
        /// Characters found.
        got: usize,
    },
    /// The text contains a character outside `0-9a-fA-F`.
    #[error("invalid character {found:?} at position {position} (expected hex 0-9, a-f)")]
    Alphabet {
        /// Offending character.
        found: char,
        /// Its position (0-based, in characters).
        position: usize,
    },
}

/// Decodes exactly `N` bytes of hex, with errors that name the problem.
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], IdParseError> {
    let got = s.chars().count();
    if let Some((position, found)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(IdParseError::Alphabet { found, position });
    }
    if got != 2 * N {
        return Err(IdParseError::Length {
            expected: 2 * N,
            got,
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| IdParseError::Length {
        expected: 2 * N,
        got,
    })?;
    Ok(out)
}

/// A room's identifier: 16 random bytes chosen by the admin.
///
/// It is not secret (the relay routes by it) and carries no name: room names
/// travel only inside the encrypted roster.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoomId(pub [u8; 16]);

impl RoomId {
    /// Length in bytes.
    pub const LEN: usize = 16;

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The first 8 hex characters, for logs that must not carry the full id.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self)
    }
}

impl FromStr for RoomId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex::<16>(s).map(RoomId)
    }
}

/// SHA-256 of a DER encoding: of a member's SubjectPublicKeyInfo (identity
/// fingerprint) or of the relay's certificate (certificate pin).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 16 hex characters, for logs and compact displays.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.short())
    }
}

impl FromStr for Fingerprint {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex::<32>(s).map(Fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_id_round_trips_through_text() {
        let r = RoomId([0xab; 16]);
        assert_eq!(r.to_string().parse::<RoomId>(), Ok(r));
        assert_eq!(r.to_string().len(), 32);
    }

    #[test]
    fn fingerprint_parse_names_the_problem() {
        assert_eq!(
            "abc".parse::<Fingerprint>(),
            Err(IdParseError::Length {
                expected: 64,
                got: 3
            })
        );
        let bad = format!("{}g", "0".repeat(63));
        assert_eq!(
            bad.parse::<Fingerprint>(),
            Err(IdParseError::Alphabet {
                found: 'g',
                position: 63
            })
        );
        let upper = "AB".repeat(32);
        assert_eq!(upper.parse::<Fingerprint>(), Ok(Fingerprint([0xab; 32])));
    }

    #[test]
    fn multibyte_text_is_refused_not_panicking() {
        assert!("é".repeat(32).parse::<RoomId>().is_err());
    }
}
