//! What the terminal shows: each driver update as a line of text or, with
//! `--json`, one JSON object; file transfers with progress bars and a
//! table; member lists; and the lookups of names typed in commands.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io::Write;

use serde_json::json;

use common::engine::files::short_id;
use common::engine::{Event, MemberInfo, TransferId};
use common::ids::Fingerprint;

use crate::api::{FileUpdate, Update};
use crate::files::human_size;

pub(super) struct Printer {
    pub(super) json: bool,
    pub(super) members: Vec<MemberInfo>,
    /// The bans last listed (admin), for `/unban`.
    pub(super) bans: Vec<common::engine::Ban>,
    /// Transfers seen, for `/accept`, `/cancel` and `/files`.
    pub(super) files: HashMap<TransferId, FileRow>,
    /// Transfers ended so far (orders the ended rows).
    pub(super) ended: u64,
    /// Progress bars (text mode; drawn on stderr, hidden when it is not a
    /// terminal).
    pub(super) bars: indicatif::MultiProgress,
    /// Our lines the relay has not taken yet, by id.
    pub(super) pending: HashMap<u64, PendingLine>,
    /// The last line that could not be sent, for `/resend`.
    pub(super) failed: Option<(Option<Fingerprint>, String)>,
    /// Everyone met so far (the driver's last word), for `/verify`.
    pub(super) contacts: Vec<crate::history::Contact>,
    /// `/contacts` or `/verify` asked: the next list is printed.
    pub(super) show_contacts: bool,
    /// When the bell last rang (at most once every 2 s).
    pub(super) last_bell: Option<std::time::Instant>,
    /// The room this printer shows (its id in hex), named in every JSON
    /// object: with several rooms a script tells them apart.
    pub(super) room: Option<String>,
    /// Text mode, a room not on screen: what it would print is kept here
    /// (the newest [`HELD_LINES`]) and printed when it is switched to.
    held: RefCell<Option<VecDeque<String>>>,
    /// Lines of a room away that no longer fit in `held`.
    dropped: Cell<usize>,
}

/// The lines a room away keeps for when it is shown again.
pub(super) const HELD_LINES: usize = 500;

/// One of our lines on its way (text mode says more about it only if it
/// is slow to go, or fails).
pub(super) struct PendingLine {
    to: Option<Fingerprint>,
    text: String,
    since: std::time::Instant,
    /// Said to be pending (waiting, or slow): its delivery is said too.
    told: bool,
}

/// A line not taken by the relay this long after it was typed is shown as
/// pending.
pub(super) const SLOW_LINE: std::time::Duration = std::time::Duration::from_secs(2);

/// A line's first words, to name it in a note.
fn gist(text: &str) -> String {
    let text = common::engine::printable(text);
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("\"{}…\"", &text[..i]),
        None => format!("\"{text}\""),
    }
}

pub(super) struct FileRow {
    name: String,
    size: u64,
    state: String,
    bar: Option<indicatif::ProgressBar>,
    /// The transfer ended (sent, saved or failed), and in which order.
    ended: Option<u64>,
}

/// Ended transfers `/files` keeps listing; older ones are forgotten.
pub(super) const ENDED_ROWS: usize = 100;

impl Printer {
    /// A printer for one room, on screen.
    pub(super) fn new(json: bool, room: Option<String>) -> Printer {
        Printer {
            json,
            members: Vec::new(),
            bans: Vec::new(),
            files: HashMap::new(),
            ended: 0,
            bars: indicatif::MultiProgress::new(),
            pending: HashMap::new(),
            failed: None,
            contacts: Vec::new(),
            show_contacts: false,
            last_bell: None,
            room,
            held: RefCell::new(None),
            dropped: Cell::new(0),
        }
    }

