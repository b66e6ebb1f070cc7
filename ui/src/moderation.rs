//! The admin's moderation of the room on screen, bound to the `Moderation`
//! global (`ui/moderation.slint`): the join requests waiting for approval,
//! and the admin's actions on them and on members (approve, deny, remove,
//! new key). The member window has the global too and never fills it.

use std::rc::Rc;

use common::engine::Command;
use common::Fingerprint;
use slint::Model;

use crate::lines::push_line;
use crate::rooms::{RoomSlot, Rooms};
use crate::window::{banner, vec_model, RoomWindow};
use crate::{BanRow, BannerKind, LineKind, PendingRow};

/// Binds the moderation callbacks of `win`: each acts on the room on
/// screen.
pub(crate) fn install<T: RoomWindow>(win: &T, rooms: &Rc<Rooms<T>>) {
    let m = win.moderation();

    let r = Rc::downgrade(rooms);
    m.on_kick(move |fp| {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        match fp.parse::<Fingerprint>() {
            Ok(fp) => {
                // The engine bans whom it removes, and says so (Bans).
                if let Err(e) = slot
                    .session
                    .send(Command::Kick(fp, "removed by the admin".into()))
                {
                    banner(&slot, BannerKind::Error, &e);
                }
            }
            Err(e) => banner(&slot, BannerKind::Error, &format!("cannot remove: {e}")),
        }
    });

    let r = Rc::downgrade(rooms);
    m.on_approve(move |id| {
        if let Some(slot) = r.upgrade().and_then(|r| r.shown()) {
            decide(&slot, id, true);
        }
    });

    let r = Rc::downgrade(rooms);
    m.on_deny(move |id| {
        if let Some(slot) = r.upgrade().and_then(|r| r.shown()) {
            decide(&slot, id, false);
        }
    });

    let r = Rc::downgrade(rooms);
    m.on_unban(move |fp| {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        match fp.parse::<Fingerprint>() {
            Ok(fp) => {
                if let Err(e) = slot.session.send(Command::Unban(fp)) {
                    banner(&slot, BannerKind::Error, &e);
                }
            }
            Err(e) => banner(
                &slot,
                BannerKind::Error,
                &format!("cannot lift the ban: {e}"),
            ),
        }
    });

    let r = Rc::downgrade(rooms);
    m.on_rekey(move || {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        match slot.session.send(Command::Rekey) {
            Ok(()) => push_line(&slot, LineKind::System, "", "new key requested"),
            Err(e) => banner(&slot, BannerKind::Error, &e),
        }
    });
}

/// Someone asks to join: one row per request id and per key (a repeated
/// request replaces the old one: the engine forgot it too), and a line
/// that warns when the key was removed before.
pub fn asks<T: RoomWindow>(
    slot: &RoomSlot<T>,
    id: u32,
    name: &str,
    fingerprint: &Fingerprint,
    safety_code: String,
    banned: bool,
) {
    let pending = slot.moderation().get_pending();
    if let Some(m) = vec_model(&pending) {
        let id = i32::try_from(id).unwrap_or(i32::MAX);
        let fp = fingerprint.to_string();
        while let Some(i) = m
            .iter()
            .position(|p| p.id == id || p.fingerprint == fp.as_str())
        {
            m.remove(i);
        }
        if m.row_count() >= common::engine::admin::MAX_PENDING {
            m.remove(0);
        }
        m.push(PendingRow {
            id,
            name: common::engine::printable(name).into(),
            fingerprint: fp.into(),
            short_fp: fingerprint.short().into(),
            safety_code: safety_code.into(),
            verified: slot.is_verified(fingerprint),
        });
    }
    if banned {
        push_line(
            slot,
            LineKind::Warning,
            "",
            &format!(
                "{name} asks to join: you removed this key before; approving lets them back in"
            ),
        );
    } else {
        push_line(slot, LineKind::System, "", &format!("{name} asks to join"));
    }
    // For the admin: counted and notified like a private message, so a
    // room not on screen does not keep someone waiting unseen.
    slot.arrived(true);
    crate::notify::arrived(slot, crate::notify::What::Request, name, "");
}

/// A member was seated: its request is no longer waiting.
pub fn seated<T: RoomWindow>(slot: &RoomSlot<T>, fingerprint: &Fingerprint) {
    let pending = slot.moderation().get_pending();
    if let Some(p) = vec_model(&pending) {
        let fp = fingerprint.to_string();
        if let Some(i) = p.iter().position(|r| r.fingerprint == fp.as_str()) {
            p.remove(i);
        }
    }
}

/// Approves or denies the request `id`, if it still waits.
fn decide<T: RoomWindow>(slot: &RoomSlot<T>, id: i32, approve: bool) {
    let Ok(id32) = u32::try_from(id) else { return };
    let pending = slot.moderation().get_pending();
    let Some(i) = pending.iter().position(|p| p.id == id) else {
        return;
    };
    let name = pending
        .row_data(i)
        .map(|p| p.name.to_string())
        .unwrap_or_default();
    let cmd = if approve {
        Command::Approve(id32)
    } else {
        Command::Deny(id32, "denied by the admin".into())
    };
    match slot.session.send(cmd) {
        Ok(()) => {
            if let Some(m) = vec_model(&pending) {
                m.remove(i);
            }
            let what = if approve { "approved" } else { "denied" };
            push_line(slot, LineKind::System, "", &format!("you {what} {name}"));
        }
        Err(e) => banner(slot, BannerKind::Error, &e),
    }
}

/// The engine's list of bans (whenever it changes, and when the room
/// opens): the admin window's Banned list, newest first.
pub fn bans<T: RoomWindow>(slot: &RoomSlot<T>, bans: &[common::engine::admin::Ban]) {
    let rows: Vec<BanRow> = bans
        .iter()
        .rev()
        .map(|b| BanRow {
            name: common::engine::printable(&b.name).into(),
            fingerprint: b.fingerprint.to_string().into(),
            safety_code: common::crypto::SafetyCode::of(&b.fingerprint)
                .to_string()
                .into(),
            when: crate::lines::day_and_clock(b.at_ms).into(),
        })
        .collect();
    if let Some(m) = vec_model(&slot.moderation().get_bans()) {
        m.set_vec(rows);
    }
}
