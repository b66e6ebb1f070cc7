//! Rooms across several relays over NATS core.
//!
//! A relay with a backplane subscribes to a room's subject
//! (`teamchat.room.<room hex>`) while it holds a connection in the room,
//! and publishes there what the rest of the room must see: every frame a
//! local connection publishes, and presence (a connection joined or left,
//! and every [`HEARTBEAT`] the list of its connections in each room). It
//! delivers what other relays publish to its own connections, and keeps
//! their presence with an expiry, so a crashed relay's connections leave
//! within [`PRESENCE_TTL`]. NATS carries only the sealed frames the relay
//! already carries, so it learns no more than a relay does.
//!
//! The hub never waits for NATS: it hands messages to this module through
//! a bounded queue; when the queue is full (a slow or lost broker), the
//! message is dropped and counted, and local rooms go on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::wire::{decode_payload, encode_payload, ConnId};
use common::RoomId;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::hub::Hub;

/// How often a relay tells the others which connections it holds.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A remote connection not heard of for this long has left.
pub const PRESENCE_TTL: Duration = Duration::from_secs(7);
/// Messages waiting for the broker; beyond, they are dropped.
const QUEUE: usize = 8192;
/// Largest message on the backplane: a frame plus its routing.
const MAX_MESSAGE: usize = 2 << 20;

/// What one relay tells the others about one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A local connection published a frame: to everyone, or to one
    /// connection (which may be on any relay).
    Deliver {
        /// The publishing connection.
        from: ConnId,
        /// One recipient, or `None` for the whole room.
        to: Option<ConnId>,
        /// The payload, as the connection published it.
        payload: Bytes,
    },
    /// A connection joined the room on the sending relay.
    Joined(ConnId),
    /// A connection left the room on the sending relay.
    Left(ConnId),
    /// Heartbeat: every connection the sending relay holds in the room.
    Present(#[serde(deserialize_with = "common::wire::bounded::vec")] Vec<ConnId>),
    /// The sending relay just subscribed: the others answer with `Present`.
    Hello,
}

/// A [`Message`] with the relay it comes from (so a relay ignores its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending relay's id (the high 32 bits of its connection ids).
    pub relay: u32,
    /// The room.
    pub room: RoomId,
    /// What it says.
    pub message: Message,
}

/// The NATS subject of a room.
pub fn subject(room: &RoomId) -> String {
    format!("teamchat.room.{}", hex::encode(room.0))
}

/// What the hub asks of the backplane.
#[derive(Debug)]
enum Cmd {
    Subscribe(RoomId),
    Unsubscribe(RoomId),
    Publish(Envelope),
}

/// The hub's end of the backplane: never blocks.
#[derive(Debug)]
pub struct Handle {
    relay: u32,
    tx: mpsc::Sender<Cmd>,
    dropped: AtomicU64,
}

impl Handle {
    /// This relay's id.
    pub fn relay(&self) -> u32 {
        self.relay
    }

    /// Starts receiving the room's messages (the first local connection
    /// joined), and asks the other relays who is there.
    pub fn subscribe(&self, room: RoomId) {
        self.send(Cmd::Subscribe(room));
        self.publish(room, Message::Hello);
    }

    /// Stops receiving the room's messages (the last local one left).
    pub fn unsubscribe(&self, room: RoomId) {
        self.send(Cmd::Unsubscribe(room));
    }

    /// Tells the other relays.
    pub fn publish(&self, room: RoomId, message: Message) {
        self.send(Cmd::Publish(Envelope {
            relay: self.relay,
            room,
            message,
        }));
    }

    /// Messages dropped because the broker could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    fn send(&self, cmd: Cmd) {
        if self.tx.try_send(cmd).is_err() {
            let n = self.dropped.fetch_add(1, Relaxed) + 1;
            if n.is_power_of_two() {
                warn!(
                    dropped = n,
                    "backplane queue full: messages to other relays dropped"
                );
            }
        }
    }
}

/// The backplane's settings. `Debug` shows no credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    /// NATS servers (`nats://HOST:PORT` or `tls://HOST:PORT`), tried in turn.
    pub servers: Vec<String>,
    /// Start without the broker (local rooms only) when it cannot be
    /// reached, and keep trying.
    pub optional: bool,
    /// User and password for the broker.
    pub user: Option<(String, String)>,
    /// Token for the broker.
    pub token: Option<String>,
    /// Trust the broker's TLS certificate to this CA (PEM).
    pub ca: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<String> = self.servers.iter().map(|s| shown(s)).collect();
        f.debug_struct("Options")
            .field("servers", &servers)
            .field("optional", &self.optional)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("password", &self.user.as_ref().map(|_| "(set)"))
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("ca", &self.ca)
            .finish()
    }
}

/// A NATS address as it may be logged: any `user:password@` or `token@`
/// in it is replaced by `***@`.
pub fn shown(server: &str) -> String {
    let (scheme, rest) = server.split_once("://").unwrap_or(("", server));
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => rest.to_string(),
    };
    if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

