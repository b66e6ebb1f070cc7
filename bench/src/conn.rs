//! Frames over one connection: the hello and welcome, buffered reading of
//! relay frames, writing client frames.
//!
//! Reading goes through one growable buffer per connection; a frame's length
//! is checked against the limit before its body is buffered
//! ([`wire::decode_frame`]).

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use wire::RoomId;
use wire::{
    decode_frame, encode_frame, ClientFrame, ConnId, FrameError, Hello, RelayError, RelayFrame,
    Welcome, DEFAULT_MAX_FRAME, MIN_MAX_FRAME, PROTOCOL_VERSION,
};

use crate::tls::{Target, TlsStream};

/// Reads [`RelayFrame`]s from a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    max: usize,
    chunk: usize,
}

impl<R> FrameReader<R> {
    /// A reader that accepts bodies up to `max` bytes and grows its buffer
    /// by at least `chunk` bytes per read.
    pub fn new(io: R, max: usize, chunk: usize) -> Self {
        FrameReader {
            io,
            buf: BytesMut::new(),
            max: max.max(MIN_MAX_FRAME),
            chunk: chunk.max(64),
        }
    }

    /// The stream itself (what was read but not decoded is dropped).
    pub fn into_inner(self) -> R {
        self.io
    }

    /// The underlying stream (to write on it).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.io
    }

    /// Splits the stream into a reader (keeping whatever was read but not yet
    /// decoded) and a writer.
    pub fn split(self) -> (FrameReader<ReadHalf<R>>, WriteHalf<R>)
    where
        R: AsyncRead + AsyncWrite,
    {
        let (r, w) = tokio::io::split(self.io);
        let reader = FrameReader {
            io: r,
            buf: self.buf,
            max: self.max,
            chunk: self.chunk,
        };
        (reader, w)
    }

    /// Sets the maximum body size (e.g. from the relay's welcome), never
    /// below the default so that a relay frame at its own limit still fits.
    pub fn set_max(&mut self, max: usize) {
        self.max = max.max(DEFAULT_MAX_FRAME);
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// The next frame, or `None` when the relay closed the stream cleanly
    /// between frames. Cancel-safe: bytes already read stay buffered.
    pub async fn next(&mut self) -> Result<Option<RelayFrame>> {
        loop {
            let want = match decode_frame::<RelayFrame>(&self.buf, self.max) {
                Ok((frame, used)) => {
                    self.buf.advance(used);
                    return Ok(Some(frame));
                }
                Err(FrameError::Incomplete { needed }) => needed.saturating_sub(self.buf.len()),
                Err(e) => return Err(anyhow!(e).context("decoding a relay frame")),
            };
            self.buf.reserve(want.max(self.chunk));
            let n = self
                .io
                .read_buf(&mut self.buf)
                .await
                .context("reading from the relay")?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                bail!(
                    "the relay closed the connection in the middle of a frame ({} bytes pending)",
                    self.buf.len()
                );
            }
        }
    }
}

/// One joined connection: a TLS stream with its frame reader.
pub type Conn = FrameReader<TlsStream>;

/// Encodes `frame` and writes it at once.
pub async fn send<W: AsyncWrite + Unpin>(io: &mut W, frame: &ClientFrame) -> Result<()> {
    let mut out = BytesMut::with_capacity(64);
    encode_frame(frame, DEFAULT_MAX_FRAME, &mut out).context("encoding a client frame")?;
    io.write_all(&out).await.context("writing to the relay")?;
    io.flush().await.context("writing to the relay")?;
    Ok(())
}

