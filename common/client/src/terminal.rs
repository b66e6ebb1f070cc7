//! The terminal front end shared by `teamchat-admin --cli` and
//! `teamchat-member --cli`: reads lines from stdin (commands or messages),
//! prints events as text or, with `--json`, one JSON object per line.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use common::crypto::{PrivateKey, MIN_RSA_BITS};
use std::collections::HashMap;

use crate::driver::{self, FileUpdate, Request, StopReason, Trust, Update};
use crate::files::{human_size, FileOptions};
use common::engine::files::short_id;
use common::engine::{Command, Engine, Event, MemberInfo, TransferId};
use common::identity::{self, IdentityError};
use common::ids::Fingerprint;
use common::invite::RelayEndpoint;

/// Environment variable holding the identity passphrase.
pub const PASSPHRASE_ENV: &str = "TEAMCHAT_PASSPHRASE";

/// The default identity file of `app` ("admin" or "member") in the
/// platform's data directory.
pub fn default_identity_path(app: &str) -> PathBuf {
    match directories::ProjectDirs::from("org", "TeamChat", "teamchat") {
        Some(d) => d.data_dir().join(format!("{app}-identity.pem")),
        None => PathBuf::from(format!("teamchat-{app}-identity.pem")),
    }
}

/// The passphrase from `TEAMCHAT_PASSPHRASE`, or asked on the terminal
/// when there is one (empty answer: none), else none.
pub fn passphrase(prompt: &str) -> Option<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return (!p.is_empty()).then(|| zeroize::Zeroizing::new(p));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        if let Ok(p) = rpassword::prompt_password(prompt) {
            return (!p.is_empty()).then(|| zeroize::Zeroizing::new(p));
        }
    }
    None
}

