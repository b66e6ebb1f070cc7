#!/usr/bin/env bash
# Measures the member window as its users feel it, in release, under Xvfb:
#   - cold start: launch of `teamchat-member` to its first visible window
#     (xdotool sees it mapped), median of RUNS launches;
#   - resident memory (VmRSS) of the member window after it joined a room
#     and received 1,000 messages (all kept in its view), 3 s after the last;
#   - the same RSS for the same member in terminal mode (`--cli`), the peer
#     measured in the same run, so the GUI's own cost shows as a ratio.
# Goals (issue 5): first frame under 500 ms; under 60 MB with 1,000 messages.
#
# Then (issue 23) a member who lives in TeamChat: ten remembered rooms with
# 10,000 kept lines each (ui/examples/gui_fixture.rs writes them), which
# the window reconnects at start:
#   - cold start to the first visible window, median of RUNS launches;
#   - resident memory 3 s after the window showed;
#   - beside them, in the same run and on the same Xvfb, Dino (Debian's
#     XMPP desktop client, `dino-im`, installed with apt when missing; SKIP=dino
#     leaves it out): launch to its first visible window, and its RSS 3 s
#     later.
#   - in the same window on the same display (ui/examples/rooms_probe.rs:
#     ten rooms of 200 shown lines each): switching rooms, to the new
#     room's first frame rendered whole, 100 switches; and, while 1,000
#     lines a second arrive across the rooms for 10 s, the longest hold of
#     the window's thread, how late its 10 ms timer fired, and a whole
#     frame rendered every 100 ms. (Dino has no such probe: not measured.)
# Goals (issue 23): first window within 150 ms, under 60 MB; a switch
# within 50 ms to its first frame; no frame over 50 ms while lines arrive.
#
#   scripts/bench-gui.sh           (RUNS=7 by default; ONLY=rooms measures
#                                   the issue 23 part alone)
#
# Everything runs on 127.0.0.1 and a private Xvfb display; the trap stops it
# all. Needs Xvfb and xdotool (scripts/screenshots.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
# "met" when the comparison of figures holds, else "NOT met".
verdict() { python3 -c "print('met' if $1 else 'NOT met')"; }
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
prog=bench-gui
root=$(pwd)
RUNS=${RUNS:-7}
MESSAGES=${MESSAGES:-1000}

for t in Xvfb xdotool python3; do
  command -v $t >/dev/null || { echo "bench-gui: needs $t (apt-get install xvfb xdotool)" >&2; exit 1; }
done
echo "== building (release)" >&2
cargo build -q --release -p relay -p teamchat-admin -p teamchat-member
cargo build -q --release -p ui --example gui_fixture --example rooms_probe
repo_certs
bin="$root/target/release"
relay_bin=$bin/teamchat-relay

scratch_dir
disp=:$((90 + RANDOM % 9))
start_xvfb "$disp"
export DISPLAY=$disp
wait_for_poll=0.05

export TEAMCHAT_SETTINGS="$work/settings.toml" TEAMCHAT_PASSPHRASE=""
# Identities made once, so no launch pays for RSA key generation.
# (The admin in terminal mode creates its identity first; with no input it
# leaves at once. 127.0.0.1:9 has no listener.)
for id in m p; do
  "$bin/teamchat-admin" --cli --relay 127.0.0.1:9 --relay-pin "$(printf 'ab%.0s' $(seq 32))" \
    --identity "$work/$id.pem" </dev/null >/dev/null 2>&1 || true
  [ -f "$work/$id.pem" ] || { echo "bench-gui: could not create an identity" >&2; exit 1; }
done

echo "== cold start: $RUNS launches to the first visible window" >&2
starts=$(python3 - "$bin/teamchat-member" "$work/m.pem" "$RUNS" <<'PY'
import subprocess, sys, time, os, signal
exe, ident, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
for _ in range(runs):
    t0 = time.monotonic()
    p = subprocess.Popen([exe, "--identity", ident], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = None
    while time.monotonic() - t0 < 10:
        r = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(p.pid), "--name", "TeamChat"],
                           capture_output=True, text=True)
        if r.stdout.strip():
            seen = time.monotonic() - t0
            break
        time.sleep(0.002)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)
    if seen is None:
        sys.exit("no window within 10 s")
    out.append(seen * 1000)
    time.sleep(0.3)
