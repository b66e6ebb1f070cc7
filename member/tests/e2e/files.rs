//! Files over a real relay: every size bit-identical, hostile names saved
//! safely, private files for their recipient only.

use super::*;

fn file_member(
    room: RoomId,
    admin: Fingerprint,
    name: &str,
    key: usize,
    relay: &RelayEndpoint,
    dir: &std::path::Path,
) -> Peer {
    Peer::start(
        member_engine(room, admin, name, key, Some("pw")),
        vec![relay.clone()],
        file_options(dir),
    )
}

fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_size_arrive_bit_identical_at_two_members_over_the_relay() {
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = file_member(room, admin_fp, "alice", 0, &ep, dirs[0].path());
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = file_member(room, admin_fp, "bob", 1, &ep, dirs[1].path());
    bob.expect("bob's epoch", epoch_with(3)).await;
    let mut carol = file_member(room, admin_fp, "carol", 2, &ep, dirs[2].path());
    carol.expect("carol's epoch", epoch_with(4)).await;
    alice.expect("alice sees four", epoch_with(4)).await;
    admin.expect("the admin sees four", epoch_with(4)).await;

    let chunk = common::engine::files::CHUNK_SIZE as usize;
    let sizes = [0, 1, chunk - 1, chunk, chunk + 1, 20 * 1024 * 1024];
    let source = dirs[3].path();
    for (n, size) in sizes.into_iter().enumerate() {
        let name = format!("file-{size}.bin");
        let body = content(size, n as u8);
        std::fs::write(source.join(&name), &body).unwrap();
        alice
            .cmd
            .send(Request::SendFile {
                path: source.join(&name),
                to: None,
            })
            .await
            .unwrap();
        if size == 20 * 1024 * 1024 {
            // Chat goes on while a file passes.
            tokio::time::sleep(Duration::from_millis(500)).await;
            bob.say("still here during the transfer").await;
            alice
                .expect(
                    "a chat line during the transfer",
                    |e| matches!(e, Event::Message { text, .. } if text == "still here during the transfer"),
                )
                .await;
        }
        for (who, peer, dir) in [("bob", &mut bob, &dirs[1]), ("carol", &mut carol, &dirs[2])] {
            let saved = peer
                .expect_file(&format!("{who} saves {name}"), Duration::from_secs(60), |f| {
                    matches!(f, FileUpdate::Saved { path, .. } if path.file_name().is_some_and(|p| p == name.as_str()))
                })
                .await;
            let FileUpdate::Saved { path, .. } = saved else {
                unreachable!()
            };
            assert!(path.starts_with(dir.path()));
            let got = std::fs::read(&path).unwrap();
            assert!(got == body, "{who}: {name} arrived bit-identical");
        }
        alice
            .expect_file("alice's file sent", Duration::from_secs(60), |f| {
                matches!(f, FileUpdate::Sent { .. })
            })
            .await;
        alice.files.clear();
    }
    // Nothing else was left in the download folders (no partial files).
    for (who, dir) in [("bob", &dirs[1]), ("carol", &dirs[2])] {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), sizes.len(), "{who}: {names:?}");
        assert!(names.iter().all(|n| !n.ends_with(".part")));
    }
    assert!(
        alice
            .seen
            .iter()
            .chain(&bob.seen)
            .all(|e| !matches!(e, Event::Error { reason } if reason.contains("relay"))),
        "nobody was cut off by the relay's limits"
    );
    relay.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_file_names_are_saved_safely_inside_the_download_folder() {
    use sha2::{Digest, Sha256};
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let _admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = file_member(room, admin_fp, "alice", 0, &ep, dirs[0].path());
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = file_member(room, admin_fp, "bob", 1, &ep, dirs[1].path());
    bob.expect("bob's epoch", epoch_with(3)).await;
    alice.expect("alice sees bob", epoch_with(3)).await;

    let long = "n".repeat(300);
    let names = [
        ("../../etc/passwd", "passwd".to_string()),
        ("/abs/path", "path".to_string()),
        ("a\u{202e}txt.exe", "atxt.exe".to_string()),
        ("CON", "_CON".to_string()),
        (long.as_str(), "n".repeat(200)),
        ("passwd", "passwd (1)".to_string()),
    ];
    for (n, (offered, saved_as)) in names.iter().enumerate() {
        // The offer is made by hand: no local file can carry such a name.
        let body = content(10 + n, n as u8);
        let transfer = [n as u8 + 1; 16];
        alice
            .cmd
            .send(
                Command::OfferFile(common::engine::FileSpec {
                    transfer,
                    name: (*offered).to_string(),
                    size: body.len() as u64,
                    media_type: "text/plain".into(),
                    sha256: Sha256::digest(&body).into(),
                    to: None,
                })
                .into(),
            )
            .await
            .unwrap();
        alice
            .cmd
            .send(
                Command::FileChunk {
                    transfer,
                    index: 0,
                    data: body.clone().into(),
                }
                .into(),
            )
            .await
            .unwrap();
        let saved = bob
            .expect_file(
                &format!("bob saves {offered:?}"),
                WAIT,
                |f| matches!(f, FileUpdate::Saved { transfer: t, .. } if *t == transfer),
            )
            .await;
        let FileUpdate::Saved { path, .. } = saved else {
            unreachable!()
        };
        assert_eq!(
            path.parent(),
            Some(dirs[1].path()),
            "{offered:?} stays in the folder"
        );
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            saved_as.as_str()
        );
        assert_eq!(std::fs::read(&path).unwrap(), body);
    }
    relay.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_privately_is_saved_by_its_recipient_only() {
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = file_member(room, admin_fp, "alice", 0, &ep, dirs[0].path());
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = file_member(room, admin_fp, "bob", 1, &ep, dirs[1].path());
    bob.expect("bob's epoch", epoch_with(3)).await;
    let mut carol = file_member(room, admin_fp, "carol", 2, &ep, dirs[2].path());
    carol.expect("carol's epoch", epoch_with(4)).await;
    alice.expect("alice sees four", epoch_with(4)).await;
    admin.expect("the admin sees four", epoch_with(4)).await;

    let body = content(3 * 1024 * 1024 + 17, 77);
    let source = dirs[3].path().join("salaries.csv");
    std::fs::write(&source, &body).unwrap();
    alice
        .cmd
        .send(Request::SendFile {
            path: source,
            to: Some(shared(1).public().fingerprint()),
        })
        .await
        .unwrap();
    let offered = bob
        .expect_file("bob is offered the file", WAIT, |f| {
            matches!(f, FileUpdate::Offered { .. })
        })
        .await;
    assert!(
        matches!(offered, FileUpdate::Offered { private: true, ref from, .. } if from.name == "alice")
    );
    let saved = bob
        .expect_file("bob saves it", Duration::from_secs(60), |f| {
            matches!(f, FileUpdate::Saved { .. })
        })
        .await;
    let FileUpdate::Saved { path, .. } = saved else {
        unreachable!()
    };
    assert!(std::fs::read(&path).unwrap() == body, "bit-identical");
    alice
        .expect_file("alice's file sent", WAIT, |f| {
            matches!(f, FileUpdate::Sent { .. })
        })
        .await;
    assert!(matches!(
        alice.files.first(),
        Some(FileUpdate::Sending { to: Some(m), .. }) if m.name == "bob"
    ));
    // Carol and the admin received every chunk and heard of nothing.
    carol.settle(Duration::from_millis(300)).await;
    admin.settle(Duration::from_millis(300)).await;
    assert!(carol.files.is_empty(), "{:?}", carol.files);
    assert!(admin.files.is_empty(), "{:?}", admin.files);
    for peer in [&carol, &admin] {
        assert!(
            !peer.seen.iter().any(|e| matches!(e, Event::Warning(_))),
            "{:?}",
            peer.seen
        );
        assert!(peer.local_warnings.is_empty(), "{:?}", peer.local_warnings);
    }
    assert_eq!(std::fs::read_dir(dirs[2].path()).unwrap().count(), 0);
    relay.stop.cancel();
}

