//! Files on their way, in and out: offering ours (read and hashed off the
//! driver's task), sending their chunks as fast as the relay takes them,
//! writing incoming chunks to temporary files, and saving complete ones
//! (asked first above the auto-accept size), with limits per sender and in
//! all. The engine seals and checks; this module does the disk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use common::engine::files::{chunk_count, short_id, CHUNK_SIZE};
use common::engine::{Action, Command, Engine, Event, FileEvent, FileSpec, MemberInfo, TransferId};
use tokio::sync::mpsc;

use crate::api::{FileUpdate, Update};
use crate::files::{FileOptions, Partial};
use crate::history::{Entry, EntryKind};
use crate::journal::Journal;
use crate::now_ms;

/// Time between two progress reports of one transfer.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// An incoming file with no chunk for this long is abandoned.
const FILE_STALL: Duration = Duration::from_secs(60);
/// A complete file nobody accepted is deleted after this long.
const ACCEPT_WAIT: Duration = Duration::from_secs(600);
/// Files saved without asking, per sender, per minute; more wait for Accept.
const AUTO_SAVES_PER_MINUTE: u32 = 20;
/// Incoming files (arriving, or complete and waiting for Accept) kept from
/// one sender; more are refused.
const WAITING_PER_SENDER: usize = 8;
/// Incoming files kept from everyone.
const WAITING_IN_ALL: usize = 32;
/// How far behind its schedule a paced sender may fall and still catch up.
const PACE_SLACK: Duration = Duration::from_millis(20);
/// Most chunks sent at one wake-up (1 MiB).
pub(crate) const CHUNK_BURST: usize = 16;
/// Pause while we hold no key to send a chunk with (someone was removed
/// and the new epoch has not arrived).
const KEY_WAIT: Duration = Duration::from_millis(200);

struct Sending {
    name: String,
    file: tokio::fs::File,
    size: u64,
    next: u32,
    chunks: u64,
    sent: u64,
    reported: tokio::time::Instant,
}

struct Receiving {
    from: MemberInfo,
    name: String,
    size: u64,
    partial: Option<Partial>,
    accepted: bool,
    complete: bool,
    last_data: tokio::time::Instant,
    reported: tokio::time::Instant,
    /// When it was complete (waiting for Accept).
    complete_at: Option<tokio::time::Instant>,
}

/// Files on their way, in and out, across the driver's sessions.
pub(crate) struct Transfers {
    opts: FileOptions,
    /// Transfers the driver dropped (disk error, over budget) that the
    /// engine must forget too.
    pub(crate) to_cancel: Vec<TransferId>,
    /// Files saved without asking per sender in the current minute.
    auto_saves: HashMap<common::ids::Fingerprint, (tokio::time::Instant, u32)>,
    /// Sent in turn, one chunk each, as the relay takes them (and no
    /// faster than `opts.rate` if set).
    sending: Vec<(TransferId, Sending)>,
    receiving: HashMap<TransferId, Receiving>,
    pub(crate) next_chunk: tokio::time::Instant,
    /// Files being opened and hashed off the driver's loop, to be offered
    /// when done.
    pub(crate) preparing: tokio::task::JoinSet<Prepared>,
    /// Complete files being flushed and renamed off the driver's loop.
    pub(crate) saving: tokio::task::JoinSet<Saving>,
}

/// A file being saved: the transfer, its sender, its name, and where it
/// went (or why not).
pub(crate) type Saving = (TransferId, MemberInfo, String, std::io::Result<PathBuf>);

/// A file read for offering: to whom, and what was learned.
pub(crate) type Prepared = (
    Option<common::ids::Fingerprint>,
    Result<crate::files::Described, String>,
);

impl Transfers {
    pub(crate) fn new(opts: FileOptions) -> Self {
        Transfers {
            opts,
            to_cancel: Vec::new(),
            auto_saves: HashMap::new(),
            sending: Vec::new(),
            receiving: HashMap::new(),
            next_chunk: tokio::time::Instant::now(),
            preparing: tokio::task::JoinSet::new(),
            saving: tokio::task::JoinSet::new(),
        }
    }

    /// Whether a file of ours is being sent.
    pub(crate) fn is_sending(&self) -> bool {
        !self.sending.is_empty()
    }

    /// Ends every file of ours (the connection is gone); their ids.
    pub(crate) fn drop_sending(&mut self) -> Vec<TransferId> {
        self.sending.drain(..).map(|(t, _)| t).collect()
    }