/// The relay refused a hello or ended a connection with an error frame.
#[derive(Debug, Clone)]
pub struct Refused(pub RelayError);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "relay error {:?} ({}): {}",
            self.0.code, self.0.code, self.0.message
        )?;
        if let Some(a) = self.advice() {
            write!(f, " [{a}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

impl Refused {
    /// Which relay flag to raise for a benchmark, if the refusal is a limit.
    pub fn advice(&self) -> Option<&'static str> {
        use wire::ErrorCode;
        match self.0.code {
            ErrorCode::RoomFull => Some("raise the relay's --max-room-conns"),
            ErrorCode::ServerFull => Some("raise the relay's --max-conns"),
            ErrorCode::TooManyFromAddress => Some("raise the relay's --max-conns-per-ip"),
            ErrorCode::RateLimited => Some("raise the relay's --rate-frames / --rate-bytes"),
            ErrorCode::SlowReader => Some("raise the relay's --queue-frames"),
            ErrorCode::Timeout => Some("raise the relay's --idle-timeout"),
            _ => None,
        }
    }
}

/// Connects, sends a hello for `room` and waits for the welcome (answering
/// pings meanwhile). A relay error frame comes back as a [`Refused`] error.
pub async fn join(target: &Target, room: RoomId, chunk: usize) -> Result<(Conn, Welcome)> {
    let stream = target.connect().await?;
    hello(stream, room, chunk).await
}

/// Sends a hello for `room` on an open stream and waits for the welcome
/// (see [`join`]).
pub async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    room: RoomId,
    chunk: usize,
) -> Result<(FrameReader<S>, Welcome)> {
    let mut conn = FrameReader::new(stream, DEFAULT_MAX_FRAME, chunk);
    let hello = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        room,
    });
    send(conn.get_mut(), &hello).await?;
    // Room changes that overtake the welcome (a relay race, see
    // `PEER_FRAMES_BEFORE_WELCOME`) are folded into its peer list.
    let mut early: Vec<(ConnId, bool)> = Vec::new();
    loop {
        match conn.next().await? {
            Some(RelayFrame::Welcome(mut w)) => {
                conn.set_max(w.max_frame as usize);
                for (id, joined) in early {
                    if joined {
                        if !w.peers.contains(&id) {
                            w.peers.push(id);
                        }
                    } else {
                        w.peers.retain(|p| *p != id);
                    }
                }
                return Ok((conn, w));
            }
            Some(RelayFrame::PeerJoined(id)) => {
                PEER_FRAMES_BEFORE_WELCOME.fetch_add(1, Ordering::Relaxed);
                early.push((id, true));
            }
            Some(RelayFrame::PeerLeft(id)) => {
                PEER_FRAMES_BEFORE_WELCOME.fetch_add(1, Ordering::Relaxed);
                early.push((id, false));
            }
            Some(RelayFrame::Error(e)) => return Err(Refused(e).into()),
            Some(RelayFrame::Ping(n)) => send(conn.get_mut(), &ClientFrame::Pong(n)).await?,
            Some(other) => bail!(
                "unexpected frame before the welcome: {}",
                frame_name(&other)
            ),
            None => bail!("the relay closed the connection before the welcome"),
        }
    }
}

/// Ends `conn` politely (TLS close_notify, then FIN), giving up after a
/// second so a stuck relay cannot hold the run.
pub async fn close(mut conn: Conn) {
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(1), conn.get_mut().shutdown()).await;
}

/// Closes many connections at once (see [`close`]).
pub async fn close_all(conns: Vec<Conn>) {
    futures_util::future::join_all(conns.into_iter().map(close)).await;
}

/// `PeerJoined`/`PeerLeft` frames that arrived before their connection's
/// `Welcome`, in this process. PROTOCOL.md §3 has the welcome first; a
/// non-zero count means the relay let a room change overtake it.
pub static PEER_FRAMES_BEFORE_WELCOME: AtomicU64 = AtomicU64::new(0);

/// How many peer frames overtook a welcome so far (see
/// [`PEER_FRAMES_BEFORE_WELCOME`]).
pub fn peer_frames_before_welcome() -> u64 {
    PEER_FRAMES_BEFORE_WELCOME.load(Ordering::Relaxed)
}

/// A frame's variant name, for messages (never its payload).
pub fn frame_name(frame: &RelayFrame) -> &'static str {
    match frame {
        RelayFrame::Welcome(_) => "Welcome",
        RelayFrame::Deliver { .. } => "Deliver",
        RelayFrame::PeerJoined(_) => "PeerJoined",
        RelayFrame::PeerLeft(_) => "PeerLeft",
        RelayFrame::Ping(_) => "Ping",
        RelayFrame::Pong(_) => "Pong",
        RelayFrame::Error(_) => "Error",
        RelayFrame::Ack(_) => "Ack",
    }
}

