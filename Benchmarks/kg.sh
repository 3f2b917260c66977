#!/usr/bin/env bash
# Knowledge-graph recommenders on ml-100k (RecBole protocol: per-user random 8:1:1 split, full ranking, early
# stopping on valid MRR@10, each model's defaults): CKE and KGAT with ml-100k.kg/.link, the same models with
# every fact removed (`knowledge_graph=false`, the ablation), and BPR-MF, LightGCN and MostPop on the same splits.
# One run per model and seed; the table gives test Recall/NDCG@10/20, seconds per epoch and peak memory.
#   Benchmarks/kg.sh [DATA] [MODELS] [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/ml-100k}
models=${2:-"mostpop bpr lightgcn cke cke-nokg kgat kgat-nokg"}
seeds=${3:-"2020 2021 2022"}
swift build -c release --product affinity >/dev/null
bin=.build/release/affinity
out=Benchmarks/out/kg-$(basename "$data")
mkdir -p "$out"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for seed in $seeds; do
  for model in $models; do
    case $model in
      *-nokg) name=${model%-nokg}; settings=(--set knowledge_graph=false) ;;
      *) name=$model; settings=() ;;
    esac
    /usr/bin/time -v -o "$out/$model-$seed.time" $bin train --data "$data" --model "$name" --seed "$seed" "${settings[@]}" \
      --quiet --output "$out/$model-$seed.json" > "$out/$model-$seed.txt"
    echo "$model seed $seed done"
  done
done
python3 Benchmarks/kg_table.py "$out" $models
