//! The terminal front end shared by `teamchat-admin --cli` and
//! `teamchat-member --cli`: reads lines from stdin (commands or messages),
//! prints events as text or, with `--json`, one JSON object per line.

//!
//! This file runs the loop (stdin lines in, driver updates out);
//! `setup.rs` sets up who we are, `commands.rs` reads what is typed,
//! `printer.rs` shows what happens.

mod commands;
mod printer;
mod setup;

pub use setup::{
    default_identity_path, load_or_create_identity, passphrase, read_roster, PASSPHRASE_ENV,
};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::crypto::PrivateKey;
use common::engine::{Command, Engine, Event};
use common::invite::RelayEndpoint;
use common::RoomId;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::api::{FileUpdate, Request, StopReason, Update};
use crate::connect::Trust;
use crate::driver;
use crate::files::FileOptions;
use commands::{parse, Parsed};
use printer::Printer;

/// Terminal options.
#[derive(Debug, Clone)]
pub struct Options {
    /// One JSON object per event on stdout.
    pub json: bool,
    /// Admin commands enabled.
    pub admin: bool,
    /// Where files go, limits and pace.
    pub files: FileOptions,
    /// The encrypted local history, or none.
    pub history: Option<crate::history::HistoryOptions>,
    /// Our identity, to delete a left room's history (with `history`).
    pub identity: Option<Arc<PrivateKey>>,
}

/// One room to run: its engine, the relays to reach it, and what the
/// app keeps beside it.
#[derive(Debug)]
pub struct RoomStart {
    /// The engine, admin or member, of this room.
    pub engine: Engine,
    /// The relays, in order of preference.
    pub relays: Vec<RelayEndpoint>,
    /// (Admin) the room's invite: printed when the room is opened by
    /// `/open`, and by `/invite`.
    pub invite: Option<String>,
    /// (Admin) where the room's kept state (bans, run number) is.
    pub admin_state: Option<PathBuf>,
    /// The room's name, when known before the room says it (the admin's).
    pub name: Option<String>,
}

/// Makes another room from what follows `/join` (member: the invite, then
/// the room password if any) or `/open` (admin: the room's name); the
/// error is said to the user.
pub type Opener = Box<dyn FnMut(&str) -> Result<RoomStart, String> + Send>;

/// A terminal holds this many rooms at most (as a window does).
pub const MAX_ROOMS: usize = 64;

/// `/leave` must be typed twice within this time: leaving forgets.
const CONFIRM_LEAVE: Duration = Duration::from_secs(30);

/// One room of the terminal.
struct Room {
    /// Tells this room's updates apart from those of a room left earlier
    /// with the same id.
    seq: u64,
    id: RoomId,
    /// Its name, once the room said it.
    name: String,
    invite: Option<String>,
    out: Printer,
    tx: Option<mpsc::Sender<Request>>,
    driver: tokio::task::JoinHandle<()>,
    connected: bool,
    joined: bool,
    /// Removed, denied or closed: the room's last word.
    ended: Option<&'static str>,
    /// Lines (and files offered) that came while it was not shown.
    unread: usize,
    /// Of those, the ones for us: mentions, private messages, key
    /// changes, join requests.
    for_you: usize,
    /// Confirmed `/leave`: its history is deleted once its driver ended.
    forget: bool,
}

impl Room {
    fn state(&self) -> &'static str {
        match (self.ended, self.connected, self.joined) {
            (Some(why), _, _) => why,
            (None, false, false) => "connecting",
            (None, false, true) => "reconnecting",
            (None, true, false) => "waiting to be let in",
            (None, true, true) => "connected",
        }
    }

    fn label(&self, index: usize) -> String {
        format!("#{} {}", index + 1, common::engine::printable(&self.name))
    }
}

/// The rooms of one terminal run, the one on screen, and what ended.
struct Rooms {
    opts: Options,
    trust: Trust,
    list: Vec<Room>,
    current: usize,
    next_seq: u64,
    /// Run-wide lines (the room list, notices about rooms away).
    top: Printer,
    /// All rooms' updates, each with its room's `seq`.
    updates: mpsc::Sender<(u64, Update)>,
    /// Drivers (and history deletions) of rooms that stopped.
    ending: Vec<tokio::task::JoinHandle<()>>,
    /// When `/leave` was first typed, and for which room.
    leave_asked: Option<(u64, std::time::Instant)>,
    /// A request for a room whose queue was full. Until it is handed over
    /// no more input is read, while the rooms' updates go on being shown:
    /// waiting on the queue instead would let a driver that waits for us
    /// to take its updates wait for ever (a burst of typed or piped lines).
    waiting: Option<(mpsc::Sender<Request>, Request)>,
}

