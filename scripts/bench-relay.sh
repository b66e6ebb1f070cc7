#!/usr/bin/env bash
# Benchmarks the TeamChat relay over real TLS on loopback with
# `teamchat-loadgen`, and prints one markdown table of the figures beside the
# issue's goals.
#
#   scripts/bench-relay.sh             # full run (a few minutes)
#   QUICK=1 scripts/bench-relay.sh     # fewer messages, shorter runs
#
# Runs, each against a freshly started relay (so CPU and memory readings do
# not carry over from one run to the next):
#   - throughput: N = 10 and N = 100 subscribers × 256 B and 4 KiB payloads,
#     500,000 / N messages from one publisher as fast as the relay takes them;
#   - latency: N = 10, 256 B, 100 msgs/s for 10 s after a 1 s warm-up;
#   - idle: 1,000 TLS connections (rooms of 10), relay RSS per connection.
#
# Goals (issue): >= 150,000 delivered msgs/s at N = 100 x 256 B with zero
# loss; <= 3 us relay CPU per delivery; <= 15 KiB relay RSS per idle TLS
# connection.
#
# Everything listens and connects on 127.0.0.1 only. The relay's limits are
# raised for the benchmark (rates, connection counts; queues and memory stay
# at their defaults); the trap on
# EXIT stops every process this script started and removes its temp dir.
# Progress goes to stderr, the table to stdout. Needs bash, openssl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
prog=${0##*/}

# 1,000 client sockets plus the relay's own, in one process tree.
raise_fd_limit 4096 "; raise the hard limit (e.g. /etc/security/limits.conf or 'ulimit -Hn' as root) and retry"

command -v python3 >/dev/null || die "python3 is needed to tabulate the results"
command -v openssl >/dev/null || die "the openssl command line is needed for certificates"

if [ "${QUICK:-0}" = 1 ]; then
  mode="quick"
  total_msgs=200000 # messages per run = total_msgs / N
  lat_seconds=3
  lat_warmup=1
  idle_conns=1000
else
  mode="full"
  total_msgs=500000
  lat_seconds=10
  lat_warmup=1
  idle_conns=1000
fi
timeout_s=120

bench_build

scratch_dir

echo "== certificates in $work/certs" >&2
if [ -x scripts/gen-certs.sh ]; then
  temp_certs "$work/certs"
else
  echo "$prog: scripts/gen-certs.sh not found, making a self-signed ECDSA P-256 certificate" >&2
  mkdir -p "$work/certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/certs/relay.key" -out "$work/certs/relay.crt" -days 2 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    2>/dev/null
  cp "$work/certs/relay.crt" "$work/certs/ca.crt"
  check_certs "$work/certs"
fi

mkdir -p "$work/out"
failures=0

# run NAME SUBCOMMAND ARGS...: one loadgen run against a fresh relay (an
# argument @PID@ becomes its pid); the JSON lands in $work/out/NAME.json.
run() {
  local name=$1
  shift
  bench_relay_start "$name" 4096
  local args=() a
  for a in "$@"; do
    args+=("${a//@PID@/$relay_pid}")
  done
  echo "== $name (relay pid $relay_pid on $relay_addr)" >&2
  local rc=0
  "$loadgen" "${args[@]}" --addr "$relay_addr" --ca "$work/certs/ca.crt" \
    --json --timeout "$timeout_s" >"$work/out/$name.json" || rc=$?
  if [ "$rc" -ne 0 ]; then
    # 3: a partial report was printed (--timeout); keep it for the table.
    [ "$rc" -eq 3 ] || rm -f "$work/out/$name.json"
    echo "$prog: $name failed (exit $rc); last lines of the relay log:" >&2
    tail -n 20 "$work/relay-$name.log" >&2 || true
    failures=$((failures + 1))
  fi
  stop_all
}

for n in 10 100; do
  for size in 256 4096; do
    run "throughput-$n-$size" throughput --subs "$n" --size "$size" \
      --messages $((total_msgs / n)) --relay-pid @PID@
  done
done
run "latency-10-256" latency --subs 10 --size 256 --rate 100 \
  --seconds "$lat_seconds" --warmup "$lat_warmup"
run "idle-$idle_conns" idle --conns "$idle_conns" --room-size 10 --relay-pid @PID@

python3 - "$work/out" "$mode" "$idle_conns" <<'PY'
import json, os, platform, subprocess, sys, time

out, mode, idle_conns = sys.argv[1], sys.argv[2], int(sys.argv[3])

sys.path.insert(0, os.path.join(os.getcwd(), "scripts", "lib"))
import bench_out  # noqa: E402  (scripts/lib/bench_out.py)


def load(name):
    return bench_out.load(out, name)

def n(v, digits=0):
    return f"{v:,.{digits}f}"

def verdict(ok):
    return "yes" if ok else "**no**"

rows = []  # (benchmark, metric, measured, goal, met)
FAILED = "run failed (see stderr)"

for subs in (10, 100):
    for size in (256, 4096):
        name = f"throughput-{subs}-{size}"
        label = f"throughput N={subs} × {size if size < 1024 else size // 1024} {'B' if size < 1024 else 'KiB'}"
        r = load(name)
        goal_row = subs == 100 and size == 256
        if r is None:
            rows.append((label, "all", FAILED, "", "**no**" if goal_row else ""))
            continue
        notes = []
        if r.get("timed_out"):
            notes.append("timed out")
        if r.get("publisher_error"):
            notes.append("publisher: " + r["publisher_error"])
        if r.get("peer_left"):
            notes.append(f"relay dropped {r['peer_left']} subscribers")
        if r.get("first_sub_error"):
            notes.append(f"{r['sub_errors']} subscribers failed: {r['first_sub_error']}")
        rate = r["delivered_per_s"]
        rate_s = n(rate) + " deliveries/s" + (f" ({'; '.join(notes)})" if notes else "")
        rows.append((label, "delivered msgs/s", rate_s,
                     "≥ 150,000" if goal_row else "—",
                     verdict(rate >= 150_000) if goal_row else ""))
        lost, expected = r["lost"], r["expected"]
        loss_s = f"{n(lost)} of {n(expected)} ({r['loss_pct']:.3f} %), {n(r['duplicates'])} dup."
        clean = lost == 0 and r["duplicates"] == 0 and r["bogus"] == 0
        rows.append((label, "loss", loss_s, "0" if goal_row else "—",
                     verdict(clean) if goal_row else ""))
        cpu = r.get("relay_cpu_us_per_delivery")
        cpu_s = "n/a" if cpu is None else f"{cpu:.2f} µs"
        if cpu is not None and r.get("loadgen_cpu_us_per_delivery") is not None:
            cpu_s += f" (load generator {r['loadgen_cpu_us_per_delivery']:.2f} µs)"
        rows.append((label, "relay CPU per delivery", cpu_s,
                     "≤ 3 µs" if goal_row else "—",
                     verdict(cpu is not None and cpu <= 3.0) if goal_row else ""))

r = load("latency-10-256")
label = "latency N=10 × 256 B, 100 msgs/s"
if r is None:
    rows.append((label, "all", FAILED, "", ""))
else:
    fmt = lambda v: "-" if v is None else n(v)
    rows.append((label, "one-way p50 / p99 / max",
                 f"{fmt(r['p50_us'])} / {fmt(r['p99_us'])} / {fmt(r['max_us'])} µs "
                 f"({n(r['samples'])} samples over {r['seconds']:g} s)", "—", ""))
    rows.append((label, "loss", f"{n(r['lost'])} of {n(r['expected'])} ({r['loss_pct']:.3f} %)",
                 "—", ""))

r = load(f"idle-{idle_conns}")
label = f"idle, {n(idle_conns)} TLS connections"
if r is None:
    rows.append((label, "relay RSS per connection", FAILED, "≤ 15 KiB", "**no**"))
else:
    extra = f", {r['dropped']} dropped" if r["dropped"] else ""
    rows.append((label, "relay RSS per connection",
                 f"{r['kib_per_conn']:.2f} KiB ({n(r['rss_before_kib'])} → "
                 f"{n(r['rss_after_kib'])} KiB{extra})",
                 "≤ 15 KiB", verdict(r["kib_per_conn"] <= 15.0 and not r["dropped"])))

ossl = bench_out.openssl_version()
print(f"Relay benchmark ({mode} run), {time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores "
      f"{platform.machine()}, {ossl}, TLS 1.3 on 127.0.0.1, relay and load generator on "
      f"the same machine.")
print()
print("| benchmark | metric | measured | goal | met |")
print("|---|---|---|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")

notes = []
for name in sorted(os.listdir(out)):
    r = load(name[:-5]) if name.endswith(".json") else None
    if r and r.get("peer_frames_before_welcome"):
        notes.append(f"{name[:-5]}: {r['peer_frames_before_welcome']} PeerJoined/PeerLeft "
                     "frames arrived before their connection's Welcome")
if notes:
    print()
    print("Protocol warnings (tolerated by the load generator; PROTOCOL.md §3 has the "
          "Welcome first):")
    for line in notes:
        print(f"- {line}")
PY

if [ "$failures" -gt 0 ]; then
  die "$failures run(s) failed"
fi
