//! The sans-IO engine, driven deterministically through an in-memory relay:
//! joins by every policy, messages, epochs, kicks, and a hostile relay that
//! tampers with, replays, injects and forges frames.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;

use bytes::Bytes;
use common::engine::admin::Admin;
use common::engine::member::Member;
use common::engine::{Action, Command, Engine, Event, FileEvent};
use common::test_keys::key;
use common::wire::{
    decode_payload, encode_payload, ClientFrame, Envelope, RelayFrame, Welcome, DEFAULT_MAX_FRAME,
};
use common::Fingerprint;
use support::*;
use zeroize::Zeroizing;

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
    assert!(net.nodes[alice]
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

// ---- hostile relay -------------------------------------------------------

#[test]
fn replayed_and_duplicated_messages_are_dropped_with_a_warning() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if is_message(&f.1) {
            vec![f.clone(), f.clone()]
        } else {
            vec![f.clone()]
        }
    }));
    net.command(ids[0], Command::Send("once".into()));
    assert_eq!(net.texts(0), vec!["once"]);
    assert!(net
        .warnings(0)
        .iter()
        .any(|w| w.contains("replayed or duplicated")));
    // A later replay of the logged frame.
    net.tamper = None;
    let old = net
        .log
        .iter()
        .rev()
        .find(|(to, f)| *to == 0 && is_message(f))
        .cloned()
        .unwrap();
    net.queue.push_back(old);
    net.run();
    assert_eq!(net.texts(0), vec!["once"]);
}

#[test]
fn every_bit_flip_of_a_message_is_detected() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    // Hold alice's message back: the admin has not seen it, so sequence
    // numbers cannot be what rejects the copies; only signature and MAC can.
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if is_message(&f.1) {
            vec![]
        } else {
            vec![f.clone()]
        }
    }));
    net.command(ids[0], Command::Send("integrity".into()));
    net.tamper = None;
    let (_, frame) = net
        .log
        .iter()
        .rev()
        .find(|(to, f)| *to == 0 && is_message(f))
        .cloned()
        .unwrap_or_else(|| panic!("the held message is not in the log"));
    let RelayFrame::Deliver { from, payload } = frame.clone() else {
        unreachable!()
    };
    let mut shown = 0;
    let mut warned = 0;
    // Every 7th bit keeps the test fast and still covers header, sealed parts and signature.
    for bit in (0..payload.len() * 8).step_by(7) {
        let mut p = payload.to_vec();
        p[bit / 8] ^= 1 << (bit % 8);
        let now = net.now;
        let actions = net.nodes[0].engine.handle_frame(
            now,
            RelayFrame::Deliver {
                from,
                payload: Bytes::from(p),
            },
        );
        for a in actions {
            match a {
                Action::Event(Event::Message { .. }) => shown += 1,
                Action::Event(Event::Warning { .. }) => warned += 1,
                _ => {}
            }
        }
    }
    assert_eq!(shown, 0, "a tampered message was shown");
    assert!(warned > 0);
    // Control: the untouched original is still accepted afterwards.
    net.queue.push_back((0, frame));
    net.run();
    assert_eq!(net.texts(0), vec!["integrity"]);
}

#[test]
fn a_fake_member_cannot_inject_or_impersonate() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    // bob builds a message claiming to be alice: bob holds the epoch key but not alice's signing key.
    let alice_fp = key(0).public().fingerprint();
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if let Some(Envelope::Message(mut m)) = envelope_of(&f.1) {
            m.header.sender = alice_fp;
            return redeliver(f, &Envelope::Message(m));
        }
        vec![f.clone()]
    }));
    net.command(ids[1], Command::Send("I am alice".into()));
    assert!(net.texts(0).is_empty());
    assert!(net.texts(ids[0]).is_empty());
    assert!(
        net.warnings(0).iter().any(|w| w.contains("bad signature")),
        "{:?}",
        net.warnings(0)
    );
}

#[test]
fn a_relay_posing_as_the_admin_is_not_believed() {
    // The relay (or anyone) runs its own admin engine with its own key in the
    // room: the member, pinned to the real admin, ignores it.
    let mut net = Net::new();
    let real_admin = id(4);
    let fake_admin = id(5);
    net.admin(admin_cfg(), fake_admin);
    let m = net.member(member_cfg("alice", &real_admin), id(0));
    assert!(
        net.warnings(m)
            .iter()
            .any(|w| w.contains("not the invite's admin")),
        "{:?}",
        net.warnings(m)
    );
    assert!(!net.nodes[m]
        .events
        .iter()
        .any(|e| matches!(e, Event::JoinRequested | Event::Epoch { .. })));
    net.tick(6_000);
    assert_eq!(
        net.epoch_of(m),
        None,
        "never accepts a key not signed by the pinned admin"
    );
}

#[test]
fn swapped_admin_key_in_announcements_and_epochs_is_rejected() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    let m = ids[0];
    let before = net.epoch_of(m).unwrap();
    // The relay re-signs the next epoch message with its own key.
    let evil = id(5);
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if let Some(Envelope::Epoch(s)) = envelope_of(&f.1) {
            let sig = evil.sign(common::wire::context::EPOCH, &s.body);
            let forged = common::wire::Signed {
                body: s.body.clone(),
                signature: sig.into(),
            };
            return redeliver(f, &Envelope::Epoch(forged));
        }
        vec![f.clone()]
    }));
    net.command(0, Command::Rekey);
    assert_eq!(
        net.epoch_of(m),
        Some(before),
        "the forged epoch was not installed"
    );
    assert!(net
        .warnings(m)
        .iter()
        .any(|w| w.contains("not signed by the pinned admin")));
}

