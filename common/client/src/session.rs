//! One connection's session: the loop that reads frames from the relay,
//! requests from the front end, finished file work and timers, hands each
//! to the engine, and carries out what the engine answers (frames out,
//! events to the front end and the history, file work to the transfers).

use std::time::Duration;

use common::engine::{Action, Command, Delivery, Engine, Event, FileEvent};
use common::wire::{ErrorCode, FrameCodec, FrameError, RelayFrame, DEFAULT_MAX_FRAME};
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_native_tls::TlsStream;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::admin_state::StateFile;
use crate::api::{Liveness, Request, Update};
use crate::journal::Journal;
use crate::now_ms;
use crate::outgoing::Outgoing;
use crate::transfers::{Transfers, CHUNK_BURST};

/// Silence from the relay after which the connection counts as dead, by
/// default ([`crate::api::Liveness`]): three pings' worth, so a ping or
/// pong lost and resent by TCP (a second or two over a 300 ms round trip)
/// is not taken for a dead link.
pub const RELAY_SILENCE: Duration = Duration::from_secs(6);

/// How often the app pings the relay, by default, whatever else it sends
/// or receives: the relay answers as soon as it reads the ping, so a live
/// link is never silent for long, and the relay hears from us at least
/// every [`common::wire::KEEPALIVE_SECS`] (a relay takes a version-2
/// client silent for three times that for a dead link). Pings go out on
/// the session's one-second tick.
pub const KEEPALIVE: Duration = Duration::from_secs(2);

/// After the silence bound has passed, how long the session still waits
/// for a frame already on its way before counting the link as lost.
const SILENCE_GRACE: Duration = Duration::from_secs(1);

/// Why the relay closed the connection, said to the user: from the error
/// frame it sent last (`None`: it gave no reason).
pub(crate) fn closed_by_relay(code: Option<ErrorCode>) -> String {
    match code {
        Some(ErrorCode::SlowReader) => {
            "you fell behind the room and the relay let you go (what was on its way to you is \
             lost; missed lines are reported once back)"
                .into()
        }
        Some(code) => format!("the relay closed the connection: {code}"),
        None => "the relay closed the connection".into(),
    }
}

/// How a session ended: we left, or the connection was lost (why, and
/// the relay's error code if it said).
pub(crate) enum SessionEnd {
    Left,
    Lost(String, Option<ErrorCode>),
}

/// What a session drives besides the engine and the connection, kept
/// across sessions.
pub(crate) struct Runtime {
    /// To the front end.
    pub(crate) updates: mpsc::Sender<Update>,
    /// Files in and out.
    pub(crate) transfers: Transfers,
    /// The local history's writer.
    pub(crate) journal: Journal,
    /// (Admin) where bans and the run number are kept.
    pub(crate) state_file: Option<StateFile>,
    /// How soon a dead link is found.
    pub(crate) liveness: Liveness,
    /// When the connection was lost, while we are not back in the room
    /// (monotonic, and wall-clock ms).
    pub(crate) away_since: Option<(tokio::time::Instant, u64)>,
    /// Our lines not yet taken by the relay: into the history once they are.
    pub(crate) own: std::collections::HashMap<u64, Event>,
}

