//! One client connection: TLS handshake, hello, then a read loop that
//! enforces limits and publishes, with a writer task that drains the
//! connection's queue in batches.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::wire::{
    decode_payload, encode_frame, max_payload, peek_hello_version, ClientFrame, ConnId, ErrorCode,
    FrameCodec, FrameError, RelayError, RelayFrame, LEN_PREFIX, PROTOCOL_VERSION,
};
use futures_util::StreamExt;
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_openssl::SslStream;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::config::Limits;
use crate::hub::{Hub, JoinError, Member, Published, Room};
use crate::limits::{Refusal, Slot, TokenBucket};
use crate::stats::{CloseReason, Stats};

type Tls = SslStream<TcpStream>;

/// Most bytes gathered into one write.
const WRITE_BATCH: usize = 256 * 1024;
/// Largest hello body accepted (a version-1 hello is 22 bytes).
const MAX_HELLO: usize = 1024;
/// Time allowed to flush a last error frame before closing.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// Everything a connection needs from the server.
#[derive(Clone)]
pub struct Shared {
    /// Room registry.
    pub hub: Arc<Hub>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Limits.
    pub limits: Limits,
    /// TLS acceptor.
    pub acceptor: Arc<SslAcceptor>,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Serves one accepted TCP connection to the end and logs why it ended.
pub async fn serve(shared: Shared, tcp: TcpStream, peer: SocketAddr, slot: Result<Slot, Refusal>) {
    let reason = run(&shared, tcp, peer, slot).await;
    shared.stats.closed(reason.0);
    match reason.0 {
        CloseReason::TlsFailed | CloseReason::HandshakeTimeout => {
            debug!(%peer, reason = reason.0.as_str(), "connection closed before TLS")
        }
        _ => info!(
            %peer,
            conn_id = reason.1.unwrap_or(0),
            room = reason.2.as_deref().unwrap_or("-"),
            reason = reason.0.as_str(),
            "connection closed"
        ),
    }
}

type Outcome = (CloseReason, Option<ConnId>, Option<String>);

async fn run(
    shared: &Shared,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Result<Slot, Refusal>,
) -> Outcome {
    let limits = &shared.limits;
    let _ = tcp.set_nodelay(true);
    let Ok(ssl) = Ssl::new(shared.acceptor.context()) else {
        return (CloseReason::TlsFailed, None, None);
    };
    let Ok(mut tls) = SslStream::new(ssl, tcp) else {
        return (CloseReason::TlsFailed, None, None);
    };
    match timeout(
        limits.handshake_timeout,
        std::pin::Pin::new(&mut tls).accept(),
    )
    .await
    {
        Err(_) => return (CloseReason::HandshakeTimeout, None, None),
        Ok(Err(_)) => return (CloseReason::TlsFailed, None, None),
        Ok(Ok(())) => {}
    }
    let _slot = match slot {
        Ok(s) => s,
        Err(refusal) => {
            let (code, msg) = match refusal {
                Refusal::ServerFull => (ErrorCode::ServerFull, "relay is at its connection limit"),
                Refusal::TooManyFromAddress => (
                    ErrorCode::TooManyFromAddress,
                    "too many connections from your address",
                ),
            };
            last_words(&mut tls, code, msg, limits.max_frame).await;
            return (CloseReason::Refused, None, None);
        }
    };

    // Hello, read by hand so a hello from another version still yields a
    // clear "unsupported version".
    let room = match timeout(limits.hello_timeout, read_hello(&mut tls)).await {
        Err(_) => {
            last_words(
                &mut tls,
                ErrorCode::Timeout,
                "no hello in time",
                limits.max_frame,
            )
            .await;
            return (CloseReason::HelloTimeout, None, None);
        }
        Ok(Err((reason, code, msg))) => {
            last_words(&mut tls, code, &msg, limits.max_frame).await;
            return (reason, None, None);
        }
        Ok(Ok(room)) => room,
    };
    let room_tag = room.short();

    let conn_id = shared.hub.next_conn_id();
    let (tx, rx) = mpsc::channel::<Bytes>(limits.queue_frames);
    let kill = shared.shutdown.child_token();
    let member = Member {
        id: conn_id,
        tx: tx.clone(),
        kill: kill.clone(),
        slow: Arc::default(),
    };
    let slow = Arc::clone(&member.slow);
    let (room, peers) = match shared.hub.join(room, member) {
        Ok(x) => x,
        Err(e) => {
            let (code, msg) = match e {
                JoinError::RoomFull => (ErrorCode::RoomFull, "room is full"),
                JoinError::TooManyRooms => (ErrorCode::ServerFull, "relay is at its room limit"),
            };
            last_words(&mut tls, code, msg, limits.max_frame).await;
            return (CloseReason::RoomFull, Some(conn_id), Some(room_tag));
        }
    };
    info!(%peer, conn_id, room = %room_tag, peers, "connection joined room");

    // The hub queued the welcome before anyone could see us.
    let (rd, wr) = tokio::io::split(tls);
    let writer = tokio::spawn(write_loop(wr, rx, kill.clone()));
    let out = Outbox {
        tx,
        max_frame: limits.max_frame,
    };
    let reason = read_loop(shared, rd, &out, &room, conn_id, &kill).await;
    shared.hub.leave(&room, conn_id);
    let reason = if slow.load(Relaxed) {
        CloseReason::SlowReader
    } else {
        reason
    };
    // Last words for the client when the relay ends the connection.
    let last = match reason {
        CloseReason::Shutdown => Some((ErrorCode::GoingAway, "relay is shutting down")),
        CloseReason::IdleTimeout => {
            Some((ErrorCode::Timeout, "no traffic within the idle timeout"))
        }
        CloseReason::RateLimited => Some((ErrorCode::RateLimited, "rate limit exceeded")),
        CloseReason::BadFrame => Some((ErrorCode::BadFrame, "malformed or unexpected frame")),
        CloseReason::FrameTooLarge => {
            Some((ErrorCode::FrameTooLarge, "frame exceeds the size limit"))
        }
        _ => None,
    };
    if let Some((code, msg)) = last {
        out.error(code, msg);
    }
    drop(out);
    // Slow readers are cut off at once; others get a bounded drain.
    if reason == CloseReason::SlowReader {
        writer.abort();
    } else if timeout(LAST_WORDS, writer).await.is_err() {
        debug!(conn_id, "writer did not drain in time");
    }
    (reason, Some(conn_id), Some(room_tag))
}

/// The connection's own sender of control frames.
struct Outbox {
    tx: mpsc::Sender<Bytes>,
    max_frame: usize,
}

impl Outbox {
    fn send(&self, frame: &RelayFrame) -> bool {
        let mut buf = BytesMut::new();
        if encode_frame(frame, self.max_frame, &mut buf).is_err() {
            return false;
        }
        self.tx.try_send(buf.freeze()).is_ok()
    }

