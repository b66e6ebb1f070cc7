#!/usr/bin/env bash
# Generates the relay's TLS material: a private CA and a relay server
# certificate signed by it. Members pin the relay certificate's SHA-256 (it
# goes into the invite as `cert=`) or verify the relay with ca.crt.
#
#   scripts/gen-certs.sh                                  # localhost, 127.0.0.1
#   scripts/gen-certs.sh chat.example.org 203.0.113.7     # custom names/addresses
#   scripts/gen-certs.sh --help                           # every option and file
#
# Needs only the `openssl` command line (OpenSSL 3.0 or later). Never prompts.
set -euo pipefail

prog=${0##*/}

usage() {
  cat <<EOF
Usage: $prog [--rsa] [--force] [--out DIR] [NAME_OR_IP...]

Creates a private certificate authority (CA) and a TLS server certificate for
the TeamChat relay, signed by that CA, then prints the SHA-256 fingerprints.

Arguments:
  NAME_OR_IP    A DNS name (e.g. chat.example.org, *.example.org) or an IP
                address (IPv4 such as 203.0.113.7, or IPv6 such as 2001:db8::7,
                with or without brackets) under which members reach the relay.
                Each becomes a subjectAltName of the relay certificate (DNS: or
                IP:); the first one is also its Common Name. Give every name and
                address that will appear as HOST in invites.
                Default: localhost 127.0.0.1

Options:
  --rsa         Make the relay key RSA-3072 instead of ECDSA P-256. The CA key
                is always ECDSA P-256. Use it only where something requires an
                RSA server key; ECDSA P-256 is smaller and faster.
  --force       Overwrite output files that already exist (they are replaced
                only once the new set has verified). Without it the script
                refuses, and writes nothing, if any output file exists.
                Replacing relay.crt changes its fingerprint: invites that pin
                the old one stop working.
  --out DIR     Write the files to DIR (created if missing) instead of the
                repository's certs/ directory ($(default_out_display)).
  -h, --help    Print this help and exit.
  --            End of options; every later argument is a NAME_OR_IP.
Options and names may be given in any order. Nothing is read from stdin.

Output files (in DIR):
  ca.crt          CA certificate (ECDSA P-256, self-signed, ~10 years, 0644).
                  Public. Give it to members who verify the relay by CA
                  instead of by pinned fingerprint.
  ca.key          CA private key (PKCS#8 PEM, unencrypted, 0600). SECRET:
                  whoever holds it can issue certificates members trust.
                  Never copy it off the relay box (better: keep it offline).
  relay.crt       Relay server certificate (serverAuth, CA:FALSE, ~825 days,
                  0644). Public. The relay serves it: --cert relay.crt.
                  Its SHA-256 is the cert= value of invites.
  relay.key       Relay private key (PKCS#8 PEM, unencrypted, 0600). SECRET:
                  the relay loads it with --key relay.key. Never copy it off
                  the relay box.
  relay-chain.crt relay.crt followed by ca.crt (0644). Public. For TLS
                  servers or proxies that should send the full chain.

At the end the script verifies relay.crt against ca.crt (failing if it does
not verify) and prints:
  relay certificate SHA-256 (members pin this in their invite): <64 hex>
  CA certificate SHA-256: <64 hex>
Fingerprints are the SHA-256 of the certificate's DER encoding, lowercase hex.

Exit status: 0 on success; 1 on any error, in which case no output file was
created or replaced.
EOF
}

die() {
  printf '%s: error: %s\n' "$prog" "$*" >&2
  exit 1
}

# The repository's certs/ directory, next to this script's scripts/ directory.
default_out_display() {
  local root
  root=$(cd -- "$(dirname -- "$0")/.." && pwd -P)
  printf '%s/certs' "$root"
}

# --- argument parsing --------------------------------------------------------

out=""
force=0
rsa=0
names=()

while [ "$#" -gt 0 ]; do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --rsa) rsa=1 ;;
    --force) force=1 ;;
    --out)
      [ "$#" -ge 2 ] || die "--out needs a directory (see --help)"
      [ -n "$2" ] || die "--out needs a non-empty directory (see --help)"
      out=$2
      shift
      ;;
    --out=*)
      out=${1#--out=}
      [ -n "$out" ] || die "--out needs a non-empty directory (see --help)"
      ;;
    --)
      shift
      names+=("$@")
      break
      ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) names+=("$1") ;;
  esac
  shift