#[test]
fn a_stripped_grant_or_dropped_epoch_leaves_the_member_on_the_old_epoch() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    let m = ids[0];
    let before = net.epoch_of(m).unwrap();
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if is_epoch(&f.1) {
            vec![]
        } else {
            vec![f.clone()]
        }
    }));
    net.command(0, Command::Rekey);
    assert_eq!(net.epoch_of(m), Some(before));
    // The admin's messages in the new epoch are unreadable for it: warned, never shown wrong.
    net.command(0, Command::Send("new epoch text".into()));
    assert!(net.texts(m).is_empty());
    assert!(!net.warnings(m).is_empty());
}

#[test]
fn reordered_roster_parts_and_epochs_still_install_once() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    let m = ids[0];
    let e = net.epoch_of(m).unwrap().0;
    // Deliver roster parts before the epoch message.
    let mut stash: Vec<Flight> = Vec::new();
    net.tamper = Some(Box::new(move |f: &mut Flight| match envelope_of(&f.1) {
        Some(Envelope::Epoch(_)) => {
            stash.push(f.clone());
            vec![]
        }
        Some(Envelope::Roster(_)) => {
            let mut v = vec![f.clone()];
            v.append(&mut stash);
            v
        }
        _ => vec![f.clone()],
    }));
    net.command(0, Command::Rekey);
    assert_eq!(net.epoch_of(m).unwrap().0, e + 1);
}

#[test]
fn random_bytes_never_panic_either_role() {
    use proptest::prelude::*;
    let (net, ids) = room_with(&[(0, "alice")]);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 300,
        failure_persistence: None,
        ..Default::default()
    });
    let node_ids = [0usize, ids[0]];
    let frames: Vec<Flight> = net.log.clone();
    let net = std::cell::RefCell::new(net);
    runner
        .run(
            &(
                prop::collection::vec(any::<u8>(), 0..400),
                0usize..2,
                any::<u64>(),
            ),
            |(bytes, which, from)| {
                let idx = node_ids[which];
                let mut net = net.borrow_mut();
                let now = net.now;
                let _ = net.nodes[idx].engine.handle_frame(
                    now,
                    RelayFrame::Deliver {
                        from,
                        payload: bytes.into(),
                    },
                );
                Ok(())
            },
        )
        .unwrap();
    // Mutations of real frames reach deeper.
    runner
        .run(
            &(
                0..frames.len(),
                prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            ),
            |(i, edits)| {
                let (to, frame) = &frames[i];
                if let RelayFrame::Deliver { from, payload } = frame {
                    let mut p = payload.to_vec();
                    for (at, b) in &edits {
                        let at = at.index(p.len().max(1));
                        if at < p.len() {
                            p[at] = *b;
                        }
                    }
                    let mut net = net.borrow_mut();
                    let now = net.now;
                    let _ = net.nodes[*to].engine.handle_frame(
                        now,
                        RelayFrame::Deliver {
                            from: *from,
                            payload: p.into(),
                        },
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn event_debug_never_shows_message_text() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    net.command(ids[0], Command::Send("TOPSECRET".into()));
    let dbg = format!("{:?}", net.nodes[0].events);
    assert!(!dbg.contains("TOPSECRET"));
    let _ = Fingerprint([0; 32]);
}

#[test]
fn a_grant_stripped_from_an_epoch_breaks_its_signature_and_changes_nothing() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let m = ids[0];
    let before = net.epoch_of(m).unwrap();
    let alice_fp = key(0).public().fingerprint();
    // The relay removes alice's wrap from the next epoch message, keeping the signature.
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if let Some(Envelope::Epoch(s)) = envelope_of(&f.1) {
            let mut body: common::wire::EpochBody =
                decode_payload(&s.body, DEFAULT_MAX_FRAME).unwrap();
            body.wraps.retain(|w| w.member != alice_fp);
            let forged = common::wire::Signed {
                body: encode_payload(&body, DEFAULT_MAX_FRAME).unwrap().into(),
                signature: s.signature.clone(),
            };
            return redeliver(f, &Envelope::Epoch(forged));
        }
        vec![f.clone()]
    }));
    net.command(0, Command::Rekey);
    assert_eq!(net.epoch_of(m), Some(before), "alice keeps her epoch");
    assert!(
        !net.nodes[m]
            .events
            .iter()
            .any(|e| matches!(e, Event::Kicked { .. })),
        "not tricked into thinking she was removed"
    );
    assert!(net
        .warnings(m)
        .iter()
        .any(|w| w.contains("not signed by the pinned admin")));
}

