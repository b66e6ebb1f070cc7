//! A file transfer belongs to the member who offered it: chunks are not
//! signed (any member holds the epoch key), so what a chunk names is not
//! believed, and one that cannot be part of a transfer is dropped without
//! ending it; transfer ids are the offerer's, so no one else's offer takes
//! one over. Each attack is played through the in-memory relay, asserting
//! what the victim ends with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bytes::Bytes;
use common::crypto::seal::{seal, SealKeys};
use common::crypto::OsRng;
use common::engine::files::{CHUNK_SIZE, RECENT_IDS};
use common::engine::{Command, FileEvent};
use common::test_keys::key;
use common::wire::{
    aad, context, decode_payload, encode_payload, ChunkHeader, Envelope, EpochBody, FileChunk,
    RelayFrame, DEFAULT_MAX_FRAME,
};
use common::Fingerprint;
use support::*;

/// Sends chunk `index` of `content` (offered under `transfer`) from `from`.
fn chunk(net: &mut Net, from: usize, transfer: u8, content: &[u8], index: usize) {
    let c = content.chunks(CHUNK_SIZE as usize).nth(index).unwrap();
    net.command(
        from,
        Command::FileChunk {
            transfer: [transfer; 16],
            index: index as u32,
            data: Bytes::copy_from_slice(c),
        },
    );
}

/// Offers from whom node `idx` was shown under `transfer`.
fn offers(net: &Net, idx: usize, transfer: u8) -> Vec<String> {
    net.nodes[idx]
        .files
        .iter()
        .filter_map(|e| match e {
            FileEvent::Incoming {
                from, transfer: t, ..
            } if *t == [transfer; 16] => Some(from.name.clone()),
            _ => None,
        })
        .collect()
}

fn fp(k: usize) -> Fingerprint {
    key(k).public().fingerprint()
}

/// The keys of `epoch` as member `k` (test key number) unwraps them from
/// the epoch message the relay carried: what a malicious member holds.
fn epoch_keys(net: &Net, k: usize, epoch: u64) -> SealKeys {
    net.log
        .iter()
        .find_map(|(_, f)| {
            let Some(Envelope::Epoch(signed)) = envelope_of(f) else {
                return None;
            };
            let body: EpochBody = decode_payload(&signed.body, DEFAULT_MAX_FRAME).ok()?;
            let wrap = body.wraps.iter().find(|w| w.member == fp(k))?;
            (body.epoch == epoch).then(|| {
                common::crypto::testing::unwrap_session_key(key(k), &ROOM, epoch, &wrap.wrapped)
                    .unwrap()
                    .epoch_keys(&ROOM, epoch)
            })
        })
        .expect("the member held that epoch")
}

/// A room chunk sealed under `keys` with whatever header its maker likes.
fn forge(keys: &SealKeys, header: ChunkHeader, data: &[u8]) -> Envelope {
    let sealed = seal(&mut OsRng, keys, &aad(context::AAD_CHUNK, &header), data);
    Envelope::FileChunk(FileChunk { header, sealed })
}

/// Delivers `env` to node `to` as if from connection `from` and lets the
/// network settle.
fn inject(net: &mut Net, to: usize, from: usize, env: &Envelope) {
    let payload = encode_payload(env, DEFAULT_MAX_FRAME).unwrap().into();
    let from = net.nodes[from].conn;
    net.queue
        .push_back((to, RelayFrame::Deliver { from, payload }));
    net.run();
}

#[test]
fn chunks_that_cannot_be_the_senders_are_dropped_and_do_not_end_her_transfer() {
    // carol holds the epoch key and seals, before each of alice's chunks
    // reaches bob, one chunk that cannot be part of alice's transfer: it
    // is dropped, and alice's file still arrives whole.
    let kinds = [
        "the next index in alice's name, of the wrong size",
        "an index past the end of the file in alice's name",
        "the next index but one in carol's own name",
        "the next index but one for an epoch bob holds no key for",
        "the next index but one, failing its MAC",
    ];
    for (kind, what) in kinds.iter().enumerate() {
        let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
        let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
        let (epoch, _) = net.epoch_of(bob).unwrap();
        let keys = epoch_keys(&net, 2, epoch);
        let content = pattern(4 * CHUNK_SIZE as usize - 7, 3);
        let chunks = content.len().div_ceil(CHUNK_SIZE as usize);
        net.command(alice, Command::OfferFile(spec(7, "data.bin", &content)));
        for i in 0..chunks {
            let header = |sender: Fingerprint, index: usize| ChunkHeader {
                room: ROOM,
                epoch,
                sender,
                transfer: [7; 16],
                index: index as u32,
            };
            let full = vec![0x5a; CHUNK_SIZE as usize];
            let forged = match kind {
                0 => forge(&keys, header(fp(0), i), &[0x5a; 100]),
                1 => forge(&keys, header(fp(0), chunks + 3), &full),
                2 => forge(&keys, header(fp(2), i + 1), &full),
                3 => {
                    let mut h = header(fp(0), i + 1);
                    h.epoch = epoch + 5;
                    forge(&keys, h, &full)
                }
                _ => {
                    let Envelope::FileChunk(mut c) = forge(&keys, header(fp(0), i + 1), &full)
                    else {
                        unreachable!()
                    };
                    c.sealed.tag[0] ^= 1;
                    Envelope::FileChunk(c)
                }
            };
            inject(&mut net, bob, carol, &forged);
            chunk(&mut net, alice, 7, &content, i);
        }
        let (got, end) = received(&net, bob, 7);
        assert_eq!(end, Some(true), "{what}: alice's file did not arrive");
        assert!(got == content, "{what}: alice's bytes, exactly");
        assert!(
            net.warned(bob, |w| matches!(w, Warning::ChunksDropped { .. })),
            "{what}: {:?}",
            net.warnings(bob)
        );
    }
}

