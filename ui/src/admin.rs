//! The admin window: the open-room form (relay, certificate pin, room
//! password with a strength meter, roster), then the rooms, each with its
//! invite, join requests, kick and rekey. The form comes back over the
//! rooms to open another.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use client::driver::{cert_file_fingerprint, Trust};
use client::history::KeptRoom;
use client::terminal::read_roster;
use common::crypto::PrivateKey;
use common::engine::admin::Admin;
use common::engine::{AdminConfig, Command, Engine, MAX_NAME};
use common::invite::{relays_from, Invite, RelayEndpoint};
use common::{Fingerprint, RoomId};
use slint::ComponentHandle;
use zeroize::Zeroizing;

use crate::keys::{self, KeyState};
use crate::lines::note;
use crate::room::RoomWindow;
use crate::rooms::{Network, RoomSlot, Rooms};
use crate::{settings, AdminWindow, LineKind, Room, Theme};

/// How the admin app starts (from its command line).
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// Relay HOST:PORT.
    pub relay: String,
    /// The relay's certificate file, or its SHA-256 (64 hex).
    pub relay_cert: String,
    /// The room's name.
    pub room_name: String,
    /// The admin's display name.
    pub name: String,
    /// Room password (members who prove it are approved automatically).
    pub room_password: Option<Zeroizing<String>>,
    /// Roster file.
    pub roster: Option<PathBuf>,
    /// Identity key file.
    pub identity: PathBuf,
    /// Room id (random when not given).
    pub room: Option<RoomId>,
    /// Verify the relay against this CA instead of the pin.
    pub ca: Option<PathBuf>,
    /// Rekey after this many messages (0: never).
    pub rekey_after_messages: u64,
    /// Rekey after this many milliseconds (0: never).
    pub rekey_after_ms: u64,
    /// Open the room at once, without waiting for the button.
    pub open_now: bool,
    /// Where the theme and fields are remembered (`None`: nowhere).
    pub settings: Option<PathBuf>,
}

/// What the form yields once checked.
struct Form {
    /// In order of preference (never empty).
    relays: Vec<RelayEndpoint>,
    room_name: String,
    name: String,
    password: Option<Zeroizing<String>>,
    roster: HashSet<Fingerprint>,
    relay_text: String,
    cert_text: String,
}

/// The admin window and what keeps it working.
pub struct AdminApp {
    /// The window.
    pub window: AdminWindow,
    /// Its rooms.
    pub rooms: Rc<Rooms<AdminWindow>>,
}

impl std::fmt::Debug for AdminApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApp").finish_non_exhaustive()
    }
}

struct State {
    opts: AdminOptions,
    identity: Rc<RefCell<keys::Identity>>,
}

