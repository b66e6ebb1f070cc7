//! The room's local history as the driver sees it: a writer thread that
//! owns the [`History`] database, so that no SQLite call runs on the
//! driver's async task, between reading a frame and showing it.
//!
//! The driver hands entries over without waiting ([`Journal::remember`]);
//! the thread writes every entry that is waiting in one transaction
//! ([`History::add_all`]), so a burst of lines costs one commit, not one
//! each. Requests (show the last entries, clear, keep the admin run floor)
//! queue behind the entries handed over before them, and their answers go
//! to the front end as driver updates. A failing database is reported once
//! and closed: the room goes on without history.

use std::sync::mpsc as std_mpsc;

use common::engine::{Engine, Event, MemberInfo};
use common::Fingerprint;
use tokio::sync::{mpsc, oneshot};

use crate::api::Update;
use crate::history::{
    Entry, EntryKind, History, HistoryError, HistoryOptions, KeptLine, SHOW_ON_OPEN,
};

/// What the writer thread is asked to do, in order.
enum Job {
    Add(Entry),
    /// Answered on the channel, so that the session shows the answer in
    /// its place among the updates (a clear before the lines after it).
    Show(usize, oneshot::Sender<Vec<Update>>),
    Clear(oneshot::Sender<Vec<Update>>),
    KeepRunFloor(u64),
    KeepOutbox(Vec<KeptLine>),
    /// Contacts: meet members (answered with the key changes and the
    /// contacts), check a knock, mark verified, list.
    Meet(Vec<MemberInfo>, oneshot::Sender<Vec<Update>>),
    Check(String, Fingerprint, oneshot::Sender<Vec<Update>>),
    Verify(Fingerprint, bool, oneshot::Sender<Vec<Update>>),
    Contacts(oneshot::Sender<Vec<Update>>),
}

/// The handle the driver holds; with no history (off, or it could not be
/// opened) every call is a no-op and requests say there is none.
#[derive(Debug)]
pub(crate) struct Journal {
    jobs: Option<std_mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    updates: mpsc::Sender<Update>,
    /// The admin run floor last handed to the writer.
    kept_run_floor: u64,
    /// The outbox (its mark) last handed to the writer.
    kept_outbox: (usize, u64, usize),
    /// Our lines kept at the last stop, back in the outbox: the driver
    /// shows them (pending) once it runs.
    pub(crate) restored: Vec<Event>,
    /// Our own key (not a contact).
    me: Option<Fingerprint>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Entries hold message text: never in debug output.
        f.write_str(match self {
            Job::Add(_) => "Add",
            Job::Show(..) => "Show",
            Job::Clear(_) => "Clear",
            Job::KeepRunFloor(_) => "KeepRunFloor",
            Job::KeepOutbox(_) => "KeepOutbox",
            Job::Meet(..) => "Meet",
            Job::Check(..) => "Check",
            Job::Verify(..) => "Verify",
            Job::Contacts(_) => "Contacts",
        })
    }
}

const NO_HISTORY: &str = "no history for this room (off, or it could not be opened)";

