//! Files through the engines: every size, flipped, dropped, duplicated or
//! reordered chunks, hashes, removals mid-transfer, limits, cancels, private
//! files.

use super::private::contains;
use super::*;

use common::engine::files::CHUNK_SIZE;
use common::engine::FileSpec;

fn is_chunk(f: &RelayFrame) -> bool {
    matches!(envelope_of(f), Some(Envelope::FileChunk(_)))
}

/// Chunks held back from node `to`, as a full bulk lane would hold them.
type Held = std::rc::Rc<std::cell::RefCell<Vec<Flight>>>;

/// The relay holds every room chunk for node `to` back until [`release`].
fn hold_chunks_for(net: &mut Net, to: usize) -> Held {
    let held = Held::default();
    let hold = Held::clone(&held);
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if f.0 == to && is_chunk(&f.1) {
            hold.borrow_mut().push(f.clone());
            return vec![];
        }
        vec![f.clone()]
    }));
    held
}

/// Delivers what [`hold_chunks_for`] held, in order, and lets frames pass.
fn release(net: &mut Net, held: &Held) {
    net.tamper = None;
    let chunks = std::mem::take(&mut *held.borrow_mut());
    net.queue.extend(chunks);
    net.run();
}

#[test]
fn files_of_every_size_around_the_chunk_arrive_whole() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let c = CHUNK_SIZE as usize;
    for (n, size) in [0, 1, c - 1, c, c + 1, 3 * c + 5].into_iter().enumerate() {
        let content = pattern(size, n as u8);
        let t = 10 + n as u8;
        send_file(&mut net, ids[0], t, &content);
        for who in [0, ids[1]] {
            let (got, end) = received(&net, who, t);
            assert_eq!(end, Some(true), "size {size} completes at node {who}");
            assert!(got == content, "size {size}: the same bytes at node {who}");
        }
        assert!(net.nodes[ids[0]].files.iter().any(|e| matches!(e,
            FileEvent::Offered { transfer, size: s, .. } if *transfer == [t; 16] && *s == size as u64)));
        assert!(
            received(&net, ids[0], t).1.is_none(),
            "no echo to the sender"
        );
    }
    assert!(
        net.warnings(ids[1]).is_empty(),
        "{:?}",
        net.warnings(ids[1])
    );
    // The relay carried no chunk in the clear.
    let marker = pattern(4 * c, 99);
    send_file(&mut net, ids[0], 50, &marker);
    for (_, f) in &net.log {
        if let RelayFrame::Deliver { payload, .. } = f {
            assert!(!contains(payload, &marker[1000..1064]));
        }
    }
}

/// Sends a 4-chunk file from alice (node ids[0]) through `tamper` and
/// returns what bob (ids[1]) ended with.
fn through(tamper: Tamper) -> (Net, Vec<usize>, Vec<u8>) {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let content = pattern(4 * CHUNK_SIZE as usize - 7, 3);
    net.tamper = Some(tamper);
    send_file(&mut net, ids[0], 7, &content);
    net.tamper = None;
    (net, ids, content)
}

fn chunk_index(f: &RelayFrame) -> Option<u32> {
    match envelope_of(f) {
        Some(Envelope::FileChunk(c)) => Some(c.header.index),
        _ => None,
    }
}