#[test]
fn a_restarted_member_fed_old_epochs_and_messages_shows_nothing() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    net.command(ids[1], Command::Send("old news".into()));
    let old: Vec<Flight> = net
        .log
        .iter()
        .filter(|(to, _)| *to == ids[0])
        .cloned()
        .collect();
    // Alice restarts: a fresh engine with the same key, on a new connection.
    let admin_key = id(4);
    let fresh = Engine::Member(Box::new(Member::new(
        member_cfg("alice", &admin_key),
        id(0),
    )));
    net.nodes[ids[0]].engine = fresh;
    net.nodes[ids[0]].events.clear();
    // The relay swallows everything new and replays the old frames instead.
    let replay: HashSet<Bytes> = old
        .iter()
        .filter_map(|(_, f)| match f {
            RelayFrame::Deliver { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect();
    net.tamper = Some(Box::new(move |f: &mut Flight| match &f.1 {
        RelayFrame::Deliver { payload, .. } if replay.contains(payload) => vec![f.clone()],
        _ => vec![],
    }));
    net.reconnect(ids[0]);
    for f in old {
        net.queue.push_back((ids[0], f.1));
    }
    net.run();
    net.tick(6_000);
    assert!(net.texts(ids[0]).is_empty(), "a replayed message was shown");
    assert_eq!(net.epoch_of(ids[0]), None, "a replayed epoch was installed");
}

#[test]
fn a_kicked_member_stays_out_even_with_a_roster_entry_or_a_replayed_request() {
    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    cfg.roster.insert(key(1).public().fingerprint());
    net.admin(cfg, admin_key.clone());
    let bob = net.member(member_cfg("bob", &admin_key), id(1));
    assert_eq!(net.epoch_of(bob).map(|e| e.1), Some(2));
    let requests: Vec<Flight> = net
        .log
        .iter()
        .filter(|(to, f)| *to == 0 && is_join_request(f))
        .cloned()
        .collect();
    assert!(!requests.is_empty());
    net.command(
        0,
        Command::Kick(key(1).public().fingerprint(), "out".into()),
    );
    assert_eq!(net.epoch_of(0).map(|e| e.1), Some(1));
    // The relay replays bob's original request: dropped.
    for f in requests {
        net.queue.push_back(f);
    }
    net.run();
    assert!(net
        .warnings(0)
        .iter()
        .any(|w| w.contains("replayed join request")));
    assert_eq!(net.epoch_of(0).map(|e| e.1), Some(1));
    // Bob asks again for real: the roster file no longer lets him in; the admin decides.
    net.nodes[0].events.clear();
    net.disconnect(bob);
    net.reconnect(bob);
    assert!(
        net.pending_id(0).is_some(),
        "a removed member waits for a decision by hand"
    );
    assert_eq!(net.epoch_of(0), None, "no new epoch with bob in it");
}

#[test]
fn after_a_kick_nobody_sends_under_the_old_key() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    // The relay withholds the new epoch from alice but delivers the kick notice.
    let alice = ids[0];
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if f.0 == alice && is_epoch(&f.1) {
            return vec![];
        }
        vec![f.clone()]
    }));
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "out".into()),
    );
    net.command(alice, Command::Send("carol must not read this".into()));
    assert!(net.nodes[alice]
        .events
        .iter()
        .any(|e| matches!(e, Event::Error { reason } if reason.contains("new room key"))));
    assert!(!net.texts(ids[2]).iter().any(|t| t.contains("must not")));
    // Once the epoch arrives, alice sends again.
    net.tamper = None;
    net.command(0, Command::Rekey);
    net.command(alice, Command::Send("now it is safe".into()));
    assert!(net.texts(ids[1]).iter().any(|t| t == "now it is safe"));
}

#[test]
fn our_own_message_reflected_by_the_relay_is_not_shown() {
    let (mut net, ids) = room_with(&[(0, "alice")]);
    net.command(ids[0], Command::Send("mine".into()));
    let mine = net
        .log
        .iter()
        .rev()
        .find(|(to, f)| *to == 0 && is_message(f))
        .cloned()
        .unwrap();
    net.queue.push_back((ids[0], mine.1));
    net.run();
    assert!(net.texts(ids[0]).is_empty());
    assert!(net
        .warnings(ids[0])
        .iter()
        .any(|w| w.contains("own message")));
}

#[test]
fn when_the_admin_reconnects_members_rejoin() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (before, _) = net.epoch_of(ids[0]).unwrap();
    net.disconnect(0);
    net.reconnect(0);
    // The members knock (at the next tick: knocks come at most every
    // 250 ms), and are seated again in a new epoch.
    net.tick(1_000);
    for m in &ids {
        let (epoch, members) = net.epoch_of(*m).unwrap();
        assert!(epoch > before, "member {m} is in a new epoch");
        assert_eq!(members, 3, "member {m} is back in the room");
    }
    net.command(ids[0], Command::Send("after the admin came back".into()));
    assert!(net
        .texts(ids[1])
        .iter()
        .any(|t| t == "after the admin came back"));
}

#[test]
fn an_admin_back_before_its_old_connection_is_gone_is_not_read_as_a_removal() {
    // Across relays: the admin's relay crashed, the admin is back through
    // another relay, and the members hear that its old connection left
    // only when presence expires, after the admin's new epoch.
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (before, _) = net.epoch_of(ids[0]).unwrap();
    let old = net.nodes[0].conn;
    net.nodes[0].online = false;
    net.reconnect(0);
    for n in 0..net.nodes.len() {
        if n != 0 {
            net.queue.push_back((n, RelayFrame::PeerLeft(old)));
        }
    }
    net.run();
    net.tick(1_000);
    for m in &ids {
        assert!(
            !net.nodes[*m]
                .events
                .iter()
                .any(|e| matches!(e, Event::Kicked { .. })),
            "member {m} was told it was removed"
        );
        let (epoch, members) = net.epoch_of(*m).unwrap();
        assert!(epoch > before, "member {m} is in a new epoch");
        assert_eq!(members, 3, "member {m} is back in a room of three");
    }
    net.command(ids[0], Command::Send("the admin came back first".into()));
    assert!(net
        .texts(ids[1])
        .iter()
        .any(|t| t == "the admin came back first"));
}

#[test]
fn duplicate_names_are_made_unique_by_the_admin() {
    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    cfg.roster.insert(key(0).public().fingerprint());
    cfg.roster.insert(key(1).public().fingerprint());
    net.admin(cfg, admin_key.clone());
    net.member(member_cfg("boss", &admin_key), id(0));
    let b = net.member(member_cfg("Boss\u{202e}", &admin_key), id(1));
    let names: Vec<String> = net.nodes[b]
        .engine
        .members()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names.len(), 3);
    let unique: std::collections::HashSet<String> =
        names.iter().map(|n| n.to_lowercase()).collect();
    assert_eq!(unique.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| !n.contains('\u{202e}')), "{names:?}");
}

#[test]
fn one_noisy_connection_cannot_use_up_the_admins_join_budget() {
    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    cfg.roster.insert(key(1).public().fingerprint());
    net.admin(cfg, admin_key.clone());
    let noisy = net.member(member_cfg("noisy", &admin_key), id(3));
    // The relay (or the noisy member) replays junk join requests from that
    // connection, far over its share, within one second.
    let junk: Vec<Flight> = net
        .log
        .iter()
        .filter(|(to, f)| *to == 0 && is_join_request(f))
        .cloned()
        .collect();
    for _ in 0..50 {
        for f in &junk {
            net.queue.push_back(f.clone());
        }
    }
    net.run();
    // An honest member on another connection still gets in, in the same second.
    let bob = net.member(member_cfg("bob", &admin_key), id(1));
    assert!(
        net.epoch_of(bob).is_some(),
        "bob was starved by another connection's flood"
    );
    let _ = noisy;
}

