#!/usr/bin/env bash
# TeamChat demo on 127.0.0.1.
#
#   scripts/demo.sh            a window when there is a display, else headless
#   scripts/demo.sh --gui      a relay and the admin window, room open, invite
#                              printed: join with `cargo run -p teamchat-member`
#   scripts/demo.sh --headless a relay, an admin and two members in terminal
#                              mode: Alice joins with the room password, Bob is
#                              approved by hand after the admin sees his safety
#                              code; they chat; the relay restarts and a line
#                              Alice types meanwhile shows pending, then is
#                              delivered once it is back; the admin removes
#                              Bob, and Bob cannot read what follows. Prints
#                              the transcript as each participant saw it,
#                              exits 0.
#
# Builds what it needs on first use; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
prog=demo
root=$(pwd)
bin="$root/target/debug"
relay_bin=$bin/teamchat-relay

mode=auto
case "${1:-}" in
  --gui) mode=gui ;;
  --headless) mode=headless ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--gui|--headless]" >&2; exit 2 ;;
esac
if [ "$mode" = auto ]; then
  if [ -z "${CI:-}" ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }; then
    mode=gui
  else
    mode=headless
  fi
fi

echo "== building (first run takes a few minutes)" >&2
cargo build -q -p relay -p teamchat-admin -p teamchat-member

repo_certs

if [ "$mode" = gui ]; then
  mkdir -p target/demo
  cleanup_at_exit
  relay_start target/demo/relay.out target/demo/relay.log 127.0.0.1:0 certs/relay.crt certs/relay.key \
    --stats-interval 0
  addr=$relay_addr
  echo "== relay at $addr; opening the admin window (close it to stop the demo)" >&2
  echo "   press Copy in the window, then:  cargo run -p teamchat-member  and paste the invite" >&2
  # A demo identity kept under target/, not your real one.
  "$bin/teamchat-admin" --relay "$addr" --relay-cert certs/relay.crt \
    --identity target/demo/admin-identity.pem --history-file target/demo/admin-history.sqlite3 \
    --download-dir target/demo/downloads --room-name "demo room" --name admin --open
  exit 0
fi

scratch_dir

echo "== starting the relay on 127.0.0.1" >&2
relay_start "$work/relay.out" "$work/relay.log" 127.0.0.1:0 certs/relay.crt certs/relay.key \
  --stats-interval 0
addr=$relay_addr
echo "   relay at $addr, $(sed -n 's/^certificate //p' "$work/relay.out")" >&2

export TEAMCHAT_PASSPHRASE=""   # demo identities without passphrases
mkfifo "$work/admin.in" "$work/alice.in" "$work/bob.in"

echo "== starting the admin" >&2
"$bin/teamchat-admin" --cli --json --relay "$addr" --relay-cert certs/relay.crt \
  --identity "$work/admin.pem" --name boss --room-name "launch team" \
  --room-password "correct horse battery" --download-dir "$work/downloads-admin" --history-file "$work/admin-history.sqlite3" <"$work/admin.in" >"$work/admin.jsonl" 2>"$work/admin.err" &
pids+=($!)
exec 3>"$work/admin.in"
wait_for "$work/admin.jsonl" '"type":"epoch"' 60
invite=$(admin_invite "$work/admin.jsonl")
echo "   invite: $invite" >&2

echo "== alice joins with the room password" >&2
"$bin/teamchat-member" --cli --json --invite "$invite" --name alice --password "correct horse battery" \
  --identity "$work/alice.pem" --download-dir "$work/downloads-alice" --history-file "$work/alice-history.sqlite3" <"$work/alice.in" >"$work/alice.jsonl" 2>"$work/alice.err" &
pids+=($!)
exec 4>"$work/alice.in"
wait_for "$work/alice.jsonl" '"type":"epoch"' 60

echo "== bob asks to join; the admin compares his safety code and approves" >&2
"$bin/teamchat-member" --cli --json --invite "$invite" --name bob \
  --identity "$work/bob.pem" --download-dir "$work/downloads-bob" --history-file "$work/bob-history.sqlite3" <"$work/bob.in" >"$work/bob.jsonl" 2>"$work/bob.err" &
pids+=($!)
exec 5>"$work/bob.in"
wait_for "$work/admin.jsonl" '"type":"pending"' 60
id=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e["type"]=="pending": print(e["id"])' "$work/admin.jsonl" | tail -1)
echo "/approve $id" >&3
wait_for "$work/bob.jsonl" '"type":"epoch"' 30
wait_for "$work/alice.jsonl" '"type":"joined"' 30

echo "== chatting" >&2
echo "hello everyone, the launch is at nine" >&3
wait_for "$work/bob.jsonl" 'launch is at nine' 20
echo "thanks boss, alice here" >&4
wait_for "$work/bob.jsonl" 'alice here' 20
echo "bob here, all set" >&5
wait_for "$work/alice.jsonl" 'all set' 20
wait_for "$work/admin.jsonl" 'all set' 20

echo "== alice sends a file to the room" >&2
printf 'Launch plan\n09:00 go/no-go\n09:30 deploy\n' >"$work/launch-plan.txt"
echo "/send $work/launch-plan.txt" >&4
wait_for "$work/bob.jsonl" '"type":"file_saved"' 30
wait_for "$work/admin.jsonl" '"type":"file_saved"' 30

