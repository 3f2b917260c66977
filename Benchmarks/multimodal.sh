#!/usr/bin/env bash
# Multimodal table: Recall/NDCG@10/20 (mean ± std over seeds) per model, RecBole protocol (ratio 8:1:1, full
# ranking, early stopping on valid MRR@10), plus each fit's wall time and peak RSS.
#   Benchmarks/multimodal.sh DATA "MODALITY FLAGS" [MODELS] [SEEDS] [EXTRA FLAGS]
# e.g. Benchmarks/multimodal.sh ../shared/data/ml-100k ""        (bundled text_feat.npy + genre_feat.npy)
#      Benchmarks/multimodal.sh ml-latest-small "--modality genres=builtin:genres --modality text=builtin:text"
#      Benchmarks/multimodal.sh ../shared/data/ml-100k "" "mostpop random vbpr" "2020" "--split cold:0.8,0.1,0.1"
set -euo pipefail
cd "$(dirname "$0")/.."
data=$1; modalities=${2:-}; models=${3:-"bpr lightgcn vbpr lattice freedom bm3 sige"}; seeds=${4:-"2020 2021 2022"}; extra=${5:-}
swift build -c release --product affinity >/dev/null
bin=.build/release/affinity
out=Benchmarks/out/multimodal-$(basename "$data")$(echo "$extra" | tr -c 'a-z0-9' '_' | sed 's/_*$//')
mkdir -p "$out"
if [[ -d $data ]]; then source=(--data "$data"); else source=(--dataset "$data"); fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  blas: ${OPENBLAS_CORETYPE:-auto}"
for seed in $seeds; do
  for model in $models; do
    /usr/bin/time -f "%e %M" -o "$out/$model-$seed.time" \
      $bin train "${source[@]}" $modalities $extra --model "$model" --seed "$seed" --quiet --output "$out/$model-$seed.json" \
      > "$out/$model-$seed.txt"
    echo "$model seed $seed: $(cat "$out/$model-$seed.time") (s, KB)"
  done
done
python3 Benchmarks/multimodal_table.py "$out" $models