impl Journal {
    /// Opens the room's history (on a blocking thread), shows its last
    /// entries, raises the engine's admin run floor to the one kept there,
    /// and starts the writer. A history that cannot be opened is reported
    /// and the journal is off.
    pub(crate) async fn open(
        opts: Option<&HistoryOptions>,
        engine: &mut Engine,
        updates: &mpsc::Sender<Update>,
    ) -> Journal {
        let mut journal = Journal {
            jobs: None,
            writer: None,
            updates: updates.clone(),
            kept_run_floor: 0,
            kept_outbox: (0, 0, 0),
            restored: Vec::new(),
            me: Some(engine.me().public().fingerprint()),
        };
        let Some(opts) = opts else { return journal };
        let (me, room, opts) = (engine.me(), engine.room(), opts.clone());
        let opened = tokio::task::spawn_blocking(move || {
            let hist = History::open(&opts, &me, &room)?;
            let loaded = hist.last(SHOW_ON_OPEN)?;
            let floor = hist.run_floor().ok();
            let outbox = hist.outbox().unwrap_or_default();
            Ok::<_, HistoryError>((hist, loaded, floor, outbox))
        })
        .await;
        match opened {
            Ok(Ok((hist, loaded, floor, outbox))) => {
                // The highest admin run held here before: never below it.
                if let Some(floor) = floor {
                    engine.raise_run_floor(floor);
                    journal.kept_run_floor = floor;
                }
                let _ = updates
                    .send(Update::History {
                        loaded,
                        requested: false,
                    })
                    .await;
                // Our lines the relay had not confirmed when the app last
                // stopped: back in the outbox, and shown as pending.
                journal.restored = restore(engine, outbox);
                journal.kept_outbox = engine.outbox_mark();
                let (tx, rx) = std_mpsc::channel();
                let out = updates.clone();
                match std::thread::Builder::new()
                    .name("teamchat-history".into())
                    .spawn({
                        let me = journal.me;
                        move || write_all(hist, rx, out, me)
                    }) {
                    Ok(handle) => {
                        journal.jobs = Some(tx);
                        journal.writer = Some(handle);
                    }
                    Err(e) => {
                        warn(updates, format!("{e}; the room works on without history")).await
                    }
                }
            }
            Ok(Err(e)) => warn(updates, format!("{e}; the room works on without history")).await,
            Err(_) => {}
        }
        journal
    }

    /// Hands an entry to the writer, without waiting.
    pub(crate) fn remember(&self, entry: Entry) {
        self.send(Job::Add(entry));
    }

    /// Remembers what of an event belongs in the history.
    pub(crate) fn record(&self, e: &Event) {
        if let Some(entry) = history_entry(e) {
            self.remember(entry);
        }
    }

    /// Shows the last `n` entries (after those handed over before).
    pub(crate) async fn show(&self, n: usize) {
        self.ask(|tx| Job::Show(n, tx)).await;
    }

    /// Deletes this room's history (after writing those handed over before).
    pub(crate) async fn clear(&self) {
        self.ask(Job::Clear).await;
    }

    /// Meets the members of a new epoch: key changes are said (before
    /// anything later), and the contacts follow.
    pub(crate) async fn meet(&self, members: Vec<MemberInfo>) {
        if self.jobs.is_some() {
            self.ask(|tx| Job::Meet(members, tx)).await;
        }
    }

    /// A join request: a key change is said with it, before the admin
    /// decides (the requester is not a contact until let in).
    pub(crate) async fn check(&self, name: String, fp: Fingerprint) {
        if self.jobs.is_some() {
            self.ask(|tx| Job::Check(name, fp, tx)).await;
        }
    }

    /// Answers [`crate::Request::Contacts`] and [`crate::Request::Verify`].
    pub(crate) async fn contacts(&self, verify: Option<(Fingerprint, bool)>) {
        if self.jobs.is_none() {
            let _ = self
                .updates
                .send(Update::Warning(
                    "no contacts: they are kept with the history, which is off".into(),
                ))
                .await;
            return;
        }
        match verify {
            Some((fp, on)) => self.ask(|tx| Job::Verify(fp, on, tx)).await,
            None => self.ask(Job::Contacts).await,
        }
    }

    /// Asks the writer and passes its answer on before anything that
    /// comes later (the session waits; the writer does the disk work).
    async fn ask(&self, job: impl FnOnce(oneshot::Sender<Vec<Update>>) -> Job) {
        let (tx, rx) = oneshot::channel();
        let answer = if self.send(job(tx)) {
            rx.await.ok()
        } else {
            None
        };
        match answer {
            Some(updates) => {
                for u in updates {
                    let _ = self.updates.send(u).await;
                }
            }
            None => self.no_history().await,
        }
    }