    /// Starts reading and hashing `path` (on a blocking thread: a large
    /// file takes a while, and chat goes on meanwhile); it is offered to
    /// the room, or to the member `to`, when [`Transfers::prepared`] gets it.
    pub(crate) fn start(
        &mut self,
        path: PathBuf,
        to: Option<common::ids::Fingerprint>,
    ) -> Vec<Action> {
        // Files being read count with those being sent: a script that
        // queues hundreds of files neither hashes them all at once nor
        // fills the blocking pool the chunk reads need.
        if self.preparing.len() + self.sending.len() >= common::engine::files::MAX_OUTGOING {
            return vec![Action::Event(Event::Error {
                reason: format!(
                    "already sending {} files: wait for one to finish",
                    common::engine::files::MAX_OUTGOING
                ),
            })];
        }
        let max = self.opts.max_size;
        self.preparing
            .spawn_blocking(move || (to, crate::files::describe(&path, max)));
        Vec::new()
    }

    /// A file was read: offers it, and queues its chunks.
    pub(crate) async fn prepared(
        &mut self,
        engine: &mut Engine,
        read: Result<Prepared, tokio::task::JoinError>,
        updates: &mpsc::Sender<Update>,
    ) -> Vec<Action> {
        let (to, d) = match read {
            Ok((to, Ok(d))) => (to, d),
            Ok((_, Err(why))) => return vec![Action::Event(Event::Error { reason: why })],
            Err(_) => {
                return vec![Action::Event(Event::Error {
                    reason: "a file could not be read".into(),
                })]
            }
        };
        let crate::files::Described {
            name,
            size,
            media_type,
            sha256,
            file,
        } = d;
        let file = tokio::fs::File::from_std(file);
        let transfer: TransferId = rand_transfer();
        let actions = engine.handle_command(
            now_ms(),
            Command::OfferFile(FileSpec {
                transfer,
                name: name.clone(),
                size,
                media_type,
                sha256,
                to,
            }),
        );
        let offered = actions.iter().any(
            |a| matches!(a, Action::File(FileEvent::Offered { transfer: t, .. }) if *t == transfer),
        );
        if offered {
            if size == 0 {
                // Nothing to send after the offer.
                let _ = updates
                    .send(Update::File(FileUpdate::Sent { transfer }))
                    .await;
            } else {
                self.sending.push((
                    transfer,
                    Sending {
                        name,
                        file,
                        size,
                        next: 0,
                        chunks: chunk_count(size, CHUNK_SIZE),
                        sent: 0,
                        reported: tokio::time::Instant::now(),
                    },
                ));
            }
        }
        actions
    }

    /// Seals and sends the next chunk of the first file in turn.
    pub(crate) async fn send_next(
        &mut self,
        engine: &mut Engine,
        updates: &mpsc::Sender<Update>,
    ) -> Vec<Action> {
        use tokio::io::AsyncReadExt;
        let now = tokio::time::Instant::now();
        if self.sending.is_empty() {
            return Vec::new();
        }
        if !engine.can_send(now_ms()) {
            self.next_chunk = now + KEY_WAIT;
            return Vec::new();
        }
        let (transfer, mut s) = self.sending.remove(0);
        if !engine.sending(&transfer) {
            // Cancelled or ended by the engine.
            return Vec::new();
        }
        let len = (s.size - s.sent).min(u64::from(CHUNK_SIZE)) as usize;
        let mut buf = vec![0u8; len];
        if let Err(e) = s.file.read_exact(&mut buf).await {
            let mut actions = engine.handle_command(now_ms(), Command::CancelFile(transfer));
            actions.retain(|a| !matches!(a, Action::File(FileEvent::Failed { .. })));
            let _ = updates
                .send(Update::File(FileUpdate::Failed {
                    transfer,
                    reason: format!("cannot read {}: {e}", s.name),
                }))
                .await;
            return actions;
        }
        let actions = engine.handle_command(
            now_ms(),
            Command::FileChunk {
                transfer,
                index: s.next,
                data: Bytes::from(buf),
            },
        );
        if actions.iter().any(
            |a| matches!(a, Action::File(FileEvent::Failed { transfer: t, .. }) if *t == transfer),
        ) {
            // The engine ended it (the chunk did not fit): its FileFailed
            // goes out through `perform`.
            self.sending.push((transfer, s));
            return actions;
        }
        s.next += 1;
        s.sent += len as u64;
        // A pace, if set, keeps to its schedule: timers fire late (they
        // tick in milliseconds), and a late chunk is made up by the next
        // ones, but never by more than PACE_SLACK's worth. Without one the
        // relay's flow control sets the pace.
        if let Some(rate) = self.opts.rate {
            let rate = rate.max(crate::files::MIN_FILE_RATE);
            let floor = now.checked_sub(PACE_SLACK).unwrap_or(now);
            self.next_chunk =
                self.next_chunk.max(floor) + Duration::from_secs_f64(len as f64 / rate as f64);
        }
        let done = u64::from(s.next) >= s.chunks;
        if done || now.duration_since(s.reported) >= PROGRESS_EVERY {
            s.reported = now;
            let _ = updates
                .send(Update::File(FileUpdate::Progress {
                    transfer,
                    done: s.sent,
                    total: s.size,
                    outgoing: true,
                }))
                .await;
        }
        if done {
            let _ = updates
                .send(Update::File(FileUpdate::Sent { transfer }))
                .await;
        } else if engine.sending(&transfer) {
            // Turns go round the first files only, as many as a receiver
            // takes from one sender at once: the others' chunks would
            // come before their offers are taken up, and be dropped.
            let at = self
                .sending
                .len()
                .min(common::engine::files::MAX_INCOMING_PER_SENDER - 1);
            self.sending.insert(at, (transfer, s));
        }
        actions
    }

