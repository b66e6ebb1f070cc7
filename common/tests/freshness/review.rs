//! Found by the hostile review of the freshness change.

use super::*;

/// Attacks a hostile review of the change played (each failed on the
/// change before its fix).
mod review_findings {
    use super::*;
    use common::engine::{Command, Event};
    use common::test_keys::key;
    use common::wire::{ConnId, Envelope, RelayFrame};
    use std::cell::RefCell;
    use std::rc::Rc;

    fn sent_epochs(net: &Net, conn: ConnId, since: usize) -> Vec<u64> {
        net.log[since..]
            .iter()
            .filter(|(_, f)| from_conn(f) == conn)
            .filter_map(|(_, f)| match envelope_of(f) {
                Some(Envelope::Message(m)) => Some(m.header.epoch),
                _ => None,
            })
            .collect()
    }

    /// A: after a kick, the member's requests/min_epoch survive and current
    /// is None: the relay replays an older epoch of this run naming its
    /// request, and the old lines again.
    #[test]
    fn a_kicked_member_is_fed_an_old_epoch_and_its_lines_again() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        let start = net.log.len();
        net.command(alice, Command::Send("old line".into()));
        let (old_epoch, _) = net.epoch_of(bob).unwrap();
        // Record the epoch bob holds (epoch + roster) and alice's line.
        let recorded: Vec<Flight> = net.log[..]
            .iter()
            .enumerate()
            .filter(|(i, (to, f))| {
                *to == bob
                    && match envelope_of(f) {
                        Some(Envelope::Epoch(_) | Envelope::Roster(_)) => true,
                        Some(Envelope::Message(_)) => *i >= start,
                        _ => false,
                    }
            })
            .map(|(_, f)| f.clone())
            .collect();
        net.command(0, Command::Rekey);
        net.command(
            0,
            Command::Kick(key(1).public().fingerprint(), "out".into()),
        );
        assert!(net.nodes[bob]
            .events
            .iter()
            .any(|e| matches!(e, Event::Kicked { .. })));
        net.nodes[bob].events.clear();
        for f in recorded {
            net.queue.push_back(f);
        }
        net.run();
        let reinstalled = net.epoch_of(bob);
        let texts = net.texts(bob);
        let can_send = net.nodes[bob].engine.can_send(net.now);
        assert_eq!(
            reinstalled, None,
            "epoch {old_epoch} installed again after the kick"
        );
        assert!(
            texts.is_empty(),
            "replayed line shown again after the kick: {texts:?}"
        );
        assert!(!can_send, "kicked member may send under an old epoch key");
    }

    /// B: honest admin reconnect with three members: the one seated last
    /// is reported by the first as having lost all its lines.
    #[test]
    fn an_admin_reconnect_makes_spurious_gap_reports() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
        for (i, who) in ids.iter().enumerate() {
            net.command(*who, Command::Send(format!("line {i}")));
        }
        net.disconnect(0);
        net.reconnect(0);
        for _ in 0..8 {
            net.tick(1_000);
        }
        for who in &ids {
            assert_eq!(net.nodes[*who].engine.members().len(), 4, "all back");
        }
        for (i, who) in ids.iter().enumerate() {
            net.command(*who, Command::Send(format!("after {i}")));
        }
        for who in &ids {
            let m = missed(&net, *who);
            eprintln!("node {who} told of gaps: {m:?}");
        }
        for who in &ids {
            assert!(
                missed(&net, *who).is_empty(),
                "spurious gap report at node {who}"
            );
        }
    }

    /// C: the relay drops alice's last lines of epoch E to bob, and all of
    /// epoch E+1 (epoch message, roster, beacon, alice's lines) to bob.
    /// Bob installs E+2 and is told nothing.
    #[test]
    fn a_skipped_epoch_hides_every_dropped_line() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        let alice_conn = net.nodes[alice].conn;
        let drop_all = Rc::new(RefCell::new(false));
        let n = Rc::new(RefCell::new(0));
        let (d, c) = (drop_all.clone(), n.clone());
        net.tamper = Some(Box::new(move |f: &mut Flight| {
            if f.0 == bob && *d.borrow() {
                return vec![];
            }
            if f.0 == bob && from_conn(&f.1) == alice_conn && is_message(&f.1) {
                *c.borrow_mut() += 1;
                if *c.borrow() >= 2 {
                    return vec![];
                }
            }
            vec![f.clone()]
        }));
        for t in ["e1", "e2 dropped", "e3 dropped"] {
            net.command(alice, Command::Send(t.into()));
        }
        *drop_all.borrow_mut() = true;
        net.command(0, Command::Rekey);
        net.command(alice, Command::Send("in skipped epoch".into()));
        *drop_all.borrow_mut() = false;
        *n.borrow_mut() = -100;
        net.command(0, Command::Rekey);
        net.command(alice, Command::Send("after".into()));
        let texts = net.texts(bob);
        eprintln!(
            "bob shown {texts:?}; missed {:?}; warnings {:?}",
            missed(&net, bob),
            net.warnings(bob)
        );
        assert_eq!(texts, vec!["e1", "after"]);
        assert!(
            !missed(&net, bob).is_empty(),
            "3 of alice's lines vanished silently"
        );
    }

    /// C2: all epochs held, but the relay drops alice's tail of E and her
    /// lines of E+1: bob is told of E+1 only, never of E.
    #[test]
    fn a_tail_followed_by_a_dropped_epoch_is_not_counted() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        let alice_conn = net.nodes[alice].conn;
        let n = Rc::new(RefCell::new(0));
        let c = n.clone();
        net.tamper = Some(Box::new(move |f: &mut Flight| {
            if f.0 == bob && from_conn(&f.1) == alice_conn && is_message(&f.1) {
                *c.borrow_mut() += 1;
                let k = *c.borrow();
                if (2..=4).contains(&k) {
                    return vec![];
                }
            }
            vec![f.clone()]
        }));
        let (e, _) = net.epoch_of(bob).unwrap();
        for t in ["e1", "e2 dropped", "e3 dropped"] {
            net.command(alice, Command::Send(t.into()));
        }
        net.command(0, Command::Rekey);
        net.command(alice, Command::Send("next epoch dropped".into()));
        net.command(0, Command::Rekey);
        net.command(alice, Command::Send("after".into()));
        let m = gaps(&net, bob);
        eprintln!("bob told {m:?}");
        assert!(
            m.iter().any(|(ep, k)| *ep == e && *k == 2),
            "E's two lines never reported: {m:?}"
        );
    }

    /// D: the relay delays beacons to alice (one released every 15 s, so
    /// she is never paused) and builds a backlog; after carol's kick it
    /// withholds everything new and keeps feeding the backlog: alice keeps
    /// writing under the epoch carol holds far beyond 20 s.
    #[test]
    fn delayed_beacons_stretch_the_twenty_second_bound() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
        let (alice, carol) = (ids[0], ids[2]);
        let (old_epoch, _) = net.epoch_of(alice).unwrap();
        let admin_conn = net.nodes[0].conn;
        let backlog: Rc<RefCell<std::collections::VecDeque<Flight>>> = Rc::default();
        let cut = Rc::new(RefCell::new(false));
        let pass = Rc::new(RefCell::new(false));
        let (b, k, p) = (backlog.clone(), cut.clone(), pass.clone());
        net.tamper = Some(Box::new(move |f: &mut Flight| {
            if *p.borrow() {
                return vec![f.clone()];
            }
            if f.0 == alice && from_conn(&f.1) == admin_conn {
                if *k.borrow() {
                    return vec![]; // kick notice, new epoch, new beacons
                }
                if matches!(envelope_of(&f.1), Some(Envelope::Beacon(_))) {
                    b.borrow_mut().push_back(f.clone());
                    return vec![];
                }
            }
            vec![f.clone()]
        }));
        let release = |net: &mut Net| {
            let next = backlog.borrow_mut().pop_front();
            if let Some(f) = next {
                net.queue.push_back(f);
                *pass.borrow_mut() = true;
                net.run();
                *pass.borrow_mut() = false;
            }
        };
        release(&mut net);
        // 10 minutes of "normal" chat, in 5 s ticks; one beacon every 15 s.
        for i in 0..120 {
            net.tick(5_000);
            if i % 3 == 0 {
                release(&mut net);
            }
        }
        // Delayed beacons read as old: alice pauses rather than trusting them.
        *cut.borrow_mut() = true;
        net.command(
            0,
            Command::Kick(key(2).public().fingerprint(), "out".into()),
        );
        // 5 minutes later
        for i in 0..60 {
            net.tick(5_000);
            if i % 3 == 0 {
                release(&mut net);
            }
        }
        let since = net.log.len();
        net.command(alice, Command::Send("carol must not read this".into()));
        let epochs = sent_epochs(&net, net.nodes[alice].conn, since);
        eprintln!(
            "5 min after the kick alice sent under {epochs:?} (old epoch {old_epoch}); carol read: {:?}",
            net.texts(carol).iter().filter(|t| t.contains("must not")).collect::<Vec<_>>()
        );
        assert!(
            !epochs.contains(&old_epoch),
            "alice sent under carol's epoch 5 minutes after the kick"
        );
    }

    /// E: a member who is disconnected at the moment cannot be kicked (and
    /// so banned): it comes back automatically as "returning".
    #[test]
    fn a_member_offline_at_kick_time_cannot_be_removed() {
        let (mut net, ids) = room_with(&[(0, "alice"), (2, "carol")]);
        let carol = ids[1];
        net.disconnect(carol);
        net.command(
            0,
            Command::Kick(key(2).public().fingerprint(), "out".into()),
        );
        let errs: Vec<_> = net.nodes[0]
            .events
            .iter()
            .filter(|e| matches!(e, Event::Error { .. }))
            .cloned()
            .collect();
        eprintln!("admin errors: {errs:?}");
        net.reconnect(carol);
        net.tick(1_000);
        let back = net.nodes[0]
            .engine
            .members()
            .iter()
            .any(|m| m.name == "carol");
        assert!(!back, "carol came back without the admin deciding");
    }

    /// C3 (honest network): bob's link drops while alice writes two lines
    /// in E; the admin lets bob's seat go (E+1, alice writes), bob comes
    /// back in E+2: the two lines of E are never reported.
    #[test]
    fn an_honest_reconnect_loses_lines_silently() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        net.command(alice, Command::Send("seen".into()));
        net.nodes[bob].online = false;
        for t in ["lost 1", "lost 2"] {
            net.command(alice, Command::Send(t.into()));
        }
        let conn = net.nodes[bob].conn;
        net.queue.push_back((0, RelayFrame::PeerLeft(conn)));
        net.queue.push_back((alice, RelayFrame::PeerLeft(conn)));
        net.run();
        net.command(alice, Command::Send("while bob is away".into()));
        net.reconnect(bob);
        net.tick(1_000);
        net.command(alice, Command::Send("welcome back".into()));
        eprintln!(
            "bob shown {:?}, missed {:?}",
            net.texts(bob),
            missed(&net, bob)
        );
        assert!(
            !missed(&net, bob).is_empty(),
            "two lines of an epoch bob held vanished silently"
        );
    }

    /// F: a PeerLeft the relay fakes (or a backplane presence expiry) makes
    /// bob "removed" for good: no rejoin until he reconnects by hand.
    #[test]
    fn a_faked_peer_left_leaves_a_member_removed_and_stuck() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let bob = ids[1];
        let conn = net.nodes[bob].conn;
        net.queue.push_back((0, RelayFrame::PeerLeft(conn)));
        net.run();
        for _ in 0..30 {
            net.tick(1_000);
        }
        let kicked = net.nodes[bob]
            .events
            .iter()
            .any(|e| matches!(e, Event::Kicked { .. }));
        eprintln!(
            "bob kicked event: {kicked}; joined: {}",
            net.nodes[bob].engine.members().len()
        );
        assert!(!kicked && !net.nodes[bob].engine.members().is_empty());
    }
}

