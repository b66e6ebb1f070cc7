//! Desktop notifications (issue 23), through the desktop's standard
//! notification service: the freedesktop `org.freedesktop.Notifications`
//! D-Bus interface, by `notify-rust` (pure Rust, over zbus).
//!
//! What notifies is the room's setting ([`NotifyLevel`]: every line, or
//! only lines for us, or nothing; by default lines for us: private
//! messages and, once mentions exist, mentions), and only while the window
//! is not the active one. A notification names the room and the sender;
//! the message's text only if the user turned that on (default off: the
//! text would be on screen outside the window, and may stay in the
//! desktop's notification history, out of TeamChat's encryption).
//!
//! D-Bus calls block: they run on a thread of their own, never on the UI
//! thread. With no notification service the app goes on silently, with one
//! line in the log.

use std::cell::RefCell;
use std::sync::mpsc;

use crate::rooms::RoomSlot;
use crate::window::RoomWindow;
use crate::NotifyLevel;

/// Notifications waiting for the service, at most: more are dropped while
/// the service is slow or gone (memory and threads stay bounded).
const QUEUE: usize = 16;

/// What arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// A line to the room.
    Line,
    /// A private message to us.
    Private,
    /// (Admin) someone asks to join.
    Request,
    /// A line to the room that mentions us.
    Mention,
    /// Someone's key changed.
    KeyChange,
}

/// Whether `what` notifies at `level` while the window is `active`.
pub fn wanted(level: NotifyLevel, what: What, active: bool) -> bool {
    !active
        && match level {
            NotifyLevel::All => true,
            NotifyLevel::Mentions => matches!(
                what,
                What::Private | What::Request | What::Mention | What::KeyChange
            ),
            NotifyLevel::Nothing => false,
        }
}

/// One notification: its title and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// "TeamChat · ROOM".
    pub summary: String,
    /// Who, and the text only when the user asked for it.
    pub body: String,
}

/// The notification for `what` from `sender` in `room`; `text` is shown
/// only with `show_text`.
pub fn note(room: &str, what: What, sender: &str, text: &str, show_text: bool) -> Note {
    // The body may be read as markup: the sender's name (chosen by a
    // member) is escaped like the text; the summary is plain text.
    let sender = escape(&common::engine::printable(sender));
    let summary = if room.is_empty() {
        "TeamChat".to_string()
    } else {
        format!("TeamChat · {}", common::engine::printable(room))
    };
    let body = match (what, show_text) {
        (What::Private, false) => format!("{sender} wrote to you privately"),
        (What::Line, false) => format!("{sender} wrote in the room"),
        (What::Private, true) => format!("{sender} (privately): {}", cut(text)),
        (What::Request, _) => format!("{sender} asks to join"),
        (What::KeyChange, _) => format!("{sender}'s key has changed: compare safety codes"),
        (What::Mention, false) => format!("{sender} mentioned you"),
        (What::Mention, true) => format!("{sender} mentioned you: {}", cut(text)),
        (What::Line, true) => format!("{sender}: {}", cut(text)),
    };
    Note { summary, body }
}

/// The first 200 characters of a line, cleaned (no control or direction
/// characters), on one line, escaped.
fn cut(text: &str) -> String {
    let one_line: String = common::engine::printable(text)
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .take(200)
        .collect();
    escape(&one_line)
}

/// Services that show markup read `<`, `>` and `&` in the body as markup
/// (the notification spec's `body-markup`): escaped, they show as written.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What the notification thread is asked to do.
#[derive(Debug)]
enum Job {
    /// Show this.
    Show(Note),
    /// Say when everything before has been handed to the service.
    Flush(mpsc::SyncSender<()>),
}

/// Where notifications go.
#[derive(Debug)]
enum Sink {
    /// The desktop's notification service, from a thread of its own.
    Desktop(mpsc::SyncSender<Job>),
    /// Kept in memory (the UI tests).
    Kept(Vec<Note>),
}

/// A room's lines notify at most once in this long.
pub const ROOM_QUIET: std::time::Duration = std::time::Duration::from_secs(3);

