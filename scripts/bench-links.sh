#!/usr/bin/env bash
# Links: the apps and two relays in network namespaces this script's test
# makes (needs root), over TUN links a user-space forwarder shapes (delay,
# loss, a cut without a close): how soon a cut link is found and the chat
# goes on through the second relay, and the chat latency over 80 ms and
# 300 ms round trips. Prints the figures of docs/BENCHMARKS.md ("Links").
set -euo pipefail
cd "$(dirname "$0")/.."
command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2; }
cargo test --release -q -p teamchat-member --test netns -- --ignored --nocapture bench_links 2>&1 |
    grep -E '^BENCH|test result'
