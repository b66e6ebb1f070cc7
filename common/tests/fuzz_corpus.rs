//! The fuzz corpus in the ordinary test suite.
//!
//! - `committed_corpus_replays_cleanly` runs every input under
//!   `fuzz/corpus/<target>/` (the seeds, what the fuzzer kept, and every
//!   crash once found, which stays there as a regression) through the same
//!   entry points the libFuzzer targets call: on stable Rust, in CI, on
//!   every run.
//! - `record_seed_corpus` (ignored; `scripts/fuzz.sh --record` runs it)
//!   writes the seed corpus: real frames recorded from a room of this suite
//!   (admin, two members, messages, a private message, a file, a removal, a
//!   new epoch, beacons), identity files, and invites.
//!
//! The client runtime's targets (history rows, admin state, file names)
//! are replayed and seeded by `common/client/tests/fuzz_corpus.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use common::engine::Command;
use common::fuzzing;
use common::invite::{Host, Invite, RelayEndpoint};
use common::wire::{
    decode_payload, encode_frame, encode_payload, ClientFrame, Envelope, ErrorCode, RelayError,
    RelayFrame, Signed, Welcome, DEFAULT_MAX_FRAME,
};
use support::*;

/// The decoders' targets, each with its entry point (the engines target
/// takes structured input and lives in the fuzz crate only).
const TARGETS: [(&str, fuzzing::EntryPoint); 5] = [
    ("relay_client_frames", fuzzing::relay_client_frames),
    ("relay_frames", fuzzing::relay_frames),
    ("envelope", fuzzing::envelope),
    ("invite", fuzzing::invite),
    ("identity", |d| {
        fuzzing::identity(d);
    }),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn committed_corpus_replays_cleanly() {
    fuzzing::replay_corpus(&corpus_dir(), &TARGETS);
}

/// The identity seeds, made as TeamChat writes the files, are read back: a
/// seed that no longer opens would fuzz only the rejection path.
#[test]
fn seeds_from_real_files_are_accepted() {
    for (what, pem) in identity_seeds(&id(3)) {
        assert!(fuzzing::identity(pem.as_bytes()), "{what} is refused");
    }
}

/// Identity files of `key` as TeamChat writes them: plain, and encrypted
/// (with fewer PBKDF2 rounds than the 600,000 the app uses, so the fuzzer
/// can afford to decrypt it).
fn identity_seeds(key: &common::crypto::PrivateKey) -> Vec<(&'static str, String)> {
    use rsa::pkcs8::der::pem::{LineEnding, PemLabel};
    use rsa::pkcs8::{pkcs5::pbes2, EncryptedPrivateKeyInfo, PrivateKeyInfo, SecretDocument};
    let plain = common::identity::encode_pem(key, None).unwrap();
    let (_, doc) = SecretDocument::from_pem(&plain).unwrap();
    let info = PrivateKeyInfo::try_from(doc.as_bytes()).unwrap();
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &[7; 16], &[9; 16]).unwrap();
    let encrypted = info
        .encrypt_with_params(params, b"fuzz passphrase")
        .unwrap()
        .to_pem(EncryptedPrivateKeyInfo::PEM_LABEL, LineEnding::LF)
        .unwrap();
    vec![
        ("a plain identity", plain.to_string()),
        ("an encrypted identity", encrypted.to_string()),
    ]
}

/// Frames as a connection carries them: a length prefix and the body, after
/// the byte the stream targets read as their split size.
fn framed<T: serde::Serialize>(split: u8, frames: &[T]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[split]);
    for f in frames {
        encode_frame(f, DEFAULT_MAX_FRAME, &mut out).unwrap();
    }
    out.to_vec()
}

/// What the envelope target reads: a kind byte, then the bytes.
fn kind(k: u8, bytes: &[u8]) -> Vec<u8> {
    [&[k][..], bytes].concat()
}

