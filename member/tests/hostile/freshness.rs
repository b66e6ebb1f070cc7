//! Freshness and gaps over real TLS (issue 18): dropped lines reported, an
//! earlier admin run refused.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_the_relay_drops_is_reported_with_its_sender() {
    let mut r = room().await;
    let alice = shared(0).public().fingerprint();
    // The relay drops alice's second line on its way to everyone.
    let mut to_drop = None;
    r.relay.tamper(Some(Box::new(move |_, p| {
        if let Some(Envelope::Message(m)) = envelope(p) {
            if m.header.sender == alice {
                if to_drop.is_none() && m.header.seq >= 2 {
                    to_drop = Some(m.header.seq);
                }
                if to_drop == Some(m.header.seq) {
                    return vec![];
                }
            }
        }
        vec![p.clone()]
    })));
    for t in ["one", "two", "three"] {
        r.alice
            .cmd
            .send(Command::Send(t.into()).into())
            .await
            .unwrap();
        r.alice
            .expect(
                "sent",
                |e| matches!(e, Event::Sent { text, .. } if text == t),
            )
            .await;
    }
    r.bob
        .expect(
            "the third line",
            |e| matches!(e, Event::Message { text, .. } if text == "three"),
        )
        .await;
    r.bob
        .expect("bob is told one line from alice is missing", |e| {
            matches!(e, Event::Missed { from, count: 1, private: false, .. } if from.name == "alice")
        })
        .await;
    assert_eq!(r.bob.texts(), vec!["one", "three"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_earlier_admin_run_is_refused_over_real_tls() {
    let mut r = room().await;
    r.alice
        .cmd
        .send(Command::Send("said in run one".into()).into())
        .await
        .unwrap();
    r.bob
        .expect(
            "run one's line",
            |e| matches!(e, Event::Message { text, .. } if text == "said in run one"),
        )
        .await;
    // Everything the relay carried in run one: announcements, epochs,
    // rosters, beacons, the line.
    let run_one: Vec<Bytes> = {
        let mut seen = HashSet::new();
        r.relay
            .carried()
            .into_iter()
            .map(|(_, _, p)| p)
            .filter(|p| seen.insert(p.clone()))
            .collect()
    };
    // The admin app restarts (its driver ends with its command channel): a
    // new run, with a larger number.
    let dir = tempfile::tempdir().unwrap();
    let (gone, _) = mpsc::channel(1);
    drop(std::mem::replace(&mut r.admin.cmd, gone));
    let mut admin = peer(
        Engine::Admin(Box::new(Admin::new(
            AdminConfig {
                room: r.id,
                room_name: "hostile".into(),
                admin_name: "boss".into(),
                password: Some(Zeroizing::new("pw".into())),
                roster: HashSet::new(),
                rekey_after_messages: 0,
                rekey_after_ms: 0,
                state: common::engine::AdminState {
                    run: 1,
                    ..Default::default()
                },
            },
            shared(4),
        ))),
        r.relay.endpoint(),
        dir.path(),
        MAX_FILE,
        MAX_FILE,
    );
    admin.expect("run two seats both", epoch_with(3)).await;
    r.bob.seen.clear();
    r.alice.expect("alice in run two", epoch_with(3)).await;
    r.alice.seen.clear();
    r.bob.expect("bob in run two", epoch_with(3)).await;
    r.bob.settle(Duration::from_millis(500)).await;
    r.bob.seen.clear();

    // The relay replays run one to the members.
    for p in run_one {
        r.relay.inject(p);
    }
    r.bob.settle(Duration::from_millis(500)).await;
    r.alice.settle(Duration::from_millis(500)).await;
    assert!(
        r.bob.texts().is_empty(),
        "run one shown again: {:?}",
        r.bob.texts()
    );
    assert!(
        r.bob.warnings().iter().any(|w| matches!(
            w,
            Warning::Dropped(
                Dropped::EarlierRun { .. }
                    | Dropped::EpochFromAnotherRun
                    | Dropped::EpochAnswersNothing { .. }
            )
        )),
        "{:?}",
        r.bob.warnings()
    );
    // Bob is still in run two (after a rejoin at most): what he writes,
    // alice and the run-two admin read.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        r.bob
            .cmd
            .send(Command::Send("still run two".into()).into())
            .await
            .unwrap();
        r.bob.settle(Duration::from_millis(500)).await;
        if r.bob
            .seen
            .iter()
            .any(|e| matches!(e, Event::Sent { text, .. } if text == "still run two"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob never wrote again: {:?}",
            r.bob.seen
        );
    }
    r.alice
        .expect(
            "alice reads bob in run two",
            |e| matches!(e, Event::Message { text, .. } if text == "still run two"),
        )
        .await;
    admin
        .expect(
            "the run-two admin reads bob",
            |e| matches!(e, Event::Message { text, .. } if text == "still run two"),
        )
        .await;
}