#[test]
fn a_flipped_dropped_or_foreign_chunk_leaves_no_file() {
    // A flipped bit in chunk 1.
    let (net, ids, _) = through(Box::new(|f: &mut Flight| {
        if let Some(Envelope::FileChunk(mut c)) = envelope_of(&f.1) {
            if c.header.index == 1 {
                let mut ct = c.sealed.ciphertext.to_vec();
                ct[100] ^= 0x20;
                c.sealed.ciphertext = ct.into();
                return redeliver(f, &Envelope::FileChunk(c));
            }
        }
        vec![f.clone()]
    }));
    let (got, end) = received(&net, ids[1], 7);
    assert_eq!(end, Some(false));
    assert_eq!(
        got.len(),
        CHUNK_SIZE as usize,
        "only chunk 0 was handed over"
    );
    assert!(net.warned(ids[1], |w| matches!(
        w,
        Warning::ChunksDropped {
            last: ChunkFault::Unauthentic,
            ..
        }
    )));

    // Chunk 1 dropped: chunk 2 shows the gap.
    let (net, ids, _) = through(Box::new(|f: &mut Flight| {
        if chunk_index(&f.1) == Some(1) {
            vec![]
        } else {
            vec![f.clone()]
        }
    }));
    assert_eq!(received(&net, ids[1], 7).1, Some(false));
    assert!(net.warned(ids[1], |w| matches!(w, Warning::FileGap { .. })));

    // A chunk sealed by someone outside the room (no epoch key).
    let (net, ids, _) = through(Box::new(|f: &mut Flight| {
        if let Some(Envelope::FileChunk(mut c)) = envelope_of(&f.1) {
            if c.header.index == 2 {
                let outsider = common::crypto::seal::SessionKey::generate(&mut OsRng)
                    .epoch_keys(&c.header.room, c.header.epoch);
                c.sealed = common::crypto::seal::seal(
                    &mut OsRng,
                    &outsider,
                    &common::wire::aad(common::wire::context::AAD_CHUNK, &c.header),
                    &vec![0u8; CHUNK_SIZE as usize],
                );
                return redeliver(f, &Envelope::FileChunk(c));
            }
        }
        vec![f.clone()]
    }));
    assert_eq!(received(&net, ids[1], 7).1, Some(false));
}

#[test]
fn duplicated_chunks_are_dropped_and_the_right_file_arrives() {
    let (net, ids, content) = through(Box::new(|f: &mut Flight| {
        if is_chunk(&f.1) {
            vec![f.clone(), f.clone()]
        } else {
            vec![f.clone()]
        }
    }));
    let (got, end) = received(&net, ids[1], 7);
    assert_eq!(end, Some(true));
    assert!(got == content);
    assert!(net.warned(ids[1], |w| matches!(
        w,
        Warning::ChunksDropped {
            last: ChunkFault::Duplicate { .. },
            ..
        }
    )));
}

#[test]
fn reordered_chunks_give_no_file_never_a_wrong_one() {
    let mut held: Option<Flight> = None;
    // Only bob's copies (node 2; the admin is 0, alice 1) are reordered.
    let (net, ids, _) = through(Box::new(move |f: &mut Flight| match chunk_index(&f.1) {
        _ if f.0 != 2 => vec![f.clone()],
        Some(1) => {
            held = Some(f.clone());
            vec![]
        }
        Some(2) => {
            let mut v = vec![f.clone()];
            v.extend(held.take());
            v
        }
        _ => vec![f.clone()],
    }));
    assert_eq!(ids[1], 2);
    assert_eq!(received(&net, ids[1], 7).1, Some(false));
    assert_eq!(
        received(&net, 0, 7).1,
        Some(true),
        "the admin got it in order"
    );
}

#[test]
fn content_that_does_not_match_the_signed_hash_is_discarded() {
    // Any member holds the epoch key and could seal a chunk under the
    // sender's name; what catches that is the SHA-256 in the signed offer,
    // checked when the last chunk arrives. Here the offer's hash is wrong.
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let content = pattern(2 * CHUNK_SIZE as usize + 1, 4);
    let mut s = spec(12, "report.pdf", &content);
    s.sha256[0] ^= 1;
    send_offered(&mut net, ids[0], s, &content);
    assert_eq!(received(&net, ids[1], 12).1, Some(false));
    assert!(net.warned(ids[1], |w| matches!(w, Warning::FileMismatch { .. })));
}