out.sort()
print(" ".join(f"{x:.0f}" for x in out))
PY
)
median=$(echo "$starts" | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

echo "== memory: a room, $MESSAGES messages into the member window" >&2
# The relay with the benchmarks' raised rate limits: the admin in terminal
# mode sends the messages as fast as it reads them, which the default
# per-connection limits slow to a crawl (they are abuse limits; the window,
# not the relay, is measured here).
relay_bench_limits 100
relay_start "$work/relay.out" "$work/relay.log" 127.0.0.1:0 certs/relay.crt certs/relay.key \
  "${bench_limits[@]}" --stats-interval 0
addr=$relay_addr

echo "== issue 23: ten remembered rooms with 10,000 lines each" >&2
ROOMS=${ROOMS:-10}
LINES=${LINES:-10000}
"$bin/examples/gui_fixture" "$work/lives" "$addr" certs/relay.crt "$ROOMS" "$LINES" >&2
launch_python=$(cat <<'PY'
import subprocess, sys, time, signal, os
args, runs, rss_at = sys.argv[1:-2], int(sys.argv[-2]), float(sys.argv[-1])
out, rss = [], None
for n in range(runs):
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    seen = None
    while time.monotonic() - t0 < 30:
        r = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(p.pid), "--name", "."],
                           capture_output=True, text=True)
        if r.stdout.strip():
            seen = time.monotonic() - t0
            break
        time.sleep(0.002)
    if seen is None:
        os.killpg(p.pid, signal.SIGKILL)
        sys.exit("no window within 30 s")
    if n == 0:
        time.sleep(rss_at)
        kb = 0
        # The whole process group (a client may start helpers).
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if os.getpgid(int(pid)) == p.pid:
                        for line in open(f"/proc/{pid}/status"):
                            if line.startswith("VmRSS:"):
                                kb += int(line.split()[1])
                except (ProcessLookupError, FileNotFoundError, PermissionError):
                    pass
        rss = kb / 1024
    os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    out.append(seen * 1000)
    time.sleep(0.5)
out.sort()
print(f"{out[len(out)//2]:.0f} {rss:.1f} " + ",".join(f"{x:.0f}" for x in out))
PY
)
read -r lives_start lives_rss lives_runs < <(
  TEAMCHAT_SETTINGS="$work/lives/settings.toml" python3 -c "$launch_python" \
    "$bin/teamchat-member" --identity "$work/lives/member.pem" --history-file "$work/lives/history.sqlite3" \
    "$RUNS" 3)

dino_row="| Dino (dino-im), same run | – | – | not measured (SKIP=dino) |"
if [ "${SKIP:-}" != dino ]; then
  need=()
  command -v dino-im >/dev/null || need+=(dino-im)
  apt_install_missing "${need[@]}"
  mkdir -p "$work/dino-home"
  read -r dino_start dino_rss dino_runs < <(
    HOME="$work/dino-home" XDG_CONFIG_HOME="$work/dino-home/.config" XDG_DATA_HOME="$work/dino-home/.local/share" \
      dbus-run-session -- python3 -c "$launch_python" dino-im "$RUNS" 3 2>/dev/null | tail -n 1)
  dino_row="| Dino $(dpkg-query -W -f='${Version}' dino-im 2>/dev/null), same run, same display | ${dino_start} ms (runs: $dino_runs) | ${dino_rss} MB | – |"
fi
start23=$(verdict "$lives_start <= 150")
rss23=$(verdict "$lives_rss <= 60")
echo
echo "| $ROOMS remembered rooms x $LINES lines | first visible window, median of $RUNS | RSS 3 s after | goals |"
echo "|---|---|---|---|"
echo "| member window | ${lives_start} ms (runs: $lives_runs) | ${lives_rss} MB | ≤ 150 ms: $start23; ≤ 60 MB: $rss23 |"
echo "$dino_row"
read -r _ sw_med sw_p95 sw_max _ stall_max _ late_p99 late_max _ f_med f_p99 f_max < <(
  "$bin/examples/rooms_probe" 2>/dev/null | tail -n 1)
