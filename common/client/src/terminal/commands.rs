//! What a typed line means: a message to the room, a command (`/msg`,
//! `/send`, `/kick`, ...) turned into a driver request, or something
//! answered locally (help, lists, usage).

use std::path::PathBuf;

use common::engine::Command;

use super::printer::Printer;
use super::Options;
use crate::api::Request;

const HELP_MEMBER: &str = "commands: /help, /list (members and safety codes), /msg NAME|FINGERPRINT text (private: only that member can read it), /send PATH (a file to the room), /sendto NAME|FINGERPRINT PATH (a file only that member can read), /accept ID, /cancel ID, /files, /history [N], /clear-history, /resend (the last line that could not be sent), /contacts (everyone met, verified or not), /verify NAME (after comparing safety codes), /unverify NAME, /rooms (the rooms you are in), /join INVITE [PASSWORD] (another room), /switch N|NAME, /leave (this room, for good: its history on this computer is deleted), /quit (every room; kept for next time); anything else is sent to the room";
const HELP_ADMIN: &str = "commands: /help, /list, /msg NAME|FINGERPRINT text, /send PATH, /sendto NAME|FINGERPRINT PATH, /accept ID, /cancel ID, /files, /history [N], /clear-history, /resend, /contacts, /verify NAME, /unverify NAME, /rooms, /open [NAME] (another room, on the same relays), /switch N|NAME, /leave (closes this room for everyone), /quit, /approve ID, /deny ID [reason], /kick NAME|FINGERPRINT [reason], /bans, /unban NAME|FINGERPRINT, /password NEW, /no-password, /rekey, /invite; anything else is sent to the room";

pub(super) enum Parsed {
    Request(Request),
    Local(String),
    Quit,
    Nothing,
    /// `/rooms`: the list of rooms.
    Rooms,
    /// `/join INVITE [PASSWORD]` (member) or `/open [NAME]` (admin): what
    /// follows the command.
    Open(String),
    /// `/switch N|NAME`.
    Switch(String),
    /// `/leave`: this room, for good.
    Leave,
    /// `/invite` (admin): this room's invite.
    Invite,
}

