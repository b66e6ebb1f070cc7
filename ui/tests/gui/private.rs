//! Private conversations opened from the member list.

use super::*;

#[test]
fn a_private_conversation_opens_from_the_member_list() {
    let mut f = fixture();
    let app = joined(&f);
    let w = &app.window;
    let bob = info(2, "bob", false);
    let room = w.global::<Room>();
    ui::room::apply(
        w,
        Update::Engine(Event::Message {
            from: bob.clone(),
            text: "a line for everyone".into(),
            sent_at_ms: 1_700_000_000_000,
            epoch: 2,
            seq: 1,
            mentions_me: false,
        }),
    );
    // Open bob's row, then his private conversation.
    let row = labels_starting(w, "Member bob");
    assert_eq!(row.len(), 1, "{row:?}");
    ElementHandle::find_by_accessible_label(w, &row[0])
        .next()
        .unwrap()
        .invoke_accessible_default_action();
    settle();
    assert!(
        labels_starting(w, "Private message to alice").is_empty(),
        "no private conversation with oneself"
    );
    one(w, "Private message to bob").invoke_accessible_default_action();
    settle();
    assert_eq!(room.get_private_to(), bob.fingerprint.to_string().as_str());
    assert_eq!(
        labels_starting(w, "Private conversation with bob").len(),
        1,
        "marked as private"
    );

    // Only the private lines with bob show here.
    let at = 1_700_000_000_500;
    ui::room::apply(
        w,
        Update::Engine(Event::Private {
            from: bob.clone(),
            text: "psst".into(),
            sent_at_ms: at,
            epoch: 2,
            seq: 1,
        }),
    );
    settle();
    let time = ui::room::clock(at);
    assert_eq!(
        labels_starting(w, "Private from bob at "),
        vec![format!("Private from bob at {time}: psst")]
    );
    assert!(
        labels_starting(w, "bob at ").is_empty(),
        "room lines hidden"
    );

    // What is written here goes to bob only, and no typing notice reaches
    // the room meanwhile.
    while f.commands.try_recv().is_ok() {}
    let input = one(w, "Message input");
    input.set_accessible_value("only for you");
    one(w, "Send").invoke_accessible_default_action();
    let mut commands = Vec::new();
    while let Ok((_, c)) = f.commands.try_recv() {
        commands.push(c);
    }
    assert_eq!(
        commands,
        vec![Command::Private(bob.fingerprint, "only for you".into()).into()]
    );
    ui::room::apply(
        w,
        Update::Engine(Event::PrivateSent {
            to: bob.clone(),
            id: 3,
            text: "only for you".into(),
            sent_at_ms: 1_790_000_000_000,
        }),
    );
    settle();
    assert_eq!(labels_starting(w, "Private to bob at ").len(), 1);
    let lines = room.get_lines();
    let kinds: Vec<LineKind> = lines.iter().map(|l| l.kind).collect();
    assert!(kinds.contains(&LineKind::PrivateIn) && kinds.contains(&LineKind::PrivateOut));

    // A file picked inside the private conversation goes to bob alone.
    let outbox = f.dir.path().join("private-outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(outbox.join("plan.txt"), b"secret plan").unwrap();
    w.global::<Transfers>()
        .set_chooser_dir(outbox.display().to_string().into());
    one(w, "Send a file").invoke_accessible_default_action();
    settle();
    one(w, "File plan.txt").invoke_accessible_default_action();
    settle();
    one(w, "Send the file").invoke_accessible_default_action();
    settle();
    let plan = outbox.join("plan.txt").canonicalize().unwrap();
    assert_eq!(
        f.next_request(),
        Some(Request::SendFile {
            path: plan,
            to: Some(bob.fingerprint)
        })
    );
    ui::room::apply(
        w,
        Update::File(client::driver::FileUpdate::Sending {
            transfer: [9; 16],
            name: "plan.txt".into(),
            size: 11,
            to: Some(bob.clone()),
        }),
    );
    settle();
    let row = labels_starting(w, "File plan.txt, ");
    assert_eq!(row.len(), 1, "{row:?}");
    assert!(row[0].contains("privately to bob"), "{row:?}");

    // Back in the room: everything shows, private lines still marked.
    one(w, "Close the private conversation").invoke_accessible_default_action();
    settle();
    assert_eq!(room.get_private_to(), "");
    assert!(labels_starting(w, "Private conversation with").is_empty());
    assert_eq!(labels_starting(w, "bob at ").len(), 1);
    assert_eq!(labels_starting(w, "Private from bob at ").len(), 1);
    input.set_accessible_value("to the room");
    one(w, "Send").invoke_accessible_default_action();
    assert_eq!(f.next_command(), Some(Command::Send("to the room".into())));
}
