//! `teamchat-member`: joins a room with an invite, shows the admin's safety
//! code, and chats once approved. A window by default; `--cli` (and
//! `--json`) for the terminal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;
use client::driver::Trust;
use client::terminal::{self, default_identity_path, load_or_create_identity, Options, RoomStart};
use common::engine::member::Member;
use common::engine::{Engine, MemberConfig};
use common::invite::Invite;
use zeroize::Zeroizing;

/// TeamChat member: join an end-to-end encrypted room with an invite.
#[derive(Debug, Parser)]
#[command(name = "teamchat-member", version, about)]
struct Args {
    /// Terminal mode instead of the window.
    #[arg(long)]
    cli: bool,
    /// Terminal mode printing one JSON object per event on stdout (for scripts).
    #[arg(long)]
    json: bool,
    /// Window: join at once with the invite and name given, without waiting
    /// for the Join button.
    #[arg(long)]
    join: bool,
    /// The invite from the admin (teamchat://...). Required in the terminal.
    #[arg(long, env = "TEAMCHAT_INVITE")]
    invite: Option<String>,
    /// Your display name. Required in the terminal.
    #[arg(long)]
    name: Option<String>,
    /// The room password, if the admin gave you one (approves you at once).
    #[arg(long, env = "TEAMCHAT_ROOM_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Verify the relay against this CA certificate instead of the invite's pin.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Identity key file [default: member-identity.pem in the data directory].
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    #[command(flatten)]
    files: client::files::FileArgs,
    #[command(flatten)]
    history: client::history::HistoryArgs,
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    if !(args.cli || args.json) {
        return gui(args).map(|()| ExitCode::SUCCESS);
    }
    let Some(invite) = &args.invite else {
        bail!("give the invite with --invite (or TEAMCHAT_INVITE)");
    };
    let Some(name) = args.name.clone() else {
        bail!("give your display name with --name");
    };
    let invite: Invite = invite.parse().context("the invite")?;
    let name = name.clone();
    let path = args
        .identity
        .clone()
        .unwrap_or_else(|| default_identity_path("member"));
    let (key, notes) = load_or_create_identity(&path).context("identity")?;
    for n in notes {
        eprintln!("{n}");
    }
    if !args.json {
        println!("your safety code: {}", key.public().safety_code());
    }
    let key = Arc::new(key);
    // The first room, and one more for each `/join INVITE [PASSWORD]`,
    // under the same identity and name.
    let me = key.clone();
    let room = move |invite: Invite, password: Option<String>| RoomStart {
        engine: Engine::Member(Box::new(Member::new(
            MemberConfig {
                room: invite.room,
                admin_pin: invite.admin,
                name: name.clone(),
                password: password.map(Zeroizing::new),
                min_run: 0,
            },
            me.clone(),
        ))),
        relays: invite.relays().to_vec(),
        invite: None,
        admin_state: None,
        name: None,
    };
    let first = room(invite, args.password);
    let opener: terminal::Opener = Box::new(move |what: &str| {
        let (invite, password) = match what.split_once(char::is_whitespace) {
            Some((invite, password)) => (invite, Some(password.trim().to_string())),
            None => (what, None),
        };
        let invite: Invite = invite
            .parse()
            .map_err(|e| format!("that invite cannot be read: {e}"))?;
        Ok(room(invite, password))
    });
    let trust = args.ca.map(Trust::CaFile).unwrap_or(Trust::Pinned);
    let opts = Options {
        json: args.json,
        admin: false,
        files: args.files.options(),
        history: args.history.options("member"),
        identity: Some(key),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop = rt.block_on(terminal::run(first, opener, trust, opts));
    // The terminal reads stdin on a blocking thread that may be waiting for a
    // line: do not wait for it (the history is written before `run` ends).
    rt.shutdown_background();
    Ok(terminal::exit_status(&stop))
}

/// The window: the join form is filled from the arguments, then the room.
fn gui(args: Args) -> Result<()> {
    let opts = ui::member::MemberOptions {
        invite: args.invite,
        name: args.name,
        password: args.password.map(Zeroizing::new),
        identity: args
            .identity
            .unwrap_or_else(|| default_identity_path("member")),
        ca: args.ca,
        join_now: args.join,
        settings: Some(ui::settings::default_path()),
    };
    let driver = client::driver::Options {
        files: args.files.options(),
        history: args.history.options("member"),
        admin_state: None,
        liveness: client::driver::Liveness::default(),
    };
    ui::member::run(opts, driver).map_err(|e| {
        anyhow::anyhow!("cannot open the window: {e} (no display? `--cli` runs in the terminal)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag a message of this app names exists.
    #[test]
    fn every_flag_a_message_names_exists() {
        use clap::CommandFactory;
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        relay::testing::assert_app_flags_exist(&workspace, "member", &Args::command());
    }
}
