//! The outbox: a line is pending until the relay acknowledges it, goes
//! again after a reconnect if it was not, is shown once however often it
//! went, waits while sending is paused, and fails (with the reason) when it
//! never can go. Issue 22.

use super::*;
use common::engine::{Outgoing, OUTBOX_EXPIRY_MS};

/// The delivery states node `idx` was shown for its line `id`.
fn states(net: &Net, idx: usize, id: u64) -> Vec<Delivery> {
    net.nodes[idx]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Delivery { id: i, state } if *i == id => Some(state.clone()),
            _ => None,
        })
        .collect()
}

/// The id of the last line node `idx` wrote (room or private).
fn last_line(net: &Net, idx: usize) -> u64 {
    net.nodes[idx]
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Sent { id, .. } | Event::PrivateSent { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a line was written")
}

fn delivered(net: &Net, idx: usize, id: u64) -> bool {
    states(net, idx, id).contains(&Delivery::Delivered)
}

/// Member `m` loses its connection and comes back on a new one: rejoined
/// (at the next tick: knocks come at most every 250 ms).
fn bounce(net: &mut Net, m: usize) {
    net.disconnect(m);
    net.reconnect(m);
    net.tick(1_000);
}

#[test]
fn a_line_is_pending_until_the_relay_acknowledges_it() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    // A relay that takes the line but whose acknowledgement is lost: shown
    // to the room, still pending for its writer.
    net.acks = false;
    net.command(alice, Command::Send("one".into()));
    let one = last_line(&net, alice);
    assert_eq!(net.texts(bob), ["one"]);
    assert!(
        states(&net, alice, one).is_empty(),
        "never marked delivered before the relay says it took it"
    );
    // The next acknowledgement covers it (cumulative).
    net.acks = true;
    net.command(alice, Command::Send("two".into()));
    let two = last_line(&net, alice);
    assert!(delivered(&net, alice, one) && delivered(&net, alice, two));
    assert_eq!(net.texts(bob), ["one", "two"]);
}

#[test]
fn a_line_lost_with_the_connection_goes_again_after_the_reconnect_exactly_once() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    net.command(alice, Command::Send("before".into()));
    // The link dies; alice does not know yet and writes on.
    net.nodes[alice].online = false;
    net.command(alice, Command::Send("into the void".into()));
    net.command(alice, Command::Send("and again".into()));
    let lost = last_line(&net, alice);
    assert!(!delivered(&net, alice, lost));
    assert_eq!(net.texts(bob), ["before"]);
    // Her app reconnects: the relay tells the room she left and came back.
    net.nodes[alice].online = true;
    bounce(&mut net, alice);
    for reader in [bob, carol] {
        assert_eq!(
            net.texts(reader),
            ["before", "into the void", "and again"],
            "every line exactly once, in order"
        );
    }
    assert!(delivered(&net, alice, lost));
    for reader in [bob, carol] {
        assert!(
            !net.nodes[reader]
                .events
                .iter()
                .any(|e| matches!(e, Event::Missed { .. })),
            "lines that come back resent are not reported missing"
        );
    }
    net.command(alice, Command::Send("after".into()));
    assert_eq!(
        net.texts(bob),
        ["before", "into the void", "and again", "after"]
    );
}

#[test]
fn a_line_whose_acknowledgement_was_lost_is_resent_and_shown_once() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    net.acks = false;
    net.command(alice, Command::Send("taken, not acknowledged".into()));
    let id = last_line(&net, alice);
    net.acks = true;
    let sent_before = net
        .log
        .iter()
        .filter(|(to, f)| *to == bob && is_message(f))
        .count();
    bounce(&mut net, alice);
    // It went again (sealed anew, naming its first sealing) ...
    let sent_after = net
        .log
        .iter()
        .filter(|(to, f)| *to == bob && is_message(f))
        .count();
    assert!(sent_after > sent_before, "the line was sent again");
    assert!(delivered(&net, alice, id));
    // ... and bob, who had it, shows it once.
    assert_eq!(net.texts(bob), ["taken, not acknowledged"]);
    assert!(
        net.warnings(bob).is_empty() || !net.warned(bob, |w| matches!(w, Warning::Dropped(_))),
        "a resent copy is not a warning: {:?}",
        net.warnings(bob)
    );
}

