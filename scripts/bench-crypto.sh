#!/usr/bin/env bash
# Runs the common crate's crypto benchmarks and `openssl speed` in the same
# sitting on the same machine, and prints one table of rates and ratios.
#
#   scripts/bench-crypto.sh            # full run (a few minutes)
#   QUICK=1 scripts/bench-crypto.sh    # shorter measurement times
#
# Goal (issue 2): seal at 16 KiB >= 0.8x the combined rate of OpenSSL's
# AES-256-CBC encryption and HMAC-SHA256 (1 / (1/aes + 1/hmac)).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=3
crit=()
if [ "${QUICK:-0}" = 1 ]; then
  secs=1
  crit=(--warm-up-time 1 --measurement-time 2)
fi

echo "== cargo bench -p common (criterion)" >&2
cargo bench -p common --bench crypto -- "${crit[@]}" >&2

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== openssl speed ($(openssl version))" >&2
openssl speed -mr -seconds "$secs" -bytes 1024 -evp aes-256-cbc 2>/dev/null >"$out/aes-enc-1k"
openssl speed -mr -seconds "$secs" -bytes 16384 -evp aes-256-cbc 2>/dev/null >"$out/aes-enc-16k"
openssl speed -mr -seconds "$secs" -bytes 1024 -decrypt -evp aes-256-cbc 2>/dev/null >"$out/aes-dec-1k"
openssl speed -mr -seconds "$secs" -bytes 16384 -decrypt -evp aes-256-cbc 2>/dev/null >"$out/aes-dec-16k"
openssl speed -mr -seconds "$secs" -bytes 1024 -hmac sha256 2>/dev/null >"$out/hmac-1k"
openssl speed -mr -seconds "$secs" -bytes 16384 -hmac sha256 2>/dev/null >"$out/hmac-16k"
openssl speed -mr -seconds "$secs" rsa3072 2>/dev/null >"$out/rsa"

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
crit = "target/criterion"

def ns(group, name):
    with open(os.path.join(crit, group, name, "new", "estimates.json")) as f:
        return json.load(f)["mean"]["point_estimate"]

def ossl_rate(fname):
    # "+F:<n>:<alg>:<bytes per second>"
    for line in open(os.path.join(out, fname)):
        if line.startswith("+F:"):
            return float(line.strip().split(":")[3])
    raise SystemExit(f"no +F line in openssl output {fname}")

def ossl_rsa():
    # "+F2:<n>:<bits>:<sign/s>:<verify/s>"
    for line in open(os.path.join(out, "rsa")):
        if line.startswith("+F2:"):
            p = line.strip().split(":")
            return float(p[3]), float(p[4])
    raise SystemExit("no +F2 line in openssl rsa output")

rows = []
for label, size in (("1KiB", 1024), ("16KiB", 16384)):
    k = "1k" if size == 1024 else "16k"
    enc, dec, mac = ossl_rate(f"aes-enc-{k}"), ossl_rate(f"aes-dec-{k}"), ossl_rate(f"hmac-{k}")
    comb_seal = 1 / (1 / enc + 1 / mac)
    comb_open = 1 / (1 / dec + 1 / mac)
    seal = size / (ns("seal", label) * 1e-9)
    opn = size / (ns("open", label) * 1e-9)
    rows.append((f"seal {label}", seal / 1e6, "MB/s", f"AES-256-CBC enc {enc/1e6:.0f} + HMAC {mac/1e6:.0f} -> {comb_seal/1e6:.0f}", seal / comb_seal))
    rows.append((f"open {label}", opn / 1e6, "MB/s", f"AES-256-CBC dec {dec/1e6:.0f} + HMAC {mac/1e6:.0f} -> {comb_open/1e6:.0f}", opn / comb_open))
sign_s, verify_s = ossl_rsa()
for op, peer, pname in (("sign", sign_s, "rsa3072 sign (PKCS#1 v1.5)"),
                        ("unwrap", sign_s, "rsa3072 sign (private op)"),
                        ("verify", verify_s, "rsa3072 verify (PKCS#1 v1.5)"),
                        ("wrap", verify_s, "rsa3072 verify (public op)")):
    rate = 1 / (ns("rsa3072", op) * 1e-9)
    rows.append((f"RSA-3072 {op}", rate, "ops/s", f"{pname} {peer:.0f}", rate / peer))

print(f"{'operation':<16} {'TeamChat':>12} {'unit':<6} {'OpenSSL (same run)':<48} {'ratio':>6}")
for name, v, unit, peer, ratio in rows:
    print(f"{name:<16} {v:>12.0f} {unit:<6} {peer:<48} {ratio:>6.2f}")
seal16 = [r for r in rows if r[0] == "seal 16KiB"][0][4]
print(f"\ngoal: seal 16KiB >= 0.80x combined OpenSSL CBC+HMAC: {seal16:.2f}x -> {'met' if seal16 >= 0.8 else 'NOT met'}")
PY
