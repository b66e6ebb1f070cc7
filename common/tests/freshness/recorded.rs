//! Whatever the relay does with what it recorded: replays, reorders and
//! withholding across epochs and runs.

use super::*;

mod relay_schedules {
    use super::*;
    use proptest::prelude::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// What the relay does with one frame for bob.
    #[derive(Debug, Clone)]
    enum Fate {
        Deliver,
        Drop,
        Twice,
        /// Held back, then delivered after a later frame (reordered).
        Hold,
        /// Delivered, followed by a frame recorded earlier (replayed).
        ReplayOld(usize),
    }

    fn fate() -> impl Strategy<Value = Fate> {
        prop_oneof![
            4 => Just(Fate::Deliver),
            1 => Just(Fate::Drop),
            1 => Just(Fate::Twice),
            1 => Just(Fate::Hold),
            2 => any::<usize>().prop_map(Fate::ReplayOld),
        ]
    }

    /// A room lives through rekeys, a kick and an admin restart while the
    /// relay treats bob's frames according to `fates`; bob's view is
    /// returned.
    fn play(fates: Vec<Fate>) -> Vec<Event> {
        let mut net = Net::new();
        let admin_key = id(4);
        let roster_file = || {
            let mut cfg = admin_cfg();
            for k in [0, 1, 2] {
                cfg.roster.insert(key(k).public().fingerprint());
            }
            cfg
        };
        net.admin(roster_file(), admin_key.clone());
        let alice = net.member(member_cfg("alice", &admin_key), id(0));
        let bob = net.member(member_cfg("bob", &admin_key), id(1));
        let carol = net.member(member_cfg("carol", &admin_key), id(2));
        let recorded: Rc<RefCell<Vec<RelayFrame>>> = Rc::default();
        let held: Rc<RefCell<Vec<Flight>>> = Rc::default();
        let (rec, hold) = (recorded.clone(), held.clone());
        let mut next = 0usize;
        net.tamper = Some(Box::new(move |f: &mut Flight| {
            if f.0 != bob {
                return vec![f.clone()];
            }
            let fate = fates.get(next).cloned().unwrap_or(Fate::Deliver);
            next += 1;
            rec.borrow_mut().push(f.1.clone());
            let mut out = match fate {
                Fate::Deliver => vec![f.clone()],
                Fate::Drop => vec![],
                Fate::Twice => vec![f.clone(), f.clone()],
                Fate::Hold => {
                    hold.borrow_mut().push(f.clone());
                    return vec![];
                }
                Fate::ReplayOld(i) => {
                    let r = rec.borrow();
                    vec![f.clone(), (bob, r[i % r.len()].clone())]
                }
            };
            out.extend(hold.borrow_mut().drain(..));
            out
        }));
        let say = |net: &mut Net, who: usize, text: &str| {
            net.command(who, Command::Send(text.into()));
        };
        say(&mut net, alice, "r1 a1");
        say(&mut net, carol, "r1 c1");
        net.command(0, Command::Rekey);
        say(&mut net, alice, "r1 a2");
        net.command(
            0,
            Command::Kick(key(2).public().fingerprint(), "out".into()),
        );
        say(&mut net, alice, "r1 a3");
        net.disconnect(carol);
        net.tick(1_000);
        // The admin restarts with what it kept.
        net.disconnect(0);
        let kept = match &mut net.nodes[0].engine {
            Engine::Admin(a) => a.take_state().unwrap_or_default(),
            Engine::Member(_) => unreachable!(),
        };
        let mut cfg = roster_file();
        cfg.state.bans = kept.bans;
        net.nodes[0].engine = Engine::Admin(Box::new(Admin::new(cfg, id(4))));
        net.reconnect(0);
        for _ in 0..8 {
            net.tick(1_000);
        }
        say(&mut net, alice, "r2 a1");
        net.tick(1_000);
        say(&mut net, alice, "r2 a2");
        std::mem::take(&mut net.nodes[bob].events)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 24,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Recorded frames dropped, duplicated, reordered or replayed by the
        /// relay never make bob show a line twice, show a line of a run he
        /// left, or take carol back after he saw her removed.
        #[test]
        fn no_relay_schedule_shows_a_line_twice_or_goes_back(
            fates in proptest::collection::vec(fate(), 0..160)
        ) {
            let events = play(fates);
            let mut shown = std::collections::HashSet::new();
            let mut in_run_two = false;
            let mut carol_seen = false;
            let mut carol_gone = false;
            for e in &events {
                match e {
                    Event::Message { text, .. } => {
                        prop_assert!(shown.insert(text.clone()), "{text:?} shown twice");
                        if text.starts_with("r2") {
                            in_run_two = true;
                        } else {
                            prop_assert!(!in_run_two, "{text:?} of run one shown in run two");
                        }
                    }
                    Event::Epoch { members, .. } => {
                        let has_carol = members.iter().any(|m| m.name == "carol");
                        if has_carol {
                            prop_assert!(!carol_gone, "carol back in bob's roster");
                            carol_seen = true;
                        } else if carol_seen {
                            carol_gone = true;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn roster_part_sizes_do_not_reveal_name_lengths() {
    let sizes = |name: &str| {
        let mut net = Net::new();
        let admin_key = id(4);
        let mut cfg = admin_cfg();
        cfg.roster.insert(key(0).public().fingerprint());
        net.admin(cfg, admin_key.clone());
        net.member(member_cfg(name, &admin_key), id(0));
        net.log
            .iter()
            .filter_map(|(_, f)| match envelope_of(f) {
                Some(Envelope::Roster(p)) => Some(p.sealed.ciphertext.len()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let short = sizes("al");
    assert!(!short.is_empty());
    assert_eq!(short, sizes("alexandra of the very long display name"));
}
