#!/usr/bin/env bash
# The supply chain, checked by cargo-deny against deny.toml (the RustSec
# database is not needed):
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
# docs/SECURITY.md for the three advisories carried knowingly.
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
grep -E '^error\[' <<<"$out" || true
status=0
if [ "$rc" -eq 0 ]; then
  echo "   CONTROL BROKEN: cargo deny passed a crate that breaks deny.toml" >&2
  status=1
fi
# Each finding must name what the control broke: its own GPL licence, and
# sha2 (nothing else in the control could produce them).
for finding in "license = \"GPL-3.0-only\"" \
               "error\[duplicate\]: found 2 duplicate entries for crate 'sha2'"; do
  if grep -q "$finding" <<<"$out"; then
    echo "   control flagged: ${finding//\\/}"
  else
    echo "   CONTROL BROKEN: no '${finding//\\/}' on the control" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "supply-chain: the workspace passes; the control failed as it must"
exit "$status"
