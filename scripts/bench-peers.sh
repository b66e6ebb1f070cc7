#!/usr/bin/env bash
# TeamChat's relay beside the servers a team could run instead: NATS core
# (nats-server) and MQTT (mosquitto), on the same machine, in the same run,
# through the same client (`teamchat-loadgen compare`, real TLS via OpenSSL).
#
#   scripts/bench-peers.sh             # full run (about 15 minutes)
#   QUICK=1 scripts/bench-peers.sh     # one run each, smaller sizes
#
# - installs nats-server and mosquitto with apt when missing;
# - gives all three the same ECDSA P-256 certificate (scripts/gen-certs.sh,
#   into a temporary directory) and TLS 1.3 (the client insists on it);
# - mosquitto: persistence false, set_tcp_nodelay true,
#   max_queued_messages 1000 (and `user root` when run as root);
# - the relay: its default queues and memory, rates and connection counts
#   raised (relay_bench_limits in scripts/lib/relay.sh);
# - each measurement starts a fresh server and stops it after; the servers
#   alternate (relay, nats, mqtt, relay, ...), RUNS (3) times each;
# - prints one markdown table of medians and ratios to stdout.
#
# Scenarios (payload = u64be sequence, u64be send time in monotonic ns,
# zero padding):
#   throughput  1 publisher, N = 10 and 100 subscribers, 256 B and 4 KiB,
#               500,000 / N messages as fast as the server takes them:
#               delivered msgs/s (first to last receive), loss %, server
#               CPU µs per delivery (from /proc/PID/stat), server peak RSS
#               (VmHWM of the fresh server);
#   latency     10 subscribers, 100 msg/s for 10 s after a 1 s warm-up:
#               p50 / p99 / max one-way;
#   memory      server RSS growth per idle subscribed TLS connection, with
#               1,000 and 10,000 connections (topics of 10), and 1,000 in
#               one topic (with the rate they were opened at, 16 at a time);
#   accepts     TLS sessions (connect, handshake, greeting, close) per second
#               with 4 concurrent connectors.
#   many rooms  100 rooms of 10 members, every member subscribed and
#               publishing on one connection at a fixed rate, raised step by
#               step (1, 2, 4, 5, 6, ... 100 msg/s each, 3 s per step) until the
#               p99 of a step passes 10 ms: the highest total rate held.
#
# Loopback only; the trap stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh

RUNS=${RUNS:-3}
if [ -n "${QUICK:-}" ]; then RUNS=1; fi

need=()
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
apt_install_missing "${need[@]}"
export PATH="$PATH:/usr/sbin"

# 10,000 sockets in the load generator, as many in the server (the limit
# is per process): raise the soft limit as far as the hard one allows.
need_fds=11000
hard=$(ulimit -Hn)
cur=$(ulimit -n)
if [ "$cur" != unlimited ] && [ "$cur" -lt 32768 ]; then
  if [ "$hard" = unlimited ] || [ "$hard" -ge 32768 ]; then
    ulimit -n 32768
  else
    ulimit -n "$hard"
  fi
fi
cur=$(ulimit -n)
[ "$cur" = unlimited ] || [ "$cur" -ge "$need_fds" ] ||
  die "the open-file limit is $cur (hard $hard); 10,000 connections need $need_fds: raise the hard limit and retry"

bench_build

scratch_dir

echo "== certificates" >&2
temp_certs -q "$work/certs"
cert=$work/certs/relay-chain.crt
[ -s "$cert" ] || cert=$work/certs/relay.crt
key=$work/certs/relay.key
ca=$work/certs/ca.crt

relay_bench_limits 40000

# start_server PROTO -> sets server_pid (in pids), port
start_server() {
  port=$(free_port)
  case $1 in
    relay)
      relay_spawn "$work/server.log" "$work/server.log" "127.0.0.1:$port" "$cert" "$key" \
        "${bench_limits[@]}"
      ;;
    nats)
      cat >"$work/nats.conf" <<EOF
listen: "127.0.0.1:$port"
max_connections: 40000
max_payload: 1048576
tls {
  cert_file: "$cert"
  key_file: "$key"
  timeout: 5
}
EOF
      nats-server -c "$work/nats.conf" >"$work/server.log" 2>&1 &
      pids+=("$!")
      ;;
    mqtt)
      {
        echo "per_listener_settings false"
        echo "persistence false"
        echo "set_tcp_nodelay true"
        echo "max_queued_messages 1000"
        echo "allow_anonymous true"
        [ "$(id -u)" = 0 ] && echo "user root"
        echo "listener $port 127.0.0.1"
        echo "certfile $cert"
        echo "keyfile $key"
        echo "tls_version tlsv1.3"
      } >"$work/mosquitto.conf"
      mosquitto -c "$work/mosquitto.conf" >"$work/server.log" 2>&1 &
      pids+=("$!")
      ;;
  esac
  server_pid=${pids[-1]}
  wait_port "$port" "$server_pid" || { cat "$work/server.log" >&2; die "$1 did not start"; }
}

results=$work/results.jsonl
: >"$results"
# measure TAG PROTO ARGS...: one fresh server, one loadgen run, one JSON line.
measure() {
  local tag=$1 proto=$2
  shift 2
  start_server "$proto"
  local out
  if out=$("$loadgen" compare --addr "127.0.0.1:$port" --ca "$ca" --proto "$proto" \
    --server-pid "$server_pid" --threads 1 --parallel 16 --timeout 300 "$@" 2>"$work/loadgen.err"); then
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["tag"]=sys.argv[2]; print(json.dumps(d))' "$out" "$tag" >>"$results"
    echo "   $tag $proto: $out" >&2
  else
    echo "   $tag $proto: FAILED: $(tail -n 3 "$work/loadgen.err")" >&2
    echo "{\"tag\":\"$tag\",\"proto\":\"$proto\",\"failed\":true}" >>"$results"
  fi
  stop_all
}

sizes="256 4096"
subs_list="10 100"
idle_list="1000 10000"
[ -n "${QUICK:-}" ] && idle_list="1000"
for run in $(seq "$RUNS"); do
  echo "== run $run of $RUNS" >&2
  for n in $subs_list; do
    for size in $sizes; do
      for p in relay nats mqtt; do
        measure "throughput N=$n ${size}B" $p --scenario throughput --subs "$n" --size "$size"
      done
    done
  done
  for p in relay nats mqtt; do
    measure "latency N=10 100/s" $p --scenario latency --subs 10 --size 256 --rate 100 --seconds 10
  done
  for c in $idle_list; do
    for p in relay nats mqtt; do
      measure "memory $c idle" $p --scenario idle --conns "$c"
    done
  done
  # One room of 1,000: each join is announced to everyone already there.
  for p in relay nats mqtt; do
    measure "memory 1000 idle in one room" $p --scenario idle --conns 1000 --room-size 1000
  done
  for p in relay nats mqtt; do
    measure "accepts 4 connectors" $p --scenario accepts --connectors 4 --seconds 5
  done
  for p in relay nats mqtt; do
    measure "many rooms 100x10" $p --scenario many-rooms --seconds 3
  done
done

echo "== versions: $("$relay_bin" --version 2>&1 | head -1); nats-server $(nats-server --version 2>&1 | sed 's/.*v//'); mosquitto $(mosquitto -h 2>&1 | sed -n 's/mosquitto version //p' | head -1)" >&2
cp "$results" "${PEERS_RESULTS:-target/bench-peers.jsonl}"
python3 scripts/peers-table.py "$results"
