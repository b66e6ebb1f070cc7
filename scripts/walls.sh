#!/usr/bin/env bash
# The walls between the crates (docs/ARCHITECTURE.md), checked on what is
# really built, not on one package alone:
#
#  1. On a resolution of the whole workspace (features unified as in
#     `cargo build --workspace`), nothing under the relay is a crate that
#     could read or protect content (the RustCrypto crates TeamChat seals
#     with, the X25519 and RSA crates) or one of TeamChat's client crates.
#  2. Neither `wire`, `common`, `client` nor the relay depends on Slint.
#  3. The relay binary itself holds no code of those crates: its symbols
#     name none of them. Control: the admin binary, built in the same run,
#     must name them (or the symbol check proves nothing).
#
# The relay does carry TLS (OpenSSL for clients, rustls with ring to NATS):
# those libraries hold transport ciphers, not the end-to-end code.
#
#   scripts/walls.sh             builds (or relinks) the debug binaries it
#                                needs, the relay with its default features
#   TEAMCHAT_BIN_DIR=DIR scripts/walls.sh   uses DIR/teamchat-{relay,admin}
#
# The relay built with `--features nkeys` (NKey authentication to NATS)
# links an Ed25519 signer, and with it SHA-512: NATS credentials, not the
# end-to-end layer. The check is on the relay as shipped by default.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0

echo "== 1. the relay's dependencies, on the whole workspace's resolution"
tree=$(cargo tree --workspace -e normal --prefix depth --no-dedupe)
# What the relay must not link: the roots of the RustCrypto and dalek
# ecosystems (every hash, MAC, cipher, signature or curve crate builds on
# one of them, so a crypto crate added to `common` later is covered), every
# crate of `common`'s tree that depends on one (found by inverting the
# tree: sha2, hmac, aes, rsa, x25519-dalek, ...), and TeamChat's client
# crates with their I/O (rusqlite, native-tls).
roots="digest cipher crypto-common universal-hash signature elliptic-curve curve25519-dalek num-bigint-dig"
common_tree=$(cargo tree -p common -p client -e normal --prefix none --no-dedupe | awk '{print $1}' | sort -u)
forbidden=$(
  for r in $roots; do
    echo "$r"
    if grep -qx "$r" <<<"$common_tree"; then
      cargo tree -p common -e normal --prefix none -i "$r" | awk '{print $1}'
    fi
  done
  printf '%s\n' common client rusqlite native-tls
)
forbidden=$(sort -u <<<"$forbidden" | grep -v '^$')
# Control: the inversion finds what the end-to-end layer is made of.
for c in aes cbc hmac sha2 hkdf pbkdf2 rsa x25519-dalek curve25519-dalek; do
  grep -qx "$c" <<<"$forbidden" || { echo "   CONTROL BROKEN: $c is not among the crates the relay must not link" >&2; exit 1; }
done
e2e=$(paste -sd'|' <<<"$forbidden")
echo "   $(wc -l <<<"$forbidden") crates the relay must not link: $(paste -sd' ' <<<"$forbidden")"
# The relay's subtree: from its root line (depth 0) to the next root
# (--no-dedupe: a crate already shown under another root is listed again).
relay_deps=$(awk '/^0/ { inside = ($0 ~ /^0relay /) } inside' <<<"$tree" | sed 's/^[0-9]*//' | sort -u)
[ -n "$relay_deps" ] || { echo "   the relay is not in the workspace tree" >&2; exit 1; }
if bad=$(awk '{print $1}' <<<"$relay_deps" | grep -xE "${e2e}"); then
  echo "   FAIL: the relay depends on: $(tr '\n' ' ' <<<"$bad")" >&2
  fail=1
else
  echo "   ok: $(wc -l <<<"$relay_deps") crates under the relay, none of them"
fi
# Control: the same grep finds them under the admin app.
admin_deps=$(awk '/^0/ { inside = ($0 ~ /^0teamchat-admin /) } inside' <<<"$tree" | sed 's/^[0-9]*//')
if ! grep -qE "^(aes|rsa|hmac) " <<<"$admin_deps"; then
  echo "   CONTROL BROKEN: the admin app's tree shows no aes/rsa/hmac" >&2
  fail=1
fi

echo "== 2. no GUI below the apps"
gui=0
for p in wire common client relay; do
  if cargo tree -p "$p" -e normal --prefix none | grep -E '^(slint|i-slint-core) '; then
    echo "   FAIL: $p depends on Slint: keep the GUI in ui/, admin/ and member/" >&2
    gui=1 fail=1
  fi
done
[ "$gui" = 1 ] || echo "   ok: wire, common, client and relay build without Slint"

echo "== 3. the relay binary's symbols"
bin_dir=${TEAMCHAT_BIN_DIR:-}
if [ -z "$bin_dir" ]; then
  # The relay as shipped (default features); the admin binary the tests
  # built serves as the control, or is built if missing.
  cargo build -q -p relay
  [ -x target/debug/teamchat-admin ] || cargo build -q -p teamchat-admin
  bin_dir=target/debug
fi
# Rust paths of those crates in demangled symbols (`aes::`, `<rsa::…`), not
# inside another crate's path (`ring::hmac::` is the NATS link's TLS).
pattern="(^|[^A-Za-z0-9_:])(${e2e//-/_})::"
for b in teamchat-relay teamchat-admin; do
  [ -x "$bin_dir/$b" ] || { echo "   $bin_dir/$b is missing" >&2; exit 1; }
done
# The relay's own code must show (a stripped binary would pass unread).
own=$(nm -C "$bin_dir/teamchat-relay" | grep -cE '(^|[^A-Za-z0-9_:])(relay|wire)::' || true)
[ "$own" -ge 100 ] || { echo "   CONTROL BROKEN: teamchat-relay shows only $own symbols of its own (stripped?)" >&2; exit 1; }
count() { nm -C "$1" | grep -cE "$pattern" || true; }
relay_hits=$(count "$bin_dir/teamchat-relay")
admin_hits=$(count "$bin_dir/teamchat-admin")
if [ "$relay_hits" != 0 ]; then
  echo "   FAIL: teamchat-relay holds $relay_hits symbols of end-to-end crypto or client crates:" >&2
  nm -C "$bin_dir/teamchat-relay" | grep -E "$pattern" | head -5 >&2
  fail=1
else
  echo "   ok: teamchat-relay ($own symbols of relay and wire) names no symbol of those crates"
fi
if [ "$admin_hits" -lt 100 ]; then
  echo "   CONTROL BROKEN: teamchat-admin names only $admin_hits such symbols" >&2
  fail=1
else
  echo "   control: teamchat-admin names $admin_hits of them"
fi
exit "$fail"
