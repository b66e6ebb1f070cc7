//! Several rooms in one window. Each room is a [`RoomSlot`]: its own driver
//! and connection ([`Session`]), its own lines, members, files and
//! moderation, and its own copy of what the `Room`, `Transfers` and
//! `Moderation` globals show. The globals show one room at a time: the
//! slot on screen writes through to them, the others keep their state to
//! themselves until they are shown. [`Rooms`] holds a window's slots, the
//! room list (`RoomList` global: name, unread and mention counts, the state
//! of each connection) and which room is shown.
//!
//! The rest of the glue ([`crate::room`], [`crate::lines`],
//! [`crate::transfers`], [`crate::moderation`]) writes to a slot with the
//! same getters and setters the generated globals have, so a room that is
//! not on screen is kept up to date exactly as the one that is.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use client::driver::{self, Request, Trust, Update};
use client::history::{Book, HistoryOptions, KeptRoom, RoomBook};
use common::crypto::PrivateKey;
use common::engine::{printable, Engine};
use common::invite::{Invite, RelayEndpoint};
use common::{Fingerprint, RoomId};
use slint::{Model, ModelRc, SharedString, VecModel};
use tokio::sync::mpsc;

use crate::session::Session;
use crate::window::RoomWindow;
use crate::{BanRow, BannerKind, ChatLine, FileRow, MemberRow, NotifyLevel, PendingRow, RoomRow};

/// Most rooms one window holds.
pub const MAX_ROOMS: usize = 64;

/// A per-room copy of some of a global's properties. While its room is on
/// screen a setter writes the global too and a getter reads the global
/// (the `.slint` side sets some of them itself); otherwise both use the
/// copy. [`show`](RoomProps::show) puts the copy in the global,
/// [`hide`](RoomProps::hide) takes the global's values back.
macro_rules! mirror {
    (
        $(#[$meta:meta])*
        $name:ident, $access:ident {
            $( $field:ident : $ty:ty = $get:ident / $set:ident, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name<T: RoomWindow> {
            win: slint::Weak<T>,
            shown: Cell<bool>,
            $( $field: RefCell<$ty>, )*
        }

        impl<T: RoomWindow> std::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("shown", &self.shown.get())
                    .finish_non_exhaustive()
            }
        }

        impl<T: RoomWindow> $name<T> {
            fn new(win: slint::Weak<T>) -> Self {
                $name {
                    win,
                    shown: Cell::new(false),
                    $( $field: RefCell::default(), )*
                }
            }

            /// The window, while this room is the one on screen.
            fn live(&self) -> Option<T> {
                if self.shown.get() {
                    self.win.upgrade()
                } else {
                    None
                }
            }

            $(
                #[allow(missing_docs)]
                pub fn $get(&self) -> $ty {
                    match self.live() {
                        Some(w) => w.$access().$get(),
                        None => self.$field.borrow().clone(),
                    }
                }

                #[allow(missing_docs)]
                pub fn $set(&self, value: $ty) {
                    if let Some(w) = self.live() {
                        w.$access().$set(value.clone());
                    }
                    *self.$field.borrow_mut() = value;
                }
            )*

            /// Puts this room's values in the global, and follows it.
            fn show(&self) {
                if let Some(w) = self.win.upgrade() {
                    let g = w.$access();
                    $( g.$set(self.$field.borrow().clone()); )*
                }
                self.shown.set(true);
            }

            /// Takes the global's values back, and stops following it.
            fn hide(&self) {
                if let Some(w) = self.live() {
                    let g = w.$access();
                    $( *self.$field.borrow_mut() = g.$get(); )*
                }
                self.shown.set(false);
            }
        }
    };
}

mirror! {
    /// A room's part of the `Room` global (what is window-wide, such as
    /// our own identity and the notification text setting, is not here).
    RoomProps, room {
        room_name: SharedString = get_room_name / set_room_name,
        lines: ModelRc<ChatLine> = get_lines / set_lines,
        members: ModelRc<MemberRow> = get_members / set_members,
        typing: SharedString = get_typing / set_typing,
        relay: SharedString = get_relay / set_relay,
        tls: SharedString = get_tls / set_tls,
        connection: SharedString = get_connection / set_connection,
        online: bool = get_online / set_online,
        epoch: i32 = get_epoch / set_epoch,
        can_send: bool = get_can_send / set_can_send,
        admin_safety_code: SharedString = get_admin_safety_code / set_admin_safety_code,
        admin_verified: bool = get_admin_verified / set_admin_verified,
        revision: i32 = get_revision / set_revision,
        removed: bool = get_removed / set_removed,
        removed_title: SharedString = get_removed_title / set_removed_title,
        removed_note: SharedString = get_removed_note / set_removed_note,
        expected_cert: SharedString = get_expected_cert / set_expected_cert,
        invite: SharedString = get_invite / set_invite,
        banner_kind: BannerKind = get_banner_kind / set_banner_kind,
        banner_text: SharedString = get_banner_text / set_banner_text,
        private_to: SharedString = get_private_to / set_private_to,
        private_name: SharedString = get_private_name / set_private_name,
        private_lines: ModelRc<ChatLine> = get_private_lines / set_private_lines,
        room_id: SharedString = get_room_id / set_room_id,
        notify_level: NotifyLevel = get_notify_level / set_notify_level,
        unread_from: i32 = get_unread_from / set_unread_from,
        draft: SharedString = get_draft / set_draft,
    }
}

mirror! {
    /// A room's part of the `Transfers` global: its files (the chooser is
    /// the window's).
    FilesProps, transfers {
        files: ModelRc<FileRow> = get_files / set_files,
    }
}

mirror! {
    /// A room's part of the `Moderation` global.
    ModerationProps, moderation {
        pending: ModelRc<PendingRow> = get_pending / set_pending,
        bans: ModelRc<BanRow> = get_bans / set_bans,
    }
}

/// Our outgoing typing state in one room.
#[derive(Debug, Default)]
pub(crate) struct TypingOut {
    pub(crate) on: bool,
    pub(crate) last_sent: Option<std::time::Instant>,
    pub(crate) last_edit: Option<std::time::Instant>,
}

/// One room of a window.
pub struct RoomSlot<T: RoomWindow> {
    win: slint::Weak<T>,
    room: RoomProps<T>,
    files: FilesProps<T>,
    moderation: ModerationProps<T>,
    /// The room's connection.
    pub session: Session,
    pub(crate) typing: RefCell<TypingOut>,
    id: Cell<Option<RoomId>>,
    unread: Cell<u32>,
    mentions: Cell<u32>,
    /// The room could not connect, or stopped for good.
    trouble: Cell<bool>,
    /// What is remembered of it to reconnect at start (none: nothing).
    kept: RefCell<Option<KeptRoom>>,
    /// Names picked from the "@" list for the draft, with the keys they
    /// were picked as (they win where they fit when the line is sent).
    pub(crate) mention_picks: RefCell<Vec<(String, Fingerprint)>>,
    /// The keys we marked verified (the window's, shared by its rooms).
    verified: Rc<RefCell<HashSet<Fingerprint>>>,
}

impl<T: RoomWindow> std::fmt::Debug for RoomSlot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomSlot")
            .field("name", &self.room.get_room_name())
            .field("unread", &self.unread.get())
            .finish_non_exhaustive()
    }
}

