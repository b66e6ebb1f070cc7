#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer, AddressSanitizer) of every
# decoder that takes bytes from the network or the disk, and of the engines
# under a hostile relay. Targets and what each checks: fuzz/fuzz_targets/
# and common/src/fuzzing.rs.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 600)
#   scripts/fuzz.sh --ci                    each target 15 s: what CI runs
#   scripts/fuzz.sh --keep [SECONDS] ...    then merge what was found into
#                                           the committed corpus (minimised)
#   scripts/fuzz.sh --record                re-record the seed corpus from a
#                                           room of the test suite
#
# Each run starts from the committed corpus (fuzz/corpus/TARGET/); new inputs
# go to a scratch folder unless --keep. Limits: 30 s per input, 2 GiB of
# memory, 256 MiB in one allocation. A crash, panic, timeout or allocation
# over a limit stops that target, leaves the input in fuzz/artifacts/TARGET/
# and makes the script fail; it prints a line of figures per target.
#
# Needs cargo-fuzz (cargo install --locked cargo-fuzz). The machine's Rust is
# stable; cargo fuzz passes nightly-only flags (-Zsanitizer), which stable
# rustc accepts with RUSTC_BOOTSTRAP=1: set here, for the fuzz build only.
set -euo pipefail
cd "$(dirname "$0")/.."

targets_all=(relay_client_frames relay_frames backplane envelope invite identity history_row admin_state file_name engines)
seconds=600
keep=0
case "${1:-}" in
  --record)
    cargo test -q -p common --test fuzz_corpus -- --ignored record_seed_corpus --nocapture
    cargo test -q -p client --test fuzz_corpus -- --ignored record_seed_corpus --nocapture
    cargo test -q -p relay --features test-support --test fuzz_corpus -- --ignored record_seed_corpus --nocapture
    exit 0 ;;
  --ci) seconds=15; shift ;;
  --keep) keep=1; shift ;;
esac
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds=$1; shift; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")

command -v cargo-fuzz >/dev/null || {
  echo "fuzz: cargo-fuzz is missing (cargo install --locked cargo-fuzz)" >&2; exit 1; }
rustc --version | grep -q nightly || export RUSTC_BOOTSTRAP=1

# The engines sign and verify with RSA at every step; comparison tracing in
# the bignum loops makes that ten times slower. For a full run the engines
# target is built without it, in a folder of its own (CI's short run uses
# the one build of everything).
flags_for() {
  if [ "$1" = engines ] && [ "$seconds" -gt 60 ]; then
    echo "-O --debug-assertions --no-trace-compares --target-dir target-engines"
  else
    echo "-O --debug-assertions"
  fi
}
echo "== cargo fuzz build (release, debug assertions, AddressSanitizer)"
(cd fuzz && cargo fuzz build -O --debug-assertions)
for t in "${targets[@]}"; do
  if [ "$(flags_for "$t")" != "-O --debug-assertions" ]; then
    # shellcheck disable=SC2046
    (cd fuzz && cargo fuzz build $(flags_for "$t") "$t")
  fi
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
printf '%-20s %6s %12s %9s %7s %7s %8s %8s  %s\n' \
  target seconds executions exec/s cov features corpus peak_MB result
for t in "${targets[@]}"; do
  seeds=fuzz/corpus/$t
  mkdir -p "$seeds" "$scratch/$t" "fuzz/artifacts/$t"
  log=$scratch/$t.log
  set +e
  # libFuzzer runs the whole corpus before its clock starts: in CI's short
  # run the engines (a few inputs a second there) start from 40 of theirs.
  start=corpus/$t
  if [ "$t" = engines ] && [ "$seconds" -le 60 ]; then
    start=$scratch/$t-start
    mkdir -p "$start"
    find "fuzz/corpus/$t" -type f | sort | head -40 | xargs -r cp -t "$start"
  fi
  # shellcheck disable=SC2046
  (cd fuzz && cargo fuzz run $(flags_for "$t") "$t" "$scratch/$t" "$(realpath "$start")" -- \
      -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=256 \
      -print_final_stats=1 -artifact_prefix="artifacts/$t/") >"$log" 2>&1
  rc=$?
  set -e
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1 || true; }
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (status $rc; see fuzz/artifacts/$t/)"
    status=1
    cp "$log" "fuzz/artifacts/$t/last-run.log"
    echo "fuzz: $t failed; the end of its log (all of it in fuzz/artifacts/$t/last-run.log):" >&2
    tail -25 "$log" >&2
  fi
  printf '%-20s %6s %12s %9s %7s %7s %8s %8s  %s\n' "$t" "$seconds" \
    "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$(stat peak_rss_mb)" "$result"
  if [ "$keep" = 1 ] && [ "$rc" -eq 0 ]; then
    # shellcheck disable=SC2046
    (cd fuzz && cargo fuzz run $(flags_for "$t") "$t" "corpus/$t" "$scratch/$t" -- \
        -merge=1 -timeout=30 -rss_limit_mb=2048) >"$scratch/$t.merge" 2>&1 ||
      { echo "fuzz: merging $t failed" >&2; status=1; }
  fi
done
exit "$status"