impl Rooms {
    /// Starts `start`'s driver and shows the room.
    fn add(&mut self, start: RoomStart) {
        let id = start.engine.room();
        if let Some(i) = self.list.iter().position(|r| r.id == id) {
            self.top
                .note("you are in that room already: switched to it");
            self.switch(i);
            return;
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (up_tx, mut up_rx) = mpsc::channel(256);
        let driver = tokio::spawn(driver::run_with(
            start.engine,
            start.relays,
            self.trust.clone(),
            driver::Options {
                files: self.opts.files.clone(),
                history: self.opts.history.clone(),
                admin_state: start.admin_state,
                liveness: driver::Liveness::default(),
            },
            cmd_rx,
            up_tx,
        ));
        let seq = self.next_seq;
        self.next_seq += 1;
        let all = self.updates.clone();
        // Each room's updates into the one stream, tagged; a driver that
        // ended without saying why is said to have stopped.
        tokio::spawn(async move {
            let mut stopped = false;
            while let Some(u) = up_rx.recv().await {
                stopped |= matches!(u, Update::Stopped { .. });
                if all.send((seq, u)).await.is_err() {
                    return;
                }
            }
            if !stopped {
                let reason = StopReason::Ended;
                let _ = all.send((seq, Update::Stopped { reason })).await;
            }
        });
        let hex = hex::encode(id.0);
        let room = Room {
            seq,
            id,
            name: start.name.unwrap_or_else(|| format!("room {}", &hex[..8])),
            invite: start.invite,
            out: Printer::new(self.opts.json, Some(hex)),
            tx: Some(cmd_tx),
            driver,
            connected: false,
            joined: false,
            ended: None,
            unread: 0,
            for_you: 0,
            forget: false,
        };
        self.list.push(room);
        let index = self.list.len() - 1;
        if index > 0 {
            self.switch(index);
        }
    }

    /// Shows room `index`: what it kept while away is printed, its unread
    /// count is cleared.
    fn switch(&mut self, index: usize) {
        if index >= self.list.len() {
            return;
        }
        if index != self.current {
            if let Some(old) = self.list.get(self.current) {
                old.out.hold();
            }
        }
        self.current = index;
        let label = self.list[index].label(index);
        let room = &mut self.list[index];
        let (held, dropped) = room.out.release();
        let unread = std::mem::take(&mut room.unread);
        let for_you = std::mem::take(&mut room.for_you);
        room.out.emit(
            json!({"type": "switched", "name": room.name, "state": room.state()}),
            format!("──── {label} ({}) ────", room.state()),
        );
        if dropped > 0 {
            room.out.note(&format!(
                "({dropped} earlier lines of this room are not shown)"
            ));
        }
        if !held.is_empty() {
            let head = if unread > 0 {
                format!("new messages ({unread})")
            } else {
                "while you were away".into()
            };
            room.out.emit(
                serde_json::Value::Null,
                format!("──── {head} ────\n{}\n──── now ────", held.join("\n")),
            );
        }
        if unread + for_you > 0 {
            Self::unread_event(room);
        }
    }

    fn unread_event(room: &Room) {
        if room.out.json {
            room.out.emit(
                json!({"type": "unread", "name": room.name, "unread": room.unread, "for_you": room.for_you}),
                String::new(),
            );
        }
    }

    /// The room `what` names: its number in `/rooms`, else its name (any
    /// case), else the one name it starts.
    fn find(&self, what: &str) -> Result<usize, String> {
        if let Ok(n) = what.parse::<usize>() {
            return match n.checked_sub(1).filter(|i| *i < self.list.len()) {
                Some(i) => Ok(i),
                None => Err(format!("there is no room #{n}: /rooms lists them")),
            };
        }
        let lower = what.to_lowercase();
        let exact: Vec<usize> = (0..self.list.len())
            .filter(|i| self.list[*i].name.to_lowercase() == lower)
            .collect();
        let hits = if exact.is_empty() {
            (0..self.list.len())
                .filter(|i| self.list[*i].name.to_lowercase().starts_with(&lower))
                .collect()
        } else {
            exact
        };
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!(
                "no room is named {:?}: /rooms lists them",
                common::engine::printable(what)
            )),
            _ => Err(format!(
                "more than one room fits {:?}: use its number from /rooms",
                common::engine::printable(what)
            )),
        }
    }

    /// `/rooms`: one line per room.
    fn list_rooms(&self) {
        let rows: Vec<serde_json::Value> = self
            .list
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({"index": i + 1, "room": hex::encode(r.id.0), "name": r.name, "state": r.state(),
                       "unread": r.unread, "for_you": r.for_you, "current": i == self.current})
            })
            .collect();
        let text: Vec<String> = self
            .list
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut counts = String::new();
                if r.unread > 0 {
                    counts += &format!(", {} new", r.unread);
                }
                if r.for_you > 0 {
                    counts += &format!(", {} for you", r.for_you);
                }
                let mark = if i == self.current { "▸" } else { " " };
                format!("{mark} {} ({}{counts})", r.label(i), r.state())
            })
            .collect();
        self.top
            .emit(json!({"type": "rooms", "rooms": rows}), text.join("\n"));
    }

    /// One update of room `seq`. Returns why the run ends, when this was
    /// the last room and it stopped.
    fn update(&mut self, seq: u64, u: Update) -> Option<StopReason> {
        let index = self.list.iter().position(|r| r.seq == seq)?;
        let away = index != self.current;
        let label = self.list[index].label(index);
        let room = &mut self.list[index];
        // What is for us, said at once of a room away (text mode).
        let mut notice: Option<String> = None;
        let mut counted = false;
        match &u {
            Update::Connecting { .. } | Update::Disconnected { .. } => room.connected = false,
            Update::Secured { .. } => room.connected = true,
            Update::Engine(e) => match e {
                Event::Epoch { room_name, .. } => {
                    room.name = room_name.clone();
                    room.joined = true;
                }
                Event::Message {
                    from, mentions_me, ..
                } => {
                    counted = true;
                    if *mentions_me {
                        room.for_you += 1;
                        notice = Some(format!("» {label}: {} mentioned you", from.name));
                    }
                }
                Event::Private { from, .. } => {
                    counted = true;
                    room.for_you += 1;
                    notice = Some(format!("* {label}: a private message from {}", from.name));
                }
                Event::PendingApproval { name, .. } => {
                    room.for_you += 1;
                    notice = Some(format!("* {label}: {name} asks to join"));
                }
                Event::Kicked { reason } => {
                    room.ended = Some("removed");
                    notice = Some(format!("* {label}: removed from the room: {reason}"));
                }
                Event::Denied { reason } => {
                    room.ended = Some("denied");
                    notice = Some(format!("* {label}: join denied: {reason}"));
                }
                Event::Closed { reason } => {
                    room.ended = Some("closed");
                    notice = Some(format!("* {label}: room closed: {reason}"));
                }
                _ => {}
            },
            Update::File(FileUpdate::Offered { .. }) => counted = true,
            Update::KeyChanged(c) => {
                room.for_you += 1;
                notice = Some(format!("! {label}: {}'s key has changed", c.name));
            }
            Update::Stopped { .. } => {}
            _ => {}
        }
        if let Update::Stopped { reason } = &u {
            return self.stopped(index, reason.clone());
        }
        room.out.update(&u);
        if let Update::Engine(Event::Message {
            from,
            epoch,
            seq,
            mentions_me: true,
            ..
        }) = &u
        {
            room.out.emit(
                json!({"type": "mention", "from": from.name, "fingerprint": from.fingerprint.to_string(), "epoch": epoch, "seq": seq}),
                String::new(),
            );
        }
        if !away {
            // A room on screen counts nothing: what is said was seen.
            room.for_you = 0;
            return None;
        }
        if counted {
            room.unread += 1;
            if room.unread == 1 && notice.is_none() {
                notice = Some(format!("* new lines in {label}"));
            }
        }
        if counted || notice.is_some() {
            Self::unread_event(room);
        }
        if let (false, Some(text)) = (self.opts.json, notice) {
            self.top.note(&format!("{text} (/switch {})", index + 1));
        }
        None
    }

    /// Room `index` stopped: it is removed (its history deleted if it was
    /// left for good), another room is shown. Returns why the run ends
    /// when it was the last.
    fn stopped(&mut self, index: usize, reason: StopReason) -> Option<StopReason> {
        let mut room = self.list.remove(index);
        if self.leave_asked.is_some_and(|(seq, _)| seq == room.seq) {
            self.leave_asked = None;
        }
        let label = room.label(index);
        if room.out.away() {
            room.out.release();
            self.top.emit(
                json!({"type": "stopped", "room": hex::encode(room.id.0), "reason": reason.to_string(), "failure": reason.is_failure()}),
                format!("* {label} stopped: {reason}"),
            );
        } else {
            room.out.update(&Update::Stopped {
                reason: reason.clone(),
            });
        }
        let driver = room.driver;
        let app = if self.opts.admin { "admin" } else { "member" };
        let wipe = match (room.forget, &self.opts.history, &self.opts.identity) {
            (true, Some(h), Some(key)) => Some((h.clone(), key.clone(), room.id)),
            _ => None,
        };
        self.ending.push(tokio::spawn(async move {
            let _ = driver.await;
            // Once the driver ended nothing more is written for the room.
            if let Some((h, key, id)) = wipe {
                let done = tokio::task::spawn_blocking(move || {
                    crate::history::History::open(&h, &key, &id).and_then(|mut h| h.forget())?;
                    // Nor does the window reconnect it (its list of rooms
                    // is in the same database).
                    let mut book = crate::history::RoomBook::open(&h, &key, app)?;
                    let kept = book.read()?;
                    if !kept.damaged && kept.rooms.iter().any(|k| k.room == id) {
                        let rest: Vec<_> =
                            kept.rooms.into_iter().filter(|k| k.room != id).collect();
                        book.keep(&rest)?;
                    }
                    Ok::<_, crate::history::HistoryError>(())
                })
                .await;
                if let Ok(Err(e)) = done {
                    eprintln!("a left room's saved lines could not be deleted: {e}");
                }
            }
        }));
        if self.list.is_empty() {
            return Some(reason);
        }
        if index == self.current {
            // The room on screen is gone: the one in its place is shown.
            self.current = usize::MAX;
            self.switch(index.min(self.list.len() - 1));
        } else if index < self.current {
            self.current -= 1;
        }
        None
    }

    /// `/leave`, asked twice: the room on screen is left for good.
    fn leave(&mut self) {
        let Some(room) = self.list.get_mut(self.current) else {
            return;
        };
        let now = std::time::Instant::now();
        let confirmed = matches!(self.leave_asked, Some((seq, at)) if seq == room.seq && now - at < CONFIRM_LEAVE);
        if !confirmed {
            self.leave_asked = Some((room.seq, now));
            let what = if self.opts.admin {
                "this closes the room for everyone in it"
            } else {
                "the others are told you left"
            };
            let kept = if self.opts.history.is_some() {
                ", and its history on this computer is deleted"
            } else {
                ""
            };
            room.out.note(&format!(
                "/leave again to leave {} for good: {what}{kept} (/quit ends the app and keeps every room's history)",
                common::engine::printable(&room.name)
            ));
            return;
        }
        self.leave_asked = None;
        room.forget = true;
        if let Some(tx) = room.tx.take() {
            let waiting = take_waiting(&mut self.waiting, &tx);
            send_leave(tx, waiting);
        }
    }

    /// Every room is left (kept for next time): `/quit`, Ctrl-C, end of
    /// input.
    fn leave_all(&mut self) {
        for room in &mut self.list {
            if let Some(tx) = room.tx.take() {
                let waiting = take_waiting(&mut self.waiting, &tx);
                send_leave(tx, waiting);
            }
        }
    }

    /// The queue the waiting request is for has room (`permit`), or its
    /// room stopped (`None`): the request goes in, or is dropped with the
    /// room; either way input is read again.
    fn hand_over(&mut self, permit: Option<mpsc::OwnedPermit<Request>>) {
        let waiting = self.waiting.take();
        if let (Some(permit), Some((_, r))) = (permit, waiting) {
            permit.send(r);
        }
    }

    /// Hands `r` to a room's queue, or keeps it in `waiting` if the queue
    /// is full.
    fn hand(&mut self, tx: &mpsc::Sender<Request>, r: Request) {
        match tx.try_send(r) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(r)) => self.waiting = Some((tx.clone(), r)),
            // The room stopped: its end is being shown.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// The request waiting for `tx`'s room, if the one waiting is for it.
