#!/usr/bin/env bash
# Benchmarks rooms split across two relays over NATS (the backplane) against
# the same room on one relay, in one run, with `teamchat-loadgen`; prints one
# markdown table.
#
#   scripts/bench-backplane.sh            # full run (a few minutes)
#   QUICK=1 scripts/bench-backplane.sh    # shorter runs, 2,000 idle conns
#
# Set-ups, each with fresh relays:
#   one    one relay, no backplane (the default deployment);
#   split  two relays sharing rooms through one local nats-server; the
#          subscribers alternate between them, the publisher is on the first.
# Runs in each set-up (the relays at their default queues and memory, rate
# limits raised for the publisher, as in bench-peers.sh):
#   - a room of 100 subscribers, 256 B messages from one publisher as fast
#     as it can (unpaced: the relays' flow control slows it; goal: no loss
#     in the split room), and paced to at most 200 messages ahead of the
#     slowest subscriber (goal: split >= 0.9 x one); delivered msgs/s, loss
#     and CPU per delivery (relays, and NATS);
#   - the same room at 100 msgs/s for 10 s after a 1 s warm-up: one-way
#     p50 / p99 (goal: split p99 <= 1.3 x one);
#   - 10,000 idle TLS connections in rooms of 10 (split: spread over both
#     relays, so every room spans them), RSS per connection.
# And once, split: the 100 msgs/s room for 12 s while NATS is stopped 3 s
# into it and started again 3 s later on the same port: what the members
# saw (subscribers cut, the longest stall, lines lost).
#
# Everything listens and connects on 127.0.0.1 only (ephemeral ports); the
# trap on EXIT stops every process started here and removes the temp dir.
# Needs bash, openssl, python3 and Debian's nats-server.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
prog=${0##*/}

if [ "${QUICK:-0}" = 1 ]; then
  mode=quick msgs=2000 lat_seconds=3 idle_conns=2000
else
  mode=full msgs=20000 lat_seconds=10 idle_conns=10000
fi
subs=100
timeout_s=180

# Per process: the load generator holds every client socket, a relay at most
# every server one.
raise_fd_limit $((idle_conns + 1024))
nats_find
command -v python3 >/dev/null || die "python3 is needed to tabulate the results"

bench_build

scratch_dir
temp_certs "$work/certs"

echo "== nats-server on 127.0.0.1" >&2
nats_start "$work"

# start_relay NAME [--backplane URL]: a fresh relay with benchmark limits
# (its pid in pids), sets addr.
start_relay() {
  bench_relay_start "$1" 16384 "${@:2}"
  addr=$relay_addr
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

mkdir -p "$work/out"
failures=0

# bench SETUP NAME SUBCOMMAND ARGS...: one run on fresh relays of SETUP;
# @PIDS@ becomes the relays' pids; the JSON lands in out/SETUP-NAME.json and
# NATS's CPU ticks during the run in out/SETUP-NAME.nats.
bench() {
  local setup=$1 name=$2
  shift 2
  local also=()
  if [ "$setup" = one ]; then
    start_relay "$setup-$name"
    main=$addr
  else
    start_relay "$setup-$name-a" --backplane "$nats_url"
    main=$addr
    start_relay "$setup-$name-b" --backplane "$nats_url"
    also=(--also "$addr")
  fi
  local ids
  ids=$(IFS=,; echo "${pids[*]}")
  local args=() a
  for a in "$@"; do
    args+=("${a//@PIDS@/$ids}")
  done
  echo "== $setup $name (relays $ids)" >&2
  local before rc=0
  before=$(cpu_ticks "$nats_pid")
  "$loadgen" "${args[@]}" --addr "$main" "${also[@]}" --ca "$work/certs/ca.crt" \
    --json --timeout "$timeout_s" >"$work/out/$setup-$name.json" || rc=$?
  echo $(($(cpu_ticks "$nats_pid") - before)) >"$work/out/$setup-$name.nats"
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 3 ] || rm -f "$work/out/$setup-$name.json"
    echo "$prog: $setup $name failed (exit $rc)" >&2
    tail -n 5 "$work"/relay-"$setup-$name"*.log >&2 || true
    failures=$((failures + 1))
  fi
  stop_all
}

for setup in one split; do
  bench "$setup" unpaced throughput --subs "$subs" --size 256 \
    --messages "$msgs" --relay-pid @PIDS@
  bench "$setup" throughput throughput --subs "$subs" --size 256 \
    --messages "$msgs" --window 200 --relay-pid @PIDS@
  bench "$setup" latency latency --subs "$subs" --size 256 --rate 100 \
    --seconds "$lat_seconds" --warmup 1
  bench "$setup" idle idle --conns "$idle_conns" --room-size 10 \
    --parallel 64 --relay-pid @PIDS@
done

# The outage: NATS stopped 3 s into a 12 s run at 100 msgs/s, back 3 s
# later on the same port.
echo "== split outage: NATS away for 3 s during the run" >&2
start_relay split-outage-a --backplane "$nats_url"
main=$addr
start_relay split-outage-b --backplane "$nats_url"
second=$addr
rc=0
"$loadgen" latency --subs "$subs" --size 256 --rate 100 --seconds 12 --warmup 1 \
  --addr "$main" --also "$second" --ca "$work/certs/ca.crt" --json \
  --timeout "$timeout_s" >"$work/out/split-outage.json" &
lg=$!
sleep 4
nats_port=${nats_url##*:}
kill "$nats_pid"
wait "$nats_pid" 2>/dev/null || true
sleep 3
"$nats_bin" -a 127.0.0.1 -p "$nats_port" >"$work/nats-again.log" 2>&1 &
nats_pid=$!
wait_port "$nats_port" "$nats_pid" 10 || die "nats-server did not come back on $nats_port"
wait "$lg" || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
  echo "$prog: the outage run failed (exit $rc)" >&2
  failures=$((failures + 1))
fi
stop_all

python3 - "$work/out" "$mode" "$idle_conns" "$(getconf CLK_TCK)" <<'PY'
import json, os, sys, time

out, mode, idle_conns, tck = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

sys.path.insert(0, os.path.join(os.getcwd(), "scripts", "lib"))
import bench_out  # noqa: E402  (scripts/lib/bench_out.py)


def load(name):
    return bench_out.load(out, name)

def nats_s(name):
    try:
        with open(os.path.join(out, name + ".nats")) as f:
            return int(f.read().strip()) / tck
    except (OSError, ValueError):
        return None

FAILED = "run failed (see stderr)"
t = {s: load(f"{s}-throughput") for s in ("one", "split")}
u = {s: load(f"{s}-unpaced") for s in ("one", "split")}
o = load("split-outage")
l = {s: load(f"{s}-latency") for s in ("one", "split")}
i = {s: load(f"{s}-idle") for s in ("one", "split")}

def tput(r):
    if r is None:
        return FAILED
    s = f"{r['delivered_per_s']:,.0f} msgs/s, lost {r['lost']:,} of {r['expected']:,}"
    if r.get("peer_left"):
        s += f", {r['peer_left']} subscribers dropped"
    return s

def cpu(r, setup):
    if r is None or r.get("relay_cpu_us_per_delivery") is None:
        return FAILED if r is None else "n/a"
    s = f"{r['relay_cpu_us_per_delivery']:.2f} µs"
    ns = nats_s(f"{setup}-throughput")
    if setup == "split" and ns is not None and r["delivered"]:
        s += f" (+ NATS {ns * 1e6 / r['delivered']:.2f} µs)"
    return s

def lat(r):
    if r is None:
        return FAILED
    f = lambda v: "-" if v is None else f"{v:,.0f}"
    return f"{f(r['p50_us'])} / {f(r['p99_us'])} µs, lost {r['lost']:,} of {r['expected']:,}"

def idle(r):
    if r is None:
        return FAILED
    d = f", {r['dropped']} dropped" if r["dropped"] else ""
    return f"{r['kib_per_conn']:.2f} KiB per connection ({r['rss_after_kib'] - r['rss_before_kib']:,} KiB in all{d})"

ratio = "n/a"
met = "**no**"
if l["one"] and l["split"] and l["one"]["p99_us"]:
    q = l["split"]["p99_us"] / l["one"]["p99_us"]
    ratio = f"{q:.2f}×"
    met = "yes" if q <= 1.3 and l["split"]["lost"] == 0 else "**no**"
rt = "n/a"
rt_met = "**no**"
if t["one"] and t["split"] and t["one"]["delivered_per_s"]:
    q = t['split']['delivered_per_s'] / t['one']['delivered_per_s']
    rt = f"{q:.2f}×"
    rt_met = "yes" if q >= 0.9 and t["split"]["lost"] == 0 else "**no**"
ut = "n/a"
if u["one"] and u["split"] and u["one"]["delivered_per_s"]:
    ut = f"{u['split']['delivered_per_s'] / u['one']['delivered_per_s']:.2f}×"
u_met = "yes" if u["split"] and u["split"]["lost"] == 0 and not u["split"].get("sub_errors") else "**no**"

def outage(r):
    if r is None:
        return FAILED
    stall = "-" if r.get("max_us") is None else f"{r['max_us'] / 1e6:.2f} s"
    cuts = r.get("sub_errors", 0) + r.get("peer_left", 0)
    s = (f"{cuts} subscriber(s) cut, longest wait {stall}, lost {r['lost']:,} of "
         f"{r['expected']:,} ({r['loss_pct']:.2f} %)")
    if r.get("publisher_error"):
        s += f"; publisher: {r['publisher_error']}"
    if r.get("first_sub_error"):
        s += f"; first subscriber error: {r['first_sub_error']}"
    return s

print(f"Backplane benchmark ({mode} run), {time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, "
      "relays, nats-server and load generator on the same machine, TLS 1.3 on 127.0.0.1.")
print()
print("| room of 100, 256 B | one relay | two relays over NATS | split / one | goal |")
print("|---|---|---|---|---|")
print(f"| delivered, publisher unpaced (the relays' flow control) | {tput(u['one'])} | {tput(u['split'])} | {ut} | split: no loss: {u_met} |")
print(f"| delivered, publisher ≤ 200 messages ahead of the slowest subscriber | {tput(t['one'])} | {tput(t['split'])} | {rt} | ≥ 0.9×: {rt_met} |")
print(f"| CPU per delivery (relays) | {cpu(t['one'], 'one')} | {cpu(t['split'], 'split')} | | — |")
print(f"| latency at 100 msgs/s, p50 / p99 | {lat(l['one'])} | {lat(l['split'])} | p99 {ratio} | p99 ≤ 1.3×: {met} |")
print(f"| {idle_conns:,} idle TLS connections, rooms of 10 | {idle(i['one'])} | {idle(i['split'])} | | held |")
print()
print(f"NATS stopped for 3 s during a 12 s run at 100 msgs/s (split room of 100): {outage(o)}.")
PY

if [ "$failures" -gt 0 ]; then
  die "$failures run(s) failed"
fi