#[test]
fn a_member_removed_mid_transfer_gets_nothing_sealed_after_the_removal() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let content = pattern(6 * CHUNK_SIZE as usize, 5);
    net.command(alice, Command::OfferFile(spec(8, "plan.pdf", &content)));
    let chunks: Vec<&[u8]> = content.chunks(CHUNK_SIZE as usize).collect();
    for (i, c) in chunks.iter().enumerate().take(2) {
        net.command(
            alice,
            Command::FileChunk {
                transfer: [8; 16],
                index: i as u32,
                data: Bytes::copy_from_slice(c),
            },
        );
    }
    let (bob_epoch, _) = net.epoch_of(bob).unwrap();
    net.command(
        0,
        Command::Kick(key(1).public().fingerprint(), "bye".into()),
    );
    let log_mark = net.log.len();
    for (i, c) in chunks.iter().enumerate().skip(2) {
        net.command(
            alice,
            Command::FileChunk {
                transfer: [8; 16],
                index: i as u32,
                data: Bytes::copy_from_slice(c),
            },
        );
    }
    // Everything sealed after the kick is under an epoch bob never held.
    let after: Vec<u64> = net.log[log_mark..]
        .iter()
        .filter_map(|(_, f)| match envelope_of(f) {
            Some(Envelope::FileChunk(c)) => Some(c.header.epoch),
            _ => None,
        })
        .collect();
    assert_eq!(
        after.len(),
        4 * 3,
        "four chunks to each of the admin, carol and bob (still connected)"
    );
    assert!(after.iter().all(|e| *e > bob_epoch));
    let (got, end) = received(&net, bob, 8);
    assert_eq!(
        got.len(),
        2 * CHUNK_SIZE as usize,
        "bob has only what came before"
    );
    assert_ne!(end, Some(true));
    let (got, end) = received(&net, carol, 8);
    assert_eq!(end, Some(true));
    assert!(got == content);
}

#[test]
fn the_file_size_limit_holds_on_both_sides() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let content = pattern(5000, 1);
    net.nodes[ids[0]].engine.set_max_file_size(4000);
    net.command(ids[0], Command::OfferFile(spec(9, "big.bin", &content)));
    assert!(net
        .take(ids[0])
        .iter()
        .any(|e| matches!(e, Event::Error { reason } if reason.contains("limit"))));
    assert!(received(&net, ids[1], 9).0.is_empty());

    net.nodes[ids[0]].engine.set_max_file_size(1 << 20);
    net.nodes[ids[1]].engine.set_max_file_size(4000);
    send_file(&mut net, ids[0], 9, &content);
    assert!(net.warned(ids[1], |w| matches!(
        w,
        Warning::OfferIgnored {
            why: OfferRefusal::TooLarge { .. },
            ..
        }
    )));
    assert!(!net.nodes[ids[1]]
        .files
        .iter()
        .any(|e| matches!(e, FileEvent::Incoming { .. })));
    assert_eq!(received(&net, ids[1], 9), (Vec::new(), None));
    assert_eq!(
        received(&net, 0, 9).1,
        Some(true),
        "the admin, with the default limit, takes it"
    );
}

#[test]
fn a_cancelled_transfer_ends_at_every_receiver() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let content = pattern(3 * CHUNK_SIZE as usize, 2);
    net.command(ids[0], Command::OfferFile(spec(11, "x", &content)));
    net.command(
        ids[0],
        Command::FileChunk {
            transfer: [11; 16],
            index: 0,
            data: Bytes::copy_from_slice(&content[..CHUNK_SIZE as usize]),
        },
    );
    net.command(ids[0], Command::CancelFile([11; 16]));
    assert_eq!(received(&net, ids[1], 11).1, Some(false));
    assert!(!net.nodes[ids[0]].engine.sending(&[11; 16]));
    // Nothing more can be sent for it.
    net.command(
        ids[0],
        Command::FileChunk {
            transfer: [11; 16],
            index: 1,
            data: Bytes::copy_from_slice(&content[..CHUNK_SIZE as usize]),
        },
    );
    assert!(net
        .take(ids[0])
        .iter()
        .any(|e| matches!(e, Event::Error { .. })));
}

