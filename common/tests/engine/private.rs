//! Private messages: only the recipient reads them; forged, redirected,
//! replayed or flipped ones are rejected.

use super::*;

pub(crate) fn is_private(f: &RelayFrame) -> bool {
    matches!(envelope_of(f), Some(Envelope::Private(_)))
}

pub(crate) fn privates(net: &Net, idx: usize) -> Vec<(String, String)> {
    net.nodes[idx]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Private { from, text, .. } => Some((from.name.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
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
        net.warned(bob, |w| matches!(
            w,
            Warning::Dropped(Dropped::BadSignature { .. })
        )),
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
    assert!(net.warned(carol, |w| matches!(
        w,
        Warning::Dropped(Dropped::BadSignature { .. })
    )));

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
    assert!(net.warned(bob, |w| matches!(
        w,
        Warning::Dropped(Dropped::Replayed {
            kind: Kind::Private,
            ..
        })
    )));

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
    approve_all(&mut net, 2);
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
        net.warned(bob, |w| matches!(
            w,
            Warning::Dropped(Dropped::Unauthentic {
                kind: Kind::Private,
                ..
            })
        )),
        "{:?}",
        net.warnings(bob)
    );
}
