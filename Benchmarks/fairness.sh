#!/usr/bin/env bash
# Item-fairness and popularity-bias report: every model of the ml-100k table with `fairness=true` (RecBole protocol:
# per-user random 8:1:1 split, full ranking, early stopping on valid MRR@10, each model's defaults), one run per
# model and seed, and a table of the exposure measures at K = 10 and 20 next to Recall/NDCG.
#   Benchmarks/fairness.sh [DATA] [MODELS] [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/ml-100k}
models=${2:-"random mostpop itemknn ease puresvd bpr relmf lightgcn ngcf sgl simgcl lightgcl"}
seeds=${3:-"2020"}
swift build -c release --product affinity >/dev/null
bin=.build/release/affinity
out=Benchmarks/out/fairness-$(basename "$data")
mkdir -p "$out"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for seed in $seeds; do
  for model in $models; do
    $bin train --data "$data" --model "$model" --seed "$seed" --set fairness=true --quiet --output "$out/$model-$seed.json" \
      > "$out/$model-$seed.txt"
    echo "$model seed $seed done"
  done
done
python3 Benchmarks/fairness_table.py "$out" $models