#[test]
fn a_forged_chunk_changes_nothing_and_the_real_file_still_arrives() {
    // Before each real chunk to bob, the relay injects a forgery with the
    // same header: it fails its MAC and must not end the transfer.
    let (net, ids, content) = through(Box::new(|f: &mut Flight| {
        if let Some(Envelope::FileChunk(c)) = envelope_of(&f.1) {
            let mut forged = c.clone();
            let mut ct = forged.sealed.ciphertext.to_vec();
            ct[0] ^= 0xff;
            forged.sealed.ciphertext = ct.into();
            let mut v = redeliver(f, &Envelope::FileChunk(forged));
            v.push(f.clone());
            return v;
        }
        vec![f.clone()]
    }));
    let (got, end) = received(&net, ids[1], 7);
    assert_eq!(end, Some(true));
    assert!(got == content);
    assert!(net.warned(ids[1], |w| matches!(
        w,
        Warning::ChunksDropped {
            last: ChunkFault::Unauthentic,
            ..
        }
    )));
}

#[test]
fn a_finished_transfers_id_cannot_be_taken_over() {
    let (mut net, ids) = room_with(&[(0, "alice"), (2, "carol")]);
    let first = pattern(1000, 1);
    send_file(&mut net, ids[0], 21, &first);
    assert_eq!(received(&net, ids[1], 21).1, Some(true));
    // dave joins later (he never saw the id) and offers his own content
    // under alice's finished id.
    let admin_key = id(4);
    let dave = net.member(member_cfg("dave", &admin_key), id(3));
    let pid = net.pending_id(0).unwrap();
    net.command(0, Command::Approve(pid));
    net.take(ids[1]);
    send_file(&mut net, dave, 21, &pattern(1000, 2));
    let ids = [ids[0], dave, ids[1]];
    assert!(!net.nodes[ids[2]]
        .files
        .iter()
        .any(|e| matches!(e, FileEvent::Incoming { .. } | FileEvent::Done { .. })));
    assert!(net.warned(ids[2], |w| matches!(
        w,
        Warning::OfferIgnored {
            why: OfferRefusal::IdInUse | OfferRefusal::IdTaken,
            ..
        }
    )));
    // Empty files hold no sending slot: nine in a row all go out.
    for t in 30..39 {
        net.command(ids[0], Command::OfferFile(spec(t, "empty", &[])));
        assert!(!net.nodes[ids[0]].engine.sending(&[t; 16]));
    }
    assert!(!net
        .take(ids[0])
        .iter()
        .any(|e| matches!(e, Event::Error { .. })));
}

/// Offers that overtake the chunks of their sender's earlier files (the
/// relay's bulk lane) wait, within bounds, and are taken up in order as
/// those files end; past the bound they are refused, and one sender never
/// holds every incoming slot.
#[test]
fn offers_overtaking_chunks_wait_within_bounds_and_are_taken_up_in_order() {
    use common::engine::files::{MAX_INCOMING_PER_SENDER, MAX_WAITING_OFFERS_PER_SENDER};
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let bob = ids[1];
    let held = hold_chunks_for(&mut net, bob);
    let big = pattern(3 * CHUNK_SIZE as usize, 1);
    let kept = MAX_INCOMING_PER_SENDER + MAX_WAITING_OFFERS_PER_SENDER;
    // Alice sends file after file; each is done on her side at once.
    for t in 0..kept + 2 {
        send_file(&mut net, ids[0], 40 + t as u8, &big);
    }
    let incoming = |net: &Net| {
        net.nodes[bob]
            .files
            .iter()
            .filter(|e| matches!(e, FileEvent::Incoming { .. }))
            .count()
    };
    assert_eq!(
        incoming(&net),
        MAX_INCOMING_PER_SENDER,
        "the first four arrive"
    );
    assert!(
        net.warned(bob, |w| matches!(
            w,
            Warning::OfferIgnored {
                why: OfferRefusal::BusySender(_),
                ..
            }
        )),
        "past the bound, offers are refused"
    );
    // The chunks come: every kept file arrives whole, in order.
    release(&mut net, &held);
    for t in 0..kept + 2 {
        let (data, done) = received(&net, bob, 40 + t as u8);
        if t < kept {
            assert_eq!(done, Some(true), "file {t} arrived");
            assert!(data == big, "file {t} whole");
        } else {
            assert_eq!(done, None, "file {t} was refused");
        }
    }
}