fn take_waiting(
    waiting: &mut Option<(mpsc::Sender<Request>, Request)>,
    tx: &mpsc::Sender<Request>,
) -> Option<Request> {
    if waiting.as_ref().is_some_and(|(w, _)| w.same_channel(tx)) {
        waiting.take().map(|(_, r)| r)
    } else {
        None
    }
}

/// Sends what was waiting for the room, then `Leave`, behind what its
/// queue holds, from a task of their own: the run goes on showing the
/// room's updates meanwhile (its driver may be waiting for that).
fn send_leave(tx: mpsc::Sender<Request>, waiting: Option<Request>) {
    tokio::spawn(async move {
        if let Some(r) = waiting {
            if tx.send(r).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Command::Leave.into()).await;
    });
}

/// Runs the terminal until `/quit`, end of input, or every room stopped:
/// `first` at once, and another room for each `/join` (member) or
/// `/open` (admin), made by `opener`. Returns why the last room stopped.
pub async fn run(first: RoomStart, mut opener: Opener, trust: Trust, opts: Options) -> StopReason {
    let (all_tx, mut all_rx) = mpsc::channel(256);
    let mut rooms = Rooms {
        top: Printer::new(opts.json, None),
        opts: opts.clone(),
        trust,
        list: Vec::new(),
        current: 0,
        next_seq: 0,
        updates: all_tx,
        ending: Vec::new(),
        leave_asked: None,
        waiting: None,
    };
    rooms.add(first);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut leaving = false;
    // One listener for the whole run: a new one per turn of the loop would
    // miss a Ctrl-C that comes while the loop is busy (the handler, once
    // installed, keeps the signal from ending the process).
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // Polled once now, so that the handler is in place before anything is
    // shown (the loop polls its branches in a random order); a Ctrl-C
    // before this point ends the process at once, as it always did.
    let _ = futures_util::FutureExt::now_or_never(&mut ctrl_c);
    let stop = loop {
        let waiting = rooms.waiting.as_ref().map(|(tx, _)| tx.clone());
        tokio::select! {
            _ = tick.tick() => rooms.list.iter_mut().for_each(|r| r.out.tick()),
            Some((seq, u)) = all_rx.recv() => {
                if let Some(stop) = rooms.update(seq, u) {
                    break stop;
                }
            }
            // Ctrl-C leaves every room cleanly, as `/quit` does: the
            // goodbyes go out and the history is written before the app
            // exits. A second Ctrl-C stops waiting for that.
            _ = &mut ctrl_c => {
                ctrl_c.set(tokio::signal::ctrl_c());
                if leaving {
                    rooms.top.note("interrupted again: leaving without waiting");
                    break StopReason::Left;
                }
                leaving = true;
                rooms.leave_all();
            }
            // The request that waited for room in its queue goes in.
            permit = reserve(waiting) => rooms.hand_over(permit.ok()),
            l = lines.next_line(), if stdin_open && rooms.waiting.is_none() => match l {
                Ok(Some(line)) => {
                    let Some(room) = rooms.list.get_mut(rooms.current) else { continue };
                    match parse(&line, &opts, &room.out) {
                        Parsed::Request(r) => {
                            // The list that answers is printed.
                            if matches!(r, Request::Contacts | Request::Verify(..)) {
                                room.out.show_contacts = true;
                            }
                            match room.tx.clone() {
                                Some(tx) => rooms.hand(&tx, r),
                                None => room.out.note("this room is being left: /switch to another (/rooms lists them)"),
                            }
                        }
                        Parsed::Local(text) => room.out.note(&text),
                        Parsed::Invite => room.out.note(room.invite.as_deref().unwrap_or("")),
                        Parsed::Quit => rooms.leave_all(),
                        Parsed::Rooms => rooms.list_rooms(),
                        Parsed::Switch(to) => match rooms.find(&to) {
                            Ok(i) => rooms.switch(i),
                            Err(why) => rooms.top.note(&why),
                        },
                        Parsed::Leave => rooms.leave(),
                        Parsed::Open(_) if rooms.list.len() >= MAX_ROOMS => rooms.top.note(&format!(
                            "a terminal holds {MAX_ROOMS} rooms at most: /leave one first"
                        )),
                        Parsed::Open(what) => match opener(&what) {
                            Ok(start) => {
                                let invite = start.invite.clone();
                                rooms.add(start);
                                if let (Some(invite), Some(room)) = (invite, rooms.list.last()) {
                                    room.out.emit(
                                        json!({"type": "invite", "invite": invite}),
                                        format!("invite (give this to members): {invite}"),
                                    );
                                }
                            }
                            Err(why) => rooms.top.note(&why),
                        },
                        Parsed::Nothing => {}
                    }
                }
                _ => {
                    // End of input: leave every room cleanly.
                    stdin_open = false;
                    rooms.leave_all();
                }
            },
        }
    };
    rooms.leave_all();
    let ending = std::mem::take(&mut rooms.ending);
    let drivers: Vec<_> = rooms.list.drain(..).map(|r| r.driver).collect();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        futures_util::future::join_all(ending).await;
        futures_util::future::join_all(drivers).await;
    })
    .await;
    stop
}

