# shellcheck shell=bash
# magic-wormhole as the peer in a file-transfer benchmark: installs it, runs
# its own mailbox (rendezvous) server and transit relay on 127.0.0.1, and
# times one file from a `wormhole send` to a `wormhole receive` through that
# transit relay, checking the received file's SHA-256. Loopback only: the
# servers listen on 127.0.0.1 alone and the clients are pointed at them
# (--relay-url, --transit-helper), so nothing reaches the public servers;
# --no-listen (below) also keeps the clients off the machine's other
# addresses, which a listening client would offer as direct hints.
# Sourced, never run, after scripts/lib/relay.sh (this file calls its die,
# apt_install_missing, free_port and stop_pids), from the repository root:
#
#   . scripts/lib/relay.sh
#   . scripts/lib/wormhole.sh
#   wormhole_install
#   trap 'wormhole_stop' EXIT        # or from the caller's own EXIT trap
#   wormhole_start "$work/wormhole"
#   secs=$(wormhole_send_time "$work/file.bin" "$work/wormhole/out")
#
# Sourcing only defines the functions below: it sets no shell option, no
# trap, and no variable until a function is called. Made for callers under
# `set -euo pipefail`. Needs bash 5.1 (wait -n -p, EPOCHREALTIME), python3,
# coreutils (timeout, sha256sum), ps (procps), and Debian's magic-wormhole
# 0.12, magic-wormhole-transit-relay 0.2 and
# python3-magic-wormhole-mailbox-server 0.4 (twistd3 runs the two servers);
# /usr/bin/time (package time) for the CPU figures, which are left out
# without it.
#
# Through the relay only: both clients get --no-listen. In 0.12
# (wormhole/transit.py, Common._build_listener) that opens no listening
# socket and sends no direct-tcp-v1 hint, so the other side has no address
# to connect to directly; the only contender left in Common._connect is the
# relay hint, tried at once. wormhole_send_time checks that it was so, three
# ways, and dies otherwise: both clients print the connection they used
# ("Sending (->relay:tcp:127.0.0.1:PORT)..", "Receiving (->relay:...)..",
# the "relay:" prefix is from _hints.describe_hint_obj, only for relay
# hints), and the transit relay (--log-fd) writes one JSON usage record per
# glued pair of connections, "mood": "happy" and the bytes it forwarded in
# both directions: there must be a new one with at least the file's size.
#
# Globals (set by the functions; read them, don't set them):
#   wormhole_dir            DIR of wormhole_start: the servers' logs
#                           (mailbox.log, transit.log), the transit relay's
#                           usage records (transit-usage.jsonl), the
#                           mailbox database, the transfer counter.
#   wormhole_mailbox_pid, wormhole_transit_pid    the two servers.
#   wormhole_mailbox_port, wormhole_transit_port  their ports on 127.0.0.1.
#   wormhole_relay_url      ws://127.0.0.1:PORT/v1 (the clients' --relay-url).
#   wormhole_transit_helper tcp:127.0.0.1:PORT (--transit-helper).
# Settings (the caller may set them before a call):
#   wormhole_timeout        seconds each client may run (default 300).
#
# Functions:
#   wormhole_install         installs the packages above that are missing
#                            (apt_install_missing: "== installing ..." to
#                            stderr, apt-get update + install, sudo unless
#                            root); nothing when all are there.
#   wormhole_start DIR       starts the mailbox server and the transit relay
#                            on 127.0.0.1, each on a port free just before
#                            (another try, up to 5, on a new port if it was
#                            taken meanwhile), output in DIR; waits up to
#                            10 s for each to listen, or dies. Call it from
#                            the main shell, not in $(...): it sets globals.
#   wormhole_stop            stops the two servers (stop_pids); no-op when
#                            none runs. For the caller's EXIT trap.
#   wormhole_send_time FILE OUTDIR
#                            sends FILE through the servers, relay only, and
#                            prints the seconds from the sender's start to
#                            the receiver's exit (file written), e.g.
#                            "1.234567". The receiver starts first and the
#                            clock starts once it has claimed the code's
#                            nameplate. Dies (with the clients' output) if a
#                            client fails or runs past wormhole_timeout, if
#                            the received file's SHA-256 differs, or if the
#                            transfer did not go through the transit relay.
#                            Writes OUTDIR/NAME (FILE's name; replaced),
#                            the clients' output OUTDIR/{send,receive}-N.log
#                            and appends a JSON line to OUTDIR/wormhole.jsonl:
#                            n, code, bytes, seconds, relayed_bytes (from the
#                            transit relay's record), sender_cpu_s and
#                            receiver_cpu_s (user + system, null without
#                            /usr/bin/time), transit_cpu_s and mailbox_cpu_s
#                            (the servers' CPU time during the transfer).
#                            Can run in $(...); transfers from one
#                            wormhole_start get codes N-bench-N, N = 1, 2, ...

