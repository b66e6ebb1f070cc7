//! One client for three servers, so that the servers, not the clients, are
//! what a comparison measures: TeamChat's relay (its own frames), NATS core
//! (the text protocol: INFO in plain text, then the TLS upgrade; CONNECT,
//! SUB, PUB, MSG, PING/PONG) and MQTT 3.1.1 at QoS 0 (CONNECT, SUBSCRIBE,
//! PUBLISH). All three over the same TLS 1.3 client ([`crate::tls`]).
//!
//! A [`Subscriber`] yields the payloads delivered to it, answering the
//! server's keepalives on the way; a [`Publisher`] appends publish messages
//! to a buffer ([`Publisher::encode`]) and writes a whole buffer at once.
//! Every parser checks lengths before it buffers a body.

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use wire::RoomId;
use wire::{encode_frame, ClientFrame, RelayFrame, DEFAULT_MAX_FRAME};

use crate::conn::{join, send, FrameReader};
use crate::tls::{Target, TlsStream};

/// Largest message body any of the three parsers accepts.
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest NATS control line (INFO lines carry JSON).
const MAX_LINE: usize = 64 * 1024;
/// Read buffer growth.
const CHUNK: usize = 64 * 1024;

/// Which server speaks at the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// TeamChat's relay.
    Relay,
    /// NATS core (nats-server).
    Nats,
    /// MQTT 3.1.1, QoS 0 (mosquitto).
    Mqtt,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Relay => "relay",
            Proto::Nats => "nats",
            Proto::Mqtt => "mqtt",
        })
    }
}

/// Where messages go: a relay room, a NATS subject, an MQTT topic (all
/// derived from one random id per run).
#[derive(Debug, Clone)]
pub struct Topic {
    room: RoomId,
    name: String,
}

impl Topic {
    /// A fresh random topic.
    pub fn random() -> Result<Self> {
        let room = crate::conn::random_room()?;
        let name = room.to_string();
        Ok(Topic { room, name })
    }

    fn nats(&self) -> String {
        format!("bench.{}", self.name)
    }

    fn mqtt(&self) -> String {
        format!("bench/{}", self.name)
    }
}

/// A connection that receives payloads.
#[derive(Debug)]
pub struct Subscriber {
    proto: Proto,
    topic: Topic,
    relay: Option<FrameReader<ReadHalf<TlsStream>>>,
    io: Option<ReadHalf<TlsStream>>,
    /// The write side: answers keepalives, or becomes a [`Publisher`].
    writer: Option<WriteHalf<TlsStream>>,
    buf: BytesMut,
}

/// A connection that publishes; reading (and discarding) what the server
/// sends it happens in a task of its own.
#[derive(Debug)]
pub struct Publisher {
    proto: Proto,
    topic: Topic,
    /// The write side.
    pub writer: WriteHalf<TlsStream>,
    /// The read side, for a drain task.
    pub reader: Option<ReadHalf<TlsStream>>,
}