impl AdminApp {
    /// Builds the window. `runtime` runs slow work (unlocking or creating
    /// the key) off the UI thread; without it that work runs inline.
    pub fn new(
        opts: AdminOptions,
        net: Network,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Result<Self, slint::PlatformError> {
        let window = AdminWindow::new()?;
        let remembered = opts
            .settings
            .as_deref()
            .map(settings::load)
            .unwrap_or_default();
        window
            .global::<Theme>()
            .invoke_set_dark(remembered.is_dark());
        window.set_version(crate::VERSION.into());
        window.set_relay_address(opts.relay.clone().into());
        window.set_relay_cert(opts.relay_cert.clone().into());
        window.set_room_name(opts.room_name.clone().into());
        window.set_your_name(opts.name.clone().into());
        if let Some(p) = &opts.room_password {
            window.set_room_password(p.as_str().into());
            meter(&window, p);
        }
        if let Some(r) = &opts.roster {
            window.set_roster(r.display().to_string().into());
        }
        let identity = keys::Identity::probe(opts.identity.clone(), runtime);
        describe_key(&window, &identity.state, &identity.path);
        let rooms = Rooms::install(&window, net, opts.settings.clone());
        let open_now = opts.open_now;
        let state = Rc::new(RefCell::new(State {
            opts,
            identity: Rc::new(RefCell::new(identity)),
        }));

        let w = window.as_weak();
        window.on_password_edited(move |text| {
            if let Some(win) = w.upgrade() {
                meter(&win, &text);
            }
        });
        let (w, st, r) = (window.as_weak(), state.clone(), rooms.clone());
        window.on_open_room(move || {
            if let Some(win) = w.upgrade() {
                open(&win, &st, &r);
            }
        });
        let (w, r) = (window.as_weak(), Rc::downgrade(&rooms));
        window.room_list().on_leave(move |i| {
            let (Some(win), Some(rooms), Ok(i)) = (w.upgrade(), r.upgrade(), usize::try_from(i))
            else {
                return;
            };
            if rooms.leave(i) {
                // No room left: the open-room form is the window again.
                win.set_room_open(false);
            }
        });
        let (w, st, r) = (window.as_weak(), state.clone(), rooms.clone());
        window.on_restore(move || {
            if let Some(win) = w.upgrade() {
                unlock_and_restore(&win, &st, &r);
            }
        });
        let app = AdminApp { window, rooms };
        // The rooms remembered: reopened now if the key needs no
        // passphrase, else once it is unlocked.
        let ready = match &state.borrow().identity.borrow().state {
            KeyState::Ready(k, _) => Some(k.clone()),
            KeyState::Locked => {
                let kept = app.rooms.history().is_some_and(|h| h.path.is_file());
                app.window.set_can_restore(kept);
                None
            }
            _ => None,
        };
        if let Some(key) = ready {
            restore(&app.window, &state, &app.rooms, &key);
        }
        // `--open` opens the form's room at once; with rooms reopened from
        // the room book, only the one `--room` names (not a new room at
        // every start).
        let asked_room = state.borrow().opts.room.is_some();
        if open_now && (app.rooms.slots().is_empty() || asked_room) {
            app.window.invoke_open_room();
        }
        Ok(app)
    }
}

/// Shows the password's strength (zxcvbn, with the room's and admin's
/// names as known words).
fn meter(win: &AdminWindow, password: &str) {
    if password.is_empty() {
        win.set_password_score(-1);
        win.set_password_feedback("".into());
        return;
    }
    let room_name = win.get_room_name().to_string();
    let name = win.get_your_name().to_string();
    // zxcvbn's cost grows fast with length; past 100 characters the score
    // is "very strong" anyway.
    let head: String = password.chars().take(100).collect();
    let entropy = zxcvbn::zxcvbn(&head, &[room_name.as_str(), name.as_str(), "teamchat"]);
    let score = u8::from(entropy.score());
    let feedback = entropy
        .feedback()
        .and_then(|f| {
            f.warning()
                .map(|w| w.to_string())
                .or_else(|| f.suggestions().first().map(ToString::to_string))
        })
        .unwrap_or_default();
    win.set_password_score(i32::from(score));
    win.set_password_feedback(feedback.into());
}

fn describe_key(win: &AdminWindow, key: &KeyState, path: &std::path::Path) {
    let room = win.global::<Room>();
    match key {
        KeyState::Ready(k, _) => {
            room.set_my_fingerprint(k.public().fingerprint().to_string().into());
            room.set_my_safety_code(k.public().safety_code().to_string().into());
            win.set_needs_passphrase(false);
            win.set_new_identity(false);
        }
        KeyState::Locked => {
            win.set_needs_passphrase(true);
            win.set_identity_note(format!("Your key at {} is protected.", path.display()).into());
        }
        KeyState::Missing => {
            win.set_new_identity(true);
            win.set_identity_note(
                format!(
                    "A new RSA-3072 identity will be created at {}.",
                    path.display()
                )
                .into(),
            );
        }
        KeyState::Broken(e) => {
            win.set_open_error(format!("Your identity cannot be used: {e}").into());
        }
    }
}

/// Largest certificate or roster file read (from the UI thread).
const MAX_FORM_FILE: u64 = 1024 * 1024;

/// A regular file of a sensible size: a FIFO or a device would block or
/// flood the UI thread.
fn small_file(path: &std::path::Path) -> Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > MAX_FORM_FILE {
        return Err(format!("{} is larger than 1 MiB", path.display()));
    }
    Ok(())
}

