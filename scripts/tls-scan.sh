#!/usr/bin/env bash
# Scans the relay's TLS with a real scanner (sslscan) and judges it by the
# relay's policy (scripts/tls-check.py): only TLS 1.2 and 1.3, only ECDHE
# with AEAD suites in TLS 1.2, no compression, no renegotiation.
#
# Then the controls, in the same run: a deliberately weak OpenSSL server
# (every suite at security level 0, TLS 1.0 and up, renegotiation on) must
# fail each of the protocol, key-exchange, AEAD and renegotiation checks, and
# a stub that picks DEFLATE must fail the compression probe. A check that
# cannot fail cannot pass either: the script stops if a control passes.
#
#   scripts/tls-scan.sh            (needs sslscan, openssl, python3)
#   TEAMCHAT_RELAY_BIN=target/debug/teamchat-relay scripts/tls-scan.sh
#
# Loopback only, ephemeral ports; certificates go to a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
prog=tls-scan

for tool in sslscan openssl python3; do
  command -v "$tool" >/dev/null || { echo "tls-scan: $tool is missing (Debian: apt-get install $tool)" >&2; exit 1; }
done

scratch_dir

# The relay binary: $TEAMCHAT_RELAY_BIN if given (CI passes the one its test
# step built), else a build of it.
relay_bin=${TEAMCHAT_RELAY_BIN:-}
if [ -z "$relay_bin" ]; then
  cargo build -q -p relay
  relay_bin=target/debug/teamchat-relay
fi
[ -x "$relay_bin" ] || { echo "tls-scan: no relay binary at $relay_bin" >&2; exit 1; }

# The controls: waits up to 10 s for PATTERN in FILE and prints the rest of
# its first line.
address_from() {
  local file=$1 pattern=$2
  for _ in $(seq 100); do
    if grep -q "$pattern" "$file" 2>/dev/null; then
      sed -n "s/.*$pattern *//p" "$file" | head -1
      return 0
    fi
    sleep 0.1
  done
  echo "tls-scan: nothing listening after 10 s; its output:" >&2
  cat "$file" >&2
  return 1
}

scan() { # NAME ADDR: sslscan to $work/NAME.xml, then the verdict
  local name=$1 addr=$2
  sslscan --no-colour --xml="$work/$name.xml" "$addr" >"$work/$name.txt" 2>&1 || {
    echo "tls-scan: sslscan failed on $addr:" >&2; cat "$work/$name.txt" >&2; return 2; }
  python3 scripts/tls-check.py scan "$work/$name.xml"
}

status=0

# 1. The relay, with each kind of key scripts/gen-certs.sh makes.
for kind in ecdsa rsa; do
  flag=(); [ "$kind" = rsa ] && flag=(--rsa)
  temp_certs -q "$work/$kind" "${flag[@]}"
  relay_start "$work/relay-$kind.out" "$work/relay-$kind.log" 127.0.0.1:0 \
    "$work/$kind/relay.crt" "$work/$kind/relay.key" --stats-interval 0
  addr=$relay_addr
  echo "== relay ($kind key) at $addr"
  if scan "relay-$kind" "$addr"; then
    grep -E '<protocol .*enabled="1"|<cipher |<renegotiation' "$work/relay-$kind.xml" |
      sed -E 's/.*version="([^"]*)" enabled="1".*/  protocol TLS \1/; s/.*sslversion="([^"]*)".*cipher="([^"]*)".*/  \1 \2/; s/.*<renegotiation supported="([^"]*)".*/  renegotiation supported=\1/'
    echo "   PASS sslscan: policy holds"
  else
    echo "   FAIL the relay's TLS breaks the policy (above)" >&2
    status=1
  fi
  if python3 scripts/tls-check.py compression "$addr"; then
    echo "   PASS no compression"
  else
    echo "   FAIL the relay compresses" >&2
    status=1
  fi
done

# 2. Control: a weak server must fail every check the relay passed.
echo "== control: openssl s_server -cipher 'ALL:@SECLEVEL=0' -legacy_renegotiation (must FAIL)"
openssl s_server -accept 127.0.0.1:0 -cert "$work/rsa/relay.crt" -key "$work/rsa/relay.key" \
  -cipher 'ALL:@SECLEVEL=0' -legacy_renegotiation -www >"$work/weak.out" 2>&1 &
pids+=($!)
addr=$(address_from "$work/weak.out" 'ACCEPT')
set +e
scan weak "$addr" >"$work/weak.verdict" 2>&1
rc=$?
set -e
sed -n '1,6p' "$work/weak.verdict"
echo "  ... $(grep -c FAIL "$work/weak.verdict") findings in all"
if [ "$rc" -ne 1 ]; then
  echo "   CONTROL BROKEN: the weak server was not flagged (status $rc)" >&2
  status=1
fi
for check in 'protocol: TLSv1.0' 'has no ECDHE' 'is not AEAD' 'renegotiation is supported'; do
  if grep -q -- "$check" "$work/weak.verdict"; then
    echo "   control flagged: $check"
  else
    echo "   CONTROL BROKEN: no finding '$check' on the weak server" >&2
    status=1
  fi
done

echo "== control: a stub server that picks DEFLATE (must FAIL)"
python3 scripts/tls-check.py deflate-server >"$work/deflate.out" 2>&1 &
pids+=($!)
addr=$(address_from "$work/deflate.out" '127.0.0.1:' | sed 's/^/127.0.0.1:/')
set +e
python3 scripts/tls-check.py compression "$addr" >"$work/deflate.verdict" 2>&1
rc=$?
set -e
cat "$work/deflate.verdict"
# Flagged means status 1 with the finding, not any failure (a refused
# connection or a crash of the probe would fail too).
if [ "$rc" -eq 1 ] && grep -q 'compression: the server chose method 1' "$work/deflate.verdict"; then
  echo "   control flagged: compression"
else
  echo "   CONTROL BROKEN: the compression probe did not flag a server that compresses (status $rc)" >&2
  status=1
fi

if [ "$status" -eq 0 ]; then
  echo "tls-scan: the relay passes; every control failed as it must"
else
  echo "tls-scan: FAILED" >&2
fi
exit "$status"
