//! The terminal front end shared by `teamchat-admin --cli` and
//! `teamchat-member --cli`: reads lines from stdin (commands or messages),
//! prints events as text or, with `--json`, one JSON object per line.

//!
//! This file runs the loop (stdin lines in, driver updates out);
//! `setup.rs` sets up who we are, `commands.rs` reads what is typed,
//! `printer.rs` shows what happens.

mod commands;
mod printer;
mod setup;

pub use setup::{
    default_identity_path, load_or_create_identity, passphrase, read_roster, PASSPHRASE_ENV,
};

use std::collections::HashMap;
use std::path::PathBuf;

use common::engine::{Command, Engine};
use common::invite::RelayEndpoint;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::api::{StopReason, Update};
use crate::connect::Trust;
use crate::driver;
use crate::files::FileOptions;
use commands::{parse, Parsed};
use printer::Printer;

/// Terminal options.
#[derive(Debug, Clone)]
pub struct Options {
    /// One JSON object per event on stdout.
    pub json: bool,
    /// Admin commands enabled.
    pub admin: bool,
    /// The invite, for `/invite` (admin).
    pub invite: Option<String>,
    /// Where files go, limits and pace.
    pub files: FileOptions,
    /// The encrypted local history, or none.
    pub history: Option<crate::history::HistoryOptions>,
    /// (Admin) where the per-room state (bans, run number) is kept.
    pub admin_state: Option<PathBuf>,
}

/// Runs the engine over the relays with a terminal front end until `/quit`,
/// end of input, or the driver stops. Returns why it stopped.
pub async fn run(
    engine: Engine,
    relays: Vec<RelayEndpoint>,
    trust: Trust,
    opts: Options,
) -> StopReason {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (up_tx, mut up_rx) = mpsc::channel(256);
    let driver = tokio::spawn(driver::run_with(
        engine,
        relays,
        trust,
        driver::Options {
            files: opts.files.clone(),
            history: opts.history.clone(),
            admin_state: opts.admin_state.clone(),
            liveness: driver::Liveness::default(),
        },
        cmd_rx,
        up_tx,
    ));
    let mut out = Printer {
        json: opts.json,
        members: Vec::new(),
        bans: Vec::new(),
        files: HashMap::new(),
        ended: 0,
        bars: indicatif::MultiProgress::new(),
        pending: HashMap::new(),
        failed: None,
        contacts: Vec::new(),
        show_contacts: false,
        last_bell: None,
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut cmd_tx = Some(cmd_tx);
    let mut leaving = false;
    // One listener for the whole run: a new one per turn of the loop would
    // miss a Ctrl-C that comes while the loop is busy (the handler, once
    // installed, keeps the signal from ending the process).
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // Polled once now, so that the handler is in place before anything is
    // shown (the loop polls its branches in a random order); a Ctrl-C
    // before this point ends the process at once, as it always did.
    let _ = futures_util::FutureExt::now_or_never(&mut ctrl_c);
    let stop = loop {
        tokio::select! {
            _ = tick.tick() => out.tick(),
            u = up_rx.recv() => match u {
                Some(Update::Stopped { reason }) => { out.update(&Update::Stopped { reason: reason.clone() }); break reason; }
                Some(u) => out.update(&u),
                None => break StopReason::Ended,
            },
            // Ctrl-C leaves the room cleanly, as `/quit` does: the goodbye
            // goes out and the history is written before the app exits. A
            // second Ctrl-C stops waiting for that.
            _ = &mut ctrl_c => {
                ctrl_c.set(tokio::signal::ctrl_c());
                if leaving {
                    out.note("interrupted again: leaving without waiting");
                    break StopReason::Left;
                }
                leaving = true;
                if let Some(tx) = &cmd_tx {
                    let _ = tx.send(Command::Leave.into()).await;
                }
            }
            l = lines.next_line(), if stdin_open => match l {
                Ok(Some(line)) => {
                    match parse(&line, &opts, &out) {
                        Parsed::Request(r) => {
                            // The list that answers is printed.
                            if matches!(r, crate::driver::Request::Contacts | crate::driver::Request::Verify(..)) {
                                out.show_contacts = true;
                            }
                            if let Some(tx) = &cmd_tx {
                                let _ = tx.send(r).await;
                            }
                        }
                        Parsed::Local(text) => out.note(&text),
                        Parsed::Quit => {
                            if let Some(tx) = &cmd_tx {
                                let _ = tx.send(Command::Leave.into()).await;
                            }
                        }
                        Parsed::Nothing => {}
                    }
                }
                _ => {
                    // End of input: leave the room cleanly.
                    stdin_open = false;
                    if let Some(tx) = cmd_tx.take() {
                        let _ = tx.send(Command::Leave.into()).await;
                    }
                }
            },
        }
    };
    drop(cmd_tx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), driver).await;
    stop
}

/// The apps' exit status after [`run`]: a failure is also said on stderr
/// (the terminal or JSON stream on stdout has already shown it).
pub fn exit_status(stop: &StopReason) -> std::process::ExitCode {
    if stop.is_failure() {
        eprintln!("Error: {stop}");
    }
    stop.exit_code()
}
