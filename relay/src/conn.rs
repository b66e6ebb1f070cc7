//! One client connection: TLS handshake, hello, then a read loop that
//! enforces limits and publishes, alongside a writer that drains the
//! connection's queue in batches. Reader and writer run in the same task,
//! so when a connection ends, everything it holds ends with it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::{FusedFuture, FutureExt};
use futures_util::StreamExt;
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_openssl::SslStream;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use wire::{
    decode_payload, encode_frame, max_payload, peek_hello_version, Ack, ClientFrame, ConnId,
    ErrorCode, FrameCodec, FrameError, RelayError, RelayFrame, ACK_EVERY, LEN_PREFIX, MAX_HELLO,
    MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};

use crate::config::Limits;
use crate::hub::{Delivery, Hub, JoinError, Member, Published, Room};
use crate::limits::{Refusal, Slot, TokenBucket};
use crate::queue::{Budget, Outq, Push};
use crate::stats::{CloseReason, Stats};

type Tls = SslStream<Sock>;

/// A connection's socket, which can move from the admission runtime (where
/// it is accepted, its handshake and hello read) to the chat runtime: a
/// tokio socket belongs to the runtime whose reactor registered it.
#[derive(Debug)]
pub(crate) struct Sock(Option<TcpStream>);

impl Sock {
    fn new(tcp: TcpStream) -> Sock {
        Sock(Some(tcp))
    }

    fn tcp(&self) -> Option<&TcpStream> {
        self.0.as_ref()
    }

    /// Leaves the current runtime's reactor; the socket stays open.
    fn detach(&mut self) -> std::io::Result<std::net::TcpStream> {
        self.0.take().ok_or_else(detached)?.into_std()
    }

    /// Joins the reactor of the runtime this is called in.
    fn attach(&mut self, tcp: std::net::TcpStream) -> std::io::Result<()> {
        self.0 = Some(TcpStream::from_std(tcp)?);
        Ok(())
    }

    /// Polls the socket with `f`, or fails if it is between runtimes.
    fn poll<T>(
        self: Pin<&mut Self>,
        f: impl FnOnce(Pin<&mut TcpStream>) -> std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        match self.get_mut().0.as_mut() {
            Some(tcp) => f(Pin::new(tcp)),
            None => std::task::Poll::Ready(Err(detached())),
        }
    }
}

fn detached() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "socket between runtimes")
}

impl tokio::io::AsyncRead for Sock {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll(|tcp| tcp.poll_read(cx, buf))
    }
}

impl AsyncWrite for Sock {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.poll(|tcp| tcp.poll_write(cx, buf))
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll(|tcp| tcp.poll_flush(cx))
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll(|tcp| tcp.poll_shutdown(cx))
    }
}

/// Bytes of frames a connection handles before letting the others run.
const TURN_BYTES: usize = 256 * 1024;
/// Most bytes gathered into one write.
const WRITE_BATCH: usize = 256 * 1024;
/// Most unsent bytes the kernel holds for a connection (`TCP_NOTSENT_LOWAT`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const NOTSENT_LOWAT: u32 = 128 * 1024;
/// A write buffer up to this size is kept between batches; a larger one
/// (a burst's) is given back once the queue is empty.
const WRITE_KEEP: usize = 4 * 1024;
/// A read buffer over this size is given back as soon as it is empty; any
/// other at the next ping, if empty then (an idle connection keeps none).
const READ_KEEP: usize = 64 * 1024;
/// Time allowed to flush a last error frame before closing.
const LAST_WORDS: Duration = Duration::from_secs(2);
/// The same for a reader cut for falling behind: what its socket already
/// holds goes first.
const SLOW_LAST_WORDS: Duration = Duration::from_secs(5);
/// A write that makes no progress for this long marks a stalled reader.
const WRITE_STALL: Duration = Duration::from_secs(15);
/// Unacknowledged data older than this ends the connection (Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// Handshake time allowed to a connection that will only be refused.
const REFUSAL_HANDSHAKE: Duration = Duration::from_secs(3);

