//! `teamchat-member`: joins a room with an invite, shows the admin's safety
//! code, and chats once approved. Terminal mode (`--cli`, `--json`); the
//! Slint window comes with the GUI release.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;
use common::driver::Trust;
use common::engine::member::Member;
use common::engine::{Engine, MemberConfig};
use common::invite::Invite;
use common::terminal::{self, default_identity_path, load_or_create_identity, Options};
use zeroize::Zeroizing;

/// TeamChat member: join an end-to-end encrypted room with an invite.
#[derive(Debug, Parser)]
#[command(name = "teamchat-member", version, about)]
struct Args {
    /// Terminal mode (the default until the GUI release).
    #[arg(long)]
    cli: bool,
    /// Print one JSON object per event on stdout (for scripts).
    #[arg(long)]
    json: bool,
    /// The invite from the admin (teamchat://...).
    #[arg(long, env = "TEAMCHAT_INVITE")]
    invite: String,
    /// Your display name.
    #[arg(long)]
    name: String,
    /// The room password, if the admin gave you one (approves you at once).
    #[arg(long, env = "TEAMCHAT_ROOM_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Verify the relay against this CA certificate instead of the invite's pin.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Identity key file [default: member-identity.pem in the data directory].
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let invite: Invite = args.invite.parse().context("the invite")?;
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
    let cfg = MemberConfig {
        room: invite.room,
        admin_pin: invite.admin,
        name: args.name,
        password: args.password.map(Zeroizing::new),
    };
    let engine = Engine::Member(Box::new(Member::new(cfg, Arc::new(key))));
    let trust = args.ca.map(Trust::CaFile).unwrap_or(Trust::Pinned);
    let opts = Options {
        json: args.json,
        admin: false,
        invite: None,
    };
    let _ = args.cli;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let last = rt.block_on(terminal::run(engine, invite.relays().to_vec(), trust, opts));
    if last.contains("does not match") || last.contains("CA file") {
        bail!("{last}");
    }
    Ok(())
}
