#!/usr/bin/env bash
# Graph models on Gowalla (LightGCN split), side by side with RecBole 1.2.1 in one run: seconds per training
# epoch (batch 2048, d = 64, 3 layers) and peak resident memory. Needs ../shared (data, peers venv).
# Usage: Benchmarks/graph.sh [GOWALLA_DIR] [MODELS]   (default models: "LightGCN NGCF")
set -euo pipefail
cd "$(dirname "$0")/.."
GOWALLA=$(cd "${1:-../shared/data/gowalla}" && pwd)
MODELS=${2:-"LightGCN NGCF"}
PEERS=$(cd ../shared/peers && pwd)
OUT=$(pwd)/${BENCH_OUT:-Benchmarks/out}/graph_speed; mkdir -p "$OUT"
swift build -c release --product affinity >/dev/null
AFF=.build/release/affinity
DATA_CACHE=$HOME/.cache/affinity-peers/data
[ -d "$DATA_CACHE/gowalla" ] || python3 "$PEERS/convert_lightgcn_split.py" "$GOWALLA" "$DATA_CACHE" gowalla
echo "# $(date -u +%FT%TZ) $(nproc) cores; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
for m in $MODELS; do
  lower=$(echo "$m" | tr A-Z a-z)
  /usr/bin/time -v -o "$OUT/affinity_$m.time" $AFF train --data "$GOWALLA" --model "$lower" --set epochs=2 \
    --set train_batch_size=2048 --set embedding_size=64 --set topk=20 --output "$OUT/affinity_$m.json" 2> "$OUT/affinity_$m.log" >/dev/null
  extra=""; [ "$m" = LightGCN ] && extra="--set n_layers=3"
  PEERS_OUT=$OUT "$PEERS/recbole.sh" "gowalla_$m" "$m" gowalla "$DATA_CACHE" --no-test \
    --set "benchmark_filename=[train,test,test]" --set embedding_size=64 --set train_batch_size=2048 \
    --set epochs=1 --set eval_step=1 --set eval_batch_size=10000000 --set "topk=[20]" --set valid_metric=recall@20 $extra >/dev/null || true
done
python3 - "$OUT" "$MODELS" <<'PY'
import json, re, sys, statistics
out, models = sys.argv[1], sys.argv[2].split()
def rss(path):
    for line in open(path):
        if "Maximum resident" in line: return int(line.split()[-1]) / 1024 / 1024
print("| model | Affinity s/epoch (median; epochs) | RecBole s/epoch | ratio | Affinity peak RSS | RecBole peak RSS |")
print("|---|---|---|---|---|---|")
for m in models:
    epochs = [float(x) for x in re.findall(r"epoch \d+: loss [0-9.]+, ([0-9.]+) s", open(f"{out}/affinity_{m}.log").read())]
    ours = statistics.median(epochs)
    rb = json.load(open(f"{out}/results/gowalla_{m}.json"))["train_epoch_s_median"]
    print(f"| {m} | {ours:.1f} ({', '.join(f'{e:.1f}' for e in epochs)}) | {rb:.1f} | {ours / rb:.3f} | {rss(f'{out}/affinity_{m}.time'):.2f} GB | {rss(f'{out}/logs/gowalla_{m}.time'):.2f} GB |")
PY