/// Waits for room in the queue `waiting` is for (never, if none waits).
async fn reserve(
    waiting: Option<mpsc::Sender<Request>>,
) -> Result<mpsc::OwnedPermit<Request>, mpsc::error::SendError<()>> {
    match waiting {
        Some(tx) => tx.reserve_owned().await,
        None => std::future::pending().await,
    }
}

/// The apps' exit status after [`run`]: a failure is also said on stderr
/// (the terminal or JSON stream on stdout has already shown it).
pub fn exit_status(stop: &StopReason) -> std::process::ExitCode {
    if stop.is_failure() {
        eprintln!("Error: {stop}");
    }
    stop.exit_code()
}

/// The rooms of one terminal: what a room away keeps and counts, finding
/// a room by number or name, and what is shown when a room stops.
#[cfg(test)]
mod tests {
    use common::engine::MemberInfo;
    use common::ids::Fingerprint;

    use super::printer::HELD_LINES;
    use super::*;

    fn rooms(names: &[&str]) -> Rooms {
        let (updates, _) = mpsc::channel(1);
        let mut rooms = Rooms {
            opts: Options {
                json: false,
                admin: false,
                files: FileOptions::default(),
                history: None,
                identity: None,
            },
            trust: Trust::Pinned,
            list: Vec::new(),
            current: 0,
            next_seq: 0,
            top: Printer::new(false, None),
            updates,
            ending: Vec::new(),
            leave_asked: None,
            waiting: None,
        };
        for (i, name) in names.iter().enumerate() {
            rooms.list.push(Room {
                seq: i as u64,
                id: RoomId([i as u8; 16]),
                name: (*name).into(),
                invite: None,
                out: Printer::new(false, None),
                tx: None,
                driver: tokio::spawn(async {}),
                connected: true,
                joined: true,
                ended: None,
                unread: 0,
                for_you: 0,
                forget: false,
            });
        }
        for room in &rooms.list[1..] {
            room.out.hold();
        }
        rooms
    }

