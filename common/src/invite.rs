//! How a member finds a room and whom it trusts: the invite string.
//!
//! ```text
//! teamchat://HOST:PORT/ROOM?admin=FPR&cert=FPR[&relay=HOST:PORT@FPR]...
//! ```
//!
//! - `HOST`: a DNS name, a dotted IPv4 address, or an IPv6 address in
//!   brackets; `PORT`: 1–65535.
//! - `ROOM`: 32 hex characters (the 16-byte room id).
//! - `admin`: SHA-256 of the admin's public key (64 hex characters); the
//!   member refuses any announcement signed by another key.
//! - `cert`: SHA-256 of the relay's certificate (64 hex); the member closes
//!   the connection on any other certificate.
//! - `relay` (repeatable): further relays serving the room, each with its
//!   own certificate pin, tried in order when the first is unreachable.
//!
//! Parsing is strict: unknown or repeated keys, stray characters and
//! anything out of range are errors that say what is wrong. Surrounding
//! whitespace (from pasting) is ignored.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::ids::{Fingerprint, IdParseError, RoomId};

/// The URI scheme.
pub const SCHEME: &str = "teamchat://";
/// Longest invite accepted, in bytes.
pub const MAX_INVITE_LEN: usize = 4096;
/// Most relays one invite may name.
pub const MAX_RELAYS: usize = 8;
/// The relay's default port.
pub const DEFAULT_PORT: u16 = 7443;

/// A relay's host: a DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lowercased.
    Name(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets in an invite).
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

impl Host {
    /// The name to give TLS for hostname checks and to resolve (no brackets).
    pub fn to_dns_or_ip(&self) -> String {
        match self {
            Host::Name(n) => n.clone(),
            Host::V4(a) => a.to_string(),
            Host::V6(a) => a.to_string(),
        }
    }
}

/// One relay: where it is and which certificate it must present.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayEndpoint {
    /// Host.
    pub host: Host,
    /// TCP port.
    pub port: u16,
    /// SHA-256 of the relay certificate (DER).
    pub cert: Fingerprint,
}

impl RelayEndpoint {
    /// `host:port`, suitable for connecting.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A parsed invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The relays serving the room, in order of preference (1 to
    /// [`MAX_RELAYS`]; private so the invariant holds).
    relays: Vec<RelayEndpoint>,
    /// The room.
    pub room: RoomId,
    /// Fingerprint of the admin's RSA key.
    pub admin: Fingerprint,
}

