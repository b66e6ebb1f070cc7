//! An in-process room on a real relay: one admin and 1 + N members, each
//! the product's engine run by the product's driver over TLS (pinned
//! certificate), exactly as the apps run them. Members join with the room
//! password, so the admin approves them without a question.
//!
//! Every driver's updates are turned into [`Note`]s (who, when, what) on
//! one bounded channel; the arrival time is taken when the driver hands the
//! update over.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use client::driver::{self, FileUpdate, Request, Trust, Update};
use client::files::FileOptions;
use common::crypto::PrivateKey;
use common::engine::admin::Admin;
use common::engine::member::Member;
use common::engine::{AdminConfig, Engine, Event, MemberConfig};
use common::invite::RelayEndpoint;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout_at;
use zeroize::Zeroizing;

/// Prefix of the benchmark's chat lines; the sequence number follows.
pub const CHAT_PREFIX: &str = "filebench ";
/// Peer index of the admin.
pub const ADMIN: usize = 0;
/// Peer index of the member that sends the file.
pub const SENDER: usize = 1;
/// Notes queued before the drivers wait for the benchmark to read them.
const NOTES: usize = 8192;
/// Commands queued for one driver.
const COMMANDS: usize = 256;
/// Updates queued from one driver.
const UPDATES: usize = 1024;

/// Something a driver reported that the benchmark cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// An epoch with this many members is installed.
    Epoch(usize),
    /// A benchmark chat line with this sequence number arrived.
    Chat(u64),
    /// A file offer arrived; `accepted`: it is saved without asking.
    Offered {
        /// Saved without asking.
        accepted: bool,
    },
    /// The sender handed the file's last chunk to the relay.
    Sent,
    /// A file arrived, verified by the engine, and was saved here.
    Saved(PathBuf),
    /// A transfer ended without a file.
    FileFailed(String),
    /// The peer lost its connection, stopped, or was removed or refused.
    Lost(String),
    /// A warning from the engine (a dropped frame, an ignored offer).
    Warning(String),
    /// A command could not be carried out.
    Error(String),
}

/// One report from one peer.
#[derive(Debug, Clone)]
pub struct Note {
    /// Peer index: [`ADMIN`], [`SENDER`], then the receivers.
    pub peer: usize,
    /// When the driver handed it over.
    pub at: Instant,
    /// What.
    pub what: What,
}

/// The keys of one run: the admin's, the sender's and the receivers'.
#[derive(Debug, Clone)]
pub struct Keys(pub Vec<Arc<PrivateKey>>);

impl Keys {
    /// Generates `count` fresh RSA keys of the product's minimum size, on
    /// blocking threads in parallel. They live in memory only.
    pub async fn generate(count: usize, deadline: tokio::time::Instant) -> Result<Keys> {
        let bits = common::crypto::keys::MIN_RSA_BITS;
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            tasks.push(tokio::task::spawn_blocking(move || {
                PrivateKey::generate(bits)
            }));
        }
        let mut keys = Vec::with_capacity(count);
        for t in tasks {
            let k = timeout_at(deadline, t)
                .await
                .context("timed out generating RSA keys")?
                .context("a key-generation thread failed")?
                .map_err(|e| anyhow!("generating an RSA key: {e}"))?;
            keys.push(Arc::new(k));
        }
        Ok(Keys(keys))
    }
}

/// How to set up one room.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The relay, pinned by its certificate.
    pub relay: RelayEndpoint,
    /// Receivers besides the sender.
    pub receivers: usize,
    /// The sender's pace, bytes per second (`None`: the product's
    /// default, as fast as the relay takes the chunks).
    pub pace: Option<u64>,
    /// Largest file the receivers take (saved without asking up to it).
    pub max_file: u64,
}

/// A running room.
#[derive(Debug)]
pub struct Room {
    /// Command channels, by peer index.
    pub cmds: Vec<mpsc::Sender<Request>>,
    /// Reports of all peers.
    pub notes: mpsc::Receiver<Note>,
    /// Download folders, by peer index (the admin's and the sender's too).
    pub dirs: Vec<TempDir>,
    tasks: Vec<JoinHandle<()>>,
}

