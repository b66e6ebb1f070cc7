//! The member window: the join form (invite, name, key passphrase), then
//! the rooms, each with the admin's safety code shown for comparison. The
//! form comes back over the rooms to join another.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use client::driver::Trust;
use client::history::KeptRoom;
use common::crypto::PrivateKey;
use common::engine::member::Member;
use common::engine::{Engine, MemberConfig, MAX_NAME};
use common::invite::Invite;
use slint::ComponentHandle;
use zeroize::Zeroizing;

use crate::keys::{self, KeyState};
use crate::lines::note;
use crate::room::RoomWindow;
use crate::rooms::{Network, RoomSlot, Rooms};
use crate::{settings, LineKind, MemberWindow, Room, Theme};

/// How the member app starts (from its command line).
#[derive(Debug, Clone)]
pub struct MemberOptions {
    /// The invite, if given on the command line.
    pub invite: Option<String>,
    /// Display name, if given.
    pub name: Option<String>,
    /// Room password, if given.
    pub password: Option<Zeroizing<String>>,
    /// Identity key file.
    pub identity: PathBuf,
    /// Verify the relay against this CA instead of the invite's pin.
    pub ca: Option<PathBuf>,
    /// Join at once, without waiting for the button.
    pub join_now: bool,
    /// Where the theme and name are remembered (`None`: nowhere).
    pub settings: Option<PathBuf>,
}

/// What the form yields once checked.
struct Form {
    invite: Invite,
    name: String,
    password: Option<Zeroizing<String>>,
}

/// The member window and what keeps it working.
pub struct MemberApp {
    /// The window.
    pub window: MemberWindow,
    /// Its rooms.
    pub rooms: Rc<Rooms<MemberWindow>>,
}

impl std::fmt::Debug for MemberApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberApp").finish_non_exhaustive()
    }
}

struct State {
    opts: MemberOptions,
    identity: Rc<RefCell<keys::Identity>>,
}

impl MemberApp {
    /// Builds the window. `runtime` runs slow work (unlocking or creating
    /// the key) off the UI thread; without it that work runs inline.
    pub fn new(
        opts: MemberOptions,
        net: Network,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Result<Self, slint::PlatformError> {
        let window = MemberWindow::new()?;
        let remembered = opts
            .settings
            .as_deref()
            .map(settings::load)
            .unwrap_or_default();
        window
            .global::<Theme>()
            .invoke_set_dark(remembered.is_dark());
        window.set_version(crate::VERSION.into());
        if let Some(i) = &opts.invite {
            window.set_invite(i.clone().into());
        }
        if let Some(n) = opts.name.clone().or(remembered.name) {
            window.set_display_name(n.into());
        }
        if let Some(p) = &opts.password {
            window.set_room_password(p.as_str().into());
        }
        let identity = keys::Identity::probe(opts.identity.clone(), runtime);
        describe_key(&window, &identity.state, &identity.path);
        let rooms = Rooms::install(&window, net, opts.settings.clone());
        let join_now = opts.join_now;
        let state = Rc::new(RefCell::new(State {
            opts,
            identity: Rc::new(RefCell::new(identity)),
        }));
        let (w, st, r) = (window.as_weak(), state.clone(), rooms.clone());
        window.on_join(move || {
            if let Some(win) = w.upgrade() {
                join(&win, &st, &r);
            }
        });
        let (w, r) = (window.as_weak(), Rc::downgrade(&rooms));
        window.room_list().on_leave(move |i| {
            let (Some(win), Some(rooms), Ok(i)) = (w.upgrade(), r.upgrade(), usize::try_from(i))
            else {
                return;
            };
            if rooms.leave(i) {
                // No room left: the join form is the window again.
                win.set_room_open(false);
            }
        });
        let (w, st, r) = (window.as_weak(), state.clone(), rooms.clone());
        window.on_restore(move || {
            if let Some(win) = w.upgrade() {
                unlock_and_restore(&win, &st, &r);
            }
        });
        let app = MemberApp { window, rooms };
        // The rooms remembered: reconnected now if the key needs no
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
        if join_now {
            app.window.invoke_join();
        }
        Ok(app)
    }
}

fn describe_key(win: &MemberWindow, key: &KeyState, path: &std::path::Path) {
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
            win.set_join_error(format!("Your identity cannot be used: {e}").into());
        }
    }
}

/// Checks the join form. The invite may be pasted with line breaks or
/// spaces around it (mail clients wrap long lines).
fn check_form(win: &MemberWindow) -> Result<Form, String> {
    let raw: String = win
        .get_invite()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if raw.is_empty() {
        return Err(
            "Invite: paste the invite the admin gave you (it starts with teamchat://).".into(),
        );
    }
    let invite: Invite = raw
        .parse()
        .map_err(|e| format!("This invite is not valid: {e}"))?;
    let name = win.get_display_name().trim().to_string();
    if name.is_empty() {
        return Err("Your name: choose the name the others will see.".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("Your name: at most {MAX_NAME} bytes."));
    }
    let password = win.get_room_password().to_string();
    Ok(Form {
        invite,
        name,
        password: (!password.is_empty()).then(|| Zeroizing::new(password)),
    })
}

fn join(win: &MemberWindow, state: &Rc<RefCell<State>>, rooms: &Rc<Rooms<MemberWindow>>) {
    if win.get_busy() {
        return;
    }
    let form = match check_form(win) {
        Ok(f) => f,
        Err(e) => {
            win.set_join_error(e.into());
            return;
        }
    };
    // A room this window holds already: shown, not joined twice.
    if let Some(slot) = rooms.find(&form.invite.room) {
        win.set_join_error("".into());
        win.set_invite("".into());
        rooms.show(&slot);
        win.room_list().set_adding(false);
        return;
    }
    win.set_join_error("".into());
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
            Err(e) => win.set_join_error(e.into()),
        }
    });
    if let Err(e) = asked {
        win.set_busy(false);
        win.set_join_error(e.into());
    }
}