    pub(super) fn emit(&self, mut value: serde_json::Value, text: String) {
        if self.json {
            if let (Some(room), Some(obj)) = (&self.room, value.as_object_mut()) {
                obj.insert("room".into(), room.clone().into());
            }
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{value}");
            let _ = stdout.flush();
            return;
        }
        // Names, texts and reasons come from other people and the relay:
        // no control or invisible formatting characters reach the terminal.
        let safe: Vec<String> = text.lines().map(common::engine::printable).collect();
        let text = safe.join("\n");
        if let Some(held) = self.held.borrow_mut().as_mut() {
            if held.len() == HELD_LINES {
                held.pop_front();
                self.dropped.set(self.dropped.get() + 1);
            }
            held.push_back(text);
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
        let _ = stdout.flush();
    }

    /// Whether this room is away (text mode: its lines are kept, not
    /// printed).
    pub(super) fn away(&self) -> bool {
        self.held.borrow().is_some()
    }

    /// Text mode: keeps what this room prints from now on, for when it is
    /// shown again (JSON prints every room as it comes).
    pub(super) fn hold(&self) {
        if !self.json {
            self.held.borrow_mut().get_or_insert_with(VecDeque::new);
        }
    }

    /// Prints again as lines come; returns what was kept while away, and
    /// how many older lines did not fit.
    pub(super) fn release(&self) -> (Vec<String>, usize) {
        let held = self.held.borrow_mut().take().unwrap_or_default();
        (held.into(), self.dropped.replace(0))
    }

    /// The transfer whose id starts with `id` (at least 4 hex characters).
    pub(super) fn transfer(&self, id: &str) -> Option<TransferId> {
        let id = id.to_ascii_lowercase();
        if id.len() < 4 {
            return None;
        }
        let hits: Vec<&TransferId> = self
            .files
            .keys()
            .filter(|t| hex::encode(t).starts_with(&id))
            .collect();
        match hits.as_slice() {
            [one] => Some(**one),
            _ => None,
        }
    }

    pub(super) fn file_list(&self) -> String {
        if self.files.is_empty() {
            return "no files yet".into();
        }
        let mut rows: Vec<String> = self
            .files
            .iter()
            .map(|(t, f)| {
                format!(
                    "{}  {}  {}  {}",
                    short_id(t),
                    f.name,
                    human_size(f.size),
                    f.state
                )
            })
            .collect();
        rows.sort();
        rows.join("\n")
    }

    pub(super) fn file_name(&self, t: &TransferId) -> String {
        self.files
            .get(t)
            .map(|f| f.name.clone())
            .unwrap_or_else(|| short_id(t))
    }

    pub(super) fn set_state(&mut self, t: &TransferId, state: &str) {
        if let Some(f) = self.files.get_mut(t) {
            f.state = state.into();
            if let Some(bar) = f.bar.take() {
                bar.finish_and_clear();
            }
        }
    }

    /// Marks a transfer as ended, and forgets the oldest ended ones beyond
    /// [`ENDED_ROWS`] (a long session does not grow the list for ever).
    pub(super) fn end(&mut self, t: &TransferId, state: &str) {
        self.set_state(t, state);
        self.ended += 1;
        let n = self.ended;
        if let Some(f) = self.files.get_mut(t) {
            f.ended = Some(n);
        }
        let mut ended: Vec<(u64, TransferId)> = self
            .files
            .iter()
            .filter_map(|(id, f)| f.ended.map(|n| (n, *id)))
            .collect();
        if ended.len() > ENDED_ROWS {
            ended.sort_unstable();
            for (_, id) in &ended[..ended.len() - ENDED_ROWS] {
                self.files.remove(id);
            }
        }
    }

    pub(super) fn bar(&mut self, t: &TransferId, done: u64, total: u64) {
        if self.json || self.away() {
            return;
        }
        let bars = &self.bars;
        if let Some(f) = self.files.get_mut(t) {
            let bar = f.bar.get_or_insert_with(|| {
                let b = bars.add(indicatif::ProgressBar::new(total));
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "  {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                ) {
                    b.set_style(style.progress_chars("=> "));
                }
                b.set_message(common::engine::printable(&f.name));
                b
            });
            bar.set_position(done);
        }
    }

