# shellcheck shell=bash
# What the scripts in scripts/ share to run a relay, and the processes around
# it, on 127.0.0.1: scratch folder and clean-up at exit, certificates, the
# relay itself, nats-server, waiting for readiness, stopping. Sourced, never
# run; from a script that has already gone to the repository root:
#
#   cd "$(dirname "$0")/.."
#   . scripts/lib/relay.sh
#
# Sourcing only defines the functions below: it sets no shell option, no
# variable and no trap. Paths (scripts/gen-certs.sh, certs/) are relative to
# the repository root. Messages go to stderr and start with "$prog: " ($prog
# defaults to the script's file name); "dies" means: prints the message and
# exits 1.
#
# Globals shared with the caller:
#   pids        processes to stop: relay_spawn, relay_start, start_xvfb and
#               the caller append to it; stop_all and the exit clean-up stop
#               them.
#   work        the scratch folder (scratch_dir).
#   relay_bin   the relay executable (the caller sets it).
#   relay_pid, relay_addr, relay_out, relay_log   the last relay started.
#   nats_bin, nats_pid, nats_url                  nats_find, nats_start.
#   bench_limits   relay_bench_limits.
#   wait_for_poll  seconds between wait_for's looks (default 0.1).
#
# Functions:
#   die MESSAGE...           "$prog: MESSAGE" to stderr, exit 1.
#   raise_fd_limit WANT [HINT]
#                            raises the soft open-file limit to WANT when it
#                            is lower; dies (message + HINT) if it cannot.
#   apt_install_missing [PACKAGE...]
#                            with packages: "== installing ..." and apt-get
#                            update + install (sudo unless root); none: no-op.
#   scratch_dir              sets work to a new folder
#                            ${TMPDIR:-/tmp}/<script>.XXXXXX, then
#                            cleanup_at_exit, whose clean-up removes it.
#   cleanup_at_exit          makes sure pids is set; traps EXIT (exit_cleanup),
#                            INT (exit 130) and TERM (exit 143).
#   exit_cleanup             the EXIT trap: closes fds 3-9 (writers to
#                            clients' input FIFOs), stop_pids on pids and
#                            nats_pid, removes the scratch folder.
#   stop_pids [PID...]       SIGTERM to each, up to 5 s for all to exit, then
#                            SIGKILL (saying so) to the rest; reaps them all.
#   stop_all                 stop_pids on pids, then empties pids.
#   free_port                prints a TCP port free on 127.0.0.1 just now.
#   wait_port PORT PID [SECONDS]
#                            returns 0 once 127.0.0.1:PORT accepts a TCP
#                            connection; 1 if PID exits first or after
#                            SECONDS (default 10).
#   wait_for FILE REGEX SECONDS
#                            waits until FILE has a line matching the
#                            extended REGEX; after SECONDS prints FILE and
#                            dies.
#   relay_spawn OUT LOG LISTEN CERT KEY [ARG...]
#                            starts "$relay_bin" --listen LISTEN --cert CERT
#                            --key KEY ARG... in the background, stdout to
#                            OUT, stderr to LOG (one file when the same
#                            path); sets relay_pid, relay_out, relay_log,
#                            appends to pids.
#   relay_wait [SECONDS]     waits up to SECONDS (default 10) for the last
#                            relay's "listening on 127.0.0.1:PORT" line in
#                            its OUT; sets relay_addr=127.0.0.1:PORT. Dies,
#                            showing OUT and LOG, if the relay exits first,
#                            the time runs out or the port is 0.
#   relay_start OUT LOG LISTEN CERT KEY [ARG...]
#                            relay_spawn, then relay_wait.
#   relay_bench_limits MAX   sets the array bench_limits: the raised limits
#                            (MAX connections, per IP and rooms; rates;
#                            idle timeout; queues and memory at their
#                            defaults) and --log warn of the
#                            benchmarks' relays.
#   bench_build              builds the relay and the load generators in
#                            release (progress to stderr) and sets
#                            relay_bin, loadgen and filebench to their
#                            absolute paths; dies if one is missing.
#   bench_relay_start NAME MAX [ARG...]
#                            relay_start on 127.0.0.1:0 with
#                            $work/certs/relay.{crt,key}, bench_limits for
#                            MAX and ARG...; stdout and stderr to
#                            $work/relay-NAME.log.
#   repo_certs               makes certs/ with scripts/gen-certs.sh (output
#                            to stderr) when certs/relay.crt or relay.key is
#                            missing or empty.
#   temp_certs [-q] DIR [GEN-CERTS-ARG...]
#                            scripts/gen-certs.sh GEN-CERTS-ARG... --out DIR,
#                            its output to stderr (with -q: only if it
#                            fails); dies if it fails; then check_certs DIR.
#   check_certs DIR          dies unless DIR has non-empty ca.crt, relay.crt
#                            and relay.key.
#   nats_find                sets nats_bin to nats-server (PATH, else
#                            /usr/sbin); dies if there is none.
#   nats_start DIR           starts "$nats_bin" on 127.0.0.1, an ephemeral
#                            port, ports file in DIR/nats, output to
#                            DIR/nats.log; sets nats_pid (stopped at exit,
#                            not by stop_all); waits up to 10 s for the port
#                            and sets nats_url=nats://127.0.0.1:PORT, or dies.
#   admin_invite FILE        prints the invite from an admin's --json output.
#   start_xvfb DISPLAY...    starts Xvfb (1280x800x24, no TCP) on each
#                            DISPLAY, appends to pids, then gives each up to
#                            10 s to answer xdotool (dies with the end of its
#                            log, $work/xvfbN.log, if one does not).