    /// The user accepts an incoming file.
    pub(crate) async fn accept(&mut self, t: TransferId, updates: &mpsc::Sender<Update>) {
        let Some(r) = self.receiving.get_mut(&t) else {
            let _ = updates
                .send(Update::Engine(Event::Error {
                    reason: format!("no file offer {} is waiting", short_id(&t)),
                }))
                .await;
            return;
        };
        r.accepted = true;
        if r.complete {
            self.save(t);
        }
    }

    /// Moves a complete, verified file to its final name, on a blocking
    /// thread (the file is flushed to disk first, which can take a while;
    /// chat goes on meanwhile). [`Transfers::saved`] reports it.
    fn save(&mut self, t: TransferId) {
        let Some(mut r) = self.receiving.remove(&t) else {
            return;
        };
        let Some(partial) = r.partial.take() else {
            return;
        };
        let dir = self.opts.download_dir.clone();
        self.saving.spawn_blocking(move || {
            let saved = partial.save(&dir, &r.name);
            (t, r.from, r.name, saved)
        });
    }

    /// A file was saved (or could not be): remembered in the history, and
    /// the update to show.
    pub(crate) fn saved(
        &mut self,
        done: Result<Saving, tokio::task::JoinError>,
        journal: &Journal,
    ) -> Option<FileUpdate> {
        let (t, from, name, saved) = done.ok()?;
        Some(match saved {
            Ok(path) => {
                journal.remember(Entry {
                    at_ms: now_ms(),
                    kind: EntryKind::File,
                    who: from.name.clone(),
                    fingerprint: Some(from.fingerprint.0),
                    text: name,
                    path: Some(path.display().to_string()),
                });
                FileUpdate::Saved { transfer: t, path }
            }
            Err(e) => FileUpdate::Failed {
                transfer: t,
                reason: format!(
                    "cannot save {name} in {}: {e}",
                    self.opts.download_dir.display()
                ),
            },
        })
    }

    /// Drops a transfer (its partial file is deleted); the update to show,
    /// if it was one of ours.
    pub(crate) fn forget(&mut self, t: TransferId, reason: &str) -> Option<FileUpdate> {
        let known = if self.receiving.remove(&t).is_some() {
            true
        } else {
            let before = self.sending.len();
            self.sending.retain(|(x, _)| *x != t);
            before != self.sending.len()
        };
        known.then(|| FileUpdate::Failed {
            transfer: t,
            reason: reason.into(),
        })
    }

    /// Bytes of incoming files not saved yet (their temporary files).
    fn pending_bytes(&self) -> u64 {
        self.receiving.values().map(|r| r.size).sum()
    }