    fn error(&self, code: ErrorCode, message: &str) -> bool {
        self.send(&RelayFrame::Error(RelayError {
            code,
            message: message.into(),
        }))
    }
}

async fn read_hello(tls: &mut Tls) -> Result<common::RoomId, (CloseReason, ErrorCode, String)> {
    let bad = |m: &str| (CloseReason::BadFrame, ErrorCode::BadFrame, m.to_string());
    let mut prefix = [0u8; LEN_PREFIX];
    tls.read_exact(&mut prefix)
        .await
        .map_err(|_| bad("connection closed before hello"))?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_HELLO {
        return Err((
            CloseReason::FrameTooLarge,
            ErrorCode::FrameTooLarge,
            format!("hello of {len} bytes is too large"),
        ));
    }
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body)
        .await
        .map_err(|_| bad("connection closed inside hello"))?;
    if let Some(v) = peek_hello_version(&body) {
        if v != PROTOCOL_VERSION {
            return Err((
                CloseReason::UnsupportedVersion,
                ErrorCode::UnsupportedVersion,
                format!("protocol version {v} is not supported; this relay speaks version {PROTOCOL_VERSION}"),
            ));
        }
    }
    match decode_payload::<ClientFrame>(&body, MAX_HELLO) {
        Ok(ClientFrame::Hello(h)) => Ok(h.room),
        Ok(_) => Err(bad("the first frame must be a hello")),
        Err(_) => Err(bad("malformed hello")),
    }
}

