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
use common::engine::{Command, Delivery, Event, Kind, Warning};
use common::invite::RelayEndpoint;
use common::test_keys::shared;
use common::{Fingerprint, RoomId};
use relay::testing::{test_limits, TestRelay};
use zeroize::Zeroizing;

mod failover;
mod files;
mod history;
mod terminal;

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
                || matches!(
                    e,
                    Event::Warning(Warning::Dropped(d)) if d.kind() == Some(Kind::Private)
                )),
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
    // MemberRemoved comes only with the epoch that drops carol (an earlier
    // three-member epoch, from before she joined, must not count); the
    // others are told the admin removed her, not that she left.
    let carol_left = |e: &Event| matches!(e, Event::MemberRemoved(m) if m.name == "carol");
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

fn file_options(dir: &std::path::Path) -> FileOptions {
    // Paced below the relay's default 4 MiB/s per connection.
    files_in(dir, 32 * 1024 * 1024, 32 * 1024 * 1024)
}
