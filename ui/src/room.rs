//! The open room: the driver's updates become rows in a room's models (the
//! [`RoomSlot`] writes through to the `Room` global while the room is on
//! screen), and the global's callbacks become commands to the room on
//! screen. Written once for both windows (`T` is `AdminWindow` or
//! `MemberWindow`).
//!
//! Each Slint global has one Rust owner: `Room` this module (connection,
//! members, typing, the banner, private conversations; the lines
//! themselves are added by [`crate::lines`]), `Transfers`
//! [`crate::transfers`], `Moderation` [`crate::moderation`], `RoomList`
//! [`crate::rooms`].

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use client::driver::{Request, Update};
use common::engine::{printable, Command, Delivery, Dropped, Event, MemberInfo, Warning, MAX_TEXT};
use common::Fingerprint;
use slint::{FilterModel, Model, ModelRc, SharedString};

use crate::rooms::{RoomSlot, Rooms};
use crate::{BannerKind, ChatLine, LineKind, LineState, MemberRow};

/// A "typing" signal without a follow-up counts for this long.
pub const TYPING_SHOWN_FOR: Duration = Duration::from_secs(6);
/// While typing, the signal is repeated at most this often.
pub const TYPING_REPEAT: Duration = Duration::from_secs(3);
/// No key pressed for this long ends "typing".
pub const TYPING_IDLE: Duration = Duration::from_secs(5);

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Tenths of a second since the process started (an `int` in the UI holds
/// 6.8 years of them).
fn uptime_ds() -> i32 {
    i32::try_from(start().elapsed().as_millis() / 100).unwrap_or(i32::MAX)
}

/// Gives the window's `Room` global its callbacks: each acts on the room on
/// screen. The theme and notification choices are saved to `settings`
/// (when given).
pub(crate) fn install<T: RoomWindow>(win: &T, rooms: &Rc<Rooms<T>>, settings: Option<PathBuf>) {
    let room = win.room();

    let r = Rc::downgrade(rooms);
    room.on_send(move |text| {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return false;
        };
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        if text.trim().is_empty() {
            return false;
        }
        if text.len() > MAX_TEXT {
            banner(
                &slot,
                BannerKind::Warning,
                &format!(
                    "That message is {} KiB; the most one message can hold is {} KiB. Nothing was sent.",
                    text.len().div_ceil(1024),
                    MAX_TEXT / 1024
                ),
            );
            return false;
        }
        // While sending is paused (reconnecting, waiting for the key) a
        // line waits in the outbox, marked pending; only a member who is
        // out of the room cannot write.
        if slot.room().get_removed() {
            banner(
                &slot,
                BannerKind::Warning,
                "You are not in the room: nothing can be sent.",
            );
            return false;
        }
        // `@NAME` picked from the list mentions that member, by key (and a
        // name typed by hand, where only one member's fits).
        let text = common::engine::mentions::typed(
            &text,
            &mention_names(&slot),
            &slot.mention_picks.borrow(),
        );
        if text.len() > MAX_TEXT {
            banner(
                &slot,
                BannerKind::Warning,
                &format!(
                    "With its mentions that message is {} KiB; the most one message can hold is {} KiB. Nothing was sent.",
                    text.len().div_ceil(1024),
                    MAX_TEXT / 1024
                ),
            );
            return false;
        }
        let private_to = slot.room().get_private_to();
        let command = if private_to.is_empty() {
            Command::Send(text)
        } else {
            match private_to.parse::<Fingerprint>() {
                Ok(fp) => Command::Private(fp, text),
                Err(e) => {
                    banner(&slot, BannerKind::Error, &format!("cannot send privately: {e}"));
                    return false;
                }
            }
        };
        match slot.session.send(command) {
            Ok(()) => {
                slot.mention_picks.borrow_mut().clear();
                let mut t = slot.typing.borrow_mut();
                t.on = false;
                t.last_sent = None;
                true
            }
            Err(e) => {
                banner(&slot, BannerKind::Error, &e);
                false
            }
        }
    });

    // The room's notification setting changed: remembered under its key.
    let (r, path) = (Rc::downgrade(rooms), settings.clone());
    room.on_notify_changed(move || {
        let Some(rooms) = r.upgrade() else { return };
        // Kept with the room in the room book too.
        rooms.keep();
        let (Some(slot), Some(path)) = (rooms.shown(), &path) else {
            return;
        };
        let Some(win) = slot.window() else { return };
        let (id, level, text) = (
            slot.room().get_room_id().to_string(),
            slot.room().get_notify_level(),
            win.room().get_notify_text(),
        );
        let kept = crate::settings::update(path, |s| {
            s.notify_text = Some(text);
            if !id.is_empty() {
                s.notify
                    .insert(id, crate::settings::level_name(level).into());
            }
        });
        if let Err(e) = kept {
            banner(
                &slot,
                BannerKind::Warning,
                &format!("could not remember the notification setting: {e}"),
            );
        }
    });

    // A failed line, sent again as a new one (to the same conversation).
    let r = Rc::downgrade(rooms);
    room.on_resend(move |id| {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        let lines = slot.room().get_lines();
        let Some(line) = (0..lines.row_count())
            .rev()
            .filter_map(|r| lines.row_data(r))
            .find(|l| l.id == id && l.state == LineState::Failed)
        else {
            return;
        };
        // Kept as shown (names): its mentions found again.
        let text = common::engine::mentions::typed(&line.source, &mention_names(&slot), &[]);
        let command = match line.peer.parse::<Fingerprint>() {
            Ok(fp) => Command::Private(fp, text),
            Err(_) => Command::Send(text),
        };
        if let Err(e) = slot.session.send(command) {
            banner(&slot, BannerKind::Error, &e);
        }
    });

    let r = Rc::downgrade(rooms);
    room.on_composer_edited(move |text| {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        offer_mentions(&slot, &text);
        // Typing notices go to the whole room: none while writing privately.
        if !(slot.room().get_can_send() && slot.room().get_private_to().is_empty()) {
            return;
        }
        let now = Instant::now();
        let mut t = slot.typing.borrow_mut();
        t.last_edit = Some(now);
        if text.trim().is_empty() {
            if t.on {
                t.on = false;
                let _ = slot.session.send(Command::Typing(false));
            }
        } else if (!t.on || t.last_sent.is_none_or(|at| now - at >= TYPING_REPEAT))
            && slot.session.send(Command::Typing(true)).is_ok()
        {
            t.on = true;
            t.last_sent = Some(now);
        }
    });

    let (w, r) = (win.as_weak(), Rc::downgrade(rooms));
    room.on_mention_pick(move |i| {
        let Some(win) = w.upgrade() else {
            return SharedString::new();
        };
        let room = win.room();
        let draft = room.get_draft().to_string();
        let choices = room.get_mention_choices();
        let picked = usize::try_from(i).ok().and_then(|i| choices.row_data(i));
        room.set_mention_choices(ModelRc::default());
        match (picked, draft.rfind('@')) {
            (Some(m), Some(at)) => {
                // The key it was picked as goes with the name.
                if let (Some(slot), Ok(fp)) = (
                    r.upgrade().and_then(|r| r.shown()),
                    m.fingerprint.parse::<Fingerprint>(),
                ) {
                    slot.mention_picks
                        .borrow_mut()
                        .push((m.name.to_string(), fp));
                }
                format!("{}@{} ", &draft[..at], m.name).into()
            }
            _ => draft.into(),
        }
    });

    let w = win.as_weak();
    room.on_mention_dismiss(move || {
        if let Some(win) = w.upgrade() {
            win.room().set_mention_choices(ModelRc::default());
        }
    });

    let r = Rc::downgrade(rooms);
    room.on_verify(move |fp, on| {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        match fp.parse::<Fingerprint>() {
            Ok(fp) => {
                if let Err(e) = slot.session.send(Request::Verify(fp, on)) {
                    banner(&slot, BannerKind::Error, &e);
                }
            }
            Err(e) => banner(&slot, BannerKind::Error, &format!("cannot verify: {e}")),
        }
    });

    let r = Rc::downgrade(rooms);
    room.on_open_private(move |fp, name| {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        let room = slot.room();
        let peer = fp.clone();
        let lines = FilterModel::new(room.get_lines(), move |l: &ChatLine| l.peer == peer);
        room.set_private_lines(ModelRc::new(lines));
        room.set_private_name(name);
        room.set_private_to(fp);
        room.set_revision(room.get_revision().wrapping_add(1));
    });

    let r = Rc::downgrade(rooms);
    room.on_close_private(move || {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        let room = slot.room();
        room.set_private_to(SharedString::new());
        room.set_private_name(SharedString::new());
        room.set_private_lines(ModelRc::default());
        room.set_revision(room.get_revision().wrapping_add(1));
    });

    let r = Rc::downgrade(rooms);
    room.on_theme_changed(move |dark| {
        if let Some(path) = &settings {
            if let Err(e) = crate::settings::update(path, |s| s.dark = Some(dark)) {
                if let Some(slot) = r.upgrade().and_then(|r| r.shown()) {
                    banner(
                        &slot,
                        BannerKind::Warning,
                        &format!("could not remember the theme: {e}"),
                    );
                }
            }
        }
    });

    let r = Rc::downgrade(rooms);
    room.on_clear_history(move || {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        if let Err(e) = slot.session.send(Request::ClearHistory) {
            banner(&slot, BannerKind::Error, &e);
        }
    });
}

