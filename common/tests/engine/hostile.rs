//! Under a hostile relay: replays, bit flips, fake members, a relay posing as
//! the admin, stripped grants, reordering, random bytes, old epochs.

use super::*;

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
    assert!(net.warned(0, |w| matches!(
        w,
        Warning::Dropped(Dropped::Replayed { .. })
    )));
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
        net.warned(0, |w| matches!(
            w,
            Warning::Dropped(Dropped::BadSignature { .. })
        )),
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
        net.warned(m, |w| matches!(
            w,
            Warning::Dropped(Dropped::AnnouncementNotFromAdmin)
        )),
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
            let sig = evil.sign(&mut OsRng, common::wire::context::EPOCH, &s.body);
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
    assert!(net.warned(m, |w| matches!(
        w,
        Warning::Dropped(Dropped::EpochNotFromAdmin)
    )));
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
fn command_debug_never_shows_text_or_a_password() {
    let commands = [
        Command::Send("TOPSECRET".into()),
        Command::Private(key(1).public().fingerprint(), "TOPSECRET".into()),
        Command::SetPassword(Some(Zeroizing::new("TOPSECRET".into()))),
        Command::Deny(3, "TOPSECRET".into()),
        Command::Kick(key(1).public().fingerprint(), "TOPSECRET".into()),
    ];
    let dbg = format!("{commands:?}");
    assert!(!dbg.contains("TOPSECRET"), "{dbg}");
    assert!(dbg.contains("SetPassword(..)"), "{dbg}");
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
    assert!(net.warned(m, |w| matches!(
        w,
        Warning::Dropped(Dropped::EpochNotFromAdmin)
    )));
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
    assert!(net.warned(0, |w| matches!(w, Warning::Dropped(Dropped::JoinReplayed))));
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
    assert!(net.nodes[alice].events.iter().any(|e| matches!(
        e,
        Event::Delivery { state: Delivery::Waiting(reason), .. } if reason.contains("new room key")
    )));
    assert!(
        !net.log.iter().any(|(to, f)| *to == alice && is_message(f)),
        "the line waits: nothing was published under the old key"
    );
    assert!(!net.texts(ids[2]).iter().any(|t| t.contains("must not")));
    // Once the epoch arrives, alice's line goes, under the key carol lacks.
    net.tamper = None;
    net.command(0, Command::Rekey);
    net.command(alice, Command::Send("now it is safe".into()));
    assert_eq!(
        net.texts(ids[1]),
        ["carol must not read this", "now it is safe"]
    );
    assert!(!net.texts(ids[2]).iter().any(|t| t.contains("must not")));
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
    assert!(net.warned(ids[0], |w| matches!(w, Warning::Dropped(Dropped::OwnEcho))));
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
