//! The conversation's lines: each added to a room's models
//! (the room's, or a private conversation's) with its time, cut to a
//! length a view can hold, and the local history shown above a divider
//! when the room opens.

use client::history::Loaded;
use common::engine::printable;
use common::Fingerprint;
use slint::{Model, SharedString};

use crate::rooms::RoomSlot;
use crate::window::{cut, vec_model, RoomWindow, MAX_LINE, MAX_LINES};
use crate::{ChatLine, LineKind, LineState};

/// Local wall-clock time of `ms` since the Unix epoch, as HH:MM.
pub fn clock(ms: u64) -> String {
    local(ms)
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_default()
}

/// Local time of `ms` as HH:MM if it is today, else YYYY-MM-DD HH:MM.
pub fn day_and_clock(ms: u64) -> String {
    let today = chrono::Local::now().date_naive();
    local(ms)
        .map(|t| {
            let format = if t.date_naive() == today {
                "%H:%M"
            } else {
                "%Y-%m-%d %H:%M"
            };
            t.format(format).to_string()
        })
        .unwrap_or_default()
}

/// `ms` since the Unix epoch, in local time (none if out of range).
fn local(ms: u64) -> Option<chrono::DateTime<chrono::Local>> {
    use chrono::TimeZone;
    i64::try_from(ms)
        .ok()
        .and_then(|ms| chrono::Local.timestamp_millis_opt(ms).single())
}

/// Adds a line of our own (system note, warning) to the view, stamped now.
pub fn note<T: RoomWindow>(slot: &RoomSlot<T>, kind: LineKind, text: &str) {
    push_line(slot, kind, "", text);
}

pub(crate) fn push_line<T: RoomWindow>(
    slot: &RoomSlot<T>,
    kind: LineKind,
    sender: &str,
    text: &str,
) {
    push_line_at(slot, kind, sender, text, client::now_ms());
}

pub(crate) fn push_line_at<T: RoomWindow>(
    slot: &RoomSlot<T>,
    kind: LineKind,
    sender: &str,
    text: &str,
    at_ms: u64,
) {
    push_entry(slot, kind, sender, "", text, at_ms);
}

/// Adds one of our lines (`id` in the outbox), pending until the relay
/// takes it.
pub(crate) fn push_own<T: RoomWindow>(
    slot: &RoomSlot<T>,
    id: u64,
    kind: LineKind,
    sender: &str,
    peer: &str,
    text: &str,
    at_ms: u64,
) {
    push_entry(slot, kind, sender, peer, text, at_ms);
    let room = slot.room();
    let lines = room.get_lines();
    let Some(m) = vec_model(&lines) else { return };
    let last = m.row_count().saturating_sub(1);
    if let Some(mut l) = m.row_data(last) {
        l.id = i32::try_from(id).unwrap_or(i32::MAX);
        l.state = LineState::Pending;
        l.source = text.into();
        m.set_row_data(last, l);
    }
}

/// The line just added mentions us: it is highlighted.
pub(crate) fn mark_mention<T: RoomWindow>(slot: &RoomSlot<T>) {
    let lines = slot.room().get_lines();
    let Some(m) = vec_model(&lines) else { return };
    let last = m.row_count().saturating_sub(1);
    if let Some(mut l) = m.row_data(last) {
        l.mention = true;
        m.set_row_data(last, l);
    }
}

/// One of our lines moved on: its mark (and why it waits or failed).
pub(crate) fn mark_own<T: RoomWindow>(slot: &RoomSlot<T>, id: u64, state: LineState, note: &str) {
    let Ok(id) = i32::try_from(id) else { return };
    let room = slot.room();
    let lines = room.get_lines();
    let Some(m) = vec_model(&lines) else { return };
    // Ours are recent: search from the end.
    for row in (0..m.row_count()).rev() {
        let Some(mut l) = m.row_data(row) else {
            continue;
        };
        if l.id == id && l.state != LineState::None {
            l.state = state;
            l.note = printable(note).into();
            m.set_row_data(row, l);
            return;
        }
    }
}