    /// (Member) keeps a newer admin run floor, so that a restart never
    /// goes back below it.
    pub(crate) fn keep_run_floor(&mut self, floor: u64) {
        if floor > self.kept_run_floor {
            self.kept_run_floor = floor;
            self.send(Job::KeepRunFloor(floor));
        }
    }

    /// Whether the history is kept (and with it the outbox).
    pub(crate) fn is_on(&self) -> bool {
        self.jobs.is_some()
    }

    /// Keeps the engine's outbox with the history when it changed, so
    /// that a restart of the app loses no line.
    pub(crate) fn keep_outbox(&mut self, engine: &Engine) {
        let mark = engine.outbox_mark();
        if mark == self.kept_outbox || self.jobs.is_none() {
            return;
        }
        self.kept_outbox = mark;
        let lines = engine
            .outbox()
            .into_iter()
            .map(|l| KeptLine {
                id: l.id,
                to: l.to.map(|f| f.0),
                text: l.text,
                typed_ms: l.typed_ms,
                first: l.first,
            })
            .collect();
        self.send(Job::KeepOutbox(lines));
    }

    /// Waits until every entry handed over is written (or the writer
    /// gave up), so that nothing said before leaving is lost.
    pub(crate) async fn finish(mut self) {
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }

    /// Whether the job reached a running writer.
    fn send(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }

    async fn no_history(&self) {
        let _ = self
            .updates
            .send(Update::Engine(Event::Error {
                reason: NO_HISTORY.into(),
            }))
            .await;
    }
}

/// Puts the lines kept at the last stop back into the engine's outbox and
/// shows them as pending (a private line's recipient by fingerprint until
/// the room says who it is).
fn restore(engine: &mut Engine, lines: Vec<KeptLine>) -> Vec<Event> {
    use common::engine::{MemberInfo, Outgoing};
    use common::ids::Fingerprint;
    let mut shown = Vec::new();
    for l in lines {
        let to = l.to.map(Fingerprint);
        let line = Outgoing::new(l.id, to, l.text.clone(), l.typed_ms, l.first);
        if !engine.restore_line(line) {
            continue;
        }
        let e = match to {
            None => Event::Sent {
                id: l.id,
                text: l.text,
                sent_at_ms: l.typed_ms,
            },
            Some(fp) => Event::PrivateSent {
                id: l.id,
                to: MemberInfo {
                    name: fp.short(),
                    fingerprint: fp,
                    safety_code: String::new(),
                    admin: false,
                },
                text: l.text,
                sent_at_ms: l.typed_ms,
            },
        };
        shown.push(e);
    }
    shown
}

async fn warn(updates: &mpsc::Sender<Update>, reason: String) {
    let _ = updates.send(Update::Warning(reason)).await;
}

