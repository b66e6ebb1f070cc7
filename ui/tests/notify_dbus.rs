//! Desktop notifications through a real D-Bus session and a real
//! notification daemon (issue 23): Debian's `dbus-run-session` starts a
//! session bus, `dunst` (on a private Xvfb display) is the notification
//! service, and `dbus-monitor` records every call to it. The member window
//! (Slint's testing backend, the real notification code) runs in a child
//! process of this test binary inside that session, as the window that is
//! not the active one: a private message produces exactly one `Notify`
//! naming the room and the sender, without the text; a line to the room,
//! which this room's default setting leaves quiet, produces none. Without
//! a notification service the app goes on, with one line in its log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;

use client::driver::Update;
use common::engine::Event;
use common::test_keys::member_info as info;
use slint::ComponentHandle;

#[path = "../examples/support/mod.rs"]
mod support;

const CHILD: &str = "TEAMCHAT_NOTIFY_PROBE";
const SECRET: &str = "the vault code is 4471";

fn need(cmd: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{cmd} is missing: install Debian's {package} (scripts/install-test-deps.sh does)"
    );
}

/// An Xvfb server on a display number it picks itself (`-displayfd`),
/// stopped on drop.
struct Xvfb {
    child: std::process::Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        use std::io::BufRead;
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "800x600x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let out = child.stdout.take().unwrap();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        let n: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb said {line:?}"));
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_mention_and_a_private_message_notify_once_each_without_their_text_and_room_lines_not_at_all() {
    need("dbus-run-session", "dbus");
    need("dbus-monitor", "dbus");
    need("dunst", "dunst");
    need("Xvfb", "xvfb");
    let dir = tempfile::tempdir().unwrap();
    let x = Xvfb::start();
    let monitor = dir.path().join("monitor.txt");
    let exe = std::env::current_exe().unwrap();
    // The monitor first (it is listening once it has its name), dunst
    // with no user configuration, the probe once the service answers.
    let script = format!(
        "dbus-monitor --session \"interface='org.freedesktop.Notifications',member='Notify'\" > '{mon}' 2>&1 & \
         for i in $(seq 100); do grep -q NameAcquired '{mon}' 2>/dev/null && break; sleep 0.05; done; \
         grep -q NameAcquired '{mon}' || {{ echo 'dbus-monitor did not start' >&2; exit 3; }}; \
         dunst -config /dev/null >/dev/null 2>&1 & \
         up=no; for i in $(seq 100); do \
           dbus-send --session --print-reply --dest=org.freedesktop.Notifications /org/freedesktop/Notifications \
             org.freedesktop.Notifications.GetServerInformation >/dev/null 2>&1 && up=yes && break; sleep 0.05; done; \
         [ $up = yes ] || {{ echo 'dunst did not start' >&2; exit 4; }}; \
         '{exe}' --exact probe --ignored --nocapture --test-threads=1; rc=$?; sleep 0.3; exit $rc",
        mon = monitor.display(),
        exe = exe.display()
    );
    let out = Command::new("timeout")
        .args(["60", "dbus-run-session", "--", "sh", "-c", &script])
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env(CHILD, "desktop")
        .output()
        .unwrap();
    drop(x);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the probe failed:\n{stdout}\n{stderr}"
    );
    let calls = std::fs::read_to_string(&monitor).unwrap();
    // Each call: a "method call ... member=Notify" line, then its
    // arguments (the readiness checks call GetServerInformation only).
    let notifies = calls.matches("member=Notify").count();
    assert_eq!(
        notifies, 2,
        "one Notify for the mention, one for the private message:\n{calls}"
    );
    assert!(
        calls.contains("carol mentioned you"),
        "the mention's sender:\n{calls}"
    );
    assert!(calls.contains("\"TeamChat\""), "the app's name:\n{calls}");
    assert!(
        calls.contains("TeamChat · launch team"),
        "the room:\n{calls}"
    );
    assert!(
        calls.contains("bob wrote to you privately"),
        "the sender:\n{calls}"
    );
    assert!(!calls.contains("4471"), "never the text:\n{calls}");
}

#[test]
fn without_a_notification_service_the_app_goes_on_with_one_line_in_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "probe",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "twice")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", dir.path().join("no-bus").display()),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the app went on: {stderr}");
    let lines = stderr
        .lines()
        .filter(|l| l.starts_with("notifications:"))
        .count();
    assert_eq!(lines, 1, "one line in the log:\n{stderr}");
}

/// The window, not the active one, is told of a private message, of two
/// room lines and of a line that mentions us (a room at its default
/// setting: lines for us only).
#[test]
#[ignore = "run by the tests above, in a child process inside a D-Bus session"]
fn probe() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    i_slint_backend_testing::init_no_event_loop();
    ui::notify::start();
    let demo = support::Demo::new().unwrap();
    let w = &demo.app.window;
    w.global::<ui::Room>().set_window_active(false);
    demo.bob_says("a line to the room", 1, 0);
    ui::room::apply(
        w,
        Update::Engine(Event::Private {
            from: info(2, "bob", false),
            text: SECRET.into(),
            sent_at_ms: support::AT,
            epoch: 2,
            seq: 1,
        }),
    );
    demo.bob_says("another line to the room", 2, 5);
    // A line that mentions us: told, by whom, never what it says.
    demo.mentions_in(0, 3, "carol", &format!("@alice {SECRET}"), 1, 10);
    if std::env::var(CHILD).is_ok_and(|v| v == "twice") {
        // A second private message: the log line is said once all the same.
        ui::room::apply(
            w,
            Update::Engine(Event::Private {
                from: info(2, "bob", false),
                text: "again".into(),
                sent_at_ms: support::AT,
                epoch: 2,
                seq: 2,
            }),
        );
    }
    // The worker thread makes the calls: they are made before we exit.
    let flushed = ui::notify::flush(Duration::from_secs(10));
    // Without a service each call fails at once, so the flush comes too.
    assert!(flushed, "the notifications were not handed over in time");
}