# Installs magic-wormhole and its two servers when missing (header).
wormhole_install() {
  local need=()
  command -v wormhole >/dev/null || need+=(magic-wormhole)
  # The system's python3, the one twistd3 runs on (PATH may have another).
  /usr/bin/python3 -c 'import wormhole_mailbox_server' 2>/dev/null || need+=(python3-magic-wormhole-mailbox-server)
  /usr/bin/python3 -c 'import wormhole_transit_relay' 2>/dev/null || need+=(magic-wormhole-transit-relay)
  command -v twistd3 >/dev/null || need+=(python3-twisted)
  [ -x /usr/bin/time ] || need+=(time)
  apt_install_missing ${need[@]+"${need[@]}"}
  command -v wormhole >/dev/null || die "wormhole is still missing after the install"
  command -v twistd3 >/dev/null || die "twistd3 is still missing after the install"
}

# _wormhole_serve PLUGIN LOG BANNER FD3 [ARG...]: starts twistd3 PLUGIN
# ARG... on a free port of 127.0.0.1 (up to 5 tries), output to LOG, fd 3
# open for appending to FD3 (for --log-fd 3); BANNER is the name it logs as
# "BANNER starting on PORT" once it listens. Sets _wormhole_port and
# _wormhole_pid. The caller's fds 4-9 (e.g. writers to FIFOs) are closed
# for the server, which would otherwise hold them open.
_wormhole_serve() {
  local plugin=$1 log=$2 banner=$3 fd3=$4 try i port pid
  shift 4
  for try in 1 2 3 4 5; do
    port=$(free_port)
    twistd3 --nodaemon --pidfile= --logfile=- "$plugin" --port "tcp:$port:interface=127.0.0.1" "$@" \
      >"$log" 2>&1 3>>"$fd3" 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    for i in $(seq 100); do
      if grep -q "$banner starting on $port\$" "$log" 2>/dev/null; then
        _wormhole_port=$port _wormhole_pid=$pid
        return 0
      fi
      grep -q CannotListenError "$log" 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_pids "$pid"
    if ! grep -q CannotListenError "$log" 2>/dev/null; then
      cat "$log" >&2 || true
      die "twistd3 $plugin (pid $pid) did not listen on 127.0.0.1:$port within 10 s; its output is above"
    fi
    echo "${prog:-${0##*/}}: port $port was taken meanwhile ($plugin, try $try), another one" >&2
  done
  cat "$log" >&2 || true
  die "twistd3 $plugin found no free port in 5 tries; its last output is above"
}

# wormhole_start DIR: the mailbox server and the transit relay (header).
wormhole_start() {
  wormhole_dir=$1
  mkdir -p "$wormhole_dir"
  : >"$wormhole_dir/transit-usage.jsonl"
  echo 0 >"$wormhole_dir/count"
  rm -f "$wormhole_dir/mailbox.sqlite"
  _wormhole_serve wormhole-mailbox "$wormhole_dir/mailbox.log" PrivacyEnhancedSite /dev/null \
    --channel-db "$wormhole_dir/mailbox.sqlite"
  wormhole_mailbox_pid=$_wormhole_pid wormhole_mailbox_port=$_wormhole_port
  _wormhole_serve transitrelay "$wormhole_dir/transit.log" Transit \
    "$wormhole_dir/transit-usage.jsonl" --log-fd 3
  wormhole_transit_pid=$_wormhole_pid wormhole_transit_port=$_wormhole_port
  wormhole_relay_url=ws://127.0.0.1:$wormhole_mailbox_port/v1
  wormhole_transit_helper=tcp:127.0.0.1:$wormhole_transit_port
  echo "== wormhole mailbox on $wormhole_relay_url (pid $wormhole_mailbox_pid)," \
    "transit relay on $wormhole_transit_helper (pid $wormhole_transit_pid)" >&2
}

