#!/usr/bin/env bash
# Rel-MF against MF baselines on a simulated missing-not-at-random split of ml-100k (Yahoo! R3, whose test set is
# missing-at-random, cannot be downloaded here), with the plain and the propensity-weighted (SNIPS) evaluation.
#   Benchmarks/relmf_mnar.sh [DATA] [SEEDS] [MODELS]
# Each seed draws its own split on both protocols:
#   mnar    Benchmarks/mnar_split.py: test drawn ∝ 1/item popularity (closer to MAR), random validation, rest training;
#   random  RecBole's per-user random 8:1:1 split (test as MNAR as the training data).
# Every model early-stops on the SNIPS DCG@10 of its validation part (Saito et al. validate with SNIPS DCG), so all
# are selected the same way. MODELS are labels: relmf, mf (relmf with propensity_clip=1: no weighting, the same
# pointwise loss), bpr, and ials when the registry has it.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/ml-100k}; seeds=${2:-"2020 2021 2022"}
swift build -c release --product affinity >/dev/null
bin=.build/release/affinity
default_models="relmf mf bpr"
if $bin models | grep -q '^ *ials\b'; then default_models="$default_models ials"; fi
models=${3:-$default_models}
out=Benchmarks/out/relmf-mnar
mkdir -p "$out"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
common=(--set unbiased_eval=true --set valid_metric=dcg_snips@10 --quiet)
for seed in $seeds; do
  python3 Benchmarks/mnar_split.py "$data" "$out/split-$seed" "$seed"
  mnar_data="$out/split-$seed/$(basename "$data")-mnar"
  for protocol in mnar random; do
    if [[ $protocol == mnar ]]; then source=(--data "$mnar_data"); else source=(--data "$data"); fi
    for label in $models; do
      case $label in
        mf) model=(--model relmf --set propensity_clip=1) ;;
        *) model=(--model "$label") ;;
      esac
      $bin train "${source[@]}" "${model[@]}" --seed "$seed" "${common[@]}" --output "$out/$protocol-$label-$seed.json" \
        > "$out/$protocol-$label-$seed.txt"
      echo "$protocol $label seed $seed: fit $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r=r[0] if isinstance(r,list) else r; print(round(r['timings']['fit_s']))" "$out/$protocol-$label-$seed.json") s"
    done
  done
done
python3 Benchmarks/relmf_mnar_table.py "$out" $models