fn private_spec(transfer: u8, to: usize, content: &[u8]) -> FileSpec {
    FileSpec {
        to: Some(key(to).public().fingerprint()),
        ..spec(transfer, "payroll.xlsx", content)
    }
}

fn is_private_chunk(f: &RelayFrame) -> bool {
    matches!(envelope_of(f), Some(Envelope::PrivateChunk(_)))
}

fn any_file_event(net: &Net, idx: usize) -> bool {
    net.nodes[idx].files.iter().any(|e| {
        matches!(
            e,
            FileEvent::Incoming { .. }
                | FileEvent::Data { .. }
                | FileEvent::Done { .. }
                | FileEvent::Failed { .. }
        )
    })
}

#[test]
fn a_private_file_reaches_its_recipient_only() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let content = pattern(3 * CHUNK_SIZE as usize + 5, 42);
    send_offered(&mut net, alice, private_spec(60, 1, &content), &content);

    let (got, end) = received(&net, bob, 60);
    assert_eq!(end, Some(true));
    assert!(got == content, "bob has the whole file");
    assert!(net.nodes[bob].files.iter().any(|e| matches!(e,
        FileEvent::Incoming { private: true, from, .. } if from.name == "alice")));
    assert!(net.nodes[alice].files.iter().any(|e| matches!(e,
        FileEvent::Offered { to: Some(m), .. } if m.name == "bob")));
    // The admin and carol received every frame and show nothing at all:
    // no offer, no data, not even a warning.
    for i in [0, carol] {
        assert!(!any_file_event(&net, i), "node {i} saw the private file");
        assert!(net.warnings(i).is_empty(), "{:?}", net.warnings(i));
        assert!(!format!("{:?}", net.nodes[i].events).contains("payroll"));
    }
    assert!(net.warnings(bob).is_empty(), "{:?}", net.warnings(bob));
    // Chunks went as private chunks, never under the room key, and nothing
    // the relay carried holds the content or the name.
    assert_eq!(net.log.iter().filter(|(_, f)| is_chunk(f)).count(), 0);
    assert!(net.log.iter().filter(|(_, f)| is_private_chunk(f)).count() >= 4);
    for (_, f) in &net.log {
        if let RelayFrame::Deliver { payload, .. } = f {
            assert!(!contains(payload, &content[1000..1064]));
            assert!(!contains(payload, b"payroll"));
        }
    }
}

#[test]
fn a_private_file_cannot_be_forged_flipped_or_sent_the_wrong_way() {
    // A flipped byte in a private chunk: dropped with a warning, and the
    // next chunk shows the gap; no file.
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    let content = pattern(4 * CHUNK_SIZE as usize - 7, 9);
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if let Some(Envelope::PrivateChunk(mut c)) = envelope_of(&f.1) {
            if c.header.index == 1 {
                let mut ct = c.sealed.ciphertext.to_vec();
                ct[10] ^= 1;
                c.sealed.ciphertext = Bytes::from(ct);
                return redeliver(f, &Envelope::PrivateChunk(c));
            }
        }
        vec![f.clone()]
    }));
    send_offered(&mut net, alice, private_spec(61, 1, &content), &content);
    net.tamper = None;
    assert_eq!(received(&net, bob, 61).1, Some(false));
    assert!(net.warned(bob, |w| matches!(
        w,
        Warning::ChunksDropped {
            last: ChunkFault::Unauthentic,
            ..
        }
    )));

    // Private chunks re-sent as room chunks (the wrong way), and a private
    // chunk replayed: never a wrong file.
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if let Some(Envelope::PrivateChunk(c)) = envelope_of(&f.1) {
            if c.header.index == 0 {
                let mut out = redeliver(f, &Envelope::FileChunk(c));
                out.push(f.clone());
                out.push(f.clone());
                return out;
            }
        }
        vec![f.clone()]
    }));
    send_offered(&mut net, alice, private_spec(62, 1, &content), &content);
    net.tamper = None;
    let (got, end) = received(&net, bob, 62);
    assert_eq!(end, Some(true));
    assert!(got == content, "the right file, once");
    // The first frame that changed nothing is reported (the room copy,
    // which does not open under the room key); the copies right after it
    // are counted into the next report, at most one a second.
    assert!(
        net.warned(bob, |w| matches!(w, Warning::ChunksDropped { .. })),
        "{:?}",
        net.warnings(bob)
    );
}

