//! The sans-IO engine, driven deterministically through an in-memory relay:
//! joins by every policy and knocks, messages, names, epochs, kicks, and a hostile relay that
//! tampers with, replays, injects and forges frames.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

use std::collections::HashSet;

use bytes::Bytes;
use common::crypto::OsRng;
use common::engine::admin::Admin;
use common::engine::member::Member;
use common::engine::{Action, Command, Delivery, Engine, Event, FileEvent, FileSpec};
use common::test_keys::key;
use common::wire::{
    decode_payload, encode_payload, ClientFrame, Envelope, RelayFrame, Welcome, DEFAULT_MAX_FRAME,
};
use common::Fingerprint;
use support::*;
use zeroize::Zeroizing;

mod files;
mod hostile;
mod outbox;
mod private;
mod replay;

#[test]
fn approval_by_hand_then_both_ways_chat() {
    let mut net = Net::new();
    let admin_key = id(4);
    net.admin(admin_cfg(), admin_key.clone());
    assert_eq!(net.epoch_of(0), Some((1, 1)));
    let m = net.member(member_cfg("alice", &admin_key), id(0));
    let ev = net.take(m);
    assert!(
        ev.iter().any(|e| matches!(e, Event::AdminVerified { .. })),
        "{ev:?}"
    );
    assert!(ev.iter().any(|e| matches!(e, Event::JoinRequested)));
    let pending = net.take(0);
    let (pid, code) = pending
        .iter()
        .find_map(|e| match e {
            Event::PendingApproval {
                id,
                name,
                safety_code,
                fingerprint,
                ..
            } => {
                assert_eq!(name, "alice");
                assert_eq!(*fingerprint, key(0).public().fingerprint());
                Some((*id, safety_code.clone()))
            }
            _ => None,
        })
        .expect("pending approval");
    assert_eq!(code, key(0).public().safety_code().to_string());
    assert!(
        !net.nodes[m]
            .engine
            .members()
            .iter()
            .any(|x| x.name == "alice"),
        "no key before approval"
    );

    net.command(0, Command::Approve(pid));
    assert_eq!(net.epoch_of(0), Some((2, 2)));
    assert_eq!(net.epoch_of(m), Some((2, 2)));

    net.command(m, Command::Send("hello boss".into()));
    net.command(0, Command::Send("welcome alice".into()));
    assert_eq!(net.texts(0), vec!["hello boss"]);
    assert_eq!(net.texts(m), vec!["welcome alice"]);
    assert!(net.warnings(0).is_empty() && net.warnings(m).is_empty());
}

#[test]
fn roster_file_approves_automatically() {
    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    cfg.roster.insert(key(1).public().fingerprint());
    net.admin(cfg, admin_key.clone());
    let m = net.member(member_cfg("bob", &admin_key), id(1));
    assert_eq!(net.pending_id(0), None);
    assert_eq!(net.epoch_of(m), Some((2, 2)));
    // Someone not on the roster still waits.
    let c = net.member(member_cfg("carol", &admin_key), id(2));
    assert!(net.pending_id(0).is_some());
    assert_eq!(net.epoch_of(c), None);
}

#[test]
fn password_approves_and_a_wrong_password_is_denied() {
    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    cfg.password = Some(Zeroizing::new("correct horse".into()));
    net.admin(cfg, admin_key.clone());
    let mut good = member_cfg("dave", &admin_key);
    good.password = Some(Zeroizing::new("correct horse".into()));
    let d = net.member(good, id(0));
    assert_eq!(net.epoch_of(d), Some((2, 2)));
    let mut bad = member_cfg("eve", &admin_key);
    bad.password = Some(Zeroizing::new("Correct horse".into()));
    let e = net.member(bad, id(1));
    assert!(net.nodes[e]
        .events
        .iter()
        .any(|x| matches!(x, Event::Denied { reason } if reason.contains("password"))));
    assert_eq!(net.epoch_of(e), None);
    assert_eq!(
        net.epoch_of(0),
        Some((2, 2)),
        "no epoch change for the denied one"
    );
}

