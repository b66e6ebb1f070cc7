//! The TeamChat relay: a stateless TLS server that broadcasts opaque frames
//! between the connections of a room.
//!
//! - [`config`]: flags, environment and TOML file.
//! - [`tls`]: the OpenSSL acceptor (TLS 1.2+, ECDHE + AEAD only).
//! - [`server`]: accept loop, admission, stats, graceful shutdown.
//! - [`conn`]: one connection — handshake, hello, limits, batched writes.
//! - [`hub`]: rooms and broadcast, the one interface a backplane replaces.
//! - [`backplane`]: rooms shared with other relays over NATS (optional).
//! - [`queue`]: a connection's bounded outbound queue.
//! - [`limits`], [`stats`]: token buckets, admission, counters.
//!
//! The relay links the `wire` crate alone (ids, frames, envelopes): it has
//! no code that could decrypt what it carries (`scripts/walls.sh` checks
//! the binary), and it never logs payloads.

pub mod backplane;
pub mod config;
pub mod conn;
pub mod hub;
pub mod limits;
pub mod queue;
pub mod server;
pub mod stats;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tls;

pub use config::{Args, Config, Limits};
pub use server::Relay;