impl<T: RoomWindow> RoomSlot<T> {
    fn new(
        win: &slint::Weak<T>,
        session: Session,
        verified: Rc<RefCell<HashSet<Fingerprint>>>,
    ) -> Self {
        let slot = RoomSlot {
            verified,
            mention_picks: RefCell::default(),
            win: win.clone(),
            room: RoomProps::new(win.clone()),
            files: FilesProps::new(win.clone()),
            moderation: ModerationProps::new(win.clone()),
            session,
            typing: RefCell::default(),
            id: Cell::new(None),
            unread: Cell::new(0),
            mentions: Cell::new(0),
            trouble: Cell::new(false),
            kept: RefCell::new(None),
        };
        let r = &slot.room;
        r.set_lines(ModelRc::new(VecModel::<ChatLine>::default()));
        r.set_members(ModelRc::new(VecModel::<MemberRow>::default()));
        r.set_connection("not connected".into());
        r.set_unread_from(-1);
        slot.files
            .set_files(ModelRc::new(VecModel::<FileRow>::default()));
        slot.moderation
            .set_pending(ModelRc::new(VecModel::<PendingRow>::default()));
        slot.moderation
            .set_bans(ModelRc::new(VecModel::<BanRow>::default()));
        slot
    }

    /// The room's part of the `Room` global.
    pub fn room(&self) -> &RoomProps<T> {
        &self.room
    }

    /// The room's files.
    pub fn transfers(&self) -> &FilesProps<T> {
        &self.files
    }