/// The writer thread: each wake-up writes every entry waiting in one
/// transaction, then answers the requests in the order they came.
fn write_all(
    mut hist: History,
    jobs: std_mpsc::Receiver<Job>,
    updates: mpsc::Sender<Update>,
    me: Option<Fingerprint>,
) {
    let warn = |reason: String| {
        let _ = updates.blocking_send(Update::Warning(reason));
    };
    let mut batch: Vec<Entry> = Vec::new();
    // Keys whose change was said in this room (this run).
    let mut warned: std::collections::HashSet<Fingerprint> = std::collections::HashSet::new();
    while let Ok(first) = jobs.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Add(entry) => batch.push(entry),
                other => {
                    // Entries handed over before a request are written
                    // before it is answered. A failed write ends the
                    // writer: the waiting request hears there is no
                    // history.
                    if !flush(&mut hist, &mut batch, &warn) {
                        return;
                    }
                    let warning = |e: HistoryError| Update::Warning(e.to_string());
                    match other {
                        Job::Show(n, reply) => {
                            let _ = reply.send(vec![match hist.last(n) {
                                Ok(loaded) => Update::History {
                                    loaded,
                                    requested: true,
                                },
                                Err(e) => warning(e),
                            }]);
                        }
                        Job::Clear(reply) => {
                            let _ = reply.send(vec![match hist.clear() {
                                Ok(_) => Update::HistoryCleared,
                                Err(e) => warning(e),
                            }]);
                        }
                        Job::KeepRunFloor(floor) => {
                            if let Err(e) = hist.keep_run_floor(floor) {
                                warn(format!("{e}: the admin's run number is not kept"));
                            }
                        }
                        Job::KeepOutbox(lines) => {
                            if let Err(e) = hist.keep_outbox(&lines) {
                                warn(format!(
                                    "{e}: lines waiting to be sent are not kept across a restart"
                                ));
                            }
                        }
                        Job::Meet(members, reply) => {
                            let met = me
                                .as_ref()
                                .map(|me| hist.meet(&members, me, crate::now_ms()))
                                .unwrap_or_else(|| Ok((Vec::new(), None)));
                            let mut answer = Vec::new();
                            let changes = match met {
                                Ok((changes, failed)) => {
                                    if let Some(e) = failed {
                                        answer.push(Update::Warning(format!(
                                            "{e}: contacts are not kept (key changes are still said)"
                                        )));
                                    }
                                    // A change not settled is said once in
                                    // this room per run of the app.
                                    Ok(changes
                                        .into_iter()
                                        .filter(|c| warned.insert(c.fingerprint))
                                        .collect())
                                }
                                Err(e) => Err(e),
                            };
                            answer.extend(contact_answer(&hist, changes));
                            let _ = reply.send(answer);
                        }
                        Job::Check(name, fp, reply) => {
                            // Only the change: the contacts did not move.
                            let _ = reply.send(match hist.key_change(&name, &fp) {
                                Ok(change) => change.into_iter().map(Update::KeyChanged).collect(),
                                Err(e) => vec![Update::Warning(format!(
                                    "{e}: the requester's key is not checked against your contacts"
                                ))],
                            });
                        }
                        Job::Verify(fp, on, reply) => {
                            let _ = reply.send(match hist.set_verified(&fp, on) {
                                Ok(true) => {
                                    warned.remove(&fp);
                                    contact_answer(&hist, Ok(Vec::new()))
                                }
                                Ok(false) => vec![Update::Warning(format!(
                                    "{} is not someone met in a room: nothing to verify",
                                    fp.short()
                                ))],
                                Err(e) => vec![warning(e)],
                            });
                        }
                        Job::Contacts(reply) => {
                            let _ = reply.send(contact_answer(&hist, Ok(Vec::new())));
                        }
                        Job::Add(_) => {}
                    }
                }
            }
            next = jobs.try_recv().ok();
        }
        if !flush(&mut hist, &mut batch, &warn) {
            return;
        }
    }
}

/// The key changes found (or why not), then the contacts as they stand.
fn contact_answer(
    hist: &History,
    changes: Result<Vec<crate::history::KeyChange>, HistoryError>,
) -> Vec<Update> {
    let mut out: Vec<Update> = match changes {
        Ok(c) => c.into_iter().map(Update::KeyChanged).collect(),
        Err(e) => vec![Update::Warning(format!("{e}: contacts are not kept"))],
    };
    match hist.contacts() {
        Ok(all) => out.push(Update::Contacts(all)),
        Err(e) => out.push(Update::Warning(format!("{e}: contacts cannot be read"))),
    }
    out
}

/// Writes the waiting entries in one transaction. A failure is reported
/// and ends the history for this session (returns false).
fn flush(hist: &mut History, batch: &mut Vec<Entry>, warn: &impl Fn(String)) -> bool {
    if batch.is_empty() {
        return true;
    }
    let written = hist.add_all(batch);
    batch.clear();
    match written {
        Ok(()) => true,
        Err(e) => {
            warn(format!("{e}; history is off for this session"));
            false
        }
    }
}

