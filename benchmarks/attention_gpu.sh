#!/usr/bin/env bash
# Issue 14's GPU benchmark in one go (device time is short): builds deq's CUDA benchmark for this GPU
# (the cuda-check preset in build/gpu, which tests/cuda/run_on_gpu.sh also uses), then runs
# python/deq_bench/attention_gpu.py, which times deq and PyTorch (SDPA flash / efficient, FlexAttention
# on deq's block mask) on the same inputs and writes results.md / results.json / results.png.
#
#   bash benchmarks/attention_gpu.sh [OUT_DIR] [extra attention_gpu.py flags...]
#
# DEQ_GPU_DRY_RUN=1 checks it without a GPU (one tiny shape, nothing timed).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/attention_gpu}
shift || true
export PATH="$PATH:/usr/local/cuda/bin"
build=build/gpu
if [ ! -f "$build/CMakeCache.txt" ]; then
    archs="80;90"
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .' || true)
    case "$cap" in 80|90|"") ;; *) archs="80;90;$cap";; esac
    cmake --preset cuda-check -B "$build" -DCMAKE_CUDA_ARCHITECTURES="$archs" -DDEQ_CUDA_CHECK_ARCHITECTURES="$archs" >/dev/null
fi
cmake --build "$build" --target attention_cuda_bench --parallel   # (up to date: nothing to do)
dry=()
[ "${DEQ_GPU_DRY_RUN:-0}" = 1 ] && dry=(--dry-run)
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv >"$out/device.txt" 2>&1 || echo "no nvidia-smi" >"$out/device.txt"
python3 python/deq_bench/attention_gpu.py --deq-binary "$build/benchmarks/attention_cuda" --out "$out" "${dry[@]}" "$@"