    /// The room's join requests and bans.
    pub fn moderation(&self) -> &ModerationProps<T> {
        &self.moderation
    }

    /// The window (gone once it closed).
    pub fn window(&self) -> Option<T> {
        self.win.upgrade()
    }

    /// Our own fingerprint (the window's identity), hex.
    pub fn my_fingerprint(&self) -> String {
        self.window()
            .map(|w| w.room().get_my_fingerprint().to_string())
            .unwrap_or_default()
    }

    /// Whether this room is the one on screen.
    pub fn is_shown(&self) -> bool {
        self.room.shown.get()
    }

    /// The room's id, once it is known.
    pub fn room_id(&self) -> Option<RoomId> {
        self.id.get()
    }

    /// Lines for us that came while we were not looking.
    pub fn unread(&self) -> u32 {
        self.unread.get()
    }

    /// Of those, the ones that mention us.
    pub fn mentions(&self) -> u32 {
        self.mentions.get()
    }

    /// A line for us arrived (`mention`: it names us). Unread unless this
    /// room is on screen in the active window; the first unread line gets
    /// the "new messages" divider (`Room.unread-from`, the line's index).
    pub(crate) fn arrived(&self, mention: bool) {
        let active = self.window().is_some_and(|w| crate::notify::is_active(&w));
        if self.is_shown() && active {
            return;
        }
        if self.unread.get() == 0 || self.room.get_unread_from() < 0 {
            let at = self.room.get_lines().row_count().saturating_sub(1);
            self.room.set_unread_from(i32::try_from(at).unwrap_or(-1));
        }
        self.unread.set(self.unread.get().saturating_add(1));
        if mention {
            self.mentions.set(self.mentions.get().saturating_add(1));
        }
    }

    /// Lines were dropped from the front of the room's lines: the divider
    /// moves with its line.
    pub(crate) fn lines_dropped(&self, n: usize) {
        let from = self.room.get_unread_from();
        if from >= 0 {
            let n = i32::try_from(n).unwrap_or(i32::MAX);
            self.room
                .set_unread_from(if from >= n { from - n } else { 0 });
        }
    }

    /// Lines were put in front of the room's lines (history).
    pub(crate) fn lines_inserted(&self, n: usize) {
        let from = self.room.get_unread_from();
        if from >= 0 {
            let n = i32::try_from(n).unwrap_or(i32::MAX);
            self.room.set_unread_from(from.saturating_add(n));
        }
    }

    /// The room's lines on this computer were cleared: nothing is unread.
    pub(crate) fn cleared(&self) {
        self.room.set_unread_from(-1);
        self.read();
    }

    /// Everything was read: no more unread lines (the divider stays where
    /// it is until the room is left and shown again).
    fn read(&self) {
        self.unread.set(0);
        self.mentions.set(0);
    }

    /// This room's row in the room list.
    fn row(&self) -> RoomRow {
        let r = &self.room;
        let name = r.get_room_name();
        let removed = r.get_removed();
        let troubled = self.trouble.get() && !r.get_online();
        let problem = if troubled && r.get_banner_kind() != BannerKind::None {
            r.get_banner_text()
        } else {
            SharedString::new()
        };
        RoomRow {
            name: if name.is_empty() {
                "joining…".into()
            } else {
                name
            },
            unread: i32::try_from(self.unread.get()).unwrap_or(i32::MAX),
            mentions: i32::try_from(self.mentions.get()).unwrap_or(i32::MAX),
            status: r.get_connection(),
            problem,
            online: r.get_online() && !removed,
            trouble: removed || troubled,
            shown: self.is_shown(),
        }
    }

    /// Whether we marked `fp` verified (safety codes compared).
    pub fn is_verified(&self, fp: &Fingerprint) -> bool {
        self.verified.borrow().contains(fp)
    }

    /// Remember this room (in the window's room book, once it is open) as
    /// `kept`; its name and notification setting follow the room's.
    pub fn remember(&self, kept: KeptRoom) {
        *self.kept.borrow_mut() = Some(kept);
    }

    /// What is remembered of the room, up to date (none: not remembered).
    fn kept_now(&self) -> Option<KeptRoom> {
        let mut k = self.kept.borrow().clone()?;
        let name = self.room.get_room_name();
        if !name.is_empty() {
            k.name = name.to_string();
        }
        k.notify = crate::settings::level_name(self.room.get_notify_level()).into();
        Some(k)
    }