    pub(super) fn file(&mut self, u: &FileUpdate) {
        match u {
            FileUpdate::Sending {
                transfer,
                name,
                size,
                to,
            } => {
                self.files.insert(
                    *transfer,
                    FileRow {
                        name: name.clone(),
                        size: *size,
                        state: "sending".into(),
                        bar: None,
                        ended: None,
                    },
                );
                self.emit(
                    json!({"type": "file_sending", "transfer": hex::encode(transfer), "name": name, "size": size, "to": to.as_ref().map(|m| m.fingerprint.to_string())}),
                    format!(
                        "* sending {name} ({}){} as {}; /cancel {} stops it",
                        human_size(*size),
                        to.as_ref().map(|m| format!(" privately to {}", m.name)).unwrap_or_default(),
                        short_id(transfer),
                        short_id(transfer)
                    ),
                );
            }
            FileUpdate::Offered {
                from,
                transfer,
                name,
                size,
                media_type,
                accepted,
                private,
            } => {
                self.files.insert(
                    *transfer,
                    FileRow {
                        name: name.clone(),
                        size: *size,
                        state: if *accepted {
                            "receiving".into()
                        } else {
                            "offered".into()
                        },
                        bar: None,
                        ended: None,
                    },
                );
                let id = short_id(transfer);
                let only = if *private {
                    " (privately, to you only)"
                } else {
                    ""
                };
                self.emit(
                    json!({"type": "file_offer", "transfer": hex::encode(transfer), "from": from.name, "fingerprint": from.fingerprint.to_string(), "name": name, "size": size, "media_type": media_type, "accepted": accepted, "private": private}),
                    if *accepted {
                        format!("* {} sends {name} ({}, {media_type}){only} [{id}]: saving it", from.name, human_size(*size))
                    } else {
                        format!("* {} offers {name} ({}, {media_type}){only} [{id}]: /accept {id} to save it, /cancel {id} to refuse", from.name, human_size(*size))
                    },
                );
            }
            FileUpdate::Progress {
                transfer,
                done,
                total,
                outgoing,
            } => {
                if self.json {
                    self.emit(json!({"type": "file_progress", "transfer": hex::encode(transfer), "done": done, "total": total, "outgoing": outgoing}), String::new());
                } else {
                    self.bar(transfer, *done, *total);
                }
            }
            FileUpdate::Sent { transfer } => {
                self.end(transfer, "sent");
                let name = self.file_name(transfer);
                self.emit(
                    json!({"type": "file_sent", "transfer": hex::encode(transfer)}),
                    format!("* {name} sent"),
                );
            }
            FileUpdate::Ready { transfer } => {
                self.set_state(transfer, "complete, waiting for /accept");
                let (name, id) = (self.file_name(transfer), short_id(transfer));
                self.emit(
                    json!({"type": "file_ready", "transfer": hex::encode(transfer)}),
                    format!("* {name} arrived complete and verified: /accept {id} to save it"),
                );
            }
            FileUpdate::Saved { transfer, path } => {
                self.end(transfer, &format!("saved to {}", path.display()));
                let name = self.file_name(transfer);
                self.emit(json!({"type": "file_saved", "transfer": hex::encode(transfer), "path": path.display().to_string()}), format!("* {name} saved to {}", path.display()));
            }
            FileUpdate::Failed { transfer, reason } => {
                self.end(transfer, &format!("failed: {reason}"));
                let name = self.file_name(transfer);
                self.emit(json!({"type": "file_failed", "transfer": hex::encode(transfer), "reason": reason}), format!("! file {name}: {reason}; nothing was saved"));
            }
        }
    }

