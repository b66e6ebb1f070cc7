#!/usr/bin/env bash
# Runs docs/deploy/haproxy.cfg for real on 127.0.0.1: two relays sharing
# rooms over a local nats-server behind haproxy (TCP, TLS passed through,
# one certificate for both relays). The admin and a member join through the
# balancer (landing on different relays), then relay 1 is killed (SIGKILL)
# and the member must read the admin's next message, with no removal shown.
#
#   scripts/lb-check.sh      # needs haproxy and nats-server (Debian packages)
#
# Not part of the test suite (it needs haproxy); DEPLOY.md quotes its run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/relay.sh
command -v haproxy >/dev/null || { echo "install haproxy (apt-get install haproxy)" >&2; exit 1; }
nats_find
repo_certs
cargo build -q -p relay -p teamchat-admin -p teamchat-member
scratch_dir
W=$work
nats_start "$W"
nats=$nats_url
relay_bin=target/debug/teamchat-relay
p1=$(free_port); p2=$(free_port); lbp=$(free_port)
relay_start "$W/r1.out" "$W/r1.log" "127.0.0.1:$p1" certs/relay.crt certs/relay.key --backplane "$nats"; r1=$relay_pid
relay_start "$W/r2.out" "$W/r2.log" "127.0.0.1:$p2" certs/relay.crt certs/relay.key --backplane "$nats"
sed -e "s/10.0.0.1:7443/127.0.0.1:$lbp/; s/10.0.0.11:7443/127.0.0.1:$p1/; s/10.0.0.12:7443/127.0.0.1:$p2/" docs/deploy/haproxy.cfg > $W/haproxy.cfg
haproxy -f $W/haproxy.cfg -db > $W/haproxy.log 2>&1 & pids+=($!)
sleep 1
export TEAMCHAT_PASSPHRASE=""
mkfifo $W/admin.in $W/alice.in
target/debug/teamchat-admin --cli --json --relay 127.0.0.1:$lbp --relay-cert certs/relay.crt --identity $W/admin.pem --name boss --room-password "correct horse battery" --no-history < $W/admin.in > $W/admin.jsonl 2> $W/admin.err & pids+=($!)
exec 3> $W/admin.in
wait_for $W/admin.jsonl '"type":"epoch"' 60
invite=$(admin_invite "$W/admin.jsonl")
echo "invite: $invite"
target/debug/teamchat-member --cli --json --invite "$invite" --name alice --password "correct horse battery" --identity $W/alice.pem --no-history < $W/alice.in > $W/alice.jsonl 2> $W/alice.err & pids+=($!)
exec 4> $W/alice.in
wait_for $W/alice.jsonl '"type":"epoch"' 60
echo "hello through the balancer" >&3
wait_for $W/alice.jsonl 'hello through the balancer' 20
echo "connections per relay: r1=$(ss -tnp state established "( sport = :$p1 )" | grep -c teamchat) r2=$(ss -tnp state established "( sport = :$p2 )" | grep -c teamchat)"
echo "killing relay 1 (pid $r1)"
kill -KILL $r1
sleep 1
for n in $(seq 30); do
  echo "after the kill $n" >&3
  sleep 1
  grep -q 'after the kill' $W/alice.jsonl && break
done
wait_for $W/alice.jsonl 'after the kill' 5
if grep -q '"type":"kicked"' $W/alice.jsonl; then echo "FAILED: alice was told she was removed"; exit 1; fi
echo "no removal shown to alice"
grep -h '"type":"warning"' $W/alice.jsonl | tail -3
echo "alice read the message after relay 1 died"
grep -h '"type":"disconnected"\|"type":"connecting"\|reconnect' $W/alice.jsonl $W/admin.jsonl | head -6
echo "r2 connections now: $(ss -tnp state established "( sport = :$p2 )" | grep -c teamchat)"