fn check_form(win: &AdminWindow) -> Result<Form, String> {
    let relay_text = win.get_relay_address().trim().to_string();
    let cert_text = win.get_relay_cert().trim().to_string();
    if cert_text.is_empty() {
        return Err("Relay certificate: give the relay's certificate file (PEM) or its SHA-256; it is pinned in the invite.".into());
    }
    // Several relays sharing the room: addresses and certificates separated
    // by commas (one certificate for all, or one per address).
    let mut certs = Vec::new();
    for item in cert_text
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        certs.push(if let Ok(pin) = item.parse::<Fingerprint>() {
            pin
        } else {
            let path = std::path::Path::new(item);
            small_file(path).map_err(|e| format!("Relay certificate: {e}"))?;
            cert_file_fingerprint(path).map_err(|e| format!("Relay certificate: {e}"))?
        });
    }
    let relays = relays_from(&relay_text, &certs).map_err(|e| format!("Relay address: {e}"))?;
    let room_name = win.get_room_name().trim().to_string();
    if room_name.is_empty() || room_name.len() > MAX_NAME {
        return Err(format!("Room name: between 1 and {MAX_NAME} bytes."));
    }
    let name = win.get_your_name().trim().to_string();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("Your name: between 1 and {MAX_NAME} bytes."));
    }
    let password = win.get_room_password().to_string();
    let roster_text = win.get_roster().trim().to_string();
    let roster = if roster_text.is_empty() {
        HashSet::new()
    } else {
        small_file(std::path::Path::new(&roster_text)).map_err(|e| format!("Roster: {e}"))?;
        read_roster(std::path::Path::new(&roster_text))
            .map_err(|e| format!("Roster: {e}"))?
            .into_iter()
            .collect()
    };
    Ok(Form {
        relays,
        room_name,
        name,
        password: (!password.is_empty()).then(|| Zeroizing::new(password)),
        roster,
        relay_text,
        cert_text,
    })
}

fn open(win: &AdminWindow, state: &Rc<RefCell<State>>, rooms: &Rc<Rooms<AdminWindow>>) {
    if win.get_busy() {
        return;
    }
    let form = match check_form(win) {
        Ok(f) => f,
        Err(e) => {
            win.set_open_error(e.into());
            return;
        }
    };
    win.set_open_error("".into());
    let identity = state.borrow().identity.clone();
    let passphrase = Zeroizing::new(win.get_passphrase().to_string());
    let (w, st, rs) = (win.as_weak(), state.clone(), rooms.clone());
    win.set_busy(true);
    let asked = keys::obtain(&identity, passphrase, move |r| {
        let Some(win) = w.upgrade() else { return };
        win.set_busy(false);
        match r {
            Ok((key, notes)) => {
                {
                    let id = st.borrow().identity.clone();
                    let id = id.borrow();
                    describe_key(&win, &id.state, &id.path);
                }
                finish(&win, &st, &rs, form, key, &notes);
            }
            Err(e) => win.set_open_error(e.into()),
        }
    });
    if let Err(e) = asked {
        win.set_busy(false);
        win.set_open_error(e.into());
    }
}