/// Everything a connection needs from the server.
#[derive(Clone)]
pub struct Shared {
    /// Room registry.
    pub hub: Arc<Hub>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Limits.
    pub limits: Limits,
    /// What all connections' queues hold, against `limits.max_queued`.
    pub budget: Arc<Budget>,
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

/// Where a connection goes once it has joined its room: the chat runtime,
/// and the tracker that shutdown waits on.
#[derive(Debug, Clone)]
pub struct Chat {
    /// The chat runtime.
    pub handle: tokio::runtime::Handle,
    /// Every connection's task, on either runtime.
    pub tracker: tokio_util::task::TaskTracker,
}

/// Serves one accepted TCP connection to the end and logs why it ended.
/// Runs on the admission runtime through the handshake and the hello; then
/// the connection moves to the chat runtime (`chat`), where it joins its
/// room and lives on, so that however many connections are being
/// admitted, the rooms' traffic never queues behind their handshakes (and
/// the rooms' locks are only ever taken there).
/// `slot` is its place in the connection limits (held until it ends), or
/// why it has none: then it only gets a refusal.
/// `_permit` is its place among the refusals in flight, if it is refused.
pub async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Result<Slot, Refusal>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    to_chat: Chat,
) {
    // Handshake and hello run in a future of their own on the heap, freed
    // once done: an idle connection's task then holds only what the chat
    // phase needs (its size is the largest of its states).
    let mut greeted = match Box::pin(establish(&shared, tcp, peer, slot)).await {
        Ok(greeted) => greeted,
        Err(outcome) => return ended(&shared, peer, outcome),
    };
    // Not in a room yet: if the move fails, or the chat runtime is gone and
    // drops the task unrun, there is nothing to undo.
    let Ok(tcp) = greeted.tls.get_mut().detach() else {
        return ended(&shared, peer, (CloseReason::IoError, None, None));
    };
    let Chat { handle, tracker } = to_chat;
    tracker.spawn_on(
        async move {
            let outcome = match greeted.tls.get_mut().attach(tcp) {
                Ok(()) => match join(&shared, greeted, peer).await {
                    Ok(joined) => chat(&shared, joined).await,
                    Err(outcome) => outcome,
                },
                Err(_) => (CloseReason::IoError, None, None),
            };
            ended(&shared, peer, outcome);
        },
        &handle,
    );
}

/// Counts and logs why a connection ended.
fn ended(shared: &Shared, peer: SocketAddr, (reason, conn_id, room): Outcome) {
    shared.stats.closed(reason);
    match conn_id {
        // Connections that never joined a room are logged at debug level
        // only: anyone can make many of them.
        None => debug!(%peer, reason = reason.as_str(), "connection closed before joining a room"),
        Some(id) => info!(
            %peer,
            conn_id = id,
            room = room.as_deref().unwrap_or("-"),
            reason = reason.as_str(),
            "connection closed"
        ),
    }
}

type Outcome = (CloseReason, Option<ConnId>, Option<String>);

/// A connection that completed TLS and its hello.
struct Greeted {
    tls: Tls,
    room: wire::RoomId,
    /// The protocol version of its hello.
    version: u16,
    /// Its place in the connection limits, held to the end.
    slot: Slot,
}

/// A connection that completed TLS and its hello and joined a room.
struct Joined {
    tls: Tls,
    room: Arc<Room>,
    room_tag: String,
    conn_id: ConnId,
    queue: Arc<Outq>,
    kill: CancellationToken,
    /// It speaks version 2 or later: it is told what was taken from it.
    acks: bool,
    /// Its place in the connection limits, held to the end.
    _slot: Slot,
}

