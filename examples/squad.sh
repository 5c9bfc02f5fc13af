#!/usr/bin/env bash
# SQuAD v1.1 in the attention modes dense, sanger:0.02 and deq:adamax_nb80: for each mode, fine-tune
# all-MiniLM-L6-v2 with the mode in the training loop (python/deq_train/finetune_squad.py, reference schedule:
# 2 epochs, lr 3e-5, batch 12, L = 384, doc stride 128; skipped when build/finetune/squad_<mode>/model exists),
# then evaluate every checkpoint in its mode with the C++ evaluator (examples/bert_squad), which also reports
# the agreement with the PyTorch predictions. Results: build/examples/examples/bert_squad/bert_squad.{md,json}.
#
# Split: dev-v1.1.json is the only SQuAD file here; articles [0, 24) fine-tune, articles [24, 48) evaluate.
#
#   bash examples/squad.sh                                   # the real schedule (hours on 2 CPU cores)
#   FINETUNE_ARGS="--max-train-features 1200 --epochs 1 --max-eval-examples 300 --threads 1" \
#       bash examples/squad.sh --limit 300 --threads 1        # a small run
#
# Environment: MODES (default "dense sanger:0.02 deq:adamax_nb80"), FINETUNE_ARGS (extra arguments of
# finetune_squad.py), DEQ_DATA_DIR (default ../shared/data). Arguments go to bert_squad (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
modes=${MODES:-"dense sanger:0.02 deq:adamax_nb80"}
data=${DEQ_DATA_DIR:-../shared/data}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "== building bert_squad (Release)"
cmake -S . -B build/examples -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DDEQ_BUILD_EXAMPLES=ON \
  -DDEQ_ENABLE_TEXT=ON -DDEQ_ENABLE_BERT=ON >/dev/null
cmake --build build/examples --target bert_squad

models=()
for m in $modes; do
  dir=build/finetune/squad_${m//:/_}
  if [ ! -f "$dir/model/model.safetensors" ]; then
    echo "== fine-tuning SQuAD in mode $m -> $dir"
    # shellcheck disable=SC2086
    python3 python/deq_train/finetune_squad.py --mode "$m" --data-dir "$data" --out "$dir" ${FINETUNE_ARGS:-}
  fi
  models+=(--model "$dir/model")
done
echo "== evaluating ${models[*]}"
./build/examples/examples/bert_squad --data "$data" "${models[@]}" "$@"