    pub(super) fn history(&self, loaded: &crate::history::Loaded, requested: bool) {
        use crate::history::EntryKind;
        if loaded.entries.is_empty() && loaded.skipped == 0 {
            if requested {
                self.note("no history kept for this room yet");
            }
            return;
        }
        self.emit(
            json!({"type": "history_begin", "count": loaded.entries.len(), "skipped": loaded.skipped}),
            format!("──── earlier messages ({}) ────", loaded.entries.len()),
        );
        for e in &loaded.entries {
            let kind = match e.kind {
                EntryKind::Message => "message",
                EntryKind::Own => "own",
                EntryKind::PrivateIn => "private",
                EntryKind::PrivateOut => "private_sent",
                EntryKind::File => "file",
            };
            let text = common::engine::printable(&e.text);
            let shown = match e.kind {
                EntryKind::Message => format!("<{}> {text}", e.who),
                EntryKind::Own => format!("<me> {text}"),
                EntryKind::PrivateIn => format!("<{} → me, private> {text}", e.who),
                EntryKind::PrivateOut => format!("<me → {}, private> {text}", e.who),
                EntryKind::File => format!(
                    "* {} sent {text}, saved to {}",
                    e.who,
                    e.path.as_deref().unwrap_or("?")
                ),
            };
            self.emit(
                json!({"type": "history", "kind": kind, "who": e.who, "text": e.text, "at_ms": e.at_ms, "path": e.path}),
                format!("[{}] {shown}", crate::history::clock_utc(e.at_ms)),
            );
        }
        if loaded.skipped > 0 {
            self.emit(
                json!({"type": "warning", "reason": format!("{} history entries failed their check (damaged or tampered with) and were not shown", loaded.skipped)}),
                format!("! warning: {} history entries failed their check (damaged or tampered with) and were not shown", loaded.skipped),
            );
        }
        self.emit(json!({"type": "history_end"}), "──── now ────".into());
    }

    fn track(&mut self, id: u64, to: Option<Fingerprint>, text: &str) {
        self.pending.insert(
            id,
            PendingLine {
                to,
                text: text.to_string(),
                since: std::time::Instant::now(),
                told: false,
            },
        );
    }

    /// One of our lines moved on. Text mode: a line that was said to wait
    /// is said delivered; a failed one is always said, with `/resend`.
    fn delivery(&mut self, id: u64, state: &common::engine::Delivery) {
        use common::engine::Delivery;
        let (name, reason) = match state {
            Delivery::Waiting(r) => ("waiting", Some(r)),
            Delivery::Delivered => ("delivered", None),
            Delivery::Failed(r) => ("failed", Some(r)),
            Delivery::Unconfirmed(r) => ("unconfirmed", Some(r)),
        };
        let value = json!({"type": "delivery", "id": id, "state": name, "reason": reason});
        let Some(line) = self.pending.get_mut(&id) else {
            if self.json {
                self.emit(value, String::new());
            }
            return;
        };
        let what = gist(&line.text);
        let text = match state {
            Delivery::Waiting(r) => {
                let first = !line.told;
                line.told = true;
                first.then(|| format!("* ⏱ {what} is {r}"))
            }
            Delivery::Delivered => {
                let line = self.pending.remove(&id);
                line.filter(|l| l.told)
                    .map(|_| format!("* ✓ {what} delivered (the relay took it)"))
            }
            Delivery::Failed(r) => {
                let line = self.pending.remove(&id);
                self.failed = line.map(|l| (l.to, l.text));
                Some(format!(
                    "* ✗ {what} was not sent: {r} (/resend sends it again)"
                ))
            }
            Delivery::Unconfirmed(r) => {
                self.pending.remove(&id);
                Some(format!(
                    "* ? {what} went out, but {r}: some may have read it, some not (it is not sent again, so that nobody reads it twice)"
                ))
            }
        };
        if self.json {
            self.emit(value, String::new());
        } else if let Some(text) = text {
            self.emit(value, text);
        }
    }

    /// Once a second: lines the relay has not taken within [`SLOW_LINE`]
    /// are said to be pending (text mode).
    pub(super) fn tick(&mut self) {
        if self.json {
            return;
        }
        // A line whose end was never said (the app stopped meanwhile) is
        // forgotten after the outbox's own expiry.
        let expiry = std::time::Duration::from_millis(common::engine::OUTBOX_EXPIRY_MS);
        self.pending.retain(|_, l| l.since.elapsed() < expiry * 2);
        let mut slow: Vec<(u64, String)> = Vec::new();
        for (id, line) in &mut self.pending {
            if !line.told && line.since.elapsed() >= SLOW_LINE {
                line.told = true;
                slow.push((*id, gist(&line.text)));
            }
        }
        slow.sort();
        for (_, what) in slow {
            self.emit(
                serde_json::Value::Null,
                format!("* ⏱ {what} is pending: the relay has not confirmed it yet"),
            );
        }
    }

    pub(super) fn note(&self, text: &str) {
        self.emit(json!({"type": "info", "text": text}), text.to_string());
    }