/// The TLS handshake and the hello (on the admission runtime).
async fn establish(
    shared: &Shared,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Result<Slot, Refusal>,
) -> Result<Greeted, Outcome> {
    let limits = &shared.limits;
    let _ = tcp.set_nodelay(true);
    // A peer that vanishes (powered off, NAT entry dropped) must not hold
    // unacknowledged data, and its place, for TCP's quarter-hour of retries.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(&tcp).set_tcp_user_timeout(Some(TCP_USER_TIMEOUT));
    // Little unsent data waits in the kernel: what waits is in the queue,
    // where chat overtakes file chunks (its writer is woken as the link
    // drains, so the pipe stays full).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(&tcp).set_tcp_notsent_lowat(NOTSENT_LOWAT);
    // Each connection's timeouts end somewhere in their last quarter: a
    // wave of connections opened together (a flood of stalled ones) does
    // not all expire in one instant, with the closing, and the wave that
    // replaces them, landing on the other rooms as one burst.
    let spread = spread_of(peer);
    let handshake_limit = spread(if slot.is_ok() {
        limits.handshake_timeout
    } else {
        limits.handshake_timeout.min(REFUSAL_HANDSHAKE)
    });
    let handshake_until = Instant::now() + handshake_limit;
    // No TLS state until the ClientHello is here: a client that connects
    // and dawdles holds only its socket.
    tokio::select! {
        _ = shared.shutdown.cancelled() => return Err((CloseReason::Shutdown, None, None)),
        r = tokio::time::timeout_at(handshake_until, first_record(&tcp)) => match r {
            Err(_) => return Err((CloseReason::HandshakeTimeout, None, None)),
            Ok(Err(_)) => return Err((CloseReason::TlsFailed, None, None)),
            Ok(Ok(())) => {}
        },
    }
    let Ok(ssl) = Ssl::new(shared.acceptor.context()) else {
        return Err((CloseReason::TlsFailed, None, None));
    };
    let Ok(mut tls) = SslStream::new(ssl, Sock::new(tcp)) else {
        return Err((CloseReason::TlsFailed, None, None));
    };
    tokio::select! {
        _ = shared.shutdown.cancelled() => return Err((CloseReason::Shutdown, None, None)),
        r = tokio::time::timeout_at(handshake_until, std::pin::Pin::new(&mut tls).accept()) => match r {
            Err(_) => return Err((CloseReason::HandshakeTimeout, None, None)),
            Ok(Err(_)) => return Err((CloseReason::TlsFailed, None, None)),
            Ok(Ok(())) => {}
        },
    }
    let slot = match slot {
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
            return Err((CloseReason::Refused, None, None));
        }
    };

    // Hello, read by hand so a hello from another version still yields a
    // clear "unsupported version".
    let hello = tokio::select! {
        _ = shared.shutdown.cancelled() => None,
        r = timeout(spread(limits.hello_timeout), read_hello(&mut tls)) => Some(r),
    };
    let (room, version) = match hello {
        None => {
            last_words(
                &mut tls,
                ErrorCode::GoingAway,
                "relay is shutting down",
                limits.max_frame,
            )
            .await;
            return Err((CloseReason::Shutdown, None, None));
        }
        Some(Err(_)) => {
            last_words(
                &mut tls,
                ErrorCode::Timeout,
                "no hello in time",
                limits.max_frame,
            )
            .await;
            return Err((CloseReason::HelloTimeout, None, None));
        }
        Some(Ok(Err((reason, code, msg)))) => {
            last_words(&mut tls, code, &msg, limits.max_frame).await;
            return Err((reason, None, None));
        }
        Some(Ok(Ok(hello))) => hello,
    };
    Ok(Greeted {
        tls,
        room,
        version,
        slot,
    })
}

/// Joins the connection's room (on the chat runtime, as everything that
/// touches the rooms: no lock of theirs is held by a thread of lower
/// priority).
async fn join(shared: &Shared, greeted: Greeted, peer: SocketAddr) -> Result<Joined, Outcome> {
    let limits = &shared.limits;
    let Greeted {
        mut tls,
        room,
        version,
        slot,
    } = greeted;
    let room_tag = room.short();

    let conn_id = shared.hub.next_conn_id();
    let queue = Arc::new(Outq::with_budget(
        limits.queue_frames,
        limits.queue_bytes,
        Arc::clone(&shared.budget),
    ));
    let kill = shared.shutdown.child_token();
    let member = Member {
        id: conn_id,
        out: Arc::clone(&queue),
        kill: kill.clone(),
    };
    let room = match shared.hub.join_speaking(room, member, version) {
        Ok((room, peers)) => {
            info!(%peer, conn_id, room = %room_tag, peers, "connection joined room");
            room
        }
        Err(e) => {
            let (code, msg) = match e {
                JoinError::RoomFull => (ErrorCode::RoomFull, "room is full"),
                JoinError::TooManyRooms => (ErrorCode::ServerFull, "relay is at its room limit"),
            };
            last_words(&mut tls, code, msg, limits.max_frame).await;
            return Err((CloseReason::RoomFull, Some(conn_id), Some(room_tag)));
        }
    };

    Ok(Joined {
        tls,
        room,
        room_tag,
        conn_id,
        queue,
        kill,
        acks: version >= ACK_VERSION,
        _slot: slot,
    })
}