#[test]
fn an_epoch_too_large_for_the_relays_frames_is_not_installed() {
    let mut net = Net::new();
    // 2,176-byte frames hold an epoch message with three wraps, not four.
    net.max_frame = 2176;
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    for k in 0..3 {
        cfg.roster.insert(key(k).public().fingerprint());
    }
    net.admin(cfg, admin_key.clone());
    let a = net.member(member_cfg("alice", &admin_key), id(0));
    let b = net.member(member_cfg("bob", &admin_key), id(1));
    assert_eq!(
        net.epoch_of(b),
        Some((3, 3)),
        "small rooms work with small frames"
    );
    net.command(a, Command::Send("still fine".into()));
    assert_eq!(net.texts(b), vec!["still fine"]);
    let c = net.member(member_cfg("carol", &admin_key), id(2));
    // The admin says so and stays where it was, rather than install an
    // epoch nobody received.
    assert!(net.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::Error { reason } if reason.contains("does not fit"))));
    assert_eq!(net.epoch_of(0), Some((3, 3)));
    assert_eq!(net.epoch_of(c), None);
    net.command(0, Command::Send("the room still works".into()));
    assert!(net.texts(a).iter().any(|t| t == "the room still works"));
    // Carol was not seated: the next epoch still fits.
    net.command(0, Command::Rekey);
    assert_eq!(net.epoch_of(0), Some((4, 3)));
}

fn is_private(f: &RelayFrame) -> bool {
    matches!(envelope_of(f), Some(Envelope::Private(_)))
}

fn privates(net: &Net, idx: usize) -> Vec<(String, String)> {
    net.nodes[idx]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Private { from, text, .. } => Some((from.name.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_private_message_reaches_its_recipient_only() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    for i in [0, alice, bob, carol] {
        net.take(i);
    }
    let secret = "the vault code is 4711";
    net.command(
        alice,
        Command::Private(key(1).public().fingerprint(), secret.into()),
    );
    assert_eq!(
        privates(&net, bob),
        vec![("alice".to_string(), secret.to_string())]
    );
    let sent: Vec<_> = net.nodes[alice]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PrivateSent { to, text, .. } => Some((to.name.clone(), text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![("bob".to_string(), secret.to_string())]);
    // Everyone else received the sealed frame and shows nothing, not even a
    // warning: it is simply not theirs.
    for i in [0, carol] {
        assert!(privates(&net, i).is_empty());
        assert!(net.texts(i).is_empty());
        assert!(net.warnings(i).is_empty(), "{:?}", net.warnings(i));
        assert!(!format!("{:?}", net.nodes[i].events).contains("vault"));
    }
    // Nothing the relay carried holds the text.
    assert!(net.log.iter().any(|(_, f)| is_private(f)));
    for (_, f) in &net.log {
        if let RelayFrame::Deliver { payload, .. } = f {
            assert!(!contains(payload, secret.as_bytes()));
            assert!(!contains(payload, b"vault"));
        }
    }
    // The admin and members can write privately to each other both ways.
    net.command(
        0,
        Command::Private(key(2).public().fingerprint(), "hi carol".into()),
    );
    net.command(
        carol,
        Command::Private(id(4).public().fingerprint(), "hi boss".into()),
    );
    assert_eq!(
        privates(&net, carol),
        vec![("boss".to_string(), "hi carol".to_string())]
    );
    assert_eq!(
        privates(&net, 0),
        vec![("carol".to_string(), "hi boss".to_string())]
    );
    assert!(privates(&net, bob).len() == 1 && privates(&net, alice).is_empty());
}

#[test]
fn forged_redirected_replayed_or_flipped_private_messages_are_rejected() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let alice_fp = key(0).public().fingerprint();
    let bob_fp = key(1).public().fingerprint();
    let carol_fp = key(2).public().fingerprint();

    // carol writes to bob but claims to be alice: she cannot sign as alice.
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if let Some(Envelope::Private(mut m)) = envelope_of(&f.1) {
            m.header.sender = alice_fp;
            return redeliver(f, &Envelope::Private(m));
        }
        vec![f.clone()]
    }));
    net.command(carol, Command::Private(bob_fp, "I am alice".into()));
    assert!(privates(&net, bob).is_empty());
    assert!(
        net.warnings(bob)
            .iter()
            .any(|w| w.contains("bad signature")),
        "{:?}",
        net.warnings(bob)
    );

    // The relay redirects alice's message for bob to carol: the signed
    // header names bob, so carol refuses it.
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if let Some(Envelope::Private(mut m)) = envelope_of(&f.1) {
            m.header.recipient = carol_fp;
            return redeliver(f, &Envelope::Private(m));
        }
        vec![f.clone()]
    }));
    net.command(alice, Command::Private(bob_fp, "for bob only".into()));
    assert!(privates(&net, carol).is_empty() && privates(&net, bob).is_empty());
    assert!(net
        .warnings(carol)
        .iter()
        .any(|w| w.contains("bad signature")));

    // A genuine message, then the relay replays it.
    net.tamper = None;
    net.command(alice, Command::Private(bob_fp, "once".into()));
    assert_eq!(
        privates(&net, bob),
        vec![("alice".to_string(), "once".to_string())]
    );
    let old = net
        .log
        .iter()
        .rev()
        .find(|(to, f)| *to == bob && is_private(f))
        .cloned()
        .unwrap();
    net.queue.push_back(old.clone());
    net.run();
    assert_eq!(privates(&net, bob).len(), 1);
    assert!(net
        .warnings(bob)
        .iter()
        .any(|w| w.contains("replayed or duplicated private message")));

    // Bit flips of a message bob has not seen: signature or MAC catch each.
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if is_private(&f.1) {
            vec![]
        } else {
            vec![f.clone()]
        }
    }));
    net.command(alice, Command::Private(bob_fp, "integrity".into()));
    net.tamper = None;
    let (_, held) = net
        .log
        .iter()
        .rev()
        .find(|(to, f)| *to == bob && is_private(f))
        .cloned()
        .unwrap();
    let RelayFrame::Deliver { from, payload } = held.clone() else {
        unreachable!()
    };
    let mut shown = 0;
    for bit in (0..payload.len() * 8).step_by(11) {
        let mut p = payload.to_vec();
        p[bit / 8] ^= 1 << (bit % 8);
        let now = net.now;
        for a in net.nodes[bob].engine.handle_frame(
            now,
            RelayFrame::Deliver {
                from,
                payload: Bytes::from(p),
            },
        ) {
            shown += matches!(a, Action::Event(Event::Private { .. })) as usize;
        }
    }
    assert_eq!(shown, 0, "a tampered private message was shown");
    net.queue.push_back((bob, held));
    net.run();
    assert_eq!(privates(&net, bob).last().unwrap().1, "integrity");
}

