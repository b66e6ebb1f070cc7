//! `teamchat-admin`: opens a room on a relay, gives the invite, approves
//! who may join, and chats. A window by default; `--cli` (and `--json`) for
//! the terminal.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;
use client::driver::{cert_file_fingerprint, Trust};
use client::terminal::{
    self, default_identity_path, load_or_create_identity, read_roster, Options, RoomStart,
};
use common::engine::admin::Admin;
use common::engine::{AdminConfig, Engine};
use common::invite::{relays_from, Invite};
use common::{Fingerprint, RoomId};
use zeroize::Zeroizing;

/// TeamChat admin: open an end-to-end encrypted room on a relay, approve
/// members, and chat. Prints the invite to give to members.
#[derive(Debug, Parser)]
#[command(name = "teamchat-admin", version, about)]
struct Args {
    /// Terminal mode instead of the window.
    #[arg(long)]
    cli: bool,
    /// Terminal mode printing one JSON object per event on stdout (for scripts).
    #[arg(long)]
    json: bool,
    /// Window: open the room at once with the values given, without waiting
    /// for the Open button.
    #[arg(long)]
    open: bool,
    /// The relay, HOST:PORT; several relays sharing rooms (over NATS) as
    /// HOST:PORT,HOST:PORT,… in order of preference: the invite names them
    /// all and the apps try them in turn.
    #[arg(long, env = "TEAMCHAT_RELAY", default_value = "127.0.0.1:7443")]
    relay: String,
    /// The relay's certificate (PEM): its SHA-256 is pinned in the invite.
    /// With several relays: one file for all, or FILE,FILE,… one per relay.
    #[arg(
        long,
        env = "TEAMCHAT_RELAY_CERT",
        value_name = "FILE",
        value_delimiter = ','
    )]
    relay_cert: Vec<PathBuf>,
    /// The relay certificate's SHA-256 (64 hex), instead of --relay-cert
    /// (with several relays: one for all, or one per relay, comma-separated).
    #[arg(long, value_name = "SHA256", value_delimiter = ',')]
    relay_pin: Vec<Fingerprint>,
    /// Verify the relay against this CA certificate instead of the pin.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Room password: members who prove it are approved automatically.
    #[arg(long, env = "TEAMCHAT_ROOM_PASSWORD", hide_env_values = true)]
    room_password: Option<String>,
    /// File of member fingerprints (64 hex, one per line) approved automatically.
    #[arg(long, value_name = "FILE")]
    roster: Option<PathBuf>,
    /// The room's name (members see it; the relay never does).
    #[arg(long, default_value = "TeamChat room")]
    room_name: String,
    /// Your display name.
    #[arg(long, default_value = "admin")]
    name: String,
    /// Room id (32 hex); random if not given.
    #[arg(long)]
    room: Option<RoomId>,
    /// Identity key file [default: admin-identity.pem in the data directory].
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Start a new epoch after this many messages (0: never).
    #[arg(long, default_value_t = 1000)]
    rekey_messages: u64,
    /// Start a new epoch after this many minutes (0: never).
    #[arg(long, default_value_t = 60)]
    rekey_minutes: u64,
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
    let pins: Vec<Fingerprint> = match (args.relay_pin.is_empty(), args.relay_cert.is_empty()) {
        (false, _) => args.relay_pin.clone(),
        (true, false) => args
            .relay_cert
            .iter()
            .map(|p| cert_file_fingerprint(p).map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?,
        (true, true) => bail!("give the relay's certificate with --relay-cert FILE (or its SHA-256 with --relay-pin): it goes into the invite"),
    };
    let relays =
        relays_from(&args.relay, &pins).with_context(|| format!("bad --relay {}", args.relay))?;
    let path = args
        .identity
        .clone()
        .unwrap_or_else(|| default_identity_path("admin"));
    let (key, notes) = load_or_create_identity(&path).context("identity")?;
    for n in notes {
        eprintln!("{n}");
    }
    let key = Arc::new(key);
    let (me, identity) = (key.public().clone(), key.clone());
    let roster: HashSet<Fingerprint> = match &args.roster {
        Some(p) => read_roster(p)
            .map_err(anyhow::Error::msg)?
            .into_iter()
            .collect(),
        None => HashSet::new(),
    };
    // What this room kept from earlier runs (bans), with the next run
    // number, is written before anything is announced; the same for each
    // room `/open` opens on the same relays (with the roster, without the
    // first room's password: `/password` sets one).
    let state_dir = client::admin_state::folder_for(&path);
    let (rekey_after_messages, rekey_after_ms) = (
        args.rekey_messages,
        args.rekey_minutes.saturating_mul(60_000),
    );
    let admin_name = args.name.clone();
    let room_relays = relays.clone();
    let open = move |room: RoomId, room_name: String, password: Option<Zeroizing<String>>| {
        let invite = Invite::new(room_relays.clone(), room, key.public().fingerprint())
            .map_err(|e| format!("cannot make the invite: {e}"))?;
        let state = client::admin_state::StateFile::new(&state_dir, &key, &room)
            .begin_run(client::now_ms())
            .map_err(|e| format!("the room's kept state: {e}"))?;
        let cfg = AdminConfig {
            room,
            room_name: room_name.clone(),
            admin_name: admin_name.clone(),
            password,
            roster: roster.clone(),
            rekey_after_messages,
            rekey_after_ms,
            state,
        };
        Ok::<_, String>(RoomStart {
            engine: Engine::Admin(Box::new(Admin::new(cfg, key.clone()))),
            relays: room_relays.clone(),
            invite: Some(invite.to_string()),
            admin_state: Some(state_dir.clone()),
            name: Some(room_name),
        })
    };
    let room = args.room.unwrap_or_else(common::crypto::random_room_id);
    let first = open(room, args.room_name, args.room_password.map(Zeroizing::new))
        .map_err(anyhow::Error::msg)?;
    let invite_text = first.invite.clone().unwrap_or_default();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"type": "invite", "invite": invite_text, "fingerprint": me.fingerprint().to_string(), "safety_code": me.safety_code().to_string()})
        );
    } else {
        println!("invite (give this to members): {invite_text}");
        println!("your safety code: {}", me.safety_code());
    }
    let opener: terminal::Opener = Box::new(move |name: &str| {
        let name = match name.trim() {
            "" => "TeamChat room",
            name => name,
        };
        open(common::crypto::random_room_id(), name.to_string(), None)
    });
    let trust = args.ca.map(Trust::CaFile).unwrap_or(Trust::Pinned);
    let opts = Options {
        json: args.json,
        admin: true,
        files: args.files.options(),
        history: args.history.options("admin"),
        identity: Some(identity),
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

/// The window: the open-room form is filled from the arguments (and the
/// last values used), then the room.
fn gui(args: Args) -> Result<()> {
    let settings_path = ui::settings::default_path();
    let remembered = ui::settings::load(&settings_path);
    let join = |items: Vec<String>| items.join(",");
    let relay_cert = match (args.relay_pin.is_empty(), args.relay_cert.is_empty()) {
        (false, _) => join(args.relay_pin.iter().map(|p| p.to_string()).collect()),
        (true, false) => join(
            args.relay_cert
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        ),
        (true, true) => remembered
            .relay_cert
            .clone()
            .or_else(|| {
                let local = PathBuf::from("certs/relay.crt");
                local.exists().then(|| local.display().to_string())
            })
            .unwrap_or_default(),
    };
    let relay_given = std::env::args().any(|a| a.starts_with("--relay="))
        || std::env::args().any(|a| a == "--relay")
        || std::env::var_os("TEAMCHAT_RELAY").is_some();
    let relay = if relay_given {
        args.relay.clone()
    } else {
        remembered.relay.clone().unwrap_or(args.relay.clone())
    };
    let name = if args.name == "admin" {
        remembered.name.clone().unwrap_or(args.name.clone())
    } else {
        args.name.clone()
    };
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| default_identity_path("admin"));
    let opts = ui::admin::AdminOptions {
        relay,
        relay_cert,
        room_name: args.room_name,
        name,
        room_password: args.room_password.map(Zeroizing::new),
        roster: args.roster,
        identity: identity.clone(),
        room: args.room,
        ca: args.ca,
        rekey_after_messages: args.rekey_messages,
        rekey_after_ms: args.rekey_minutes.saturating_mul(60_000),
        open_now: args.open,
        settings: Some(settings_path),
    };
    let driver = client::driver::Options {
        files: args.files.options(),
        history: args.history.options("admin"),
        admin_state: Some(client::admin_state::folder_for(&identity)),
        liveness: client::driver::Liveness::default(),
    };
    ui::admin::run(opts, driver).map_err(|e| {
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
        relay::testing::assert_app_flags_exist(&workspace, "admin", &Args::command());
    }
}