    /// Whether the room's name moved on from what is remembered.
    fn kept_is_stale(&self) -> bool {
        let name = self.room.get_room_name();
        self.kept
            .borrow()
            .as_ref()
            .is_some_and(|k| !name.is_empty() && k.name != name.as_str())
    }

    /// The connection could not be made or stopped for good (`true`), or
    /// works again (`false`).
    pub(crate) fn set_trouble(&self, trouble: bool) {
        self.trouble.set(trouble);
    }

    fn show(&self) {
        self.room.show();
        self.files.show();
        self.moderation.show();
    }

    fn hide(&self) {
        self.room.hide();
        self.files.hide();
        self.moderation.hide();
    }
}

/// Where new rooms' drivers run.
#[derive(Debug, Clone)]
pub enum Network {
    /// On this tokio runtime, with these options (files, history).
    Runtime(tokio::runtime::Handle, driver::Options),
    /// Nowhere: every room's commands go to this channel (with the room
    /// they are for), and its updates come from whoever holds the window
    /// (the UI tests); rooms are remembered in this database, if any.
    Detached(mpsc::Sender<(RoomId, Request)>, Option<HistoryOptions>),
}

impl Network {
    fn session(&self, room: RoomId) -> Session {
        match self {
            Network::Runtime(rt, options) => {
                let s = Session::new(rt.clone());
                s.set_options(options.clone());
                s
            }
            Network::Detached(tx, _) => Session::detached(tx.clone(), room),
        }
    }

    /// Where lines and remembered rooms are kept (none: `--no-history`).
    pub fn history(&self) -> Option<HistoryOptions> {
        match self {
            Network::Runtime(_, options) => options.history.clone(),
            Network::Detached(_, history) => history.clone(),
        }
    }
}

thread_local! {
    // Each window's rooms, by the address of its `slint::Window` (for
    // [`Rooms::of`]).
    static WINDOWS: RefCell<HashMap<usize, Box<dyn Any>>> = RefCell::new(HashMap::new());
}

fn window_key<T: RoomWindow>(win: &T) -> usize {
    std::ptr::from_ref(win.window()) as usize
}

/// A window's rooms.
pub struct Rooms<T: RoomWindow> {
    win: slint::Weak<T>,
    key: usize,
    net: Network,
    settings: Option<PathBuf>,
    slots: RefCell<Vec<Rc<RoomSlot<T>>>>,
    me: Weak<Rooms<T>>,
    /// The remembered rooms, once the key opened them.
    book: RefCell<Option<RoomBook>>,
    /// The keys we marked verified, from the rooms' drivers.
    verified: Rc<RefCell<HashSet<Fingerprint>>>,
    /// The identity's key, once unlocked (to forget a left room's lines).
    identity: RefCell<Option<Arc<PrivateKey>>>,
    /// Remembered rooms not reconnected this time, kept in the list.
    carried: RefCell<Vec<KeptRoom>>,
    /// A failure to keep the list was said (once).
    book_failed: Cell<bool>,
    _timer: slint::Timer,
}

impl<T: RoomWindow> std::fmt::Debug for Rooms<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("slots", &self.slots.borrow().len())
            .finish_non_exhaustive()
    }
}

impl<T: RoomWindow> Drop for Rooms<T> {
    fn drop(&mut self) {
        let key = self.key;
        let _ = WINDOWS.try_with(|w| {
            if let Ok(mut w) = w.try_borrow_mut() {
                w.remove(&key);
            }
        });
    }
}

impl<T: RoomWindow> Rooms<T> {
    /// Gives `win` its rooms: the globals' callbacks (they act on the room
    /// on screen), the room list, and a timer for typing signals. New
    /// rooms' drivers run on `net`; the theme and notification settings
    /// are kept in `settings` (when given).
    pub fn install(win: &T, net: Network, settings: Option<PathBuf>) -> Rc<Self> {
        let key = window_key(win);
        let rooms = Rc::new_cyclic(|me: &Weak<Rooms<T>>| {
            let timer = slint::Timer::default();
            let m = me.clone();
            timer.start(
                slint::TimerMode::Repeated,
                Duration::from_secs(1),
                move || {
                    if let Some(rooms) = m.upgrade() {
                        for slot in rooms.slots() {
                            crate::room::tick(&slot);
                        }
                    }
                },
            );
            Rooms {
                win: win.as_weak(),
                key,
                net,
                settings: settings.clone(),
                slots: RefCell::default(),
                me: me.clone(),
                book: RefCell::new(None),
                verified: Rc::default(),
                identity: RefCell::new(None),
                carried: RefCell::default(),
                book_failed: Cell::new(false),
                _timer: timer,
            }
        });
        let list = win.room_list();
        list.set_rows(ModelRc::new(VecModel::<RoomRow>::default()));
        list.set_matches(ModelRc::new(VecModel::<i32>::default()));
        crate::room::install(win, &rooms, settings);
        crate::transfers::install(win, &rooms);
        crate::moderation::install(win, &rooms);
        install_list(win, &rooms);
        crate::window::watch_window_events(win, &rooms);
        WINDOWS.with(|w| {
            w.borrow_mut()
                .insert(key, Box::new(Rc::downgrade(&rooms)) as Box<dyn Any>)
        });
        rooms
    }

