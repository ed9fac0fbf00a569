#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for a set time under `nice` and prints a
# table: target, seconds, executions, corpus size, crashes found (crash/timeout/oom inputs).
#
#   bench/fuzz.sh [SECONDS]        (default 120 s per target; TARGETS="index pdf" to pick)
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and `cargo install cargo-fuzz`:
# libFuzzer is nightly-only, which is why fuzzing is a bench/ tool and not part of tests/run.sh.
# Seeds: fuzz/seeds/<target>/ (committed) plus what `seeds` writes from the repository's own
# files (the real snapshot's header, a small index, the Tally samples, the PDF fixtures that
# tests/run.sh makes). Corpora grow in fuzz/corpus/<target>/ and persist between runs; findings
# land in fuzz/artifacts/<target>/ and logs in fuzz/logs/. A finding becomes a regression test:
# see tests/fuzz_regressions.rs.
set -euo pipefail
SECS="${1:-120}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/fuzz"
TARGETS="${TARGETS:-snapshot index tokenizer tally json http pdf}"
TRIPLE="$(rustc +nightly -vV | sed -n 's/^host: //p')"
BIN="target/$TRIPLE/release"

# -O -a: optimized, with debug assertions and overflow checks (an overflow is a finding).
nice -n 10 cargo +nightly fuzz build -O -a >&2
mkdir -p corpus artifacts logs
"$BIN/seeds" corpus >&2

max_len() {
  case "$1" in
    snapshot) echo 16384 ;;  # the real header is 6.7 KB
    pdf) echo 65536 ;;       # the fixtures are 2-33 KB
    *) echo 8192 ;;
  esac
}

printf '%-10s %8s %12s %8s %8s\n' target seconds executions corpus crashes
for t in $TARGETS; do
  mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
  start=$(date +%s)
  # fork=1 with ignore_*: keep fuzzing after a finding, so one run reports all it finds.
  nice -n 10 "$BIN/$t" "corpus/$t" "seeds/$t" \
    -max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=4096 \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -artifact_prefix="artifacts/$t/" >"logs/$t.log" 2>&1 || true
  secs=$(( $(date +%s) - start ))
  # fork mode's status lines: "#EXECS: cov: … corp: N/… exec/s: … oom/timeout/crash: a/b/c …"
  last=$(grep -E '^#[0-9]+: cov:' "logs/$t.log" | tail -1 || true)
  execs=$(sed -nE 's/^#([0-9]+):.*/\1/p' <<<"$last")
  found=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -newermt "@$start" | wc -l)
  printf '%-10s %8s %12s %8s %8s\n' "$t" "$secs" "${execs:-?}" "$(ls "corpus/$t" | wc -l)" "$found"
done
