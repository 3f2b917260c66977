#!/usr/bin/env bash
# Click-through models on ml-100k with RecBole's context protocol (user age, gender, occupation; item release_year,
# class; user_id and item_id; label rating >= 4; random 8:1:1 over labelled rows; embedding 10, batch 2048,
# 20 epochs, early stopping on valid AUC), Affinity and RecBole 1.2.1 side by side, for each seed.
# Usage: Benchmarks/ctr.sh [DATA_DIR (default ../shared/data)] [SEEDS (default "2020 2021 2022")]
# Needs the peers' venv (../shared/peers/setup_venv.sh) for the RecBole side; skipped without it.
set -euo pipefail
DATA=${1:-../shared/data}
SEEDS=${2:-"2020 2021 2022"}
PEERS=${PEERS:-../shared/peers}
OUT=${OUT:-/tmp/affinity-ctr}
mkdir -p "$OUT"
swift build -c release --product affinity >/dev/null
for seed in $SEEDS; do
  for model in fm deepfm autoint optinter; do
    .build/release/affinity train --task ctr --model "$model" --data "$DATA/ml-100k" --seed "$seed" \
      --set epochs=20 --set "threshold={rating: 4}" --quiet --output "$OUT/affinity_${model}_$seed.json"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); e=r['epochs']; print(sys.argv[2], sys.argv[3], 'AUC %.4f LogLoss %.4f %.3f s/epoch' % (r['metrics']['test']['auc'], r['metrics']['test']['logloss'], sum(x['seconds'] for x in e)/len(e)), r['config'].get('architecture', ''))" \
      "$OUT/affinity_${model}_$seed.json" "$model" "$seed"
  done
  if [ -x "${PEERS_VENV:-$HOME/.cache/affinity-peers/venv}/bin/python" ]; then
    for model in FM DeepFM AutoInt; do
      PEERS_OUT="$OUT" "$PEERS/recbole.sh" "ml100k_${model}_$seed" "$model" ml-100k "$DATA" \
        --set "load_col={inter: [user_id, item_id, rating, timestamp], user: [user_id, age, gender, occupation], item: [item_id, release_year, class]}" \
        --set "threshold={rating: 4}" --set "eval_args={split: {RS: [0.8,0.1,0.1]}, order: RO, group_by: None, mode: labeled}" \
        --set "metrics=[AUC, LogLoss]" --set valid_metric=AUC --set epochs=20 --set train_batch_size=2048 --set embedding_size=10 \
        --set seed="$seed" || true
    done
  fi
done
