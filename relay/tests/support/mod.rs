//! Test support: a throwaway certificate, a relay on 127.0.0.1 with an
//! ephemeral port, and a minimal TLS client speaking the relay protocol.
#![allow(
    dead_code,
    async_fn_in_trait,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;
use tokio_util::codec::{FramedRead, FramedWrite};
use wire::RoomId;
use wire::{ClientFrame, ConnId, FrameCodec, Hello, RelayFrame, Welcome, MIN_PROTOCOL_VERSION};

/// Generous bound on anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(10);

#[allow(unused_imports)]
pub use relay::testing::{make_cert, test_limits, TestRelay};

/// Connecting clients to a test relay.
pub trait Connect {
    /// A TLS connection (handshake done, nothing sent).
    async fn tls(&self) -> SslStream<TcpStream>;
    /// A client that said hello to `room` and got its welcome, speaking
    /// version 1 (told nothing of what the relay took: the frames these
    /// tests expect are the room's).
    async fn join(&self, room: RoomId) -> (Client, Welcome) {
        self.join_speaking(room, MIN_PROTOCOL_VERSION).await
    }
    /// [`Connect::join`] with a hello of `version`.
    async fn join_speaking(&self, room: RoomId, version: u16) -> (Client, Welcome);
    /// Proves the relay still serves rooms: two fresh clients exchange a message.
    async fn assert_alive(&self);
}

impl Connect for TestRelay {
    async fn tls(&self) -> SslStream<TcpStream> {
        tls_connect(self.addr, &self.cert.cert, None).await.unwrap()
    }

    async fn join_speaking(&self, room: RoomId, version: u16) -> (Client, Welcome) {
        let mut c = Client::new(self.tls().await);
        c.send(ClientFrame::Hello(Hello { version, room })).await;
        match c.recv().await {
            Some(RelayFrame::Welcome(w)) => (c, w),
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    async fn assert_alive(&self) {
        let room = RoomId(rand_room());
        let (mut a, _) = self.join(room).await;
        let (mut b, wb) = self.join(room).await;
        assert_eq!(a.recv().await, Some(RelayFrame::PeerJoined(wb.conn_id)));
        b.publish(None, b"still alive").await;
        match a.recv().await {
            Some(RelayFrame::Deliver { payload, .. }) => assert_eq!(&payload[..], b"still alive"),
            other => panic!("relay no longer delivers: {other:?}"),
        }
    }
}

pub fn rand_room() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut r = [0xa5; 16];
    r[..8].copy_from_slice(&n.to_be_bytes());
    r[8..].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    r
}

/// TLS to `addr` trusting `ca`; `max_version` caps the client's TLS version.
pub async fn tls_connect(
    addr: SocketAddr,
    ca: &std::path::Path,
    max_version: Option<SslVersion>,
) -> Result<SslStream<TcpStream>, String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(ca).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    if let Some(v) = max_version {
        // Let an old version through on the client side so that only the
        // server can be the one refusing it.
        b.set_security_level(0);
        b.set_cipher_list("DEFAULT@SECLEVEL=0").unwrap();
        b.set_min_proto_version(Some(SslVersion::TLS1)).unwrap();
        b.set_max_proto_version(Some(v)).unwrap();
    }
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut s = SslStream::new(ssl, tcp).unwrap();
    match tokio::time::timeout(WAIT, Pin::new(&mut s).connect()).await {
        Ok(Ok(())) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("handshake timed out".into()),
    }
}

type Tls = SslStream<TcpStream>;

/// A relay-protocol client.
pub struct Client {
    pub rx: FramedRead<ReadHalf<Tls>, FrameCodec<RelayFrame>>,
    pub tx: FramedWrite<WriteHalf<Tls>, FrameCodec<RelayFrame>>,
}

impl Client {
    pub fn new(tls: Tls) -> Client {
        let (r, w) = tokio::io::split(tls);
        Client {
            rx: FramedRead::new(r, FrameCodec::new(64 << 20)),
            tx: FramedWrite::new(w, FrameCodec::new(64 << 20)),
        }
    }

    pub async fn send(&mut self, f: ClientFrame) {
        self.tx.send(f).await.unwrap();
    }

    pub async fn publish(&mut self, to: Option<ConnId>, payload: &[u8]) {
        self.send(ClientFrame::Publish {
            to,
            payload: Bytes::copy_from_slice(payload),
        })
        .await;
    }

    pub async fn publish_bulk(&mut self, to: Option<ConnId>, payload: &[u8]) {
        self.send(ClientFrame::PublishBulk {
            to,
            payload: Bytes::copy_from_slice(payload),
        })
        .await;
    }

    /// The next frame other than a keepalive ping (answered), or None at
    /// end of stream or error. Panics after `WAIT`.
    pub async fn recv(&mut self) -> Option<RelayFrame> {
        loop {
            let f = tokio::time::timeout(WAIT, self.rx.next())
                .await
                .expect("no frame within the wait");
            match f {
                Some(Ok(RelayFrame::Ping(n))) => {
                    let _ = self.tx.send(ClientFrame::Pong(n)).await;
                }
                Some(Ok(f)) => return Some(f),
                _ => return None,
            }
        }
    }

    /// Like `recv`, but returns None if nothing arrives within `d`.
    pub async fn recv_within(&mut self, d: Duration) -> Option<RelayFrame> {
        match tokio::time::timeout(d, self.rx.next()).await {
            Ok(Some(Ok(f))) => Some(f),
            _ => None,
        }
    }
}