fn client_id() -> Result<String> {
    let mut b = [0u8; 8];
    openssl::rand::rand_bytes(&mut b).context("drawing a client id")?;
    Ok(format!(
        "lg{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

async fn nats_open(target: &Target) -> Result<(TlsStream, BytesMut)> {
    let mut tcp = target.connect_tcp().await?;
    // INFO comes in plain text before the TLS handshake.
    let mut line = Vec::with_capacity(1024);
    loop {
        let b = tcp.read_u8().await.context("reading NATS INFO")?;
        line.push(b);
        if line.ends_with(b"\r\n") {
            break;
        }
        if line.len() > MAX_LINE {
            bail!("NATS INFO line longer than {MAX_LINE} bytes");
        }
    }
    if !line.starts_with(b"INFO ") {
        bail!(
            "expected NATS INFO, got {:?}",
            String::from_utf8_lossy(&line)
        );
    }
    let mut io = target.handshake(tcp).await?;
    let connect = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"tls_required\":true,\"name\":\"{}\",\"lang\":\"rust\",\"version\":\"0.1\",\"protocol\":1,\"echo\":false}}\r\n",
        client_id()?
    );
    io.write_all(connect.as_bytes())
        .await
        .context("writing NATS CONNECT")?;
    Ok((io, BytesMut::with_capacity(CHUNK)))
}

async fn mqtt_open(target: &Target) -> Result<(TlsStream, BytesMut)> {
    let mut io = target.connect().await?;
    let id = client_id()?;
    let mut body = BytesMut::new();
    body.put_u16(4);
    body.put_slice(b"MQTT");
    body.put_u8(4); // 3.1.1
    body.put_u8(0x02); // clean session
    body.put_u16(0); // no keepalive: the runs are short and bounded
    body.put_u16(u16::try_from(id.len()).unwrap_or(u16::MAX));
    body.put_slice(id.as_bytes());
    let mut pkt = BytesMut::new();
    mqtt_header(0x10, body.len(), &mut pkt);
    pkt.put_slice(&body);
    io.write_all(&pkt).await.context("writing MQTT CONNECT")?;
    let mut buf = BytesMut::with_capacity(CHUNK);
    let (kind, body) = mqtt_next(&mut io, &mut buf).await?;
    if kind >> 4 != 2 || body.len() < 2 || body[1] != 0 {
        bail!("MQTT CONNECT refused (packet {kind:#x}, body {body:?})");
    }
    Ok((io, buf))
}

/// An MQTT fixed header: type and flags, then the remaining length.
fn mqtt_header(first: u8, len: usize, out: &mut BytesMut) {
    out.put_u8(first);
    let mut n = len;
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.put_u8(b);
        if n == 0 {
            break;
        }
    }
}

/// One MQTT packet from `buf`: (first byte, body), or None if incomplete.
fn mqtt_parse(buf: &mut BytesMut) -> Result<Option<(u8, Bytes)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let mut len = 0usize;
    let mut mult = 1usize;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len += usize::from(b & 0x7f) * mult;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        mult *= 128;
        if i > 4 {
            bail!("MQTT remaining length longer than four bytes");
        }
    }
    if len > MAX_BODY {
        bail!("MQTT packet of {len} bytes is over the {MAX_BODY}-byte limit");
    }
    if buf.len() < i + len {
        buf.reserve(i + len - buf.len());
        return Ok(None);
    }
    let first = buf[0];
    buf.advance(i);
    Ok(Some((first, buf.split_to(len).freeze())))
}

async fn mqtt_next<R: AsyncRead + Unpin>(io: &mut R, buf: &mut BytesMut) -> Result<(u8, Bytes)> {
    loop {
        if let Some(p) = mqtt_parse(buf)? {
            return Ok(p);
        }
        buf.reserve(CHUNK);
        if io
            .read_buf(buf)
            .await
            .context("reading from the MQTT server")?
            == 0
        {
            bail!("the MQTT server closed the connection");
        }
    }
}

/// What one NATS protocol message was.
#[derive(Debug, PartialEq, Eq)]
enum Nats {
    Msg(Bytes),
    Ping,
    Pong,
    Other,
}

/// One NATS protocol message from `buf`, or None if incomplete.
fn nats_parse(buf: &mut BytesMut) -> Result<Option<Nats>> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > MAX_LINE {
            bail!("NATS control line longer than {MAX_LINE} bytes");
        }
        return Ok(None);
    };
    let line = &buf[..end];
    if line.starts_with(b"MSG ") {
        let text = std::str::from_utf8(line).context("NATS MSG line is not UTF-8")?;
        let size: usize = text
            .split_ascii_whitespace()
            .last()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("NATS MSG line without a size: {text:?}"))?;
        if size > MAX_BODY {
            bail!("NATS message of {size} bytes is over the {MAX_BODY}-byte limit");
        }
        let total = end + 2 + size + 2;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(end + 2);
        let payload = buf.split_to(size).freeze();
        buf.advance(2);
        return Ok(Some(Nats::Msg(payload)));
    }
    let what = if line == b"PING" {
        Nats::Ping
    } else if line == b"PONG" {
        Nats::Pong
    } else if line.starts_with(b"-ERR") {
        bail!("NATS error: {}", String::from_utf8_lossy(line));
    } else {
        Nats::Other // +OK, INFO
    };
    buf.advance(end + 2);
    Ok(Some(what))
}

async fn nats_next<R: AsyncRead + Unpin>(io: &mut R, buf: &mut BytesMut) -> Result<Nats> {
    loop {
        if let Some(m) = nats_parse(buf)? {
            return Ok(m);
        }
        buf.reserve(CHUNK);
        if io
            .read_buf(buf)
            .await
            .context("reading from the NATS server")?
            == 0
        {
            bail!("the NATS server closed the connection");
        }
    }
}