    fn line(text: &str, mentions_me: bool) -> Update {
        Update::Engine(Event::Message {
            from: MemberInfo {
                name: "bob".into(),
                fingerprint: Fingerprint([7; 32]),
                safety_code: String::new(),
                admin: false,
            },
            text: text.into(),
            sent_at_ms: 0,
            epoch: 1,
            seq: 1,
            mentions_me,
        })
    }

    /// A line for a full queue waits, goes in once the queue has room,
    /// and is dropped if the room stops meanwhile: input is read again
    /// either way (a request left waiting for a closed queue kept the
    /// loop from reading, and spinning).
    #[tokio::test]
    async fn a_request_for_a_full_queue_waits_then_goes_in_or_is_dropped_with_its_room() {
        let mut rooms = rooms(&["ops"]);
        let (tx, mut rx) = mpsc::channel(1);
        rooms.hand(&tx, Request::History(1));
        assert!(rooms.waiting.is_none(), "the queue had room");
        rooms.hand(&tx, Request::History(2));
        assert!(rooms.waiting.is_some(), "the queue was full");
        assert!(matches!(rx.recv().await, Some(Request::History(1))));
        let waiting = rooms.waiting.as_ref().map(|(tx, _)| tx.clone());
        rooms.hand_over(reserve(waiting).await.ok());
        assert!(rooms.waiting.is_none());
        assert!(matches!(rx.recv().await, Some(Request::History(2))));

        rooms.hand(&tx, Request::History(3));
        rooms.hand(&tx, Request::History(4));
        assert!(rooms.waiting.is_some());
        drop(rx);
        let waiting = rooms.waiting.as_ref().map(|(tx, _)| tx.clone());
        let permit = reserve(waiting).await;
        assert!(permit.is_err(), "the room stopped");
        rooms.hand_over(permit.ok());
        assert!(rooms.waiting.is_none(), "dropped with its room");
    }