    /// Incoming files that stopped arriving, and complete ones nobody
    /// accepted in time: dropped (their temporary files deleted), with the
    /// updates to show and their ids for the engine.
    pub(crate) async fn stalled(&mut self, updates: &mpsc::Sender<Update>) -> Vec<TransferId> {
        let now = tokio::time::Instant::now();
        let stale: Vec<(TransferId, &'static str)> = self
            .receiving
            .iter()
            .filter_map(|(t, r)| match r.complete_at {
                None if now.duration_since(r.last_data) >= FILE_STALL => {
                    Some((*t, "no data for 60 s; the sender stopped or left"))
                }
                Some(at) if now.duration_since(at) >= ACCEPT_WAIT => {
                    Some((*t, "not accepted within 10 minutes: deleted"))
                }
                _ => None,
            })
            .collect();
        let mut ids = Vec::with_capacity(stale.len());
        for (t, why) in stale {
            if let Some(u) = self.forget(t, why) {
                let _ = updates.send(Update::File(u)).await;
            }
            ids.push(t);
        }
        ids
    }

    /// Whether a file of `size` from `from` is saved without asking.
    fn auto_accept(&mut self, from: &common::ids::Fingerprint, size: u64) -> bool {
        if size > self.opts.auto_accept {
            return false;
        }
        let now = tokio::time::Instant::now();
        if self.auto_saves.len() > 1024 {
            self.auto_saves
                .retain(|_, (at, _)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let slot = self.auto_saves.entry(*from).or_insert((now, 0));
        if now.duration_since(slot.0) >= Duration::from_secs(60) {
            *slot = (now, 0);
        }
        slot.1 += 1;
        slot.1 <= AUTO_SAVES_PER_MINUTE
    }

    /// Does the engine's file work; the update to show, if any. After a
    /// disk error the transfer is dropped here; the engine's later file
    /// events for it find nothing and are ignored.
    pub(crate) fn on_file(&mut self, e: FileEvent) -> Option<Update> {
        let now = tokio::time::Instant::now();
        match e {
            FileEvent::Offered {
                transfer,
                name,
                size,
                to,
            } => Some(Update::File(FileUpdate::Sending {
                transfer,
                name,
                size,
                to,
            })),
            FileEvent::Incoming {
                from,
                transfer,
                name,
                size,
                media_type,
                private,
                ..
            } => {
                // Files arriving or waiting for Accept, per sender and in
                // all: each is a temporary file and a row on screen, and a
                // tiny file costs its sender one signature.
                let from_them = self
                    .receiving
                    .values()
                    .filter(|r| r.from.fingerprint == from.fingerprint)
                    .count();
                if from_them >= WAITING_PER_SENDER || self.receiving.len() >= WAITING_IN_ALL {
                    self.to_cancel.push(transfer);
                    return Some(Update::Warning(format!(
                        "{} offered {name}, but too many files from {} are already waiting or arriving: refused",
                        from.name,
                        if from_them >= WAITING_PER_SENDER { "them" } else { "everyone" }
                    )));
                }
                // Files not saved yet share one budget on disk: twice the
                // largest file.
                let budget = self.opts.max_size.saturating_mul(2);
                if self.pending_bytes().saturating_add(size) > budget {
                    self.to_cancel.push(transfer);
                    return Some(Update::Warning(format!(
                        "{} offered {name}, but {} of files are already waiting or arriving: refused",
                        from.name,
                        crate::files::human_size(self.pending_bytes())
                    )));
                }
                let partial = match Partial::create(&self.opts.download_dir) {
                    Ok(p) => p,
                    Err(e) => {
                        self.to_cancel.push(transfer);
                        return Some(Update::File(FileUpdate::Failed {
                            transfer,
                            reason: format!(
                                "cannot write to {}: {e}",
                                self.opts.download_dir.display()
                            ),
                        }));
                    }
                };
                let accepted = self.auto_accept(&from.fingerprint, size);
                self.receiving.insert(
                    transfer,
                    Receiving {
                        from: from.clone(),
                        name: name.clone(),
                        size,
                        partial: Some(partial),
                        accepted,
                        complete: false,
                        last_data: now,
                        reported: now,
                        complete_at: None,
                    },
                );
                Some(Update::File(FileUpdate::Offered {
                    from,
                    transfer,
                    name,
                    size,
                    media_type,
                    accepted,
                    private,
                }))
            }
            FileEvent::Data { transfer, data, .. } => {
                let r = self.receiving.get_mut(&transfer)?;
                r.last_data = now;
                let written = match r
                    .partial
                    .as_mut()
                    .map(|p| p.write(&data).map(|()| p.written()))
                {
                    Some(Ok(w)) => w,
                    Some(Err(e)) => {
                        let reason = format!("cannot write {}: {e}", r.name);
                        self.receiving.remove(&transfer);
                        self.to_cancel.push(transfer);
                        return Some(Update::File(FileUpdate::Failed { transfer, reason }));
                    }
                    None => return None,
                };
                if written == r.size || now.duration_since(r.reported) >= PROGRESS_EVERY {
                    r.reported = now;
                    return Some(Update::File(FileUpdate::Progress {
                        transfer,
                        done: written,
                        total: r.size,
                        outgoing: false,
                    }));
                }
                None
            }
            FileEvent::Done { transfer } => {
                let r = self.receiving.get_mut(&transfer)?;
                r.complete = true;
                r.complete_at = Some(now);
                if r.accepted {
                    self.save(transfer);
                    None
                } else {
                    // Waits for Accept without holding a file descriptor.
                    if let Some(p) = r.partial.as_mut() {
                        p.close();
                    }
                    Some(Update::File(FileUpdate::Ready { transfer }))
                }
            }
            FileEvent::Failed { transfer, reason } => {
                self.forget(transfer, &reason).map(Update::File)
            }
        }
    }
}

/// A fresh random transfer id.
fn rand_transfer() -> TransferId {
    common::crypto::random_array()
}
