#!/usr/bin/env bash
# Item-fairness and popularity-bias report: every model of the ml-100k table with `fairness=true` (RecBole protocol:
# per-user random 8:1:1 split, full ranking, early stopping on valid MRR@10; each model's defaults, except the
# settings the ml-100k accuracy table uses for LightGCN, SimGCL and LightGCL, and RecBole's patience of 10 for SGL,
# as measured), one run per model and seed, and a
# table of the exposure measures at K = 10 and 20 next to Recall/NDCG.
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
    case $model in
      lightgcn) settings=(--set learning_rate=0.001 --set reg_weight=1e-5 --set require_pow=false --set stopping_step=30) ;;
      sgl) settings=(--set stopping_step=10) ;;
      simgcl) settings=(--set cl_tau=0.5 --set cl_weight=0.01) ;;
      lightgcl) settings=(--config configs/lightgcl-movielens.yaml) ;;
      *) settings=() ;;
    esac
    $bin train --data "$data" --model "$model" --seed "$seed" "${settings[@]}" --set fairness=true --quiet \
      --output "$out/$model-$seed.json" > "$out/$model-$seed.txt"
    echo "$model seed $seed done"
  done
done
python3 Benchmarks/fairness_table.py "$out" $models
