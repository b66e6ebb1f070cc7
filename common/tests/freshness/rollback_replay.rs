//! Sections 1 and 2: rollback to an earlier admin run, and replay after a
//! member's restart.

use super::*;

#[test]
fn a_member_never_goes_back_to_an_admin_run_it_has_left() {
    let (mut net, ids) = room_with(&[(1, "bob"), (2, "carol")]);
    let (bob, carol) = (ids[0], ids[1]);
    net.command(carol, Command::Send("said in run one".into()));
    assert_eq!(net.texts(bob), vec!["said in run one"]);
    // The relay records everything bob received in run one: the answer to
    // his knock, the epoch holding bob and carol, its roster, carol's line.
    let run_one: Vec<Flight> = net
        .log
        .iter()
        .filter(|(to, _)| *to == bob)
        .cloned()
        .collect();
    // The admin removes carol; her app is gone.
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "out".into()),
    );
    net.disconnect(carol);
    assert_eq!(roster(&net, bob), vec!["boss", "bob"]);
    // The admin restarts (run two). The relay hides the old admin
    // connection's departure from bob; bob joins run two by hand.
    net.nodes[0].online = false;
    net.nodes[0].engine = Engine::Admin(Box::new(Admin::new(admin_cfg(), id(4))));
    net.nodes[0].events.clear();
    net.reconnect(0);
    approve_all(&mut net, 1);
    assert_eq!(roster(&net, bob), vec!["boss", "bob"]);
    let (run_two_epoch, _) = net.epoch_of(bob).unwrap();
    net.nodes[bob].events.clear();

    // The relay replays run one to bob.
    for f in run_one {
        net.queue.push_back(f);
    }
    net.run();
    assert_eq!(
        roster(&net, bob),
        vec!["boss", "bob"],
        "carol is back in bob's roster"
    );
    assert!(net.texts(bob).is_empty(), "run one's line shown again");
    assert!(!net.warnings(bob).is_empty(), "bob was not told");
    // The replay may cost bob a rejoin (an old announcement from another
    // connection reads as the admin reconnecting), never a step back: what
    // he writes goes out under run two's current epoch, which the admin
    // reads and carol's key does not open.
    net.tick(1_000);
    assert_eq!(roster(&net, bob), vec!["boss", "bob"]);
    let (admin_epoch, _) = net.epoch_of(0).unwrap();
    assert!(admin_epoch >= run_two_epoch);
    let since = net.log.len();
    net.command(bob, Command::Send("for the admin only".into()));
    let conn = net.nodes[bob].conn;
    assert_eq!(
        message_epochs(&published(&net, conn, since)),
        vec![admin_epoch]
    );
    assert_eq!(net.texts(0), vec!["for the admin only"]);
}

// ---- 2. replay after a member's restart ------------------------------------

#[test]
fn a_restarted_member_is_not_fed_its_old_epoch_and_lines_again() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    net.command(alice, Command::Send("seen before the restart".into()));
    assert_eq!(net.texts(bob), vec!["seen before the restart"]);
    let recorded: Vec<Flight> = net
        .log
        .iter()
        .filter(|(to, f)| *to == bob && !matches!(envelope_of(f), Some(Envelope::Announce(_))))
        .cloned()
        .collect();
    // Bob's app restarts; the relay hides his departure from the admin and
    // drops his new join request, but lets the admin's fresh answer to his
    // knock through.
    net.nodes[bob].online = false;
    net.nodes[bob].engine = Engine::Member(Box::new(Member::new(member_cfg("bob", &id(4)), id(1))));
    net.nodes[bob].events.clear();
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if is_join_request(&f.1) {
            vec![]
        } else {
            vec![f.clone()]
        }
    }));
    net.reconnect(bob);
    assert!(net.nodes[bob]
        .events
        .iter()
        .any(|e| matches!(e, Event::AdminVerified { .. })));
    // Then it replays the epoch holding bob's wrap, and the line.
    for f in recorded {
        net.queue.push_back(f);
    }
    net.run();
    assert!(net.texts(bob).is_empty(), "a line shown twice");
    assert_eq!(net.epoch_of(bob), None, "the recorded epoch was installed");
}