fn finish(
    win: &AdminWindow,
    state: &Rc<RefCell<State>>,
    rooms: &Rc<Rooms<AdminWindow>>,
    form: Form,
    key: Arc<PrivateKey>,
    notes: &[String],
) {
    let room = {
        let mut st = state.borrow_mut();
        // The password now lives in the engine's config only.
        st.opts.room_password = None;
        if let Some(path) = &st.opts.settings {
            let _ = settings::update(path, |s| {
                s.name = Some(form.name.clone());
                s.relay = Some(form.relay_text.clone());
                s.relay_cert = Some(form.cert_text.clone());
            });
        }
        // The room id given on the command line is for the first room
        // opened (taken once it is); if it was reopened from the room
        // book, it is shown.
        st.opts.room
    };
    if let Some(slot) = room.and_then(|r| rooms.find(&r)) {
        // Reopened from the room book already: shown, not opened twice
        // (its password and roster are those it was opened with).
        state.borrow_mut().opts.room = None;
        win.set_room_password("".into());
        win.set_passphrase("".into());
        rooms.show(&slot);
        win.set_room_open(true);
        win.room_list().set_adding(false);
        restore(win, state, rooms, &key);
        return;
    }
    let room = room.unwrap_or_else(common::crypto::random_room_id);
    let opened = Opening {
        room,
        relays: form.relays,
        room_name: form.room_name,
        name: form.name,
        password: form.password,
        roster: form.roster,
    };
    let slot = match start_room(win, state, rooms, opened, &key) {
        Ok(s) => s,
        Err(e) => {
            win.set_open_error(e.into());
            return;
        }
    };
    state.borrow_mut().opts.room = None;
    rooms.show(&slot);
    win.set_room_password("".into());
    win.set_passphrase("".into());
    win.set_room_open(true);
    win.room_list().set_adding(false);
    for n in notes {
        let kind = if n.starts_with("created") {
            LineKind::System
        } else {
            LineKind::Warning
        };
        note(&slot, kind, n);
    }
    // The other rooms remembered (if the key was locked until now), and
    // this one with them.
    restore(win, state, rooms, &key);
}

/// What opens a room.
struct Opening {
    room: RoomId,
    /// In order of preference (never empty).
    relays: Vec<RelayEndpoint>,
    room_name: String,
    name: String,
    password: Option<Zeroizing<String>>,
    roster: HashSet<Fingerprint>,
}

/// Adds the room to the window, starts its driver and remembers it. Not
/// shown yet.
fn start_room(
    win: &AdminWindow,
    state: &Rc<RefCell<State>>,
    rooms: &Rc<Rooms<AdminWindow>>,
    o: Opening,
    key: &Arc<PrivateKey>,
) -> Result<Rc<RoomSlot<AdminWindow>>, String> {
    let Some(first) = o.relays.first().cloned() else {
        return Err("no relay to open the room on".into());
    };
    let invite = Invite::new(o.relays.clone(), o.room, key.public().fingerprint())
        .map_err(|e| format!("cannot make the invite: {e}"))?
        .to_string();
    let st = state.borrow();
    // What this room kept from earlier runs (bans), with the next run
    // number, written before anything is announced.
    let kept = client::admin_state::StateFile::new(
        &client::admin_state::folder_for(&st.opts.identity),
        key,
        &o.room,
    )
    .begin_run(client::now_ms())
    .map_err(|e| e.to_string())?;
    let roster_kept: Vec<Fingerprint> = o.roster.iter().copied().collect();
    let cfg = AdminConfig {
        room: o.room,
        room_name: o.room_name.clone(),
        admin_name: o.name.clone(),
        password: o.password,
        roster: o.roster,
        rekey_after_messages: st.opts.rekey_after_messages,
        rekey_after_ms: st.opts.rekey_after_ms,
        state: kept,
    };
    let trust = st
        .opts
        .ca
        .clone()
        .map(Trust::CaFile)
        .unwrap_or(Trust::Pinned);
    drop(st);
    let slot = rooms.add(o.room)?;
    let r = slot.room();
    // The window warns when the relay shows a certificate the invite does
    // not pin; with relays of different certificates the driver's own pin
    // check per relay does that.
    let one_cert = o.relays.iter().all(|x| x.cert == first.cert);
    r.set_expected_cert(if one_cert {
        first.cert.to_string().into()
    } else {
        "".into()
    });
    r.set_room_name(o.room_name.clone().into());
    r.set_relay(first.address().into());
    r.set_invite(invite.clone().into());
    let me = win.room();
    me.set_my_fingerprint(key.public().fingerprint().to_string().into());
    me.set_my_safety_code(key.public().safety_code().to_string().into());
    let engine = Engine::Admin(Box::new(Admin::new(cfg, key.clone())));
    if let Err(e) = rooms.start(&slot, engine, o.relays, trust) {
        if let Some(i) = rooms.slots().iter().position(|s| Rc::ptr_eq(s, &slot)) {
            rooms.leave(i);
        }
        return Err(e);
    }
    // The bans kept from earlier runs, for the Banned list.
    if let Err(e) = slot.session.send(Command::ListBans) {
        note(&slot, LineKind::Warning, &e);
    }
    slot.remember(KeptRoom {
        room: o.room,
        invite,
        name: o.room_name,
        my_name: o.name,
        notify: settings::level_name(slot.room().get_notify_level()).into(),
        admin: true,
        roster: roster_kept,
    });
    Ok(slot)
}