echo "== alice writes privately to bob: only bob can read it" >&2
echo "/msg bob the spare key is under the mat" >&4
wait_for "$work/bob.jsonl" '"type":"private"' 20

echo "== the relay restarts; alice writes while it is down: pending, then delivered" >&2
kill "$relay_pid"
wait "$relay_pid" 2>/dev/null || true
wait_for "$work/alice.jsonl" '"type":"disconnected"' 20
echo "typed while the relay was down" >&4
wait_for "$work/alice.jsonl" '"state":"waiting"' 20
relay_start "$work/relay-again.out" "$work/relay-again.log" "$addr" certs/relay.crt certs/relay.key \
  --stats-interval 0
echo "   relay back at $relay_addr" >&2
wait_for "$work/bob.jsonl" 'typed while the relay was down' 60
wait_for "$work/alice.jsonl" '"state":"delivered"' 30

echo "== the admin removes bob; a new epoch starts without him" >&2
echo "/kick bob demo is over for you" >&3
wait_for "$work/bob.jsonl" '"type":"kicked"' 30
wait_for "$work/alice.jsonl" '"type":"removed"' 30
echo "bob can no longer read this" >&4
wait_for "$work/admin.jsonl" 'no longer read' 20
sleep 0.5

echo "/quit" >&4
echo "/quit" >&3
sleep 0.5

python3 - "$work" <<'PY'
import json, sys, os
work = sys.argv[1]
for who in ("admin", "alice", "bob"):
    print(f"--- as {who} saw it")
    texts, waited = {}, set()
    for line in open(os.path.join(work, f"{who}.jsonl")):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        t = e["type"]
        if t == "message":
            print(f"  <{e['from']}> {e['text']}")
        elif t == "sent":
            texts[e["id"]] = e["text"]
            print(f"  <{who}, me> {e['text']}")
        elif t == "delivery" and e["state"] == "waiting" and e["id"] not in waited:
            waited.add(e["id"])
            print(f"  ◷ pending: \"{texts.get(e['id'], '?')}\" ({e['reason']})")
        elif t == "delivery" and e["state"] == "delivered" and e["id"] in waited:
            print(f"  ✓ delivered: \"{texts.get(e['id'], '?')}\" (the relay took it)")
        elif t == "delivery" and e["state"] in ("failed", "unconfirmed"):
            print(f"  ! {e['state']}: \"{texts.get(e['id'], '?')}\" ({e['reason']})")
        elif t == "disconnected":
            print(f"  * disconnected: {e['reason']}")
        elif t == "away":
            print(f"  ! back after {e['seconds']:.1f} s away")
        elif t == "file_offer":
            print(f"  * {e['from']} sends {e['name']} ({e['size']} bytes)")
        elif t == "file_sending":
            print(f"  * sending {e['name']} ({e['size']} bytes)")
        elif t == "file_saved":
            print(f"  * saved to {e['path']}")
        elif t == "file_sent":
            print(f"  * file sent")
        elif t == "file_failed":
            print(f"  ! file failed: {e['reason']}")
        elif t == "private":
            print(f"  <{e['from']} -> {who}, private> {e['text']}")
        elif t == "private_sent":
            print(f"  <{who} -> {e['to']}, private> {e['text']}")
        elif t == "epoch":
            print(f"  * epoch {e['epoch']}: " + ", ".join(m["name"] for m in e["members"]))
        elif t == "pending":
            print(f"  * {e['name']} asks to join (safety code {e['safety_code'][:23]}...)")
        elif t in ("joined", "left"):
            print(f"  * {e['member']['name']} {t}")
        elif t == "removed":
            print(f"  * {e['member']['name']} was removed by the admin")
        elif t in ("kicked", "denied", "warning", "error"):
            print(f"  ! {t}: {e.get('reason', '')}")
        elif t == "admin_verified":
            print(f"  * admin verified against the invite (safety code {e['safety_code'][:23]}...)")
bob = open(os.path.join(work, "bob.jsonl")).read()
assert "no longer read" not in bob, "bob read a message after being removed"
assert bob.count("typed while the relay was down") == 1, "bob did not get the line typed during the restart once"
alice = [json.loads(l) for l in open(os.path.join(work, "alice.jsonl")) if l.startswith("{")]
down = [e["id"] for e in alice if e["type"] == "sent" and "relay was down" in e["text"]]
states = [e["state"] for e in alice if e["type"] == "delivery" and e["id"] in down]
assert states[:1] == ["waiting"] and "delivered" in states, f"alice's line was not pending, then delivered: {states}"
print("--- the line alice typed while the relay was down was pending, then delivered, once.")
assert "spare key" in bob, "bob did not get alice's private message"
saved = open(os.path.join(work, "downloads-bob", "launch-plan.txt")).read()
assert saved == open(os.path.join(work, "launch-plan.txt")).read(), "bob's copy of the file differs"
print("--- bob's copy of launch-plan.txt is identical to alice's.")
assert "spare key" not in open(os.path.join(work, "admin.jsonl")).read(), "the admin read a private message"
print("--- only bob read alice's private message.")
print("--- bob never saw the message sent after he was removed.")
PY