# Stops the servers of wormhole_start, if any (for the EXIT trap).
wormhole_stop() {
  stop_pids ${wormhole_transit_pid:+"$wormhole_transit_pid"} ${wormhole_mailbox_pid:+"$wormhole_mailbox_pid"}
  wormhole_transit_pid="" wormhole_mailbox_pid=""
}

# Prints the CPU seconds (user + system) process PID has used so far.
_wormhole_cpu() {
  python3 -c 'import os, sys
s = open("/proc/%s/stat" % sys.argv[1]).read().rsplit(")", 1)[1].split()
print((int(s[11]) + int(s[12])) / os.sysconf("SC_CLK_TCK"))' "$1"
}

# Prints user + system seconds from a /usr/bin/time -f "%U %S" file, or null.
_wormhole_time_file() {
  if [ -s "$1" ]; then
    tail -n 1 "$1" | awk '{ printf "%.2f\n", $1 + $2 }'
  else
    echo null
  fi
}

# _wormhole_client BASE ARG...: starts `wormhole --relay-url ...
# --transit-helper ... ARG...` in the background, stdin /dev/null, output to
# BASE.log, under `timeout -k 10 $wormhole_timeout` and, when there, under
# /usr/bin/time (user and system seconds to BASE.time). Sets
# _wormhole_client_pid. The order time > timeout > wormhole lets time wait
# for timeout, which waits for wormhole: when the pid has exited, so has
# wormhole, and time counts wormhole's CPU.
_wormhole_client() {
  local base=$1 timer=()
  shift
  rm -f "$base.time"
  [ ! -x /usr/bin/time ] || timer=(/usr/bin/time -f "%U %S" -o "$base.time")
  ${timer[@]+"${timer[@]}"} timeout -k 10 "${wormhole_timeout:-300}" \
    wormhole --relay-url "$wormhole_relay_url" --transit-helper "$wormhole_transit_helper" "$@" \
    >"$base.log" 2>&1 </dev/null &
  _wormhole_client_pid=$!
}