fn finish(
    win: &MemberWindow,
    state: &Rc<RefCell<State>>,
    rooms: &Rc<Rooms<MemberWindow>>,
    form: Form,
    key: Arc<PrivateKey>,
    notes: &[String],
) {
    {
        let mut st = state.borrow_mut();
        st.opts.password = None;
        if let Some(path) = &st.opts.settings {
            let _ = settings::update(path, |s| s.name = Some(form.name.clone()));
        }
    }
    let kept = KeptRoom {
        room: form.invite.room,
        invite: form.invite.to_string(),
        name: String::new(),
        my_name: form.name.clone(),
        notify: "mentions".into(),
        admin: false,
        roster: Vec::new(),
    };
    let slot = match start_room(
        win,
        state,
        rooms,
        &form.invite,
        form.name,
        form.password,
        &key,
    ) {
        Ok(s) => s,
        Err(e) => {
            win.set_join_error(e.into());
            return;
        }
    };
    slot.remember(kept);
    rooms.show(&slot);
    win.set_invite("".into());
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
    note(
        &slot,
        LineKind::System,
        &format!(
            "joining; compare the admin's safety code with the admin once it shows (the invite pins key {})",
            form.invite.admin.short()
        ),
    );
    // The other rooms remembered (if the key was locked until now), and
    // this one with them.
    restore(win, state, rooms, &key);
}

/// Adds the room of `invite` to the window and starts its driver, as
/// `name` (with the room `password`, if any). Not shown yet.
fn start_room(
    win: &MemberWindow,
    state: &Rc<RefCell<State>>,
    rooms: &Rc<Rooms<MemberWindow>>,
    invite: &Invite,
    name: String,
    password: Option<Zeroizing<String>>,
    key: &Arc<PrivateKey>,
) -> Result<Rc<RoomSlot<MemberWindow>>, String> {
    let trust = state
        .borrow()
        .opts
        .ca
        .clone()
        .map(Trust::CaFile)
        .unwrap_or(Trust::Pinned);
    let slot = rooms.add(invite.room)?;
    let cfg = MemberConfig {
        room: invite.room,
        admin_pin: invite.admin,
        name,
        password,
        min_run: 0,
    };
    let relays = invite.relays().to_vec();
    if let Some(first) = relays.first() {
        slot.room().set_relay(first.address().into());
    }
    let r = win.room();
    r.set_my_fingerprint(key.public().fingerprint().to_string().into());
    r.set_my_safety_code(key.public().safety_code().to_string().into());
    let engine = Engine::Member(Box::new(Member::new(cfg, key.clone())));
    if let Err(e) = rooms.start(&slot, engine, relays, trust) {
        if let Some(i) = rooms.slots().iter().position(|s| Rc::ptr_eq(s, &slot)) {
            rooms.leave(i);
        }
        return Err(e);
    }
    Ok(slot)
}

/// Reconnects the rooms the room book remembers (opened with `key`) that
/// the window does not hold yet, and keeps the list from now on. What
/// cannot be read is said in the room on screen.
fn restore(
    win: &MemberWindow,
    state: &Rc<RefCell<State>>,
    rooms: &Rc<Rooms<MemberWindow>>,
    key: &Arc<PrivateKey>,
) -> usize {
    win.set_can_restore(false);
    let started = rooms.restore(
        key,
        false,
        |kept, invite| {
            let slot = start_room(win, state, rooms, &invite, kept.my_name.clone(), None, key)?;
            slot.room().set_room_name(kept.name.clone().into());
            note(&slot, LineKind::System, "reconnecting: a room you were in");
            Ok(slot)
        },
        |text| warn(win, rooms, text),
    );
    if rooms.shown().is_some() {
        win.set_room_open(true);
    }
    started
}

/// A warning in the room on screen, or on the join form if there is none.
fn warn(win: &MemberWindow, rooms: &Rooms<MemberWindow>, text: &str) {
    match rooms.shown() {
        Some(slot) => crate::window::banner(&slot, crate::BannerKind::Warning, text),
        None => win.set_join_error(text.into()),
    }
}

/// The "Unlock and reconnect my rooms" button: the key is unlocked with
/// the passphrase typed, then the remembered rooms reconnect.
fn unlock_and_restore(
    win: &MemberWindow,
    state: &Rc<RefCell<State>>,
    rooms: &Rc<Rooms<MemberWindow>>,
) {
    if win.get_busy() {
        return;
    }
    win.set_join_error("".into());
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
                    win.set_join_error(
                        "No rooms are remembered here: paste an invite to join one.".into(),
                    );
                }
            }
            Err(e) => win.set_join_error(e.into()),
        }
    });
    if let Err(e) = asked {
        win.set_busy(false);
        win.set_join_error(e.into());
    }
}

/// Runs the member window until it is closed, then leaves the room.
/// `driver`: files (where they go, limits, pace) and history.
pub fn run(
    opts: MemberOptions,
    driver: client::driver::Options,
) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("teamchat-net")
        .enable_all()
        .build()?;
    let net = Network::Runtime(rt.handle().clone(), driver);
    let app = MemberApp::new(opts, net, Some(rt.handle().clone()))?;
    crate::notify::start();
    app.window.run()?;
    // The window is closed: tell the rooms we leave, then stop.
    if !app.rooms.leave_all(std::time::Duration::from_secs(3)) {
        eprintln!("left without a goodbye: the relay did not answer in time");
    }
    Ok(())
}
