#!/usr/bin/env bash
# Runs every test of the workspace. The Wycheproof/KAT vector tests read
# ../shared/vectors (or $TEAMCHAT_VECTORS_DIR) and fail if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "== [${SECONDS}s] $*" >&2; "$@"; }
run cargo test --workspace --all-targets "$@"
# NKey authentication to NATS sits behind a feature of the relay.
run cargo test -p relay --features nkeys --test backplane "$@"
# The file-transfer benchmark's own tests (its binary needs a feature).
run cargo test -p bench --features files --bins "$@"
run cargo test --workspace --doc
# Again with output shown, so the log names how many vectors ran (under a second).
run cargo test -p common --test vectors -- --nocapture --test-threads 1