done

if [ "${#names[@]}" -eq 0 ]; then
  names=(localhost 127.0.0.1)
fi
if [ -z "$out" ]; then
  out=$(default_out_display)
fi

command -v openssl >/dev/null 2>&1 || die "the 'openssl' command is not installed"

# --- subjectAltName classification -------------------------------------------

# A dotted-quad IPv4 address, each part 0-255 without leading zeros.
is_ipv4() {
  local a=$1 part
  [[ $a =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || return 1
  local IFS=.
  for part in $a; do
    [[ $part == 0 || $part != 0* ]] || return 1
    [ "$part" -le 255 ] || return 1
  done
  return 0
}

# An IPv6 address in text form (RFC 4291 section 2.2), optionally ending in a
# dotted IPv4 address. No zone index (fe80::1%eth0): certificates cannot hold one.
is_ipv6() {
  local a=$1 left right part group total=0
  local -a groups
  [[ $a == *:* ]] || return 1
  [[ $a =~ ^[0-9A-Fa-f:.]+$ ]] || return 1
  if [[ ${a##*:} == *.* ]]; then
    is_ipv4 "${a##*:}" || return 1
    a="${a%:*}:0:0" # the IPv4 tail counts as two groups
  fi
  [[ $a != *:::* ]] || return 1
  if [[ $a == *::* ]]; then
    left=${a%%::*}
    right=${a#*::}
    [[ $right != *::* ]] || return 1 # "::" at most once
    for part in "$left" "$right"; do
      [ -n "$part" ] || continue
      IFS=: read -r -a groups <<<"$part"
      [[ $part != :* && $part != *: ]] || return 1
      for group in "${groups[@]}"; do
        [[ $group =~ ^[0-9A-Fa-f]{1,4}$ ]] || return 1
        total=$((total + 1))
      done
    done
    [ "$total" -le 7 ] || return 1
  else
    [[ $a != :* && $a != *: ]] || return 1
    IFS=: read -r -a groups <<<"$a"
    for group in "${groups[@]}"; do
      [[ $group =~ ^[0-9A-Fa-f]{1,4}$ ]] || return 1
      total=$((total + 1))
    done
    [ "$total" -eq 8 ] || return 1
  fi
  return 0
}

# A DNS name as invites accept it: labels of 1-63 letters, digits and '-', not
# starting or ending with '-', at most 253 characters; optionally "*." first.
is_dns_name() {
  local a=$1 label
  a=${a#\*.}
  [ "${#1}" -le 253 ] || return 1
  [[ $a =~ ^[a-z0-9.-]+$ ]] || return 1
  [[ $a != .* && $a != *. && $a != *..* ]] || return 1
  local IFS=.
  for label in $a; do
    [ "${#label}" -le 63 ] || return 1
    [[ $label != -* && $label != *- ]] || return 1
  done
  # An all-numeric last label is a mistyped IP address, not a host name.
  [[ ! ${a##*.} =~ ^[0-9]+$ ]] || return 1
  return 0
}

san_entries=() # "DNS:name" or "IP:address", in argument order, no duplicates
declare -A seen=()
for arg in "${names[@]}"; do
  value=$arg
  if [[ $value == \[*\] ]]; then
    value=${value#\[}
    value=${value%\]}
  fi
  if is_ipv4 "$value"; then
    entry="IP:$value"
  elif is_ipv6 "$value"; then
    entry="IP:${value,,}"
  else
    value=${value,,}
    value=${value%.} # a fully qualified name's trailing dot
    is_dns_name "$value" ||
      die "'$arg' is neither an IPv4/IPv6 address nor a valid DNS name"
    entry="DNS:$value"
  fi
  [ -z "${seen[$entry]+x}" ] || continue
  seen[$entry]=1
  san_entries+=("$entry")
done

first_san=${san_entries[0]#*:}

# --- refuse to overwrite -------------------------------------------------------

files=(ca.key ca.crt relay.key relay.crt relay-chain.crt)

if [ -e "$out" ] && [ ! -d "$out" ]; then
  die "output path '$out' exists and is not a directory"
fi
if [ "$force" -eq 0 ]; then
  existing=0
  for f in "${files[@]}"; do
    if [ -e "$out/$f" ] || [ -L "$out/$f" ]; then
      printf '%s: error: %s already exists; pass --force to overwrite it\n' \
        "$prog" "$out/$f" >&2
      existing=1
    fi
  done
  [ "$existing" -eq 0 ] || exit 1
fi

mkdir -p -- "$out" # created with the caller's umask: certificates stay readable
out=$(cd -- "$out" && pwd -P)

# --- generate ------------------------------------------------------------------

# Everything is created in a private temporary directory inside the output
# directory (same file system, so private keys never touch another disk and
# the final rename is atomic) and only moved into place once it verifies.
umask 077
tmp=$(mktemp -d "$out/.gen-certs.XXXXXX")
cleanup() {
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# openssl never reads stdin below; this also makes sure it never prompts.
exec </dev/null

# A positive random 127-bit serial number (RFC 5280 allows up to 20 octets).
random_serial() {
  local hex
  hex=$(openssl rand -hex 16)
  printf '0x%x%s' $((0x${hex:0:1} & 7)) "${hex:1}"
}

# Common Names are limited to 64 characters; a longer first name only goes
# into the subjectAltName (which is what TLS clients check anyway).
relay_cn=$first_san
if [ "${#relay_cn}" -gt 64 ]; then
  relay_cn="TeamChat relay"
  echo "$prog: note: '$first_san' is longer than 64 characters; relay CN is '$relay_cn'" >&2
fi
ca_cn="TeamChat CA for $first_san"
[ "${#ca_cn}" -le 64 ] || ca_cn="TeamChat private CA"

if [ "$rsa" -eq 1 ]; then
  relay_alg="RSA-3072"
  relay_key_usage="critical, digitalSignature, keyEncipherment"
else
  relay_alg="ECDSA P-256"
  relay_key_usage="critical, digitalSignature"
fi

cnf=$tmp/openssl.cnf
{
  cat <<EOF
# Generated by $prog; deleted when it exits.
[ req ]
distinguished_name = req_dn
prompt             = no
string_mask        = utf8only
utf8               = yes

[ req_dn ]
CN = unused

[ v3_ca ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ v3_relay ]
basicConstraints       = critical, CA:FALSE
keyUsage               = $relay_key_usage
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
subjectAltName         = @relay_san

[ relay_san ]
EOF
  n_dns=0
  n_ip=0
  for entry in "${san_entries[@]}"; do
    case $entry in
      DNS:*)
        n_dns=$((n_dns + 1))
        printf 'DNS.%d = %s\n' "$n_dns" "${entry#DNS:}"
        ;;
      IP:*)
        n_ip=$((n_ip + 1))
        printf 'IP.%d = %s\n' "$n_ip" "${entry#IP:}"
        ;;
    esac
  done
} >"$cnf"

# Runs openssl; on failure shows its diagnostics and stops.
ossl() {
  local what=$1
  shift
  if ! openssl "$@" 2>"$tmp/openssl.log"; then
    cat "$tmp/openssl.log" >&2
    die "openssl could not $what; nothing was written to $out"
  fi
}

ec_p256=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve)

echo "== generating CA key (ECDSA P-256) and self-signed CA certificate" >&2
ossl "generate the CA key" genpkey "${ec_p256[@]}" -out "$tmp/ca.key"
ossl "create the CA certificate" req -config "$cnf" -new -x509 -sha256 \
  -days 3650 -key "$tmp/ca.key" -set_serial "$(random_serial)" \
  -subj "/O=TeamChat/CN=$ca_cn" -extensions v3_ca -out "$tmp/ca.crt"

echo "== generating relay key ($relay_alg) and certificate for: ${san_entries[*]}" >&2
if [ "$rsa" -eq 1 ]; then
  ossl "generate the relay key" genpkey -algorithm RSA \
    -pkeyopt rsa_keygen_bits:3072 -out "$tmp/relay.key"
else
  ossl "generate the relay key" genpkey "${ec_p256[@]}" -out "$tmp/relay.key"
fi
ossl "create the relay certificate request" req -config "$cnf" -new -sha256 \
  -key "$tmp/relay.key" -subj "/O=TeamChat/CN=$relay_cn" -out "$tmp/relay.csr"
ossl "sign the relay certificate" x509 -req -sha256 -days 825 \
  -in "$tmp/relay.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
  -set_serial "$(random_serial)" -extfile "$cnf" -extensions v3_relay \
  -out "$tmp/relay.crt"
cat "$tmp/relay.crt" "$tmp/ca.crt" >"$tmp/relay-chain.crt"

# --- check before installing ---------------------------------------------------

for f in ca.key relay.key; do
  head -n 1 "$tmp/$f" | grep -qx -- '-----BEGIN PRIVATE KEY-----' ||
    die "$f is not an unencrypted PKCS#8 PEM key"
done
if [ "$(openssl pkey -in "$tmp/relay.key" -pubout)" != \
  "$(openssl x509 -in "$tmp/relay.crt" -noout -pubkey)" ]; then
  die "relay.key does not match relay.crt"
fi

verify() {
  # Prints openssl's diagnostics and fails loudly when the chain is bad.
  local what=$1 output
  shift
  if ! output=$(openssl verify -x509_strict -purpose sslserver \
    -CAfile "$tmp/ca.crt" "$@" "$tmp/relay.crt" 2>&1); then
    printf '%s\n' "$output" >&2
    die "VERIFICATION FAILED: relay.crt does not verify against ca.crt ($what); nothing was written to $out"
  fi
}
verify "chain"
for entry in "${san_entries[@]}"; do
  case $entry in
    DNS:\*.*) verify "$entry" -verify_hostname "wildcard-check.${entry#DNS:\*.}" ;;
    DNS:*) verify "$entry" -verify_hostname "${entry#DNS:}" ;;
    IP:*) verify "$entry" -verify_ip "${entry#IP:}" ;;
  esac
done

fingerprint() {
  local fp
  fp=$(openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -r)
  fp=${fp%% *}
  fp=${fp,,}
  [[ $fp =~ ^[0-9a-f]{64}$ ]] || die "could not compute the SHA-256 of $1"
  printf '%s' "$fp"
}
relay_fp=$(fingerprint "$tmp/relay.crt")
ca_fp=$(fingerprint "$tmp/ca.crt")
relay_until=$(openssl x509 -in "$tmp/relay.crt" -noout -enddate)
ca_until=$(openssl x509 -in "$tmp/ca.crt" -noout -enddate)

# --- install -------------------------------------------------------------------

chmod 600 "$tmp/ca.key" "$tmp/relay.key"
chmod 644 "$tmp/ca.crt" "$tmp/relay.crt" "$tmp/relay-chain.crt"
for f in "${files[@]}"; do
  if [ "$force" -eq 0 ] && { [ -e "$out/$f" ] || [ -L "$out/$f" ]; }; then
    die "$out/$f appeared while generating; pass --force to overwrite it"
  fi
done
# Certificates first, keys last, each an atomic rename within $out.
for f in ca.crt relay.crt relay-chain.crt ca.key relay.key; do
  mv -f -- "$tmp/$f" "$out/$f"
done

# --- report --------------------------------------------------------------------

cat <<EOF

Wrote to $out:
  ca.crt           CA certificate (public)          ${ca_until#notAfter=}
  ca.key           CA private key (SECRET, 0600)
  relay.crt        relay certificate (public)       ${relay_until#notAfter=}
  relay.key        relay private key (SECRET, 0600)
  relay-chain.crt  relay.crt + ca.crt (public)
relay key: $relay_alg; subjectAltName: ${san_entries[*]}
relay.crt verified against ca.crt: OK

relay certificate SHA-256 (members pin this in their invite): $relay_fp
CA certificate SHA-256: $ca_fp

Invites carry the pin as: teamchat://HOST:PORT/ROOM?admin=...&cert=$relay_fp
Members who verify by CA instead need: $out/ca.crt
Start the relay with: teamchat-relay --cert $out/relay.crt --key $out/relay.key
Keep $out/relay.key and $out/ca.key on the relay box: they must never leave it.
EOF