    #[tokio::test]
    async fn a_room_away_keeps_and_counts_its_lines_until_it_is_shown() {
        let mut r = rooms(&["ops", "design"]);
        assert!(r.update(1, line("first", false)).is_none());
        assert!(r.update(1, line("for you", true)).is_none());
        assert!(r.update(0, line("on screen", false)).is_none());
        assert_eq!((r.list[1].unread, r.list[1].for_you), (2, 1));
        assert_eq!((r.list[0].unread, r.list[0].for_you), (0, 0));
        assert!(r.list[1].out.away() && !r.list[0].out.away());
        r.switch(1);
        assert_eq!((r.list[1].unread, r.list[1].for_you), (0, 0));
        assert!(!r.list[1].out.away(), "shown: it prints as lines come");
        assert!(r.list[0].out.away(), "the room left keeps its lines");
        let (held, _) = r.list[0].out.release();
        assert!(held.is_empty(), "nothing came to ops meanwhile");
    }

    #[tokio::test]
    async fn a_room_away_keeps_only_its_newest_lines() {
        let r = rooms(&["ops", "design"]);
        for n in 0..HELD_LINES + 7 {
            r.list[1].out.note(&format!("line {n}"));
        }
        let (held, dropped) = r.list[1].out.release();
        assert_eq!((held.len(), dropped), (HELD_LINES, 7));
        assert_eq!(held[0], "line 7");
    }

