//! The decoders' fuzz entry points (feature `test-support`).
//!
//! Each function takes bytes as an attacker could hand them to TeamChat
//! (from the relay, from another member, from a file on disk), runs them
//! through the decoder the product itself uses, and checks what must hold
//! of any result: a value that decodes re-encodes to something that decodes
//! to the same value, and a sanitised name is safe. A broken property
//! panics: that panic is the finding. Anything else, however malformed,
//! must come back as an error.
//!
//! The libFuzzer targets in `fuzz/` call these; so does
//! `common/tests/fuzz_corpus.rs`, which replays the committed corpus (and
//! every crash once found) in the ordinary test suite, on stable Rust.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use bytes::BytesMut;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::codec::Decoder;

use crate::wire::{
    decode_payload, encode_payload, peek_hello_version, Announce, Beacon, ChatBody, ClientFrame,
    Envelope, EpochBody, FrameCodec, JoinInfo, Notice, PrivateHeader, RelayFrame, Roster, Signed,
    DEFAULT_MAX_FRAME, MAX_HELLO,
};

/// A decoded value must survive an encode and a decode unchanged.
fn assert_roundtrip<T>(value: &T, max: usize)
where
    T: Serialize + DeserializeOwned + PartialEq,
{
    let again = encode_payload(value, max).expect("a decoded value re-encodes");
    let back: T = decode_payload(&again, max).expect("a re-encoded value decodes");
    assert!(back == *value, "decode(encode(v)) != v");
}

/// Decodes `bytes` as `T` under `max`, checking the round trip of what
/// decodes.
fn roundtrip<T>(bytes: &[u8], max: usize) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq,
{
    let value: T = decode_payload(bytes, max).ok()?;
    assert_roundtrip(&value, max);
    Some(value)
}

/// Feeds `data` to a frame codec in pieces whose sizes come from the data
/// itself, as TCP might split it, until it errors or runs dry.
fn stream<T>(data: &[u8], max: usize)
where
    T: Serialize + DeserializeOwned + PartialEq,
{
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(split % 64) + 1;
    let mut codec = FrameCodec::<T>::new(max);
    let mut buf = BytesMut::new();
    for piece in data.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => assert_roundtrip(&frame, max),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        // Never more buffered than one frame and its prefix.
        assert!(
            buf.len() <= max + 4 + step,
            "codec kept {} bytes",
            buf.len()
        );
    }
}

/// What a client sends the relay: the hello as the relay reads it, then
/// the frame stream under the default limit.
pub fn relay_client_frames(data: &[u8]) {
    if data.len() <= MAX_HELLO {
        let _ = peek_hello_version(data);
        let _ = roundtrip::<ClientFrame>(data, MAX_HELLO);
    }
    stream::<ClientFrame>(data, DEFAULT_MAX_FRAME);
}

/// What the relay sends a client: the frame stream under the default limit.
pub fn relay_frames(data: &[u8]) {
    stream::<RelayFrame>(data, DEFAULT_MAX_FRAME);
}

/// Every end-to-end structure a client decodes, chosen by the first byte:
/// the envelope the relay carries, and each body that arrives signed or
/// sealed (a key holder can put any bytes there).
pub fn envelope(data: &[u8]) {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let max = DEFAULT_MAX_FRAME;
    match kind % 11 {
        0 => {
            // The body of a signed envelope is itself decoded.
            match roundtrip::<Envelope>(bytes, max) {
                Some(Envelope::Announce(s)) => drop(roundtrip::<Announce>(&s.body, max)),
                Some(Envelope::Epoch(s)) => drop(roundtrip::<EpochBody>(&s.body, max)),
                Some(Envelope::Notice(s)) => drop(roundtrip::<Notice>(&s.body, max)),
                Some(Envelope::Beacon(s)) => drop(roundtrip::<Beacon>(&s.body, max)),
                _ => {}
            }
        }
        1 => drop(roundtrip::<Signed>(bytes, max)),
        2 => drop(roundtrip::<Announce>(bytes, max)),
        3 => drop(roundtrip::<EpochBody>(bytes, max)),
        4 => drop(roundtrip::<Notice>(bytes, max)),
        5 => drop(roundtrip::<Beacon>(bytes, max)),
        6 => drop(roundtrip::<JoinInfo>(bytes, max)),
        7 => drop(roundtrip::<ChatBody>(bytes, max)),
        8 => drop(roundtrip::<PrivateHeader>(bytes, max)),
        // A roster is decoded without a limit of its own (its parts are
        // bounded): the same here.
        9 => drop(roundtrip::<Roster>(bytes, usize::MAX)),
        _ => drop(roundtrip::<Envelope>(bytes, max)),
    }
}

/// A pasted invite: if it parses, printing it gives a string that parses
/// to the same invite.
pub fn invite(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(inv) = text.parse::<crate::invite::Invite>() {
        let printed = inv.to_string();
        let back: crate::invite::Invite = printed
            .parse()
            .unwrap_or_else(|e| panic!("a printed invite does not parse: {e}"));
        assert_eq!(back, inv, "parse(print(invite)) != invite");
    }
    let _ = crate::invite::parse_host_port(text);
}

/// Most PBKDF2 rounds the identity target lets a file ask for when it
/// tries the passphrase. The product accepts up to
/// [`crate::identity::MAX_PBKDF2_ITERATIONS`] (10 million: seconds of work,
/// on the user's own file, and `key_files.rs` checks the bound); under the
/// fuzzer's instrumentation that is minutes per input, which would be
/// reported as a timeout. Above this, the target reads the file without a
/// passphrase only.
const FUZZ_MAX_ITERATIONS: u32 = 100_000;

/// An identity file (PKCS#8 PEM, plain or encrypted), read without a
/// passphrase and with one. Returns whether it gave a key.
pub fn identity(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let path = Path::new("fuzz.pem");
    let plain = crate::identity::decode_pem(path, text, None).is_ok();
    if crate::identity::kdf_iterations(text).is_some_and(|n| n > FUZZ_MAX_ITERATIONS) {
        return plain;
    }
    crate::identity::decode_pem(path, text, Some(b"fuzz passphrase")).is_ok() || plain
}

/// A target's entry point, its result (if any) ignored.
pub type EntryPoint = fn(&[u8]);

/// Runs every input committed under `corpus/<target>/` through its entry
/// point (the ordinary test suites call this on stable Rust), and prints
/// how many each target had. Panics on an empty target directory: a
/// target without a corpus would replay nothing and pass.
pub fn replay_corpus(corpus: &Path, targets: &[(&str, EntryPoint)]) {
    let mut total = 0;
    for (target, run) in targets {
        let dir = corpus.join(target);
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{target}: no corpus committed");
        for f in &files {
            run(&std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
        }
        println!("fuzz corpus {target}: {} inputs replayed", files.len());
        total += files.len();
    }
    println!("fuzz corpus: {total} inputs replayed in all");
}

/// Writes seed inputs under `corpus/<target>/`, each named by the first 40
/// hex digits of its SHA-256 (as cargo fuzz names its own finds).
pub fn write_seeds(corpus: &Path, seeds: &std::collections::BTreeMap<&str, Vec<Vec<u8>>>) {
    use sha2::{Digest, Sha256};
    let mut written = 0;
    for (target, inputs) in seeds {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for bytes in inputs {
            let name = hex::encode(Sha256::digest(bytes));
            std::fs::write(dir.join(&name[..40]), bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            written += 1;
        }
        println!("seed corpus {target}: {} inputs", inputs.len());
    }
    println!("seed corpus: {written} inputs written");
}