pub(super) fn parse(line: &str, opts: &Options, out: &Printer) -> Parsed {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Parsed::Nothing;
    }
    let Some(rest) = line.strip_prefix('/') else {
        // `@NAME` of a member mentions them, by key.
        let text = common::engine::mentions::typed(line, &out.mention_names(), &[]);
        if text.len() > common::engine::MAX_TEXT {
            return Parsed::Local(format!(
                "that line is {} KiB with its mentions; the most one message can hold is {} KiB: nothing was sent",
                text.len().div_ceil(1024),
                common::engine::MAX_TEXT / 1024
            ));
        }
        return Parsed::Request(Command::Send(text).into());
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
        "invite" if opts.admin => Parsed::Invite,
        "rooms" => Parsed::Rooms,
        "join" if opts.admin => Parsed::Local(
            "the admin app opens rooms: /open NAME opens another one on the same relays".into(),
        ),
        "join" => match rest["join".len()..].trim() {
            "" => Parsed::Local(
                "usage: /join INVITE [PASSWORD] (the invite the room's admin gave you)".into(),
            ),
            what => Parsed::Open(what.to_string()),
        },
        "open" if opts.admin => Parsed::Open(rest["open".len()..].trim().to_string()),
        "switch" => match rest["switch".len()..].trim() {
            "" => Parsed::Local("usage: /switch N|NAME (/rooms lists them)".into()),
            to => Parsed::Switch(to.to_string()),
        },
        "leave" => Parsed::Leave,
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
        "resend" => match &out.failed {
            // Shown with names: its mentions found again.
            Some((None, text)) => Parsed::Request(
                Command::Send(common::engine::mentions::typed(text, &out.mention_names(), &[])).into(),
            ),
            Some((Some(to), text)) => Parsed::Request(Command::Private(*to, text.clone()).into()),
            None => Parsed::Local("no line failed to send".into()),
        },
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
        "contacts" => Parsed::Request(Request::Contacts),
        "verify" | "unverify" => match out.resolve_contact(rest[verb.len()..].trim()) {
            Some(fp) => Parsed::Request(Request::Verify(fp, verb == "verify")),
            None => Parsed::Local(format!(
                "usage: /{verb} NAME|FINGERPRINT (compare safety codes first; /contacts lists who you met)"
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

/// Tests of reading typed lines, and of the printer's lookups and file
/// table they rely on.
#[cfg(test)]
mod tests {
    use common::engine::MemberInfo;
    use common::ids::Fingerprint;

    use super::super::printer::ENDED_ROWS;
    use super::*;
    use crate::driver::FileUpdate;
    use crate::files::FileOptions;

    fn member(name: &str, fp: u8) -> MemberInfo {
        MemberInfo {
            name: name.into(),
            fingerprint: Fingerprint([fp; 32]),
            safety_code: String::new(),
            admin: false,
        }
    }

    fn printer() -> Printer {
        let mut p = Printer::new(false, None);
        p.members = vec![
            member("ann", 0xa1),
            member("ann lee", 0xb2),
            member("bob", 0xc3),
        ];
        p
    }

    fn opts() -> Options {
        Options {
            json: false,
            admin: false,
            files: FileOptions::default(),
            history: None,
            identity: None,
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

    #[test]
    fn contacts_and_verify_go_to_the_driver() {
        let p = printer();
        let opts = opts();
        assert!(matches!(
            parse("/contacts", &opts, &p),
            Parsed::Request(Request::Contacts)
        ));
        match parse("/verify bob", &opts, &p) {
            Parsed::Request(Request::Verify(fp, true)) => {
                assert_eq!(fp, p.members[2].fingerprint)
            }
            _ => panic!("/verify bob is not a Verify request"),
        }
        assert!(matches!(
            parse("/unverify bob", &opts, &p),
            Parsed::Request(Request::Verify(_, false))
        ));
        assert!(matches!(
            parse("/verify nobody", &opts, &p),
            Parsed::Local(_)
        ));
    }

    #[test]
    fn a_plain_line_turns_at_names_into_keys() {
        let p = printer();
        // "@ann lee" fits both "ann" and "ann lee": typed by hand, it
        // mentions neither (a name that extends another cannot take it).
        match parse("hi @bob and @ann lee", &opts(), &p) {
            Parsed::Request(Request::Engine(Command::Send(t))) => {
                let keys = common::engine::mentions::mentioned(&t);
                assert_eq!(keys, vec![p.members[2].fingerprint]);
                assert!(t.ends_with("and @ann lee"));
            }
            _ => panic!("a plain line is not a Send"),
        }
    }

    #[test]
    fn room_commands_are_read_for_each_app() {
        let p = printer();
        let member = opts();
        let admin = Options {
            admin: true,
            ..opts()
        };
        assert!(matches!(parse("/rooms", &member, &p), Parsed::Rooms));
        assert!(matches!(parse("/leave", &member, &p), Parsed::Leave));
        assert!(
            matches!(parse("/join teamchat://x pw", &member, &p), Parsed::Open(w) if w == "teamchat://x pw")
        );
        assert!(matches!(parse("/join", &member, &p), Parsed::Local(_)));
        assert!(matches!(parse("/open", &member, &p), Parsed::Local(_)));
        // The admin opens rooms; it cannot join one by invite.
        assert!(matches!(
            parse("/join teamchat://x", &admin, &p),
            Parsed::Local(_)
        ));
        assert!(
            matches!(parse("/open sales team", &admin, &p), Parsed::Open(w) if w == "sales team")
        );
        assert!(matches!(parse("/open", &admin, &p), Parsed::Open(w) if w.is_empty()));
        assert!(matches!(parse("/switch 2", &member, &p), Parsed::Switch(w) if w == "2"));
        assert!(matches!(parse("/switch", &member, &p), Parsed::Local(_)));
        assert!(matches!(parse("/invite", &admin, &p), Parsed::Invite));
    }
}
