//! The TeamChat load generator: drives a relay over real TLS and measures it.
//!
//! Modules by concern:
//! - [`tls`]: how a benchmark connection reaches the relay (TLS 1.3 client,
//!   CA-file verification or, on loopback only, none).
//! - [`conn`]: frames over one connection — the hello, buffered reading of
//!   relay frames, answering pings.
//! - [`payload`]: what a benchmark message carries (sequence number and send
//!   time) and how publish frames are stamped out quickly.
//! - [`seq`]: per-subscriber bookkeeping of which messages arrived.
//! - [`procfs`]: what the kernel says about the relay (CPU time, RSS) and
//!   about this process (open-file limit).
//! - [`room`]: a room of subscribers plus one publisher, shared by the
//!   throughput and latency runs.
//! - [`throughput`], [`latency`], [`idle`]: the benchmarks.
//! - [`report`]: results, as one human-readable line or one JSON object.
//! - [`abuse`]: stalled, garbage and slow-reading connections, each timed
//!   until the relay ends it (`scripts/soak-relay.sh`).
//! - [`peers`] and [`compare`]: one client for the relay, NATS and MQTT, and
//!   the scenarios `scripts/bench-peers.sh` runs against all three.
//!
//! Everything is bounded in count and in time: every run takes a deadline and
//! never waits past it, and it connects only to the address it is given.

pub mod abuse;
pub mod compare;
pub mod conn;
pub mod idle;
pub mod latency;
pub mod payload;
pub mod peers;
pub mod procfs;
pub mod report;
pub mod room;
pub mod seq;
pub mod throughput;
pub mod tls;

/// Upper bound on messages per run, so the per-subscriber bitmaps and
/// latency sample vectors stay small (10 M messages = 1.25 MB of bitmap).
pub const MAX_MESSAGES: u64 = 10_000_000;
