#!/usr/bin/env bash
# The file-transfer benchmark of issue 10: a file from one member to N = 1
# and N = 10 members through the relay on loopback, beside the relay's raw
# forwarding rate for opaque 64 KiB frames and the seal/open rate measured
# in the same run, as ratios (goal: >= 0.5x the lower of the two limits),
# and chat latency while the transfer runs. Prints one markdown table.
#
#   scripts/bench-files.sh            # full run: 100 MiB file (a few minutes)
#   QUICK=1 scripts/bench-files.sh    # 20 MiB file, shorter phases
#   DEFAULT_PACE=0 ...                # skip the try at the product's default pace
#
# Steps, each against a freshly started relay (limits raised as in
# scripts/bench-relay.sh: rates and connection counts; queues, memory and
# frames, up to the default 1 MiB, at their defaults):
#   1. raw relay rate: `teamchat-loadgen compare --proto relay --scenario
#      throughput --size 65536 --subs N` (one publisher, N subscribers, as
#      many 64 KiB frames as the file has chunks); per-subscriber stream
#      MB/s = delivered msgs/s x 65536 / N / 10^6;
#   2. `teamchat-filebench` (crate `bench`, feature `files`): the seal/open
#      rates (seal, open, and 1 sealer + N openers at once), then for each N
#      an in-process room (admin, sender, N receivers: the product's engine
#      and driver over TLS, pinned certificate, fresh RSA keys) and a pace
#      search: the sender's fixed pace starts at the lower limit and steps
#      down x0.7 after a failed try (a member dropped, a failed transfer, no
#      file in time), at most 6 tries; the admin writes a chat line every
#      100 ms before (baseline) and during the transfer; every saved file's
#      SHA-256 is checked. With DEFAULT_PACE=1 (the default), one more try
#      for N = 10 at the product's default pace of 2 MiB/s.
#
# Loopback only. The trap on EXIT stops every process this script started
# and removes its temporary folder (certificates, files, downloads).
# Progress goes to stderr, the table to stdout. Needs bash, openssl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
prog=${0##*/}

command -v python3 >/dev/null || die "python3 is needed to tabulate the results"
command -v openssl >/dev/null || die "the openssl command line is needed for certificates"

if [ "${QUICK:-0}" = 1 ]; then
  mode="quick"
  size_mib=20
  baseline_s=2
else
  mode="full"
  size_mib=100
  baseline_s=3
fi
chunks=$((size_mib * 16)) # 64 KiB chunks in the file
receivers="1 10"
default_pace_for=""
[ "${DEFAULT_PACE:-1}" = 1 ] && default_pace_for=10
loadgen_timeout=300
filebench_timeout=3600

# One build: the relay links the `wire` crate alone, whatever else is built
# with it (docs/ARCHITECTURE.md, "The walls").
bench_build

scratch_dir

echo "== certificates in $work/certs" >&2
temp_certs -q "$work/certs"

mkdir -p "$work/out"
failures=0

# 1. The relay's raw forwarding rate for opaque 64 KiB frames.
raw_pairs=()
for n in $receivers; do
  bench_relay_start "raw-$n" 4096
  echo "== raw relay: 1 publisher, $n subscriber(s), $chunks x 64 KiB (relay pid $relay_pid on $relay_addr)" >&2
  out=$work/out/raw-$n.json
  if "$loadgen" compare --proto relay --scenario throughput --size 65536 --subs "$n" \
    --messages "$chunks" --server-pid "$relay_pid" --addr "$relay_addr" \
    --ca "$work/certs/ca.crt" --timeout "$loadgen_timeout" >"$out" 2>"$work/out/raw-$n.err"; then
    echo "   $(cat "$out")" >&2
    mbps=$(python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
n = int(sys.argv[2])
v = r["delivered_per_sec"] * 65536 / n / 1e6
print(f"{v:.3f}" if v == v and v > 0 else "")
' "$out" "$n")
    [ -n "$mbps" ] && raw_pairs+=("$n=$mbps")
  else
    echo "$prog: raw relay run for N=$n failed: $(tail -n 3 "$work/out/raw-$n.err")" >&2
    rm -f "$out"
    failures=$((failures + 1))
  fi
  stop_all
done

# 2. The file transfers, the seal/open rates and chat latency.
bench_relay_start files 4096
raw_arg=$(IFS=,; echo "${raw_pairs[*]:-}")
args=(--addr "$relay_addr" --cert "$work/certs/relay.crt"
  --receivers "$(echo "$receivers" | tr ' ' ,)" --size-mib "$size_mib"
  --crypto-chunks "$chunks" --baseline-secs "$baseline_s"
  --scratch "$work" --timeout "$filebench_timeout" --json)
[ -n "$raw_arg" ] && args+=(--raw-relay-mbps "$raw_arg")
[ -n "$default_pace_for" ] && args+=(--default-pace-for "$default_pace_for")
echo "== teamchat-filebench ${args[*]} (relay pid $relay_pid)" >&2
rc=0
"$filebench" "${args[@]}" >"$work/out/files.jsonl" &
pids+=("$!")
wait "$!" || rc=$?
if [ "$rc" -ne 0 ]; then
  # 3: a report was printed, but some scenario held at no pace.
  echo "$prog: teamchat-filebench exited with $rc; last lines of the relay log:" >&2
  tail -n 20 "$work/relay-files.log" >&2 || true
  failures=$((failures + 1))
fi
relay_version=$("$relay_bin" --version 2>&1 | head -n 1 || true)
stop_all
# Every JSON line of the run, for a closer look afterwards.
results=${FILES_RESULTS:-target/bench-files.jsonl}
cat "$work"/out/raw-*.json "$work/out/files.jsonl" >"$results" 2>/dev/null || true
echo "== JSON results in $results" >&2

python3 - "$work/out" "$mode" "$size_mib" "$relay_version" <<'PY'
import json, os, platform, subprocess, sys, time

out, mode, size_mib, relay_version = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def lines(name):
    try:
        with open(os.path.join(out, name)) as f:
            return [json.loads(l) for l in f if l.strip().startswith("{")]
    except (OSError, ValueError):
        return []

raw = {}
for n in (1, 10):
    r = lines(f"raw-{n}.json")
    if r:
        raw[n] = r[-1]
results = lines("files.jsonl")
crypto = next((r for r in results if r.get("bench") == "filebench-crypto"), None)
sums = {r["receivers"]: r for r in results if r.get("bench") == "filebench"}
tries = [r for r in results if r.get("bench") == "filebench-try"]
defaults = [t for t in tries if t.get("kind") == "default-pace"]

def f1(v):
    return "–" if v is None else f"{v:,.1f}"

def chat(l):
    if not l or l.get("p50_ms") is None:
        return "–"
    s = f"{l['p50_ms']:.1f} / {l['p99_ms']:.1f} ms"
    if l.get("lost"):
        s += f" ({l['lost']} of {l['expected']} lost)"
    return s

sys.path.insert(0, os.path.join(os.getcwd(), "scripts", "lib"))
import bench_out  # noqa: E402  (scripts/lib/bench_out.py)

ossl = bench_out.openssl_version()
print(f"File-transfer benchmark ({mode} run, {size_mib} MiB file), {time.strftime('%Y-%m-%d')}: "
      f"{os.cpu_count()} cores {platform.machine()}, {ossl}, {relay_version}, TLS 1.3 on "
      f"127.0.0.1; relay, members and load generator on the same machine.")
print()
if crypto:
    fan = ", ".join(f"1 sealer + {f['openers']} openers {f['stream_mbps']:,.0f}"
                    for f in crypto["fanout"])
    print(f"Seal/open of 64 KiB chunks in the same run (MB/s): seal {crypto['seal_mbps']:,.0f}, "
          f"open {crypto['open_mbps']:,.0f}, SHA-256 {crypto.get('sha256_mbps', 0):,.0f} (one thread each); per receiver stream: {fan}.")
    print()
print("| N | pace held | file MB/s (MiB/s) per receiver | raw relay 64 KiB MB/s | "
      "seal/open fan-out MB/s | lower limit | ratio | goal ≥ 0.5× met? | "
      "chat p50 / p99 during transfer | chat p50 / p99 baseline |")
print("|---|---|---|---|---|---|---|---|---|---|")
for n in (1, 10):
    s = sums.get(n)
    rr = raw.get(n)
    raw_s = "failed"
    if rr:
        raw_s = f1(rr["delivered_per_sec"] * 65536 / n / 1e6)
        if rr.get("loss_pct"):
            raw_s += f" ({rr['loss_pct']:.2f} % lost)"
    if s is None:
        print(f"| {n} | run failed (see stderr) | | {raw_s} | | | | **no** | | |")
        continue
    held = f"{s['pace_mbps']:.1f} MB/s" if s["held"] else f"none of {s['tries']}"
    file_s = f"{f1(s['file_mbps'])} ({f1(s['file_mibps'])})" if s["held"] else "failed"
    ratio = "–" if s["ratio"] is None else f"{s['ratio']:.2f}"
    print(f"| {n} | {held} | {file_s} | {raw_s} | {f1(s['fanout_mbps'])} | "
          f"{f1(s['lower_limit_mbps'])} | {ratio} | {'yes' if s['goal_met'] else '**no**'} | "
          f"{chat(s['chat_during'])} | {chat(s['chat_baseline'])} |")
for d in defaults:
    file_s = f"{f1(d['file_mbps'])} ({f1(d['file_mibps'])})" if d["ok"] else "failed: " + (d.get("failure") or "?")
    print(f"| {d['receivers']}, default pace | {d['pace_mbps']:.1f} MB/s (2 MiB/s) | {file_s} | | | | | | "
          f"{chat(d['chat_during'])} | {chat(d['chat_baseline'])} |")

notes = []
for n in (1, 10):
    s = sums.get(n)
    for fl in (s or {}).get("failures", []):
        notes.append(f"N={n}, failed try at {fl}")
for t in tries:
    if t.get("first_warning"):
        notes.append(f"N={t['receivers']} at {t['pace_mbps']:.1f} MB/s: {t['warnings']} warning(s), "
                     f"first: {t['first_warning']}")
    if t.get("chat_unsent"):
        notes.append(f"N={t['receivers']} at {t['pace_mbps']:.1f} MB/s: {t['chat_unsent']} chat "
                     "line(s) not queued (the admin's command queue was full)")
if notes:
    print()
    for line in notes:
        print(f"- {line}")
PY

if [ "$failures" -gt 0 ]; then
  die "$failures step(s) failed (see above)"
fi