    /// `text` with any mention token shown by the member's name.
    fn with_names(&self, text: &str) -> String {
        common::engine::mentions::shown(text, |fp| {
            self.members
                .iter()
                .find(|m| m.fingerprint == *fp)
                .map(|m| m.name.clone())
        })
    }

    /// Whether the bell may ring now (and it is noted that it does).
    fn bell_due(&mut self) -> bool {
        let now = std::time::Instant::now();
        let due = self
            .last_bell
            .is_none_or(|at| now - at >= std::time::Duration::from_secs(2));
        if due {
            self.last_bell = Some(now);
        }
        due
    }

    /// Everyone met, one per line: name (earlier names), key, verified.
    pub(super) fn contact_list(&self) -> String {
        if self.contacts.is_empty() {
            return "* no contacts yet: everyone you are in a room with becomes one".into();
        }
        let mut out = vec![format!("* {} contacts:", self.contacts.len())];
        for c in &self.contacts {
            let earlier: Vec<&str> = c.names[..c.names.len().saturating_sub(1)]
                .iter()
                .map(String::as_str)
                .collect();
            let aka = if earlier.is_empty() {
                String::new()
            } else {
                format!(" (was {})", earlier.join(", "))
            };
            let mark = if c.verified { "  ✓ verified" } else { "" };
            out.push(format!(
                "  {}{aka}  {}{mark}",
                c.name(),
                c.fingerprint.short()
            ));
        }
        out.join("\n")
    }

    /// The contact `who` names: a member of the room by its exact name,
    /// else a contact by its exact last name, else a member or contact by
    /// at least 16 hex digits of its key (a short prefix could be ground
    /// to match someone else); only when exactly one fits.
    pub(super) fn resolve_contact(&self, who: &str) -> Option<Fingerprint> {
        let one = |hits: Vec<Fingerprint>| match hits.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        let members: Vec<Fingerprint> = self
            .members
            .iter()
            .filter(|m| m.name == who)
            .map(|m| m.fingerprint)
            .collect();
        if !members.is_empty() {
            return one(members);
        }
        let contacts: Vec<Fingerprint> = self
            .contacts
            .iter()
            .filter(|c| c.name() == who)
            .map(|c| c.fingerprint)
            .collect();
        if !contacts.is_empty() {
            return one(contacts);
        }
        let lower = who.to_ascii_lowercase();
        if lower.len() < 16 || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut keys: Vec<Fingerprint> = self
            .members
            .iter()
            .map(|m| m.fingerprint)
            .chain(self.contacts.iter().map(|c| c.fingerprint))
            .filter(|f| f.to_string().starts_with(&lower))
            .collect();
        keys.sort_by_key(|f| f.0);
        keys.dedup();
        one(keys)
    }

    /// The members' names and keys, for `@NAME` mentions.
    pub(super) fn mention_names(&self) -> Vec<(String, common::Fingerprint)> {
        self.members
            .iter()
            .map(|m| (m.name.clone(), m.fingerprint))
            .collect()
    }