#[test]
fn a_member_restarted_with_its_kept_run_never_takes_an_older_one() {
    let mut net = Net::new();
    let admin_key = id(4);
    net.admin(admin_cfg(), admin_key.clone());
    // A member whose history says it held a later run of this room.
    let mut cfg = member_cfg("alice", &admin_key);
    cfg.min_run = u64::MAX / 2;
    let alice = net.member(cfg, id(0));
    net.tick(6_000);
    assert_eq!(net.epoch_of(alice), None);
    assert!(net.warned(alice, |w| matches!(
        w,
        Warning::Dropped(Dropped::EarlierRun { .. })
    )));
    assert_eq!(net.pending_id(0), None, "no join request went out");
}

#[test]
fn an_announcement_republished_by_anyone_costs_a_knock_never_a_seat() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    let (epoch, _) = net.epoch_of(0).unwrap();
    // An announcement the admin sent to bob, republished to alice from a
    // connection that is not the admin's.
    let RelayFrame::Deliver { payload, .. } = net
        .log
        .iter()
        .find(|(to, f)| *to == bob && matches!(envelope_of(f), Some(Envelope::Announce(_))))
        .cloned()
        .unwrap()
        .1
    else {
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
    net.tick(1_000);
    assert_eq!(net.epoch_of(0).unwrap().0, epoch, "no rekey for a replay");
    net.command(alice, Command::Send("still seated".into()));
    assert_eq!(net.texts(bob), vec!["still seated"]);
}