#[test]
fn no_private_message_to_someone_outside_the_room_or_to_oneself() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    let bob_fp = key(1).public().fingerprint();
    net.command(0, Command::Kick(bob_fp, "bye".into()));
    net.take(alice);
    net.command(alice, Command::Private(bob_fp, "are you there?".into()));
    let ev = net.take(alice);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Error { reason } if reason.contains("not in the room"))),
        "{ev:?}"
    );
    assert!(privates(&net, bob).is_empty());
    net.command(
        alice,
        Command::Private(key(0).public().fingerprint(), "me".into()),
    );
    assert!(net
        .take(alice)
        .iter()
        .any(|e| matches!(e, Event::Error { reason } if reason.contains("yourself"))));
}

// ---- files ----

use common::engine::files::CHUNK_SIZE;
use common::engine::FileSpec;

fn is_chunk(f: &RelayFrame) -> bool {
    matches!(envelope_of(f), Some(Envelope::FileChunk(_)))
}

#[test]
fn files_of_every_size_around_the_chunk_arrive_whole() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let c = CHUNK_SIZE as usize;
    for (n, size) in [0, 1, c - 1, c, c + 1, 3 * c + 5].into_iter().enumerate() {
        let content = pattern(size, n as u8);
        let t = 10 + n as u8;
        send_file(&mut net, ids[0], t, &content);
        for who in [0, ids[1]] {
            let (got, end) = received(&net, who, t);
            assert_eq!(end, Some(true), "size {size} completes at node {who}");
            assert!(got == content, "size {size}: the same bytes at node {who}");
        }
        assert!(net.nodes[ids[0]].files.iter().any(|e| matches!(e,
            FileEvent::Offered { transfer, size: s, .. } if *transfer == [t; 16] && *s == size as u64)));
        assert!(
            received(&net, ids[0], t).1.is_none(),
            "no echo to the sender"
        );
    }
    assert!(
        net.warnings(ids[1]).is_empty(),
        "{:?}",
        net.warnings(ids[1])
    );
    // The relay carried no chunk in the clear.
    let marker = pattern(4 * c, 99);
    send_file(&mut net, ids[0], 50, &marker);
    for (_, f) in &net.log {
        if let RelayFrame::Deliver { payload, .. } = f {
            assert!(!contains(payload, &marker[1000..1064]));
        }
    }
}

/// Sends a 4-chunk file from alice (node ids[0]) through `tamper` and
/// returns what bob (ids[1]) ended with.
fn through(tamper: Tamper) -> (Net, Vec<usize>, Vec<u8>) {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let content = pattern(4 * CHUNK_SIZE as usize - 7, 3);
    net.tamper = Some(tamper);
    send_file(&mut net, ids[0], 7, &content);
    net.tamper = None;
    (net, ids, content)
}

fn chunk_index(f: &RelayFrame) -> Option<u32> {
    match envelope_of(f) {
        Some(Envelope::FileChunk(c)) => Some(c.header.index),
        _ => None,
    }
}

#[test]
fn a_flipped_dropped_or_foreign_chunk_leaves_no_file() {
    // A flipped bit in chunk 1.
    let (net, ids, _) = through(Box::new(|f: &mut Flight| {
        if let Some(Envelope::FileChunk(mut c)) = envelope_of(&f.1) {
            if c.header.index == 1 {
                let mut ct = c.sealed.ciphertext.to_vec();
                ct[100] ^= 0x20;
                c.sealed.ciphertext = ct.into();
                return redeliver(f, &Envelope::FileChunk(c));
            }
        }
        vec![f.clone()]
    }));
    let (got, end) = received(&net, ids[1], 7);
    assert_eq!(end, Some(false));
    assert_eq!(
        got.len(),
        CHUNK_SIZE as usize,
        "only chunk 0 was handed over"
    );
    assert!(net
        .warnings(ids[1])
        .iter()
        .any(|w| w.contains("failed authentication")));

    // Chunk 1 dropped: chunk 2 shows the gap.
    let (net, ids, _) = through(Box::new(|f: &mut Flight| {
        if chunk_index(&f.1) == Some(1) {
            vec![]
        } else {
            vec![f.clone()]
        }
    }));
    assert_eq!(received(&net, ids[1], 7).1, Some(false));
    assert!(net
        .warnings(ids[1])
        .iter()
        .any(|w| w.contains("missing or out of order")));

    // A chunk sealed by someone outside the room (no epoch key).
    let (net, ids, _) = through(Box::new(|f: &mut Flight| {
        if let Some(Envelope::FileChunk(mut c)) = envelope_of(&f.1) {
            if c.header.index == 2 {
                let outsider = common::crypto::seal::SessionKey::generate()
                    .epoch_keys(&c.header.room, c.header.epoch);
                c.sealed = common::crypto::seal::seal(
                    &outsider,
                    &common::wire::aad(common::wire::context::AAD_CHUNK, &c.header),
                    &vec![0u8; CHUNK_SIZE as usize],
                );
                return redeliver(f, &Envelope::FileChunk(c));
            }
        }
        vec![f.clone()]
    }));
    assert_eq!(received(&net, ids[1], 7).1, Some(false));
}