    #[tokio::test]
    async fn a_room_is_found_by_number_by_name_or_by_the_start_of_one() {
        let r = rooms(&["ops", "Design", "design review", "ops night"]);
        assert_eq!(r.find("2"), Ok(1));
        assert!(r.find("0").is_err() && r.find("5").is_err());
        // An exact name wins over the longer names it starts.
        assert_eq!(r.find("design"), Ok(1));
        assert_eq!(r.find("ops"), Ok(0));
        assert_eq!(r.find("design r"), Ok(2));
        assert_eq!(r.find("ops n"), Ok(3));
        assert!(r.find("o").is_err(), "two rooms start with o");
        assert!(r.find("sales").is_err());
    }

    #[tokio::test]
    async fn when_the_room_on_screen_stops_the_next_is_shown_and_the_last_ends_the_run() {
        let mut r = rooms(&["ops", "design", "sales"]);
        r.switch(1);
        assert!(r.update(2, line("sales talk", false)).is_none());
        // A room away stops: the one on screen stays.
        assert!(r
            .update(
                0,
                Update::Stopped {
                    reason: StopReason::NoRelay
                }
            )
            .is_none());
        assert_eq!(r.list.len(), 2);
        assert_eq!(r.list[r.current].name, "design");
        // The room on screen stops: the one in its place is shown.
        assert!(r
            .update(
                1,
                Update::Stopped {
                    reason: StopReason::Left
                }
            )
            .is_none());
        assert_eq!(r.list[r.current].name, "sales");
        assert!(!r.list[r.current].out.away());
        assert_eq!(r.list[r.current].unread, 0);
        let last = r.update(
            2,
            Update::Stopped {
                reason: StopReason::Left,
            },
        );
        assert!(matches!(last, Some(StopReason::Left)));
        // Updates of a room gone are ignored.
        assert!(r.update(2, line("late", false)).is_none());
    }
}