impl Room {
    /// Peers in the room: the admin, the sender and the receivers.
    pub fn peers(&self) -> usize {
        self.cmds.len()
    }

    /// Starts the admin, waits for its first epoch, starts the members and
    /// waits until every peer holds the epoch with all of them. Fails on a
    /// lost connection, a refusal, or at `deadline`.
    pub async fn start(
        setup: &Setup,
        keys: &Keys,
        scratch: &std::path::Path,
        deadline: tokio::time::Instant,
    ) -> Result<Room> {
        let peers = setup.receivers + 2;
        if keys.0.len() < peers {
            bail!("{} keys for {peers} peers", keys.0.len());
        }
        let room_id = common::crypto::random_room_id();
        let password = room_id.to_string();
        let (note_tx, notes) = mpsc::channel(NOTES);
        let mut room = Room {
            cmds: Vec::with_capacity(peers),
            notes,
            dirs: Vec::with_capacity(peers),
            tasks: Vec::with_capacity(2 * peers),
        };
        let admin_key = Arc::clone(&keys.0[ADMIN]);
        let admin_pin = admin_key.public().fingerprint();
        let admin = Admin::new(
            AdminConfig {
                room: room_id,
                room_name: "filebench".into(),
                admin_name: "admin".into(),
                password: Some(Zeroizing::new(password.clone())),
                roster: HashSet::new(),
                rekey_after_messages: 0,
                rekey_after_ms: 0,
                state: Default::default(),
            },
            admin_key,
        );
        // The admin is in the room too but does not take the file: its
        // limit is below the file's size, so it ignores the offer (and its
        // engine ignores the chunks without opening them).
        room.spawn(
            ADMIN,
            Engine::Admin(Box::new(admin)),
            setup,
            scratch,
            1024 * 1024,
            &note_tx,
        )?;
        room.wait_epochs(&[ADMIN], 1, deadline)
            .await
            .context("waiting for the admin's first epoch")?;
        for peer in SENDER..peers {
            let name = if peer == SENDER {
                "sender".to_string()
            } else {
                format!("receiver-{}", peer - SENDER)
            };
            let member = Member::new(
                MemberConfig {
                    room: room_id,
                    admin_pin,
                    name,
                    password: Some(Zeroizing::new(password.clone())),
                    min_run: 0,
                },
                Arc::clone(&keys.0[peer]),
            );
            room.spawn(
                peer,
                Engine::Member(Box::new(member)),
                setup,
                scratch,
                setup.max_file,
                &note_tx,
            )?;
        }
        let all: Vec<usize> = (0..peers).collect();
        room.wait_epochs(&all, peers, deadline)
            .await
            .context("waiting for every member to join")?;
        Ok(room)
    }