#[test]
fn a_resent_line_a_reader_missed_is_shown_to_it() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    // The relay delivers alice's line to carol only, and loses its
    // acknowledgement.
    net.acks = false;
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if f.0 == bob && is_message(&f.1) {
            return vec![];
        }
        vec![f.clone()]
    }));
    net.command(alice, Command::Send("only carol got this".into()));
    net.tamper = None;
    net.acks = true;
    assert!(net.texts(bob).is_empty());
    bounce(&mut net, alice);
    assert_eq!(net.texts(bob), ["only carol got this"]);
    assert_eq!(net.texts(carol), ["only carol got this"]);
}

#[test]
fn a_line_typed_before_the_key_arrives_waits_and_goes_in_order() {
    let mut net = Net::new();
    let admin_key = id(4);
    net.admin(admin_cfg(), admin_key.clone());
    let bob = net.member(member_cfg("bob", &admin_key), id(1));
    let pid = net.pending_id(0).expect("bob asks");
    net.command(0, Command::Approve(pid));
    let alice = net.member(member_cfg("alice", &admin_key), id(0));
    // Alice writes while her request waits for the admin.
    net.command(alice, Command::Send("first".into()));
    let first = last_line(&net, alice);
    net.command(alice, Command::Send("second".into()));
    let st = states(&net, alice, first);
    assert!(
        matches!(st.as_slice(), [Delivery::Waiting(why)] if why.contains("no key")),
        "{st:?}"
    );
    assert!(net.texts(bob).is_empty());
    let pid = net.pending_id(0).expect("alice asks");
    net.command(0, Command::Approve(pid));
    assert_eq!(net.texts(bob), ["first", "second"]);
    assert!(delivered(&net, alice, first));
}

#[test]
fn a_line_that_cannot_go_for_ten_minutes_fails_and_says_why() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let alice = ids[0];
    // The admin is gone: after a while nobody may send (no fresh word).
    net.nodes[0].online = false;
    net.tick(30_000);
    net.command(alice, Command::Send("nobody hears".into()));
    let id = last_line(&net, alice);
    assert!(matches!(
        states(&net, alice, id).as_slice(),
        [Delivery::Waiting(_)]
    ));
    for _ in 0..(OUTBOX_EXPIRY_MS / 60_000) {
        net.tick(60_000);
    }
    let last = states(&net, alice, id);
    assert!(
        matches!(last.last(), Some(Delivery::Failed(why)) if why.contains("minutes")),
        "{last:?}"
    );
    // Failed means gone: it is not sent when the admin returns.
    net.nodes[0].online = true;
    net.reconnect(0);
    net.tick(1_000);
    assert!(!net.texts(ids[1]).iter().any(|t| t == "nobody hears"));
}

#[test]
fn a_member_removed_with_lines_pending_is_told_they_failed_and_cannot_write_more() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let bob = ids[1];
    net.acks = false;
    net.command(bob, Command::Send("in flight".into()));
    let id = last_line(&net, bob);
    net.acks = true;
    net.command(
        0,
        Command::Kick(key(1).public().fingerprint(), "out".into()),
    );
    // It went out, unconfirmed: not "failed" (someone may have read it,
    // and sending it again would show it twice).
    let st = states(&net, bob, id);
    assert!(
        matches!(st.as_slice(), [Delivery::Unconfirmed(why)] if why.contains("removed")),
        "{st:?}"
    );
    net.nodes[bob].events.clear();
    net.command(bob, Command::Send("let me back".into()));
    assert!(net.nodes[bob]
        .events
        .iter()
        .any(|e| matches!(e, Event::Error { reason } if reason.contains("removed"))));
    assert!(
        !net.nodes[bob]
            .events
            .iter()
            .any(|e| matches!(e, Event::Sent { .. })),
        "no line is taken"
    );
}

