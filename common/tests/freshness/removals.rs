//! Sections 3 and 4: the removal hold, and a kicked member who rejoins.

use super::*;

#[test]
fn a_member_cut_off_from_the_admin_stops_sending_under_a_removed_members_key() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let (old_epoch, _) = net.epoch_of(alice).unwrap();
    // The relay withholds the kick notice and every later admin frame from
    // alice, and from carol, who keeps her key.
    cut_admin_from(&mut net, vec![alice, carol]);
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "out".into()),
    );
    wait(&mut net, 60_000);
    let since = net.log.len();
    net.command(alice, Command::Send("carol must not read this".into()));
    let conn = net.nodes[alice].conn;
    assert!(
        !message_epochs(&published(&net, conn, since)).contains(&old_epoch),
        "alice sent under the epoch carol holds"
    );
    assert!(!net.texts(carol).iter().any(|t| t.contains("must not")));
    assert!(!errors(&net, alice).is_empty(), "alice was not told");
    assert!(!net.warnings(alice).is_empty(), "alice was not warned");
    // When the admin is heard again, alice catches up and writes.
    net.tamper = None;
    net.command(0, Command::Rekey);
    net.command(alice, Command::Send("now it is safe".into()));
    assert!(net.texts(bob).iter().any(|t| t == "now it is safe"));
}

#[test]
fn a_replayed_announcement_from_a_made_up_connection_does_not_hide_a_kick() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, carol) = (ids[0], ids[1 + 1]);
    let (old_epoch, _) = net.epoch_of(alice).unwrap();
    // An announcement the admin sent to bob (an answer to his knock, not
    // to any of alice's).
    let announce = net
        .log
        .iter()
        .find(|(to, f)| *to == ids[1] && matches!(envelope_of(f), Some(Envelope::Announce(_))))
        .cloned()
        .unwrap();
    // From now on the relay drops alice's knocks and join requests, and the
    // new epoch for alice and carol; carol also never sees the notice.
    let admin_conn = net.nodes[0].conn;
    let alice_conn = net.nodes[alice].conn;
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        let env = envelope_of(&f.1);
        let from = match &f.1 {
            RelayFrame::Deliver { from, .. } => *from,
            _ => 0,
        };
        let to_victim = f.0 == alice || f.0 == carol;
        match env {
            Some(Envelope::Knock { .. } | Envelope::JoinRequest(_)) if from == alice_conn => {
                vec![]
            }
            Some(Envelope::Epoch(_) | Envelope::Roster(_)) if to_victim => vec![],
            Some(Envelope::Notice(_)) if f.0 == carol => vec![],
            _ if from == admin_conn && f.0 == carol => vec![],
            _ => vec![f.clone()],
        }
    }));
    // The recorded announcement, replayed as if from a connection that
    // does not exist.
    let RelayFrame::Deliver { payload, .. } = announce.1 else {
        unreachable!()
    };
    net.queue.push_back((
        alice,
        RelayFrame::Deliver {
            from: 4242,
            payload,
        },
    ));
    net.run();
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "out".into()),
    );
    let since = net.log.len();
    net.command(alice, Command::Send("carol must not read this".into()));
    assert!(
        !message_epochs(&published(&net, alice_conn, since)).contains(&old_epoch),
        "alice sent under the epoch carol holds"
    );
    assert!(!net.texts(carol).iter().any(|t| t.contains("must not")));
    assert!(!errors(&net, alice).is_empty(), "alice was not told");
}

#[test]
fn a_member_one_epoch_behind_keeps_the_hold_until_the_epoch_without_the_removed() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, carol) = (ids[0], ids[2]);
    // The relay holds back epoch frames (and their rosters) to alice and
    // carol until it chooses to release them, and the kick notice to carol.
    let held = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let released = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let (keep, pass) = (held.clone(), released.clone());
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        let env = envelope_of(&f.1);
        match env {
            Some(Envelope::Epoch(_) | Envelope::Roster(_))
                if (f.0 == alice || f.0 == carol) && !pass.borrow().contains(&f.1) =>
            {
                keep.borrow_mut().push(f.clone());
                vec![]
            }
            Some(Envelope::Notice(_)) if f.0 == carol => vec![],
            _ => vec![f.clone()],
        }
    }));
    // A rekey (epoch with carol), then carol's removal (epoch without her).
    net.command(0, Command::Rekey);
    let (with_carol, _) = net.epoch_of(0).unwrap();
    let first: Vec<Flight> = held.borrow_mut().drain(..).collect();
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "out".into()),
    );
    // Alice got the kick notice; the relay now releases the rekey epoch,
    // the one that still holds carol, to alice and carol.
    for f in first {
        released.borrow_mut().push(f.1.clone());
        net.queue.push_back(f);
    }
    net.run();
    assert_eq!(net.epoch_of(alice).map(|e| e.0), Some(with_carol));
    assert_eq!(net.epoch_of(carol).map(|e| e.0), Some(with_carol));
    let since = net.log.len();
    net.command(alice, Command::Send("carol must not read this".into()));
    let conn = net.nodes[alice].conn;
    assert!(
        !message_epochs(&published(&net, conn, since)).contains(&with_carol),
        "alice sent under the epoch carol holds"
    );
    assert!(!net.texts(carol).iter().any(|t| t.contains("must not")));
    assert!(!errors(&net, alice).is_empty(), "alice was not told");
}

// ---- 4. a kicked member rejoins --------------------------------------------

#[test]
fn a_kicked_member_cannot_come_back_with_a_new_key_and_the_password() {
    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    cfg.password = Some(Zeroizing::new("correct horse".into()));
    net.admin(cfg, admin_key.clone());
    let mut carol_cfg = member_cfg("carol", &admin_key);
    carol_cfg.password = Some(Zeroizing::new("correct horse".into()));
    let carol = net.member(carol_cfg, id(2));
    assert_eq!(net.epoch_of(carol).map(|e| e.1), Some(2));
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "out".into()),
    );
    net.disconnect(carol);
    // Carol makes a new key and proves the password she still knows.
    net.nodes[0].events.clear();
    let mut again = member_cfg("carol", &admin_key);
    again.password = Some(Zeroizing::new("correct horse".into()));
    let back = net.member(again, id(3));
    assert_eq!(net.epoch_of(back), None, "carol is back with a new key");
    assert_eq!(roster(&net, 0), vec!["boss"]);
    assert!(
        net.pending_id(0).is_some(),
        "after a kick the password no longer approves: the admin decides"
    );
}

#[test]
fn a_kicked_member_stays_out_after_the_admin_restarts() {
    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    cfg.roster.insert(key(2).public().fingerprint());
    net.admin(cfg, admin_key.clone());
    let carol = net.member(member_cfg("carol", &admin_key), id(2));
    assert_eq!(net.epoch_of(carol).map(|e| e.1), Some(2));
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "out".into()),
    );
    net.disconnect(carol);
    // The admin app restarts with the same roster file, and what it kept.
    net.disconnect(0);
    let kept = admin_state(&mut net);
    assert_eq!(kept.bans.len(), 1);
    let mut cfg = admin_cfg();
    cfg.state.bans = kept.bans;
    cfg.roster.insert(key(2).public().fingerprint());
    net.nodes[0].engine = Engine::Admin(Box::new(Admin::new(cfg, id(4))));
    net.nodes[0].events.clear();
    net.reconnect(0);
    net.reconnect(carol);
    wait(&mut net, 6_000);
    assert_eq!(roster(&net, 0), vec!["boss"], "carol is back");
    assert!(net.pending_id(0).is_some(), "the admin decides by hand");
}