/// The chat phase: reads, limits and publishes, and writes what is queued.
async fn chat(shared: &Shared, joined: Joined) -> Outcome {
    let limits = &shared.limits;
    let Joined {
        tls,
        room,
        room_tag,
        conn_id,
        queue,
        kill,
        acks,
        _slot,
    } = joined;
    // The hub queued the welcome before anyone could see us.
    let (mut rd, mut wr) = tokio::io::split(tls);
    let (last_tx, last_rx) = oneshot::channel::<Bytes>();
    // Set by the writer when a write could not be completed in time: the
    // peer is not reading, and what the kernel still holds for it is
    // thrown away with a reset rather than kept for TCP's retries.
    let stuck = AtomicBool::new(false);
    // The writer borrows the write half only within this block, so the two
    // halves can be put back together for the reset below.
    let reason = {
        // Fused: once it has ended (a write error or stall) it is never polled
        // again for last words.
        let writer = write_loop(&mut wr, &queue, last_rx, &stuck).fuse();
        tokio::pin!(writer);
        let out = Outbox {
            queue: &queue,
            max_frame: limits.max_frame,
            acks,
        };
        let reason = read_loop(
            shared,
            &mut rd,
            &out,
            &room,
            conn_id,
            &kill,
            writer.as_mut(),
        )
        .await;
        let reason = if queue.is_slow() {
            CloseReason::SlowReader
        } else if queue.must_rejoin() && !shared.shutdown.is_cancelled() {
            CloseReason::Rejoin
        } else {
            reason
        };
        // At shutdown nobody needs to hear who left: everyone is leaving.
        shared
            .hub
            .leave(&room, conn_id, !shared.shutdown.is_cancelled());
        // Nothing more joins the queue; the writer drains what is there, or,
        // for a reader cut for falling behind, only its last words.
        if reason == CloseReason::SlowReader {
            queue.close_and_clear();
        } else {
            queue.close();
        }
        // Last words for the client when the relay ends the connection: written
        // ahead of anything still queued, within a deadline.
        let last = match reason {
            CloseReason::Shutdown => Some((ErrorCode::GoingAway, "relay is shutting down")),
            CloseReason::IdleTimeout => {
                Some((ErrorCode::Timeout, "no traffic within the idle timeout"))
            }
            CloseReason::BadFrame => Some((ErrorCode::BadFrame, "malformed or unexpected frame")),
            CloseReason::FrameTooLarge => {
                Some((ErrorCode::FrameTooLarge, "frame exceeds the size limit"))
            }
            CloseReason::Rejoin => Some((
                ErrorCode::GoingAway,
                "frames to or from the other relays were lost: reconnect and rejoin",
            )),
            // Written after what its socket already holds, if it reads on.
            CloseReason::SlowReader => Some((
                ErrorCode::SlowReader,
                "you fell behind the room: reconnect (what was queued for you is lost)",
            )),
            _ => None,
        };
        if let Some((code, msg)) = last.filter(|_| !writer.is_terminated()) {
            if let Some(bytes) = encode_error(code, msg, limits.max_frame) {
                let _ = last_tx.send(bytes);
            }
            let allowed = if reason == CloseReason::SlowReader {
                SLOW_LAST_WORDS
            } else {
                LAST_WORDS
            };
            if timeout(allowed, &mut writer).await.is_err() {
                stuck.store(true, Relaxed);
            }
        }
        reason
    };
    // A reader cut for falling behind that took neither its queue nor its
    // last words in time is reset: its socket's unsent data (up to the
    // kernel's send buffer) is freed now, and its next read fails at once
    // instead of the connection lingering in TCP's zero-window probes.
    // Any other close (shutdown, a bad frame, ...) stays graceful, so a
    // client still reading gets what its kernel already holds.
    if stuck.load(Relaxed) && reason == CloseReason::SlowReader {
        let tls = rd.unsplit(wr);
        if let Some(tcp) = tls.get_ref().tcp() {
            let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
        }
    }
    // Dropping the writer here closes the connection, whatever its state.
    (reason, Some(conn_id), Some(room_tag))
}

/// The connection's own sender of control frames.
struct Outbox<'a> {
    queue: &'a Outq,
    max_frame: usize,
    /// The client speaks version 2: it is told what was taken from it.
    acks: bool,
}

impl Outbox<'_> {
    /// Queues a frame; false if the queue is full (the caller treats the
    /// connection as too slow).
    fn send(&self, frame: &RelayFrame) -> bool {
        let mut buf = BytesMut::new();
        if encode_frame(frame, self.max_frame, &mut buf).is_err() {
            return false;
        }
        matches!(
            self.queue.push(buf.freeze()),
            Push::Queued | Push::Congested
        )
    }

    /// Tells the client what was taken from it, if it has not been told
    /// (`told` stays at the default for a version-1 client, which is never
    /// told); false if the queue is full.
    fn tell(&self, taken: Ack, told: &mut Ack) -> bool {
        if !self.acks || *told == taken {
            return true;
        }
        *told = taken;
        self.send(&RelayFrame::Ack(taken))
    }

    fn error(&self, code: ErrorCode, message: &str) -> bool {
        self.send(&RelayFrame::Error(RelayError {
            code,
            message: message.into(),
        }))
    }
}