/// The hostile review of the finished change (second round): each finding
/// played as the reviewer described it.
mod second_review {
    use super::*;
    use common::engine::BEACON_EVERY_MS;
    use std::{cell::RefCell, rc::Rc};

    /// Found: the relay makes bob think the admin left (a forged
    /// `PeerLeft`), drops what he sends and the epochs he is kept in, then
    /// lets a new join request through: seated again, bob was never told
    /// of the epochs in between. The admin now keeps the seat's first
    /// epoch, and bob is told of every epoch and line he missed.
    #[test]
    fn a_member_unseated_by_a_forged_departure_is_told_of_the_epochs_it_was_kept_out_of() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        let (held, _) = net.epoch_of(bob).unwrap();
        let (admin_conn, bob_conn) = (net.nodes[0].conn, net.nodes[bob].conn);
        let cut = Rc::new(RefCell::new(true));
        let c = cut.clone();
        net.tamper = Some(Box::new(move |f: &mut Flight| {
            if *c.borrow() && (f.0 == bob || from_conn(&f.1) == bob_conn) {
                return vec![];
            }
            vec![f.clone()]
        }));
        net.queue.push_back((bob, RelayFrame::PeerLeft(admin_conn)));
        net.run();
        net.command(0, Command::Rekey);
        for t in ["bob never sees this", "nor this"] {
            net.command(alice, Command::Send(t.into()));
        }
        *cut.borrow_mut() = false;
        for _ in 0..20 {
            net.tick(1_000);
        }
        let (now, _) = net.epoch_of(bob).unwrap();
        assert!(now > held + 1, "bob is seated again");
        assert!(
            net.warnings(bob).contains(&Warning::EpochsMissed {
                from: held + 1,
                to: now - 1
            }),
            "{:?}",
            net.warnings(bob)
        );
        net.command(alice, Command::Send("after".into()));
        assert_eq!(net.texts(bob), vec!["after"]);
        assert_eq!(missed(&net, bob), vec![("alice".into(), 2, false)]);
    }

    /// Found: the beacon after a new epoch counts the new (empty) epoch, so
    /// lines dropped just before a rekey were never counted. The admin now
    /// sends the closing count of the old epoch first.
    #[test]
    fn lines_dropped_just_before_a_rekey_are_counted_by_the_closing_beacon() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        let (epoch, _) = net.epoch_of(bob).unwrap();
        net.tamper = Some(drop_messages(bob, net.nodes[alice].conn, |n| n == 2));
        for t in ["kept", "dropped"] {
            net.command(alice, Command::Send(t.into()));
        }
        net.command(0, Command::Rekey);
        net.tick(BEACON_EVERY_MS);
        net.tick(BEACON_EVERY_MS);
        assert_eq!(net.texts(bob), vec!["kept"]);
        let told = gaps(&net, bob);
        assert_eq!(told, vec![(epoch, 1)]);
    }

    /// Found: a member's signed goodbye set no hold, so a relay that
    /// withholds the next epoch kept alice writing under the key bob (who
    /// left) still holds until the beacons went stale.
    #[test]
    fn nobody_writes_under_the_key_of_a_member_who_left() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        let (old_epoch, _) = net.epoch_of(alice).unwrap();
        let alice_conn = net.nodes[alice].conn;
        net.tamper = Some(Box::new(move |f: &mut Flight| {
            if f.0 == alice && is_epoch(&f.1) {
                return vec![];
            }
            vec![f.clone()]
        }));
        net.command(bob, Command::Leave);
        let since = net.log.len();
        net.command(alice, Command::Send("bob must not read this".into()));
        assert!(
            !message_epochs(&published(&net, alice_conn, since)).contains(&old_epoch),
            "alice sent under the epoch bob holds"
        );
        assert!(errors(&net, alice)
            .iter()
            .any(|e| e.contains("someone said goodbye")));
        // Control: once the epoch without bob arrives, she writes again.
        net.tamper = None;
        net.command(0, Command::Rekey);
        net.command(alice, Command::Send("now fine".into()));
        assert!(net.texts(0).iter().any(|t| t == "now fine"));
    }

    /// Found: after a restart the admin could not ban a member approved in
    /// an earlier run who is offline now: "is not a member".
    #[test]
    fn a_key_approved_before_a_restart_can_be_banned_while_offline() {
        let mut net = Net::new();
        let admin_key = id(4);
        net.admin(admin_cfg(), admin_key);
        let carol = key(2).public().fingerprint();
        net.command(0, Command::Kick(carol, "out".into()));
        assert!(errors(&net, 0).is_empty(), "{:?}", errors(&net, 0));
        assert!(net.warned(0, |w| matches!(w, Warning::BannedUnseen { .. })));
        assert_eq!(admin_state(&mut net).bans[0].fingerprint, carol);
    }
}