    /// The rooms of `win` (installed with [`Rooms::install`]).
    pub fn of(win: &T) -> Option<Rc<Self>> {
        let key = window_key(win);
        WINDOWS.with(|w| {
            w.borrow()
                .get(&key)
                .and_then(|b| b.downcast_ref::<Weak<Rooms<T>>>())
                .and_then(Weak::upgrade)
        })
    }

    /// Every room, in the list's order.
    pub fn slots(&self) -> Vec<Rc<RoomSlot<T>>> {
        self.slots.borrow().clone()
    }

    /// The room on screen.
    pub fn shown(&self) -> Option<Rc<RoomSlot<T>>> {
        self.slots.borrow().iter().find(|s| s.is_shown()).cloned()
    }

    /// The room with id `id`, if this window holds it.
    pub fn find(&self, id: &RoomId) -> Option<Rc<RoomSlot<T>>> {
        self.slots
            .borrow()
            .iter()
            .find(|s| s.room_id().as_ref() == Some(id))
            .cloned()
    }

    /// Where the theme and notification settings are kept.
    pub fn settings(&self) -> Option<&std::path::Path> {
        self.settings.as_deref()
    }

    /// A new room for `id` at the end of the list, not started and not
    /// shown. Refused when the window holds it already or is full.
    pub fn add(&self, id: RoomId) -> Result<Rc<RoomSlot<T>>, String> {
        if let Some(s) = self.find(&id) {
            let name = s.room().get_room_name();
            return Err(if name.is_empty() {
                "You are already joining this room.".into()
            } else {
                format!("You are already in this room ({name}).")
            });
        }
        if self.slots.borrow().len() >= MAX_ROOMS {
            return Err(format!(
                "This window holds {MAX_ROOMS} rooms at most: leave one first."
            ));
        }
        let slot = Rc::new(RoomSlot::new(
            &self.win,
            self.net.session(id),
            self.verified.clone(),
        ));
        slot.id.set(Some(id));
        if let Some(path) = &self.settings {
            crate::settings::restore_notify(&slot, &crate::settings::load(path), &id);
        }
        self.slots.borrow_mut().push(slot.clone());
        self.refresh();
        Ok(slot)
    }

    /// Starts `slot`'s driver: its updates apply to the slot, on screen or
    /// not, and its row in the list follows.
    pub fn start(
        &self,
        slot: &Rc<RoomSlot<T>>,
        engine: Engine,
        relays: Vec<RelayEndpoint>,
        trust: Trust,
    ) -> Result<(), String> {
        let (s, me) = (Rc::downgrade(slot), self.me.clone());
        let route: crate::session::Route = Rc::new(move |batch| {
            if let (Some(slot), Some(rooms)) = (s.upgrade(), me.upgrade()) {
                rooms.deliver_all(&slot, batch);
            }
        });
        slot.session.start(route, engine, relays, trust)
    }

    /// Applies one update from `slot`'s driver to it (on screen or not),
    /// and its row in the list follows. (The UI tests feed updates here.)
    pub fn deliver(&self, slot: &RoomSlot<T>, update: Update) {
        self.deliver_all(slot, vec![update]);
    }

    /// [`deliver`](Rooms::deliver) for a batch: the list is refreshed
    /// once, after the batch.
    pub fn deliver_all(&self, slot: &RoomSlot<T>, batch: Vec<Update>) {
        for u in batch {
            match u {
                // Contacts are the window's: every room's rows follow.
                Update::Contacts(all) => self.contacts(&all),
                u => crate::room::apply_to(slot, u),
            }
        }
        if slot.kept_is_stale() {
            self.keep();
        }
        self.refresh();
    }

