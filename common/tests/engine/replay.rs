//! The engine's randomness comes from a source given at construction: the
//! `Net` harness seeds every engine, so a run replays bit for bit.

use super::*;

/// Every frame the relay carried and every event each node was shown in
/// one scripted run: joins, messages, a private message, a room file and a
/// private one, a rekey, beacons, a removal and a departure.
fn scripted_run(seed: Option<u8>) -> (Vec<Flight>, Vec<Vec<Event>>) {
    let mut net = Net::new();
    net.seed = seed;
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    // Each admin_cfg() is a later run; the replay needs the same one.
    cfg.state.run = 9_000;
    net.admin(cfg, admin_key.clone());
    let mut ids = Vec::new();
    for (k, name) in [(0, "alice"), (1, "bob"), (2, "carol")] {
        let m = net.member(member_cfg(name, &admin_key), id(k));
        let pid = net.pending_id(0).expect("a pending request");
        net.command(0, Command::Approve(pid));
        ids.push(m);
    }
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    net.command(alice, Command::Send("hello".into()));
    net.command(
        bob,
        Command::Private(key(0).public().fingerprint(), "psst".into()),
    );
    send_file(&mut net, carol, 5, &pattern(70_000, 3));
    send_offered(
        &mut net,
        alice,
        FileSpec {
            to: Some(key(1).public().fingerprint()),
            ..spec(6, "notes.txt", &pattern(1_000, 4))
        },
        &pattern(1_000, 4),
    );
    net.command(0, Command::Rekey);
    net.tick(6_000);
    net.command(
        0,
        Command::Kick(key(2).public().fingerprint(), "bye".into()),
    );
    net.command(bob, Command::Leave);
    net.command(alice, Command::Send("after".into()));
    let events = net.nodes.iter().map(|n| n.events.clone()).collect();
    (net.log.clone(), events)
}

#[test]
fn a_seeded_run_replays_bit_for_bit() {
    let (frames, events) = scripted_run(Some(1));
    let (again, events_again) = scripted_run(Some(1));
    assert!(frames.len() > 40, "the script ran: {} frames", frames.len());
    let first_difference = frames.iter().zip(&again).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "the replay departs here");
    assert_eq!(frames.len(), again.len());
    assert_eq!(events, events_again);
    assert!(
        events[1]
            .iter()
            .any(|e| matches!(e, Event::Private { text, .. } if text == "psst")),
        "alice read bob's private message"
    );

    // The control: another seed, other bytes (the comparison can fail).
    let (other, _) = scripted_run(Some(2));
    assert_eq!(other.len(), frames.len(), "the same script");
    assert!(other.iter().zip(&frames).any(|(a, b)| a != b));
}

/// Engines drawing from the OS, as the apps' do (the admin wrapping keys
/// through OpenSSL, not the rsa crate): the same script shows the same
/// events, over other bytes.
#[test]
fn the_os_source_runs_the_same_script_to_the_same_events() {
    let (seeded_frames, seeded) = scripted_run(Some(1));
    let (frames, events) = scripted_run(None);
    assert_eq!(events, seeded);
    assert_eq!(frames.len(), seeded_frames.len());
    assert!(frames.iter().zip(&seeded_frames).any(|(a, b)| a != b));
}