#[test]
fn duplicated_chunks_are_dropped_and_the_right_file_arrives() {
    let (net, ids, content) = through(Box::new(|f: &mut Flight| {
        if is_chunk(&f.1) {
            vec![f.clone(), f.clone()]
        } else {
            vec![f.clone()]
        }
    }));
    let (got, end) = received(&net, ids[1], 7);
    assert_eq!(end, Some(true));
    assert!(got == content);
    assert!(net
        .warnings(ids[1])
        .iter()
        .any(|w| w.contains("duplicated (chunk")));
}

#[test]
fn reordered_chunks_give_no_file_never_a_wrong_one() {
    let mut held: Option<Flight> = None;
    // Only bob's copies (node 2; the admin is 0, alice 1) are reordered.
    let (net, ids, _) = through(Box::new(move |f: &mut Flight| match chunk_index(&f.1) {
        _ if f.0 != 2 => vec![f.clone()],
        Some(1) => {
            held = Some(f.clone());
            vec![]
        }
        Some(2) => {
            let mut v = vec![f.clone()];
            v.extend(held.take());
            v
        }
        _ => vec![f.clone()],
    }));
    assert_eq!(ids[1], 2);
    assert_eq!(received(&net, ids[1], 7).1, Some(false));
    assert_eq!(
        received(&net, 0, 7).1,
        Some(true),
        "the admin got it in order"
    );
}

#[test]
fn content_that_does_not_match_the_signed_hash_is_discarded() {
    // Any member holds the epoch key and could seal a chunk under the
    // sender's name; what catches that is the SHA-256 in the signed offer,
    // checked when the last chunk arrives. Here the offer's hash is wrong.
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let content = pattern(2 * CHUNK_SIZE as usize + 1, 4);
    let mut s = spec(12, "report.pdf", &content);
    s.sha256[0] ^= 1;
    send_offered(&mut net, ids[0], s, &content);
    assert_eq!(received(&net, ids[1], 12).1, Some(false));
    assert!(net
        .warnings(ids[1])
        .iter()
        .any(|w| w.contains("does not match the SHA-256")));
}

#[test]
fn a_member_removed_mid_transfer_gets_nothing_sealed_after_the_removal() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let content = pattern(6 * CHUNK_SIZE as usize, 5);
    net.command(alice, Command::OfferFile(spec(8, "plan.pdf", &content)));
    let chunks: Vec<&[u8]> = content.chunks(CHUNK_SIZE as usize).collect();
    for (i, c) in chunks.iter().enumerate().take(2) {
        net.command(
            alice,
            Command::FileChunk {
                transfer: [8; 16],
                index: i as u32,
                data: Bytes::copy_from_slice(c),
            },
        );
    }
    let (bob_epoch, _) = net.epoch_of(bob).unwrap();
    net.command(
        0,
        Command::Kick(key(1).public().fingerprint(), "bye".into()),
    );
    let log_mark = net.log.len();
    for (i, c) in chunks.iter().enumerate().skip(2) {
        net.command(
            alice,
            Command::FileChunk {
                transfer: [8; 16],
                index: i as u32,
                data: Bytes::copy_from_slice(c),
            },
        );
    }
    // Everything sealed after the kick is under an epoch bob never held.
    let after: Vec<u64> = net.log[log_mark..]
        .iter()
        .filter_map(|(_, f)| match envelope_of(f) {
            Some(Envelope::FileChunk(c)) => Some(c.header.epoch),
            _ => None,
        })
        .collect();
    assert_eq!(
        after.len(),
        4 * 3,
        "four chunks to each of the admin, carol and bob (still connected)"
    );
    assert!(after.iter().all(|e| *e > bob_epoch));
    let (got, end) = received(&net, bob, 8);
    assert_eq!(
        got.len(),
        2 * CHUNK_SIZE as usize,
        "bob has only what came before"
    );
    assert_ne!(end, Some(true));
    let (got, end) = received(&net, carol, 8);
    assert_eq!(end, Some(true));
    assert!(got == content);
}

#[test]
fn the_file_size_limit_holds_on_both_sides() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let content = pattern(5000, 1);
    net.nodes[ids[0]].engine.set_max_file_size(4000);
    net.command(ids[0], Command::OfferFile(spec(9, "big.bin", &content)));
    assert!(net
        .take(ids[0])
        .iter()
        .any(|e| matches!(e, Event::Error { reason } if reason.contains("limit"))));
    assert!(received(&net, ids[1], 9).0.is_empty());

    net.nodes[ids[0]].engine.set_max_file_size(1 << 20);
    net.nodes[ids[1]].engine.set_max_file_size(4000);
    send_file(&mut net, ids[0], 9, &content);
    assert!(net
        .warnings(ids[1])
        .iter()
        .any(|w| w.contains("over the limit")));
    assert!(!net.nodes[ids[1]]
        .files
        .iter()
        .any(|e| matches!(e, FileEvent::Incoming { .. })));
    assert_eq!(received(&net, ids[1], 9), (Vec::new(), None));
    assert_eq!(
        received(&net, 0, 9).1,
        Some(true),
        "the admin, with the default limit, takes it"
    );
}

#[test]
fn a_cancelled_transfer_ends_at_every_receiver() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let content = pattern(3 * CHUNK_SIZE as usize, 2);
    net.command(ids[0], Command::OfferFile(spec(11, "x", &content)));
    net.command(
        ids[0],
        Command::FileChunk {
            transfer: [11; 16],
            index: 0,
            data: Bytes::copy_from_slice(&content[..CHUNK_SIZE as usize]),
        },
    );
    net.command(ids[0], Command::CancelFile([11; 16]));
    assert_eq!(received(&net, ids[1], 11).1, Some(false));
    assert!(!net.nodes[ids[0]].engine.sending(&[11; 16]));
    // Nothing more can be sent for it.
    net.command(
        ids[0],
        Command::FileChunk {
            transfer: [11; 16],
            index: 1,
            data: Bytes::copy_from_slice(&content[..CHUNK_SIZE as usize]),
        },
    );
    assert!(net
        .take(ids[0])
        .iter()
        .any(|e| matches!(e, Event::Error { .. })));
}

