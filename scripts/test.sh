#!/usr/bin/env bash
# Runs every test of the workspace. The Wycheproof/KAT vector tests read
# ../shared/vectors (or $TEAMCHAT_VECTORS_DIR) and fail if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "== [${SECONDS}s] $*" >&2; "$@"; }
# With the file-transfer benchmark's feature (its binary and tests need the
# client driver, which the workspace builds anyway): one build serves all.
run cargo test --workspace --all-targets --features bench/files "$@"
# NKey authentication to NATS sits behind a feature of the relay (a build
# of its own: the relay without it has code of its own to test too).
run cargo test -p relay --features nkeys --test backplane "$@"
run cargo test --workspace --doc
# Again with output shown, so the log names how many vectors ran (under a second).
run cargo test -p common --test vectors -- --nocapture --test-threads 1