    pub(super) fn list(&self) -> String {
        if self.members.is_empty() {
            return "no epoch yet".into();
        }
        self.members
            .iter()
            .map(|m| {
                let verified = self
                    .contacts
                    .iter()
                    .any(|c| c.fingerprint == m.fingerprint && c.verified);
                format!(
                    "{}{}{}  {}  safety code {}",
                    m.name,
                    if m.admin { " (admin)" } else { "" },
                    if verified { " ✓ verified" } else { "" },
                    m.fingerprint.short(),
                    m.safety_code
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A banned member by name, fingerprint prefix (from `/bans`) or whole
    /// fingerprint.
    pub(super) fn resolve_ban(&self, who: &str) -> Option<Fingerprint> {
        if who.is_empty() {
            return None;
        }
        if let Ok(fp) = who.parse::<Fingerprint>() {
            return Some(fp);
        }
        let lower = who.to_ascii_lowercase();
        let hits: Vec<&common::engine::Ban> = self
            .bans
            .iter()
            .filter(|b| {
                b.name == who || (lower.len() >= 4 && b.fingerprint.to_string().starts_with(&lower))
            })
            .collect();
        match hits.as_slice() {
            [one] => Some(one.fingerprint),
            _ => None,
        }
    }

    pub(super) fn resolve(&self, who: &str) -> Option<Fingerprint> {
        if who.is_empty() {
            return None;
        }
        let hits: Vec<&MemberInfo> = self
            .members
            .iter()
            .filter(|m| {
                !m.admin
                    && (m.name == who
                        || m.fingerprint
                            .to_string()
                            .starts_with(&who.to_ascii_lowercase()))
            })
            .collect();
        match hits.as_slice() {
            [one] => Some(one.fingerprint),
            _ => None,
        }
    }

    /// Splits `/msg` (or `/sendto`) arguments into a recipient and the
    /// text (or path). The recipient is the member whose name starts the
    /// line (names may hold spaces), or a fingerprint prefix of at least 8
    /// hex characters.
    pub(super) fn resolve_private(
        &self,
        rest: &str,
        verb: &str,
    ) -> Result<(Fingerprint, String), String> {
        let what = if verb == "msg" { "text" } else { "PATH" };
        let usage =
            format!("usage: /{verb} NAME|FINGERPRINT {what} (names and fingerprints are in /list)");
        if rest.is_empty() {
            return Err(usage);
        }
        // Names are chosen by their owners: when more than one name could
        // start the line ("bob" and "bob I"), or two people share a name,
        // only a fingerprint says who is meant.
        let by_name: Vec<(&MemberInfo, &str)> = self
            .members
            .iter()
            .filter_map(|m| {
                let text = rest.strip_prefix(m.name.as_str())?.strip_prefix(' ')?;
                Some((m, text))
            })
            .collect();
        match by_name.as_slice() {
            [(m, text)] => {
                let text = text.trim();
                if text.is_empty() {
                    return Err(usage);
                }
                return Ok((m.fingerprint, text.to_string()));
            }
            [] => {}
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|(m, _)| format!("{} ({})", m.name, m.fingerprint.short()))
                    .collect();
                return Err(format!(
                    "more than one member could be meant: {}; use a fingerprint prefix: /{verb} FINGERPRINT {what}",
                    names.join(", ")
                ));
            }
        }
        let (word, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let word = word.to_ascii_lowercase();
        let hits: Vec<&MemberInfo> =
            if word.len() >= 8 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.members
                    .iter()
                    .filter(|m| m.fingerprint.to_string().starts_with(&word))
                    .collect()
            } else {
                Vec::new()
            };
        match (hits.as_slice(), text.trim()) {
            (_, "") => Err(usage),
            ([one], text) => Ok((one.fingerprint, text.to_string())),
            _ => Err(format!(
                "no single member matches {:?}: use a name or a fingerprint prefix from /list",
                common::engine::printable(rest.split(' ').next().unwrap_or(""))
            )),
        }
    }

    pub(super) fn member_json(m: &MemberInfo) -> serde_json::Value {
        json!({"name": m.name, "fingerprint": m.fingerprint.to_string(), "safety_code": m.safety_code, "admin": m.admin})
    }

    /// A warning, the engine's or the runtime's: one line, or one JSON
    /// object of type `warning`.
    fn warning(&mut self, reason: &str) {
        self.emit(
            json!({"type": "warning", "reason": reason}),
            format!("! warning: {reason}"),
        )
    }

    pub(super) fn update(&mut self, u: &Update) {
        match u {
            Update::Connecting { relay } => {
                self.emit(json!({"type": "connecting", "relay": relay}), format!("* connecting to {relay}…"))
            }
            Update::Secured { relay, cert } => self.emit(
                json!({"type": "connected", "relay": relay, "cert": cert.to_string()}),
                format!("* connected to {relay} over TLS (certificate {} checked)", cert.short()),
            ),
            Update::Disconnected { reason, relay_code, retry_in } => self.emit(
                // `relay_code`: the relay's error code by its PROTOCOL name
                // (`SlowReader`: we fell behind the room), or null.
                json!({"type": "disconnected", "reason": reason,
                       "relay_code": relay_code.map(|c| format!("{c:?}")),
                       "retry_ms": retry_in.as_millis() as u64}),
                format!("* disconnected: {reason}; reconnecting in {:.1} s", retry_in.as_secs_f64()),
            ),
            Update::Stopped { reason } => self.emit(
                json!({"type": "stopped", "reason": reason.to_string(), "failure": reason.is_failure()}),
                format!("* stopped: {reason}"),
            ),
            Update::Engine(e) => self.event(e),
            Update::Warning(reason) => self.warning(reason),
            Update::File(f) => self.file(f),
            Update::History { loaded, requested } => self.history(loaded, *requested),
            Update::KeyChanged(c) => {
                let code = common::crypto::SafetyCode::of(&c.fingerprint).to_string();
                let verified = if c.before.iter().any(|(_, v)| *v) {
                    " (you had verified the old one)"
                } else {
                    ""
                };
                self.emit(
                    json!({"type": "key_changed", "name": c.name, "fingerprint": c.fingerprint.to_string(), "safety_code": code,
                        "before": c.before.iter().map(|(f, v)| json!({"fingerprint": f.to_string(), "verified": v})).collect::<Vec<_>>()}),
                    format!("! {}'s key has changed{verified}: compare the new safety code {code} with {} before you trust what they write (then /verify {})", c.name, c.name, c.fingerprint.short()),
                )
            }
            Update::Contacts(all) => {
                self.contacts = all.clone();
                if std::mem::take(&mut self.show_contacts) || self.json {
                    let text = self.contact_list();
                    self.emit(
                        json!({"type": "contacts", "contacts": all.iter().map(|c| json!({"fingerprint": c.fingerprint.to_string(), "names": c.names, "verified": c.verified, "first_seen_ms": c.first_seen_ms})).collect::<Vec<_>>()}),
                        text,
                    )
                }
            }
            Update::HistoryCleared => self.emit(
                json!({"type": "history_cleared"}),
                "* this room's history on this computer was cleared".into(),
            ),
            Update::Away { away, since_ms } => self.emit(
                json!({"type": "away", "seconds": away.as_secs_f64(), "since_ms": since_ms}),
                format!("! {}", Update::away_text(*away, *since_ms)),
            ),
        }
    }

    pub(super) fn event(&mut self, e: &Event) {
        match e {
            Event::Connected { conn_id } => {
                self.emit(json!({"type": "welcome", "conn_id": conn_id}), format!("* in the relay room as connection {conn_id}"))
            }
            Event::AdminVerified { fingerprint, safety_code } => self.emit(
                json!({"type": "admin_verified", "fingerprint": fingerprint.to_string(), "safety_code": safety_code}),
                format!("* admin verified against the invite; admin safety code: {safety_code}"),
            ),
            Event::JoinRequested => self.emit(json!({"type": "join_requested"}), "* join request sent; waiting for the admin".into()),
            Event::PendingApproval { id, name, fingerprint, safety_code, banned } => {
                let removed = if *banned { " (REMOVED from this room before: approving lets them back in)" } else { "" };
                self.emit(
                    json!({"type": "pending", "id": id, "name": name, "fingerprint": fingerprint.to_string(), "safety_code": safety_code, "banned": banned}),
                    format!("* {name} asks to join (request {id}){removed}; compare safety code {safety_code}, then /approve {id} or /deny {id}"),
                )
            }
            Event::Epoch { epoch, room_name, members } => {
                self.members = members.clone();
                let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                self.emit(
                    json!({"type": "epoch", "epoch": epoch, "room_name": room_name, "members": members.iter().map(Self::member_json).collect::<Vec<_>>()}),
                    format!("* {room_name}, epoch {epoch}: {}", names.join(", ")),
                )
            }
            Event::MemberJoined(m) => self.emit(
                json!({"type": "joined", "member": Self::member_json(m)}),
                format!("* {} joined (safety code {})", m.name, m.safety_code),
            ),
            Event::MemberLeft(m) => self.emit(json!({"type": "left", "member": Self::member_json(m)}), format!("* {} left", m.name)),
            Event::MemberRemoved(m) => self.emit(json!({"type": "removed", "member": Self::member_json(m)}), format!("* {} was removed by the admin", m.name)),
            Event::Message { from, text, sent_at_ms, epoch, seq, mentions_me } => {
                // Rung for a room away too: the line is for us.
                if *mentions_me && !self.json && self.bell_due() {
                    // The terminal's bell: a line for us.
                    let mut stdout = std::io::stdout().lock();
                    let _ = write!(stdout, "\x07");
                }
                let mark = if *mentions_me { "» " } else { "" };
                self.emit(
                    json!({"type": "message", "from": from.name, "fingerprint": from.fingerprint.to_string(), "text": text, "sent_at_ms": sent_at_ms, "epoch": epoch, "seq": seq, "mentions_me": mentions_me}),
                    format!("{mark}<{}> {}", from.name, common::engine::printable(text)),
                )
            }
            Event::Sent { id, text, sent_at_ms } => {
                // A line kept across a restart may still carry tokens.
                let text = &self.with_names(text);
                self.track(*id, None, text);
                self.emit(
                    json!({"type": "sent", "id": id, "text": text, "sent_at_ms": sent_at_ms}),
                    format!("<me> {}", common::engine::printable(text)),
                )
            }
            Event::Delivery { id, state } => self.delivery(*id, state),
            Event::Private { from, text, sent_at_ms, epoch, seq } => self.emit(
                json!({"type": "private", "from": from.name, "fingerprint": from.fingerprint.to_string(), "text": text, "sent_at_ms": sent_at_ms, "epoch": epoch, "seq": seq}),
                format!("<{} → me, private> {}", from.name, common::engine::printable(text)),
            ),
            Event::PrivateSent { id, to, text, sent_at_ms } => {
                self.track(*id, Some(to.fingerprint), text);
                self.emit(
                    json!({"type": "private_sent", "id": id, "to": to.name, "fingerprint": to.fingerprint.to_string(), "text": text, "sent_at_ms": sent_at_ms}),
                    format!("<me → {} ({}), private> {}", to.name, to.fingerprint.short(), common::engine::printable(text)),
                )
            }
            Event::Typing { from, on } => {
                if self.json {
                    self.emit(json!({"type": "typing", "from": from.name, "on": on}), String::new())
                }
            }
            Event::Denied { reason } => self.emit(json!({"type": "denied", "reason": reason}), format!("* join denied: {reason}")),
            Event::Kicked { reason } => self.emit(json!({"type": "kicked", "reason": reason}), format!("* removed from the room: {reason}")),
            Event::Closed { reason } => self.emit(json!({"type": "closed", "reason": reason}), format!("* room closed: {reason}")),
            Event::Warning(w) => self.warning(&w.to_string()),
            Event::Error { reason } => self.emit(json!({"type": "error", "reason": reason}), format!("! error: {reason}")),
            Event::Missed { from, epoch, count, private } => {
                let what = if *private { "private messages" } else { "messages" };
                self.emit(
                    json!({"type": "missed", "from": from.name, "fingerprint": from.fingerprint.to_string(), "epoch": epoch, "count": count, "private": private}),
                    format!("! {count} {what} from {} never reached us (epoch {epoch}): the conversation shown is missing them", from.name),
                )
            }
            Event::Bans(bans) => {
                self.bans = bans.clone();
                let text = if bans.is_empty() {
                    "* nobody is banned".to_string()
                } else {
                    // The newest first, twenty at most (`/bans` after a kick
                    // is one line more, not the whole list).
                    let mut rows: Vec<String> = bans
                        .iter()
                        .rev()
                        .take(20)
                        .map(|b| format!("  {} ({}), removed {}", b.name, b.fingerprint.short(), crate::history::clock_utc(b.at_ms)))
                        .collect();
                    if bans.len() > 20 {
                        rows.push(format!("  and {} more", bans.len() - 20));
                    }
                    format!("* banned (they come back only if you approve them by hand, or /unban):\n{}", rows.join("\n"))
                };
                self.emit(
                    json!({"type": "bans", "bans": bans.iter().map(|b| json!({"name": b.name, "fingerprint": b.fingerprint.to_string(), "at_ms": b.at_ms})).collect::<Vec<_>>()}),
                    text,
                )
            }
        }
    }
}