thread_local! {
    // When each room last notified of a room line or a mention.
    static LAST: RefCell<std::collections::HashMap<String, std::time::Instant>> =
        RefCell::new(std::collections::HashMap::new());
    // The UI thread's sink: set once by `start` or `keep`.
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Sends this thread's notifications to the desktop's notification service
/// (a worker thread makes the D-Bus calls). Call once, on the UI thread.
pub fn start() {
    let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("teamchat-notify".into())
        .spawn(move || {
            let mut said = false;
            for job in rx {
                let n = match job {
                    Job::Show(n) => n,
                    Job::Flush(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
                // Transient: kept out of the desktop's notification
                // history where the service honours it.
                let shown = notify_rust::Notification::new()
                    .appname("TeamChat")
                    .summary(&n.summary)
                    .body(&n.body)
                    .icon("mail-message-new")
                    .hint(notify_rust::Hint::Category("im.received".into()))
                    .hint(notify_rust::Hint::Transient(true))
                    .show();
                if let Err(e) = shown {
                    if !said {
                        eprintln!("notifications: none shown: no notification service ({e})");
                        said = true;
                    }
                }
            }
        });
    match spawned {
        Ok(_) => SINK.with(|s| *s.borrow_mut() = Some(Sink::Desktop(tx))),
        Err(e) => eprintln!("notifications: none shown: cannot start their thread ({e})"),
    }
}

/// Waits up to `within` for the notifications asked for so far to be handed
/// to the service (before the app exits). True when they were.
pub fn flush(within: std::time::Duration) -> bool {
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let sent = SINK.with(|s| match &*s.borrow() {
        Some(Sink::Desktop(tx)) => tx.send(Job::Flush(done_tx)).is_ok(),
        _ => false,
    });
    sent && done_rx.recv_timeout(within).is_ok()
}

/// Keeps this thread's notifications in memory instead (the UI tests);
/// [`kept`] hands them over.
pub fn keep() {
    SINK.with(|s| *s.borrow_mut() = Some(Sink::Kept(Vec::new())));
}

/// The notifications kept since [`keep`] or the last call.
pub fn kept() -> Vec<Note> {
    SINK.with(|s| match &mut *s.borrow_mut() {
        Some(Sink::Kept(v)) => std::mem::take(v),
        _ => Vec::new(),
    })
}

/// Something arrived in `win`'s room: a notification if the room's setting
/// wants one and the window is not the active one.
pub fn arrived<T: RoomWindow>(slot: &RoomSlot<T>, what: What, sender: &str, text: &str) {
    let Some(win) = slot.window() else { return };
    let room = slot.room();
    if !wanted(room.get_notify_level(), what, is_active(&win)) {
        return;
    }
    // Room lines and mentions come from anyone in the room: at most one
    // every few seconds per room, however fast they come.
    if matches!(what, What::Line | What::Mention) {
        let key = room.get_room_id().to_string();
        let now = std::time::Instant::now();
        let quiet = LAST.with(|l| {
            let mut l = l.borrow_mut();
            let quiet = l.get(&key).is_some_and(|at| now - *at < ROOM_QUIET);
            if !quiet {
                if l.len() > 256 {
                    l.clear();
                }
                l.insert(key, now);
            }
            quiet
        });
        if quiet {
            return;
        }
    }
    let n = note(
        &room.get_room_name(),
        what,
        sender,
        text,
        win.room().get_notify_text(),
    );
    SINK.with(|s| match &mut *s.borrow_mut() {
        Some(Sink::Desktop(tx)) => {
            // Full: the service is slow or gone; this one is dropped.
            let _ = tx.try_send(Job::Show(n));
        }
        Some(Sink::Kept(v)) => v.push(n),
        None => {}
    });
}

/// Whether `win` is the active window: the window system's answer when
/// there is one (a window mapped without focus, or with no window manager,
/// never gets a `Focused` event), else `Room.window-active` (kept from
/// those events, and set by the headless tests).
pub(crate) fn is_active<T: RoomWindow>(win: &T) -> bool {
    use slint::winit_030::WinitWindowAccessor;
    let asked = win.window().with_winit_window(|w| w.has_focus());
    asked.unwrap_or_else(|| win.room().get_window_active())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_for_us_by_default_and_never_while_active() {
        use NotifyLevel::*;
        assert!(wanted(Mentions, What::Private, false));
        assert!(!wanted(Mentions, What::Line, false));
        assert!(
            !wanted(Mentions, What::Private, true),
            "the window is active"
        );
        assert!(wanted(All, What::Line, false));
        assert!(!wanted(All, What::Line, true));
        assert!(!wanted(Nothing, What::Private, false));
    }

    #[test]
    fn the_text_only_when_asked_and_escaped() {
        let n = note(
            "launch team",
            What::Private,
            "bob",
            "the <b>code</b> is 42",
            false,
        );
        assert_eq!(n.summary, "TeamChat · launch team");
        assert_eq!(n.body, "bob wrote to you privately");
        assert!(!n.body.contains("42"));
        let n = note("launch team", What::Line, "bob", "a <b>\nb</b> & c", true);
        assert_eq!(n.body, "bob: a &lt;b&gt; b&lt;/b&gt; &amp; c");
        // A name is a member's choice: escaped too, with the text off.
        let n = note("r", What::Private, "<a href=\"x\">boss</a>", "t", false);
        assert_eq!(
            n.body,
            "&lt;a href=\"x\"&gt;boss&lt;/a&gt; wrote to you privately"
        );
        let n = note("r", What::Line, "bob", "\u{202e}evil", true);
        assert!(!n.body.contains('\u{202e}'), "{}", n.body);
    }
}
