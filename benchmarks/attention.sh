#!/usr/bin/env bash
# Attention kernels, deq versus PyTorch (SDPA and the unfused matmul-softmax-matmul) on the same inputs and
# threads, in one run. Writes build/benchmarks/attention/results.{json,md} and attention_bench.png.
#
#   bash benchmarks/attention.sh [--lengths 128,512,1024,2048,4096] [--batches 1,8] [--dims 64,32] [--threads 1,2]
#                                [--repeats N] [--budget SECONDS] [--out DIR]
# Needs what `bash examples/run.sh` installs plus torch, transformers, safetensors and matplotlib (the plot).
# Inputs: q, k, v of MiniLM layer 2 on real STS-B text for d = 32 and L <= 512, structured synthetic ones
# otherwise (python/deq_bench/attention_bench.py). Run it on a quiet machine: nothing else on the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/benchmarks/attention
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2;;
    *) args+=("$1"); shift;;
  esac
done
export HF_HUB_OFFLINE=1
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DDEQ_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/bench --target attention_bench peak_bench
mkdir -p "$out"
python3 python/deq_bench/attention_bench.py --deq-binary build/bench/benchmarks/attention --out "$out" "${args[@]}"