fn encode_error(code: ErrorCode, message: &str, max_frame: usize) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    let frame = RelayFrame::Error(RelayError {
        code,
        message: message.into(),
    });
    encode_frame(&frame, max_frame, &mut buf).ok()?;
    Some(buf.freeze())
}

/// The first version whose clients are sent [`RelayFrame::Ack`].
const ACK_VERSION: u16 = 2;

/// The hello's room and version (one this relay speaks).
async fn read_hello(
    tls: &mut Tls,
) -> Result<(wire::RoomId, u16), (CloseReason, ErrorCode, String)> {
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
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&v) {
            return Err((
                CloseReason::UnsupportedVersion,
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported; this relay speaks versions \
                     {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}"
                ),
            ));
        }
    }
    match decode_payload::<ClientFrame>(&body, MAX_HELLO) {
        Ok(ClientFrame::Hello(h)) => Ok((h.room, h.version)),
        Ok(_) => Err(bad("the first frame must be a hello")),
        Err(_) => Err(bad("malformed hello")),
    }
}

async fn read_loop(
    shared: &Shared,
    rd: &mut ReadHalf<Tls>,
    out: &Outbox<'_>,
    room: &Room,
    conn_id: ConnId,
    kill: &CancellationToken,
    // Polled alongside the reads (one select, not a select of two loops,
    // keeps the connection's task small); it ends first only on a write
    // error or a stall.
    mut writer: Pin<&mut impl Future<Output = ()>>,
) -> CloseReason {
    let limits = &shared.limits;
    let stats = &shared.stats;
    let mut frames =
        FramedRead::with_capacity(rd, FrameCodec::<ClientFrame>::new(limits.max_frame), 0);
    let now = std::time::Instant::now();
    let mut frame_bucket = TokenBucket::new(
        f64::from(limits.rate_frames),
        2.0 * f64::from(limits.rate_frames),
        now,
    );
    let byte_burst = limits
        .rate_bytes
        .saturating_mul(2)
        .max((limits.max_frame + 64) as u64) as f64;
    let mut byte_bucket = TokenBucket::new(limits.rate_bytes as f64, byte_burst, now);
    // What this connection makes the relay send to others: payload times
    // recipients, charged after each publish, repaid at the fan-out rate.
    let fanout_rate = limits.rate_fanout_bytes as f64;
    let mut fanout_bucket = TokenBucket::new(fanout_rate, 2.0 * fanout_rate, now);
    // A version-2 client keeps a pace (wire::KEEPALIVE_SECS): silent for
    // three of its periods, its link is dead or half-open.
    let idle_timeout = if out.acks {
        limits
            .idle_timeout
            .min(Duration::from_secs(3 * wire::KEEPALIVE_SECS))
    } else {
        limits.idle_timeout
    };
    let ping_every = idle_timeout / 3;
    let mut last_rx = Instant::now();
    let mut next_ping = last_rx + ping_every;
    let mut ping_seq = 0u64;
    // When this connection's own queue will have been congested for the
    // slow-reader timeout, if it is congested.
    let mut behind_deadline: Option<Instant> = None;
    let slow_after = limits.slow_reader_timeout;
    // Bytes handled since this connection last let the others run.
    let mut turn = 0usize;
    // What was taken from this connection, and what it was last told.
    let mut taken = Ack::default();
    let mut told = Ack::default();
    loop {
        // Fairness between connections: one whose frames keep coming (a
        // flood, a file) lets the others run after each TURN_BYTES, so a
        // line in another room waits for a turn of that size, not for
        // everything the flooder's socket holds.
        if turn >= TURN_BYTES {
            turn = 0;
            tokio::task::yield_now().await;
        }
        let idle_deadline = last_rx + idle_timeout;
        let frame = tokio::select! {
            biased;
            _ = kill.cancelled() => {
                // Killed by shutdown, or by the hub (slow reader, checked by
                // the caller).
                return if shared.shutdown.is_cancelled() { CloseReason::Shutdown } else { CloseReason::SlowReader };
            }
            f = frames.next() => f,
            () = &mut writer => return CloseReason::IoError,
            // Nothing more to read now: the frames paused; tell the client
            // what was taken (`biased`: only once the read is pending).
            () = std::future::ready(()), if told != taken => {
                if !out.tell(taken, &mut told) {
                    return CloseReason::SlowReader;
                }
                continue;
            }
            _ = sleep_until(idle_deadline) => return CloseReason::IdleTimeout,
            () = out.queue.congestion() => {
                behind_deadline = out.queue.congested_since().map(|t| Instant::from_std(t) + slow_after);
                continue;
            }
            _ = sleep_until(behind_deadline.unwrap_or(idle_deadline)), if behind_deadline.is_some() => {
                if let Some(reason) = cut_if_behind(out.queue, kill, slow_after) {
                    return reason;
                }
                behind_deadline = out.queue.congested_since().map(|t| Instant::from_std(t) + slow_after);
                continue;
            }
            _ = sleep_until(next_ping) => {
                let buf = frames.read_buffer_mut();
                if buf.is_empty() {
                    *buf = BytesMut::new();
                }
                ping_seq += 1;
                if !out.send(&RelayFrame::Ping(ping_seq)) {
                    return CloseReason::SlowReader;
                }
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
        // A large frame grew the read buffer: give the memory back.
        let buf = frames.read_buffer_mut();
        if buf.is_empty() && buf.capacity() > READ_KEEP {
            *buf = BytesMut::new();
        }
        // The pings keep their pace whatever the connection sends: one that
        // only writes (a member alone in a quiet room) still hears from the
        // relay, and its own silence timer never fires on a live link. One
        // whose frames never stop (the timer above is then never reached)
        // is pinged here: a comparison, no timer on the hot path.
        last_rx = Instant::now();
        if last_rx >= next_ping {
            ping_seq += 1;
            if !out.send(&RelayFrame::Ping(ping_seq)) {
                return CloseReason::SlowReader;
            }
            next_ping = last_rx + ping_every;
        }
        stats.frames_in.fetch_add(1, Relaxed);
        // Exact encoded size (docs/PROTOCOL.md §3.1), prefix included.
        let size = LEN_PREFIX
            + match &frame {
                ClientFrame::Publish { to, payload } | ClientFrame::PublishBulk { to, payload } => {
                    4 + if to.is_some() { 9 } else { 1 } + 8 + payload.len()
                }
                ClientFrame::Hello(_) => 22,
                ClientFrame::Ping(_) | ClientFrame::Pong(_) => 12,
            };
        stats.bytes_in.fetch_add(size as u64, Relaxed);
        turn += size;
        // Over its rates the connection is read no more until they allow
        // it (TCP then slows the sender): a fairness limit, not a cut.
        let now = std::time::Instant::now();
        frame_bucket.charge(1.0, now);
        byte_bucket.charge(size as f64, now);
        let wait = frame_bucket.debt_wait(now).max(byte_bucket.debt_wait(now));
        if !wait.is_zero() {
            // What got in is told before the relay stops reading.
            if !out.tell(taken, &mut told) {
                return CloseReason::SlowReader;
            }
            if let Some(reason) =
                hold(shared, kill, writer.as_mut(), std::future::pending(), wait).await
            {
                return reason;
            }
            last_rx = Instant::now();
        }
        let (to, payload, bulk) = match frame {
            ClientFrame::Publish { to, payload } => (to, payload, false),
            ClientFrame::PublishBulk { to, payload } => (to, payload, true),
            ClientFrame::Ping(n) => {
                if !out.send(&RelayFrame::Pong(n)) {
                    return CloseReason::SlowReader;
                }
                continue;
            }
            ClientFrame::Pong(_) => continue,
            ClientFrame::Hello(_) => return CloseReason::BadFrame,
        };
        if payload.len() > max_payload(limits.max_frame) {
            return CloseReason::FrameTooLarge;
        }
        // Over the fan-out budget: stop reading from this connection
        // until it recovers (TCP pushes back on the sender).
        let wait = fanout_bucket.debt_wait(std::time::Instant::now());
        if !wait.is_zero() {
            if !out.tell(taken, &mut told) {
                return CloseReason::SlowReader;
            }
            if let Some(reason) =
                hold(shared, kill, writer.as_mut(), std::future::pending(), wait).await
            {
                return reason;
            }
            last_rx = Instant::now();
        }
        let len = payload.len();
        let Delivery {
            published,
            congested,
            backplane_behind,
        } = shared.hub.publish(room, conn_id, to, payload, bulk);
        match published {
            Published::Delivered(n) => {
                fanout_bucket.charge((len * n) as f64, std::time::Instant::now())
            }
            Published::NoSuchPeer => {
                if !out.error(ErrorCode::NoSuchPeer, "no such connection in the room") {
                    return CloseReason::SlowReader;
                }
            }
        }
        // Taken: said in batches, when the frames pause (the arm above),
        // every ACK_EVERY publishes, and before any wait below (what got
        // in is told before the relay stops reading).
        if out.acks {
            if bulk {
                taken.bulk += 1;
            } else {
                taken.publish += 1;
            }
            let untold = taken.publish + taken.bulk - told.publish - told.bulk;
            if untold >= ACK_EVERY && !out.tell(taken, &mut told) {
                return CloseReason::SlowReader;
            }
        }
        let here_only = to.is_some_and(|t| t >> 32 == conn_id >> 32);
        let may_hold = shared.hub.backplane().is_some() && !here_only;
        let room_held = may_hold.then(|| room.held_until()).flatten();
        let waits = congested.is_some() || backplane_behind || room_held.is_some();
        if (waits || shared.budget.over()) && !out.tell(taken, &mut told) {
            return CloseReason::SlowReader;
        }
        // Backpressure: a recipient past its high-water mark is
        // waited for (TCP then slows the publisher), at most until
        // it has been behind for the slow-reader timeout; then it
        // is cut and the room goes on.
        if let Some(behind) = congested {
            let left = behind
                .out
                .congested_since()
                .map_or(Duration::ZERO, |t| slow_after.saturating_sub(t.elapsed()));
            if let Some(reason) =
                hold(shared, kill, writer.as_mut(), behind.out.drained(), left).await
            {
                return reason;
            }
            cut_if_behind(&behind.out, &behind.kill, slow_after);
            last_rx = Instant::now();
        }
        // Across relays: the queue to the broker past its mark (a slow or
        // lost broker), or another relay's readers behind on this room.
        if backplane_behind {
            if let Some(bp) = shared.hub.backplane() {
                if let Some(reason) =
                    hold(shared, kill, writer.as_mut(), bp.below(), slow_after).await
                {
                    return reason;
                }
                last_rx = Instant::now();
            }
        }
        // Only with a backplane (no lock on one relay's hot path), and not
        // for what went only to connections here.
        if let Some(until) = may_hold.then(|| room.held_until()).flatten() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if let Some(reason) = hold(
                shared,
                kill,
                writer.as_mut(),
                room.wait_released(until),
                left,
            )
            .await
            {
                return reason;
            }
            last_rx = Instant::now();
        }
        // And the relay's memory: past the budget every publisher
        // waits for the writers (each slow one is cut in its time).
        while shared.budget.over() {
            if let Some(reason) = hold(
                shared,
                kill,
                writer.as_mut(),
                shared.budget.below(),
                slow_after,
            )
            .await
            {
                return reason;
            }
            last_rx = Instant::now();
        }
    }
}

/// Waits, reading nothing, for `until` (at most `max`) while the
/// connection's writer goes on; the reason to close if the connection
/// ended meanwhile.
async fn hold<W: Future<Output = ()>>(
    shared: &Shared,
    kill: &CancellationToken,
    writer: Pin<&mut W>,
    until: impl Future<Output = ()>,
    max: Duration,
) -> Option<CloseReason> {
    tokio::select! {
        biased;
        _ = kill.cancelled() => Some(if shared.shutdown.is_cancelled() {
            CloseReason::Shutdown
        } else {
            CloseReason::SlowReader
        }),
        () = writer => Some(CloseReason::IoError),
        () = until => None,
        () = tokio::time::sleep(max) => None,
    }
}

/// Cuts the connection of `queue` if it has been congested for `after`:
/// it is marked slow (its last words say so) and its task ended.
fn cut_if_behind(queue: &Outq, kill: &CancellationToken, after: Duration) -> Option<CloseReason> {
    let behind = queue
        .congested_since()
        .is_some_and(|t| t.elapsed() >= after);
    behind.then(|| {
        queue.mark_slow();
        kill.cancel();
        CloseReason::SlowReader
    })
}

/// Drains the queue into one buffer per flush. Ends when the queue is
/// closed and empty, on a write error, on a write that stalls (the reader
/// stopped reading: marked slow), or after writing the last frame handed
/// over on `last` (which goes ahead of anything still queued).
async fn write_loop(
    wr: &mut WriteHalf<Tls>,
    queue: &Outq,
    mut last: oneshot::Receiver<Bytes>,
    stuck: &AtomicBool,
) {
    let mut buf = BytesMut::new();
    loop {
        let more = tokio::select! {
            biased;
            l = &mut last => {
                if let Ok(bytes) = l {
                    if timeout(LAST_WORDS, write_all_flush(wr, &bytes)).await.is_err() {
                        stuck.store(true, Relaxed);
                    }
                }
                break;
            }
            more = queue.take(&mut buf, WRITE_BATCH) => more,
        };
        if !more {
            break;
        }
        let n = buf.len();
        match timeout(WRITE_STALL, write_all_flush(wr, &buf)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                queue.mark_slow();
                stuck.store(true, Relaxed);
                return;
            }
        }
        let empty = queue.written(n);
        // A small buffer is kept for the next batch; a burst's is given
        // back once nothing more waits (an idle connection does not keep
        // the size of its largest burst).
        buf.clear();
        if empty && buf.capacity() > WRITE_KEEP {
            buf = BytesMut::new();
        }
    }
    let _ = timeout(Duration::from_secs(1), wr.shutdown()).await;
}