    /// The contacts as they stand: the verified marks of every room's
    /// members and join requests follow.
    fn contacts(&self, all: &[client::history::Contact]) {
        *self.verified.borrow_mut() = all
            .iter()
            .filter(|c| c.verified)
            .map(|c| c.fingerprint)
            .collect();
        for slot in self.slots.borrow().iter() {
            let mark = |fp: &str| {
                fp.parse::<Fingerprint>()
                    .is_ok_and(|fp| slot.is_verified(&fp))
            };
            let members = slot.room.get_members();
            for i in 0..members.row_count() {
                if let Some(mut r) = members.row_data(i) {
                    let v = mark(&r.fingerprint);
                    if r.verified != v {
                        r.verified = v;
                        members.set_row_data(i, r);
                    }
                }
            }
            let pending = slot.moderation.get_pending();
            for i in 0..pending.row_count() {
                if let Some(mut r) = pending.row_data(i) {
                    let v = mark(&r.fingerprint);
                    if r.verified != v {
                        r.verified = v;
                        pending.set_row_data(i, r);
                    }
                }
            }
        }
    }

    /// Where the rooms are remembered: the database `net` names.
    pub fn history(&self) -> Option<HistoryOptions> {
        self.net.history()
    }

    /// Opens the room book in the history database (with `key`, once it is
    /// unlocked) and returns what it holds; from now on the rooms this
    /// window remembers are kept there. Without a database (`--no-history`)
    /// nothing is kept and the book is empty.
    /// `app` ("admin" or "member") names the app's own list.
    pub fn open_book(&self, key: &Arc<PrivateKey>, app: &str) -> Result<Book, String> {
        *self.identity.borrow_mut() = Some(key.clone());
        let Some(opts) = self.net.history() else {
            return Ok(Book::default());
        };
        if self.book.borrow().is_none() {
            let book = RoomBook::open(&opts, key, app).map_err(|e| e.to_string())?;
            *self.book.borrow_mut() = Some(book);
        }
        let read = self.book.borrow_mut().as_mut().map(RoomBook::read);
        match read {
            Some(r) => r.map_err(|e| e.to_string()),
            None => Ok(Book::default()),
        }
    }

    /// Reconnects the rooms the room book remembers for this app (opened
    /// with `key`) that the window does not hold yet, each through
    /// `start`; then keeps the list from now on and shows the first room
    /// if none is shown. What cannot be read is said with `warn`. Returns
    /// how many rooms started.
    pub fn restore(
        &self,
        key: &Arc<PrivateKey>,
        admin: bool,
        mut start: impl FnMut(&KeptRoom, Invite) -> Result<Rc<RoomSlot<T>>, String>,
        warn: impl Fn(&str),
    ) -> usize {
        let book = match self.open_book(key, if admin { "admin" } else { "member" }) {
            Ok(b) => b,
            Err(e) => {
                warn(&format!("your remembered rooms cannot be read: {e}"));
                return 0;
            }
        };
        let me = key.public().fingerprint();
        let (mut started, mut bad) = (0, 0);
        for kept in book.rooms {
            if kept.admin != admin || self.find(&kept.room).is_some() {
                continue;
            }
            // An admin's room is one this key opened.
            let invite = match kept.invite.parse::<Invite>() {
                Ok(i) if i.room == kept.room && (!admin || i.admin == me) => i,
                _ => {
                    bad += 1;
                    continue;
                }
            };
            match start(&kept, invite) {
                Ok(slot) => {
                    slot.room()
                        .set_notify_level(crate::settings::level_from(&kept.notify));
                    slot.remember(kept);
                    started += 1;
                }
                Err(_) => {
                    // Tried again next time.
                    self.carry(kept);
                    bad += 1;
                }
            }
        }
        // The list as it stands (a room joined before the book opened is in
        // it now); a damaged list is left as found until the next change.
        if !book.damaged {
            self.keep();
        }
        if self.shown().is_none() {
            if let Some(first) = self.slots().first() {
                self.show(first);
            }
        }
        if book.damaged {
            warn("the list of your rooms failed its check (damaged or tampered with): it was not used");
        }
        if bad > 0 {
            let what = if admin { "reopened" } else { "reconnected" };
            warn(&format!("{bad} remembered room(s) could not be {what}"));
        }
        started
    }

    /// Whether the room book is open.
    pub fn book_is_open(&self) -> bool {
        self.book.borrow().is_some()
    }