/// Why an invite was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// Empty after trimming.
    #[error("the invite is empty")]
    Empty,
    /// Longer than [`MAX_INVITE_LEN`].
    #[error("the invite is too long ({0} bytes, at most {MAX_INVITE_LEN})")]
    TooLong(usize),
    /// Does not start with `teamchat://`.
    #[error("an invite starts with \"teamchat://\"")]
    BadScheme,
    /// The host is missing or malformed.
    #[error("bad relay host {host:?}: {why}")]
    BadHost {
        /// The text found.
        host: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The port is missing, not a number, or out of range.
    #[error("bad relay port {0:?}: expected a number from 1 to 65535")]
    BadPort(String),
    /// The room id is missing or malformed.
    #[error("bad room id: {0}")]
    BadRoom(IdParseError),
    /// A fingerprint is malformed.
    #[error("bad {field} fingerprint: {error}")]
    BadFingerprint {
        /// `admin`, `cert` or `relay`.
        field: &'static str,
        /// What is wrong.
        error: IdParseError,
    },
    /// A required key is absent.
    #[error("the invite has no {0}= parameter")]
    Missing(&'static str),
    /// A key appears twice.
    #[error("the {0}= parameter appears twice")]
    Duplicate(&'static str),
    /// A key is not known.
    #[error("unknown parameter {0:?}")]
    UnknownParameter(String),
    /// A `relay=` value is not `HOST:PORT@FPR`.
    #[error("bad relay= value {0:?}: expected HOST:PORT@CERT-FINGERPRINT")]
    BadRelay(String),
    /// More than [`MAX_RELAYS`] relays.
    #[error("too many relays (at most {MAX_RELAYS})")]
    TooManyRelays,
    /// Something else is malformed.
    #[error("malformed invite: {0}")]
    Malformed(&'static str),
    /// Relay addresses and certificates do not pair up.
    #[error("{relays} relay addresses but {certs} certificates: give one certificate for all, or one per address in the same order")]
    CertCount {
        /// Addresses given.
        relays: usize,
        /// Certificates given.
        certs: usize,
    },
}

impl Invite {
    /// An invite for `room`, run by the admin with key fingerprint `admin`,
    /// served by `relays` in order of preference.
    pub fn new(
        relays: Vec<RelayEndpoint>,
        room: RoomId,
        admin: Fingerprint,
    ) -> Result<Self, InviteError> {
        if relays.is_empty() {
            return Err(InviteError::Missing("relay address"));
        }
        if relays.len() > MAX_RELAYS {
            return Err(InviteError::TooManyRelays);
        }
        Ok(Invite {
            relays,
            room,
            admin,
        })
    }

    /// The relays, in order of preference (never empty).
    pub fn relays(&self) -> &[RelayEndpoint] {
        &self.relays
    }

    /// The first relay.
    pub fn primary(&self) -> &RelayEndpoint {
        &self.relays[0]
    }
}

impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.primary();
        write!(
            f,
            "{SCHEME}{}/{}?admin={}&cert={}",
            first.address(),
            self.room,
            self.admin,
            first.cert
        )?;
        for r in &self.relays[1..] {
            write!(f, "&relay={}@{}", r.address(), r.cert)?;
        }
        Ok(())
    }
}

impl FromStr for Invite {
    type Err = InviteError;

    fn from_str(s: &str) -> Result<Self, InviteError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(InviteError::Empty);
        }
        if s.len() > MAX_INVITE_LEN {
            return Err(InviteError::TooLong(s.len()));
        }
        let rest = match s.get(..SCHEME.len()) {
            Some(p) if p.eq_ignore_ascii_case(SCHEME) => &s[SCHEME.len()..],
            _ => return Err(InviteError::BadScheme),
        };
        let (authority, rest) = rest
            .split_once('/')
            .ok_or(InviteError::Malformed("no room id after the relay address"))?;
        let (host, port) = parse_host_port(authority)?;
        let (room, query) = rest.split_once('?').ok_or(InviteError::Missing("admin"))?;
        let room = room.parse::<RoomId>().map_err(InviteError::BadRoom)?;

        let mut admin = None;
        let mut cert = None;
        let mut extra = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| InviteError::UnknownParameter(pair.to_string()))?;
            match key {
                "admin" => set_once(&mut admin, "admin", fingerprint("admin", value)?)?,
                "cert" => set_once(&mut cert, "cert", fingerprint("cert", value)?)?,
                "relay" => {
                    if extra.len() + 1 >= MAX_RELAYS {
                        return Err(InviteError::TooManyRelays);
                    }
                    extra.push(parse_relay(value)?);
                }
                other => return Err(InviteError::UnknownParameter(other.to_string())),
            }
        }
        let admin = admin.ok_or(InviteError::Missing("admin"))?;
        let cert = cert.ok_or(InviteError::Missing("cert"))?;
        let mut relays = vec![RelayEndpoint { host, port, cert }];
        relays.extend(extra);
        Invite::new(relays, room, admin)
    }
}

fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), InviteError> {
    if slot.is_some() {
        return Err(InviteError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

fn fingerprint(field: &'static str, value: &str) -> Result<Fingerprint, InviteError> {
    value
        .parse()
        .map_err(|error| InviteError::BadFingerprint { field, error })
}

fn parse_relay(value: &str) -> Result<RelayEndpoint, InviteError> {
    let (addr, fpr) = value
        .rsplit_once('@')
        .ok_or_else(|| InviteError::BadRelay(value.to_string()))?;
    let (host, port) = parse_host_port(addr)?;
    Ok(RelayEndpoint {
        host,
        port,
        cert: fingerprint("relay", fpr)?,
    })
}

/// The relays of an invite as a person gives them: `addresses` is
/// `HOST:PORT[,HOST:PORT…]` in order of preference (the apps try them in
/// turn), and `certs` holds one certificate pin for all of them (relays
/// sharing a certificate) or one per address, in the same order.
pub fn relays_from(
    addresses: &str,
    certs: &[Fingerprint],
) -> Result<Vec<RelayEndpoint>, InviteError> {
    let addresses: Vec<&str> = addresses
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if addresses.is_empty() {
        return Err(InviteError::Missing("relay address"));
    }
    if addresses.len() > MAX_RELAYS {
        return Err(InviteError::TooManyRelays);
    }
    if certs.len() != 1 && certs.len() != addresses.len() {
        return Err(InviteError::CertCount {
            relays: addresses.len(),
            certs: certs.len(),
        });
    }
    addresses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (host, port) = parse_host_port(a)?;
            Ok(RelayEndpoint {
                host,
                port,
                cert: certs[if certs.len() == 1 { 0 } else { i }],
            })
        })
        .collect()
}

/// Parses `HOST:PORT` where HOST is a name, IPv4, or `[IPv6]`.
pub fn parse_host_port(s: &str) -> Result<(Host, u16), InviteError> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (v6, after) = inner.split_once(']').ok_or(InviteError::BadHost {
            host: s.to_string(),
            why: "unclosed '['",
        })?;
        let port = after
            .strip_prefix(':')
            .ok_or(InviteError::BadPort(after.to_string()))?;
        let addr = v6.parse::<Ipv6Addr>().map_err(|_| InviteError::BadHost {
            host: v6.to_string(),
            why: "not an IPv6 address",
        })?;
        (Host::V6(addr), port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| InviteError::BadPort(String::new()))?;
        (parse_host(host)?, port)
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) && !port.starts_with('0') => p,
        _ => return Err(InviteError::BadPort(port.to_string())),
    };
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<Host, InviteError> {
    let bad = |why| InviteError::BadHost {
        host: host.to_string(),
        why,
    };
    if host.is_empty() {
        return Err(bad("empty"));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<Ipv4Addr>()
            .map(Host::V4)
            .map_err(|_| bad("not an IPv4 address"));
    }
    if host.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("each dot-separated label must have 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad("only letters, digits, '-' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label cannot start or end with '-'"));
        }
    }
    // A name whose last label is numeric ("0x7f.1", "1.2.3") is not a DNS
    // name, and some resolvers would read it as an address.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad(
            "not an IPv4 address, and a DNS name cannot end in a numeric label",
        ));
    }
    Ok(Host::Name(name.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_relays_pair_with_one_certificate_or_one_each() {
        let (a, b) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let one = relays_from("relay1.example:7443, [::1]:7444", &[a]).unwrap();
        assert_eq!(one.len(), 2);
        assert!(one.iter().all(|r| r.cert == a));
        assert_eq!(one[1].port, 7444);
        let each = relays_from("h1:1,h2:2", &[a, b]).unwrap();
        assert_eq!((each[0].cert, each[1].cert), (a, b));
        let invite = Invite::new(each, RoomId([3; 16]), a).unwrap();
        let back: Invite = invite.to_string().parse().unwrap();
        assert_eq!(back.relays().len(), 2, "both relays travel in the invite");
        assert!(matches!(
            relays_from("h1:1,h2:2,h3:3", &[a, b]),
            Err(InviteError::CertCount {
                relays: 3,
                certs: 2
            })
        ));
        assert!(matches!(
            relays_from("h1:1", &[]),
            Err(InviteError::CertCount { .. })
        ));
        assert!(matches!(
            relays_from(" , ", &[a]),
            Err(InviteError::Missing(_))
        ));
        assert!(relays_from("h1:1,nope", &[a]).is_err());
        let many = ["h:1"; MAX_RELAYS + 1].join(",");
        assert!(matches!(
            relays_from(&many, &[a]),
            Err(InviteError::TooManyRelays)
        ));
    }

    fn sample() -> Invite {
        let relay = RelayEndpoint {
            host: Host::Name("chat.example.org".into()),
            port: 7443,
            cert: Fingerprint([0x11; 32]),
        };
        Invite::new(vec![relay], RoomId([0x22; 16]), Fingerprint([0x33; 32])).unwrap()
    }

    #[test]
    fn formats_and_parses_back() {
        let inv = sample();
        let text = inv.to_string();
        assert!(text.starts_with("teamchat://chat.example.org:7443/2222"));
        assert_eq!(text.parse::<Invite>(), Ok(inv));
    }

    #[test]
    fn several_relays_and_ip_hosts_round_trip() {
        let mut inv = sample();
        inv.relays.push(RelayEndpoint {
            host: Host::V4(Ipv4Addr::new(127, 0, 0, 1)),
            port: 1,
            cert: Fingerprint([0x44; 32]),
        });
        inv.relays.push(RelayEndpoint {
            host: Host::V6(Ipv6Addr::LOCALHOST),
            port: 65535,
            cert: Fingerprint([0x55; 32]),
        });
        let text = inv.to_string();
        assert!(text.contains("&relay=[::1]:65535@5555"), "{text}");
        assert_eq!(text.parse::<Invite>(), Ok(inv));
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let text = format!("  {}\n", sample());
        assert_eq!(text.parse::<Invite>(), Ok(sample()));
    }

    fn err(s: &str) -> InviteError {
        match s.parse::<Invite>() {
            Err(e) => e,
            Ok(i) => panic!("{s} parsed as {i:?}"),
        }
    }

    #[test]
    fn each_defect_gets_its_own_error() {
        let good = sample().to_string();
        let room = "22".repeat(16);
        let f = "33".repeat(32);
        assert_eq!(err(""), InviteError::Empty);
        assert_eq!(
            err(&good.replace("teamchat://", "https://")),
            InviteError::BadScheme
        );
        assert!(matches!(
            err(&good.replace(":7443", ":0")),
            InviteError::BadPort(_)
        ));
        assert!(matches!(
            err(&good.replace(":7443", ":70000")),
            InviteError::BadPort(_)
        ));
        assert!(matches!(
            err(&good.replace(":7443", ":+80")),
            InviteError::BadPort(_)
        ));
        assert!(matches!(
            err(&good.replace(":7443", "")),
            InviteError::BadPort(_)
        ));
        assert!(matches!(
            err(&good.replace("chat.example.org", "bad_host")),
            InviteError::BadHost { .. }
        ));
        assert!(matches!(
            err(&good.replace("chat.example.org", "-a.org")),
            InviteError::BadHost { .. }
        ));
        assert!(matches!(
            err(&good.replace("chat.example.org", "300.1.1.1")),
            InviteError::BadHost { .. }
        ));
        assert!(matches!(
            err(&good.replace("chat.example.org", "[::1")),
            InviteError::BadHost { .. }
        ));
        assert!(matches!(
            err(&good.replace(&room, "abc")),
            InviteError::BadRoom(_)
        ));
        let short = good.replace(&format!("admin={f}"), "admin=abcd");
        assert!(matches!(
            err(&short),
            InviteError::BadFingerprint {
                field: "admin",
                error: IdParseError::Length {
                    expected: 64,
                    got: 4
                }
            }
        ));
        let alpha = good.replace(&format!("admin={f}"), &format!("admin={}zz", &f[..62]));
        assert!(matches!(
            err(&alpha),
            InviteError::BadFingerprint {
                field: "admin",
                error: IdParseError::Alphabet { found: 'z', .. }
            }
        ));
        assert_eq!(
            err(&format!("{good}&admin={f}")),
            InviteError::Duplicate("admin")
        );
        assert_eq!(
            err(&format!("{good}&x=1")),
            InviteError::UnknownParameter("x".into())
        );
        assert!(matches!(
            err(&format!("{good}&relay=h:1")),
            InviteError::BadRelay(_)
        ));
        let no_cert = good.split("&cert=").next().unwrap_or_default().to_string();
        assert_eq!(err(&no_cert), InviteError::Missing("cert"));
        assert!(matches!(err(&"a".repeat(5000)), InviteError::TooLong(5000)));
    }

    #[test]
    fn an_invite_without_relays_cannot_be_built() {
        assert_eq!(
            Invite::new(vec![], RoomId([0; 16]), Fingerprint([0; 32])),
            Err(InviteError::Missing("relay address"))
        );
    }

    #[test]
    fn too_many_relays_are_refused() {
        let mut text = sample().to_string();
        for _ in 0..MAX_RELAYS {
            text.push_str(&format!("&relay=h:1@{}", "44".repeat(32)));
        }
        assert_eq!(err(&text), InviteError::TooManyRelays);
    }

    #[test]
    fn multibyte_input_never_panics() {
        for s in [
            "teamchat://é:1/x",
            "teamchat://[é]:1/",
            "téamchat://",
            "teamchat://h:1/é?admin=é",
        ] {
            assert!(s.parse::<Invite>().is_err());
        }
    }
}
