#!/usr/bin/env bash
# The CUDA backend's checks on a machine with an NVIDIA GPU, in one go (device time is short):
#   1. the device, driver and toolkit (nvidia-smi, nvcc --version);
#   2. configure and build the cuda-check preset for the GPU's own architecture plus sm_80 / sm_90;
#   3. every CUDA test (ctest -L cuda), the gpu suite included (it fails here rather than skip: a GPU
#      is expected);
#   4. compute-sanitizer memcheck and racecheck on the gpu suite;
#   5. a short benchmark (benchmarks/attention_cuda.cu: predictor, dense, Sanger, DEQ on L = 512-4096);
#   6. where the MiniLM model and the STS-B data are present: bert_stsb on 200 pairs in three modes with
#      the attention on the GPU, then on the CPU (optional: a missing model or data does not fail the run);
# and writes every log under one folder (default build/gpu-logs, or $1), with summary.txt last.
#
#   bash tests/cuda/run_on_gpu.sh [LOG_DIR]
#
# Check it without a GPU with DEQ_GPU_DRY_RUN=1: it then builds and runs the host suite only, and
# says which steps it skipped.
set -uo pipefail
cd "$(dirname "$0")/../.."
logs=${1:-build/gpu-logs}
mkdir -p "$logs"
summary=$logs/summary.txt
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
dry=${DEQ_GPU_DRY_RUN:-0}
status=0
step() {  # step NAME COMMAND...: runs COMMAND with its output in $logs/NAME.log, notes the result
    local name=$1
    shift
    local start=$SECONDS
    "$@" >"$logs/$name.log" 2>&1
    local rc=$?
    note "$(printf '%-22s rc=%-3s %4ds  (%s)' "$name" "$rc" $((SECONDS - start)) "$logs/$name.log")"
    [ "$rc" -eq 0 ] || status=1
    return "$rc"
}

export PATH="$PATH:/usr/local/cuda/bin"
note "deq CUDA checks, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
archs="80;90"
if [ "$dry" != 1 ]; then
    step device nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
    cat "$logs/device.log" >>"$summary"
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
    case "$cap" in 80|90|"") ;; *) archs="80;90;$cap";; esac
else
    note "dry run: no GPU expected; nvidia-smi, the gpu suite and compute-sanitizer are skipped"
fi
step toolkit nvcc --version
build=build/gpu
step configure cmake --preset cuda-check -B "$build" -DCMAKE_CUDA_ARCHITECTURES="$archs" -DDEQ_CUDA_CHECK_ARCHITECTURES="$archs"
step build cmake --build "$build" --parallel
if [ "$dry" = 1 ]; then
    step ctest-host ctest --test-dir "$build" -L cuda -LE gpu --output-on-failure
    step benchmark "$build/benchmarks/attention_cuda" --dry-run
else
    step ctest ctest --test-dir "$build" -L cuda --output-on-failure
    step gpu-suite "$build/tests/cuda/deq_cuda_tests" --gpu
    if command -v compute-sanitizer >/dev/null 2>&1; then
        step memcheck compute-sanitizer --tool memcheck --error-exitcode 1 "$build/tests/cuda/deq_cuda_tests" --gpu
        step racecheck compute-sanitizer --tool racecheck --error-exitcode 1 "$build/tests/cuda/deq_cuda_tests" --gpu
    else
        note "compute-sanitizer: not found"
        status=1
    fi
    step benchmark "$build/benchmarks/attention_cuda" --lengths 512,1024,2048,4096 --repeats 5
    cat "$logs/benchmark.log" >>"$summary"
    keep=$status
    stsb_modes=dense,sanger:0.02,deq:adamax_nb80
    if step bert-stsb-cuda "$build/examples/bert_stsb" --device cuda --limit 200 --modes "$stsb_modes" --no-progress --out "$logs/stsb-cuda"; then
        step bert-stsb-cpu "$build/examples/bert_stsb" --limit 200 --modes "$stsb_modes" --no-progress --out "$logs/stsb-cpu" \
            --thresholds "$logs/stsb-cuda/stsb_thresholds.json"
        cat "$logs/stsb-cuda/bert_stsb.md" "$logs/stsb-cpu/bert_stsb.md" >>"$summary" 2>/dev/null
    else
        note "bert_stsb: did not run (model or data missing?): optional, see $logs/bert-stsb-cuda.log"
    fi
    status=$keep
fi
note "overall: $([ "$status" -eq 0 ] && echo passed || echo FAILED)"
exit "$status"