#[test]
fn deny_by_hand_reaches_only_the_requester() {
    let mut net = Net::new();
    let admin_key = id(4);
    net.admin(admin_cfg(), admin_key.clone());
    let m = net.member(member_cfg("mallory", &admin_key), id(3));
    let pid = net.pending_id(0).unwrap();
    net.command(0, Command::Deny(pid, "not today, mallory".into()));
    assert!(net.nodes[m]
        .events
        .iter()
        .any(|x| matches!(x, Event::Denied { reason } if reason == "denied by the admin")));
    // The admin's own words never cross the relay (notices are not sealed).
    assert!(!net
        .log
        .iter()
        .any(|(_, f)| matches!(f, RelayFrame::Deliver { payload, .. }
        if payload.windows(8).any(|w| w == b"not toda"))));
    net.command(0, Command::Approve(pid));
    assert!(
        net.nodes[0]
            .events
            .iter()
            .any(|x| matches!(x, Event::Error { .. })),
        "a denied request is gone"
    );
}

#[test]
fn kicked_member_cannot_read_the_next_epoch() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    net.command(bob, Command::Send("before".into()));
    assert_eq!(net.texts(carol), vec!["before"]);
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "bye".into()),
    );
    assert!(net.nodes[carol]
        .events
        .iter()
        .any(|e| matches!(e, Event::Kicked { .. })));
    // Told apart from leaving: the signed roster says the admin removed her.
    assert!(net.nodes[alice]
        .events
        .iter()
        .any(|e| matches!(e, Event::MemberRemoved(m) if m.name == "carol")));
    assert!(!net.nodes[alice]
        .events
        .iter()
        .any(|e| matches!(e, Event::MemberLeft(m) if m.name == "carol")));
    net.command(bob, Command::Send("after".into()));
    assert_eq!(net.texts(alice), vec!["before", "after"]);
    assert_eq!(
        net.texts(carol),
        vec!["before"],
        "the kicked member reads nothing after"
    );
    net.command(carol, Command::Send("still here?".into()));
    assert!(
        net.nodes[carol]
            .events
            .iter()
            .any(|e| matches!(e, Event::Error { .. })),
        "carol has no key to send with"
    );
    assert_eq!(net.texts(alice), vec!["before", "after"]);
}

#[test]
fn a_newcomer_cannot_read_what_was_said_before() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    net.command(ids[0], Command::Send("secret plan".into()));
    let old: Vec<Flight> = net.log.iter().filter(|(to, _)| *to == 0).cloned().collect();
    let admin_key = id(4);
    let late = net.member(member_cfg("late", &admin_key), id(1));
    let pid = net.pending_id(0).unwrap();
    net.command(0, Command::Approve(pid));
    // The relay replays everything it saw before to the newcomer.
    for (_, f) in old {
        net.queue.push_back((late, f));
    }
    net.run();
    assert!(net.texts(late).is_empty());
    assert!(!net.warnings(late).is_empty(), "the replay is reported");
}

#[test]
fn member_leave_and_disconnect_start_new_epochs() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let before = net.epoch_of(0).unwrap().0;
    net.command(ids[0], Command::Leave);
    assert_eq!(net.epoch_of(0).unwrap(), (before + 1, 2));
    net.disconnect(ids[1]);
    assert_eq!(net.epoch_of(0).unwrap(), (before + 2, 1));
}

#[test]
fn rekey_and_periodic_rekey_change_the_epoch() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    let e = net.epoch_of(ids[0]).unwrap().0;
    net.command(0, Command::Rekey);
    assert_eq!(net.epoch_of(ids[0]).unwrap().0, e + 1);
    net.command(ids[0], Command::Send("still readable".into()));
    assert_eq!(net.texts(0), vec!["still readable"]);

    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    cfg.rekey_after_ms = 60_000;
    cfg.rekey_after_messages = 3;
    net.admin(cfg, admin_key);
    assert_eq!(net.epoch_of(0).unwrap().0, 1);
    net.tick(61_000);
    assert_eq!(net.epoch_of(0).unwrap().0, 2);
    for i in 0..3 {
        net.command(0, Command::Send(format!("m{i}")));
    }
    assert_eq!(net.epoch_of(0).unwrap().0, 3);
}

#[test]
fn typing_notices_arrive_as_typing_not_messages() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    net.command(ids[0], Command::Typing(true));
    assert!(net.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::Typing { on: true, from } if from.name == "alice")));
    assert!(net.texts(0).is_empty());
}

