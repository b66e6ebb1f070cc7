#!/usr/bin/env bash
# Drives the real windows as a person would and saves screenshots to
# docs/screenshots/: under Xvfb it starts a relay, the admin window and two
# member windows (each on its own virtual screen, 1280x800), then with
# xdotool: the admin types a room password and opens the room; alice and bob
# type the invite and their names and join; the admin approves them after
# seeing their safety codes (the invite goes from the admin's Copy button
# through the clipboard); all three chat; everyone switches to the light
# theme; alice and bob write privately from the member list; alice sends a
# file through the file chooser and bob's window shows it arriving; bob drags
# a file from outside onto his window in the private conversation (a real
# XDND drag by scripts/xdnd-drop.py) and alice gets it privately; the relay
# stops and the members show the warning banner. Last, the member window
# as it looks when the relay dropped lines (ui/examples/gap_banner.rs: the
# real window fed the engine's events for such a conversation), and when
# the relay then let it go for falling behind (GAP_BANNER_CUT=1); and its
# own lines in each state of the outbox (ui/examples/outbox_marks.rs); and
# emoji in the conversation and the picker on a stock desktop's two font
# set-ups, DejaVu alone and with Noto Color Emoji (ui/examples/emoji.rs);
# a desktop notification (ui/examples/notification.rs); and a window of
# four rooms: the room list with unread and mention counts and a room that
# cannot connect, the room on screen opened at its "new messages" divider
# with a line that mentions us and the "@" list open in the composer, then
# the same window when bob comes back with another key (ui/examples/rooms.rs).
#
#   scripts/screenshots.sh          (installs Xvfb, xdotool, xclip,
#                                    imagemagick, and a stock desktop's
#                                    fonts-dejavu-core and
#                                    fonts-noto-color-emoji with apt when
#                                    missing; no font for the app: the
#                                    windows show what those fonts and the
#                                    app's own embedded emoji font show)
#
# Everything runs on 127.0.0.1 and private X displays; the trap stops it all.
# Clicks go to fixed positions in the windows' fixed-size layouts: if a
# layout changes, update the positions below (each step also saves a
# full-screen shot to $STEPS for checking).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
prog=screenshots
root=$(pwd)
out="$root/docs/screenshots"
STEPS=${STEPS:-$root/target/screenshot-steps}

need=()
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xdotool >/dev/null || need+=(xdotool)
command -v import >/dev/null || need+=(imagemagick)
command -v xclip >/dev/null || need+=(xclip)
/usr/bin/python3 -c 'import Xlib' 2>/dev/null || need+=(python3-xlib)
# The fonts of a stock desktop, for the emoji shots (not fonts for the app:
# it embeds its own emoji font).
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
# A session bus and a notification daemon, for the notification shot.
command -v dbus-run-session >/dev/null || need+=(dbus)
command -v dunst >/dev/null || need+=(dunst)
apt_install_missing "${need[@]}"

echo "== building" >&2
cargo build -q -p relay -p teamchat-admin -p teamchat-member
cargo build -q -p ui --example gap_banner --example outbox_marks --example emoji --example notification --example rooms
repo_certs
bin="$root/target/debug"
relay_bin=$bin/teamchat-relay

scratch_dir
mkdir -p "$out" "$STEPS"

# One virtual screen per window: no window manager is needed and no window
# hides another.
# Ten free display numbers in a row (no X server's lock file on any).
for _ in $(seq 50); do
  base=$((70 + RANDOM % 200))
  free=yes
  for i in $(seq 0 9); do [ -e "/tmp/.X$((base + i))-lock" ] && free=no; done
  [ $free = yes ] && break
done
d_admin=:$base d_alice=:$((base + 1)) d_bob=:$((base + 2))
start_xvfb "$d_admin" "$d_alice" "$d_bob"

