//! Section 5: lines the relay drops silently are reported, with their sender.

use super::*;

#[test]
fn a_dropped_line_is_reported_with_its_sender() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    net.tamper = Some(drop_messages(bob, net.nodes[alice].conn, |n| n == 2));
    for t in ["one", "two", "three"] {
        net.command(alice, Command::Send(t.into()));
    }
    assert_eq!(net.texts(bob), vec!["one", "three"]);
    assert_eq!(missed(&net, bob), vec![("alice".into(), 1, false)]);
}

#[test]
fn lines_dropped_at_the_end_of_an_epoch_are_reported_after_the_rekey() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    let (epoch, _) = net.epoch_of(bob).unwrap();
    // The relay drops alice's last two lines of this epoch to bob.
    net.tamper = Some(drop_messages(bob, net.nodes[alice].conn, |n| n >= 2));
    for t in ["kept", "dropped", "dropped too"] {
        net.command(alice, Command::Send(t.into()));
    }
    assert!(missed(&net, bob).is_empty(), "nothing to tell yet");
    net.tamper = None;
    net.command(0, Command::Rekey);
    net.command(alice, Command::Send("after the rekey".into()));
    assert_eq!(net.texts(bob), vec!["kept", "after the rekey"]);
    let told = gaps(&net, bob);
    assert_eq!(told, vec![(epoch, 2)], "two lines of epoch {epoch} missing");
}

#[test]
fn lines_dropped_at_the_very_end_are_reported_by_the_beacons_though_the_sender_writes_no_more() {
    use common::engine::BEACON_EVERY_MS;
    use std::{cell::RefCell, rc::Rc};
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    let (epoch, _) = net.epoch_of(bob).unwrap();
    let alice_conn = net.nodes[alice].conn;
    // The relay drops alice's last two lines to bob, and holds one more
    // back for a while (a line still in flight when the admin counts it).
    let n = Rc::new(RefCell::new(0));
    let held: Rc<RefCell<Vec<Flight>>> = Rc::default();
    let (c, h) = (n.clone(), held.clone());
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if f.0 == bob && from_conn(&f.1) == alice_conn && is_message(&f.1) {
            *c.borrow_mut() += 1;
            match *c.borrow() {
                2 | 3 => return vec![],
                4 => {
                    h.borrow_mut().push(f.clone());
                    return vec![];
                }
                _ => {}
            }
        }
        vec![f.clone()]
    }));
    for t in ["kept", "dropped", "dropped too"] {
        net.command(alice, Command::Send(t.into()));
    }
    // Alice says no more. Within two beacons bob is told, once.
    net.tick(BEACON_EVERY_MS);
    net.tick(BEACON_EVERY_MS);
    assert_eq!(net.texts(bob), vec!["kept"]);
    assert_eq!(missed(&net, bob), vec![("alice".into(), 2, false)]);
    for _ in 0..3 {
        net.tick(BEACON_EVERY_MS);
    }
    assert_eq!(missed(&net, bob).len(), 1, "told once, not at every beacon");
    // A line in flight across one beacon is late, not missing: shown when
    // it arrives, and no gap is reported for it.
    net.command(alice, Command::Send("late".into()));
    net.tick(BEACON_EVERY_MS);
    let late = held.borrow_mut().pop().unwrap();
    net.queue.push_back(late);
    net.run();
    net.tick(BEACON_EVERY_MS);
    net.command(alice, Command::Send("after".into()));
    assert_eq!(net.texts(bob), vec!["kept", "late", "after"]);
    let told = gaps(&net, bob);
    assert_eq!(told, vec![(epoch, 2)], "only the two dropped lines");
    // Control: a member the relay treats fairly is told of nothing.
    assert!(missed(&net, 0).is_empty());
}

#[test]
fn a_member_seated_after_its_first_epoch_was_dropped_is_told_what_it_missed() {
    use std::{cell::RefCell, rc::Rc};
    let (mut net, ids) = room_with(&[(0, "alice")]);
    let alice = ids[0];
    let bob = net.nodes.len();
    // The relay drops the first epoch message that would seat bob.
    let dropped = Rc::new(RefCell::new(0));
    let d = dropped.clone();
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if f.0 == bob && is_epoch(&f.1) && *d.borrow() == 0 {
            *d.borrow_mut() += 1;
            return vec![];
        }
        vec![f.clone()]
    }));
    let admin_key = id(4);
    assert_eq!(net.member(member_cfg("bob", &admin_key), id(1)), bob);
    let pid = net.pending_id(0).expect("bob asks");
    net.command(0, Command::Approve(pid));
    assert_eq!(*dropped.borrow(), 1);
    let (first, _) = net.epoch_of(alice).unwrap();
    assert_eq!(
        net.epoch_of(bob),
        None,
        "bob never got the epoch seating him"
    );
    for t in ["said in bob's first epoch", "and this"] {
        net.command(alice, Command::Send(t.into()));
    }
    net.command(0, Command::Rekey);
    assert_eq!(net.epoch_of(bob).map(|e| e.0), Some(first + 1));
    assert!(
        net.warnings(bob).contains(&Warning::EpochsMissed {
            from: first,
            to: first
        }),
        "{:?}",
        net.warnings(bob)
    );
    net.command(alice, Command::Send("after".into()));
    assert_eq!(net.texts(bob), vec!["after"]);
    assert_eq!(missed(&net, bob), vec![("alice".into(), 2, false)]);
    assert_eq!(gaps(&net, bob), vec![(first, 2)]);
}

