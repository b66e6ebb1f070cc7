//! File transfers in the window: the driver's file updates become rows of
//! the Files list (with progress, Accept and Cancel) and lines in the
//! conversation; the file chooser lists folders; the buttons become
//! commands.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use client::driver::{FileUpdate, Request};
use client::files::human_size;
use common::engine::TransferId;
use slint::{Model, ModelRc, SharedString, VecModel};

use crate::lines::note;
use crate::rooms::{RoomSlot, Rooms};
use crate::window::{banner, RoomWindow};
use crate::{BannerKind, DirEntry, FileRow, LineKind};

/// Most rows kept in the Files list (finished ones go first).
pub const MAX_ROWS: usize = 200;
/// Most entries listed for one folder in the chooser.
pub const MAX_ENTRIES: usize = 2000;

/// Changes the row of `id` (if any) with `f`.
fn update_row<T: RoomWindow>(
    slot: &RoomSlot<T>,
    id: &str,
    f: impl FnOnce(&mut FileRow),
) -> Option<FileRow> {
    let model = slot.transfers().get_files();
    let vm = model.as_any().downcast_ref::<VecModel<FileRow>>()?;
    let i = vm.iter().position(|r| r.id == id)?;
    let mut row = vm.row_data(i)?;
    f(&mut row);
    vm.set_row_data(i, row.clone());
    Some(row)
}

fn add_row<T: RoomWindow>(slot: &RoomSlot<T>, row: FileRow) {
    let files = slot.transfers();
    let model = files.get_files();
    let vm = match model.as_any().downcast_ref::<VecModel<FileRow>>() {
        Some(vm) => vm,
        None => {
            files.set_files(ModelRc::new(VecModel::from(vec![row])));
            return;
        }
    };
    if let Some(i) = vm.iter().position(|r| r.id == row.id) {
        vm.set_row_data(i, row);
        return;
    }
    vm.push(row);
    while vm.row_count() > MAX_ROWS {
        // The oldest finished transfer goes first; running ones stay.
        match vm.iter().position(|r| !r.active) {
            Some(i) => {
                vm.remove(i);
            }
            None => break,
        }
    }
}

fn percent(done: u64, total: u64) -> (f32, u64) {
    if total == 0 {
        return (1.0, 100);
    }
    let p = done.min(total) as f64 / total as f64;
    (p as f32, (p * 100.0).floor() as u64)
}

fn id_of(t: &TransferId) -> SharedString {
    hex::encode(t).into()
}

fn name_of<T: RoomWindow>(slot: &RoomSlot<T>, id: &str) -> String {
    let model = slot.transfers().get_files();
    model
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.name.to_string())
        .unwrap_or_else(|| "a file".into())
}