#[test]
fn a_forged_chunk_changes_nothing_and_the_real_file_still_arrives() {
    // Before each real chunk to bob, the relay injects a forgery with the
    // same header: it fails its MAC and must not end the transfer.
    let (net, ids, content) = through(Box::new(|f: &mut Flight| {
        if let Some(Envelope::FileChunk(c)) = envelope_of(&f.1) {
            let mut forged = c.clone();
            let mut ct = forged.sealed.ciphertext.to_vec();
            ct[0] ^= 0xff;
            forged.sealed.ciphertext = ct.into();
            let mut v = redeliver(f, &Envelope::FileChunk(forged));
            v.push(f.clone());
            return v;
        }
        vec![f.clone()]
    }));
    let (got, end) = received(&net, ids[1], 7);
    assert_eq!(end, Some(true));
    assert!(got == content);
    assert!(net
        .warnings(ids[1])
        .iter()
        .any(|w| w.contains("failed authentication")));
}

#[test]
fn a_finished_transfers_id_cannot_be_taken_over() {
    let (mut net, ids) = room_with(&[(0, "alice"), (2, "carol")]);
    let first = pattern(1000, 1);
    send_file(&mut net, ids[0], 21, &first);
    assert_eq!(received(&net, ids[1], 21).1, Some(true));
    // dave joins later (he never saw the id) and offers his own content
    // under alice's finished id.
    let admin_key = id(4);
    let dave = net.member(member_cfg("dave", &admin_key), id(3));
    let pid = net.pending_id(0).unwrap();
    net.command(0, Command::Approve(pid));
    net.take(ids[1]);
    send_file(&mut net, dave, 21, &pattern(1000, 2));
    let ids = [ids[0], dave, ids[1]];
    assert!(!net.nodes[ids[2]]
        .files
        .iter()
        .any(|e| matches!(e, FileEvent::Incoming { .. } | FileEvent::Done { .. })));
    assert!(net
        .warnings(ids[2])
        .iter()
        .any(|w| w.contains("already in use")));
    // Empty files hold no sending slot: nine in a row all go out.
    for t in 30..39 {
        net.command(ids[0], Command::OfferFile(spec(t, "empty", &[])));
        assert!(!net.nodes[ids[0]].engine.sending(&[t; 16]));
    }
    assert!(!net
        .take(ids[0])
        .iter()
        .any(|e| matches!(e, Event::Error { .. })));
}

#[test]
fn one_sender_cannot_hold_every_incoming_slot() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let big = pattern(3 * CHUNK_SIZE as usize, 1);
    for t in 0..6u8 {
        net.command(ids[0], Command::OfferFile(spec(40 + t, "slow", &big)));
    }
    let offers = net.nodes[ids[1]]
        .files
        .iter()
        .filter(|e| matches!(e, FileEvent::Incoming { .. }))
        .count();
    assert_eq!(offers, common::engine::files::MAX_INCOMING_PER_SENDER);
    assert!(net
        .warnings(ids[1])
        .iter()
        .any(|w| w.contains("still arriving")));
}

fn private_spec(transfer: u8, to: usize, content: &[u8]) -> FileSpec {
    FileSpec {
        to: Some(key(to).public().fingerprint()),
        ..spec(transfer, "payroll.xlsx", content)
    }
}

fn is_private_chunk(f: &RelayFrame) -> bool {
    matches!(envelope_of(f), Some(Envelope::PrivateChunk(_)))
}

fn any_file_event(net: &Net, idx: usize) -> bool {
    net.nodes[idx].files.iter().any(|e| {
        matches!(
            e,
            FileEvent::Incoming { .. }
                | FileEvent::Data { .. }
                | FileEvent::Done { .. }
                | FileEvent::Failed { .. }
        )
    })
}

#[test]
fn a_private_file_reaches_its_recipient_only() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let content = pattern(3 * CHUNK_SIZE as usize + 5, 42);
    send_offered(&mut net, alice, private_spec(60, 1, &content), &content);

    let (got, end) = received(&net, bob, 60);
    assert_eq!(end, Some(true));
    assert!(got == content, "bob has the whole file");
    assert!(net.nodes[bob].files.iter().any(|e| matches!(e,
        FileEvent::Incoming { private: true, from, .. } if from.name == "alice")));
    assert!(net.nodes[alice].files.iter().any(|e| matches!(e,
        FileEvent::Offered { to: Some(m), .. } if m.name == "bob")));
    // The admin and carol received every frame and show nothing at all:
    // no offer, no data, not even a warning.
    for i in [0, carol] {
        assert!(!any_file_event(&net, i), "node {i} saw the private file");
        assert!(net.warnings(i).is_empty(), "{:?}", net.warnings(i));
        assert!(!format!("{:?}", net.nodes[i].events).contains("payroll"));
    }
    assert!(net.warnings(bob).is_empty(), "{:?}", net.warnings(bob));
    // Chunks went as private chunks, never under the room key, and nothing
    // the relay carried holds the content or the name.
    assert_eq!(net.log.iter().filter(|(_, f)| is_chunk(f)).count(), 0);
    assert!(net.log.iter().filter(|(_, f)| is_private_chunk(f)).count() >= 4);
    for (_, f) in &net.log {
        if let RelayFrame::Deliver { payload, .. } = f {
            assert!(!contains(payload, &content[1000..1064]));
            assert!(!contains(payload, b"payroll"));
        }
    }
}