/// The approval prompt says when the key asking was removed before, so the
/// admin does not let a removed member back in unknowingly.
#[test]
fn a_removed_key_asking_again_is_flagged_in_the_approval_prompt() {
    let (mut net, ids) = room_with(&[(0, "alice"), (2, "carol")]);
    let carol = ids[1];
    let banned_flags = |net: &Net| -> Vec<(String, bool)> {
        net.nodes[0]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::PendingApproval { name, banned, .. } => Some((name.clone(), *banned)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        banned_flags(&net),
        vec![("alice".into(), false), ("carol".into(), false)]
    );
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "out".into()),
    );
    net.disconnect(carol);
    net.nodes[0].events.clear();
    net.reconnect(carol);
    assert_eq!(banned_flags(&net), vec![("carol".into(), true)]);
}

/// The ban list is told whenever it changes, not only when asked: after a
/// kick, and after an approval by hand lets a banned key back in (the
/// admin window's Banned list follows these events). And the others are
/// told the member was removed, not that they left; once let back in and
/// gone again of their own accord, that they left.
#[test]
fn the_ban_list_is_told_whenever_it_changes() {
    let (mut net, ids) = room_with(&[(0, "alice"), (2, "carol")]);
    let (alice, carol) = (ids[0], ids[1]);
    let carol_fp = key(2).public().fingerprint();
    let last_bans = |net: &Net| -> Option<Vec<String>> {
        net.nodes[0].events.iter().rev().find_map(|e| match e {
            Event::Bans(b) => Some(b.iter().map(|b| b.name.clone()).collect()),
            _ => None,
        })
    };
    assert_eq!(last_bans(&net), None);
    let before_kick = net.log.len();
    net.command(0, Command::Kick(carol_fp, "out".into()));
    assert_eq!(last_bans(&net), Some(vec!["carol".to_string()]));
    for who in [0, alice] {
        assert!(
            net.nodes[who]
                .events
                .iter()
                .any(|e| matches!(e, Event::MemberRemoved(m) if m.name == "carol")),
            "node {who} is told carol was removed"
        );
    }
    net.disconnect(carol);
    net.nodes[0].events.clear();
    net.reconnect(carol);
    let id = net.nodes[0]
        .events
        .iter()
        .find_map(|e| match e {
            Event::PendingApproval {
                id, banned: true, ..
            } => Some(*id),
            _ => None,
        })
        .expect("carol asks again, flagged");
    net.command(0, Command::Approve(id));
    assert_eq!(last_bans(&net), Some(vec![]), "the ban is lifted");
    assert!(roster(&net, alice).contains(&"carol".to_string()));
    // The relay replays the old kick notice to alice: stale (an epoch since
    // seats carol), it must not make carol "removed" now.
    // (The only notice the kick sent to alice.)
    let kick = net.log[before_kick..]
        .iter()
        .find(|f| f.0 == alice && matches!(envelope_of(&f.1), Some(Envelope::Notice(_))))
        .cloned()
        .expect("the kick notice went to alice");
    net.queue.push_back(kick);
    net.run();
    net.nodes[alice].events.clear();
    net.command(carol, Command::Leave);
    net.disconnect(carol);
    assert!(
        net.nodes[alice]
            .events
            .iter()
            .any(|e| matches!(e, Event::MemberLeft(m) if m.name == "carol")),
        "let back in, then gone of her own accord: she left"
    );
}

