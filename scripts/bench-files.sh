#!/usr/bin/env bash
# The file-transfer benchmark (issue 21): one file from one member to 1 and
# to 5 members through the relay on loopback, everything at its default
# settings (the relay started with no limit raised; the client with no
# pace: the relay's flow control sets it), beside magic-wormhole sending the
# same file through its own transit relay in the same run, and chat latency
# while the transfer runs against chat without one. Prints one markdown
# table with the goals:
#   - 1 member: the file's rate >= 0.5x wormhole's;
#   - 5 members: done before five wormhole sends would be;
#   - chat p99 during the transfer <= 2x its p99 idle.
#
#   scripts/bench-files.sh            # full run: 100 MiB file, 3 runs each
#   QUICK=1 scripts/bench-files.sh    # 20 MiB file, 1 run each
#
# Steps:
#   1. the release relay and `teamchat-filebench` (crate `bench`); the
#      certificates in a temporary folder; magic-wormhole 0.12, its mailbox
#      server and its transit relay (Debian packages, installed if missing:
#      scripts/lib/wormhole.sh) started on 127.0.0.1;
#   2. a file of random bytes;
#   3. a fresh `teamchat-relay` at its defaults; `teamchat-filebench --file`
#      sends that file in a fresh room (admin, sender, N receivers: the
#      product's engine and driver over TLS, pinned certificate, fresh RSA
#      keys) RUNS times per N, the admin writing a chat line every 100 ms
#      before (idle) and during the transfer; every saved file's SHA-256 is
#      checked; time from the send to the last receiver's save;
#   4. wormhole: RUNS single sends, and RUNS times five sends one after the
#      other (their times added up), each through the transit relay only
#      (--no-listen; checked from both clients' output and the relay's own
#      usage record), the received file's SHA-256 checked; time from the
#      sender's start to the receiver's exit.
#
# Loopback only. The trap on EXIT stops every process this script started
# and removes its temporary folder (certificates, files, downloads).
# Progress goes to stderr, the table to stdout. Needs bash, openssl, python3
# and apt (for magic-wormhole, if it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/wormhole.sh
prog=${0##*/}

command -v python3 >/dev/null || die "python3 is needed to tabulate the results"
command -v openssl >/dev/null || die "the openssl command line is needed for certificates"

if [ "${QUICK:-0}" = 1 ]; then
  mode="quick"
  size_mib=20
  runs=1
  baseline_s=3
else
  mode="full"
  size_mib=100
  runs=3
  baseline_s=5
fi
filebench_timeout=3600

wormhole_install
# One build: the relay links the `wire` crate alone, whatever else is built
# with it (docs/ARCHITECTURE.md, "The walls").
bench_build

scratch_dir
trap 'wormhole_stop; exit_cleanup' EXIT

echo "== certificates in $work/certs" >&2
temp_certs -q "$work/certs"
mkdir -p "$work/out"
failures=0

echo "== a $size_mib MiB file of random bytes" >&2
file=$work/file.bin
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$file"

# 1. TeamChat, everything at its defaults.
relay_start "$work/relay.log" "$work/relay.log" 127.0.0.1:0 \
  "$work/certs/relay.crt" "$work/certs/relay.key" --log warn
args=(--addr "$relay_addr" --cert "$work/certs/relay.crt" --receivers "1,5"
  --file "$file" --runs "$runs" --crypto-chunks 400 --baseline-secs "$baseline_s"
  --scratch "$work" --timeout "$filebench_timeout" --json)
echo "== teamchat-filebench ${args[*]} (relay pid $relay_pid, default settings)" >&2
rc=0
"$filebench" "${args[@]}" >"$work/out/files.jsonl" &
pids+=("$!")
wait "$!" || rc=$?
if [ "$rc" -ne 0 ]; then
  # 3: a report was printed, but some run failed.
  echo "$prog: teamchat-filebench exited with $rc; last lines of the relay log:" >&2
  tail -n 20 "$work/relay.log" >&2 || true
  failures=$((failures + 1))
fi
relay_version=$("$relay_bin" --version 2>&1 | head -n 1 || true)
stop_all

# 2. magic-wormhole, the same file, through its own transit relay.
wormhole_start "$work/wormhole"
mkdir -p "$work/wormhole/out"
: >"$work/out/wormhole.txt"
for r in $(seq "$runs"); do
  echo "== wormhole: one send, run $r of $runs" >&2
  secs=$(wormhole_send_time "$file" "$work/wormhole/out") || die "a wormhole send failed"
  echo "one $secs" >>"$work/out/wormhole.txt"
  echo "   $secs s" >&2
done
for r in $(seq "$runs"); do
  echo "== wormhole: five sends one after the other, run $r of $runs" >&2
  total=0
  for i in 1 2 3 4 5; do
    secs=$(wormhole_send_time "$file" "$work/wormhole/out") || die "a wormhole send failed"
    total=$(python3 -c 'import sys; print(float(sys.argv[1]) + float(sys.argv[2]))' "$total" "$secs")
    echo "   send $i: $secs s" >&2
  done
  echo "five $total" >>"$work/out/wormhole.txt"
done
wormhole_version=$(dpkg-query -W -f '${Version}' magic-wormhole 2>/dev/null || echo "?")
wormhole_stop

# Every JSON line of the run, for a closer look afterwards.
results=${FILES_RESULTS:-target/bench-files.jsonl}
cat "$work/out/files.jsonl" "$work/wormhole/out/wormhole.jsonl" >"$results" 2>/dev/null || true
echo "== JSON results in $results" >&2

python3 - "$work/out" "$mode" "$size_mib" "$runs" "$relay_version" "$wormhole_version" <<'PY'
import json, os, platform, statistics, sys, time

out, mode, size_mib, runs, relay_version, wh_version = sys.argv[1:7]
size = int(size_mib) * 1024 * 1024

def lines(name):
    try:
        with open(os.path.join(out, name)) as f:
            return [json.loads(l) for l in f if l.strip().startswith("{")]
    except (OSError, ValueError):
        return []

results = lines("files.jsonl")
sums = {r["receivers"]: r for r in results if r.get("bench") == "filebench"}
crypto = next((r for r in results if r.get("bench") == "filebench-crypto"), None)
wh = {"one": [], "five": []}
with open(os.path.join(out, "wormhole.txt")) as f:
    for line in f:
        k, v = line.split()
        wh[k].append(float(v))
wh_one = statistics.median(wh["one"]) if wh["one"] else None
wh_five = statistics.median(wh["five"]) if wh["five"] else None

sys.path.insert(0, os.path.join(os.getcwd(), "scripts", "lib"))
import bench_out  # noqa: E402  (scripts/lib/bench_out.py)

def f(v, d=1):
    return "–" if v is None else f"{v:,.{d}f}"

print(f"File-transfer benchmark ({mode} run, {size_mib} MiB file, median of {runs} run(s)), "
      f"{time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores {platform.machine()}, "
      f"{bench_out.openssl_version()}, {relay_version} at its default settings, TLS 1.3 on "
      f"127.0.0.1; magic-wormhole {wh_version} through its own transit relay; senders, "
      f"receivers and relays on the same machine.")
print()
if crypto:
    print(f"Seal/open of 64 KiB chunks in the same run (MB/s, one thread each): seal "
          f"{crypto['seal_mbps']:,.0f}, open {crypto['open_mbps']:,.0f}, SHA-256 "
          f"{crypto.get('sha256_mbps', 0):,.0f}.")
    print()
print("| N | TeamChat time | TeamChat MB/s per receiver | magic-wormhole | goal | met? | "
      "chat p50 / p99 during | chat p50 / p99 idle | p99 ratio (goal ≤ 2) |")
print("|---|---|---|---|---|---|---|---|---|")
missed = 0
for n in (1, 5):
    s = sums.get(n)
    if s is None or s.get("elapsed_s") is None:
        print(f"| {n} | failed (see stderr) | | | | **no** | | | |")
        missed += 1
        continue
    t = s["elapsed_s"]
    if n == 1:
        peer = f"{f(wh_one, 2)} s ({f(size / wh_one / 1e6) if wh_one else '–'} MB/s)"
        ratio = (wh_one / t) if wh_one else None
        goal = f"≥ 0.5× wormhole's rate: {f(ratio, 2)}×"
        met = ratio is not None and ratio >= 0.5
    else:
        peer = f"5 sends: {f(wh_five, 2)} s"
        goal = f"before 5 wormhole sends: {f(t, 2)} vs {f(wh_five, 2)} s"
        met = wh_five is not None and t < wh_five
    chat_ok = s.get("chat_goal_met", False)
    missed += (not met) + (not chat_ok)
    print(f"| {n} | {t:.2f} s ({s['ok_runs']} of {s['runs']} held) | {f(s.get('file_mbps'))} | "
          f"{peer} | {goal} | {'yes' if met else '**no**'} | "
          f"{f(s.get('chat_during_p50_ms'))} / {f(s.get('chat_during_p99_ms'))} ms | "
          f"{f(s.get('chat_idle_p50_ms'))} / {f(s.get('chat_idle_p99_ms'))} ms | "
          f"{f(s.get('chat_ratio'), 2)} {'met' if chat_ok else '**not met**'} |")
notes = []
for n, s in sorted(sums.items()):
    for fl in s.get("failures", []):
        notes.append(f"N={n}: a run failed: {fl}")
    if s.get("chat_lost"):
        notes.append(f"N={n}: {s['chat_lost']} chat line(s) lost during transfers")
for t in (r for r in results if r.get("bench") == "filebench-try"):
    if t.get("first_warning"):
        notes.append(f"N={t['receivers']}: {t['warnings']} warning(s), first: {t['first_warning']}")
if notes:
    print()
    for line in notes:
        print(f"- {line}")
print()
print(f"magic-wormhole, each send: {', '.join(f'{v:.2f}' for v in wh['one'])} s; five sends: "
      f"{', '.join(f'{v:.2f}' for v in wh['five'])} s.")
sys.exit(0)
PY

if [ "$failures" -gt 0 ]; then
  die "$failures step(s) failed (see above)"
fi
