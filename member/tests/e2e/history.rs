//! The local history across a restart, sealed, and a broken database that
//! only warns.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_sealed_and_a_broken_database_only_warns() {
    use client::history::{EntryKind, HistoryOptions, Retention};
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alice-history.sqlite3");
    let start_alice = |history: Option<HistoryOptions>| {
        let opts = driver::Options {
            files: file_options(dir.path()),
            history,
            admin_state: None,
            liveness: driver::Liveness::default(),
        };
        Peer::start_with(
            member_engine(room, admin_fp, "alice", 0, Some("pw")),
            vec![ep.clone()],
            opts,
        )
    };
    let hopts = HistoryOptions {
        path: db.clone(),
        retention: Retention::default(),
    };
    let mut alice = start_alice(Some(hopts.clone()));
    alice.expect("alice's epoch", epoch_with(2)).await;
    admin.expect("the admin sees alice", epoch_with(2)).await;
    admin.say("the quokka password is tangerine").await;
    alice
        .expect(
            "the admin's line",
            |e| matches!(e, Event::Message { text, .. } if text.contains("quokka")),
        )
        .await;
    alice.say("noted, zeppelin at noon").await;
    alice
        .expect(
            "alice's own line",
            |e| matches!(e, Event::Sent { text, .. } if text.contains("zeppelin")),
        )
        .await;
    alice.cmd.send(Command::Leave.into()).await.unwrap();
    drop(alice);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Nothing readable on disk.
    let bytes = std::fs::read(&db).unwrap();
    for needle in ["quokka", "tangerine", "zeppelin", "alice", "boss"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} is in the database file"
        );
    }

    // After a restart the earlier lines come first, in order.
    let mut alice = start_alice(Some(hopts.clone()));
    let loaded = loop {
        match tokio::time::timeout(WAIT, alice.up.recv()).await.unwrap() {
            Some(Update::History {
                loaded,
                requested: false,
            }) => break loaded,
            Some(Update::Engine(e)) => alice.seen.push(e),
            Some(_) => {}
            None => panic!("driver ended"),
        }
    };
    let got: Vec<(EntryKind, String)> = loaded
        .entries
        .iter()
        .map(|e| (e.kind, e.text.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                EntryKind::Message,
                "the quokka password is tangerine".to_string()
            ),
            (EntryKind::Own, "noted, zeppelin at noon".to_string()),
        ]
    );
    assert_eq!(loaded.skipped, 0);
    assert_eq!(loaded.entries[0].who, "boss");
    alice.expect("alice back in the room", epoch_with(2)).await;
    alice.cmd.send(Command::Leave.into()).await.unwrap();
    drop(alice);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A database that is not SQLite: a warning, and the room works on.
    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let mut alice = start_alice(Some(hopts));
    alice
        .expect_local_warning("a history warning", |w| {
            w.contains("history") && w.contains("without history")
        })
        .await;
    alice
        .expect("alice in the room all the same", epoch_with(2))
        .await;
    admin.say("still chatting").await;
    alice
        .expect(
            "chat without history",
            |e| matches!(e, Event::Message { text, .. } if text == "still chatting"),
        )
        .await;
    assert_eq!(
        std::fs::read(&db).unwrap(),
        vec![0x5a; 8192],
        "the broken file is left alone"
    );
    relay.stop.cancel();
}

/// Issue 22: a line typed while the relay is down waits in the outbox; the
/// app is closed; opened again (same history), it sends the line, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_typed_while_the_relay_is_down_survives_a_restart_of_the_app() {
    use client::history::{HistoryOptions, Retention};
    let relay = TestRelay::start(test_limits()).await;
    let (addr, ep) = (relay.addr, endpoint(&relay));
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dir = tempfile::tempdir().unwrap();
    let hopts = HistoryOptions {
        path: dir.path().join("alice-history.sqlite3"),
        retention: Retention::default(),
    };
    let start_alice = || {
        let opts = driver::Options {
            files: file_options(dir.path()),
            history: Some(hopts.clone()),
            admin_state: None,
            liveness: driver::Liveness::default(),
        };
        Peer::start_with(
            member_engine(room, admin_fp, "alice", 0, Some("pw")),
            vec![ep.clone()],
            opts,
        )
    };
    let mut alice = start_alice();
    alice.expect("alice's epoch", epoch_with(2)).await;

    // The relay goes away; alice writes, and closes the app.
    relay.stop.cancel();
    let _ = relay.task.await;
    let cert = relay.cert;
    // The app knows the relay is gone (a line sealed into the dying
    // connection would have gone out: unconfirmed, not kept).
    let deadline = std::time::Instant::now() + WAIT;
    while !alice
        .links
        .iter()
        .any(|(_, u)| matches!(u, client::driver::Update::Disconnected { .. }))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "alice never saw the relay go"
        );
        alice.settle(Duration::from_millis(50)).await;
    }
    alice.say("typed while the relay was down").await;
    alice
        .expect("the line waits", |e| {
            matches!(
                e,
                Event::Delivery {
                    state: Delivery::Waiting(_),
                    ..
                }
            )
        })
        .await;
    alice.cmd.send(Command::Leave.into()).await.unwrap();
    alice
        .expect("kept for the next start", |e| {
            matches!(e, Event::Delivery { state: Delivery::Waiting(why), .. } if why.contains("kept"))
        })
        .await;
    drop(alice);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The relay is back; alice opens the app again: the line goes, once.
    let relay = TestRelay::start_at(test_limits(), addr, cert).await;
    let mut alice = start_alice();
    let id = match alice
        .expect(
            "the kept line, shown again",
            |e| matches!(e, Event::Sent { text, .. } if text.contains("relay was down")),
        )
        .await
    {
        Event::Sent { id, .. } => id,
        _ => unreachable!(),
    };
    alice
        .expect(
            "delivered",
            |e| matches!(e, Event::Delivery { id: i, state: Delivery::Delivered } if *i == id),
        )
        .await;
    admin
        .expect(
            "the admin reads it",
            |e| matches!(e, Event::Message { text, .. } if text.contains("relay was down")),
        )
        .await;
    admin.settle(Duration::from_millis(500)).await;
    let copies = admin
        .texts()
        .iter()
        .filter(|t| t.contains("relay was down"))
        .count();
    assert_eq!(copies, 1);
    relay.stop.cancel();
}

