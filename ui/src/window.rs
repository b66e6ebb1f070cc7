//! What every part of a room window shares: the [`RoomWindow`] trait that
//! reaches its Slint globals (`Room`, `Transfers`, `Moderation`, each owned
//! by one module), the banner, and the limits on what a view holds.

use common::engine::{printable, MAX_TEXT};
use slint::{ComponentHandle, Global, Model, ModelRc, SharedString, VecModel};

use crate::{BannerKind, Moderation, Room, RoomList, Transfers};

/// A window that shows a room.
pub trait RoomWindow: ComponentHandle + 'static {
    /// The window's `Room` global ([`crate::room`]).
    fn room(&self) -> Room<'_>;
    /// The window's `Transfers` global ([`crate::transfers`]).
    fn transfers(&self) -> Transfers<'_>;
    /// The window's `Moderation` global ([`crate::moderation`]).
    fn moderation(&self) -> Moderation<'_>;
    /// The window's `RoomList` global ([`crate::rooms`]).
    fn room_list(&self) -> RoomList<'_>;
}

impl<T> RoomWindow for T
where
    T: ComponentHandle + 'static,
    for<'a> Room<'a>: Global<'a, T>,
    for<'a> Transfers<'a>: Global<'a, T>,
    for<'a> Moderation<'a>: Global<'a, T>,
    for<'a> RoomList<'a>: Global<'a, T>,
{
    fn room(&self) -> Room<'_> {
        Room::get(self)
    }

    fn transfers(&self) -> Transfers<'_> {
        Transfers::get(self)
    }

    fn moderation(&self) -> Moderation<'_> {
        Moderation::get(self)
    }

    fn room_list(&self) -> RoomList<'_> {
        RoomList::get(self)
    }
}

/// Lines kept in the view; older ones are dropped from memory.
pub const MAX_LINES: usize = 20_000;
/// Longest banner text; the rest is cut (relay error texts can be long).
pub const MAX_BANNER: usize = 300;
/// Longest line in the view: a message holds at most `MAX_TEXT` bytes, and
/// its mentions may show longer than their tokens (a name of up to 140
/// bytes, disambiguated, for a 67-byte token); a warning or relay text is
/// cut there too.
pub const MAX_LINE: usize = MAX_TEXT + common::engine::mentions::MAX_MENTIONS * (140 + 1);

/// `text` cut to at most `max` bytes at a character boundary, with "…".
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The `VecModel` behind a model the glue set (all of them are).
pub(crate) fn vec_model<R: Clone + 'static>(m: &ModelRc<R>) -> Option<&VecModel<R>> {
    m.as_any().downcast_ref::<VecModel<R>>()
}

/// Shows `text` in the room's banner.
pub fn banner<T: RoomWindow>(slot: &crate::rooms::RoomSlot<T>, kind: BannerKind, text: &str) {
    let room = slot.room();
    room.set_banner_kind(kind);
    room.set_banner_text(SharedString::from(printable(&cut(text, MAX_BANNER))));
}

/// Delivers the window system's events the room needs: file drops
/// (winit's `HoveredFile`, `HoveredFileCancelled`, `DroppedFile`) to
/// [`crate::transfers::file_drop`], and whether the window is the active
/// one (`Focused`) to [`crate::rooms::Rooms::window_active`] (no
/// notifications while it is, and the room on screen counts as read). A
/// no-op for a window that is not backed by winit (the headless test
/// backend, where tests call `window_active` themselves).
pub(crate) fn watch_window_events<T: RoomWindow>(
    win: &T,
    rooms: &std::rc::Rc<crate::rooms::Rooms<T>>,
) {
    use crate::transfers::{file_drop, FileDrop};
    use slint::winit_030::{winit::event::WindowEvent, EventResult, WinitWindowAccessor};
    let (w, r) = (win.as_weak(), std::rc::Rc::downgrade(rooms));
    win.window().on_winit_window_event(move |_, event| {
        let Some(win) = w.upgrade() else {
            return EventResult::Propagate;
        };
        let drop = match event {
            WindowEvent::Focused(active) => {
                if let Some(rooms) = r.upgrade() {
                    rooms.window_active(*active);
                }
                return EventResult::Propagate;
            }
            WindowEvent::HoveredFile(_) => FileDrop::Hover,
            WindowEvent::HoveredFileCancelled => FileDrop::Cancelled,
            WindowEvent::DroppedFile(path) => FileDrop::Dropped(path.clone()),
            _ => return EventResult::Propagate,
        };
        file_drop(&win, drop);
        EventResult::PreventDefault
    });
}