/// One connection's life: the engine's frames, the front end's requests,
/// files and timers, until the connection is lost or we leave.
pub(crate) async fn session(
    engine: &mut Engine,
    stream: TlsStream<TcpStream>,
    requests: &mut mpsc::Receiver<Request>,
    rt: &mut Runtime,
) -> SessionEnd {
    let (r, w) = tokio::io::split(stream);
    let mut rx = FramedRead::new(r, FrameCodec::<RelayFrame>::new(DEFAULT_MAX_FRAME));
    let Liveness { keepalive, silence } = rt.liveness;
    // The pace the protocol promises the relay, whatever the setting.
    let keepalive =
        keepalive.min(Duration::from_secs(common::wire::KEEPALIVE_SECS) - Duration::from_secs(1));
    // Written by a task of its own: this loop never waits on the socket.
    // The writer pings the relay at that pace on its own, so a front end
    // slow to read our updates (which holds this loop) cannot make the
    // relay take a live link for a dead one.
    let (tx, mut writer) = Outgoing::start(
        FramedWrite::new(w, FrameCodec::<RelayFrame>::new(DEFAULT_MAX_FRAME)),
        keepalive,
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let first = engine.on_connected(now_ms());
    if let Err(e) = perform(first, &tx, rt).await {
        return SessionEnd::Lost(e, None);
    }
    let mut last_rx = tokio::time::Instant::now();
    // The link is alive while frames come in, or while the relay takes
    // our file chunks (an upload held back by a slow reader in the room:
    // the relay reads our ping only after the chunks before it, but our
    // chunks go on as it reads them).
    let mut alive = last_rx;
    let mut flushed = tx.flushed();
    // The silence bound passed once: counted as lost only if it passes
    // again with nothing in between (a loop that was busy, with frames
    // waiting, is not taken for a dead link).
    let mut suspect: Option<tokio::time::Instant> = None;
    // The relay says why before it closes a connection.
    let mut closing: Option<ErrorCode> = None;
    // The end of the stream, if a look ahead came upon it.
    let mut ended: Option<Ended> = None;
    // Its own handle: the loop lends `rt` out while updates go on.
    let updates = &rt.updates.clone();
    loop {
        let next_chunk = rt.transfers.next_chunk;
        let sending = rt.transfers.is_sending();
        let actions = tokio::select! {
            why = writer.finished() => return SessionEnd::Lost(why, None),
            _ = tokio::time::sleep_until(suspect.unwrap_or(alive + silence)) => {
                if suspect.is_some() {
                    return SessionEnd::Lost(format!("no traffic from the relay for {} s", silence.as_secs_f32()), None);
                }
                // Once more round the loop, for what may be waiting, then
                // a short grace.
                suspect = Some(tokio::time::Instant::now() + SILENCE_GRACE);
                Vec::new()
            }
            f = next_frame(&mut rx, &mut ended) => match f {
                Some(Ok(frame)) => {
                    last_rx = tokio::time::Instant::now();
                    alive = last_rx;
                    suspect = None;
                    // With the frames already read: messages before file
                    // chunks (each in order), so a line is not held up by
                    // the chunks that came in with it.
                    let mut batch = vec![frame];
                    read_ahead(&mut rx, &mut batch, &mut ended);
                    batch.sort_by_key(carries_chunk);
                    let mut actions = Vec::new();
                    for frame in batch {
                        if let RelayFrame::Error(e) = &frame {
                            closing = Some(e.code).filter(|c| c.is_fatal());
                        }
                        actions.extend(engine.handle_frame(now_ms(), frame));
                    }
                    actions
                }
                Some(Err(_)) | None if closing.is_some() => return SessionEnd::Lost(closed_by_relay(closing), closing),
                Some(Err(e)) => return SessionEnd::Lost(format!("relay connection failed: {e}"), None),
                None => return SessionEnd::Lost(closed_by_relay(None), None),
            },
            r = requests.recv() => match r {
                None => return SessionEnd::Left,
                Some(Request::Engine(Command::Leave)) => {
                    let actions = engine.handle_command(now_ms(), Command::Leave);
                    // What the user sees first (lines that fail); then the
                    // goodbye, which waits behind our chunks (bulk lane), a
                    // short while at most.
                    let (shown, sends): (Vec<Action>, Vec<Action>) =
                        actions.into_iter().partition(|a| !matches!(a, Action::Send(_)));
                    let _ = perform(shown, &tx, rt).await;
                    let until = tokio::time::Instant::now() + LAST_WORDS;
                    let _ = tokio::time::timeout_at(until, perform(sends, &tx, rt)).await;
                    // Lines on their way: the relay's acknowledgements, for
                    // as long.
                    while engine.pending_lines() > 0 {
                        match tokio::time::timeout_at(until, next_frame(&mut rx, &mut ended)).await {
                            Ok(Some(Ok(f @ RelayFrame::Ack(_)))) => {
                                let actions = engine.handle_frame(now_ms(), f);
                                let _ = perform(actions, &tx, rt).await;
                            }
                            Ok(Some(Ok(_))) => {}
                            _ => break,
                        }
                    }
                    // What the relay never confirmed is kept for the next
                    // start with the history, or given up without one.
                    let mut left = Vec::new();
                    if rt.journal.is_on() {
                        rt.journal.keep_outbox(engine);
                        engine.outbox_kept(&mut left);
                    } else {
                        engine.outbox_left(&mut left);
                    }
                    let _ = perform(left, &tx, rt).await;
                    tx.close(writer).await;
                    return SessionEnd::Left;
                }
                Some(Request::Engine(cmd)) => engine.handle_command(now_ms(), cmd),
                Some(Request::SendFile { path, to }) => rt.transfers.start(path, to),
                Some(Request::AcceptFile(t)) => {
                    rt.transfers.accept(t, updates).await;
                    Vec::new()
                }
                Some(Request::CancelFile(t)) => {
                    let mut actions = engine.handle_command(now_ms(), Command::CancelFile(t));
                    if let Some(u) = rt.transfers.forget(t, "cancelled") {
                        actions.retain(|a| !matches!(a, Action::File(FileEvent::Failed { .. })));
                        let _ = updates.send(Update::File(u)).await;
                    }
                    actions
                }
                Some(Request::History(n)) => {
                    rt.journal.show(n).await;
                    Vec::new()
                }
                Some(Request::ClearHistory) => {
                    rt.journal.clear().await;
                    Vec::new()
                }
                Some(Request::Contacts) => {
                    rt.journal.contacts(None).await;
                    Vec::new()
                }
                Some(Request::Verify(fp, on)) => {
                    rt.journal.contacts(Some((fp, on))).await;
                    Vec::new()
                }
            },
            Some(read) = rt.transfers.preparing.join_next(), if !rt.transfers.preparing.is_empty() => {
                rt.transfers.prepared(engine, read, updates).await
            }
            Some(done) = rt.transfers.saving.join_next(), if !rt.transfers.saving.is_empty() => {
                if let Some(u) = rt.transfers.saved(done, &rt.journal) {
                    let _ = updates.send(Update::File(u)).await;
                }
                Vec::new()
            }
            // Chunks as fast as the relay takes them (the writer's bulk
            // lane has room), and no faster than a pace if one is set.
            () = async {
                tokio::time::sleep_until(next_chunk).await;
                tx.bulk_room().await;
            }, if sending => {
                // As many as the lane has room for: a chunk that had to
                // wait for room would hold up this loop.
                let mut actions = Vec::new();
                for _ in 0..CHUNK_BURST.min(tx.bulk_room_now()) {
                    actions.extend(rt.transfers.send_next(engine, updates).await);
                    if !rt.transfers.is_sending()
                        || rt.transfers.next_chunk > tokio::time::Instant::now()
                    {
                        break;
                    }
                }
                actions
            }
            _ = tick.tick() => {
                let mut actions = engine.handle_tick(now_ms());
                // Quiet for a while: ask the relay, which answers as soon
                // as it reads the ping.
                let now = tokio::time::Instant::now();
                let f = tx.flushed();
                if f != flushed {
                    flushed = f;
                    alive = alive.max(now);
                    suspect = None;
                }
                for t in rt.transfers.stalled(updates).await {
                    actions.extend(engine.handle_command(now_ms(), Command::CancelFile(t)));
                }
                actions
            }
        };
        // (Admin) a ban to keep: written before the frames that announce it
        // go out, so a crash in between cannot forget it.
        if let Some(state) = engine.take_admin_state() {
            if let Some(f) = &rt.state_file {
                if let Err(e) = f.save(&state) {
                    let reason = format!("{e}: bans made now last only until this app closes");
                    let _ = rt.updates.send(Update::Warning(reason)).await;
                }
            }
        }
        if let Err(e) = perform(actions, &tx, rt).await {
            return SessionEnd::Lost(e, None);
        }
        // (Member) a newer admin run held: kept with the history, so that a
        // restart never goes back below it.
        rt.journal.keep_run_floor(engine.run_floor());
        // Our lines, kept so that a restart of the app loses none.
        rt.journal.keep_outbox(engine);
        // Transfers the driver dropped (disk error, over budget): the
        // engine forgets them too.
        for t in std::mem::take(&mut rt.transfers.to_cancel) {
            let actions = engine.handle_command(now_ms(), Command::CancelFile(t));
            if let Err(e) = perform(actions, &tx, rt).await {
                return SessionEnd::Lost(e, None);
            }
        }
    }
}

/// Time given to a goodbye that waits behind our file chunks.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// Most frames taken at once from what has already been read.
const READ_AHEAD: usize = 64;

/// How the relay's stream ended (an error, or `None` at its end).
type Ended = Option<FrameError>;

type Reader = FramedRead<tokio::io::ReadHalf<TlsStream<TcpStream>>, FrameCodec<RelayFrame>>;

/// The next frame, or how the stream ended (once a look ahead found it).
async fn next_frame(
    rx: &mut Reader,
    ended: &mut Option<Ended>,
) -> Option<Result<RelayFrame, FrameError>> {
    match ended.take() {
        Some(None) => None,
        Some(Some(e)) => Some(Err(e)),
        None => rx.next().await,
    }
}

/// Adds to `batch` the frames that are ready without waiting, up to
/// [`READ_AHEAD`]; an end met on the way is kept in `ended`.
fn read_ahead(rx: &mut Reader, batch: &mut Vec<RelayFrame>, ended: &mut Option<Ended>) {
    use futures_util::FutureExt;
    while batch.len() < READ_AHEAD {
        match rx.next().now_or_never() {
            None => break,
            Some(Some(Ok(f))) => batch.push(f),
            Some(Some(Err(e))) => {
                *ended = Some(Some(e));
                break;
            }
            Some(None) => {
                *ended = Some(None);
                break;
            }
        }
    }
}

/// Whether a frame carries a file chunk.
fn carries_chunk(f: &RelayFrame) -> bool {
    matches!(f, RelayFrame::Deliver { payload, .. } if common::wire::Envelope::is_chunk(payload))
}

/// Carries out the engine's actions: frames to the writer, file events to
/// the transfers, the rest to the history and the front end.
async fn perform(actions: Vec<Action>, tx: &Outgoing, rt: &mut Runtime) -> Result<(), String> {
    // A failed write ends the session, but every event is still shown (a
    // line's mark must not stay behind).
    let mut failed = None;
    for a in actions {
        match a {
            Action::Send(frame) => {
                if failed.is_none() {
                    failed = tx.send(frame).await.err();
                }
            }
            Action::File(f) => {
                if let Some(u) = rt.transfers.on_file(f) {
                    let _ = rt.updates.send(u).await;
                }
            }
            Action::Event(e) => show(rt, e).await,
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Shows an engine event (and keeps it in the history). Our own lines go
/// into the history once the relay took them; and when we are back in the
/// room after a lost connection, we say how long we were not.
pub(crate) async fn show(rt: &mut Runtime, e: Event) {
    match &e {
        Event::Epoch { .. } => {
            if let Some((at, since_ms)) = rt.away_since.take() {
                let away = at.elapsed();
                let _ = rt.updates.send(Update::Away { away, since_ms }).await;
            }
        }
        Event::Sent { id, .. } | Event::PrivateSent { id, .. } => {
            if rt.own.len() < common::engine::MAX_OUTBOX * 2 {
                rt.own.insert(*id, e.clone());
            }
        }
        Event::Delivery { id, state } => {
            if let Some(line) = rt.own.remove(id) {
                match state {
                    Delivery::Delivered => rt.journal.record(&line),
                    Delivery::Waiting(_) => {
                        rt.own.insert(*id, line);
                    }
                    Delivery::Failed(_) | Delivery::Unconfirmed(_) => {}
                }
            }
        }
        _ => rt.journal.record(&e),
    }
    // Contacts: a new epoch's members are met, a knock is checked; a key
    // change is said right after, before anything later is shown.
    let contacts = match &e {
        Event::Epoch { members, .. } => Some((members.clone(), None)),
        Event::PendingApproval {
            name, fingerprint, ..
        } => Some((Vec::new(), Some((name.clone(), *fingerprint)))),
        _ => None,
    };
    let _ = rt.updates.send(Update::Engine(e)).await;
    match contacts {
        Some((_, Some((name, fp)))) => rt.journal.check(name, fp).await,
        Some((members, None)) => rt.journal.meet(members).await,
        None => {}
    }
}