/// Applies one file update to the window.
pub fn apply<T: RoomWindow>(slot: &RoomSlot<T>, u: FileUpdate) {
    match u {
        FileUpdate::Sending {
            transfer,
            name,
            size,
            to,
        } => {
            let name = common::engine::printable(&name);
            let whom = match &to {
                Some(m) => format!("privately to {}", common::engine::printable(&m.name)),
                None => "to the room".into(),
            };
            add_row(
                slot,
                FileRow {
                    id: id_of(&transfer),
                    name: name.clone().into(),
                    detail: format!("{} · {whom}", human_size(size)).into(),
                    outgoing: true,
                    progress: 0.0,
                    state: "Sending…".into(),
                    active: size > 0,
                    can_accept: false,
                    failed: false,
                },
            );
            note(
                slot,
                LineKind::System,
                &format!("sending {name} ({}) {whom}", human_size(size)),
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
            let name = common::engine::printable(&name);
            let who = common::engine::printable(&from.name);
            let only = if private {
                " · privately, to you only"
            } else {
                ""
            };
            add_row(
                slot,
                FileRow {
                    id: id_of(&transfer),
                    name: name.clone().into(),
                    detail: format!(
                        "{} · {} · from {who}{only}",
                        human_size(size),
                        common::engine::printable(&media_type)
                    )
                    .into(),
                    outgoing: false,
                    progress: 0.0,
                    state: if accepted {
                        "Receiving…".into()
                    } else {
                        "Offered: accept to save it".into()
                    },
                    active: true,
                    can_accept: !accepted,
                    failed: false,
                },
            );
            note(
                slot,
                LineKind::System,
                &if accepted {
                    format!("{who} sends {name} ({}){only}", human_size(size))
                } else {
                    format!(
                        "{who} offers {name} ({}){only}: Accept it in Files to save it",
                        human_size(size)
                    )
                },
            );
        }
        FileUpdate::Progress {
            transfer,
            done,
            total,
            outgoing,
        } => {
            let (p, pct) = percent(done, total);
            update_row(slot, &id_of(&transfer), |r| {
                r.progress = p;
                r.state = if outgoing {
                    format!("Sending… {pct}%")
                } else if r.can_accept {
                    format!("Arriving… {pct}% · accept to save it")
                } else {
                    format!("Receiving… {pct}%")
                }
                .into();
            });
        }
        FileUpdate::Sent { transfer } => {
            if let Some(r) = update_row(slot, &id_of(&transfer), |r| {
                r.progress = 1.0;
                r.active = false;
                // The detail says to whom ("· privately to bob").
                r.state = if r.detail.contains("privately to ") {
                    "Sent privately".into()
                } else {
                    "Sent to the room".into()
                };
            }) {
                note(slot, LineKind::System, &format!("{} sent", r.name));
            }
        }
        FileUpdate::Ready { transfer } => {
            update_row(slot, &id_of(&transfer), |r| {
                r.progress = 1.0;
                r.state = "Complete and verified: accept to save it".into();
            });
        }
        FileUpdate::Saved { transfer, path } => {
            let shown = path.display().to_string();
            if let Some(r) = update_row(slot, &id_of(&transfer), |r| {
                r.progress = 1.0;
                r.active = false;
                r.can_accept = false;
                r.state = format!("Saved to {shown}").into();
            }) {
                note(
                    slot,
                    LineKind::System,
                    &format!("{} saved to {shown}", r.name),
                );
            }
        }
        FileUpdate::Failed { transfer, reason } => {
            let id = id_of(&transfer);
            let name = name_of(slot, &id);
            let reason = common::engine::printable(&reason);
            update_row(slot, &id, |r| {
                r.active = false;
                r.can_accept = false;
                r.failed = true;
                r.state = format!("Failed: {reason}. Nothing was saved.").into();
            });
            note(
                slot,
                LineKind::Warning,
                &format!("file {name}: {reason}; nothing was saved"),
            );
        }
    }
}

/// Where the chooser opens first: the first of Documents, Desktop and
/// Downloads that shows something (a new account's home may hold only
/// hidden files, and a chooser that opens on an empty-looking folder looks
/// broken); the home folder if none does.
fn start_dir() -> PathBuf {
    let Some(u) = directories::UserDirs::new() else {
        return PathBuf::from("/");
    };
    let home = u.home_dir().to_path_buf();
    // Something shows: a name not hidden among its first few hundred (no
    // sorting, no metadata: this runs on the UI thread).
    let shows = |d: &Path| {
        std::fs::read_dir(d).is_ok_and(|r| {
            r.flatten()
                .take(256)
                .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
        })
    };
    let found = [u.document_dir(), u.desktop_dir(), u.download_dir()]
        .into_iter()
        .flatten()
        .find(|d| shows(d))
        .map(Path::to_path_buf);
    found.unwrap_or(home)
}

/// A folder's entries for the chooser: folders first, then files, by name;
/// hidden entries left out; at most [`MAX_ENTRIES`].
pub fn list_dir(dir: &Path) -> Result<(PathBuf, Vec<DirEntry>), String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let read =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let mut entries: Vec<(bool, String, DirEntry)> = Vec::new();
    for e in read.flatten().take(MAX_ENTRIES * 4) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // Follows links, as opening the file would.
        let Ok(meta) = std::fs::metadata(e.path()) else {
            continue;
        };
        let is_dir = meta.is_dir();
        if !is_dir && !meta.is_file() {
            continue;
        }
        entries.push((
            !is_dir,
            name.to_lowercase(),
            DirEntry {
                name: common::engine::printable(&name).into(),
                path: e.path().display().to_string().into(),
                is_dir,
                size: if is_dir {
                    SharedString::new()
                } else {
                    human_size(meta.len()).into()
                },
            },
        ));
    }
    entries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    entries.truncate(MAX_ENTRIES);
    Ok((dir, entries.into_iter().map(|(_, _, e)| e).collect()))
}

/// A file dragged over the window from another application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileDrop {
    /// A file hovers over the window.
    Hover,
    /// It left again, or the drag was cancelled.
    Cancelled,
    /// It was dropped here.
    Dropped(PathBuf),
}