    fn spawn(
        &mut self,
        peer: usize,
        engine: Engine,
        setup: &Setup,
        scratch: &std::path::Path,
        max_file: u64,
        notes: &mpsc::Sender<Note>,
    ) -> Result<()> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("peer{peer}-"))
            .tempdir_in(scratch)
            .context("creating a download folder")?;
        let files = FileOptions {
            download_dir: dir.path().to_path_buf(),
            max_size: max_file,
            auto_accept: max_file,
            rate: setup.pace,
        };
        let (cmd, cmd_rx) = mpsc::channel(COMMANDS);
        let (up_tx, up) = mpsc::channel(UPDATES);
        self.tasks.push(tokio::spawn(driver::run_with_files(
            engine,
            vec![setup.relay.clone()],
            Trust::Pinned,
            files,
            cmd_rx,
            up_tx,
        )));
        self.tasks.push(tokio::spawn(pump(peer, up, notes.clone())));
        self.cmds.push(cmd);
        self.dirs.push(dir);
        Ok(())
    }

    /// Waits until every peer in `who` has installed an epoch of `members`.
    async fn wait_epochs(
        &mut self,
        who: &[usize],
        members: usize,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let mut waiting: HashSet<usize> = who.iter().copied().collect();
        while !waiting.is_empty() {
            let note = match timeout_at(deadline, self.notes.recv()).await {
                Err(_) => bail!(
                    "timed out; {} peer(s) never saw {members} members",
                    waiting.len()
                ),
                Ok(None) => bail!("every driver ended"),
                Ok(Some(n)) => n,
            };
            match note.what {
                What::Epoch(n) if n == members => {
                    waiting.remove(&note.peer);
                }
                What::Lost(why) => bail!("peer {} {why}", note.peer),
                _ => {}
            }
        }
        Ok(())
    }

    /// Ends every driver (their command channels close, so they leave),
    /// waits for them a few seconds, then aborts what is left. The
    /// download folders stay until the room is dropped.
    pub async fn stop(&mut self) {
        self.cmds.clear();
        self.notes.close();
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        for t in &mut self.tasks {
            if timeout_at(until, &mut *t).await.is_err() {
                t.abort();
            }
        }
        self.tasks.clear();
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Turns one driver's updates into notes until either side ends.
async fn pump(peer: usize, mut up: mpsc::Receiver<Update>, notes: mpsc::Sender<Note>) {
    while let Some(u) = up.recv().await {
        let at = Instant::now();
        let Some(what) = what(u) else { continue };
        if notes.send(Note { peer, at, what }).await.is_err() {
            break;
        }
    }
}

/// What of an update the benchmark keeps.
fn what(u: Update) -> Option<What> {
    Some(match u {
        Update::Engine(e) => match e {
            Event::Epoch { members, .. } => What::Epoch(members.len()),
            Event::Message { text, .. } => What::Chat(chat_seq(&text)?),
            Event::Warning(w) => What::Warning(w.to_string()),
            Event::Error { reason } => What::Error(reason),
            Event::Kicked { reason } => What::Lost(format!("was removed: {reason}")),
            Event::Denied { reason } => What::Lost(format!("was refused: {reason}")),
            Event::Closed { reason } => What::Lost(format!("saw the room closed: {reason}")),
            _ => return None,
        },
        Update::Warning(reason) => What::Warning(reason),
        Update::File(f) => match f {
            FileUpdate::Offered { accepted, .. } => What::Offered { accepted },
            FileUpdate::Sent { .. } => What::Sent,
            FileUpdate::Saved { path, .. } => What::Saved(path),
            FileUpdate::Ready { .. } => {
                What::FileFailed("complete but not saved without asking".into())
            }
            FileUpdate::Failed { reason, .. } => What::FileFailed(reason),
            _ => return None,
        },
        Update::Disconnected { reason, .. } => What::Lost(format!("was disconnected: {reason}")),
        Update::Stopped { reason } => What::Lost(format!("stopped: {reason}")),
        _ => return None,
    })
}

/// The text of benchmark chat line `seq`.
pub fn chat_text(seq: u64) -> String {
    format!("{CHAT_PREFIX}{seq}")
}

/// The sequence number of a benchmark chat line, if it is one.
pub fn chat_seq(text: &str) -> Option<u64> {
    text.strip_prefix(CHAT_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_lines_carry_their_sequence_number() {
        assert_eq!(chat_seq(&chat_text(0)), Some(0));
        assert_eq!(chat_seq(&chat_text(123_456)), Some(123_456));
        assert_eq!(chat_seq("hello"), None);
        assert_eq!(chat_seq("filebench x"), None);
        assert_eq!(chat_seq("filebench 99999999999999999999999"), None);
    }

    #[test]
    fn a_disconnect_is_a_loss_and_progress_is_ignored() {
        let lost = what(Update::Disconnected {
            reason: "relay closed".into(),
            relay_code: None,
            retry_in: Duration::from_millis(500),
        });
        assert!(matches!(lost, Some(What::Lost(r)) if r.contains("relay closed")));
        assert_eq!(
            what(Update::File(FileUpdate::Progress {
                transfer: [0; 16],
                done: 1,
                total: 2,
                outgoing: false,
            })),
            None
        );
    }
}
