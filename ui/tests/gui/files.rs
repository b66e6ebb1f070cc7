//! Files (offers, progress, accept, the chooser) and the history divider.

use super::*;

#[test]
fn files_show_offers_progress_accept_and_the_chooser_sends() {
    use client::driver::FileUpdate;
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let room = w.global::<Room>();
    let t = [5u8; 16];
    ui::room::apply(
        w,
        Update::File(FileUpdate::Offered {
            from: info(2, "bob", false),
            transfer: t,
            name: "plan.pdf".into(),
            size: 20 * 1024 * 1024,
            media_type: "application/pdf".into(),
            accepted: false,
            private: false,
        }),
    );
    settle();
    assert_eq!(
        labels_starting(w, "File plan.pdf"),
        vec!["File plan.pdf, 20.0 MiB · application/pdf · from bob: Offered: accept to save it"]
    );
    ui::room::apply(
        w,
        Update::File(FileUpdate::Progress {
            transfer: t,
            done: 10 * 1024 * 1024,
            total: 20 * 1024 * 1024,
            outgoing: false,
        }),
    );
    settle();
    assert!(labels_starting(w, "File plan.pdf")[0].ends_with("Arriving… 50% · accept to save it"));
    let rows = w.global::<Transfers>().get_files();
    assert!((rows.row_data(0).unwrap().progress - 0.5).abs() < 1e-6);
    while f.commands.try_recv().is_ok() {}
    one(w, "Accept plan.pdf").invoke_accessible_default_action();
    assert_eq!(f.next_request(), Some(Request::AcceptFile(t)));
    settle();
    assert!(labels_starting(w, "Accept plan.pdf").is_empty());
    ui::room::apply(
        w,
        Update::File(FileUpdate::Saved {
            transfer: t,
            path: "/downloads/plan.pdf".into(),
        }),
    );
    settle();
    assert!(labels_starting(w, "File plan.pdf")[0].ends_with("Saved to /downloads/plan.pdf"));
    assert!(labels_starting(w, "Cancel plan.pdf").is_empty());
    let lines: Vec<String> = room
        .get_lines()
        .iter()
        .map(|l| l.text.to_string())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l == "plan.pdf saved to /downloads/plan.pdf"),
        "{lines:?}"
    );

    // A failed transfer says so, and why.
    let t2 = [6u8; 16];
    ui::room::apply(
        w,
        Update::File(FileUpdate::Offered {
            from: info(2, "bob", false),
            transfer: t2,
            name: "evil.bin".into(),
            size: 100,
            media_type: "application/octet-stream".into(),
            accepted: true,
            private: false,
        }),
    );
    ui::room::apply(
        w,
        Update::File(FileUpdate::Failed {
            transfer: t2,
            reason: "a file chunk failed authentication".into(),
        }),
    );
    settle();
    assert!(labels_starting(w, "File evil.bin")[0]
        .ends_with("Failed: a file chunk failed authentication. Nothing was saved."));
    let last = room
        .get_lines()
        .row_data(room.get_lines().row_count() - 1)
        .unwrap();
    assert_eq!(last.kind, LineKind::Warning);

    // Sending: the paper clip opens the chooser on a folder; a file is
    // picked from the list and sent.
    let dir = f.dir.path().join("outbox");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("notes.txt"), b"hello").unwrap();
    std::fs::write(dir.join(".hidden"), b"x").unwrap();
    w.global::<Transfers>()
        .set_chooser_dir(dir.display().to_string().into());
    one(w, "Send a file").invoke_accessible_default_action();
    settle();
    assert!(w.global::<Transfers>().get_chooser_open());
    assert_eq!(labels_starting(w, "Folder sub").len(), 1);
    assert!(labels_starting(w, "File .hidden").is_empty());
    one(w, "File notes.txt").invoke_accessible_default_action();
    settle();
    one(w, "Send the file").invoke_accessible_default_action();
    settle();
    assert_eq!(
        f.next_request(),
        Some(Request::SendFile {
            path: dir.join("notes.txt").canonicalize().unwrap(),
            to: None
        })
    );
    assert!(
        !w.global::<Transfers>().get_chooser_open(),
        "the chooser closes once the file is taken"
    );

    // A file dragged in from another application: a hint while it hovers,
    // then the same command as the chooser's.
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Hover);
    settle();
    assert!(w.global::<Transfers>().get_drop_hover());
    assert_eq!(
        labels_starting(w, "Drop to send the file to the room").len(),
        1
    );
    let notes = dir.join("notes.txt").canonicalize().unwrap();
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Dropped(notes.clone()));
    settle();
    assert!(!w.global::<Transfers>().get_drop_hover());
    assert_eq!(
        f.next_request(),
        Some(Request::SendFile {
            path: notes,
            to: None
        })
    );
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Hover);
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Cancelled);
    assert!(!w.global::<Transfers>().get_drop_hover());
    // A folder dropped is refused with a warning, and nothing is sent.
    ui::transfers::file_drop(w, ui::transfers::FileDrop::Dropped(dir.join("sub")));
    settle();
    assert!(
        room.get_banner_text().contains("is not a file"),
        "{}",
        room.get_banner_text()
    );
    assert_eq!(f.next_command(), None);

    // A path that is not a file is refused in the chooser, which stays open.
    one(w, "Send a file").invoke_accessible_default_action();
    settle();
    one(w, "File to send").set_accessible_value(dir.join("missing.txt").display().to_string());
    one(w, "Send the file").invoke_accessible_default_action();
    settle();
    assert!(w.global::<Transfers>().get_chooser_open());
    assert!(w
        .global::<Transfers>()
        .get_chooser_error()
        .contains("cannot use"));
    assert_eq!(f.next_command(), None);
}