/// Opens a connection and subscribes it to `topic`; returns once the server
/// confirmed (relay: welcome; NATS: PONG after SUB; MQTT: SUBACK), so a
/// message published afterwards reaches it.
pub async fn subscribe(proto: Proto, target: &Target, topic: &Topic) -> Result<Subscriber> {
    match proto {
        Proto::Relay => {
            let (conn, _welcome) = join(target, topic.room, CHUNK).await?;
            let (r, w) = conn.split();
            Ok(Subscriber {
                proto,
                topic: topic.clone(),
                relay: Some(r),
                io: None,
                writer: Some(w),
                buf: BytesMut::new(),
            })
        }
        Proto::Nats => {
            let (mut io, mut buf) = nats_open(target).await?;
            io.write_all(format!("SUB {} 1\r\nPING\r\n", topic.nats()).as_bytes())
                .await
                .context("writing NATS SUB")?;
            io.flush().await.context("writing NATS SUB")?;
            loop {
                match nats_next(&mut io, &mut buf).await? {
                    Nats::Pong => break,
                    Nats::Ping => io.write_all(b"PONG\r\n").await?,
                    _ => {}
                }
            }
            let (r, w) = tokio::io::split(io);
            Ok(Subscriber {
                proto,
                topic: topic.clone(),
                relay: None,
                io: Some(r),
                writer: Some(w),
                buf,
            })
        }
        Proto::Mqtt => {
            let (mut io, mut buf) = mqtt_open(target).await?;
            let t = topic.mqtt();
            let mut body = BytesMut::new();
            body.put_u16(1); // packet id
            body.put_u16(u16::try_from(t.len()).unwrap_or(u16::MAX));
            body.put_slice(t.as_bytes());
            body.put_u8(0); // QoS 0
            let mut pkt = BytesMut::new();
            mqtt_header(0x82, body.len(), &mut pkt);
            pkt.put_slice(&body);
            io.write_all(&pkt).await.context("writing MQTT SUBSCRIBE")?;
            loop {
                let (kind, body) = mqtt_next(&mut io, &mut buf).await?;
                if kind >> 4 == 9 {
                    if body.get(2).is_some_and(|c| *c >= 0x80) {
                        bail!("MQTT SUBSCRIBE refused");
                    }
                    break;
                }
            }
            let (r, w) = tokio::io::split(io);
            Ok(Subscriber {
                proto,
                topic: topic.clone(),
                relay: None,
                io: Some(r),
                writer: Some(w),
                buf,
            })
        }
    }
}

impl Subscriber {
    /// The write side as a publisher on the same connection (the server's
    /// keepalives then go unanswered: for runs shorter than its ping
    /// interval).
    pub fn take_publisher(&mut self) -> Option<Publisher> {
        let writer = self.writer.take()?;
        Some(Publisher {
            proto: self.proto,
            topic: self.topic.clone(),
            writer,
            reader: None,
        })
    }

    /// The next delivered payload; `None` when the server closed cleanly.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        match self.proto {
            Proto::Relay => {
                let conn = self
                    .relay
                    .as_mut()
                    .ok_or_else(|| anyhow!("no relay stream"))?;
                loop {
                    match conn.next().await? {
                        Some(RelayFrame::Deliver { payload, .. }) => return Ok(Some(payload)),
                        Some(RelayFrame::Ping(n)) => {
                            if let Some(w) = self.writer.as_mut() {
                                send(w, &ClientFrame::Pong(n)).await?;
                            }
                        }
                        Some(RelayFrame::Error(e)) => bail!("relay error: {e:?}"),
                        Some(_) => {}
                        None => return Ok(None),
                    }
                }
            }
            Proto::Nats => {
                let io = self.io.as_mut().ok_or_else(|| anyhow!("no stream"))?;
                loop {
                    match nats_next(io, &mut self.buf).await? {
                        Nats::Msg(p) => return Ok(Some(p)),
                        Nats::Ping => {
                            if let Some(w) = self.writer.as_mut() {
                                w.write_all(b"PONG\r\n").await?;
                                w.flush().await?;
                            }
                        }
                        _ => {}
                    }
                }
            }
            Proto::Mqtt => {
                let io = self.io.as_mut().ok_or_else(|| anyhow!("no stream"))?;
                loop {
                    let (kind, mut body) = mqtt_next(io, &mut self.buf).await?;
                    if kind >> 4 != 3 {
                        continue;
                    }
                    if body.len() < 2 {
                        bail!("MQTT PUBLISH too short");
                    }
                    let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
                    let skip = 2 + tlen + if (kind >> 1) & 3 > 0 { 2 } else { 0 };
                    if body.len() < skip {
                        bail!("MQTT PUBLISH shorter than its topic");
                    }
                    body.advance(skip);
                    return Ok(Some(body));
                }
            }
        }
    }
}