#[test]
fn a_private_file_stops_when_its_recipient_is_removed() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob) = (ids[0], ids[1]);
    let content = pattern(6 * CHUNK_SIZE as usize, 7);
    net.command(alice, Command::OfferFile(private_spec(63, 1, &content)));
    let chunks: Vec<&[u8]> = content.chunks(CHUNK_SIZE as usize).collect();
    let chunk = |net: &mut Net, i: usize| {
        net.command(
            alice,
            Command::FileChunk {
                transfer: [63; 16],
                index: i as u32,
                data: Bytes::copy_from_slice(chunks[i]),
            },
        )
    };
    chunk(&mut net, 0);
    chunk(&mut net, 1);
    net.command(
        0,
        Command::Kick(key(1).public().fingerprint(), "bye".into()),
    );
    let mark = net.log.len();
    for i in 2..chunks.len() {
        chunk(&mut net, i);
    }
    // Nothing more was sealed for bob after the kick: the sender ended the
    // transfer instead.
    assert!(!net.log[mark..].iter().any(|(_, f)| is_private_chunk(f)));
    assert!(net.nodes[alice].files.iter().any(|e| matches!(e,
        FileEvent::Failed { transfer, reason } if *transfer == [63; 16] && reason.contains("no longer in the room"))));
    let (got, end) = received(&net, bob, 63);
    assert_eq!(got.len(), 2 * CHUNK_SIZE as usize);
    assert_ne!(end, Some(true));
}

#[test]
fn a_cancelled_private_file_ends_at_its_recipient_and_no_one_else_hears_of_it() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let content = pattern(3 * CHUNK_SIZE as usize, 1);
    net.command(alice, Command::OfferFile(private_spec(64, 1, &content)));
    net.command(
        alice,
        Command::FileChunk {
            transfer: [64; 16],
            index: 0,
            data: Bytes::copy_from_slice(&content[..CHUNK_SIZE as usize]),
        },
    );
    net.command(alice, Command::CancelFile([64; 16]));
    assert!(net.nodes[bob].files.iter().any(|e| matches!(e,
        FileEvent::Failed { transfer, reason } if *transfer == [64; 16] && reason.contains("cancelled"))));
    for i in [0, carol] {
        assert!(!any_file_event(&net, i));
        assert!(net.warnings(i).is_empty(), "{:?}", net.warnings(i));
    }
    assert!(net.nodes[alice]
        .events
        .iter()
        .all(|e| !matches!(e, Event::Error { .. })));
}

/// A rekey overtakes a file's chunks still queued for a slow receiver (the
/// relay's bulk lane): they arrive long after the previous epoch's grace,
/// from an offerer still in the room, and the file completes.
#[test]
fn chunks_held_behind_a_rekey_past_the_grace_still_complete_the_file() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let bob = ids[1];
    let held = hold_chunks_for(&mut net, bob);
    let body = pattern(3 * CHUNK_SIZE as usize, 9);
    send_file(&mut net, ids[0], 60, &body);
    // The admin rekeys; the chunks wait far past the 10 s grace.
    net.command(0, Command::Rekey);
    net.tick(30_000);
    release(&mut net, &held);
    let (data, done) = received(&net, bob, 60);
    assert_eq!(done, Some(true), "the file completed");
    assert!(data == body, "whole");
}