#[test]
#[ignore = "writes fuzz/corpus/; run by scripts/fuzz.sh --record"]
fn record_seed_corpus() {
    let mut seeds: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    let mut add = |target: &'static str, bytes: Vec<u8>| {
        seeds.entry(target).or_default().push(bytes);
    };

    // A room of the suite, with a bit of everything on the wire.
    let (mut net, ids) = room_with(&[(1, "alice"), (2, "bob")]);
    let (alice, bob) = (ids[0], ids[1]);
    net.command(alice, Command::Send("hello, room".into()));
    net.command(bob, Command::Send("ünïcødé and a longer line ".repeat(8)));
    let bob_fp = id(2).public().fingerprint();
    net.command(alice, Command::Private(bob_fp, "just for you".into()));
    send_file(&mut net, alice, 1, &pattern(3000, 7));
    net.tick(6_000);
    net.command(0, Command::Kick(bob_fp, "bye".into()));
    net.command(0, Command::Rekey);
    net.command(alice, Command::Send("after the rekey".into()));
    net.tick(6_000);

    let payloads: Vec<Bytes> = net
        .log
        .iter()
        .filter_map(|(_, f)| match f {
            RelayFrame::Deliver { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect();
    assert!(payloads.len() > 10, "the room said too little");

    // The relay's input: a hello, then publishes (one stream per payload,
    // and one stream of the first few together).
    let mut m = common::engine::member::Member::new(member_cfg("carol", &id(4)), id(3));
    let hello = m.on_connected(0);
    let Some(common::engine::Action::Send(hello @ ClientFrame::Hello(_))) = hello.first() else {
        panic!("no hello");
    };
    let hello_body = encode_payload(hello, 1024).unwrap();
    add("relay_client_frames", hello_body);
    let publishes: Vec<ClientFrame> = payloads
        .iter()
        .map(|p| ClientFrame::Publish {
            to: None,
            payload: p.clone(),
        })
        .collect();
    let mut first = vec![hello.clone()];
    first.extend(publishes.iter().take(4).cloned());
    first.push(ClientFrame::Ping(7));
    add("relay_client_frames", framed(63, &first));
    for (i, p) in publishes.iter().enumerate() {
        add(
            "relay_client_frames",
            framed(i as u8, std::slice::from_ref(p)),
        );
    }

    // The clients' input: a welcome, peers, deliveries, an error.
    let mut frames = vec![
        RelayFrame::Welcome(Welcome {
            version: 1,
            conn_id: 101,
            peers: vec![102, 103],
            max_frame: DEFAULT_MAX_FRAME as u32,
        }),
        RelayFrame::PeerJoined(104),
        RelayFrame::PeerLeft(102),
        RelayFrame::Ping(9),
        RelayFrame::Error(RelayError {
            code: ErrorCode::BadFrame,
            message: "malformed frame".into(),
        }),
    ];
    add("relay_frames", framed(5, &frames));
    for (i, p) in payloads.iter().enumerate() {
        frames.push(RelayFrame::Deliver {
            from: 102,
            payload: p.clone(),
        });
        add("relay_frames", framed(i as u8, &frames[frames.len() - 1..]));
    }

    // End to end: each envelope, and each signed body by its own kind.
    for p in &payloads {
        add("envelope", kind(0, p));
        add("envelope", kind(10, p));
        let env: Envelope = decode_payload(p, DEFAULT_MAX_FRAME).unwrap();
        let signed: Option<(u8, &Signed)> = match &env {
            Envelope::Announce(s) => Some((2, s)),
            Envelope::Epoch(s) => Some((3, s)),
            Envelope::Notice(s) => Some((4, s)),
            Envelope::Beacon(s) => Some((5, s)),
            _ => None,
        };
        if let Some((k, s)) = signed {
            add(
                "envelope",
                kind(1, &encode_payload(s, DEFAULT_MAX_FRAME).unwrap()),
            );
            add("envelope", kind(k, &s.body));
        }
    }

    // Invites, as the admin prints them and as people mangle them.
    let endpoint = |host: Host, port: u16, cert: u8| RelayEndpoint {
        host,
        port,
        cert: common::Fingerprint([cert; 32]),
    };
    let invite = Invite::new(
        vec![
            endpoint(Host::Name("chat.example.org".into()), 7443, 1),
            endpoint(Host::V4("203.0.113.7".parse().unwrap()), 443, 2),
            endpoint(Host::V6("2001:db8::7".parse().unwrap()), 7444, 3),
        ],
        ROOM,
        id(4).public().fingerprint(),
    )
    .unwrap();
    let text = invite.to_string();
    add("invite", text.clone().into_bytes());
    add("invite", format!("  {text}\n").into_bytes());
    add("invite", text.to_uppercase().into_bytes());
    add("invite", b"[::1]:7443".to_vec());
    add("invite", b"relay.example.org".to_vec());

    // Identity files: a key as saved, plain and encrypted, and PKCS#1. The
    // key is made for the corpus and used nowhere else (not a test key of
    // target/test-keys, which never leave the machine).
    let throwaway = common::crypto::PrivateKey::generate(common::crypto::MIN_RSA_BITS).unwrap();
    for (_, pem) in identity_seeds(&throwaway) {
        add("identity", pem.clone().into_bytes());
        add(
            "identity",
            pem.replace("PRIVATE KEY", "RSA PRIVATE KEY").into_bytes(),
        );
    }

    fuzzing::write_seeds(&corpus_dir(), &seeds);
}