/// The final hostile review (helper 5): each finding played as described.
mod final_review {
    use super::*;
    use common::engine::BEACON_EVERY_MS;

    /// Found: a member claiming an absurd count (its own `seq` near
    /// `u64::MAX`, seen only by the admin and so counted in the beacons)
    /// made the next gap check overflow: a panic in a debug build.
    #[test]
    fn a_sender_claiming_absurd_counts_cannot_panic_a_member() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        net.tamper = Some(drop_messages(bob, net.nodes[alice].conn, |n| n == 1));
        net.nodes[alice]
            .engine
            .lie_about_counters(u64::MAX - 1, None);
        net.command(
            alice,
            Command::Send("seq u64::MAX, to the admin only".into()),
        );
        net.tick(BEACON_EVERY_MS);
        net.tick(BEACON_EVERY_MS);
        assert_eq!(missed(&net, bob), vec![("alice".into(), u64::MAX, false)]);
        net.nodes[alice].engine.lie_about_counters(0, None);
        net.command(alice, Command::Send("seq 1 again".into()));
        assert_eq!(net.texts(bob), vec!["seq 1 again"]);
        // The same with a first message whose `prev` claims u64::MAX.
        net.command(0, Command::Rekey);
        let (epoch, _) = net.epoch_of(bob).unwrap();
        net.nodes[alice]
            .engine
            .lie_about_counters(0, Some([(epoch - 1, u64::MAX), (0, 0), (0, 0)]));
        net.command(alice, Command::Send("first of the epoch".into()));
        net.command(alice, Command::Send("second".into()));
        assert_eq!(net.texts(bob).len(), 3);
    }

    /// Found: the relay drops a leaver's last lines and the closing beacon
    /// to bob: no beacon ever counts that epoch again. The epoch message
    /// that follows (which bob must install to go on) carries the count.
    #[test]
    fn a_leavers_last_lines_are_reported_though_every_beacon_was_dropped() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        let (epoch, _) = net.epoch_of(bob).unwrap();
        let alice_conn = net.nodes[alice].conn;
        let admin_conn = net.nodes[0].conn;
        let mut n = 0;
        net.tamper = Some(Box::new(move |f: &mut Flight| {
            if f.0 == bob {
                if from_conn(&f.1) == alice_conn && is_message(&f.1) {
                    n += 1;
                    if n >= 2 {
                        return vec![];
                    }
                }
                let beacon = matches!(envelope_of(&f.1), Some(Envelope::Beacon(_)));
                if from_conn(&f.1) == admin_conn && beacon {
                    return vec![];
                }
            }
            vec![f.clone()]
        }));
        net.command(alice, Command::Send("kept".into()));
        net.command(alice, Command::Send("my last words".into()));
        net.command(alice, Command::Leave);
        assert_eq!(net.epoch_of(bob).map(|e| e.0), Some(epoch + 1));
        net.tamper = None;
        net.tick(BEACON_EVERY_MS);
        net.tick(BEACON_EVERY_MS);
        assert_eq!(net.texts(bob), vec!["kept"]);
        // Her last line and her goodbye (a message too).
        assert_eq!(gaps(&net, bob), vec![(epoch, 2)]);
    }

    /// Found: bob's seat ended (the relay cut him off) after an epoch that
    /// held him was dropped to him; seated afresh, he was told nothing of
    /// it. The wrap now names his seat before.
    #[test]
    fn an_epoch_dropped_before_a_seat_ended_is_reported_at_the_next_seat() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        let (held, _) = net.epoch_of(bob).unwrap();
        net.tamper = Some(Box::new(move |f: &mut Flight| {
            if f.0 == bob {
                return vec![];
            }
            vec![f.clone()]
        }));
        net.command(0, Command::Rekey);
        net.command(alice, Command::Send("plan".into()));
        // The relay cuts bob's connection: the admin lets his seat go.
        net.disconnect(bob);
        net.tamper = None;
        net.reconnect(bob);
        for _ in 0..5 {
            net.tick(1_000);
        }
        let (now, _) = net.epoch_of(bob).unwrap();
        assert!(now > held + 2, "seated again");
        assert!(
            net.warnings(bob).contains(&Warning::EpochsMissed {
                from: held + 1,
                to: held + 1
            }),
            "{:?}",
            net.warnings(bob)
        );
        net.command(alice, Command::Send("after".into()));
        assert_eq!(net.texts(bob), vec!["after"]);
        assert_eq!(gaps(&net, bob), vec![(held + 1, 1)]);
    }

    /// Found: a malicious member's goodbye sent to the other members only
    /// (not the admin) froze everyone's sending until the next rekey. A
    /// beacon made after it that still names the epoch lifts the hold.
    #[test]
    fn a_goodbye_kept_from_the_admin_does_not_silence_the_room() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
        let (alice, bob) = (ids[0], ids[1]);
        let alice_conn = net.nodes[alice].conn;
        net.tamper = Some(Box::new(move |f: &mut Flight| {
            if f.0 == 0 && from_conn(&f.1) == alice_conn {
                return vec![];
            }
            vec![f.clone()]
        }));
        net.command(alice, Command::Leave);
        net.tamper = None;
        assert!(!net.nodes[bob].engine.can_send(net.now), "held at first");
        net.tick(BEACON_EVERY_MS);
        assert!(
            net.nodes[bob].engine.can_send(net.now),
            "a later beacon lifts it"
        );
        net.command(bob, Command::Send("still talking".into()));
        assert!(net.texts(0).iter().any(|t| t == "still talking"));
    }
}