/// What of an event goes into the history.
fn history_entry(e: &Event) -> Option<Entry> {
    let (at_ms, kind, who, fingerprint, text) = match e {
        Event::Message {
            from,
            text,
            sent_at_ms,
            ..
        } => (
            *sent_at_ms,
            EntryKind::Message,
            from.name.clone(),
            Some(from.fingerprint.0),
            text,
        ),
        Event::Sent {
            text, sent_at_ms, ..
        } => (*sent_at_ms, EntryKind::Own, String::new(), None, text),
        Event::Private {
            from,
            text,
            sent_at_ms,
            ..
        } => (
            *sent_at_ms,
            EntryKind::PrivateIn,
            from.name.clone(),
            Some(from.fingerprint.0),
            text,
        ),
        Event::PrivateSent {
            to,
            text,
            sent_at_ms,
            ..
        } => (
            *sent_at_ms,
            EntryKind::PrivateOut,
            to.name.clone(),
            Some(to.fingerprint.0),
            text,
        ),
        _ => return None,
    };
    Some(Entry {
        at_ms,
        kind,
        who,
        fingerprint,
        text: text.clone(),
        path: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::engine::member::Member;
    use common::engine::MemberConfig;
    use common::test_keys::shared;
    use common::{Fingerprint, RoomId};

    fn engine() -> Engine {
        let cfg = MemberConfig {
            room: RoomId([5; 16]),
            admin_pin: Fingerprint([6; 32]),
            name: "quinn".into(),
            password: None,
            min_run: 0,
        };
        Engine::Member(Box::new(Member::new(cfg, shared(0))))
    }

    fn entry(n: usize) -> Entry {
        Entry {
            at_ms: 1_790_000_000_000 + n as u64,
            kind: EntryKind::Message,
            who: "ada".into(),
            fingerprint: Some([7; 32]),
            text: format!("line {n}"),
            path: None,
        }
    }

    /// A burst handed over without waiting is all written, in order, before
    /// a later request is answered, and before `finish` returns.
    #[tokio::test]
    async fn a_burst_is_written_in_order_off_the_task_and_kept_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let opts = HistoryOptions {
            path: dir.path().join("h.sqlite3"),
            retention: Default::default(),
        };
        let (tx, mut rx) = mpsc::channel(64);
        let mut engine = engine();
        let journal = Journal::open(Some(&opts), &mut engine, &tx).await;
        assert!(matches!(
            rx.recv().await,
            Some(Update::History {
                requested: false,
                ..
            })
        ));
        for n in 0..500 {
            journal.remember(entry(n));
        }
        journal.show(500).await;
        let Some(Update::History {
            loaded,
            requested: true,
        }) = rx.recv().await
        else {
            panic!("no answer to the request");
        };
        let texts: Vec<String> = loaded.entries.iter().map(|e| e.text.clone()).collect();
        let want: Vec<String> = (0..500).map(|n| format!("line {n}")).collect();
        assert_eq!(texts, want, "every line, in the order handed over");

        journal.remember(entry(500));
        journal.finish().await;
        let me = engine.me();
        let reopened = History::open(&opts, &me, &RoomId([5; 16])).unwrap();
        let last = reopened.last(1).unwrap();
        assert_eq!(
            last.entries[0].text, "line 500",
            "written before finish returned"
        );
    }

    /// With no history, requests say so and entries go nowhere.
    #[tokio::test]
    async fn without_a_history_requests_say_there_is_none() {
        let (tx, mut rx) = mpsc::channel(8);
        let journal = Journal::open(None, &mut engine(), &tx).await;
        journal.remember(entry(1));
        journal.show(10).await;
        let Some(Update::Engine(Event::Error { reason })) = rx.recv().await else {
            panic!("no error");
        };
        assert_eq!(reason, NO_HISTORY);
    }
}
