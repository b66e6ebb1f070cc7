//! Files through the hostile relay: dropped, flipped, injected, duplicated
//! and reordered chunks; what the relay can read; limits; private replays;
//! files waiting for accept.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_drops_a_chunk_leaves_no_file_and_a_warning() {
    let mut r = room().await;
    r.relay.tamper(Some(Box::new(|_, p: &Bytes| {
        if chunk_index(p) == Some(1) {
            Vec::new()
        } else {
            vec![p.clone()]
        }
    })));
    alice_sends(&mut r, "plan.pdf", &content(4 * CHUNK - 7, 1)).await;
    bob_gets_no_file(&mut r, "a dropped chunk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_flips_a_chunk_leaves_no_file_and_a_warning() {
    let mut r = room().await;
    r.relay.tamper(Some(Box::new(|_, p: &Bytes| {
        if chunk_index(p) == Some(2) {
            let mut v = p.to_vec();
            let at = v.len() - 100;
            v[at] ^= 0x20;
            vec![Bytes::from(v)]
        } else {
            vec![p.clone()]
        }
    })));
    alice_sends(&mut r, "plan.pdf", &content(4 * CHUNK - 7, 2)).await;
    bob_gets_no_file(&mut r, "a flipped chunk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_injected_from_outside_the_room_is_refused_with_a_warning() {
    let mut r = room().await;
    // The relay holds no room key: it copies the header of alice's chunk 1
    // (the transfer id and index it can see) onto bytes it made up, and
    // delivers its forgery before the real chunk.
    let forged = Arc::new(Mutex::new(HashSet::new()));
    r.relay.tamper(Some(Box::new(move |to, p: &Bytes| {
        if let Some(Envelope::FileChunk(mut c)) = envelope(p) {
            if c.header.index == 1 && forged.lock().unwrap().insert(to) {
                c.sealed.ciphertext = Bytes::from(vec![0x41; c.sealed.ciphertext.len()]);
                c.sealed.tag = [7; 32];
                return vec![encode(&Envelope::FileChunk(c)), p.clone()];
            }
        }
        vec![p.clone()]
    })));
    let body = content(4 * CHUNK - 7, 3);
    alice_sends(&mut r, "plan.pdf", &body).await;
    // Never a wrong file: the forgery is dropped with a warning, and the
    // real chunks still make the right file.
    bob_gets(&mut r, "plan.pdf", &body).await;
    assert!(
        r.bob.warnings().iter().any(|w| matches!(
            w,
            Warning::ChunksDropped {
                last: ChunkFault::Unauthentic,
                ..
            }
        )),
        "{:?}",
        r.bob.warnings()
    );
    // A chunk from a connection that is not in the room at all, for a
    // transfer nobody offered: dropped, nothing shown.
    r.relay.tamper(None);
    r.relay.inject(Bytes::from_static(b"\x08\x00garbage"));
    r.bob.settle(Duration::from_millis(500)).await;
    assert_eq!(bob_has(&r), vec!["plan.pdf".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_chunks_give_the_right_file_and_reordered_ones_none() {
    let mut r = room().await;
    r.relay.tamper(Some(Box::new(|_, p: &Bytes| {
        if chunk_index(p).is_some() {
            vec![p.clone(), p.clone()]
        } else {
            vec![p.clone()]
        }
    })));
    let body = content(4 * CHUNK - 7, 4);
    alice_sends(&mut r, "twice.bin", &body).await;
    bob_gets(&mut r, "twice.bin", &body).await;
    assert!(r.bob.warnings().iter().any(|w| matches!(
        w,
        Warning::ChunksDropped {
            last: ChunkFault::Duplicate { .. },
            ..
        }
    )));
    r.alice
        .expect_file("alice's first file sent", WAIT, |f| {
            matches!(f, FileUpdate::Sent { .. })
        })
        .await;

    // Chunk 1 held back and delivered after chunk 2.
    let held: Arc<Mutex<HashMap<ConnId, Bytes>>> = Arc::default();
    r.relay.tamper(Some(Box::new(move |to, p: &Bytes| {
        let mut held = held.lock().unwrap();
        match chunk_index(p) {
            Some(1) => {
                held.insert(to, p.clone());
                Vec::new()
            }
            Some(2) => {
                let mut v = vec![p.clone()];
                v.extend(held.remove(&to));
                v
            }
            _ => vec![p.clone()],
        }
    })));
    r.bob.files.clear();
    r.bob.seen.clear();
    alice_sends(&mut r, "swapped.bin", &content(4 * CHUNK - 7, 5)).await;
    let failed = r
        .bob
        .expect_file("the reordered transfer ends", WAIT, |f| {
            matches!(f, FileUpdate::Failed { .. })
        })
        .await;
    assert!(matches!(failed, FileUpdate::Failed { .. }));
    r.bob.settle(Duration::from_millis(500)).await;
    assert_eq!(bob_has(&r), vec!["twice.bin".to_string()], "no wrong file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_carries_nothing_readable_and_a_kicked_member_nothing_after_the_kick() {
    // Alice's files go at 1 MiB/s, so the kick lands mid-transfer however
    // loaded the machine is (at full speed the whole file may pass first).
    let mut r = room_with(Some(1024 * 1024)).await;
    // A private message and a private file: the relay's whole recording
    // holds neither, and alice (a member, not the recipient) sees nothing.
    let secret = "the vault code is 4711";
    r.admin
        .cmd
        .send(Command::Private(shared(1).public().fingerprint(), secret.into()).into())
        .await
        .unwrap();
    r.bob
        .expect(
            "bob reads it",
            |e| matches!(e, Event::Private { text, .. } if text == secret),
        )
        .await;
    let body = content(3 * CHUNK + 5, 6);
    let path = r.dirs[3].path().join("payroll.xlsx");
    std::fs::write(&path, &body).unwrap();
    r.admin
        .cmd
        .send(Request::SendFile {
            path,
            to: Some(shared(1).public().fingerprint()),
        })
        .await
        .unwrap();
    bob_gets(&mut r, "payroll.xlsx", &body).await;
    r.alice.settle(Duration::from_millis(500)).await;
    assert!(r.alice.files.is_empty(), "{:?}", r.alice.files);
    assert!(!format!("{:?}", r.alice.seen).contains("vault"));
    for (_, _, p) in r.relay.carried() {
        assert!(!p.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert!(!p.windows(64).any(|w| w == &body[1000..1064]));
        assert!(!p.windows(7).any(|w| w == b"payroll"));
    }

    // A 4 MiB file from alice at 1 MiB/s; bob is kicked after the first
    // chunks. Everything delivered to bob's connection after the kick is
    // sealed under an epoch he never held.
    let bob_conn = r
        .bob
        .seen
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Connected { conn_id } => Some(*conn_id),
            _ => None,
        })
        .unwrap();
    let bob_epoch = r
        .bob
        .seen
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Epoch { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .unwrap();
    alice_sends(&mut r, "big.bin", &content(4 * 1024 * 1024, 7)).await;
    r.bob
        .expect_file(
            "bob receives some",
            WAIT,
            |f| matches!(f, FileUpdate::Progress { done, .. } if *done > 0),
        )
        .await;
    r.admin
        .cmd
        .send(Command::Kick(shared(1).public().fingerprint(), "bye".into()).into())
        .await
        .unwrap();
    r.bob
        .expect("bob is removed", |e| matches!(e, Event::Kicked { .. }))
        .await;
    r.alice
        .expect_file("alice's file goes on", WAIT, |f| {
            matches!(f, FileUpdate::Sent { .. })
        })
        .await;
    // The chunks of big.bin the relay delivered to bob's connection, in
    // order: those under an epoch bob held all come before the first one
    // under a newer epoch, and there are newer ones (the kick came
    // mid-transfer). The sender switched keys once and never went back.
    let to_bob: Vec<(u32, u64)> = r
        .relay
        .carried()
        .iter()
        .filter(|(to, _, _)| *to == bob_conn)
        .filter_map(|(_, _, p)| match envelope(p) {
            Some(Envelope::FileChunk(c)) => Some((c.header.index, c.header.epoch)),
            _ => None,
        })
        .collect();
    let big: Vec<(u32, u64)> = to_bob
        .iter()
        .copied()
        .skip_while(|(i, _)| *i != 0)
        .collect();
    let old_max = big
        .iter()
        .filter(|(_, e)| *e <= bob_epoch)
        .map(|(i, _)| *i)
        .max();
    let new_min = big
        .iter()
        .filter(|(_, e)| *e > bob_epoch)
        .map(|(i, _)| *i)
        .min();
    let (Some(old_max), Some(new_min)) = (old_max, new_min) else {
        panic!("the kick did not come mid-transfer: {big:?}");
    };
    assert!(
        old_max < new_min,
        "a chunk under bob's key after one under the new key: {big:?}"
    );
    r.bob.settle(Duration::from_millis(500)).await;
    assert!(!r.bob.files.iter().any(|f| matches!(f,
        FileUpdate::Saved { path, .. } if path.ends_with("big.bin"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_size_limit_holds_for_the_sender_and_for_each_receiver() {
    let mut r = room().await;
    // Carol accepts files up to 1 MiB only.
    let carol_dir = tempfile::tempdir().unwrap();
    let admin = shared(4).public().fingerprint();
    let mut carol = peer(
        member_engine(r.id, admin, "carol", 2, Some("pw")),
        r.relay.endpoint(),
        carol_dir.path(),
        1024 * 1024,
        1024 * 1024,
    );
    carol.expect("carol's epoch", epoch_with(4)).await;
    r.alice.expect("alice sees carol", epoch_with(4)).await;
    r.bob.expect("bob sees carol", epoch_with(4)).await;

    // Over alice's own limit (32 MiB): refused before anything is sent.
    let huge = r.dirs[2].path().join("huge.iso");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(33 * 1024 * 1024)
        .unwrap();
    let mark = r.relay.carried().len();
    r.alice
        .cmd
        .send(Request::SendFile {
            path: huge,
            to: None,
        })
        .await
        .unwrap();
    r.alice
        .expect(
            "alice is told",
            |e| matches!(e, Event::Error { reason } if reason.contains("over the limit")),
        )
        .await;
    r.alice.settle(Duration::from_millis(500)).await;
    assert!(
        !r.relay.carried()[mark..].iter().any(|(_, _, p)| matches!(
            envelope(p),
            Some(Envelope::Message(_) | Envelope::FileChunk(_))
        )),
        "nothing went out"
    );

    // 2 MiB: bob takes it, carol refuses it (over her limit) and saves
    // nothing.
    let body = content(2 * 1024 * 1024, 8);
    alice_sends(&mut r, "two.bin", &body).await;
    bob_gets(&mut r, "two.bin", &body).await;
    carol
        .expect("carol refuses the offer", |e| {
            matches!(
                e,
                Event::Warning(Warning::OfferIgnored {
                    why: OfferRefusal::TooLarge { .. },
                    ..
                })
            )
        })
        .await;
    carol.settle(Duration::from_millis(500)).await;
    assert!(carol.files.is_empty(), "{:?}", carol.files);
    assert_eq!(std::fs::read_dir(carol_dir.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_private_message_is_shown_once_and_warned_about() {
    let mut r = room().await;
    // The relay delivers every private message twice, the copy a moment
    // later.
    r.relay.tamper(Some(Box::new(|_, p: &Bytes| {
        if matches!(envelope(p), Some(Envelope::Private(_))) {
            vec![p.clone(), p.clone()]
        } else {
            vec![p.clone()]
        }
    })));
    r.alice
        .cmd
        .send(Command::Private(shared(1).public().fingerprint(), "once only".into()).into())
        .await
        .unwrap();
    r.bob
        .expect("bob warns about the copy", |e| {
            matches!(
                e,
                Event::Warning(Warning::Dropped(Dropped::Replayed {
                    kind: Kind::Private,
                    ..
                }))
            )
        })
        .await;
    r.bob.settle(Duration::from_millis(500)).await;
    let shown = r
        .bob
        .seen
        .iter()
        .filter(|e| matches!(e, Event::Private { text, .. } if text == "once only"))
        .count();
    assert_eq!(shown, 1);
}

/// Open file descriptors of this process on temporary files being received.
#[cfg(target_os = "linux")]
/// Partial files under `dirs` this process holds open (the other tests of
/// this binary run at the same time, with their own folders).
fn open_partials(dirs: &[std::path::PathBuf]) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|p| dirs.iter().any(|d| p.starts_with(d)))
                .filter(|p| p.to_string_lossy().contains(".teamchat-"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_waiting_for_accept_are_bounded_per_sender_and_hold_no_descriptor() {
    let mut r = room().await;
    // Carol saves nothing without asking.
    let carol_dir = tempfile::tempdir().unwrap();
    let admin = shared(4).public().fingerprint();
    let mut carol = peer(
        member_engine(r.id, admin, "carol", 2, Some("pw")),
        r.relay.endpoint(),
        carol_dir.path(),
        1024 * 1024,
        0,
    );
    carol.expect("carol's epoch", epoch_with(4)).await;
    r.alice.expect("alice sees carol", epoch_with(4)).await;
    // Alice sends nine small files, one after the other.
    for n in 0..9u8 {
        alice_sends(&mut r, &format!("note-{n}.txt"), &content(1000, n)).await;
        r.alice
            .expect_file("alice's file sent", WAIT, |f| {
                matches!(f, FileUpdate::Sent { .. })
            })
            .await;
        r.alice.files.clear();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while carol
        .files
        .iter()
        .filter(|f| matches!(f, FileUpdate::Ready { .. }))
        .count()
        < 8
    {
        carol.next("eight files ready", deadline).await;
    }
    carol
        .expect_local_warning("the ninth is refused", |w| w.contains("too many files"))
        .await;
    carol.settle(Duration::from_millis(500)).await;
    let offered = carol
        .files
        .iter()
        .filter(|f| matches!(f, FileUpdate::Offered { .. }))
        .count();
    assert_eq!(offered, 8, "{:?}", carol.files);
    // Eight complete files wait for Accept, none of them holding a file
    // descriptor (bob saved his at once and closed them too).
    #[cfg(target_os = "linux")]
    // As the links read back: canonical paths.
    let ours: Vec<std::path::PathBuf> = r
        .dirs
        .iter()
        .map(|d| d.path())
        .chain([carol_dir.path()])
        .map(|d| d.canonicalize().unwrap())
        .collect();
    assert_eq!(open_partials(&ours), 0);
    // Accepting one saves it, and makes room for one more from alice.
    let Some(FileUpdate::Ready { transfer }) = carol
        .files
        .iter()
        .find(|f| matches!(f, FileUpdate::Ready { .. }))
        .cloned()
    else {
        unreachable!()
    };
    carol.cmd.send(Request::AcceptFile(transfer)).await.unwrap();
    carol
        .expect_file("carol saves it", WAIT, |f| {
            matches!(f, FileUpdate::Saved { .. })
        })
        .await;
    alice_sends(&mut r, "one-more.txt", &content(1000, 77)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !carol
        .files
        .iter()
        .any(|f| matches!(f, FileUpdate::Offered { name, .. } if name == "one-more.txt"))
    {
        carol.next("one more is offered", deadline).await;
    }
}