# Stops a client of _wormhole_client by its pid and reaps it: SIGTERM to its
# timeout (which passes it on to wormhole, and SIGKILL 10 s later), not to
# time, which would die at once and leave wormhole running.
_wormhole_client_stop() {
  local t=$1
  [ ! -x /usr/bin/time ] || t=$(ps -o pid= --ppid "$1" | head -n 1 || true)
  [ -z "${t// /}" ] || kill -TERM "${t// /}" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# wormhole_send_time FILE OUTDIR: one timed, checked transfer (header).
wormhole_send_time() {
  local file=$1 outdir=$2 n code dest name size sha_in sha_out t0 t1 secs i
  local recv_pid send_pid first rc=0 recv_rc=0 send_rc=0 records relayed
  local tcpu0 mcpu0 tcpu1 mcpu1
  [ -n "${wormhole_transit_pid:-}" ] || die "wormhole_send_time: run wormhole_start first"
  [ -f "$file" ] || die "wormhole_send_time: no file $file"
  mkdir -p "$outdir"
  # A counter in a file, so that calls in $(...) (subshells) get new codes.
  n=$(($(cat "$wormhole_dir/count") + 1))
  echo "$n" >"$wormhole_dir/count"
  code=$n-bench-$n
  name=${file##*/}
  # -o is the file to create, not a folder to put it in: with --accept-file,
  # 0.12 removes what is there first, a whole folder included (rmtree).
  dest=$outdir/$name
  [ ! -d "$dest" ] || die "wormhole_send_time: $dest is a folder; the receiver would delete it"
  rm -f "$dest" "$dest.tmp"
  size=$(stat -c %s "$file")
  records=$(grep -c '"mood": "happy"' "$wormhole_dir/transit-usage.jsonl" || true)
  tcpu0=$(_wormhole_cpu "$wormhole_transit_pid")
  mcpu0=$(_wormhole_cpu "$wormhole_mailbox_pid")
  _wormhole_client "$outdir/receive-$n" \
    receive --no-listen --accept-file --hide-progress -o "$dest" "$code"
  recv_pid=$_wormhole_client_pid
  # The receiver is ready once the mailbox has created the nameplate for it.
  for i in $(seq 100); do
    grep -q "creating nameplate#$n for" "$wormhole_dir/mailbox.log" && break
    if ! kill -0 "$recv_pid" 2>/dev/null || [ "$i" = 100 ]; then
      _wormhole_client_stop "$recv_pid"
      cat "$outdir/receive-$n.log" >&2 || true
      die "wormhole receive $code did not claim its nameplate within 10 s; its output is above"
    fi
    sleep 0.1
  done
  t0=$EPOCHREALTIME
  _wormhole_client "$outdir/send-$n" \
    send --no-listen --hide-progress --code "$code" "$file"
  send_pid=$_wormhole_client_pid
  # Whichever ends first; if it failed, the other one is stopped (status
  # "stopped") rather than left waiting for its peer until the timeout.
  wait -n -p first "$recv_pid" "$send_pid" || rc=$?
  if [ "$first" = "$recv_pid" ]; then
    t1=$EPOCHREALTIME recv_rc=$rc
    if [ "$rc" != 0 ]; then
      _wormhole_client_stop "$send_pid"
      send_rc=stopped
    else
      wait "$send_pid" || send_rc=$?
    fi
  else
    send_rc=$rc
    if [ "$rc" != 0 ]; then
      _wormhole_client_stop "$recv_pid"
      recv_rc=stopped
    else
      wait "$recv_pid" || recv_rc=$?
    fi
    t1=$EPOCHREALTIME
  fi
  if [ "$recv_rc" != 0 ] || [ "$send_rc" != 0 ]; then
    [ "$send_rc" != 124 ] || send_rc="124, timed out"
    [ "$recv_rc" != 124 ] || recv_rc="124, timed out"
    echo "--- wormhole send (exit $send_rc):" >&2
    cat "$outdir/send-$n.log" >&2 || true
    echo "--- wormhole receive (exit $recv_rc):" >&2
    cat "$outdir/receive-$n.log" >&2 || true
    die "wormhole transfer $code of $file failed (send exit $send_rc; receive exit $recv_rc)"
  fi
  tcpu1=$(_wormhole_cpu "$wormhole_transit_pid")
  mcpu1=$(_wormhole_cpu "$wormhole_mailbox_pid")
  [ -f "$dest" ] || die "wormhole receive $code exited 0 but wrote no $dest"
  sha_in=$(sha256sum <"$file")
  sha_out=$(sha256sum <"$dest")
  [ "$sha_in" = "$sha_out" ] ||
    die "wormhole transfer $code: $dest has SHA-256 ${sha_out%% *}, $file has ${sha_in%% *}"
  grep -qF "Sending (->relay:$wormhole_transit_helper).." "$outdir/send-$n.log" ||
    die "wormhole send $code did not send through the transit relay (see $outdir/send-$n.log)"
  grep -qF "Receiving (->relay:$wormhole_transit_helper).." "$outdir/receive-$n.log" ||
    die "wormhole receive $code did not receive through the transit relay (see $outdir/receive-$n.log)"
  # The relay writes its record when the first side hangs up: give it 5 s.
  for i in $(seq 51); do
    [ "$(grep -c '"mood": "happy"' "$wormhole_dir/transit-usage.jsonl" || true)" -le "$records" ] || break
    [ "$i" -le 50 ] || die "the transit relay recorded no relayed transfer for $code ($wormhole_dir/transit-usage.jsonl)"
    sleep 0.1
  done
  relayed=$(grep '"mood": "happy"' "$wormhole_dir/transit-usage.jsonl" | tail -n 1 |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["total_bytes"])')
  [ "$relayed" -ge "$size" ] ||
    die "the transit relay forwarded $relayed bytes for $code, less than the file's $size"
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }')
  printf '{"n": %s, "code": "%s", "bytes": %s, "seconds": %s, "relayed_bytes": %s, "sender_cpu_s": %s, "receiver_cpu_s": %s, "transit_cpu_s": %s, "mailbox_cpu_s": %s}\n' \
    "$n" "$code" "$size" "$secs" "$relayed" \
    "$(_wormhole_time_file "$outdir/send-$n.time")" "$(_wormhole_time_file "$outdir/receive-$n.time")" \
    "$(awk -v a="$tcpu0" -v b="$tcpu1" 'BEGIN { printf "%.2f\n", b - a }')" \
    "$(awk -v a="$mcpu0" -v b="$mcpu1" 'BEGIN { printf "%.2f\n", b - a }')" \
    >>"$outdir/wormhole.jsonl"
  echo "$secs"
}
