//! Section 6: the smaller findings of the freshness review.

use super::*;

#[test]
fn names_that_look_alike_are_told_apart_even_in_their_disambiguated_form() {
    use common::engine::name_key;
    assert_eq!(name_key("bob"), name_key("B\u{43e}b"), "Cyrillic o");
    assert_eq!(
        name_key("bob"),
        name_key("\u{ff42}\u{ff4f}\u{ff42}"),
        "full width"
    );
    assert_ne!(name_key("bob"), name_key("rob"));
    let mut net = Net::new();
    let admin_key = id(4);
    let mut cfg = admin_cfg();
    for k in [0, 1, 2, 3] {
        cfg.roster.insert(key(k).public().fingerprint());
    }
    net.admin(cfg, admin_key.clone());
    // Someone takes the name bob's look-alike would be given.
    let fp1 = key(1).public().fingerprint().to_string();
    net.member(
        member_cfg(&format!("bob ({})", &fp1[..8]), &admin_key),
        id(3),
    );
    net.member(member_cfg("bob", &admin_key), id(0));
    net.member(member_cfg("b\u{43e}b", &admin_key), id(1));
    let last = net.member(member_cfg("\u{ff42}\u{ff4f}\u{ff42}", &admin_key), id(2));
    let names = roster(&net, last);
    assert_eq!(names.len(), 5, "{names:?}");
    let keys: std::collections::HashSet<String> = names.iter().map(|n| name_key(n)).collect();
    assert_eq!(keys.len(), 5, "two names look alike: {names:?}");
}

#[test]
fn a_roster_part_forged_by_a_member_does_not_cost_anyone_the_epoch() {
    use common::crypto::seal::seal;
    use common::crypto::VerifiedEpoch;
    use common::wire::{aad, context, RosterPart, Signed};
    use std::cell::RefCell;
    thread_local! {
        static EPOCH: RefCell<Option<Signed>> = const { RefCell::new(None) };
    }
    /// Mallory (key 2), a member, holds the epoch's key: she seals a part
    /// of her own under it.
    fn forged(genuine: &RosterPart) -> RosterPart {
        let signed = EPOCH
            .with(|e| e.borrow().clone())
            .expect("the epoch came first");
        let admin = key(4).public();
        let v = VerifiedEpoch::verify(admin, &admin.fingerprint(), &signed, 1 << 20).unwrap();
        let keys = key(2)
            .unwrap_epoch_key(&v)
            .unwrap()
            .epoch_keys(&ROOM, genuine.header.epoch);
        let sealed = seal(
            &mut common::crypto::OsRng,
            &keys,
            &aad(context::AAD_ROSTER, &genuine.header),
            b"forged",
        );
        RosterPart {
            header: genuine.header.clone(),
            sealed,
        }
    }
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "mallory")]);
    let bob = ids[1];
    // The relay puts mallory's part before the genuine one for bob.
    net.tamper = Some(Box::new(move |f: &mut Flight| match envelope_of(&f.1) {
        Some(Envelope::Epoch(s)) => {
            EPOCH.with(|e| *e.borrow_mut() = Some(s));
            vec![f.clone()]
        }
        Some(Envelope::Roster(part)) if f.0 == bob => {
            let mut v = redeliver(f, &Envelope::Roster(forged(&part)));
            v.push(f.clone());
            v
        }
        _ => vec![f.clone()],
    }));
    let (before, _) = net.epoch_of(bob).unwrap();
    net.command(0, Command::Rekey);
    let (after, members) = net.epoch_of(bob).unwrap();
    assert_eq!(after, before + 1, "bob lost the epoch to a forged part");
    assert_eq!(members, 4);
    assert!(net.warned(bob, |w| matches!(
        w,
        Warning::Dropped(Dropped::RosterPartForged)
    )));
}
