#!/usr/bin/env bash
# Soaks one relay in abuse while an honest room chats, on 127.0.0.1 only,
# bounded in time; prints one markdown table and exits 1 if a goal is missed.
#
#   scripts/soak-relay.sh             # full: 10,000 stalled connections (3 min)
#   SHORT=1 scripts/soak-relay.sh     # CI: 1,000 of them (about a minute;
#                                     # the honest p99 is shown, not judged)
#   CONTROL=1 scripts/soak-relay.sh   # the same abuse aimed at a second relay
#                                     # on this machine, the honest room's
#                                     # relay left alone: what the machine
#                                     # itself costs the room's p99 (shown,
#                                     # not judged)
#
# The relay runs at its default settings (timeouts, queues, memory, rate
# limits) but for --max-conns, raised so that the abuse and the honest room
# all fit. With `teamchat-loadgen`:
#   1. alone: an honest room (one publisher at 100 msgs/s of 256 B, its other
#      members subscribers) measures one-way p50/p99 and loss;
#   2. then, kept up throughout (`teamchat-loadgen abuse`): a population of
#      stalled connections (a third each: TCP and nothing, half a TLS
#      ClientHello, TLS and no hello; each one the relay closes is opened
#      again), garbage connections at a steady rate (plain bytes instead of
#      TLS; a malformed frame after a hello), and slow readers taking one
#      byte a second, each in a room flooded by a publisher of its own
#      (refilled as the relay cuts them; one reader per room, so each is
#      timed from the moment its own queue fills). The abusers come from many loopback addresses
#      (127.1.0.0/16, 50 each, under the relay's 64 per address), as abuse
#      from many machines would;
#   3. the same honest room again, while the abuse goes on.
# Goals: every abusive connection ended within its timeout (+2 s); the
# honest room loses nothing and its p99 with abuse <= 2x alone; the relay's
# peak RSS under the bound printed (its base, 20 KiB per stalled connection,
# the whole queue of each slow reader, 32 MiB of allocator slack).
#
# Needs bash, openssl and python3. Binaries: release builds, or the ones
# named by TEAMCHAT_RELAY_BIN and TEAMCHAT_LOADGEN_BIN (CI passes its debug
# builds). The trap on EXIT stops every process started here and removes
# the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
prog=${0##*/}

if [ "${SHORT:-0}" = 1 ]; then
  mode=short stalled=1000 garbage=20 slow=10 room=10 alone_s=5 during_s=8 abuse_s=24
else
  mode=full stalled=10000 garbage=50 slow=50 room=50 alone_s=20 during_s=30 abuse_s=60
fi
# The relay's defaults, which the loadgen judges the closes against.
handshake_timeout=10 hello_timeout=10 slow_reader_timeout=5 last_words=5
# Stalled connections, the garbage in flight, the slow readers and their
# flooders, the honest room; the relay and the load generators have one
# descriptor for each of theirs.
max_conns=$((stalled + garbage * 4 + slow * 2 + room + 1000))
raise_fd_limit $((max_conns + 1024))
command -v python3 >/dev/null || die "python3 is needed to tabulate the results"

if [ -n "${TEAMCHAT_RELAY_BIN:-}" ] || [ -n "${TEAMCHAT_LOADGEN_BIN:-}" ]; then
  relay_bin=${TEAMCHAT_RELAY_BIN:?set both TEAMCHAT_RELAY_BIN and TEAMCHAT_LOADGEN_BIN}
  loadgen=${TEAMCHAT_LOADGEN_BIN:?set both TEAMCHAT_RELAY_BIN and TEAMCHAT_LOADGEN_BIN}
  for b in "$relay_bin" "$loadgen"; do
    [ -x "$b" ] || die "$b is not an executable"
  done
else
  echo "== cargo build --release -p relay -p bench" >&2
  cargo build --release -p relay -p bench >&2
  relay_bin=$PWD/target/release/teamchat-relay
  loadgen=$PWD/target/release/teamchat-loadgen
fi

scratch_dir
temp_certs -q "$work/certs"
mkdir -p "$work/out"

echo "== relay (defaults; --max-conns $max_conns)" >&2
relay_start "$work/relay.log" "$work/relay.log" 127.0.0.1:0 \
  "$work/certs/relay.crt" "$work/certs/relay.key" --max-conns "$max_conns" --log warn
relay=$relay_pid
addr=$relay_addr
# The relay the abuse aims at: the same one, or for the control a second.
if [ "${CONTROL:-0}" = 1 ]; then
  mode="$mode, control"
  echo "== control: a second relay (defaults; --max-conns $max_conns) takes the abuse" >&2
  relay_start "$work/target.log" "$work/target.log" 127.0.0.1:0 \
    "$work/certs/relay.crt" "$work/certs/relay.key" --max-conns "$max_conns" --log warn
  target=$relay_pid
  target_addr=$relay_addr
else
  target=$relay
  target_addr=$addr
fi
rss_base=$(awk '/^VmRSS:/ {print $2}' "/proc/$target/status")

# honest NAME SECONDS: the honest room, measured for SECONDS after a 1 s
# warm-up; its JSON in out/NAME.json.
honest() {
  local rc=0
  echo "== honest room of $room: $1 (${2} s at 100 msgs/s)" >&2
  "$loadgen" latency --addr "$addr" --ca "$work/certs/ca.crt" --subs $((room - 1)) \
    --size 256 --rate 100 --seconds "$2" --warmup 1 --json --timeout $(($2 + 60)) \
    >"$work/out/$1.json" || rc=$?
  [ "$rc" -eq 0 ] || die "the honest room's run ($1) failed (exit $rc)"
}

honest alone "$alone_s"

echo "== abuse for ${abuse_s} s: $stalled stalled, $garbage garbage/s, $slow slow readers" >&2
# At the lowest CPU priority: on a machine of two cores, the abusers' own
# work (thousands of handshakes a minute) would otherwise be what slows the
# honest room, not the relay's; real abusers use machines of their own.
# SCHED_IDLE where chrt is (util-linux): on a current kernel (EEVDF) even
# `nice 19` work holds a core for its slice, and two nice-19 busy loops
# alone triple the honest room's p99 (docs/BENCHMARKS.md).
# The short run (CI) judges no p99, only closes timed by the abusers
# themselves: there `nice 19`, so that a busy machine cannot starve them
# into seeing a close late.
lowest=(nice -n 19)
if [ "${SHORT:-0}" != 1 ] && command -v chrt >/dev/null && chrt --idle 0 true 2>/dev/null; then
  lowest=(chrt --idle 0)
fi
"${lowest[@]}" "$loadgen" abuse --addr "$target_addr" --ca "$work/certs/ca.crt" \
  --tcp-stall $((stalled - 2 * (stalled / 3))) --handshake-stall $((stalled / 3)) \
  --hello-stall $((stalled / 3)) --garbage-rate "$garbage" --slow-readers "$slow" --readers-per-room 1 \
  --seconds "$abuse_s" --handshake-timeout "$handshake_timeout" \
  --hello-timeout "$hello_timeout" --slow-within $((slow_reader_timeout + last_words)) \
  --parallel 64 --relay-pid "$target" --json --timeout $((abuse_s + 60)) \
  >"$work/out/abuse.json" &
abuser=$!
pids+=("$abuser")
# The stalled population builds up within a few seconds, and the first
# round of stalls is timed out at the handshake timeout: measure after it.
sleep $((handshake_timeout + 2))
kill -0 "$abuser" 2>/dev/null || die "the abuse ended early"
honest during "$during_s"
rc=0
wait "$abuser" || rc=$?
[ "$rc" -eq 0 ] || die "the abuse run failed (exit $rc)"
kill -0 "$relay" 2>/dev/null || die "the relay died during the soak"
kill -0 "$target" 2>/dev/null || die "the abused relay died during the soak"
rss_peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$target/status")
# Once the abuse has stopped the relay is idle again (nothing left spinning
# on a connection that went away): CPU over 3 s, in ticks (100 a second).
sleep 2
cpu() { awk '{print $14 + $15}' "/proc/$target/stat"; }
idle_before=$(cpu)
sleep 3
idle_ticks=$(($(cpu) - idle_before))

python3 - "$work/out" "$mode" "$rss_base" "$rss_peak" "$slow" "$idle_ticks" "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, mode = sys.argv[1], sys.argv[2]
base, peak, slow, idle_ticks, tck = (int(v) for v in sys.argv[3:8])
alone = json.load(open(f"{out}/alone.json"))
during = json.load(open(f"{out}/during.json"))
abuse = json.load(open(f"{out}/abuse.json"))
ok = True

def goal(met):
    global ok
    ok = ok and met
    return "met" if met else "**NOT met**"

# What the relay may hold: its base; per stalled connection up to 20 KiB
# (a task and a socket; after TLS, OpenSSL's state of the connection); per
# slow reader its whole queue (--queue-bytes, 4 MiB: the flood it is cut
# in); 32 MiB for the allocator's slack.
stalled = abuse["stalled"]
bound = base + stalled * 20 + slow * 4 * 1024 + 32 * 1024
print(f"### Relay soak ({mode}): {stalled:,} stalled connections, "
      f"{abuse['garbage_rate']:.0f} garbage connections/s, {slow} slow readers, "
      f"{abuse['seconds']:.0f} s, from {abuse['sources']} source addresses\n")
print("| abusive connections | ended by | opened | closed | p50 / max to close | bound | late / overdue | goal |")
print("|---|---|---:|---:|---|---:|---:|---|")
for k in abuse["kinds"]:
    if k["opened"] == 0 and k["open_failed"] == 0:
        continue
    p50 = "-" if k["close_p50_s"] is None else f"{k['close_p50_s']:.2f} s"
    mx = "-" if k["close_max_s"] is None else f"{k['close_max_s']:.2f} s"
    met = k["late"] == 0 and k["overdue"] == 0 and k["closed"] > 0
    failed = f" ({k['open_failed']} failed to open)" if k["open_failed"] else ""
    print(f"| {k['kind']}{failed} | {k['ended_by']} | {k['opened']:,} | {k['closed']:,} | "
          f"{p50} / {mx} | {k['bound_s']:.0f} s | {k['late']} / {k['overdue']} | {goal(met)} |")
reached = abuse["stalled_reached_s"]
print(f"\nThe stalled population was reached in "
      f"{'never' if reached is None else f'{reached:.1f} s'}; floods that ended with every "
      f"reader cut: {abuse['floods_ended']} ({abuse['flood_frames']:,} frames flooded).\n")

def p99_goal(no_loss, ratio):
    # The short run (CI, debug builds, a few seconds) judges the loss only:
    # a p99 over 8 s on a shared machine is noise, not a figure.
    if mode == "short":
        return f"{goal(no_loss)} (no loss; p99 judged in the full run only)"
    if mode.endswith("control"):
        return f"{goal(no_loss)} (no loss; the p99 is the machine's share: not judged)"
    return f"{goal(no_loss and ratio <= 2.0)} (no loss, p99 <= 2x)"

def ms(v):
    return "-" if v is None else f"{v / 1000:.2f} ms"

print("| honest room | messages | lost | p50 | p99 | goal |")
print("|---|---:|---:|---:|---:|---|")
print(f"| alone | {alone['expected']:,} | {alone['lost']} | {ms(alone['p50_us'])} | "
      f"{ms(alone['p99_us'])} | {goal(alone['lost'] == 0)} (no loss) |")
ratio = (during["p99_us"] or 0) / (alone["p99_us"] or 1)
print(f"| during the abuse | {during['expected']:,} | {during['lost']} | "
      f"{ms(during['p50_us'])} | {ms(during['p99_us'])} ({ratio:.2f}x alone) | "
      f"{p99_goal(during['lost'] == 0, ratio)} |")
print(f"\nRelay RSS: {base:,} KiB at start, peak {peak:,} KiB; bound {bound:,} KiB "
      f"(base + 20 KiB per stalled connection + 4 MiB per slow reader + 32 MiB): "
      f"{goal(peak <= bound)}.")
idle_pct = idle_ticks * 100 / tck / 3
print(f"\nRelay CPU in the 3 s after the abuse stopped: {idle_pct:.1f} % of a core "
      f"(goal: under 5 %, nothing left spinning): {goal(idle_pct < 5)}.")
sys.exit(0 if ok else 1)
PY