/// Reopens the rooms the room book remembers (opened with `key`) that the
/// window does not hold yet, and keeps the list from now on. A reopened
/// room has no room password (it is never written down): members are
/// approved by hand until one is set.
fn restore(
    win: &AdminWindow,
    state: &Rc<RefCell<State>>,
    rooms: &Rc<Rooms<AdminWindow>>,
    key: &Arc<PrivateKey>,
) -> usize {
    win.set_can_restore(false);
    let started = rooms.restore(
        key,
        true,
        |kept, invite| {
            let opening = Opening {
                room: kept.room,
                relays: invite.relays().to_vec(),
                room_name: kept.name.clone(),
                name: kept.my_name.clone(),
                password: None,
                roster: kept.roster.iter().copied().collect(),
            };
            let slot = start_room(win, state, rooms, opening, key)?;
            note(
                &slot,
                LineKind::System,
                "reopened: a room you opened before; members are approved by hand until you set a room password",
            );
            Ok(slot)
        },
        |text| warn(win, rooms, text),
    );
    if rooms.shown().is_some() {
        win.set_room_open(true);
    }
    started
}

/// A warning in the room on screen, or on the form if there is none.
fn warn(win: &AdminWindow, rooms: &Rooms<AdminWindow>, text: &str) {
    match rooms.shown() {
        Some(slot) => crate::window::banner(&slot, crate::BannerKind::Warning, text),
        None => win.set_open_error(text.into()),
    }
}

/// The "Unlock and reconnect my rooms" button: the key is unlocked with
/// the passphrase typed, then the remembered rooms reopen.
fn unlock_and_restore(
    win: &AdminWindow,
    state: &Rc<RefCell<State>>,
    rooms: &Rc<Rooms<AdminWindow>>,
) {
    if win.get_busy() {
        return;
    }
    win.set_open_error("".into());
    let identity = state.borrow().identity.clone();
    let passphrase = Zeroizing::new(win.get_passphrase().to_string());
    let (w, st, rs) = (win.as_weak(), state.clone(), rooms.clone());
    win.set_busy(true);
    let asked = keys::obtain(&identity, passphrase, move |r| {
        let Some(win) = w.upgrade() else { return };
        win.set_busy(false);
        match r {
            Ok((key, _)) => {
                {
                    let id = st.borrow().identity.clone();
                    let id = id.borrow();
                    describe_key(&win, &id.state, &id.path);
                }
                win.set_passphrase("".into());
                if restore(&win, &st, &rs, &key) == 0 && rs.slots().is_empty() {
                    win.set_open_error(
                        "No rooms are remembered here: fill in the form to open one.".into(),
                    );
                }
            }
            Err(e) => win.set_open_error(e.into()),
        }
    });
    if let Err(e) = asked {
        win.set_busy(false);
        win.set_open_error(e.into());
    }
}

/// Runs the admin window until it is closed, then leaves the room.
/// `driver`: files (where they go, limits, pace) and history.
pub fn run(
    opts: AdminOptions,
    driver: client::driver::Options,
) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("teamchat-net")
        .enable_all()
        .build()?;
    let net = Network::Runtime(rt.handle().clone(), driver);
    let app = AdminApp::new(opts, net, Some(rt.handle().clone()))?;
    crate::notify::start();
    app.window.run()?;
    // The window is closed: tell the rooms we leave, then stop.
    if !app.rooms.leave_all(std::time::Duration::from_secs(3)) {
        eprintln!("left without a goodbye: the relay did not answer in time");
    }
    Ok(())
}
