#!/usr/bin/env bash
# Click-through models on ml-100k with RecBole's context protocol (user age, gender, occupation; item release_year,
# class; user_id and item_id; label rating >= 4; random 8:1:1 over labelled rows; embedding 10, batch 2048,
# 20 epochs, early stopping on valid AUC), Affinity and RecBole 1.2.1 side by side for each seed: per seed and
# model the two run back to back in alternating order (this shared machine's speed drifts), 2 threads each.
# Prints per run test AUC / LogLoss and the median training seconds per epoch, then the table (mean ± std over the
# seeds) with the per-model speed ratio Affinity / RecBole (median over the seeds of each seed's ratio).
# OptInter runs on the Affinity side only (RecBole has no OptInter).
#   Benchmarks/ctr.sh [DATA_DIR (default ../shared/data)] [SEEDS (default "2020 2021 2022")]
# PEERS (default ../shared/peers), PEERS_VENV (default $HOME/.cache/affinity-peers/venv, made by
# ../shared/peers/setup_venv.sh); MODELS (default "fm deepfm autoint optinter"); OUT (default a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$(cd "${1:-../shared/data}" && pwd)
SEEDS=${2:-"2020 2021 2022"}
PEERS=$(cd "${PEERS:-../shared/peers}" && pwd)
VENV=${PEERS_VENV:-$HOME/.cache/affinity-peers/venv}
MODELS=${MODELS:-"fm deepfm autoint optinter"}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
swift build -c release --product affinity >/dev/null 2>&1 || swift build -c release --product affinity
cp .build/release/affinity "$OUT/affinity"  # the binary measured, unchanged by builds while this runs
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)  records: $OUT"
peer_name() { case $1 in fm) echo FM ;; deepfm) echo DeepFM ;; autoint) echo AutoInt ;; *) echo "" ;; esac; }
affinity_run() {  # model seed
  AFFINITY_THREADS=2 "$OUT/affinity" train --task ctr --model "$1" --data "$DATA/ml-100k" --seed "$2" \
    --set epochs=20 --set "threshold={rating: 4}" --quiet --output "$OUT/affinity_$1_$2.json" >/dev/null
  python3 Benchmarks/ctr_table.py --run "$OUT/affinity_$1_$2.json"
}
recbole_run() {  # model seed
  PEERS_OUT="$OUT" "$PEERS/recbole.sh" "recbole_$1_$2" "$(peer_name "$1")" ml-100k "$DATA" \
    --set "load_col={inter: [user_id, item_id, rating, timestamp], user: [user_id, age, gender, occupation], item: [item_id, release_year, class]}" \
    --set "threshold={rating: 4}" --set "eval_args={split: {RS: [0.8,0.1,0.1]}, order: RO, group_by: None, mode: labeled}" \
    --set "metrics=[AUC, LogLoss]" --set valid_metric=AUC --set epochs=20 --set train_batch_size=2048 --set embedding_size=10 \
    --set seed="$2" >/dev/null || echo "recbole $1 seed $2 failed (see $OUT/logs)"
  [ -f "$OUT/results/recbole_$1_$2.json" ] && python3 Benchmarks/ctr_table.py --run "$OUT/results/recbole_$1_$2.json"
}
turn=0
for seed in $SEEDS; do
  for model in $MODELS; do
    if [ -z "$(peer_name "$model")" ] || [ ! -x "$VENV/bin/python" ]; then
      affinity_run "$model" "$seed"
    elif [ $((turn % 2)) -eq 0 ]; then
      affinity_run "$model" "$seed"; recbole_run "$model" "$seed"
    else
      recbole_run "$model" "$seed"; affinity_run "$model" "$seed"
    fi
    turn=$((turn + 1))
  done
done
python3 Benchmarks/ctr_table.py --table "$OUT"