#[test]
fn lines_kept_across_a_restart_go_once_the_app_is_back() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    net.acks = false;
    // One line taken by the relay (acknowledgement lost) ...
    net.command(alice, Command::Send("taken".into()));
    let taken = last_line(&net, alice);
    // ... and one typed once the app knew the link was down.
    net.disconnect(alice);
    let now = net.now;
    let acts = net.nodes[alice].engine.on_disconnected(now);
    net.apply(alice, acts);
    net.command(alice, Command::Send("typed offline".into()));
    let offline = last_line(&net, alice);
    // What the client runtime keeps on disk: id, recipient, text, time,
    // first sealing.
    let kept: Vec<Outgoing> = net.nodes[alice]
        .engine
        .outbox()
        .into_iter()
        .map(|l| Outgoing::new(l.id, l.to, l.text, l.typed_ms, l.first))
        .collect();
    assert_eq!(kept.len(), 2);
    // The app restarts: a new engine with the same key, the kept lines put back.
    let admin_key = id(4);
    let mut fresh = Engine::Member(Box::new(Member::new(
        member_cfg("alice", &admin_key),
        id(0),
    )));
    for l in kept {
        assert!(fresh.restore_line(l));
    }
    net.acks = true;
    net.nodes[alice].engine = fresh;
    net.reconnect(alice);
    net.tick(1_000);
    // The line that never left goes; the one that went out is not sent
    // again (whom it reached is not known after a restart): bob, who had
    // it, reads each once.
    assert_eq!(net.texts(bob), ["taken", "typed offline"]);
    assert!(delivered(&net, alice, offline));
    let st = states(&net, alice, taken);
    assert!(
        matches!(st.last(), Some(Delivery::Unconfirmed(why)) if why.contains("restarted")),
        "{st:?}"
    );
    assert!(net.nodes[alice].engine.outbox().is_empty());
}

#[test]
fn a_private_line_is_resent_to_its_recipient_alone_and_shown_once() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    net.acks = false;
    let bob_fp = key(1).public().fingerprint();
    net.command(alice, Command::Private(bob_fp, "just for bob".into()));
    net.nodes[alice].online = false;
    net.command(alice, Command::Private(bob_fp, "also for bob".into()));
    net.nodes[alice].online = true;
    net.acks = true;
    bounce(&mut net, alice);
    let privates = |net: &Net, idx: usize| -> Vec<String> {
        net.nodes[idx]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Private { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(privates(&net, bob), ["just for bob", "also for bob"]);
    assert!(privates(&net, carol).is_empty());
    assert!(net.texts(carol).is_empty());
}

#[test]
fn an_acknowledgement_beyond_what_was_sent_marks_nothing_more() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let alice = ids[0];
    net.acks = false;
    net.nodes[alice].online = false;
    net.command(alice, Command::Send("lost".into()));
    let id = last_line(&net, alice);
    // A relay can always claim it took what we sent (and drop it): that
    // is what the readers' gap reports are for. But a count is about one
    // connection: on a new one, before anything is published, a relay
    // claiming a million frames marks nothing.
    net.nodes[alice].online = true;
    net.acks = true;
    let now = net.now;
    let _ = net.nodes[alice].engine.on_connected(now);
    let acts = net.nodes[alice].engine.handle_frame(
        now,
        RelayFrame::Ack(common::wire::Ack {
            publish: 1_000_000,
            bulk: 0,
        }),
    );
    net.apply(alice, acts);
    assert!(
        !delivered(&net, alice, id),
        "nothing was published on the new connection: nothing is marked"
    );
}

#[test]
fn a_line_is_never_sent_again_to_someone_who_joined_after_it_went_out() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    // The relay delivers alice's line but keeps its acknowledgement ...
    net.acks = false;
    net.command(alice, Command::Send("before carol".into()));
    let line = last_line(&net, alice);
    net.acks = true;
    // ... carol is let in ...
    let admin_key = id(4);
    let carol = net.member(member_cfg("carol", &admin_key), id(2));
    let pid = net.pending_id(0).expect("carol asks");
    net.command(0, Command::Approve(pid));
    assert!(net.nodes[carol].engine.members().len() == 4, "carol is in");
    // ... then the relay cuts alice, whose line went unacknowledged.
    bounce(&mut net, alice);
    assert!(
        net.texts(carol).is_empty(),
        "carol reads nothing said before she joined: {:?}",
        net.texts(carol)
    );
    assert_eq!(net.texts(bob), ["before carol"], "bob had it, once");
    assert!(matches!(
        states(&net, alice, line).as_slice(),
        [Delivery::Unconfirmed(why)] if why.contains("joined")
    ));
}