/// Connects to the broker and starts the backplane for `hub`; returns
/// the handle the hub publishes through. Without `optional`, an
/// unreachable broker is an error; with it, the relay starts with local
/// rooms only and connects when the broker appears.
pub async fn start(
    opts: &Options,
    relay: u32,
    stop: CancellationToken,
) -> anyhow::Result<(Arc<Handle>, Pending)> {
    use anyhow::Context;
    let mut connect = async_nats::ConnectOptions::new()
        .name("teamchat-relay")
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|e| async move {
            match e {
                async_nats::Event::Connected => info!("backplane connected"),
                async_nats::Event::Disconnected => {
                    warn!("backplane disconnected: local rooms go on, reconnecting")
                }
                other => info!(event = %other, "backplane"),
            }
        });
    if let Some((u, p)) = &opts.user {
        connect = connect.user_and_password(u.clone(), p.clone());
    }
    if let Some(t) = &opts.token {
        connect = connect.token(t.clone());
    }
    if let Some(ca) = &opts.ca {
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    if opts.optional {
        connect = connect.retry_on_initial_connect();
    }
    let servers: Vec<async_nats::ServerAddr> = opts
        .servers
        .iter()
        .map(|s| {
            s.parse()
                .with_context(|| format!("bad backplane address {}", shown(s)))
        })
        .collect::<anyhow::Result<_>>()?;
    let client = connect
        .connect(servers)
        .await
        .context("cannot reach the backplane (NATS)")?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let handle = Arc::new(Handle {
        relay,
        tx,
        dropped: AtomicU64::new(0),
    });
    Ok((
        handle,
        Pending {
            client,
            rx,
            relay,
            stop,
        },
    ))
}

/// A connected backplane waiting for its hub (see [`Pending::run`]).
#[derive(Debug)]
pub struct Pending {
    client: async_nats::Client,
    rx: mpsc::Receiver<Cmd>,
    relay: u32,
    stop: CancellationToken,
}

impl Pending {
    /// Runs the backplane for `hub` until stopped: subscriptions, publishes
    /// and heartbeats.
    pub async fn run(self, hub: Arc<Hub>) {
        let Pending {
            client,
            mut rx,
            relay,
            stop,
        } = self;
        let mut subs: HashMap<RoomId, tokio::task::JoinHandle<()>> = HashMap::new();
        let mut beat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    None => break,
                    Some(Cmd::Subscribe(room)) => {
                        if subs.contains_key(&room) {
                            continue;
                        }
                        match client.subscribe(subject(&room)).await {
                            Ok(sub) => {
                                let hub = Arc::clone(&hub);
                                subs.insert(room, tokio::spawn(receive(sub, hub, relay)));
                            }
                            Err(e) => warn!(error = %e, "backplane: cannot subscribe"),
                        }
                    }
                    Some(Cmd::Unsubscribe(room)) => {
                        // Dropping the subscriber unsubscribes.
                        if let Some(task) = subs.remove(&room) {
                            task.abort();
                        }
                    }
                    Some(Cmd::Publish(env)) => {
                        let Ok(bytes) = encode_payload(&env, MAX_MESSAGE) else {
                            continue;
                        };
                        if let Err(e) = client.publish(subject(&env.room), bytes.into()).await {
                            warn!(error = %e, "backplane: cannot publish");
                        }
                    }
                },
                _ = beat.tick() => {
                    for room in subs.keys() {
                        let present = hub.local_ids(room);
                        if present.is_empty() {
                            continue;
                        }
                        let env = Envelope { relay, room: *room, message: Message::Present(present) };
                        if let Ok(bytes) = encode_payload(&env, MAX_MESSAGE) {
                            let _ = client.publish(subject(room), bytes.into()).await;
                        }
                    }
                    hub.expire_remote(PRESENCE_TTL);
                }
            }
        }
        for (_, task) in subs {
            task.abort();
        }
        let _ = client.flush().await;
    }
}

/// Delivers one room's messages from other relays to the hub.
async fn receive(mut sub: async_nats::Subscriber, hub: Arc<Hub>, relay: u32) {
    while let Some(msg) = sub.next().await {
        match decode_payload::<Envelope>(&msg.payload, MAX_MESSAGE) {
            Ok(env) if env.relay == relay => {}
            Ok(env) => hub.remote(env),
            Err(_) => warn!("backplane: a malformed message dropped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_garbage_is_refused() {
        for message in [
            Message::Deliver {
                from: 7,
                to: Some(9),
                payload: Bytes::from_static(b"sealed"),
            },
            Message::Joined(3),
            Message::Left(3),
            Message::Present(vec![1, 2, 3]),
            Message::Hello,
        ] {
            let env = Envelope {
                relay: 42,
                room: RoomId([5; 16]),
                message,
            };
            let bytes = encode_payload(&env, MAX_MESSAGE).unwrap();
            assert_eq!(
                decode_payload::<Envelope>(&bytes, MAX_MESSAGE).unwrap(),
                env
            );
        }
        assert!(decode_payload::<Envelope>(b"\xff\xff\xff", MAX_MESSAGE).is_err());
        let opts = Options {
            servers: vec!["nats://relays:s3cret@10.0.0.5:4222".into()],
            optional: false,
            user: Some(("relays".into(), "pa55word".into())),
            token: Some("t0ken".into()),
            ca: None,
        };
        let debug = format!("{opts:?}");
        for secret in ["s3cret", "pa55word", "t0ken"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert_eq!(shown("nats://u:p@h:1"), "nats://***@h:1");
        assert_eq!(shown("tls://h:1"), "tls://h:1");
        assert_eq!(shown("tok@h:1"), "***@h:1");
        assert_eq!(
            subject(&RoomId([0xab; 16])),
            format!("teamchat.room.{}", "ab".repeat(16))
        );
    }
}
