//! End to end over a real relay and real TLS on 127.0.0.1: one admin and
//! three members join by each policy, chat (and write privately), and live
//! through a kick; a wrong
//! password is denied; a relay with another certificate is refused before
//! anything is sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::Duration;

use client::driver::{self, ConnectError, FileUpdate, Request, StopReason, Trust, Update};
use client::files::FileOptions;
use client::testing::{
    admin_engine, epoch_with, files_in, local_endpoint, member_engine, Peer, WAIT,
};
use common::engine::{Command, Event};
use common::invite::RelayEndpoint;
use common::test_keys::shared;
use common::{Fingerprint, RoomId};
use relay::testing::{test_limits, TestRelay};
use zeroize::Zeroizing;

fn endpoint(relay: &TestRelay) -> RelayEndpoint {
    local_endpoint(relay.addr.port(), &relay.fingerprint)
}

fn member(
    room: RoomId,
    admin: Fingerprint,
    name: &str,
    key: usize,
    password: Option<&str>,
    relay: &RelayEndpoint,
) -> Peer {
    member_on(
        room,
        admin,
        name,
        key,
        password,
        std::slice::from_ref(relay),
    )
}

/// [`member`] with an invite naming `relays`, tried in turn.
fn member_on(
    room: RoomId,
    admin: Fingerprint,
    name: &str,
    key: usize,
    password: Option<&str>,
    relays: &[RelayEndpoint],
) -> Peer {
    Peer::start(
        member_engine(room, admin, name, key, password),
        relays.to_vec(),
        FileOptions::default(),
    )
}

/// Starts the admin (test key 4) with a room password and a roster file,
/// and waits for its first epoch.
async fn admin(
    room: RoomId,
    password: &str,
    roster: HashSet<Fingerprint>,
    relay: &RelayEndpoint,
) -> Peer {
    admin_on(room, password, roster, std::slice::from_ref(relay)).await
}

/// [`admin`] with relays tried in turn.
async fn admin_on(
    room: RoomId,
    password: &str,
    roster: HashSet<Fingerprint>,
    relays: &[RelayEndpoint],
) -> Peer {
    let mut admin = Peer::start(
        admin_engine(room, "e2e", 4, Some(password), roster),
        relays.to_vec(),
        FileOptions::default(),
    );
    admin.expect("the first epoch", epoch_with(1)).await;
    admin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_three_members_join_by_each_policy_chat_and_survive_a_kick() {
    let relay = TestRelay::start(test_limits()).await;
    the_suite(&[endpoint(&relay)]).await;
    relay.stop.cancel();
}

/// The same suite with the admin and the members split across two relays
/// that share the room over NATS (the backplane): nothing changes for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_suite_passes_with_the_room_split_across_two_relays_over_nats() {
    let nats = relay::testing::TestNats::start();
    let one = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let two = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    the_suite(&[endpoint(&one), endpoint(&two)]).await;
    // Both relays carried the room.
    for r in [&one, &two] {
        assert!(r.stats.accepted.load(std::sync::atomic::Ordering::Relaxed) >= 3);
    }
    one.stop.cancel();
    two.stop.cancel();
}