async fn read_loop(
    shared: &Shared,
    rd: ReadHalf<Tls>,
    out: &Outbox,
    room: &Room,
    conn_id: ConnId,
    kill: &CancellationToken,
) -> CloseReason {
    let limits = &shared.limits;
    let stats = &shared.stats;
    let mut frames =
        FramedRead::with_capacity(rd, FrameCodec::<ClientFrame>::new(limits.max_frame), 1024);
    let now = std::time::Instant::now();
    let mut frame_bucket = TokenBucket::new(
        f64::from(limits.rate_frames),
        2.0 * f64::from(limits.rate_frames),
        now,
    );
    let byte_burst = (2 * limits.rate_bytes).max((limits.max_frame + 64) as u64) as f64;
    let mut byte_bucket = TokenBucket::new(limits.rate_bytes as f64, byte_burst, now);
    let ping_every = limits.idle_timeout / 3;
    let mut last_rx = Instant::now();
    let mut next_ping = last_rx + ping_every;
    let mut ping_seq = 0u64;
    loop {
        let idle_deadline = last_rx + limits.idle_timeout;
        let frame = tokio::select! {
            biased;
            _ = kill.cancelled() => {
                // Killed by shutdown, by the hub (slow reader, checked by the
                // caller), or by the writer after a failed write.
                return if shared.shutdown.is_cancelled() { CloseReason::Shutdown } else { CloseReason::IoError };
            }
            f = frames.next() => f,
            _ = sleep_until(idle_deadline) => return CloseReason::IdleTimeout,
            _ = sleep_until(next_ping) => {
                ping_seq += 1;
                out.send(&RelayFrame::Ping(ping_seq));
                next_ping = Instant::now() + ping_every;
                continue;
            }
        };
        let frame = match frame {
            None => return CloseReason::ClientClosed,
            Some(Ok(f)) => f,
            Some(Err(FrameError::TooLarge { .. })) => return CloseReason::FrameTooLarge,
            Some(Err(FrameError::Io(_))) => return CloseReason::IoError,
            Some(Err(_)) => return CloseReason::BadFrame,
        };
        last_rx = Instant::now();
        next_ping = last_rx + ping_every;
        stats.frames_in.fetch_add(1, Relaxed);
        // Exact encoded size (docs/PROTOCOL.md §3.1), prefix included.
        let size = LEN_PREFIX
            + match &frame {
                ClientFrame::Publish { to, payload } => {
                    if payload.len() > max_payload(limits.max_frame) {
                        return CloseReason::FrameTooLarge;
                    }
                    4 + if to.is_some() { 9 } else { 1 } + 8 + payload.len()
                }
                ClientFrame::Hello(_) => 22,
                ClientFrame::Ping(_) | ClientFrame::Pong(_) => 12,
            };
        stats.bytes_in.fetch_add(size as u64, Relaxed);
        let now = std::time::Instant::now();
        if !frame_bucket.take(1.0, now) || !byte_bucket.take(size as f64, now) {
            return CloseReason::RateLimited;
        }
        match frame {
            ClientFrame::Publish { to, payload } => {
                if shared.hub.publish(room, conn_id, to, payload) == Published::NoSuchPeer {
                    out.error(ErrorCode::NoSuchPeer, "no such connection in the room");
                }
            }
            ClientFrame::Ping(n) => {
                out.send(&RelayFrame::Pong(n));
            }
            ClientFrame::Pong(_) => {}
            ClientFrame::Hello(_) => return CloseReason::BadFrame,
        }
    }
}

/// Drains the queue into one buffer per flush. Ends when every sender is
/// gone and the queue is empty, on a write error, or when killed.
async fn write_loop(
    mut wr: WriteHalf<Tls>,
    mut rx: mpsc::Receiver<Bytes>,
    kill: CancellationToken,
) {
    let mut buf = BytesMut::new();
    loop {
        // On shutdown the reader queues a last error frame and drops its
        // sender: the queue drains, then `recv` ends the loop.
        let Some(first) = rx.recv().await else { break };
        buf.extend_from_slice(&first);
        while buf.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(b) => buf.extend_from_slice(&b),
                Err(_) => break,
            }
        }
        if write_all_flush(&mut wr, &buf).await.is_err() {
            kill.cancel();
            break;
        }
        buf.clear();
        if buf.capacity() > 64 * 1024 && rx.is_empty() {
            buf = BytesMut::new();
        }
    }
    let _ = timeout(Duration::from_secs(1), wr.shutdown()).await;
}

async fn write_all_flush<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    w.write_all(data).await?;
    w.flush().await
}

/// Sends one error frame directly (before the writer exists) and closes.
async fn last_words(tls: &mut Tls, code: ErrorCode, message: &str, max_frame: usize) {
    let mut buf = BytesMut::new();
    let frame = RelayFrame::Error(RelayError {
        code,
        message: message.into(),
    });
    if encode_frame(&frame, max_frame, &mut buf).is_ok() {
        let _ = timeout(LAST_WORDS, async {
            write_all_flush(tls, &buf).await?;
            tls.shutdown().await
        })
        .await;
    }
}