/// The room's members as `@NAME` mentions know them: names and keys.
fn mention_names<T: RoomWindow>(slot: &RoomSlot<T>) -> Vec<(String, Fingerprint)> {
    slot.room()
        .get_members()
        .iter()
        .filter_map(|m| Some((m.name.to_string(), m.fingerprint.parse().ok()?)))
        .collect()
}

/// Most members offered at once after "@".
pub const MAX_MENTION_CHOICES: usize = 8;

/// The draft ends with "@" and the start of a name (after a space or at
/// the start, so an e-mail address does not count): the other members
/// whose names start so are offered, in the room's order.
fn offer_mentions<T: RoomWindow>(slot: &RoomSlot<T>, text: &str) {
    let Some(win) = slot.window() else { return };
    let room = win.room();
    let choices: Vec<crate::MentionRow> = text
        .rfind('@')
        .filter(|&at| {
            text[..at]
                .chars()
                .next_back()
                .is_none_or(char::is_whitespace)
        })
        .map(|at| &text[at + 1..])
        .filter(|typed| !typed.contains(char::is_whitespace))
        .map(|typed| {
            let typed = typed.to_lowercase();
            slot.room()
                .get_members()
                .iter()
                .filter(|m| !m.me && m.name.to_lowercase().starts_with(&typed))
                .take(MAX_MENTION_CHOICES)
                .map(|m| crate::MentionRow {
                    name: m.name.clone(),
                    fingerprint: m.fingerprint.clone(),
                    short_fp: m.short_fp.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    if choices.is_empty() && room.get_mention_choices().row_count() == 0 {
        return;
    }
    room.set_mention_index(0);
    room.set_mention_choices(ModelRc::new(slint::VecModel::from(choices)));
}

/// Once a second, for every room: forget typing signals that were never
/// ended, and end our own when the keyboard went quiet.
pub(crate) fn tick<T: RoomWindow>(slot: &RoomSlot<T>) {
    expire_typing(slot);
    let mut t = slot.typing.borrow_mut();
    if t.on && t.last_edit.is_none_or(|at| at.elapsed() >= TYPING_IDLE) {
        t.on = false;
        let _ = slot.session.send(Command::Typing(false));
    }
}

/// Applies one update to the room `win` shows (the UI tests and the
/// screenshot examples feed updates this way; the app's rooms get theirs
/// from their drivers through [`Rooms::start`]).
pub fn apply<T: RoomWindow>(win: &T, update: Update) {
    let Some(rooms) = Rooms::of(win) else { return };
    if let Some(slot) = rooms.shown() {
        rooms.deliver(&slot, update);
    }
}

/// Adds a line of our own to the room `win` shows (see [`apply`]).
pub fn note<T: RoomWindow>(win: &T, kind: LineKind, text: &str) {
    if let Some(slot) = Rooms::of(win).and_then(|r| r.shown()) {
        crate::lines::note(&slot, kind, text);
    }
}

pub use crate::lines::{clock, EARLIER};
pub(crate) use crate::lines::{push_entry, push_line, push_line_at, show_history};
pub(crate) use crate::window::vec_model;
pub use crate::window::{banner, cut, RoomWindow, MAX_BANNER, MAX_LINE, MAX_LINES};

fn member_row(m: &MemberInfo, me: &str, online: bool, verified: bool) -> MemberRow {
    let fp = m.fingerprint.to_string();
    MemberRow {
        name: printable(&m.name).into(),
        me: fp == me,
        verified,
        fingerprint: fp.into(),
        short_fp: m.fingerprint.short().into(),
        safety_code: m.safety_code.clone().into(),
        admin: m.admin,
        online,
        typing: false,
        typing_until: 0,
    }
}

fn set_online<T: RoomWindow>(slot: &RoomSlot<T>, online: bool) {
    let room = slot.room();
    room.set_online(online);
    let members = room.get_members();
    for i in 0..members.row_count() {
        if let Some(mut r) = members.row_data(i) {
            if r.online != online {
                r.online = online;
                members.set_row_data(i, r);
            }
        }
    }
}

/// The admin's row alone: offline when its connection ended (the others
/// stay: the admin's next epoch says who is still in the room).
fn set_admin_online<T: RoomWindow>(slot: &RoomSlot<T>, online: bool) {
    let members = slot.room().get_members();
    for i in 0..members.row_count() {
        if let Some(mut r) = members.row_data(i) {
            if r.admin && !r.me && r.online != online {
                r.online = online;
                members.set_row_data(i, r);
            }
        }
    }
}

fn set_typing<T: RoomWindow>(slot: &RoomSlot<T>, who: &Fingerprint, on: bool) {
    let room = slot.room();
    let members = room.get_members();
    let who = who.to_string();
    for i in 0..members.row_count() {
        if let Some(mut r) = members.row_data(i) {
            if r.fingerprint == who.as_str() && !r.me {
                r.typing = on;
                r.typing_until = if on {
                    uptime_ds().saturating_add((TYPING_SHOWN_FOR.as_millis() / 100) as i32)
                } else {
                    0
                };
                members.set_row_data(i, r);
            }
        }
    }
    refresh_typing(slot);
}

fn expire_typing<T: RoomWindow>(slot: &RoomSlot<T>) {
    let room = slot.room();
    let members = room.get_members();
    let now = uptime_ds();
    let mut changed = false;
    for i in 0..members.row_count() {
        if let Some(mut r) = members.row_data(i) {
            if r.typing && r.typing_until <= now {
                r.typing = false;
                members.set_row_data(i, r);
                changed = true;
            }
        }
    }
    if changed {
        refresh_typing(slot);
    }
}

/// "alice is typing…", "alice and bob are typing…", "3 people are typing…".
pub fn typing_text(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [a] => format!("{a} is typing…"),
        [a, b] => format!("{a} and {b} are typing…"),
        more => format!("{} people are typing…", more.len()),
    }
}

fn refresh_typing<T: RoomWindow>(slot: &RoomSlot<T>) {
    let room = slot.room();
    let names: Vec<String> = room
        .get_members()
        .iter()
        .filter(|r| r.typing && !r.me)
        .map(|r| r.name.to_string())
        .collect();
    room.set_typing(typing_text(&names).into());
}

/// How the banners of [`out_of_room`]'s three cases begin (cleared when we
/// are let back in).
const REMOVED_BANNERS: [&str; 3] = [
    "The admin denied your request",
    "You were removed from the room",
    "The room was closed",
];

/// The status bar's connection line, unless we are out of the room (then it
/// keeps saying so, whatever the link does).
fn show_connection<T: RoomWindow>(slot: &RoomSlot<T>, text: &str) {
    let room = slot.room();
    if !room.get_removed() {
        room.set_connection(text.into());
    }
}

/// Denied, removed or the room closed: sending stops, the member list (the
/// people we are no longer with) gives way to `title` and `note`, and the
/// status bar says so instead of "connected".
fn out_of_room<T: RoomWindow>(slot: &RoomSlot<T>, title: &str, note: &str) {
    let room = slot.room();
    room.set_can_send(false);
    room.set_removed(true);
    room.set_removed_title(title.into());
    room.set_removed_note(note.into());
    room.set_typing("".into());
    if let Some(m) = vec_model(&room.get_members()) {
        m.set_vec(Vec::new());
    }
    room.set_connection("not in the room".into());
}

/// Applies one update from the room's driver to its slot. Runs on the UI
/// thread.
pub fn apply_to<T: RoomWindow>(slot: &RoomSlot<T>, update: Update) {
    let room = slot.room();
    match update {
        Update::Connecting { relay } => {
            room.set_relay(printable(&relay).into());
            show_connection(slot, "connecting…");
        }
        Update::Secured { relay, cert } => {
            room.set_relay(printable(&relay).into());
            room.set_tls(format!("TLS, certificate {} verified", cert.short()).into());
            show_connection(slot, "connected");
            slot.set_trouble(false);
            set_online(slot, true);
            if room.get_banner_kind() == BannerKind::Warning {
                room.set_banner_kind(BannerKind::None);
            }
            // Back in: sending resumes if we held a key and were not removed.
            room.set_can_send(room.get_epoch() > 0 && !room.get_removed());
            let expected = room.get_expected_cert();
            if !expected.is_empty() && expected.as_str() != cert.to_string() {
                banner(
                    slot,
                    BannerKind::Warning,
                    &format!(
                        "The relay presented certificate {} but the invite pins {}: members will refuse to connect. Give the relay's current certificate.",
                        cert.short(),
                        &expected[..expected.len().min(16)]
                    ),
                );
            }
        }
        Update::Disconnected {
            reason,
            relay_code,
            retry_in,
        } => {
            set_online(slot, false);
            slot.set_trouble(true);
            room.set_tls("".into());
            // What is written meanwhile waits in the outbox (pending), and
            // goes once we are back in the room.
            room.set_can_send(room.get_epoch() > 0 && !room.get_removed());
            let secs = retry_in.as_secs_f64().ceil();
            show_connection(slot, &format!("reconnecting in {secs:.0} s…"));
            let text = if relay_code == Some(common::wire::ErrorCode::SlowReader) {
                format!(
                    "You fell behind the room and the relay let you go. Reconnecting in {secs:.0} s… (lines you missed are reported once you are back)"
                )
            } else {
                format!("Connection lost: {reason}. Reconnecting in {secs:.0} s…")
            };
            banner(slot, BannerKind::Warning, &text);
        }
        Update::Stopped { reason } => {
            set_online(slot, false);
            slot.set_trouble(reason.is_failure());
            room.set_tls("".into());
            room.set_can_send(false);
            room.set_connection("stopped".into());
            if reason.is_failure() {
                banner(
                    slot,
                    BannerKind::Error,
                    &format!("Disconnected for good: {reason}"),
                );
            }
        }
        Update::Engine(e) => event(slot, e),
        Update::Warning(reason) => push_line(slot, LineKind::Warning, "", &reason),
        Update::File(f) => crate::transfers::apply(slot, f),
        Update::History { loaded, requested } => show_history(slot, &loaded, requested),
        Update::Away { away, since_ms } => push_line(
            slot,
            LineKind::Warning,
            "",
            &Update::away_text(away, since_ms),
        ),
        Update::KeyChanged(c) => {
            let name = printable(&c.name);
            let code = common::crypto::SafetyCode::of(&c.fingerprint).to_string();
            let had = if c.before.iter().any(|(_, v)| *v) {
                " (you had verified the old one)"
            } else {
                ""
            };
            let text = format!(
                "{name}'s key has changed{had}: compare the new safety code {code} with {name} before you trust what they write"
            );
            push_line(slot, LineKind::Warning, "", &text);
            banner(slot, BannerKind::Warning, &text);
            // For us, wherever we are looking: counted, and notified.
            slot.arrived(true);
            crate::notify::arrived(slot, crate::notify::What::KeyChange, &c.name, "");
        }
        // The window's (crate::rooms).
        Update::Contacts(_) => {}
        Update::HistoryCleared => {
            // What was on screen goes too: the view starts afresh.
            if let Some(m) = vec_model(&slot.room().get_lines()) {
                m.set_vec(Vec::new());
            }
            slot.cleared();
            crate::lines::note(
                slot,
                LineKind::System,
                "this room's history on this computer was cleared",
            )
        }
    }
}

fn event<T: RoomWindow>(slot: &RoomSlot<T>, e: Event) {
    let room = slot.room();
    match e {
        Event::Connected { .. } => {}
        Event::AdminVerified { safety_code, .. } => {
            room.set_admin_safety_code(safety_code.clone().into());
            room.set_admin_verified(true);
            set_admin_online(slot, room.get_online());
            push_line(
                slot,
                LineKind::System,
                "",
                &format!("the admin's signature checks out against the invite; admin safety code {safety_code}"),
            );
        }
        Event::JoinRequested => push_line(
            slot,
            LineKind::System,
            "",
            "join request sent; waiting for the admin to approve you",
        ),
        Event::PendingApproval {
            id,
            name,
            fingerprint,
            safety_code,
            banned,
        } => {
            crate::moderation::asks(slot, id, &name, &fingerprint, safety_code, banned);
        }
        Event::Epoch {
            epoch,
            room_name,
            members,
        } => {
            room.set_room_name(room_name.into());
            let me = slot.my_fingerprint();
            // A member's first epoch, or the first since it was removed or
            // denied: the admin let us in (the admin's own first epoch is
            // the room opening).
            let seated = members
                .iter()
                .any(|m| !m.admin && m.fingerprint.to_string() == me);
            let admitted = seated && (room.get_epoch() == 0 || room.get_removed());
            if admitted && room.get_removed() {
                room.set_removed(false);
                room.set_removed_title("".into());
                room.set_removed_note("".into());
                // The banner that said so is over too (not any other).
                let said = room.get_banner_text();
                if REMOVED_BANNERS.iter().any(|b| said.starts_with(b)) {
                    room.set_banner_kind(BannerKind::None);
                }
                room.set_connection(
                    if room.get_online() {
                        "connected"
                    } else {
                        "not connected"
                    }
                    .into(),
                );
            }
            let online = room.get_online();
            let old = room.get_members();
            let rows: Vec<MemberRow> = members
                .iter()
                .map(|m| {
                    let mut r = member_row(m, &me, online, slot.is_verified(&m.fingerprint));
                    // Keep who is typing across the rekey.
                    if let Some(prev) = old.iter().find(|o| o.fingerprint == r.fingerprint) {
                        r.typing = prev.typing;
                        r.typing_until = prev.typing_until;
                    }
                    r
                })
                .collect();
            if let Some(m) = vec_model(&old) {
                m.set_vec(rows);
            }
            room.set_epoch(i32::try_from(epoch).unwrap_or(i32::MAX));
            room.set_can_send(true);
            refresh_typing(slot);
            if admitted {
                push_line(
                    slot,
                    LineKind::System,
                    "",
                    "you're in: the admin let you into the room, and you hold its key",
                );
            }
        }
        Event::MemberJoined(m) => {
            crate::moderation::seated(slot, &m.fingerprint);
            push_line(slot, LineKind::System, "", &format!("{} joined", m.name));
        }
        Event::MemberLeft(m) => {
            push_line(slot, LineKind::System, "", &format!("{} left", m.name));
        }
        Event::MemberRemoved(m) => {
            push_line(
                slot,
                LineKind::System,
                "",
                &format!("{} was removed by the admin", m.name),
            );
        }
        Event::Message {
            from,
            text,
            sent_at_ms,
            mentions_me,
            ..
        } => {
            set_typing(slot, &from.fingerprint, false);
            push_line_at(slot, LineKind::Message, &from.name, &text, sent_at_ms);
            let what = if mentions_me {
                crate::lines::mark_mention(slot);
                crate::notify::What::Mention
            } else {
                crate::notify::What::Line
            };
            slot.arrived(mentions_me);
            crate::notify::arrived(slot, what, &from.name, &text);
        }
        Event::Sent {
            id,
            text,
            sent_at_ms,
        } => crate::lines::push_own(slot, id, LineKind::Own, "", "", &text, sent_at_ms),
        Event::Delivery { id, state } => {
            let (state, note) = match state {
                Delivery::Waiting(why) => (LineState::Pending, why),
                Delivery::Delivered => (LineState::Delivered, String::new()),
                Delivery::Failed(why) => (LineState::Failed, why),
                Delivery::Unconfirmed(why) => (LineState::Unconfirmed, why),
            };
            crate::lines::mark_own(slot, id, state, &note);
        }
        Event::Private {
            from,
            text,
            sent_at_ms,
            ..
        } => {
            let peer = from.fingerprint.to_string();
            push_entry(
                slot,
                LineKind::PrivateIn,
                &from.name,
                &peer,
                &text,
                sent_at_ms,
            );
            slot.arrived(true);
            crate::notify::arrived(slot, crate::notify::What::Private, &from.name, &text);
        }
        Event::PrivateSent {
            id,
            to,
            text,
            sent_at_ms,
        } => {
            let peer = to.fingerprint.to_string();
            crate::lines::push_own(
                slot,
                id,
                LineKind::PrivateOut,
                &to.name,
                &peer,
                &text,
                sent_at_ms,
            );
        }
        Event::Typing { from, on } => set_typing(slot, &from.fingerprint, on),
        Event::Denied { reason } => {
            out_of_room(
                slot,
                "The admin did not let you in",
                &format!(
                    "Their answer: \"{}\". TeamChat asks again by itself the next time the admin's app announces the room (closing this window stops it); the admin decides each time.",
                    printable(&reason)
                ),
            );
            banner(
                slot,
                BannerKind::Error,
                &format!("{}: {reason}", REMOVED_BANNERS[0]),
            );
        }
        Event::Kicked { reason } => {
            out_of_room(
                slot,
                "You were removed from the room",
                &format!(
                    "The admin's words: \"{}\". Your key is banned here: you see nothing more of this room. TeamChat asks to come back by itself when the admin's app next announces the room, and the admin is told you were removed before; only the admin can let you back in. Your history and identity are not affected.",
                    printable(&reason)
                ),
            );
            banner(
                slot,
                BannerKind::Error,
                &format!("{}: {reason}", REMOVED_BANNERS[1]),
            );
            push_line(
                slot,
                LineKind::Error,
                "",
                &format!("removed from the room: {reason}"),
            );
        }
        Event::Closed { reason } => {
            out_of_room(
                slot,
                "The room was closed",
                &format!(
                    "The admin's words: \"{}\". Nothing more can be said here; ask the admin for the invite of a new room.",
                    printable(&reason)
                ),
            );
            banner(
                slot,
                BannerKind::Error,
                &format!("{}: {reason}", REMOVED_BANNERS[2]),
            );
        }
        // Out of the room, every later line of it is one we cannot read:
        // that is said once, in the panel, not once per line. (Every other
        // warning still shows: a gap, a forged or replayed frame.)
        Event::Warning(Warning::Dropped(
            Dropped::NoKey(_) | Dropped::UnknownEpoch { .. } | Dropped::OldEpoch { .. },
        )) if room.get_removed() => {}
        Event::Warning(w) => {
            if w == Warning::AdminDisconnected {
                set_admin_online(slot, false);
            }
            push_line(slot, LineKind::Warning, "", &w.to_string());
        }
        Event::Missed {
            from,
            epoch,
            count,
            private,
        } => {
            // Said where the gap is, in the conversation it belongs to, and
            // in the banner: what is shown is not the whole conversation.
            let what = match (private, count) {
                (false, 1) => "message".to_string(),
                (false, _) => "messages".to_string(),
                (true, 1) => "private message".to_string(),
                (true, _) => "private messages".to_string(),
            };
            let text = format!(
                "{count} {what} from {} never reached you (epoch {epoch}): the relay did not deliver them",
                printable(&from.name)
            );
            if private {
                let peer = from.fingerprint.to_string();
                push_entry(
                    slot,
                    LineKind::Warning,
                    &from.name,
                    &peer,
                    &text,
                    client::now_ms(),
                );
            } else {
                push_line(slot, LineKind::Warning, "", &text);
            }
            banner(slot, BannerKind::Warning, &text);
        }
        Event::Bans(bans) => crate::moderation::bans(slot, &bans),
        Event::Error { reason } => {
            banner(slot, BannerKind::Error, &reason);
            push_line(slot, LineKind::Error, "", &reason);
        }
    }
}