switch23=$(verdict "$sw_max <= 50")
# The worst frame: it waits for the batch of lines in hand (the longest
# hold), then is drawn whole (the slowest). The timer's lateness counts
# the probe's own frames too (drawn on the same thread), so it is shown,
# not added.
worst=$(python3 -c "print(f'{$stall_max + $f_max:.1f}')")
frames23=$(verdict "$worst <= 50")
echo
echo "| $ROOMS rooms of 200 shown lines (ms) | median | p95 / p99 | max | goal |"
echo "|---|---|---|---|---|"
echo "| switch, to the new room's first whole frame (100 switches) | $sw_med | $sw_p95 (p95) | $sw_max | ≤ 50 ms: $switch23 |"
echo "| 1,000 lines/s for 10 s: whole frame rendered, every 100 ms | $f_med | $f_p99 (p99) | $f_max | worst (longest hold + slowest frame) $worst ms ≤ 50 ms: $frames23 |"
echo "| 1,000 lines/s: the window's thread held by one batch of 10 lines | – | – | $stall_max | |"
echo "| 1,000 lines/s: its 10 ms timer late by | – | $late_p99 (p99) | $late_max | |"
echo "| Dino | not measured: no probe in it | | | |"
if [ "${ONLY:-}" = rooms ]; then
  exit 0
fi

mkfifo "$work/admin.in" "$work/peer.in"
"$bin/teamchat-admin" --cli --json --relay "$addr" --relay-cert certs/relay.crt \
  --identity "$work/a.pem" --name boss --room-name bench --room-password "bench pass phrase 42" \
  --rekey-messages 0 --rekey-minutes 0 <"$work/admin.in" >"$work/admin.jsonl" 2>"$work/admin.err" &
pids+=($!)
exec 3>"$work/admin.in"
wait_for "$work/admin.jsonl" '"type":"epoch"' 60
invite=$(admin_invite "$work/admin.jsonl")
"$bin/teamchat-member" --invite "$invite" --name gui --password "bench pass phrase 42" \
  --identity "$work/m.pem" --join >"$work/gui.out" 2>"$work/gui.err" &
gui=$!
pids+=($gui)
"$bin/teamchat-member" --cli --json --invite "$invite" --name peer --password "bench pass phrase 42" \
  --identity "$work/p.pem" <"$work/peer.in" >"$work/peer.jsonl" 2>"$work/peer.err" &
peer=$!
pids+=($peer)
exec 4>"$work/peer.in"
wait_for "$work/peer.jsonl" '"name":"gui".*"type":"epoch"' 60
wait_for "$work/peer.jsonl" '"name":"peer".*"type":"epoch"' 60
python3 - "$MESSAGES" >&3 <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"message {i+1:04d}: the quick brown fox jumps over the lazy dog, status update for the launch team")
PY
wait_for "$work/peer.jsonl" "message $(printf %04d "$MESSAGES")" 120
sleep 3
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
gui_rss=$(rss "$gui")
peer_rss=$(rss "$peer")
[ -n "$(xdotool search --onlyvisible --pid "$gui" --name TeamChat 2>/dev/null)" ] || { echo "bench-gui: the member window is gone" >&2; cat "$work/gui.err" >&2; exit 1; }

ratio=$(python3 -c "print(f'{$gui_rss/$peer_rss:.2f}')")
start_ok=$(verdict "$median < 500")
rss_ok=$(verdict "$gui_rss < 60")
echo
echo "| measure | member window | member --cli (peer) | ratio | goal | met? |"
echo "|---|---|---|---|---|---|"
echo "| cold start to first visible window, median of $RUNS | ${median} ms (runs: $starts) | – | – | < 500 ms | $start_ok |"
echo "| resident memory with $MESSAGES messages received | ${gui_rss} MB | ${peer_rss} MB | ${ratio}x | < 60 MB | $rss_ok |"
