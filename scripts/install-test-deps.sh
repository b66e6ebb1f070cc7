#!/usr/bin/env bash
# Installs, with apt, the Debian packages the tests use and a new machine
# lacks (a no-op when all are there). scripts/test.sh and .ci/run call it, so
# the README's test command works on a fresh machine (as root, or with sudo).
set -euo pipefail
step() { echo "== [${SECONDS}s] $*" >&2; }

# Slint (the GUI, crate ui) builds with pkg-config and fontconfig, and lays
# out text with a system font, also in the headless UI tests.
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
# The relay's backplane tests run two relays over a real NATS server.
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
# The emoji test (ui/tests/emoji.rs) draws the windows on a stock desktop's
# two font set-ups: DejaVu alone, and DejaVu with Noto Color Emoji.
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
# Desktop notifications (ui/tests/notify_dbus.rs) go through a real D-Bus
# session (dbus-run-session, dbus-monitor) to a real notification daemon
# (dunst, on an Xvfb display).
command -v dbus-run-session >/dev/null || need+=(dbus)
command -v dunst >/dev/null || need+=(dunst)
command -v Xvfb >/dev/null || need+=(xvfb)
# The relay's TLS is judged by a real scanner (scripts/tls-scan.sh).
command -v sslscan >/dev/null || need+=(sslscan)
# libFuzzer (scripts/fuzz.sh) is C++, built by the libfuzzer-sys crate.
command -v g++ >/dev/null || need+=(g++)
# The apps over real links (member/tests/netns) make network namespaces
# with iproute2's `ip` (and need root, which CI has).
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  if [ -n "$sudo" ] && ! sudo -n true 2>/dev/null; then
    echo "install-test-deps: not root and no sudo: install ${need[*]} with apt yourself;" \
      "the tests that need them say so and fail" >&2
    exit 0
  fi
  step "apt-get install ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