/// Issue 23: trust on first use, made visible. bob is met; later someone
/// joins as "bob" with another key: alice is told the key changed before
/// anything from that key is shown, and the contacts keep both keys (the
/// first one verified, after comparing safety codes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_name_with_a_new_key_is_said_before_its_first_line() {
    use client::history::{HistoryOptions, Retention};
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = driver::Options {
        files: file_options(dir.path()),
        history: Some(HistoryOptions {
            path: dir.path().join("alice-history.sqlite3"),
            retention: Retention::default(),
        }),
        admin_state: None,
        liveness: driver::Liveness::default(),
    };
    let mut alice = Peer::start_with(
        member_engine(room, admin_fp, "alice", 0, Some("pw")),
        vec![ep.clone()],
        opts,
    );
    alice.expect("alice's epoch", epoch_with(2)).await;
    let bob_fp = shared(1).public().fingerprint();
    let mut bob = member(room, admin_fp, "bob", 1, Some("pw"), &ep);
    bob.expect("bob's epoch", epoch_with(3)).await;
    alice.expect("bob seen", epoch_with(3)).await;
    // Met (the contacts answer the meeting), and no change: bob is new.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !alice.contacts.iter().any(|c| c.fingerprint == bob_fp) {
        alice.next("bob a contact", deadline).await;
    }
    assert!(alice.key_changes.is_empty(), "bob is new, not changed");
    alice.cmd.send(Request::Verify(bob_fp, true)).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !alice
        .contacts
        .iter()
        .any(|c| c.fingerprint == bob_fp && c.verified)
    {
        alice.next("bob verified", deadline).await;
    }
    bob.cmd.send(Command::Leave.into()).await.unwrap();
    alice
        .expect(
            "bob left",
            |e| matches!(e, Event::MemberLeft(m) if m.name == "bob"),
        )
        .await;

    // "bob" again, with another key, and a line at once.
    let mut other = member(room, admin_fp, "bob", 2, Some("pw"), &ep);
    other
        .expect("in", |e| matches!(e, Event::Epoch { members, .. } if members.iter().any(|m| m.name == "bob")))
        .await;
    other
        .cmd
        .send(Command::Send("it's me, new laptop".into()).into())
        .await
        .unwrap();
    let line = alice
        .expect(
            "the new key's line",
            |e| matches!(e, Event::Message { text, .. } if text == "it's me, new laptop"),
        )
        .await;
    let at = alice.seen.iter().position(|e| *e == line).unwrap();
    let new_fp = shared(2).public().fingerprint();
    let (before, change) = alice
        .key_changes
        .iter()
        .find(|(_, c)| c.fingerprint == new_fp)
        .unwrap_or_else(|| panic!("no key change: {:?}", alice.key_changes))
        .clone();
    assert!(before <= at, "said before the line ({before} > {at})");
    assert_eq!(change.before, vec![(bob_fp, true)], "the verified old key");
    // Both keys are contacts now; only the first is verified.
    alice.cmd.send(Request::Contacts).await.unwrap();
    alice.settle(Duration::from_millis(300)).await;
    let bobs: Vec<(Fingerprint, bool)> = alice
        .contacts
        .iter()
        .filter(|c| c.name() == "bob")
        .map(|c| (c.fingerprint, c.verified))
        .collect();
    assert_eq!(bobs.len(), 2, "{:?}", alice.contacts);
    assert!(bobs.contains(&(bob_fp, true)) && bobs.contains(&(new_fp, false)));
    drop(admin);
    relay.stop.cancel();
}
