//! Writes what a member who lives in TeamChat has on disk, for
//! `scripts/bench-gui.sh`: an identity, and a history database holding
//! ROOMS remembered rooms (on the relay at RELAY, pinned to CERT) with
//! LINES kept lines each, the newest at now.
//!
//!   cargo run --release -p ui --example gui_fixture -- DIR RELAY CERT [ROOMS] [LINES]
//!
//! writes DIR/member.pem (test key 1, no passphrase) and
//! DIR/history.sqlite3. The rooms' admin is test key 4.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use client::history::{Entry, EntryKind, History, HistoryOptions, KeptRoom, Retention, RoomBook};
use common::invite::{relays_from, Invite};
use common::{identity, test_keys, RoomId};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, relay, cert, rest @ ..] = args.as_slice() else {
        return Err("usage: gui_fixture DIR RELAY CERT [ROOMS] [LINES]".into());
    };
    let rooms: u8 = rest.first().map_or(Ok(10), |r| r.parse())?;
    let lines: u64 = rest.get(1).map_or(Ok(10_000), |l| l.parse())?;
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir)?;
    let me = test_keys::key(1);
    identity::save(&dir.join("member.pem"), me, None)?;
    let pin = client::driver::cert_file_fingerprint(std::path::Path::new(cert))?;
    let relays = relays_from(relay, &[pin])?;
    let opts = HistoryOptions {
        path: dir.join("history.sqlite3"),
        retention: Retention {
            max_rows: lines.max(1),
            ..Retention::default()
        },
    };
    let admin = test_keys::key(4).public().fingerprint();
    let bob = test_keys::key(2).public().fingerprint();
    let now = client::now_ms();
    let mut kept = Vec::new();
    for r in 1..=rooms {
        let room = RoomId([r; 16]);
        let mut h = History::open(&opts, me, &room)?;
        let entries: Vec<Entry> = (0..lines)
            .map(|i| Entry {
                at_ms: now - (lines - i) * 1000,
                kind: EntryKind::Message,
                who: "bob".into(),
                fingerprint: Some(bob.0),
                text: format!(
                    "line {i} in room {r}: the quick brown fox jumps over the lazy dog, status update"
                ),
                path: None,
            })
            .collect();
        for chunk in entries.chunks(1000) {
            h.add_all(chunk)?;
        }
        kept.push(KeptRoom {
            room,
            invite: Invite::new(relays.clone(), room, admin)?.to_string(),
            name: format!("room {r}"),
            my_name: "wendy".into(),
            notify: "mentions".into(),
            admin: false,
            roster: Vec::new(),
        });
    }
    RoomBook::open(&opts, me, "member")?.keep(&kept)?;
    println!("{} rooms x {lines} lines in {}", rooms, opts.path.display());
    Ok(())
}
