#!/usr/bin/env bash
# Knowledge-graph recommenders on ml-100k (RecBole protocol: per-user random 8:1:1 split, full ranking, early
# stopping on valid MRR@10, each model's defaults): CKE, KGAT, KGIN and DiffKG with ml-100k.kg/.link, the same
# models with every fact removed (`knowledge_graph=false`, the ablation; `MODEL-nodiffusion` runs DiffKG with
# `diffusion=false`), and BPR-MF, LightGCN and MostPop on the same splits.
# One run per model and seed; the table gives test Recall/NDCG@10/20, seconds per epoch and peak memory.
# EXTRA is passed to every run and names the output folder, e.g. "--split cold:0.8,0.1,0.1" for cold-start items
# (only the held-out items are ranked, through their facts).
#   [SCRATCH=DIR] Benchmarks/kg.sh [DATA] [MODELS] [SEEDS] [EXTRA]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/ml-100k}
models=${2:-"mostpop bpr lightgcn cke cke-nokg kgat kgat-nokg kgin kgin-nokg"}
seeds=${3:-"2020 2021 2022"}
read -r -a extra <<< "${4:-}"
# SCRATCH: another SwiftPM build folder for the release build (so a debug build can run beside it).
scratch=${SCRATCH:-.build}
swift build -c release --product affinity --scratch-path "$scratch" >/dev/null
bin=$scratch/release/affinity
out=Benchmarks/out/kg-$(basename "$data")$(printf '%s' "${4:-}" | tr -c 'A-Za-z0-9.,' '-' | sed 's/^-*/-/; s/^-$//')
mkdir -p "$out"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for seed in $seeds; do
  for model in $models; do
    case $model in
      *-nokg) name=${model%-nokg}; settings=(--set knowledge_graph=false) ;;
      *-nodiffusion) name=${model%-nodiffusion}; settings=(--set diffusion=false) ;;
      *) name=$model; settings=() ;;
    esac
    /usr/bin/time -v -o "$out/$model-$seed.time" $bin train --data "$data" --model "$name" --seed "$seed" "${settings[@]}" "${extra[@]}" \
      --quiet --output "$out/$model-$seed.json" > "$out/$model-$seed.txt"
    echo "$model seed $seed done"
  done
done
python3 Benchmarks/kg_table.py "$out" $models
