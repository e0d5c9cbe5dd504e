#!/usr/bin/env bash
# psMNIST protocol on Fashion-MNIST for the three models (lmu, lmu-parallel, lstm) with the torch backend:
#   subset: the first 10k training examples, 5 epochs, seeds 0 and 1, full 10k validation and test sets;
#   full:   the standard 50k/10k/10k split, 10 epochs, seeds $FULL_SEEDS (default 0; run it where there is a GPU).
# Adam 1e-3, batch 100, gradient norm clipped to 1, the best validation epoch evaluated on the test set.
# Results go to $OUT (default runs/psfashion); `python benchmarks/psmnist_table.py $OUT` prints the table.
#   DATA=/usr/share/datasets/fashion-mnist PROTOCOLS="subset full" bash benchmarks/psfashion.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
OUT="${OUT:-runs/psfashion}"
PROTOCOLS="${PROTOCOLS:-subset full}"
MODELS="${MODELS:-lmu lmu-parallel lstm}"
FULL_SEEDS="${FULL_SEEDS:-0}"
LMU="${LMU:-python3 -m lmu}"
for protocol in $PROTOCOLS; do
  for model in $MODELS; do
    if [ "$protocol" = subset ]; then
      for seed in 0 1; do
        $LMU train psmnist --data "$DATA" --model "$model" --epochs 5 --train-limit 10000 --seed "$seed" \
          --no-progress --out "$OUT/subset-$model-seed$seed"
      done
    else
      for seed in $FULL_SEEDS; do
        $LMU train psmnist --data "$DATA" --model "$model" --epochs 10 --seed "$seed" --no-progress \
          --out "$OUT/full-$model-seed$seed"
      done
    fi
  done
done
python3 benchmarks/psmnist_table.py "$OUT"