/// Adds a line; `peer` is the other person's fingerprint for a private
/// message (its conversation), empty otherwise.
pub(crate) fn push_entry<T: RoomWindow>(
    slot: &RoomSlot<T>,
    kind: LineKind,
    sender: &str,
    peer: &str,
    text: &str,
    at_ms: u64,
) {
    let room = slot.room();
    let lines = room.get_lines();
    let Some(m) = vec_model(&lines) else { return };
    // A mention not shown by name yet (a line kept across a restart):
    // by the name the room's list gives its key.
    let members = room.get_members();
    let text = common::engine::mentions::shown(text, |fp| {
        let fp = fp.to_string();
        members
            .iter()
            .find(|m| m.fingerprint == fp.as_str())
            .map(|m| m.name.to_string())
    });
    // Names and texts come from other people: no control or invisible
    // formatting characters (keep line breaks in messages).
    let text: Vec<String> = cut(&text, MAX_LINE).split('\n').map(printable).collect();
    m.push(ChatLine {
        kind,
        sender: printable(sender).into(),
        peer: peer.into(),
        text: text.join("\n").into(),
        time: clock(at_ms).into(),
        ..Default::default()
    });
    if m.row_count() > MAX_LINES {
        m.remove(0);
        slot.lines_dropped(1);
    }
    // The view follows new lines by this counter (the count stops
    // changing once old lines are dropped).
    room.set_revision(room.get_revision().wrapping_add(1));
}

/// The divider under the history entries shown when a room opens.
pub const EARLIER: &str = "earlier messages";

/// History entries as chat lines: at the top of the view with a divider
/// under them when the room opens, or appended when asked for.
pub(crate) fn show_history<T: RoomWindow>(slot: &RoomSlot<T>, loaded: &Loaded, requested: bool) {
    use client::history::EntryKind;
    let room = slot.room();
    let lines = room.get_lines();
    let Some(m) = vec_model(&lines) else { return };
    if loaded.entries.is_empty() && loaded.skipped == 0 {
        return;
    }
    let mut add: Vec<ChatLine> = Vec::with_capacity(loaded.entries.len() + 2);
    for e in &loaded.entries {
        let peer = e
            .fingerprint
            .map(|f| Fingerprint(f).to_string())
            .unwrap_or_default();
        let (kind, sender, peer, text) = match e.kind {
            EntryKind::Message => (
                LineKind::Message,
                e.who.clone(),
                String::new(),
                e.text.clone(),
            ),
            EntryKind::Own => (LineKind::Own, String::new(), String::new(), e.text.clone()),
            EntryKind::PrivateIn => (LineKind::PrivateIn, e.who.clone(), peer, e.text.clone()),
            EntryKind::PrivateOut => (LineKind::PrivateOut, e.who.clone(), peer, e.text.clone()),
            EntryKind::File => (
                LineKind::System,
                String::new(),
                String::new(),
                format!(
                    "{} sent {}, saved to {}",
                    e.who,
                    e.text,
                    e.path.as_deref().unwrap_or("?")
                ),
            ),
        };
        let text: Vec<String> = cut(&text, MAX_LINE).split('\n').map(printable).collect();
        add.push(ChatLine {
            kind,
            sender: printable(&sender).into(),
            peer: peer.into(),
            text: text.join("\n").into(),
            time: clock(e.at_ms).into(),
            ..Default::default()
        });
    }
    if loaded.skipped > 0 {
        add.push(ChatLine {
            kind: LineKind::Warning,
            sender: SharedString::new(),
            peer: SharedString::new(),
            text: format!(
                "{} history entries failed their check (damaged or tampered with) and are not shown",
                loaded.skipped
            )
            .into(),
            time: SharedString::new(),
            ..Default::default()
        });
    }
    add.push(ChatLine {
        kind: LineKind::Divider,
        sender: SharedString::new(),
        peer: SharedString::new(),
        text: EARLIER.into(),
        time: SharedString::new(),
        ..Default::default()
    });
    if requested {
        for l in add {
            m.push(l);
        }
    } else {
        slot.lines_inserted(add.len());
        for (i, l) in add.into_iter().enumerate() {
            m.insert(i, l);
        }
    }
    while m.row_count() > MAX_LINES {
        m.remove(0);
        slot.lines_dropped(1);
    }
    room.set_revision(room.get_revision().wrapping_add(1));
}