/// Handles a file dragged from another application: a hint while it
/// hovers, and on drop the same checks and command as the chooser's Send
/// (to the room, or privately inside a private conversation). A refusal
/// shows as a warning banner.
pub fn file_drop<T: RoomWindow>(win: &T, drop: FileDrop) {
    let files = win.transfers();
    // The form that adds a room covers the rooms: nothing is dropped on
    // the room underneath.
    if win.room_list().get_adding() {
        files.set_drop_hover(false);
        return;
    }
    let shown = crate::rooms::Rooms::of(win).and_then(|r| r.shown());
    match drop {
        FileDrop::Hover => files.set_drop_hover(true),
        FileDrop::Cancelled => files.set_drop_hover(false),
        FileDrop::Dropped(path) => {
            files.set_drop_hover(false);
            // Passed on exactly: a name that is not Unicode cannot be, and
            // is refused rather than replaced by a look-alike.
            let Some(path) = path.to_str().map(str::to_owned) else {
                let Some(slot) = shown else { return };
                banner(
                    &slot,
                    BannerKind::Warning,
                    &format!(
                        "{} cannot be sent: its name is not valid Unicode",
                        path.display()
                    ),
                );
                return;
            };
            if files.get_chooser_open() {
                // The chooser is up: the drop fills in its path.
                files.set_chooser_path(path.into());
                return;
            }
            files.set_chooser_error(SharedString::new());
            if !files.invoke_send_file(path.into()) {
                let why = files.get_chooser_error();
                files.set_chooser_error(SharedString::new());
                if let Some(slot) = shown {
                    banner(&slot, BannerKind::Warning, &why);
                }
            }
        }
    }
}

/// Wires the Files list and the chooser to the room on screen.
pub(crate) fn install<T: RoomWindow>(win: &T, rooms: &Rc<Rooms<T>>) {
    let files = win.transfers();
    files.set_chooser_entries(ModelRc::new(VecModel::<DirEntry>::default()));

    let w = win.as_weak();
    files.on_browse(move |dir| {
        let Some(win) = w.upgrade() else { return };
        let files = win.transfers();
        let dir = if dir.trim().is_empty() {
            start_dir()
        } else {
            PathBuf::from(dir.as_str())
        };
        match list_dir(&dir) {
            Ok((dir, entries)) => {
                files.set_chooser_dir(dir.display().to_string().into());
                files.set_chooser_entries(ModelRc::new(VecModel::from(entries)));
                files.set_chooser_error(SharedString::new());
            }
            Err(e) => files.set_chooser_error(e.into()),
        }
    });

    let (w, r) = (win.as_weak(), Rc::downgrade(rooms));
    files.on_send_file(move |path| {
        let Some(win) = w.upgrade() else { return false };
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return false;
        };
        let room = slot.room();
        let files = win.transfers();
        // A path as given (a dropped file's name may end in a space), or
        // without the blanks around it (one typed or pasted).
        let exact = PathBuf::from(path.as_str());
        let path = if exact.exists() {
            exact
        } else {
            PathBuf::from(path.trim())
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                files.set_chooser_error(format!("{} is not a file", path.display()).into());
                return false;
            }
            Err(e) => {
                files.set_chooser_error(format!("cannot use {}: {e}", path.display()).into());
                return false;
            }
        }
        if !room.get_can_send() {
            files.set_chooser_error(
                "Not in the room yet: a file can be sent once you hold the room key.".into(),
            );
            return false;
        }
        let private_to = room.get_private_to();
        let command = if private_to.is_empty() {
            Request::SendFile { path, to: None }
        } else {
            match private_to.parse() {
                Ok(fp) => Request::SendFile { path, to: Some(fp) },
                Err(e) => {
                    files.set_chooser_error(format!("cannot send privately: {e}").into());
                    return false;
                }
            }
        };
        match slot.session.send(command) {
            Ok(()) => true,
            Err(e) => {
                files.set_chooser_error(e.into());
                false
            }
        }
    });

    let r = Rc::downgrade(rooms);
    files.on_accept_file(move |id| {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        let Some(t) = parse_id(&id) else { return };
        update_row(&slot, &id, |r| {
            r.can_accept = false;
            r.state = "Accepted: saving…".into();
        });
        if let Err(e) = slot.session.send(Request::AcceptFile(t)) {
            banner(&slot, BannerKind::Error, &e);
        }
    });

    let r = Rc::downgrade(rooms);
    files.on_cancel_file(move |id| {
        let Some(slot) = r.upgrade().and_then(|r| r.shown()) else {
            return;
        };
        let Some(t) = parse_id(&id) else { return };
        if let Err(e) = slot.session.send(Request::CancelFile(t)) {
            banner(&slot, BannerKind::Error, &e);
        }
    });
}

fn parse_id(id: &str) -> Option<TransferId> {
    let bytes = hex::decode(id).ok()?;
    bytes.try_into().ok()
}