#[test]
fn invisible_characters_never_reach_names_and_emoji_stay_whole() {
    use common::engine::{clean_name, printable};
    for spoof in [
        "ad\u{2028}min",
        "ad\u{2029}min",
        "ad\u{E0041}\u{E0042}min",
        "ad\u{3164}min",
        "ad\u{115F}min",
        "ad\u{034F}min",
        "ad\u{202E}min",
        "ad\u{1D173}min",
    ] {
        assert_eq!(clean_name(spoof), "admin", "{spoof:?}");
        assert!(!printable(spoof).contains("admin"), "{spoof:?} shows a gap");
    }
    assert_eq!(clean_name("\u{3164}\u{FFA0}"), "(no name)");
    // A red heart with its emoji presentation selector is left alone.
    assert_eq!(printable("I \u{2764}\u{FE0F} it"), "I \u{2764}\u{FE0F} it");
}

/// Knocks in `actions`.
fn knocks(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| match a {
            Action::Send(ClientFrame::Publish { payload, .. }) => matches!(
                decode_payload::<Envelope>(payload, DEFAULT_MAX_FRAME),
                Ok(Envelope::Knock { .. })
            ),
            _ => false,
        })
        .count()
}

#[test]
fn a_burst_of_joins_makes_one_knock_not_one_each() {
    // The first connection of a room on a relay hears of the room's peers on
    // other relays as a burst of PeerJoined right after its welcome.
    let admin = id(4);
    let mut m = Member::new(member_cfg("alice", &admin), id(0));
    let t0 = 1_700_000_000_000u64;
    m.on_connected(t0);
    let welcome = RelayFrame::Welcome(Welcome {
        version: 1,
        conn_id: 7,
        peers: vec![],
        max_frame: DEFAULT_MAX_FRAME as u32,
    });
    assert_eq!(knocks(&m.handle_frame(t0, welcome)), 1);
    let mut burst = 0;
    for peer in 0..100 {
        burst += knocks(&m.handle_frame(t0 + 10, RelayFrame::PeerJoined(1000 + peer)));
    }
    assert_eq!(burst, 0, "the knock just sent covers the burst");
    // One more knock after the gap, for peers that joined meanwhile (the
    // admin may be one of them), then only the periodic one.
    assert_eq!(knocks(&m.handle_tick(t0 + 100)), 0);
    assert_eq!(knocks(&m.handle_tick(t0 + 300)), 1);
    assert_eq!(knocks(&m.handle_tick(t0 + 1_300)), 0);
    // A join after the gap knocks at once.
    assert_eq!(
        knocks(&m.handle_frame(t0 + 1_400, RelayFrame::PeerJoined(5000))),
        1
    );
}

#[test]
fn a_mention_names_a_key_so_a_look_alike_or_a_new_name_cannot_take_it() {
    use common::engine::mentions::token;
    // bob, and someone who joined as "bоb" with a Cyrillic о.
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "b\u{43e}b")]);
    let (alice, bob, lookalike) = (ids[0], ids[1], ids[2]);
    let bob_fp = key(1).public().fingerprint();
    net.command(alice, Command::Send(format!("ship it {}?", token(&bob_fp))));
    let line = |n: &mut Net, i: usize| {
        n.nodes[i]
            .events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Message {
                    text, mentions_me, ..
                } => Some((text.clone(), *mentions_me)),
                _ => None,
            })
            .unwrap()
    };
    // Shown by the name the roster gives that key, to everyone; only bob
    // is mentioned.
    assert_eq!(line(&mut net, bob), ("ship it @bob?".to_string(), true));
    let (text, mentioned) = line(&mut net, lookalike);
    assert_eq!(text, "ship it @bob?");
    assert!(!mentioned, "the look-alike is not mentioned");
    assert!(!line(&mut net, 0).1, "nor the admin");
    // Our own line shows by name too.
    assert!(net.nodes[alice]
        .events
        .iter()
        .any(|e| matches!(e, Event::Sent { text, .. } if text == "ship it @bob?")));
    // A key not in the room shows by its short form, and mentions nobody.
    let stranger = key(3).public().fingerprint();
    net.command(alice, Command::Send(format!("ask {}", token(&stranger))));
    assert_eq!(
        line(&mut net, bob),
        (format!("ask @{}", stranger.short()), false)
    );
}