die() {
  echo "${prog:-${0##*/}}: $*" >&2
  exit 1
}

raise_fd_limit() {
  local want=$1 hint=${2:-} cur
  cur=$(ulimit -n)
  if [ "$cur" != unlimited ] && [ "$cur" -lt "$want" ]; then
    ulimit -n "$want" 2>/dev/null ||
      die "cannot raise the open-file limit to $want (soft $cur, hard $(ulimit -Hn))$hint"
  fi
  return 0
}

apt_install_missing() {
  [ "$#" -gt 0 ] || return 0
  local sudo=""
  echo "== installing $*" >&2
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

scratch_dir() {
  local name=${prog:-${0##*/}}
  _relay_lib_scratch=$(mktemp -d "${TMPDIR:-/tmp}/${name%.sh}.XXXXXX")
  # shellcheck disable=SC2034 # for the caller
  work=$_relay_lib_scratch
  cleanup_at_exit
}

cleanup_at_exit() {
  declare -p pids >/dev/null 2>&1 || pids=()
  trap exit_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

exit_cleanup() {
  exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
  stop_pids ${pids[@]+"${pids[@]}"} ${nats_pid:+"$nats_pid"}
  if [ -n "${_relay_lib_scratch:-}" ]; then
    rm -rf "$_relay_lib_scratch" || true
  fi
}

stop_pids() {
  local p i alive=()
  [ "$#" -gt 0 ] || return 0
  for p in "$@"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for i in $(seq 51); do
    alive=()
    for p in "$@"; do
      if kill -0 "$p" 2>/dev/null; then alive+=("$p"); fi
    done
    if [ "${#alive[@]}" -eq 0 ] || [ "$i" -gt 50 ]; then break; fi
    sleep 0.1
  done
  for p in ${alive[@]+"${alive[@]}"}; do
    echo "${prog:-${0##*/}}: $(cat "/proc/$p/comm" 2>/dev/null || echo process) $p ignored SIGTERM for 5 s, killing it" >&2
    kill -KILL "$p" 2>/dev/null || true
  done
  for p in "$@"; do
    wait "$p" 2>/dev/null || true
  done
}

stop_all() {
  stop_pids ${pids[@]+"${pids[@]}"}
  pids=()
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  local port=$1 pid=$2 seconds=${3:-10} i
  for ((i = 0; i < seconds * 10; i++)); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2).close()" 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

wait_for() {
  local file=$1 regex=$2 deadline=$((SECONDS + $3))
  until grep -qE "$regex" "$file" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "${prog:-${0##*/}}: timed out waiting for /$regex/ in $file; it has:" >&2
      cat "$file" >&2 || true
      exit 1
    fi
    sleep "${wait_for_poll:-0.1}"
  done
}

relay_spawn() {
  local listen=$3 cert=$4 key=$5
  relay_out=$1 relay_log=$2
  shift 5
  if [ "$relay_out" = "$relay_log" ]; then
    "${relay_bin:?set relay_bin first}" --listen "$listen" --cert "$cert" --key "$key" "$@" >"$relay_out" 2>&1 &
  else
    "${relay_bin:?set relay_bin first}" --listen "$listen" --cert "$cert" --key "$key" "$@" >"$relay_out" 2>"$relay_log" &
  fi
  relay_pid=$!
  pids+=("$relay_pid")
}

relay_wait() {
  local seconds=${1:-10} i why
  relay_addr=""
  for ((i = 0; i < seconds * 10; i++)); do
    relay_addr=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$relay_out" 2>/dev/null | head -n 1 || true)
    [ -z "$relay_addr" ] || break
    kill -0 "$relay_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$relay_addr" ]; then
    why="printed no 'listening on 127.0.0.1:PORT' line within $seconds s"
    kill -0 "$relay_pid" 2>/dev/null || why="exited during start-up"
    cat "$relay_out" >&2 || true
    [ "$relay_log" = "$relay_out" ] || cat "$relay_log" >&2 || true
    die "the relay (pid $relay_pid) $why; its output is above"
  fi
  case $relay_addr in
    *:0) die "the relay reported port 0; cannot tell where it listens" ;;
  esac
}

relay_start() {
  relay_spawn "$@"
  relay_wait 10
}

bench_build() {
  echo "== cargo build --release -p relay -p bench" >&2
  cargo build --release -p relay -p bench >&2
  relay_bin=$PWD/target/release/teamchat-relay
  loadgen=$PWD/target/release/teamchat-loadgen
  filebench=$PWD/target/release/teamchat-filebench
  local b
  for b in "$relay_bin" "$loadgen" "$filebench"; do
    [ -x "$b" ] || die "$b was not built"
  done
}

relay_bench_limits() {
  bench_limits=(
    --max-conns "$1" --max-conns-per-ip "$1" --max-rooms "$1" --max-room-conns 2048
    --rate-frames 1000000000 --rate-bytes 100000000000 --rate-fanout-bytes 100000000000
    --idle-timeout 600 --log warn
  )
}

bench_relay_start() {
  local log=$work/relay-$1.log
  relay_bench_limits "$2"
  shift 2
  relay_start "$log" "$log" 127.0.0.1:0 "$work/certs/relay.crt" "$work/certs/relay.key" \
    "${bench_limits[@]}" "$@"
}

repo_certs() {
  if [ ! -s certs/relay.crt ] || [ ! -s certs/relay.key ]; then
    echo "== generating certificates into certs/" >&2
    scripts/gen-certs.sh >&2
  fi
}

temp_certs() {
  local quiet=0 dir output
  if [ "${1:-}" = -q ]; then quiet=1; shift; fi
  dir=$1
  shift
  if [ "$quiet" = 1 ]; then
    output=$(scripts/gen-certs.sh "$@" --out "$dir" 2>&1) ||
      { echo "$output" >&2; die "scripts/gen-certs.sh failed"; }
  else
    scripts/gen-certs.sh "$@" --out "$dir" >&2 || die "scripts/gen-certs.sh failed"
  fi
  check_certs "$dir"
}

check_certs() {
  local f
  for f in ca.crt relay.crt relay.key; do
    [ -s "$1/$f" ] || die "the certificate step did not produce $f"
  done
}

nats_find() {
  nats_bin=$(command -v nats-server || true)
  [ -n "$nats_bin" ] || [ ! -x /usr/sbin/nats-server ] || nats_bin=/usr/sbin/nats-server
  [ -n "$nats_bin" ] || die "nats-server is needed (apt-get install nats-server)"
}

nats_start() {
  local dir=$1 f
  mkdir -p "$dir/nats"
  "${nats_bin:?run nats_find first}" -a 127.0.0.1 -p -1 --ports_file_dir "$dir/nats" >"$dir/nats.log" 2>&1 &
  nats_pid=$!
  nats_url=""
  for _ in $(seq 100); do
    f=$(find "$dir/nats" -name '*.ports' 2>/dev/null | head -n 1 || true)
    if [ -n "$f" ]; then
      nats_url=$(sed -n 's/.*"\(nats:\/\/127\.0\.0\.1:[0-9]*\)".*/\1/p' "$f")
      [ -z "$nats_url" ] || return 0
    fi
    sleep 0.1
  done
  die "nats-server reported no port (log: $(cat "$dir/nats.log"))"
}

admin_invite() {
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e["type"]=="invite": print(e["invite"]); break' "$1"
}

start_xvfb() {
  local d
  for d in "$@"; do
    Xvfb "$d" -screen 0 1280x800x24 -nolisten tcp >"${work:-/tmp}/xvfb${d#:}.log" 2>&1 &
    pids+=("$!")
  done
  for d in "$@"; do
    for _ in $(seq 200); do
      DISPLAY=$d xdotool getdisplaygeometry >/dev/null 2>&1 && break
      sleep 0.05
    done
    DISPLAY=$d xdotool getdisplaygeometry >/dev/null 2>&1 ||
      die "no X server on $d: $(tail -n 3 "${work:-/tmp}/xvfb${d#:}.log" 2>/dev/null) $(pgrep -a Xvfb | tr '\n' ';')"
  done
}