/// Opens a publishing connection for `topic`.
pub async fn publisher(proto: Proto, target: &Target, topic: &Topic) -> Result<Publisher> {
    let io = match proto {
        Proto::Relay => {
            let (conn, _welcome) = join(target, topic.room, CHUNK).await?;
            conn.into_inner()
        }
        Proto::Nats => {
            let (mut io, mut buf) = nats_open(target).await?;
            // Wait until the server has taken CONNECT.
            io.write_all(b"PING\r\n").await?;
            io.flush().await?;
            while nats_next(&mut io, &mut buf).await? != Nats::Pong {}
            io
        }
        Proto::Mqtt => mqtt_open(target).await?.0,
    };
    let (reader, writer) = tokio::io::split(io);
    Ok(Publisher {
        proto,
        topic: topic.clone(),
        writer,
        reader: Some(reader),
    })
}

impl Publisher {
    /// Appends one publish of `payload` to `out`.
    pub fn encode(&self, payload: &[u8], out: &mut BytesMut) -> Result<()> {
        match self.proto {
            Proto::Relay => encode_frame(
                &ClientFrame::Publish {
                    to: None,
                    payload: Bytes::copy_from_slice(payload),
                },
                DEFAULT_MAX_FRAME,
                out,
            )
            .context("encoding a publish frame"),
            Proto::Nats => {
                out.put_slice(b"PUB ");
                out.put_slice(self.topic.nats().as_bytes());
                out.put_slice(format!(" {}\r\n", payload.len()).as_bytes());
                out.put_slice(payload);
                out.put_slice(b"\r\n");
                Ok(())
            }
            Proto::Mqtt => {
                let t = self.topic.mqtt();
                mqtt_header(0x30, 2 + t.len() + payload.len(), out);
                out.put_u16(u16::try_from(t.len()).unwrap_or(u16::MAX));
                out.put_slice(t.as_bytes());
                out.put_slice(payload);
                Ok(())
            }
        }
    }

    /// Reads and discards whatever the server sends this connection, in a
    /// task of its own, so its socket buffer never fills.
    pub fn drain_in_background(&mut self) {
        if let Some(mut r) = self.reader.take() {
            tokio::spawn(async move {
                let mut sink = vec![0u8; 16 * 1024];
                while matches!(r.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    }

    /// Writes `buf` and empties it.
    pub async fn write(&mut self, buf: &mut BytesMut) -> Result<()> {
        self.writer
            .write_all(buf)
            .await
            .context("writing to the server")?;
        buf.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_parser_splits_messages_and_control_lines() {
        let mut b =
            BytesMut::from(&b"+OK\r\nMSG a.b 1 5\r\nhello\r\nPING\r\nMSG a.b 1 r 3\r\nxy"[..]);
        assert_eq!(nats_parse(&mut b).unwrap(), Some(Nats::Other));
        assert_eq!(
            nats_parse(&mut b).unwrap(),
            Some(Nats::Msg(Bytes::from_static(b"hello")))
        );
        assert_eq!(nats_parse(&mut b).unwrap(), Some(Nats::Ping));
        assert_eq!(nats_parse(&mut b).unwrap(), None, "incomplete body waits");
        b.put_slice(b"z\r\n");
        assert_eq!(
            nats_parse(&mut b).unwrap(),
            Some(Nats::Msg(Bytes::from_static(b"xyz")))
        );
        let mut bad = BytesMut::from(&b"MSG a 1 99999999\r\n"[..]);
        assert!(
            nats_parse(&mut bad).is_err(),
            "oversized body refused before buffering"
        );
        let mut err = BytesMut::from(&b"-ERR 'Authorization Violation'\r\n"[..]);
        assert!(nats_parse(&mut err).is_err());
    }

    #[test]
    fn mqtt_lengths_round_trip_and_are_bounded() {
        for len in [0usize, 127, 128, 16_383, 16_384, 300_000] {
            let mut out = BytesMut::new();
            mqtt_header(0x30, len, &mut out);
            out.put_slice(&vec![7u8; len]);
            let (first, body) = mqtt_parse(&mut out).unwrap().unwrap();
            assert_eq!((first, body.len()), (0x30, len));
            assert!(out.is_empty());
        }
        let mut big = BytesMut::from(&[0x30u8, 0xff, 0xff, 0xff, 0x7f][..]);
        assert!(mqtt_parse(&mut big).is_err());
        let mut short = BytesMut::from(&[0x30u8, 0x05, 1, 2][..]);
        assert!(mqtt_parse(&mut short).unwrap().is_none());
    }
}