/// Two members send each other a file at once over a relay at its default
/// limits, with no pace: each is slowed by the relay's flow control while
/// the other's queue is behind, and neither waits on the other (each
/// session reads while its writer is held). Both files arrive whole, and
/// a line typed meanwhile arrives before they are done (that it overtakes
/// queued chunks is proved at the relay: `flow.rs`,
/// `a_line_overtakes_file_chunks_queued_for_a_reader`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_sending_files_to_each_other_at_full_speed_both_finish_and_chat_overtakes() {
    let relay = TestRelay::start(test_limits()).await;
    let ep = endpoint(&relay);
    let room = common::crypto::random_room_id();
    let admin_fp = shared(4).public().fingerprint();
    let mut admin = admin(room, "pw", HashSet::new(), &ep).await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = file_member(room, admin_fp, "alice", 0, &ep, dirs[0].path());
    alice.expect("alice's epoch", epoch_with(2)).await;
    let mut bob = file_member(room, admin_fp, "bob", 1, &ep, dirs[1].path());
    bob.expect("bob's epoch", epoch_with(3)).await;
    alice.expect("alice sees three", epoch_with(3)).await;
    admin.expect("the admin sees three", epoch_with(3)).await;

    const SIZE: usize = 30 * 1024 * 1024;
    let source = dirs[2].path();
    let bodies = [content(SIZE, 1), content(SIZE, 2)];
    for (who, body) in ["alice", "bob"].iter().zip(&bodies) {
        std::fs::write(source.join(format!("from-{who}.bin")), body).unwrap();
    }
    for (who, peer) in [("alice", &alice), ("bob", &bob)] {
        peer.cmd
            .send(Request::SendFile {
                path: source.join(format!("from-{who}.bin")),
                to: None,
            })
            .await
            .unwrap();
    }
    // Once each has the other's offer (the chunks are flowing), a line.
    for peer in [&mut alice, &mut bob] {
        peer.expect_file("the other's offer", Duration::from_secs(30), |f| {
            matches!(f, FileUpdate::Offered { .. })
        })
        .await;
    }
    alice.say("typed during both transfers").await;
    bob.expect(
        "alice's line",
        |e| matches!(e, Event::Message { text, .. } if text == "typed during both transfers"),
    )
    .await;
    // Updates come in order: the line came before alice's file was whole.
    assert!(
        !bob.files
            .iter()
            .any(|f| matches!(f, FileUpdate::Saved { .. })),
        "the line waited behind the chunks: {:?}",
        bob.files.last()
    );
    for (who, peer, dir, body) in [
        ("bob", &mut bob, &dirs[1], &bodies[0]),
        ("alice", &mut alice, &dirs[0], &bodies[1]),
    ] {
        let saved = peer
            .expect_file(
                &format!("{who} saves the other's file"),
                Duration::from_secs(120),
                |f| matches!(f, FileUpdate::Saved { .. }),
            )
            .await;
        let FileUpdate::Saved { path, .. } = saved else {
            unreachable!()
        };
        assert!(path.starts_with(dir.path()));
        assert!(
            std::fs::read(&path).unwrap() == *body,
            "{who}: bit-identical"
        );
    }
    for (who, peer) in [("alice", &alice), ("bob", &bob)] {
        assert!(
            !peer
                .warnings()
                .iter()
                .any(|w| w.to_string().contains("behind")),
            "{who} was not cut as a slow reader"
        );
    }
}
