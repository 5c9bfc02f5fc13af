#!/usr/bin/env bash
# CLOTH in the attention modes dense, sanger:0.02 and deq:adamax_nb80: for each mode, fine-tune
# all-MiniLM-L6-v2 as a masked LM with the mode in the training loop (python/deq_train/finetune_cloth.py,
# reference schedule: 20 epochs, Adam lr 5e-5, batch 3, gradient accumulation 10, L = 512; skipped when
# build/finetune/cloth_<mode>/model exists), then score the valid split with the C++ evaluator
# (examples/bert_cloth), which also reports the agreement with the PyTorch predictions.
# Results: build/examples/examples/bert_cloth/bert_cloth.{md,json}.
#
#   bash examples/cloth.sh                                   # the real schedule (days on 2 CPU cores)
#   FINETUNE_ARGS="--max-train-passages 200 --epochs 1 --grad-acc 1 --max-eval-passages 60 --threads 1" \
#       bash examples/cloth.sh --limit 60 --threads 1         # a small run
#
# Environment: MODES (default "dense sanger:0.02 deq:adamax_nb80"), FINETUNE_ARGS (extra arguments of
# finetune_cloth.py), DEQ_DATA_DIR (default ../shared/data). Arguments go to bert_cloth (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
modes=${MODES:-"dense sanger:0.02 deq:adamax_nb80"}
data=${DEQ_DATA_DIR:-../shared/data}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "== building bert_cloth (Release)"
cmake -S . -B build/examples -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DDEQ_BUILD_EXAMPLES=ON \
  -DDEQ_ENABLE_TEXT=ON -DDEQ_ENABLE_BERT=ON >/dev/null
cmake --build build/examples --target bert_cloth

models=()
for m in $modes; do
  dir=build/finetune/cloth_${m//:/_}
  if [ ! -f "$dir/model/model.safetensors" ]; then
    echo "== fine-tuning CLOTH in mode $m -> $dir"
    # shellcheck disable=SC2086
    python3 python/deq_train/finetune_cloth.py --mode "$m" --data-dir "$data" --out "$dir" ${FINETUNE_ARGS:-}
  fi
  models+=(--model "$dir/model")
done
echo "== evaluating ${models[*]}"
./build/examples/examples/bert_cloth --data "$data" "${models[@]}" "$@"