/// Loads the identity at `path`, or creates one there (RSA-3072, mode 0600,
/// encrypted when a passphrase is given). Returns the key and notes for the
/// user (warnings, "created ...").
pub fn load_or_create_identity(path: &Path) -> Result<(PrivateKey, Vec<String>), IdentityError> {
    let mut notes = Vec::new();
    match identity::load(path, None) {
        Ok(l) => {
            notes.extend(l.warnings.iter().map(ToString::to_string));
            return Ok((l.key, notes));
        }
        Err(IdentityError::PassphraseRequired(_)) => {
            let pass = passphrase(&format!("passphrase for {}: ", path.display()));
            let l = identity::load(path, pass.as_ref().map(|p| p.as_bytes()))?;
            notes.extend(l.warnings.iter().map(ToString::to_string));
            return Ok((l.key, notes));
        }
        Err(IdentityError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let key = PrivateKey::generate(MIN_RSA_BITS).map_err(|source| IdentityError::BadKey {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| IdentityError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let pass = passphrase("new identity: choose a passphrase (empty for none): ");
    identity::save(path, &key, pass.as_ref().map(|p| p.as_bytes()))?;
    notes.push(format!(
        "created a new identity at {} ({})",
        path.display(),
        if pass.is_some() {
            "passphrase-protected"
        } else {
            "not passphrase-protected"
        }
    ));
    Ok((key, notes))
}

/// Reads a roster file: one fingerprint (64 hex) per line; `#` comments.
pub fn read_roster(path: &Path) -> Result<Vec<Fingerprint>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read roster {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .parse::<Fingerprint>()
            .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        out.push(f);
    }
    Ok(out)
}

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

const HELP_MEMBER: &str = "commands: /help, /list (members and safety codes), /msg NAME|FINGERPRINT text (private: only that member can read it), /send PATH (a file to the room), /sendto NAME|FINGERPRINT PATH (a file only that member can read), /accept ID, /cancel ID, /files, /history [N], /clear-history, /quit; anything else is sent to the room";
const HELP_ADMIN: &str = "commands: /help, /list, /msg NAME|FINGERPRINT text, /send PATH, /sendto NAME|FINGERPRINT PATH, /accept ID, /cancel ID, /files, /history [N], /clear-history, /quit, /approve ID, /deny ID [reason], /kick NAME|FINGERPRINT [reason], /bans, /unban NAME|FINGERPRINT, /password NEW, /no-password, /rekey, /invite; anything else is sent to the room";

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
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut cmd_tx = Some(cmd_tx);
    let stop = loop {
        tokio::select! {
            u = up_rx.recv() => match u {
                Some(Update::Stopped { reason }) => { out.update(&Update::Stopped { reason: reason.clone() }); break reason; }
                Some(u) => out.update(&u),
                None => break StopReason::Ended,
            },
            l = lines.next_line(), if stdin_open => match l {
                Ok(Some(line)) => {
                    match parse(&line, &opts, &out) {
                        Parsed::Request(r) => {
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

enum Parsed {
    Request(Request),
    Local(String),
    Quit,
    Nothing,
}

fn parse(line: &str, opts: &Options, out: &Printer) -> Parsed {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Parsed::Nothing;
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Parsed::Request(Command::Send(line.to_string()).into());
    };
    let mut words = rest.splitn(3, ' ');
    let verb = words.next().unwrap_or("");
    let arg = words.next().unwrap_or("").trim();
    let more = words.next().unwrap_or("").trim().to_string();
    let admin_only = |c: Command| {
        if opts.admin {
            Parsed::Request(c.into())
        } else {
            Parsed::Local("only the admin can do that".into())
        }
    };
    match verb {
        "help" => Parsed::Local(if opts.admin { HELP_ADMIN } else { HELP_MEMBER }.into()),
        "quit" | "exit" => Parsed::Quit,
        "list" => Parsed::Local(out.list()),
        "invite" if opts.admin => Parsed::Local(opts.invite.clone().unwrap_or_default()),
        "rekey" => admin_only(Command::Rekey),
        "send" => {
            let path = rest["send".len()..].trim();
            if path.is_empty() {
                Parsed::Local("usage: /send PATH (a file, sent to the whole room)".into())
            } else {
                Parsed::Request(Request::SendFile {
                    path: PathBuf::from(path),
                    to: None,
                })
            }
        }
        "sendto" => {
            let rest = rest["sendto".len()..].trim_start();
            match out.resolve_private(rest, "sendto") {
                Ok((fp, path)) => Parsed::Request(Request::SendFile {
                    path: PathBuf::from(path),
                    to: Some(fp),
                }),
                Err(why) => Parsed::Local(why),
            }
        }
        "accept" | "cancel" => match out.transfer(arg) {
            Some(t) if verb == "accept" => Parsed::Request(Request::AcceptFile(t)),
            Some(t) => Parsed::Request(Request::CancelFile(t)),
            None => Parsed::Local(format!(
                "usage: /{verb} ID (the id shown with the file; /files lists them)"
            )),
        },
        "files" => Parsed::Local(out.file_list()),
        "history" => match arg.parse::<usize>() {
            Ok(n) if n > 0 => Parsed::Request(Request::History(n)),
            _ if arg.is_empty() => Parsed::Request(Request::History(crate::history::SHOW_ON_OPEN)),
            _ => Parsed::Local(
                "usage: /history [N] (the last N messages kept on this computer)".into(),
            ),
        },
        "clear-history" => Parsed::Request(Request::ClearHistory),
        "msg" => {
            let rest = rest["msg".len()..].trim_start();
            match out.resolve_private(rest, "msg") {
                Ok((fp, text)) => Parsed::Request(Command::Private(fp, text).into()),
                Err(why) => Parsed::Local(why),
            }
        }
        "approve" | "deny" => match arg.parse::<u32>() {
            Ok(id) if verb == "approve" => admin_only(Command::Approve(id)),
            Ok(id) => admin_only(Command::Deny(
                id,
                if more.is_empty() {
                    "denied by the admin".into()
                } else {
                    more
                },
            )),
            Err(_) => Parsed::Local(format!(
                "usage: /{verb} ID (the number shown with the request)"
            )),
        },
        "kick" => match out.resolve(arg) {
            Some(fp) => admin_only(Command::Kick(
                fp,
                if more.is_empty() {
                    "removed by the admin".into()
                } else {
                    more
                },
            )),
            None => Parsed::Local(format!(
                "no single member matches {arg:?}: use a name or a fingerprint prefix from /list"
            )),
        },
        "bans" => admin_only(Command::ListBans),
        "unban" => match out.resolve_ban(arg) {
            Some(fp) => admin_only(Command::Unban(fp)),
            None => Parsed::Local(format!(
                "no single ban matches {:?}: use a name or a fingerprint prefix from /bans",
                common::engine::printable(arg)
            )),
        },
        "password" => {
            let new = rest["password".len()..].trim();
            if new.is_empty() {
                Parsed::Local("usage: /password NEW (members who know it are approved automatically; /no-password turns that off)".into())
            } else {
                admin_only(Command::SetPassword(Some(zeroize::Zeroizing::new(
                    new.to_string(),
                ))))
            }
        }
        "no-password" => admin_only(Command::SetPassword(None)),
        _ => Parsed::Local(format!("unknown command /{verb}; /help lists them")),
    }
}

struct Printer {
    json: bool,
    members: Vec<MemberInfo>,
    /// The bans last listed (admin), for `/unban`.
    bans: Vec<common::engine::Ban>,
    /// Transfers seen, for `/accept`, `/cancel` and `/files`.
    files: HashMap<TransferId, FileRow>,
    /// Transfers ended so far (orders the ended rows).
    ended: u64,
    /// Progress bars (text mode; drawn on stderr, hidden when it is not a
    /// terminal).
    bars: indicatif::MultiProgress,
}

struct FileRow {
    name: String,
    size: u64,
    state: String,
    bar: Option<indicatif::ProgressBar>,
    /// The transfer ended (sent, saved or failed), and in which order.
    ended: Option<u64>,
}

/// Ended transfers `/files` keeps listing; older ones are forgotten.
const ENDED_ROWS: usize = 100;

impl Printer {
    fn emit(&self, value: serde_json::Value, text: String) {
        let mut stdout = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(stdout, "{value}")
        } else {
            // Names, texts and reasons come from other people and the relay:
            // no control or invisible formatting characters reach the terminal.
            let safe: Vec<String> = text.lines().map(common::engine::printable).collect();
            writeln!(stdout, "{}", safe.join("\n"))
        };
        let _ = stdout.flush();
    }

    /// The transfer whose id starts with `id` (at least 4 hex characters).
    fn transfer(&self, id: &str) -> Option<TransferId> {
        let id = id.to_ascii_lowercase();
        if id.len() < 4 {
            return None;
        }
        let hits: Vec<&TransferId> = self
            .files
            .keys()
            .filter(|t| hex::encode(t).starts_with(&id))
            .collect();
        match hits.as_slice() {
            [one] => Some(**one),
            _ => None,
        }
    }

    fn file_list(&self) -> String {
        if self.files.is_empty() {
            return "no files yet".into();
        }
        let mut rows: Vec<String> = self
            .files
            .iter()
            .map(|(t, f)| {
                format!(
                    "{}  {}  {}  {}",
                    short_id(t),
                    f.name,
                    human_size(f.size),
                    f.state
                )
            })
            .collect();
        rows.sort();
        rows.join("\n")
    }

    fn file_name(&self, t: &TransferId) -> String {
        self.files
            .get(t)
            .map(|f| f.name.clone())
            .unwrap_or_else(|| short_id(t))
    }

    fn set_state(&mut self, t: &TransferId, state: &str) {
        if let Some(f) = self.files.get_mut(t) {
            f.state = state.into();
            if let Some(bar) = f.bar.take() {
                bar.finish_and_clear();
            }
        }
    }

    /// Marks a transfer as ended, and forgets the oldest ended ones beyond
    /// [`ENDED_ROWS`] (a long session does not grow the list for ever).
    fn end(&mut self, t: &TransferId, state: &str) {
        self.set_state(t, state);
        self.ended += 1;
        let n = self.ended;
        if let Some(f) = self.files.get_mut(t) {
            f.ended = Some(n);
        }
        let mut ended: Vec<(u64, TransferId)> = self
            .files
            .iter()
            .filter_map(|(id, f)| f.ended.map(|n| (n, *id)))
            .collect();
        if ended.len() > ENDED_ROWS {
            ended.sort_unstable();
            for (_, id) in &ended[..ended.len() - ENDED_ROWS] {
                self.files.remove(id);
            }
        }
    }

    fn bar(&mut self, t: &TransferId, done: u64, total: u64) {
        if self.json {
            return;
        }
        let bars = &self.bars;
        if let Some(f) = self.files.get_mut(t) {
            let bar = f.bar.get_or_insert_with(|| {
                let b = bars.add(indicatif::ProgressBar::new(total));
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "  {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                ) {
                    b.set_style(style.progress_chars("=> "));
                }
                b.set_message(common::engine::printable(&f.name));
                b
            });
            bar.set_position(done);
        }
    }

    fn file(&mut self, u: &FileUpdate) {
        match u {
            FileUpdate::Sending {
                transfer,
                name,
                size,
                to,
            } => {
                self.files.insert(
                    *transfer,
                    FileRow {
                        name: name.clone(),
                        size: *size,
                        state: "sending".into(),
                        bar: None,
                        ended: None,
                    },
                );
                self.emit(
                    json!({"type": "file_sending", "transfer": hex::encode(transfer), "name": name, "size": size, "to": to.as_ref().map(|m| m.fingerprint.to_string())}),
                    format!(
                        "* sending {name} ({}){} as {}; /cancel {} stops it",
                        human_size(*size),
                        to.as_ref().map(|m| format!(" privately to {}", m.name)).unwrap_or_default(),
                        short_id(transfer),
                        short_id(transfer)
                    ),
                );
            }
            FileUpdate::Offered {
                from,
                transfer,
                name,
                size,
                media_type,
                accepted,
                private,
            } => {
                self.files.insert(
                    *transfer,
                    FileRow {
                        name: name.clone(),
                        size: *size,
                        state: if *accepted {
                            "receiving".into()
                        } else {
                            "offered".into()
                        },
                        bar: None,
                        ended: None,
                    },
                );
                let id = short_id(transfer);
                let only = if *private {
                    " (privately, to you only)"
                } else {
                    ""
                };
                self.emit(
                    json!({"type": "file_offer", "transfer": hex::encode(transfer), "from": from.name, "fingerprint": from.fingerprint.to_string(), "name": name, "size": size, "media_type": media_type, "accepted": accepted, "private": private}),
                    if *accepted {
                        format!("* {} sends {name} ({}, {media_type}){only} [{id}]: saving it", from.name, human_size(*size))
                    } else {
                        format!("* {} offers {name} ({}, {media_type}){only} [{id}]: /accept {id} to save it, /cancel {id} to refuse", from.name, human_size(*size))
                    },
                );
            }
            FileUpdate::Progress {
                transfer,
                done,
                total,
                outgoing,
            } => {
                if self.json {
                    self.emit(json!({"type": "file_progress", "transfer": hex::encode(transfer), "done": done, "total": total, "outgoing": outgoing}), String::new());
                } else {
                    self.bar(transfer, *done, *total);
                }
            }
            FileUpdate::Sent { transfer } => {
                self.end(transfer, "sent");
                let name = self.file_name(transfer);
                self.emit(
                    json!({"type": "file_sent", "transfer": hex::encode(transfer)}),
                    format!("* {name} sent"),
                );
            }
            FileUpdate::Ready { transfer } => {
                self.set_state(transfer, "complete, waiting for /accept");
                let (name, id) = (self.file_name(transfer), short_id(transfer));
                self.emit(
                    json!({"type": "file_ready", "transfer": hex::encode(transfer)}),
                    format!("* {name} arrived complete and verified: /accept {id} to save it"),
                );
            }
            FileUpdate::Saved { transfer, path } => {
                self.end(transfer, &format!("saved to {}", path.display()));
                let name = self.file_name(transfer);
                self.emit(json!({"type": "file_saved", "transfer": hex::encode(transfer), "path": path.display().to_string()}), format!("* {name} saved to {}", path.display()));
            }
            FileUpdate::Failed { transfer, reason } => {
                self.end(transfer, &format!("failed: {reason}"));
                let name = self.file_name(transfer);
                self.emit(json!({"type": "file_failed", "transfer": hex::encode(transfer), "reason": reason}), format!("! file {name}: {reason}; nothing was saved"));
            }
        }
    }

    fn history(&self, loaded: &crate::history::Loaded, requested: bool) {
        use crate::history::EntryKind;
        if loaded.entries.is_empty() && loaded.skipped == 0 {
            if requested {
                self.note("no history kept for this room yet");
            }
            return;
        }
        self.emit(
            json!({"type": "history_begin", "count": loaded.entries.len(), "skipped": loaded.skipped}),
            format!("──── earlier messages ({}) ────", loaded.entries.len()),
        );
        for e in &loaded.entries {
            let kind = match e.kind {
                EntryKind::Message => "message",
                EntryKind::Own => "own",
                EntryKind::PrivateIn => "private",
                EntryKind::PrivateOut => "private_sent",
                EntryKind::File => "file",
            };
            let text = common::engine::printable(&e.text);
            let shown = match e.kind {
                EntryKind::Message => format!("<{}> {text}", e.who),
                EntryKind::Own => format!("<me> {text}"),
                EntryKind::PrivateIn => format!("<{} → me, private> {text}", e.who),
                EntryKind::PrivateOut => format!("<me → {}, private> {text}", e.who),
                EntryKind::File => format!(
                    "* {} sent {text}, saved to {}",
                    e.who,
                    e.path.as_deref().unwrap_or("?")
                ),
            };
            self.emit(
                json!({"type": "history", "kind": kind, "who": e.who, "text": e.text, "at_ms": e.at_ms, "path": e.path}),
                format!("[{}] {shown}", crate::history::clock_utc(e.at_ms)),
            );
        }
        if loaded.skipped > 0 {
            self.emit(
                json!({"type": "warning", "reason": format!("{} history entries failed their check (damaged or tampered with) and were not shown", loaded.skipped)}),
                format!("! warning: {} history entries failed their check (damaged or tampered with) and were not shown", loaded.skipped),
            );
        }
        self.emit(json!({"type": "history_end"}), "──── now ────".into());
    }

    fn note(&self, text: &str) {
        self.emit(json!({"type": "info", "text": text}), text.to_string());
    }

    fn list(&self) -> String {
        if self.members.is_empty() {
            return "no epoch yet".into();
        }
        self.members
            .iter()
            .map(|m| {
                format!(
                    "{}{}  {}  safety code {}",
                    m.name,
                    if m.admin { " (admin)" } else { "" },
                    m.fingerprint.short(),
                    m.safety_code
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A banned member by name, fingerprint prefix (from `/bans`) or whole
    /// fingerprint.
    fn resolve_ban(&self, who: &str) -> Option<Fingerprint> {
        if who.is_empty() {
            return None;
        }
        if let Ok(fp) = who.parse::<Fingerprint>() {
            return Some(fp);
        }
        let lower = who.to_ascii_lowercase();
        let hits: Vec<&common::engine::Ban> = self
            .bans
            .iter()
            .filter(|b| {
                b.name == who || (lower.len() >= 4 && b.fingerprint.to_string().starts_with(&lower))
            })
            .collect();
        match hits.as_slice() {
            [one] => Some(one.fingerprint),
            _ => None,
        }
    }

    fn resolve(&self, who: &str) -> Option<Fingerprint> {
        if who.is_empty() {
            return None;
        }
        let hits: Vec<&MemberInfo> = self
            .members
            .iter()
            .filter(|m| {
                !m.admin
                    && (m.name == who
                        || m.fingerprint
                            .to_string()
                            .starts_with(&who.to_ascii_lowercase()))
            })
            .collect();
        match hits.as_slice() {
            [one] => Some(one.fingerprint),
            _ => None,
        }
    }

    /// Splits `/msg` (or `/sendto`) arguments into a recipient and the
    /// text (or path). The recipient is the member whose name starts the
    /// line (names may hold spaces), or a fingerprint prefix of at least 8
    /// hex characters.
    fn resolve_private(&self, rest: &str, verb: &str) -> Result<(Fingerprint, String), String> {
        let what = if verb == "msg" { "text" } else { "PATH" };
        let usage =
            format!("usage: /{verb} NAME|FINGERPRINT {what} (names and fingerprints are in /list)");
        if rest.is_empty() {
            return Err(usage);
        }
        // Names are chosen by their owners: when more than one name could
        // start the line ("bob" and "bob I"), or two people share a name,
        // only a fingerprint says who is meant.
        let by_name: Vec<(&MemberInfo, &str)> = self
            .members
            .iter()
            .filter_map(|m| {
                let text = rest.strip_prefix(m.name.as_str())?.strip_prefix(' ')?;
                Some((m, text))
            })
            .collect();
        match by_name.as_slice() {
            [(m, text)] => {
                let text = text.trim();
                if text.is_empty() {
                    return Err(usage);
                }
                return Ok((m.fingerprint, text.to_string()));
            }
            [] => {}
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|(m, _)| format!("{} ({})", m.name, m.fingerprint.short()))
                    .collect();
                return Err(format!(
                    "more than one member could be meant: {}; use a fingerprint prefix: /{verb} FINGERPRINT {what}",
                    names.join(", ")
                ));
            }
        }
        let (word, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let word = word.to_ascii_lowercase();
        let hits: Vec<&MemberInfo> =
            if word.len() >= 8 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.members
                    .iter()
                    .filter(|m| m.fingerprint.to_string().starts_with(&word))
                    .collect()
            } else {
                Vec::new()
            };
        match (hits.as_slice(), text.trim()) {
            (_, "") => Err(usage),
            ([one], text) => Ok((one.fingerprint, text.to_string())),
            _ => Err(format!(
                "no single member matches {:?}: use a name or a fingerprint prefix from /list",
                common::engine::printable(rest.split(' ').next().unwrap_or(""))
            )),
        }
    }

    fn member_json(m: &MemberInfo) -> serde_json::Value {
        json!({"name": m.name, "fingerprint": m.fingerprint.to_string(), "safety_code": m.safety_code, "admin": m.admin})
    }

    fn update(&mut self, u: &Update) {
        match u {
            Update::Connecting { relay } => {
                self.emit(json!({"type": "connecting", "relay": relay}), format!("* connecting to {relay}…"))
            }
            Update::Secured { relay, cert } => self.emit(
                json!({"type": "connected", "relay": relay, "cert": cert.to_string()}),
                format!("* connected to {relay} over TLS (certificate {} checked)", cert.short()),
            ),
            Update::Disconnected { reason, retry_in } => self.emit(
                json!({"type": "disconnected", "reason": reason, "retry_ms": retry_in.as_millis() as u64}),
                format!("* disconnected: {reason}; reconnecting in {:.1} s", retry_in.as_secs_f64()),
            ),
            Update::Stopped { reason } => self.emit(
                json!({"type": "stopped", "reason": reason.to_string(), "failure": reason.is_failure()}),
                format!("* stopped: {reason}"),
            ),
            Update::Engine(e) => self.event(e),
            Update::File(f) => self.file(f),
            Update::History { loaded, requested } => self.history(loaded, *requested),
            Update::HistoryCleared => self.emit(
                json!({"type": "history_cleared"}),
                "* this room's history on this computer was cleared".into(),
            ),
        }
    }

    fn event(&mut self, e: &Event) {
        match e {
            Event::Connected { conn_id } => {
                self.emit(json!({"type": "welcome", "conn_id": conn_id}), format!("* in the relay room as connection {conn_id}"))
            }
            Event::AdminVerified { fingerprint, safety_code } => self.emit(
                json!({"type": "admin_verified", "fingerprint": fingerprint.to_string(), "safety_code": safety_code}),
                format!("* admin verified against the invite; admin safety code: {safety_code}"),
            ),
            Event::JoinRequested => self.emit(json!({"type": "join_requested"}), "* join request sent; waiting for the admin".into()),
            Event::PendingApproval { id, name, fingerprint, safety_code, banned } => {
                let removed = if *banned { " (REMOVED from this room before: approving lets them back in)" } else { "" };
                self.emit(
                    json!({"type": "pending", "id": id, "name": name, "fingerprint": fingerprint.to_string(), "safety_code": safety_code, "banned": banned}),
                    format!("* {name} asks to join (request {id}){removed}; compare safety code {safety_code}, then /approve {id} or /deny {id}"),
                )
            }
            Event::Epoch { epoch, room_name, members } => {
                self.members = members.clone();
                let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                self.emit(
                    json!({"type": "epoch", "epoch": epoch, "room_name": room_name, "members": members.iter().map(Self::member_json).collect::<Vec<_>>()}),
                    format!("* {room_name}, epoch {epoch}: {}", names.join(", ")),
                )
            }
            Event::MemberJoined(m) => self.emit(
                json!({"type": "joined", "member": Self::member_json(m)}),
                format!("* {} joined (safety code {})", m.name, m.safety_code),
            ),
            Event::MemberLeft(m) => self.emit(json!({"type": "left", "member": Self::member_json(m)}), format!("* {} left", m.name)),
            Event::Message { from, text, sent_at_ms, epoch, seq } => self.emit(
                json!({"type": "message", "from": from.name, "fingerprint": from.fingerprint.to_string(), "text": text, "sent_at_ms": sent_at_ms, "epoch": epoch, "seq": seq}),
                format!("<{}> {}", from.name, common::engine::printable(text)),
            ),
            Event::Sent { text, sent_at_ms, epoch, seq } => self.emit(
                json!({"type": "sent", "text": text, "sent_at_ms": sent_at_ms, "epoch": epoch, "seq": seq}),
                format!("<me> {}", common::engine::printable(text)),
            ),
            Event::Private { from, text, sent_at_ms, epoch, seq } => self.emit(
                json!({"type": "private", "from": from.name, "fingerprint": from.fingerprint.to_string(), "text": text, "sent_at_ms": sent_at_ms, "epoch": epoch, "seq": seq}),
                format!("<{} → me, private> {}", from.name, common::engine::printable(text)),
            ),
            Event::PrivateSent { to, text, sent_at_ms, epoch, seq } => self.emit(
                json!({"type": "private_sent", "to": to.name, "fingerprint": to.fingerprint.to_string(), "text": text, "sent_at_ms": sent_at_ms, "epoch": epoch, "seq": seq}),
                format!("<me → {} ({}), private> {}", to.name, to.fingerprint.short(), common::engine::printable(text)),
            ),
            Event::Typing { from, on } => {
                if self.json {
                    self.emit(json!({"type": "typing", "from": from.name, "on": on}), String::new())
                }
            }
            Event::Denied { reason } => self.emit(json!({"type": "denied", "reason": reason}), format!("* join denied: {reason}")),
            Event::Kicked { reason } => self.emit(json!({"type": "kicked", "reason": reason}), format!("* removed from the room: {reason}")),
            Event::Closed { reason } => self.emit(json!({"type": "closed", "reason": reason}), format!("* room closed: {reason}")),
            Event::Warning { reason } => self.emit(json!({"type": "warning", "reason": reason}), format!("! warning: {reason}")),
            Event::Error { reason } => self.emit(json!({"type": "error", "reason": reason}), format!("! error: {reason}")),
            Event::Missed { from, epoch, count, private } => {
                let what = if *private { "private messages" } else { "messages" };
                self.emit(
                    json!({"type": "missed", "from": from.name, "fingerprint": from.fingerprint.to_string(), "epoch": epoch, "count": count, "private": private}),
                    format!("! {count} {what} from {} never reached us (epoch {epoch}): the conversation shown is missing them", from.name),
                )
            }
            Event::Bans(bans) => {
                self.bans = bans.clone();
                let text = if bans.is_empty() {
                    "* nobody is banned".to_string()
                } else {
                    let rows: Vec<String> = bans
                        .iter()
                        .map(|b| format!("  {} ({}), removed {}", b.name, b.fingerprint.short(), crate::history::clock_utc(b.at_ms)))
                        .collect();
                    format!("* banned (they come back only if you approve them by hand, or /unban):\n{}", rows.join("\n"))
                };
                self.emit(
                    json!({"type": "bans", "bans": bans.iter().map(|b| json!({"name": b.name, "fingerprint": b.fingerprint.to_string(), "at_ms": b.at_ms})).collect::<Vec<_>>()}),
                    text,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, fp: u8) -> MemberInfo {
        MemberInfo {
            name: name.into(),
            fingerprint: Fingerprint([fp; 32]),
            safety_code: String::new(),
            admin: false,
        }
    }

    fn printer() -> Printer {
        Printer {
            json: false,
            bans: Vec::new(),
            files: HashMap::new(),
            ended: 0,
            bars: indicatif::MultiProgress::new(),
            members: vec![
                member("ann", 0xa1),
                member("ann lee", 0xb2),
                member("bob", 0xc3),
            ],
        }
    }

    fn opts() -> Options {
        Options {
            json: false,
            admin: false,
            invite: None,
            files: FileOptions::default(),
            history: None,
            admin_state: None,
        }
    }

    #[test]
    fn msg_takes_the_longest_name_then_the_text() {
        let p = printer();
        let private = |line: &str| match parse(line, &opts(), &p) {
            Parsed::Request(Request::Engine(Command::Private(fp, text))) => Some((fp.0[0], text)),
            _ => None,
        };
        assert_eq!(
            private("/msg bob hi there"),
            Some((0xc3, "hi there".into()))
        );
        assert_eq!(
            private("/msg b2b2b2b2 see you"),
            Some((0xb2, "see you".into()))
        );
        // "ann" and "ann lee" both start this line: refused, ask for a key.
        assert_eq!(private("/msg ann lee see you"), None);
        assert_eq!(
            private("/msg ann leaves at 5"),
            Some((0xa1, "leaves at 5".into()))
        );
        assert_eq!(
            private("/msg c3c3c3c3 by key"),
            Some((0xc3, "by key".into()))
        );
        assert_eq!(
            private("/msg C3C3C3C3C3 upper case"),
            Some((0xc3, "upper case".into()))
        );
        for bad in [
            "/msg",
            "/msg bob",
            "/msg bob   ",
            "/msg carol hi",
            "/msg c3c3 short prefix",
        ] {
            assert!(
                matches!(parse(bad, &opts(), &p), Parsed::Local(_)),
                "{bad:?} is refused locally"
            );
        }
    }

    #[test]
    fn the_file_list_forgets_old_ended_transfers_only() {
        let mut p = printer();
        let waiting = [0xee; 16];
        p.file(&FileUpdate::Offered {
            from: p.members[0].clone(),
            transfer: waiting,
            name: "big.iso".into(),
            size: 1 << 30,
            media_type: "application/octet-stream".into(),
            accepted: false,
            private: false,
        });
        for n in 0..150u8 {
            let t = [n; 16];
            p.file(&FileUpdate::Sending {
                transfer: t,
                name: format!("f{n}"),
                size: 1,
                to: None,
            });
            p.file(&FileUpdate::Sent { transfer: t });
        }
        assert_eq!(p.files.len(), ENDED_ROWS + 1);
        assert!(p.files.contains_key(&waiting), "a waiting offer stays");
        assert!(p.files.contains_key(&[149; 16]), "the newest stay");
        assert!(!p.files.contains_key(&[0; 16]), "the oldest go");
    }

    #[test]
    fn sendto_names_one_member_then_the_path() {
        let p = printer();
        let sendto = |line: &str| match parse(line, &opts(), &p) {
            Parsed::Request(Request::SendFile { path, to: Some(fp) }) => Some((fp.0[0], path)),
            _ => None,
        };
        assert!(matches!(parse("/sendto bob", &opts(), &p),
            Parsed::Local(why) if why.starts_with("usage: /sendto NAME|FINGERPRINT PATH")));
        assert_eq!(
            sendto("/sendto bob /tmp/my report.pdf"),
            Some((0xc3, PathBuf::from("/tmp/my report.pdf")))
        );
        assert_eq!(
            sendto("/sendto b2b2b2b2 notes.txt"),
            Some((0xb2, PathBuf::from("notes.txt")))
        );
        assert_eq!(sendto("/sendto ann lee x.txt"), None);
        assert_eq!(sendto("/sendto bob"), None);
        assert_eq!(sendto("/sendto carol x.txt"), None);
        assert!(matches!(
            parse("/send x.txt", &opts(), &p),
            Parsed::Request(Request::SendFile { to: None, .. })
        ));
    }
}
