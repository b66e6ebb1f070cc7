//! Relays that restart or die: everyone reconnects, moves to the next relay
//! of the invite, and is not told of a removal that did not happen.

use super::*;

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