async fn write_all_flush<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    w.write_all(data).await?;
    w.flush().await
}

/// A connection's share of its timeouts: `t` less up to a quarter of it,
/// from a hash of its address and the time it came.
fn spread_of(peer: SocketAddr) -> impl Fn(Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u16(peer.port());
    h.write_u32(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    );
    let share = (h.finish() % 1024) as u32;
    move |t: Duration| t - t / 4 * share / 1024
}

/// TLS record header: content type, version, body length.
const RECORD_HEADER: usize = 5;
/// The longest record body a client may announce (2^14 and the expansion
/// TLS allows).
const MAX_RECORD: usize = (1 << 14) + 2048;
/// The content type of a handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// Waits, holding nothing but the socket, until the client's first TLS
/// record (its ClientHello) is whole in the kernel's buffer; or until what
/// arrived cannot be one, or the client closed: OpenSSL then refuses it at
/// once. Bytes are only peeked at: OpenSSL reads them all.
async fn first_record(tcp: &TcpStream) -> std::io::Result<()> {
    let mut need = RECORD_HEADER;
    loop {
        let ready = tcp.ready(tokio::io::Interest::READABLE).await?;
        if ready.is_read_closed() || ready.is_error() {
            // Whatever came, nothing more will: OpenSSL ends it at once.
            return Ok(());
        }
        // Counted inside `try_io`, so that data arriving meanwhile is not
        // missed when the readiness is cleared.
        let counted = tcp.try_io(tokio::io::Interest::READABLE, || {
            let mut scratch = vec![std::mem::MaybeUninit::<u8>::uninit(); need];
            let n = socket2::SockRef::from(tcp).peek(&mut scratch)?;
            if n == 0 || n >= need {
                Ok(n)
            } else {
                Err(std::io::ErrorKind::WouldBlock.into())
            }
        });
        let have = match counted {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if have == 0 || need > RECORD_HEADER {
            return Ok(());
        }
        let mut head = [0u8; RECORD_HEADER];
        tcp.peek(&mut head).await?;
        let len = usize::from(u16::from_be_bytes([head[3], head[4]]));
        if head[0] != HANDSHAKE_RECORD || len == 0 || len > MAX_RECORD {
            return Ok(());
        }
        need = RECORD_HEADER + len;
    }
}

/// Sends one error frame directly (before the writer exists) and closes.
async fn last_words(tls: &mut Tls, code: ErrorCode, message: &str, max_frame: usize) {
    if let Some(bytes) = encode_error(code, message, max_frame) {
        let _ = timeout(LAST_WORDS, async {
            write_all_flush(tls, &bytes).await?;
            tls.shutdown().await
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_spread_over_their_last_quarter() {
        let t = Duration::from_secs(10);
        let mut seen = std::collections::BTreeSet::new();
        for port in 1_000..1_200u16 {
            let d = spread_of(SocketAddr::from(([127, 0, 0, 1], port)))(t);
            assert!(d <= t && d >= t - t / 4, "{d:?}");
            seen.insert(d.as_millis() / 250);
        }
        // Spread, not one value: every 250 ms band of the quarter is hit.
        assert!(seen.len() >= 9, "{seen:?}");
    }
}