#[test]
fn a_private_file_cannot_be_forged_flipped_or_sent_the_wrong_way() {
    // A flipped byte in a private chunk: dropped with a warning, and the
    // next chunk shows the gap; no file.
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    let content = pattern(4 * CHUNK_SIZE as usize - 7, 9);
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if let Some(Envelope::PrivateChunk(mut c)) = envelope_of(&f.1) {
            if c.header.index == 1 {
                let mut ct = c.sealed.ciphertext.to_vec();
                ct[10] ^= 1;
                c.sealed.ciphertext = Bytes::from(ct);
                return redeliver(f, &Envelope::PrivateChunk(c));
            }
        }
        vec![f.clone()]
    }));
    send_offered(&mut net, alice, private_spec(61, 1, &content), &content);
    net.tamper = None;
    assert_eq!(received(&net, bob, 61).1, Some(false));
    assert!(net
        .warnings(bob)
        .iter()
        .any(|w| w.contains("authentication")));

    // Private chunks re-sent as room chunks (the wrong way), and a private
    // chunk replayed: never a wrong file.
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if let Some(Envelope::PrivateChunk(c)) = envelope_of(&f.1) {
            if c.header.index == 0 {
                let mut out = redeliver(f, &Envelope::FileChunk(c));
                out.push(f.clone());
                out.push(f.clone());
                return out;
            }
        }
        vec![f.clone()]
    }));
    send_offered(&mut net, alice, private_spec(62, 1, &content), &content);
    net.tamper = None;
    let (got, end) = received(&net, bob, 62);
    assert_eq!(end, Some(true));
    assert!(got == content, "the right file, once");
    // The first frame that changed nothing is reported (the room copy,
    // which does not open under the room key); the copies right after it
    // are counted into the next report, at most one a second.
    assert!(
        net.warnings(bob)
            .iter()
            .any(|w| w.contains("file chunk") && w.contains("dropped")),
        "{:?}",
        net.warnings(bob)
    );
}

#[test]
fn a_private_file_stops_when_its_recipient_is_removed() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob) = (ids[0], ids[1]);
    let content = pattern(6 * CHUNK_SIZE as usize, 7);
    net.command(alice, Command::OfferFile(private_spec(63, 1, &content)));
    let chunks: Vec<&[u8]> = content.chunks(CHUNK_SIZE as usize).collect();
    let chunk = |net: &mut Net, i: usize| {
        net.command(
            alice,
            Command::FileChunk {
                transfer: [63; 16],
                index: i as u32,
                data: Bytes::copy_from_slice(chunks[i]),
            },
        )
    };
    chunk(&mut net, 0);
    chunk(&mut net, 1);
    net.command(
        0,
        Command::Kick(key(1).public().fingerprint(), "bye".into()),
    );
    let mark = net.log.len();
    for i in 2..chunks.len() {
        chunk(&mut net, i);
    }
    // Nothing more was sealed for bob after the kick: the sender ended the
    // transfer instead.
    assert!(!net.log[mark..].iter().any(|(_, f)| is_private_chunk(f)));
    assert!(net.nodes[alice].files.iter().any(|e| matches!(e,
        FileEvent::Failed { transfer, reason } if *transfer == [63; 16] && reason.contains("no longer in the room"))));
    let (got, end) = received(&net, bob, 63);
    assert_eq!(got.len(), 2 * CHUNK_SIZE as usize);
    assert_ne!(end, Some(true));
}

#[test]
fn a_cancelled_private_file_ends_at_its_recipient_and_no_one_else_hears_of_it() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let content = pattern(3 * CHUNK_SIZE as usize, 1);
    net.command(alice, Command::OfferFile(private_spec(64, 1, &content)));
    net.command(
        alice,
        Command::FileChunk {
            transfer: [64; 16],
            index: 0,
            data: Bytes::copy_from_slice(&content[..CHUNK_SIZE as usize]),
        },
    );
    net.command(alice, Command::CancelFile([64; 16]));
    assert!(net.nodes[bob].files.iter().any(|e| matches!(e,
        FileEvent::Failed { transfer, reason } if *transfer == [64; 16] && reason.contains("cancelled"))));
    for i in [0, carol] {
        assert!(!any_file_event(&net, i));
        assert!(net.warnings(i).is_empty(), "{:?}", net.warnings(i));
    }
    assert!(net.nodes[alice]
        .events
        .iter()
        .all(|e| !matches!(e, Event::Error { .. })));
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

#[test]
fn a_private_message_from_an_earlier_admin_run_is_not_accepted_again() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    net.command(
        alice,
        Command::Private(key(1).public().fingerprint(), "from run one".into()),
    );
    let recorded: Vec<Flight> = net
        .log
        .iter()
        .filter(|(to, f)| *to == bob && is_private(f))
        .cloned()
        .collect();
    assert_eq!(recorded.len(), 1);
    let (epoch, _) = net.epoch_of(bob).unwrap();

    // The admin app restarts: a new run whose epochs count from 1 again.
    net.disconnect(0);
    net.nodes[0].engine = Engine::Admin(Box::new(Admin::new(admin_cfg(), id(4))));
    net.nodes[0].events.clear();
    net.reconnect(0);
    // Both members ask again; the admin approves them.
    for _ in 0..30 {
        let pending: Vec<u32> = net.nodes[0]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::PendingApproval { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        if pending.len() == 2 {
            for pid in pending {
                net.command(0, Command::Approve(pid));
            }
            break;
        }
        net.tick(1_000);
    }
    assert_eq!(
        net.epoch_of(bob).map(|e| e.0),
        Some(epoch),
        "the same epoch number"
    );
    net.take(bob);

    // The relay replays the earlier run's private message.
    for f in recorded {
        net.queue.push_back(f);
    }
    net.run();
    assert!(privates(&net, bob).is_empty(), "shown again");
    assert!(
        net.warnings(bob)
            .iter()
            .any(|w| w.contains("failed authentication")),
        "{:?}",
        net.warnings(bob)
    );
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