#[test]
fn a_private_line_waits_for_a_recipient_who_is_reconnecting() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    let bob_fp = key(1).public().fingerprint();
    // Both lose their connection; alice is back first and writes to bob
    // before he is back in the room.
    net.nodes[bob].online = false;
    net.disconnect(bob);
    net.command(alice, Command::Private(bob_fp, "are you back?".into()));
    net.command(alice, Command::Send("to the room meanwhile".into()));
    let id = net.nodes[alice]
        .events
        .iter()
        .find_map(|e| match e {
            Event::PrivateSent { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap();
    assert!(!states(&net, alice, id)
        .iter()
        .any(|s| matches!(s, Delivery::Failed(_) | Delivery::Unconfirmed(_))));
    net.nodes[bob].online = true;
    net.reconnect(bob);
    net.tick(1_000);
    let privates: Vec<String> = net.nodes[bob]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Private { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(privates, ["are you back?"]);
    assert!(delivered(&net, alice, id));
}

#[test]
fn after_the_relay_dies_the_first_one_back_waits_for_the_others_before_speaking() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    // The relay dies: everyone loses the connection; alice writes meanwhile.
    net.disconnect(alice);
    net.disconnect(bob);
    net.command(alice, Command::Send("anyone?".into()));
    let line = last_line(&net, alice);
    // Alice is back first, seated in an epoch without bob.
    net.reconnect(alice);
    net.tick(1_000);
    assert!(
        !delivered(&net, alice, line),
        "held for bob, who was in the room before"
    );
    // Bob is back a moment later, and hears it.
    net.reconnect(bob);
    net.tick(1_000);
    assert_eq!(net.texts(bob), ["anyone?"]);
    assert!(delivered(&net, alice, line));
}

#[test]
fn someone_who_does_not_come_back_holds_the_room_up_five_seconds_at_most() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let alice = ids[0];
    net.disconnect(alice);
    net.disconnect(ids[1]);
    net.command(alice, Command::Send("still there?".into()));
    let line = last_line(&net, alice);
    net.reconnect(alice);
    net.tick(1_000);
    assert!(!delivered(&net, alice, line));
    net.tick(common::engine::SETTLE_MS);
    assert!(delivered(&net, alice, line), "sent once the hold ran out");
    assert!(net.texts(0).contains(&"still there?".to_string()));
}

#[test]
fn a_line_that_is_not_sent_again_is_reported_missing_to_those_it_never_reached() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    // Alice's link dies; the line she writes never reaches the relay.
    net.disconnect(alice);
    net.command(alice, Command::Send("lost on the way".into()));
    let line = last_line(&net, alice);
    // Carol joins while alice is away ...
    let admin_key = id(4);
    let carol = net.member(member_cfg("carol", &admin_key), id(2));
    let pid = net.pending_id(0).expect("carol asks");
    net.command(0, Command::Approve(pid));
    // ... so alice's line is not sent again (carol must not read it).
    net.reconnect(alice);
    net.tick(1_000);
    net.command(alice, Command::Send("back".into()));
    assert!(matches!(
        states(&net, alice, line).last(),
        Some(Delivery::Unconfirmed(_))
    ));
    assert!(net.texts(carol).iter().all(|t| t != "lost on the way"));
    // Bob never had it: he is told a line of alice's never reached him
    // (the end of her epoch is not told without it).
    assert!(
        net.nodes[bob]
            .events
            .iter()
            .any(|e| matches!(e, Event::Missed { from, count: 1, .. } if from.name == "alice")),
        "bob was not told: {:?}",
        net.nodes[bob].events
    );
}