/// Admin and members join by each policy, chat, write privately and live
/// through a kick. Peer k (admin 0, alice 1, bob 2, carol 3, dave 4, erin 5)
/// connects to `at[k % at.len()]`.
async fn the_suite(at: &[RelayEndpoint]) {
    let on = |k: usize| at[k % at.len()].clone();
    let ep = on(0);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut roster = HashSet::new();
    roster.insert(shared(1).public().fingerprint());
    let mut admin = admin(room, "open sesame", roster, &ep).await;

    // By hand: alice waits until the admin approves.
    let mut alice = member(room, admin_fp, "alice", 0, None, &on(1));
    let pending = admin
        .expect("alice's request", |e| {
            matches!(e, Event::PendingApproval { .. })
        })
        .await;
    let Event::PendingApproval {
        id,
        name,
        safety_code,
        ..
    } = pending
    else {
        unreachable!()
    };
    assert_eq!(name, "alice");
    assert_eq!(safety_code, shared(0).public().safety_code().to_string());
    admin.cmd.send(Command::Approve(id).into()).await.unwrap();
    alice.expect("alice's epoch", epoch_with(2)).await;

    // By roster file: bob is approved without a question.
    let mut bob = member(room, admin_fp, "bob", 1, None, &on(2));
    bob.expect("bob's epoch", epoch_with(3)).await;

    // By password: carol proves it; dave gets it wrong and is denied.
    let mut carol = member(room, admin_fp, "carol", 2, Some("open sesame"), &on(3));
    carol.expect("carol's epoch", epoch_with(4)).await;
    let mut dave = member(room, admin_fp, "dave", 3, Some("open says me"), &on(4));
    dave.expect(
        "dave's denial",
        |e| matches!(e, Event::Denied { reason } if reason.contains("password")),
    )
    .await;
    // Everyone holds the four-member epoch before anyone speaks (carol cannot
    // read lines sealed under the epoch before she joined).
    alice.expect("alice sees four", epoch_with(4)).await;
    bob.expect("bob sees four", epoch_with(4)).await;

    // Everyone hears everyone.
    alice.say("from alice").await;
    bob.say("from bob").await;
    carol.say("from carol").await;
    admin.say("from boss").await;
    for (who, peer) in [
        ("admin", &mut admin),
        ("alice", &mut alice),
        ("bob", &mut bob),
        ("carol", &mut carol),
    ] {
        for text in ["from alice", "from bob", "from carol", "from boss"] {
            if text.ends_with(who) || (who == "admin" && text == "from boss") {
                continue;
            }
            peer.expect(
                text,
                |e| matches!(e, Event::Message { text: t, .. } if t == text),
            )
            .await;
        }
    }

    // A private message from alice reaches bob only.
    alice
        .cmd
        .send(Command::Private(shared(1).public().fingerprint(), "just between us".into()).into())
        .await
        .unwrap();
    alice
        .expect(
            "alice's private message sent",
            |e| matches!(e, Event::PrivateSent { text, to, .. } if text == "just between us" && to.name == "bob"),
        )
        .await;
    bob.expect(
        "the private message",
        |e| matches!(e, Event::Private { text, from, .. } if text == "just between us" && from.name == "alice"),
    )
    .await;
    carol.settle(Duration::from_millis(300)).await;
    admin.settle(Duration::from_millis(300)).await;
    for peer in [&carol, &admin] {
        assert!(
            !peer.seen.iter().any(|e| matches!(e, Event::Private { .. })
                || matches!(e, Event::Warning { reason } if reason.contains("private"))),
            "someone else's private message is neither shown nor warned about: {:?}",
            peer.seen
        );
    }

    // Kick carol: she is told, the others move to an epoch without her, and
    // she cannot read what follows.
    admin
        .cmd
        .send(Command::Kick(shared(2).public().fingerprint(), "bye carol".into()).into())
        .await
        .unwrap();
    carol
        .expect("carol's kick", |e| matches!(e, Event::Kicked { .. }))
        .await;
    // MemberLeft comes only with the epoch that drops carol (an earlier
    // three-member epoch, from before she joined, must not count).
    let carol_left = |e: &Event| matches!(e, Event::MemberLeft(m) if m.name == "carol");
    bob.expect("bob's epoch without carol", carol_left).await;
    alice
        .expect("alice's epoch without carol", carol_left)
        .await;
    alice.say("carol cannot read this").await;
    bob.expect(
        "the post-kick message",
        |e| matches!(e, Event::Message { text, .. } if text == "carol cannot read this"),
    )
    .await;
    carol.settle(Duration::from_millis(300)).await;
    assert!(!carol.texts().iter().any(|t| t == "carol cannot read this"));
    assert!(dave.texts().is_empty(), "the denied member read nothing");

    // After a kick the old password approves nobody (carol knew it): the
    // admin sets a new one.
    admin
        .cmd
        .send(Command::SetPassword(Some(Zeroizing::new("new sesame".into()))).into())
        .await
        .unwrap();
    // A newcomer reads nothing said before it joined.
    let mut erin = member(room, admin_fp, "erin", 5, Some("new sesame"), &on(5));
    erin.expect("erin's epoch", epoch_with(4)).await;
    // Bob must hold the epoch that includes erin: a line sealed under the
    // previous epoch is exactly what a newcomer cannot read.
    bob.expect(
        "bob sees erin join",
        |e| matches!(e, Event::MemberJoined(m) if m.name == "erin"),
    )
    .await;
    bob.say("hello erin").await;
    erin.expect(
        "the first message after joining",
        |e| matches!(e, Event::Message { text, .. } if text == "hello erin"),
    )
    .await;
    assert_eq!(erin.texts(), vec!["hello erin"], "nothing from before");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_with_another_certificate_is_refused_before_anything_is_sent() {
    let relay = TestRelay::start(test_limits()).await;
    let mut ep = endpoint(&relay);
    ep.cert = Fingerprint([0x42; 32]);
    let mut peer = member(
        common::crypto::random_room_id(),
        Fingerprint([1; 32]),
        "x",
        0,
        None,
        &ep,
    );
    let reason = loop {
        match tokio::time::timeout(WAIT, peer.up.recv()).await.unwrap() {
            Some(Update::Stopped { reason }) => break reason,
            Some(_) => continue,
            None => panic!("driver ended without a reason"),
        }
    };
    let StopReason::Refused(ConnectError::PinMismatch { expected, got }) = &reason else {
        panic!("stopped for another reason: {reason}");
    };
    assert_eq!(*expected, Fingerprint([0x42; 32]));
    assert_eq!(got.to_string(), relay.fingerprint);
    assert!(reason.is_failure(), "the app exits with a failure");
    // What the user reads names both.
    let text = reason.to_string();
    assert!(text.contains("does not match the invite"), "{text}");
    assert!(text.contains(&"42".repeat(32)), "names the pin: {text}");
    assert!(
        text.contains(&relay.fingerprint),
        "names the certificate: {text}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        relay
            .stats
            .frames_in
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing was sent"
    );
    relay.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_verified_by_ca_file_connects_and_a_wrong_ca_does_not() {
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    // The test certificate is self-signed: it is its own CA.
    let ok = driver::connect(&ep, &Trust::CaFile(relay.cert.cert.clone())).await;
    assert!(ok.is_ok(), "{:?}", ok.err());
    let other = relay::testing::make_cert();
    let bad = driver::connect(&ep, &Trust::CaFile(other.cert.clone())).await;
    assert!(bad.is_err());
    relay.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_relay_restarts_everyone_reconnects_rejoins_and_chats() {
    let relay = TestRelay::start(test_limits()).await;
    let addr = relay.addr;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut admin = admin(room, "pw", HashSet::new(), &ep).await;
    let mut alice = member(room, admin_fp, "alice", 0, Some("pw"), &ep);
    alice.expect("alice's epoch", epoch_with(2)).await;

    // The relay goes away and comes back at the same address with the same certificate.
    relay.stop.cancel();
    let _ = relay.task.await;
    let cert = relay.cert;
    let relay = TestRelay::start_at(test_limits(), addr, cert).await;
    alice.seen.clear();
    admin.seen.clear();
    alice
        .expect("alice back in a two-member epoch", epoch_with(2))
        .await;
    alice.say("back again").await;
    admin
        .expect(
            "the message after the restart",
            |e| matches!(e, Event::Message { text, .. } if text == "back again"),
        )
        .await;
    relay.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_first_relay_dies_everyone_moves_to_the_next_one_in_the_invite() {
    let first = TestRelay::start(test_limits()).await;
    let second = TestRelay::start(test_limits()).await;
    let relays = vec![endpoint(&first), endpoint(&second)];
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut admin = admin_on(room, "pw", HashSet::new(), &relays).await;
    let mut alice = member_on(room, admin_fp, "alice", 0, Some("pw"), &relays);
    alice.expect("alice's epoch", epoch_with(2)).await;
    assert!(
        first
            .stats
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2,
        "both began on the first relay"
    );

    // The first relay dies; each client tries the next address of its
    // invite (with that relay's own pin), rejoins, and the chat goes on.
    first.stop.cancel();
    let _ = first.task.await;
    alice.seen.clear();
    admin.seen.clear();
    alice
        .expect("alice back in a two-member epoch", epoch_with(2))
        .await;
    alice.say("on the second relay").await;
    admin
        .expect(
            "the next message",
            |e| matches!(e, Event::Message { text, .. } if text == "on the second relay"),
        )
        .await;
    assert!(
        second
            .stats
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2,
        "both moved to the second relay"
    );
    second.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_relay_dies_fails_over_to_a_relay_sharing_the_room_and_reads_the_next_message(
) {
    let nats = relay::testing::TestNats::start();
    let (doomed, mut crash) = TestRelay::start_crashable(test_limits(), vec![nats.url()]).await;
    let other = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    // The admin and bob stay on the other relay; alice's invite names the
    // doomed relay first.
    let mut admin = admin_on(room, "pw", HashSet::new(), &[endpoint(&other)]).await;
    let member = |name: &str, key: usize, relays: &[RelayEndpoint]| {
        member_on(room, admin_fp, name, key, Some("pw"), relays)
    };
    let mut alice = member("alice", 0, &[endpoint(&doomed), endpoint(&other)]);
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = member("bob", 1, &[endpoint(&other)]);
    bob.expect("bob's epoch", epoch_with(3)).await;
    alice.expect("alice sees bob", epoch_with(3)).await;
    assert_eq!(
        doomed
            .stats
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "alice alone began on the doomed relay"
    );

    // The doomed relay is killed (its runtime dropped with every socket: no
    // goodbye to anyone): alice moves to the next address of her invite,
    // which shares the room, and her knock brings her back in at once (the
    // other relay hears her old connection leave only at presence expiry).
    crash.now();
    alice.seen.clear();
    // Epoch 3 (bob's) is behind us: alice's return makes a new one.
    alice
        .expect("alice back in a three-member epoch", |e| {
            matches!(e, Event::Epoch { epoch, members, .. } if *epoch >= 4 && members.len() == 3)
        })
        .await;
    // Bob sends once he holds that epoch too: between an epoch message and
    // its roster a member sends nothing (a newer key exists).
    bob.expect(
        "bob in the epoch alice came back in",
        |e| matches!(e, Event::Epoch { epoch, .. } if *epoch >= 4),
    )
    .await;
    bob.say("did you miss anything?").await;
    alice
        .expect(
            "the next message",
            |e| matches!(e, Event::Message { text, .. } if text == "did you miss anything?"),
        )
        .await;
    alice.say("nothing at all").await;
    for p in [&mut admin, &mut bob] {
        p.expect(
            "alice's reply",
            |e| matches!(e, Event::Message { text, .. } if text == "nothing at all"),
        )
        .await;
    }
    other.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_admins_relay_dies_the_members_on_another_relay_are_not_told_they_were_removed() {
    let nats = relay::testing::TestNats::start();
    let (doomed, mut crash) = TestRelay::start_crashable(test_limits(), vec![nats.url()]).await;
    let other = TestRelay::start_shared(test_limits(), &[nats.url()], false).await;
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    // The admin's invite names the doomed relay first; alice sits on the
    // other one.
    let relays = [endpoint(&doomed), endpoint(&other)];
    let mut admin = admin_on(room, "pw", HashSet::new(), &relays).await;
    let mut alice = member_on(room, admin_fp, "alice", 0, Some("pw"), &relays[1..]);
    alice.expect("alice's epoch", epoch_with(2)).await;

    // The admin's relay is killed: the admin is back through the other
    // relay within a second, long before that relay hears (at presence
    // expiry) that the admin's old connection is gone.
    crash.now();
    alice.seen.clear();
    admin.seen.clear();
    // Past the epochs from before the crash still queued: the admin's new
    // connection starts epoch 3 alone, and alice rejoins in epoch 4.
    admin
        .expect("alice seated again", |e| {
            matches!(e, Event::Epoch { epoch, members, .. } if *epoch >= 4 && members.len() == 2)
        })
        .await;
    admin.say("still here").await;
    alice
        .expect(
            "the admin's next message",
            |e| matches!(e, Event::Message { text, .. } if text == "still here"),
        )
        .await;
    assert!(
        !alice.seen.iter().any(|e| matches!(e, Event::Kicked { .. })),
        "alice was told she was removed: {:?}",
        alice.seen
    );
    other.stop.cancel();
}

fn file_options(dir: &std::path::Path) -> FileOptions {
    // Paced below the relay's default 4 MiB/s per connection.
    files_in(dir, 32 * 1024 * 1024, 32 * 1024 * 1024)
}

fn file_member(
    room: RoomId,
    admin: Fingerprint,
    name: &str,
    key: usize,
    relay: &RelayEndpoint,
    dir: &std::path::Path,
) -> Peer {
    Peer::start(
        member_engine(room, admin, name, key, Some("pw")),
        vec![relay.clone()],
        file_options(dir),
    )
}

fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_size_arrive_bit_identical_at_two_members_over_the_relay() {
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = file_member(room, admin_fp, "alice", 0, &ep, dirs[0].path());
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = file_member(room, admin_fp, "bob", 1, &ep, dirs[1].path());
    bob.expect("bob's epoch", epoch_with(3)).await;
    let mut carol = file_member(room, admin_fp, "carol", 2, &ep, dirs[2].path());
    carol.expect("carol's epoch", epoch_with(4)).await;
    alice.expect("alice sees four", epoch_with(4)).await;
    admin.expect("the admin sees four", epoch_with(4)).await;

    let chunk = common::engine::files::CHUNK_SIZE as usize;
    let sizes = [0, 1, chunk - 1, chunk, chunk + 1, 20 * 1024 * 1024];
    let source = dirs[3].path();
    for (n, size) in sizes.into_iter().enumerate() {
        let name = format!("file-{size}.bin");
        let body = content(size, n as u8);
        std::fs::write(source.join(&name), &body).unwrap();
        alice
            .cmd
            .send(Request::SendFile {
                path: source.join(&name),
                to: None,
            })
            .await
            .unwrap();
        if size == 20 * 1024 * 1024 {
            // Chat goes on while a file passes.
            tokio::time::sleep(Duration::from_millis(500)).await;
            bob.say("still here during the transfer").await;
            alice
                .expect(
                    "a chat line during the transfer",
                    |e| matches!(e, Event::Message { text, .. } if text == "still here during the transfer"),
                )
                .await;
        }
        for (who, peer, dir) in [("bob", &mut bob, &dirs[1]), ("carol", &mut carol, &dirs[2])] {
            let saved = peer
                .expect_file(&format!("{who} saves {name}"), Duration::from_secs(60), |f| {
                    matches!(f, FileUpdate::Saved { path, .. } if path.file_name().is_some_and(|p| p == name.as_str()))
                })
                .await;
            let FileUpdate::Saved { path, .. } = saved else {
                unreachable!()
            };
            assert!(path.starts_with(dir.path()));
            let got = std::fs::read(&path).unwrap();
            assert!(got == body, "{who}: {name} arrived bit-identical");
        }
        alice
            .expect_file("alice's file sent", Duration::from_secs(60), |f| {
                matches!(f, FileUpdate::Sent { .. })
            })
            .await;
        alice.files.clear();
    }
    // Nothing else was left in the download folders (no partial files).
    for (who, dir) in [("bob", &dirs[1]), ("carol", &dirs[2])] {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), sizes.len(), "{who}: {names:?}");
        assert!(names.iter().all(|n| !n.ends_with(".part")));
    }
    assert!(
        alice
            .seen
            .iter()
            .chain(&bob.seen)
            .all(|e| !matches!(e, Event::Error { reason } if reason.contains("relay"))),
        "nobody was cut off by the relay's limits"
    );
    relay.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_file_names_are_saved_safely_inside_the_download_folder() {
    use sha2::{Digest, Sha256};
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let _admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = file_member(room, admin_fp, "alice", 0, &ep, dirs[0].path());
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = file_member(room, admin_fp, "bob", 1, &ep, dirs[1].path());
    bob.expect("bob's epoch", epoch_with(3)).await;
    alice.expect("alice sees bob", epoch_with(3)).await;

    let long = "n".repeat(300);
    let names = [
        ("../../etc/passwd", "passwd".to_string()),
        ("/abs/path", "path".to_string()),
        ("a\u{202e}txt.exe", "atxt.exe".to_string()),
        ("CON", "_CON".to_string()),
        (long.as_str(), "n".repeat(200)),
        ("passwd", "passwd (1)".to_string()),
    ];
    for (n, (offered, saved_as)) in names.iter().enumerate() {
        // The offer is made by hand: no local file can carry such a name.
        let body = content(10 + n, n as u8);
        let transfer = [n as u8 + 1; 16];
        alice
            .cmd
            .send(
                Command::OfferFile(common::engine::FileSpec {
                    transfer,
                    name: (*offered).to_string(),
                    size: body.len() as u64,
                    media_type: "text/plain".into(),
                    sha256: Sha256::digest(&body).into(),
                    to: None,
                })
                .into(),
            )
            .await
            .unwrap();
        alice
            .cmd
            .send(
                Command::FileChunk {
                    transfer,
                    index: 0,
                    data: body.clone().into(),
                }
                .into(),
            )
            .await
            .unwrap();
        let saved = bob
            .expect_file(
                &format!("bob saves {offered:?}"),
                WAIT,
                |f| matches!(f, FileUpdate::Saved { transfer: t, .. } if *t == transfer),
            )
            .await;
        let FileUpdate::Saved { path, .. } = saved else {
            unreachable!()
        };
        assert_eq!(
            path.parent(),
            Some(dirs[1].path()),
            "{offered:?} stays in the folder"
        );
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            saved_as.as_str()
        );
        assert_eq!(std::fs::read(&path).unwrap(), body);
    }
    relay.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_privately_is_saved_by_its_recipient_only() {
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = file_member(room, admin_fp, "alice", 0, &ep, dirs[0].path());
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = file_member(room, admin_fp, "bob", 1, &ep, dirs[1].path());
    bob.expect("bob's epoch", epoch_with(3)).await;
    let mut carol = file_member(room, admin_fp, "carol", 2, &ep, dirs[2].path());
    carol.expect("carol's epoch", epoch_with(4)).await;
    alice.expect("alice sees four", epoch_with(4)).await;
    admin.expect("the admin sees four", epoch_with(4)).await;

    let body = content(3 * 1024 * 1024 + 17, 77);
    let source = dirs[3].path().join("salaries.csv");
    std::fs::write(&source, &body).unwrap();
    alice
        .cmd
        .send(Request::SendFile {
            path: source,
            to: Some(shared(1).public().fingerprint()),
        })
        .await
        .unwrap();
    let offered = bob
        .expect_file("bob is offered the file", WAIT, |f| {
            matches!(f, FileUpdate::Offered { .. })
        })
        .await;
    assert!(
        matches!(offered, FileUpdate::Offered { private: true, ref from, .. } if from.name == "alice")
    );
    let saved = bob
        .expect_file("bob saves it", Duration::from_secs(60), |f| {
            matches!(f, FileUpdate::Saved { .. })
        })
        .await;
    let FileUpdate::Saved { path, .. } = saved else {
        unreachable!()
    };
    assert!(std::fs::read(&path).unwrap() == body, "bit-identical");
    alice
        .expect_file("alice's file sent", WAIT, |f| {
            matches!(f, FileUpdate::Sent { .. })
        })
        .await;
    assert!(matches!(
        alice.files.first(),
        Some(FileUpdate::Sending { to: Some(m), .. }) if m.name == "bob"
    ));
    // Carol and the admin received every chunk and heard of nothing.
    carol.settle(Duration::from_millis(300)).await;
    admin.settle(Duration::from_millis(300)).await;
    assert!(carol.files.is_empty(), "{:?}", carol.files);
    assert!(admin.files.is_empty(), "{:?}", admin.files);
    for seen in [&carol.seen, &admin.seen] {
        assert!(
            !seen.iter().any(|e| matches!(e, Event::Warning { .. })),
            "{seen:?}"
        );
    }
    assert_eq!(std::fs::read_dir(dirs[2].path()).unwrap().count(), 0);
    relay.stop.cancel();
}

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
        .expect("a history warning", |e| matches!(e, Event::Warning { reason } if reason.contains("history") && reason.contains("without history")))
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