#[test]
fn a_dropped_private_message_is_reported_too() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    let mut n = 0;
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if f.0 == bob && matches!(envelope_of(&f.1), Some(Envelope::Private(_))) {
            n += 1;
            if n == 1 {
                return vec![];
            }
        }
        vec![f.clone()]
    }));
    let to_bob = key(1).public().fingerprint();
    for t in ["first", "second"] {
        net.command(alice, Command::Private(to_bob, t.into()));
    }
    assert_eq!(missed(&net, bob), vec![("alice".into(), 1, true)]);
}

#[test]
fn a_replayed_beacon_does_not_keep_a_member_sending() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let alice = ids[0];
    let beacons: Vec<Flight> = net
        .log
        .iter()
        .filter(|(to, f)| *to == alice && matches!(envelope_of(f), Some(Envelope::Beacon(_))))
        .cloned()
        .collect();
    assert!(!beacons.is_empty(), "the admin sends beacons");
    // The relay cuts the admin off from alice and keeps replaying the
    // beacons it recorded.
    cut_admin_from(&mut net, vec![alice]);
    for _ in 0..30 {
        for f in &beacons {
            net.queue.push_back(f.clone());
        }
        net.tick(1_000);
    }
    assert!(
        net.warned(alice, |w| matches!(w, Warning::AdminSilent { .. })),
        "{:?}",
        net.warnings(alice)
    );
    net.command(alice, Command::Send("paused".into()));
    assert!(errors(&net, alice).iter().any(|e| e.contains("no word")));
    assert!(!net.texts(ids[1]).iter().any(|t| t == "paused"));
    // The admin heard again: alice writes again.
    net.tamper = None;
    net.tick(6_000);
    net.command(alice, Command::Send("back".into()));
    assert!(net.texts(ids[1]).iter().any(|t| t == "back"));
}

#[test]
fn bans_are_listed_lifted_and_a_new_password_approves_again() {
    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    cfg.password = Some(Zeroizing::new("correct horse".into()));
    net.admin(cfg, admin_key.clone());
    let mut carol_cfg = member_cfg("carol", &admin_key);
    carol_cfg.password = Some(Zeroizing::new("correct horse".into()));
    let carol = net.member(carol_cfg, id(2));
    let carol_fp = key(2).public().fingerprint();
    net.command(0, Command::Kick(carol_fp, "out".into()));
    net.disconnect(carol);
    net.command(0, Command::ListBans);
    let bans = net.nodes[0]
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Bans(b) => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].fingerprint, carol_fp);
    assert_eq!(bans[0].name, "carol");
    // The same password cannot be set again; a new one can.
    net.command(
        0,
        Command::SetPassword(Some(Zeroizing::new("correct horse".into()))),
    );
    assert!(errors(&net, 0).iter().any(|e| e.contains("removed member")));
    net.command(
        0,
        Command::SetPassword(Some(Zeroizing::new("battery staple".into()))),
    );
    // Dave knows the new password: approved at once.
    let mut dave_cfg = member_cfg("dave", &admin_key);
    dave_cfg.password = Some(Zeroizing::new("battery staple".into()));
    let dave = net.member(dave_cfg, id(3));
    assert!(roster(&net, dave).contains(&"dave".to_string()));
    // Carol, unbanned, is no longer let in by the password she knew.
    net.command(0, Command::Unban(carol_fp));
    net.nodes[carol].events.clear();
    net.reconnect(carol);
    assert!(net.nodes[carol]
        .events
        .iter()
        .any(|e| matches!(e, Event::Denied { .. })));
    assert_eq!(roster(&net, 0), vec!["boss", "dave"]);
    let kept = admin_state(&mut net);
    assert!(kept.bans.is_empty());
    assert_eq!(kept.compromised.len(), 1, "the old password stays known");
    // Carol's password never approves again: not set back by hand after
    // another change of password...
    let errors_before = errors(&net, 0).len();
    net.command(
        0,
        Command::SetPassword(Some(Zeroizing::new("another one".into()))),
    );
    assert_eq!(errors(&net, 0).len(), errors_before);
    net.command(
        0,
        Command::SetPassword(Some(Zeroizing::new("correct horse".into()))),
    );
    assert_eq!(errors(&net, 0).len(), errors_before + 1, "refused again");
    // ...nor by an admin restarted with it (the GUI form, --room-password).
    let mut cfg = admin_cfg();
    cfg.password = Some(Zeroizing::new("correct horse".into()));
    cfg.state = kept.clone();
    assert!(Admin::new(cfg, admin_key.clone()).password_suspended());
    let mut cfg = admin_cfg();
    cfg.password = Some(Zeroizing::new("battery staple".into()));
    cfg.state = kept.clone();
    assert!(!Admin::new(cfg, admin_key).password_suspended());
    // The check values are not printed.
    let shown = format!("{kept:?}");
    assert!(shown.contains("compromised: 1"), "{shown}");
}