    /// Writes the list of remembered rooms (after a room was added, left,
    /// renamed, or its notification setting changed). A failure is said
    /// once, in the room on screen.
    pub fn keep(&self) {
        let mut list: Vec<KeptRoom> = self
            .slots
            .borrow()
            .iter()
            .filter_map(|s| s.kept_now())
            .collect();
        // Rooms that could not be reconnected this time stay remembered.
        for k in self.carried.borrow().iter() {
            if !list.iter().any(|l| l.room == k.room) {
                list.push(k.clone());
            }
        }
        for s in self.slots.borrow().iter() {
            if let Some(k) = s.kept_now() {
                *s.kept.borrow_mut() = Some(k);
            }
        }
        let kept = match self.book.borrow_mut().as_mut() {
            Some(book) => book.keep(&list),
            None => return,
        };
        if kept.is_ok() {
            self.book_failed.set(false);
        }
        if let Err(e) = kept {
            if !self.book_failed.replace(true) {
                if let Some(slot) = self.shown() {
                    crate::window::banner(
                        &slot,
                        BannerKind::Warning,
                        &format!("the list of your rooms could not be kept: {e}"),
                    );
                }
            }
        }
    }

    /// Shows `slot` (the one on screen before keeps its state): its lines
    /// from the first unread one, which is now read.
    pub fn show(&self, slot: &Rc<RoomSlot<T>>) {
        if slot.is_shown() {
            slot.read();
            self.refresh();
            return;
        }
        if let Some(old) = self.shown() {
            old.hide();
            // The divider belongs to the visit: gone when we come back.
            old.room.set_unread_from(-1);
        }
        if slot.unread.get() == 0 {
            slot.room.set_unread_from(-1);
        }
        slot.show();
        slot.read();
        if let Some(win) = self.win.upgrade() {
            let room = win.room();
            room.set_notify_open(false);
            // Members offered for a mention were the last room's.
            room.set_mention_choices(ModelRc::default());
            // A file being chosen was for the last room.
            let files = win.transfers();
            files.set_chooser_open(false);
            files.set_chooser_path(SharedString::new());
            files.set_chooser_error(SharedString::new());
            // The view goes to the divider, or to the newest line.
            room.set_switched(room.get_switched().wrapping_add(1));
        }
        self.refresh();
    }

    /// Shows the room at `index` of the list (nothing if there is none).
    pub fn show_index(&self, index: usize) {
        let slot = self.slots.borrow().get(index).cloned();
        if let Some(slot) = slot {
            self.show(&slot);
        }
    }

    /// Leaves the room at `index` (the others in it are told) and forgets
    /// it; the next room in the list is shown. True when it was the last.
    pub fn leave(&self, index: usize) -> bool {
        let slot = {
            let mut slots = self.slots.borrow_mut();
            if index >= slots.len() {
                return slots.is_empty();
            }
            slots.remove(index)
        };
        let was_shown = slot.is_shown();
        slot.hide();
        let leaving = slot.session.leave_in_background(Duration::from_secs(3));
        // Forgotten on this computer: not reconnected at the next start,
        // and, once its driver has ended (nothing more is written), its
        // saved lines and the lines still waiting to be sent go too.
        if let Some(id) = slot.room_id() {
            self.carried.borrow_mut().retain(|k| k.room != id);
            self.forget(id, leaving);
            if let Some(path) = &self.settings {
                let _ = crate::settings::update(path, |s| {
                    s.notify.remove(&crate::settings::room_key(&id));
                });
            }
        }
        self.keep();
        let left = self.slots.borrow().len();
        if was_shown && left > 0 {
            self.show_index(index.min(left - 1));
        } else if left == 0 {
            self.clear_globals();
        }
        self.refresh();
        left == 0
    }

    /// Deletes room `id`'s saved lines and outbox from the history database,
    /// after `leaving` (its driver's end) if there is one: off the UI
    /// thread when there is a runtime, else at once.
    fn forget(&self, id: RoomId, leaving: Option<tokio::task::JoinHandle<()>>) {
        let (Some(opts), Some(key)) = (self.net.history(), self.identity.borrow().clone()) else {
            return;
        };
        let wipe = move || {
            if let Err(e) =
                client::history::History::open(&opts, &key, &id).and_then(|mut h| h.forget())
            {
                eprintln!("a left room's saved lines could not be deleted: {e}");
            }
        };
        match (leaving, &self.net) {
            (Some(leaving), Network::Runtime(rt, _)) => {
                rt.spawn(async move {
                    let _ = leaving.await;
                    let _ = tokio::task::spawn_blocking(wipe).await;
                });
            }
            _ => wipe(),
        }
    }