window() { # DISPLAY [nofocus] -> window id, once mapped (and focused)
  local id=""
  for _ in $(seq 600); do
    id=$(DISPLAY=$1 xdotool search --onlyvisible --name TeamChat 2>/dev/null | head -1) && [ -n "$id" ] && break
    sleep 0.05
  done
  [ -n "$id" ] || { echo "screenshots: no window on $1" >&2; tail -n 30 "$work"/*.err "$work"/*.log >&2; exit 1; }
  [ "${2:-}" = nofocus ] || DISPLAY=$1 xdotool windowfocus --sync "$id"
  echo "$id"
}
click() { DISPLAY=$1 xdotool mousemove "$2" "$3" click 1; sleep 0.3; }
type_text() { DISPLAY=$1 xdotool type --delay 15 "$2"; sleep 0.2; }
key() { DISPLAY=$1 xdotool key "$2"; sleep 0.3; }
step=0
shot() { # DISPLAY NAME [final]: a step shot, and with "final" the committed one
  sleep 0.6
  step=$((step + 1))
  local id
  id=$(DISPLAY=$1 xdotool search --onlyvisible --name TeamChat | head -1)
  DISPLAY=$1 import -window root "$STEPS/$(printf %02d $step)-$2.png"
  if [ "${3:-}" = final ]; then
    DISPLAY=$1 import -window "$id" -strip -define png:compression-level=9 "$out/$2.png"
    echo "   saved docs/screenshots/$2.png" >&2
  fi
}

echo "== relay" >&2
relay_start "$work/relay.out" "$work/relay.log" 127.0.0.1:0 certs/relay.crt certs/relay.key \
  --stats-interval 0
relay=$relay_pid
addr=$relay_addr

# Identities made beforehand (the terminal admin creates its identity and,
# with no input, leaves at once; 127.0.0.1:9 has no listener), so the forms
# look like a returning user's.
for who in admin alice bob; do
  TEAMCHAT_PASSPHRASE="" "$bin/teamchat-admin" --cli --relay 127.0.0.1:9 --relay-pin "$(printf 'ab%.0s' $(seq 32))" \
    --identity "$work/$who.pem" </dev/null >/dev/null 2>&1 || true
done

echo "== the admin opens a room" >&2
TEAMCHAT_SETTINGS="$work/admin.toml" DISPLAY=$d_admin "$bin/teamchat-admin" --relay "$addr" \
  --relay-cert certs/relay.crt --identity "$work/admin.pem" --room-name "launch team" --name "Dana (admin)" \
  --download-dir "$work/downloads-admin" --history-file "$work/admin-history.sqlite3" >"$work/admin.out" 2>"$work/admin.err" &
pids+=($!)
window $d_admin >/dev/null
click $d_admin 619 423            # room password
type_text $d_admin "violet anchor drizzle quasar"
shot $d_admin admin-open-room-dark final
click $d_admin 619 591            # Open room (below the strength meter)
# Copy the invite (it shows once the relay's certificate is verified) and
# read it from the admin's clipboard, as a person would paste it elsewhere.
invite=""
for _ in $(seq 60); do
  sleep 0.5
  click $d_admin 1190 79          # Copy
  invite=$(DISPLAY=$d_admin timeout 2 xclip -o -selection clipboard 2>/dev/null || true)
  case "$invite" in teamchat://*) break ;; esac
done
case "$invite" in teamchat://*) ;; *) echo "screenshots: no invite on the admin's clipboard" >&2; exit 1 ;; esac

join() { # DISPLAY NAME
  # Files go slowly here, so the shots catch a transfer under way.
  TEAMCHAT_SETTINGS="$work/$2.toml" DISPLAY=$1 "$bin/teamchat-member" --identity "$work/$2.pem" \
    --download-dir "$work/downloads-$2" --file-rate-kib 384 --history-file "$work/$2-history.sqlite3" >"$work/$2.out" 2>"$work/$2.err" &
  pids+=($!)
  window "$1" >/dev/null
  click "$1" 580 215              # invite
  type_text "$1" "$invite"
  click "$1" 580 297              # name
  type_text "$1" "$2"
}

echo "== alice joins" >&2
join $d_alice alice
shot $d_alice member-join-dark final
click $d_alice 580 496            # Join
sleep 2
shot $d_admin admin-pending-dark final
click $d_admin 281 243            # Approve
sleep 2

echo "== bob joins" >&2
join $d_bob bob
click $d_bob 580 496
sleep 2
click $d_admin 281 243
sleep 2

echo "== chatting" >&2
say() { # DISPLAY Y TEXT (the input sits lower in the taller admin window)
  click "$1" 820 "$2"; type_text "$1" "$3"; key "$1" Return; sleep 0.5
}
say $d_admin 690 "Welcome both. Launch review at 14:00, keys rotate every hour."
say $d_alice 650 "Thanks Dana! Checklist is in the usual place."
say $d_bob 650 "On it. I'll post the build number when CI is green."
click $d_bob 490 650               # emoji picker
shot $d_bob emoji-picker
click $d_bob 494 498               # the first emoji
key $d_bob Return
click $d_alice 820 650
type_text $d_alice "Sounds good"
sleep 0.5
shot $d_admin admin-chat-dark final
shot $d_bob member-chat-dark final
key $d_alice Return

echo "== a private conversation" >&2
click $d_alice 260 198             # bob's row: safety code and actions
shot $d_alice alice-bob-row
click $d_alice 335 300             # Private message
say $d_alice 650 "Bob, the staging password is in the vault under launch-7."
sleep 1
click $d_bob 260 167               # alice's row
shot $d_bob bob-alice-row
click $d_bob 335 270               # Private message
say $d_bob 650 "Got it, thanks. I will rotate it after the review."
sleep 1
shot $d_bob member-private-dark final
shot $d_alice alice-private
click $d_bob 1090 112              # Back to the room
shot $d_bob bob-back

echo "== alice sends a file through the chooser" >&2
head -c 6000000 /dev/urandom >"$work/release-notes.pdf"
click $d_alice 1090 112            # back to the room (a paper clip inside the
                                   # private conversation sends privately)
click $d_alice 538 650             # the paper clip
shot $d_alice alice-chooser
click $d_alice 580 505             # the path field
type_text $d_alice "$work/release-notes.pdf"
shot $d_alice alice-chooser-path
key $d_alice Return
sleep 4
shot $d_bob member-file-dark final
shot $d_alice alice-sending
for _ in $(seq 60); do
  ls "$work/downloads-bob/release-notes.pdf" >/dev/null 2>&1 && break
  sleep 0.5
done
cmp "$work/release-notes.pdf" "$work/downloads-bob/release-notes.pdf" ||
  { echo "screenshots: bob's copy of the file differs or is missing" >&2; exit 1; }
shot $d_bob bob-file-saved

echo "== bob drags a file onto his window, inside the private conversation" >&2
head -c 300000 /dev/urandom >"$work/budget.xlsx"
click $d_bob 335 270               # Private message (alice's row is still open)
bob_win=$(window $d_bob)
# A real XDND drag (as a file manager does it): hover, photograph the hint,
# drop.
DISPLAY=$d_bob /usr/bin/python3 scripts/xdnd-drop.py "$bob_win" 800 400 "$work/budget.xlsx" --hover 3 &
drag=$!
sleep 1.5
shot $d_bob member-drop-private-dark final
wait $drag || { echo "screenshots: the drop did not complete" >&2; exit 1; }
for _ in $(seq 60); do
  ls "$work/downloads-alice/budget.xlsx" >/dev/null 2>&1 && break
  sleep 0.5
done
cmp "$work/budget.xlsx" "$work/downloads-alice/budget.xlsx" ||
  { echo "screenshots: alice's copy of the dropped file differs or is missing" >&2; exit 1; }
shot $d_bob bob-dropped
shot $d_alice alice-private-file
click $d_bob 1090 112              # Back to the room

echo "== light theme" >&2
click $d_admin 1106 37
click $d_bob 1026 44
click $d_alice 1026 44
sleep 0.5
shot $d_admin admin-chat-light final
shot $d_bob member-chat-light final

echo "== the admin removes bob: the admin's Banned list, bob's window" >&2
click $d_admin 256 226             # bob's row: safety code and actions
shot $d_admin admin-bob-row
click $d_admin 335 399             # Remove bob (below Private message and Mark as verified)
click $d_admin 335 399             # Click again to remove
sleep 1.5
shot $d_admin admin-bans-light final
shot $d_bob member-removed-light final

echo "== the relay goes away: warning banner" >&2
kill $relay
sleep 2
shot $d_alice member-warning-light final

echo "== lines the relay dropped: the gap, where it happened and in the banner" >&2
d_gap=:$((base + 3))
start_xvfb "$d_gap"
DISPLAY=$d_gap GAP_BANNER_SECONDS=30 "$root/target/debug/examples/gap_banner" >"$work/gap.log" 2>&1 &
pids+=($!)
window $d_gap >/dev/null
shot $d_gap member-gap-dark final

echo "== the relay let the member go for falling behind: the banner says so" >&2
d_cut=:$((base + 4))
start_xvfb "$d_cut"
DISPLAY=$d_cut GAP_BANNER_SECONDS=30 GAP_BANNER_CUT=1 "$root/target/debug/examples/gap_banner" >"$work/cut.log" 2>&1 &
pids+=($!)
window $d_cut >/dev/null
shot $d_cut member-slow-reader-dark final

echo "== our own lines: delivered, failed, unconfirmed, pending while the relay is away" >&2
d_marks=:$((base + 5))
start_xvfb "$d_marks"
DISPLAY=$d_marks OUTBOX_MARKS_SECONDS=30 "$root/target/debug/examples/outbox_marks" >"$work/marks.log" 2>&1 &
pids+=($!)
window $d_marks >/dev/null
shot $d_marks member-outbox-dark final

# Emoji on a stock desktop's two font set-ups: DejaVu alone, and DejaVu with
# Noto Color Emoji (which Slint's software renderer draws blank); the
# windows take emoji from their embedded TeamChat Emoji font either way.
# FONTCONFIG_FILE limits each window to exactly those fonts.
fonts_conf() { # FILE DIR...
  local f=$1; shift
  {
    echo '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd"><fontconfig>'
    for d in "$@"; do echo "<dir>$d</dir>"; done
    echo "<alias><family>sans-serif</family><prefer><family>DejaVu Sans</family></prefer></alias>"
    echo "<cachedir>$work/fc-cache</cachedir></fontconfig>"
  } >"$f"
}
fonts_conf "$work/dejavu.conf" /usr/share/fonts/truetype/dejavu
fonts_conf "$work/noto.conf" /usr/share/fonts/truetype/dejavu /usr/share/fonts/truetype/noto
n=6
for setup in dejavu noto; do
  echo "== emoji with the fonts of $setup.conf, picker open" >&2
  d=:$((base + n)); n=$((n + 1))
  start_xvfb "$d"
  FONTCONFIG_FILE="$work/$setup.conf" DISPLAY=$d EMOJI_SECONDS=30 "$root/target/debug/examples/emoji" >"$work/emoji-$setup.log" 2>&1 &
  pids+=($!)
  window "$d" >/dev/null
  click "$d" 490 650               # emoji picker
  shot "$d" "member-emoji-$setup" final
done
echo "== a desktop notification: a private message while the window is not the active one" >&2
d=:$((base + n)); n=$((n + 1))
start_xvfb "$d"
DISPLAY=$d dbus-run-session -- sh -c "dunst >/dev/null 2>&1 & sleep 0.5; NOTIFY_SECONDS=30 '$root/target/debug/examples/notification'" >"$work/notify.log" 2>&1 &
pids+=($!)
# Not focused: the window is not the active one, as when the person is in
# another application (a focus would make it active and mark the line read).
window "$d" nofocus >/dev/null
# The notification on screen: dunst's window shown.
for _ in $(seq 200); do
  DISPLAY=$d xdotool search --onlyvisible --name '^Dunst$' >/dev/null 2>&1 && break
  sleep 0.05
done
DISPLAY=$d xdotool search --onlyvisible --name '^Dunst$' >/dev/null 2>&1 ||
  { echo "screenshots: no notification on the screen within 10 s" >&2; cat "$work/notify.log" >&2; exit 1; }
sleep 0.5
DISPLAY=$d import -window root -strip -define png:compression-level=9 "$out/member-notification.png"
echo "   saved docs/screenshots/member-notification.png" >&2

echo "== four rooms: the room list with unread and mention counts, one that cannot connect, a mention and the @ list" >&2
d=:$((base + n)); n=$((n + 1))
start_xvfb "$d"
DISPLAY=$d ROOMS_SECONDS=30 "$root/target/debug/examples/rooms" >"$work/rooms.log" 2>&1 &
rooms_pid=$!
pids+=($rooms_pid)
window "$d" >/dev/null
shot "$d" member-rooms-dark final
kill $rooms_pid 2>/dev/null || true
wait $rooms_pid 2>/dev/null || true
echo "== the same window, bob back with another key: the warning" >&2
DISPLAY=$d ROOMS_SECONDS=30 ROOMS_KEY_CHANGE=1 "$root/target/debug/examples/rooms" >"$work/rooms-key.log" 2>&1 &
pids+=($!)
window "$d" >/dev/null
shot "$d" member-key-change-dark final
ls -l "$out" >&2
