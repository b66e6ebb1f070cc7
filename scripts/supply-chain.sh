#!/usr/bin/env bash
# The supply chain, checked offline by cargo-deny against deny.toml:
# licences (only those allowed, with a reason for each unusual one), bans
# (one version of each crypto crate) and sources (crates.io only).
#
# Then the control, in the same run: scripts/deny-control/ breaks the rules
# on purpose (a GPL-3.0-only licence, two versions of sha2) and must fail
# with both findings, so the check is seen to bite.
#
#   scripts/supply-chain.sh        (needs cargo-deny: cargo install --locked cargo-deny)
#
# Advisories need the RustSec database from the network; on a machine that
# has it: `cargo deny check advisories` (or `cargo audit`). See
# docs/SECURITY.md for the two advisories carried knowingly.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deny >/dev/null || {
  echo "supply-chain: cargo-deny is missing (cargo install --locked cargo-deny)" >&2; exit 1; }

echo "== cargo deny check licenses bans sources (the workspace)"
cargo deny --locked check licenses bans sources

echo "== control: scripts/deny-control (must FAIL: a GPL-3.0-only licence, two versions of sha2)"
set +e
out=$(cargo deny --locked --manifest-path scripts/deny-control/Cargo.toml check licenses bans sources 2>&1)
rc=$?
set -e
echo "$out" | grep -E '^error\[' || true
status=0
if [ "$rc" -eq 0 ]; then
  echo "   CONTROL BROKEN: cargo deny passed a crate that breaks deny.toml" >&2
  status=1
fi
for finding in "error\[rejected\]: failed to satisfy license requirements" \
               "error\[duplicate\]: found 2 duplicate entries for crate 'sha2'"; do
  if echo "$out" | grep -q "$finding"; then
    echo "   control flagged: ${finding//\\/}"
  else
    echo "   CONTROL BROKEN: no '${finding//\\/}' on the control" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "supply-chain: the workspace passes; the control failed as it must"
exit "$status"
