#!/usr/bin/env bash
# Accuracy parity with RecBole 1.2.1 on ml-100k (RecBole's default protocol: per-user random 8:1:1,
# full ranking, all ratings as implicit). Two comparisons:
#  1. each library on its own random splits, seeds 2020,1,2,3,4 → mean ± std of test Recall@20 / NDCG@20;
#  2. both libraries on the *same* split (Affinity's seed-2020 split exported as RecBole benchmark files),
#     which removes the split draw and compares the implementations alone.
# Usage: Benchmarks/recbole_parity.sh [ML100K_DIR] [MODELS]   (MODELS as RecBole names, default "Pop ItemKNN EASE")
# Environment: SEEDS (default "2020 1 2 3 4"); AFF_SET_<Model> / RB_SET_<Model>: extra settings for one side,
# e.g. AFF_SET_LightGCN="--set reg_weight=1e-5 --set require_pow=false" RB_SET_LightGCN="--set n_layers=3".
set -euo pipefail
cd "$(dirname "$0")/.."
ML100K=$(cd "${1:-../shared/data/ml-100k}" && pwd)
MODELS=${2:-"Pop ItemKNN EASE"}
PEERS=$(cd ../shared/peers && pwd)
OUT=$(pwd)/${BENCH_OUT:-Benchmarks/out}/parity; mkdir -p "$OUT"
swift build -c release --product affinity >/dev/null
AFF=.build/release/affinity
SEEDS=${SEEDS:-"2020 1 2 3 4"}
name() { case $1 in Pop) echo mostpop;; ItemKNN) echo itemknn;; EASE) echo ease;; BPR) echo bpr;; *) echo "$1" | tr A-Z a-z;; esac; }
echo "# $(date -u +%FT%TZ)"
for m in $MODELS; do
  for s in $SEEDS; do
    aff_var="AFF_SET_$m"; rb_var="RB_SET_$m"
    $AFF train --data "$ML100K" --model "$(name $m)" --seed "$s" --quiet --output "$OUT/affinity_${m}_$s.json" ${!aff_var:-} >/dev/null
    PEERS_OUT=$OUT "$PEERS/recbole.sh" "${m}_$s" "$m" ml-100k "$ML100K" --set "topk=[10,20]" --set seed="$s" ${!rb_var:-} >/dev/null
  done
done
# Same split: Affinity's seed-2020 split as RecBole benchmark files (dataset renamed: RecBole maps the name
# "ml-100k" to its bundled copy).
SPLIT=$OUT/split; rm -rf "$SPLIT"; $AFF datasets --data "$ML100K" --export-split "$SPLIT" >/dev/null
mkdir -p "$SPLIT/same"; for p in train valid test; do mv "$SPLIT/ml-100k/ml-100k.$p.inter" "$SPLIT/same/same.$p.inter"; done
for m in $MODELS; do
  rb_var="RB_SET_$m"
  PEERS_OUT=$OUT "$PEERS/recbole.sh" "same_$m" "$m" same "$SPLIT" --set "topk=[10,20]" \
    --set "benchmark_filename=[train,valid,test]" ${!rb_var:-} >/dev/null
done
python3 - "$OUT" "$MODELS" "$SEEDS" <<'PY'
import json, sys, statistics as st, ast, re
out, models, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def recbole_test(tag):
    for line in open(f"{out}/logs/{tag}.log"):
        if line.startswith("[test]"): return ast.literal_eval(line[len("[test] "):])
    raise SystemExit(f"no test result in {tag}")
print(f"| model | metric | Affinity ({len(seeds)} seeds) | RecBole ({len(seeds)} seeds) | rel. diff | same split: Affinity | same split: RecBole |")
print("|---|---|---|---|---|---|---|")
for m in models:
    ours = [json.load(open(f"{out}/affinity_{m}_{s}.json"))["metrics"]["test"] for s in seeds]
    theirs = [recbole_test(f"{m}_{s}") for s in seeds]
    same = recbole_test(f"same_{m}")
    for key in ["recall@20", "ndcg@20"]:
        a = [r[key] for r in ours]; b = [r[key] for r in theirs]
        print(f"| {m} | {key} | {st.mean(a):.4f} ± {st.stdev(a):.4f} | {st.mean(b):.4f} ± {st.stdev(b):.4f} | "
              f"{(st.mean(a)/st.mean(b)-1)*100:+.1f}% | {ours[0][key]:.4f} | {same[key]:.4f} |")
PY