/// A fresh random room id (OpenSSL's CSPRNG; `common` is built without
/// its crypto feature here).
pub fn random_room() -> Result<RoomId> {
    let mut b = [0u8; RoomId::LEN];
    openssl::rand::rand_bytes(&mut b).context("drawing a random room id")?;
    Ok(RoomId(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn encoded(frames: &[RelayFrame]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for f in frames {
            encode_frame(f, DEFAULT_MAX_FRAME, &mut out).unwrap();
        }
        out.to_vec()
    }

    #[tokio::test]
    async fn reads_frames_split_across_reads() {
        let frames = vec![
            RelayFrame::PeerJoined(7),
            RelayFrame::Deliver {
                from: 7,
                payload: Bytes::from(vec![9u8; 5000]),
            },
            RelayFrame::Ping(3),
        ];
        let bytes = encoded(&frames);
        let (mut a, b) = tokio::io::duplex(97);
        let writer = tokio::spawn(async move {
            for piece in bytes.chunks(13) {
                a.write_all(piece).await.unwrap();
            }
        });
        let mut r = FrameReader::new(b, DEFAULT_MAX_FRAME, 64);
        for f in &frames {
            assert_eq!(r.next().await.unwrap().as_ref(), Some(f));
        }
        writer.await.unwrap();
        assert!(r.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn hello_folds_peer_frames_that_overtake_the_welcome() {
        let (client, mut relay) = tokio::io::duplex(4096);
        let room = RoomId([7; 16]);
        let script = tokio::spawn(async move {
            let mut hello = vec![0u8; 4 + 22];
            relay.read_exact(&mut hello).await.unwrap();
            let (frame, _) = decode_frame::<ClientFrame>(&hello, DEFAULT_MAX_FRAME).unwrap();
            assert_eq!(
                frame,
                ClientFrame::Hello(Hello {
                    version: PROTOCOL_VERSION,
                    room
                })
            );
            let frames = encoded(&[
                RelayFrame::PeerJoined(9),
                RelayFrame::PeerLeft(2),
                RelayFrame::Welcome(Welcome {
                    version: PROTOCOL_VERSION,
                    conn_id: 5,
                    peers: vec![1, 2],
                    max_frame: 4096,
                }),
            ]);
            relay.write_all(&frames).await.unwrap();
            relay
        });
        let before = peer_frames_before_welcome();
        let (_conn, welcome) = hello(client, room, 64).await.unwrap();
        assert_eq!(welcome.conn_id, 5);
        assert_eq!(welcome.peers, vec![1, 9]);
        assert!(peer_frames_before_welcome() >= before + 2);
        script.await.unwrap();
    }

    #[tokio::test]
    async fn hello_refused_is_a_refusal_with_advice() {
        let (client, mut relay) = tokio::io::duplex(4096);
        let frames = encoded(&[RelayFrame::Error(RelayError {
            code: wire::ErrorCode::RoomFull,
            message: "room is full".into(),
        })]);
        relay.write_all(&frames).await.unwrap();
        let err = hello(client, RoomId([0; 16]), 64).await.unwrap_err();
        let refused = err.downcast_ref::<Refused>().unwrap();
        assert_eq!(refused.advice(), Some("raise the relay's --max-room-conns"));
    }

    #[tokio::test]
    async fn eof_mid_frame_is_an_error() {
        let bytes = encoded(&[RelayFrame::Ping(1)]);
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&bytes[..bytes.len() - 1]).await.unwrap();
        drop(a);
        let mut r = FrameReader::new(b, DEFAULT_MAX_FRAME, 64);
        assert!(r.next().await.is_err());
    }

    #[tokio::test]
    async fn oversized_length_is_refused_before_reading_the_body() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let mut r = FrameReader::new(b, DEFAULT_MAX_FRAME, 64);
        let err = r.next().await.unwrap_err();
        assert!(format!("{err:#}").contains("exceeds"), "{err:#}");
    }
}