#[test]
fn history_shows_above_a_divider_when_the_room_opens() {
    use client::history::{Entry, EntryKind, Loaded};
    let f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let room = w.global::<Room>();
    let before = room.get_lines().row_count();
    let at = 1_700_000_000_000u64;
    let entry = |n: u64, kind, who: &str, text: &str| Entry {
        at_ms: at + n * 60_000,
        kind,
        who: who.into(),
        fingerprint: Some([n as u8; 32]),
        text: text.into(),
        path: None,
    };
    ui::room::apply(
        w,
        Update::History {
            loaded: Loaded {
                entries: vec![
                    entry(1, EntryKind::Message, "bob", "yesterday's build was red"),
                    entry(2, EntryKind::Own, "", "I'll look into it"),
                    entry(3, EntryKind::PrivateIn, "bob", "thanks"),
                ],
                skipped: 1,
            },
            requested: false,
        },
    );
    settle();
    let lines = room.get_lines();
    let kinds: Vec<LineKind> = lines.iter().take(5).map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        vec![
            LineKind::Message,
            LineKind::Own,
            LineKind::PrivateIn,
            LineKind::Warning,
            LineKind::Divider
        ],
        "the history comes first, then the divider"
    );
    assert_eq!(lines.row_data(4).unwrap().text, ui::room::EARLIER);
    assert_eq!(lines.row_count(), before + 5, "what was there stays, below");
    assert!(lines
        .row_data(3)
        .unwrap()
        .text
        .contains("1 history entries failed"));
    assert_eq!(
        labels_starting(w, "bob at "),
        vec![format!(
            "bob at {}: yesterday's build was red",
            ui::room::clock(at + 60_000)
        )]
    );
    assert_eq!(
        labels_starting(w, "↑ earlier messages").len(),
        1,
        "the divider is drawn"
    );

    // Clearing asks first; "Keep" changes nothing.
    let mut f = f;
    while f.commands.try_recv().is_ok() {}
    one(w, "Clear history").invoke_accessible_default_action();
    settle();
    one(w, "Keep the history").invoke_accessible_default_action();
    settle();
    assert_eq!(f.next_command(), None);
    assert!(labels_starting(w, "Keep the history").is_empty());
    one(w, "Clear history").invoke_accessible_default_action();
    settle();
    one(w, "Confirm clearing the history").invoke_accessible_default_action();
    settle();
    assert_eq!(f.next_request(), Some(Request::ClearHistory));
    ui::room::apply(w, Update::HistoryCleared);
    settle();
    let lines = room.get_lines();
    assert_eq!(lines.row_count(), 1, "the view starts afresh");
    assert!(lines.row_data(0).unwrap().text.contains("cleared"));
    assert!(labels_starting(w, "bob at ").is_empty());
}
