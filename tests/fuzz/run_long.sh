#!/usr/bin/env bash
# Long fuzzing run: bash tests/fuzz/run_long.sh [seconds-per-target] [target ...]
#
# Builds the `fuzz` preset (clang, ASan + UBSan), then fuzzes each target (default: all of
# tests/fuzz/*_fuzz.cpp) for the given time (default 600 s) on a persistent working corpus
# build/fuzz-long/<target>/corpus (seeded from tests/fuzz/corpus/<target>; it grows from run to run
# and is never written into the repository), with tests/fuzz/dict/<target>.dict when present.
# Crash / leak / timeout / out-of-memory reproducers go to build/fuzz-long/<target>/artifacts/ and
# the libFuzzer log to build/fuzz-long/<target>/fuzz.log. Ends with a summary table
#   target | seconds | execs | execs/s | corpus | findings
# (execs from libFuzzer's final stat::number_of_executed_units, corpus = files in the working
# corpus, findings = reproducers written by this run) and exits non-zero when there is a finding.
# See docs/fuzzing.md for reproducing and minimising a finding.
#
# Environment: DEQ_FUZZ_JOBS     targets fuzzed at the same time (default: number of CPUs)
#              DEQ_FUZZ_RSS_MB   libFuzzer -rss_limit_mb (default 2048)
#              DEQ_FUZZ_TIMEOUT  libFuzzer -timeout, seconds per input (default 10)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
root_dir=$(pwd)
seconds=${1:-600}
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: bash tests/fuzz/run_long.sh [seconds-per-target] [target ...]" >&2
    exit 2
fi

cmake --preset fuzz >/dev/null || { echo "error: cmake --preset fuzz failed" >&2; exit 2; }
build_dir="$root_dir/build/fuzz"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < "$build_dir/tests/fuzz/fuzz_targets.txt"
fi
build_targets=()
for t in "${targets[@]}"; do
    [ -f "$root_dir/tests/fuzz/${t}_fuzz.cpp" ] || { echo "error: no fuzz target '$t' (tests/fuzz/${t}_fuzz.cpp)" >&2; exit 2; }
    build_targets+=("deq_fuzz_$t")
done
cmake --build "$build_dir" --target "${build_targets[@]}" || { echo "error: building the fuzz targets failed" >&2; exit 2; }

jobs=${DEQ_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
long_dir="$root_dir/build/fuzz-long"

# fuzz_one <target>: one libFuzzer run; writes <dir>/result (seconds execs corpus findings).
fuzz_one() {
    local t=$1 dir="$long_dir/$1"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp -n "$root_dir/tests/fuzz/corpus/$t/"* "$dir/corpus/" 2>/dev/null
    local dict=()
    [ -f "$root_dir/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$root_dir/tests/fuzz/dict/$t.dict")
    touch "$dir/.start"
    local start=$SECONDS
    cd "$dir" || return   # stray files (scratch folders of a crashed run) stay in the build tree
    "$build_dir/tests/fuzz/deq_fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 \
        -rss_limit_mb="${DEQ_FUZZ_RSS_MB:-2048}" -timeout="${DEQ_FUZZ_TIMEOUT:-10}" \
        -artifact_prefix="$dir/artifacts/" "${dict[@]}" "$dir/corpus" > "$dir/fuzz.log" 2>&1
    local rc=$?
    local elapsed=$((SECONDS - start))
    local execs corpus findings
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$dir/fuzz.log" | tail -n 1)
    corpus=$(find "$dir/corpus" -type f | wc -l)
    findings=$(find "$dir/artifacts" -type f -newer "$dir/.start" | wc -l)
    if [ "$rc" -ne 0 ] && [ "$findings" -eq 0 ]; then
        findings=1   # exited with an error without a reproducer (see fuzz.log)
    fi
    echo "$elapsed ${execs:-0} $corpus $findings" > "$dir/result"
}

echo "==> fuzzing ${#targets[@]} targets for ${seconds} s each, $jobs at a time (logs: build/fuzz-long/<target>/fuzz.log)"
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    rm -f "$long_dir/$t/result"
    fuzz_one "$t" &
    running=$((running + 1))
done
wait

total_findings=0
printf '\n| %-20s | %7s | %12s | %9s | %7s | %8s |\n' target seconds execs execs/s corpus findings
printf '|%s|%s|%s|%s|%s|%s|\n' ---------------------- --------- -------------- ----------- --------- ----------
for t in "${targets[@]}"; do
    if [ -f "$long_dir/$t/result" ]; then
        read -r elapsed execs corpus findings < "$long_dir/$t/result"
    else
        elapsed=0 execs=0 corpus=0 findings=1
    fi
    rate=$((elapsed > 0 ? execs / elapsed : execs))
    printf '| %-20s | %7d | %12d | %9d | %7d | %8d |\n' "$t" "$elapsed" "$execs" "$rate" "$corpus" "$findings"
    total_findings=$((total_findings + findings))
done
echo
if [ "$total_findings" -gt 0 ]; then
    echo "$total_findings finding(s): reproducers in build/fuzz-long/<target>/artifacts/ (docs/fuzzing.md: reproduce, minimise, add a seed)"
    exit 1
fi
echo "no findings"