#[test]
fn a_removed_member_cannot_spoil_a_transfer_that_moved_on_to_the_new_epoch() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let content = pattern(4 * CHUNK_SIZE as usize - 7, 4);
    net.command(alice, Command::OfferFile(spec(8, "data.bin", &content)));
    chunk(&mut net, alice, 8, &content, 0);
    chunk(&mut net, alice, 8, &content, 1);
    let (old, _) = net.epoch_of(bob).unwrap();
    let old_keys = epoch_keys(&net, 2, old);
    net.command(0, Command::Kick(fp(2), "bye".into()));
    assert!(
        net.epoch_of(bob).unwrap().0 > old,
        "bob installed the epoch without carol"
    );
    chunk(&mut net, alice, 8, &content, 2);
    // Within the previous epoch's grace, carol seals the last chunk in
    // alice's name under the key she still holds: alice's transfer already
    // sends under the new epoch, so it is not hers.
    let last = content.len() - 3 * CHUNK_SIZE as usize;
    let forged = forge(
        &old_keys,
        ChunkHeader {
            room: ROOM,
            epoch: old,
            sender: fp(0),
            transfer: [8; 16],
            index: 3,
        },
        &vec![0xee; last],
    );
    inject(&mut net, bob, carol, &forged);
    chunk(&mut net, alice, 8, &content, 3);
    let (got, end) = received(&net, bob, 8);
    assert_eq!(end, Some(true), "{:?}", net.warnings(bob));
    assert!(got == content);
}

#[test]
fn a_genuinely_missing_chunk_still_ends_the_transfer_with_no_file() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    let content = pattern(4 * CHUNK_SIZE as usize - 7, 5);
    net.command(alice, Command::OfferFile(spec(9, "data.bin", &content)));
    chunk(&mut net, alice, 9, &content, 0);
    net.tamper = Some(Box::new(|f: &mut Flight| {
        if matches!(envelope_of(&f.1), Some(Envelope::FileChunk(_))) {
            vec![]
        } else {
            vec![f.clone()]
        }
    }));
    chunk(&mut net, alice, 9, &content, 1);
    net.tamper = None;
    chunk(&mut net, alice, 9, &content, 2);
    let (got, end) = received(&net, bob, 9);
    assert_eq!(end, Some(false));
    assert_eq!(
        got.len(),
        CHUNK_SIZE as usize,
        "only chunk 0 was handed over"
    );
    assert!(net.warned(bob, |w| matches!(w, Warning::FileGap { .. })));
}

#[test]
fn a_second_sender_of_a_live_transfer_id_is_refused_and_the_first_goes_on() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "carol")]);
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    let content = pattern(3 * CHUNK_SIZE as usize + 1, 6);
    // carol never sees alice's offer, so her engine lets her use its id.
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if f.0 == carol {
            vec![]
        } else {
            vec![f.clone()]
        }
    }));
    net.command(alice, Command::OfferFile(spec(20, "data.bin", &content)));
    net.tamper = None;
    chunk(&mut net, alice, 20, &content, 0);
    // carol offers her own file under the same id, sends all of it, then
    // cancels it: none of it touches alice's transfer.
    send_file(&mut net, carol, 20, &pattern(2 * CHUNK_SIZE as usize, 9));
    for i in 1..4 {
        chunk(&mut net, alice, 20, &content, i);
    }
    net.command(carol, Command::CancelFile([20; 16]));
    for who in [0, bob] {
        assert_eq!(
            offers(&net, who, 20),
            vec!["alice".to_string()],
            "node {who}"
        );
        let (got, end) = received(&net, who, 20);
        assert_eq!(end, Some(true), "node {who}: {:?}", net.warnings(who));
        assert!(got == content, "node {who}: alice's bytes, exactly");
        assert!(net.warned(who, |w| matches!(w, Warning::OfferIgnored { from, why: OfferRefusal::IdInUse | OfferRefusal::IdTaken, .. } if from == "carol")));
    }
}

#[test]
fn a_flood_of_empty_offers_does_not_free_another_senders_finished_id() {
    let (mut net, ids) = room_with(&[(0, "alice"), (1, "bob"), (2, "mallory")]);
    let (alice, bob, mallory) = (ids[0], ids[1], ids[2]);
    let first = pattern(1000, 1);
    // mallory's own app never learns the id, so it lets her use it.
    net.tamper = Some(Box::new(move |f: &mut Flight| {
        if f.0 == mallory {
            vec![]
        } else {
            vec![f.clone()]
        }
    }));
    send_file(&mut net, alice, 21, &first);
    net.tamper = None;
    assert_eq!(received(&net, bob, 21).1, Some(true));
    // mallory ends as many transfers as bob remembers ids of ...
    for n in 0..RECENT_IDS as u32 {
        let mut s = spec(0, "data.bin", &[]);
        s.transfer[..4].copy_from_slice(&n.to_be_bytes());
        s.transfer[15] = 0xfe;
        net.command(mallory, Command::OfferFile(s));
        if n % 256 == 0 {
            // The admin's beacons keep mallory current.
            net.tick(0);
        }
    }
    // ... then offers other content under alice's finished id, which
    // bob's app may still hold, waiting for Accept.
    send_file(&mut net, mallory, 21, &pattern(1000, 2));
    assert!(
        net.nodes[mallory]
            .files
            .iter()
            .any(|e| matches!(e, FileEvent::Offered { transfer, .. } if *transfer == [21; 16])),
        "mallory's offer went out"
    );
    assert_eq!(offers(&net, bob, 21), vec!["alice".to_string()]);
    let (got, end) = received(&net, bob, 21);
    assert_eq!((got, end), (first, Some(true)), "alice's file alone");
}