    /// Keeps `kept` in the list though its room could not be reconnected
    /// now (a disk error, a full window): it is tried again next time.
    pub fn carry(&self, kept: KeptRoom) {
        self.carried.borrow_mut().push(kept);
    }

    /// The globals once no room is left: as for a new room.
    fn clear_globals(&self) {
        let blank = RoomSlot::new(
            &self.win,
            Session::detached(mpsc::channel(1).0, RoomId([0; 16])),
            Rc::default(),
        );
        blank.show();
        blank.hide();
        if let Some(win) = self.win.upgrade() {
            win.room().set_notify_open(false);
        }
    }

    /// Leaves every room and waits up to `grace` for the goodbyes (at
    /// exit). True when every driver finished in time.
    pub fn leave_all(&self, grace: Duration) -> bool {
        let slots: Vec<Rc<RoomSlot<T>>> = self.slots.borrow_mut().drain(..).collect();
        let mut waits = Vec::new();
        let mut rt = None;
        for s in &slots {
            if rt.is_none() {
                rt = s.session.runtime().cloned();
            }
            waits.extend(s.session.leave_in_background(grace));
        }
        let Some(rt) = rt else { return true };
        rt.block_on(async {
            tokio::time::timeout(grace + Duration::from_millis(500), async {
                for w in waits {
                    let _ = w.await;
                }
            })
            .await
            .is_ok()
        })
    }

    /// The window became the active one or stopped being it: the room on
    /// screen is read once it is.
    pub fn window_active(&self, active: bool) {
        if let Some(win) = self.win.upgrade() {
            win.room().set_window_active(active);
        }
        if active {
            if let Some(s) = self.shown() {
                s.read();
                self.refresh();
            }
        }
    }

    /// The room list's rows, its current row, and the total unread (the
    /// window's title shows it).
    pub fn refresh(&self) {
        let Some(win) = self.win.upgrade() else {
            return;
        };
        let list = win.room_list();
        let slots = self.slots.borrow();
        let rows = list.get_rows();
        let Some(m) = crate::window::vec_model(&rows) else {
            return;
        };
        for (i, slot) in slots.iter().enumerate() {
            let row = slot.row();
            if i < m.row_count() {
                if m.row_data(i).as_ref() != Some(&row) {
                    m.set_row_data(i, row);
                }
            } else {
                m.push(row);
            }
        }
        while m.row_count() > slots.len() {
            m.remove(m.row_count() - 1);
        }
        let current = slots
            .iter()
            .position(|s| s.is_shown())
            .map_or(-1, |i| i32::try_from(i).unwrap_or(-1));
        list.set_current(current);
        let total: u32 = slots.iter().map(|s| s.unread.get()).sum();
        list.set_total_unread(i32::try_from(total).unwrap_or(i32::MAX));
        let mentions: u32 = slots.iter().map(|s| s.mentions.get()).sum();
        list.set_total_mentions(i32::try_from(mentions).unwrap_or(i32::MAX));
        drop(slots);
        self.search(&list.get_search());
    }

    /// The rows whose name holds `text` (any case), for the Ctrl+K search.
    fn search(&self, text: &str) {
        let Some(win) = self.win.upgrade() else {
            return;
        };
        let list = win.room_list();
        let want = text.trim().to_lowercase();
        let found: Vec<i32> = self
            .slots
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                want.is_empty()
                    || printable(&s.room.get_room_name())
                        .to_lowercase()
                        .contains(&want)
            })
            .filter_map(|(i, _)| i32::try_from(i).ok())
            .collect();
        let matches = list.get_matches();
        match crate::window::vec_model(&matches) {
            Some(m) if m.iter().ne(found.iter().copied()) => m.set_vec(found),
            Some(_) => {}
            None => list.set_matches(ModelRc::new(VecModel::from(found))),
        }
    }
}

/// The room list's callbacks: select, leave, search.
fn install_list<T: RoomWindow>(win: &T, rooms: &Rc<Rooms<T>>) {
    let list = win.room_list();
    let r = Rc::downgrade(rooms);
    list.on_select(move |i| {
        if let (Some(rooms), Ok(i)) = (r.upgrade(), usize::try_from(i)) {
            rooms.show_index(i);
        }
    });
    let r = Rc::downgrade(rooms);
    list.on_search_changed(move |text| {
        if let Some(rooms) = r.upgrade() {
            rooms.search(&text);
        }
    });
}
