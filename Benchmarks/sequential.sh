#!/usr/bin/env bash
# Sequential recommendation on ml-100k side by side with RecBole 1.2.1: RecBole's sequential protocol (leave-one-out by
# timestamp: last item test, second-last valid; full ranking over all items with the history NOT removed; early stopping
# on valid MRR@10, patience 10), test Recall@10 (= Hit@10 with one target), NDCG@10 and MRR@10 as mean ± std over
# the seeds, and the median seconds per training epoch of each side (2 threads each).
#   Benchmarks/sequential.sh [DATA] [SEEDS] [MODELS]   (defaults: ../shared/data/ml-100k, "2020 2021 2022",
#                                                     "sasrec gru4rec sasrec-bce")
# DATA=ml-latest-small takes the built-in dataset (RecBole is then skipped: it has no atomic files for it).
# MODELS may also name tisasrec, bert4rec, and sasrec-bce-p30 / tisasrec-p30 (the BCE models with early-stopping
# patience 30 instead of 10: their validation curves are noisy and still rising when patience 10 stops them).
# The accuracy table of docs/notes/RESULTS-seq3.md:
#   PEERS=0 Benchmarks/sequential.sh ../shared/data/ml-100k "2020 2021 2022" "sasrec sasrec-bce sasrec-bce-p30 tisasrec-p30 gru4rec"
#   PEERS=0 Benchmarks/sequential.sh ../shared/data/ml-100k 2020 "tisasrec bert4rec"
#   Benchmarks/sequential.sh ml-latest-small 2020 "sasrec sasrec-bce-p30 tisasrec-p30"
# RecBole's SASRec alone (CE, seed 2020; an epoch is ~450 s at load 8 here, so EPOCHS caps it):
#   PEERS_OUT=DIR ../shared/peers/recbole.sh recbole-sasrec-2020 SASRec ml-100k ../shared/data \
#     --set "eval_args={split: {LS: valid_and_test}, order: TO, mode: full}" --set train_neg_sample_args=null \
#     --set loss_type=CE --set seed=2020 --set "topk=[10]" --set "metrics=[Recall, MRR, NDCG, Hit]" --set epochs=6
# Next-item serving (wrk): Benchmarks/sequential_serving.sh
# PEERS=0 skips RecBole (its SASRec epoch is ~100 s on a quiet 2-core machine and it needs tens of epochs).
# AFFINITY_BIN=PATH runs that affinity binary instead of building .build/release/affinity.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/ml-100k}; seeds=${2:-2020 2021 2022}; models=${3:-sasrec gru4rec sasrec-bce}
BIN="${AFFINITY_BIN:-.build/release/affinity}"
[ -n "${AFFINITY_BIN:-}" ] || swift build -c release --product affinity >/dev/null
PEERS_DIR=${PEERS_DIR:-../shared/peers}
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
declare -A settings=([sasrec]="--model sasrec" [sasrec-bce]="--model sasrec --set loss=bce" [gru4rec]="--model gru4rec"
  [tisasrec]="--model tisasrec" [bert4rec]="--model bert4rec" [sasrec-bce-p30]="--model sasrec --set loss=bce --set stopping_step=30"
  [tisasrec-p30]="--model tisasrec --set stopping_step=30")
source_args=(--data "$data")
if [ "$data" = ml-latest-small ]; then source_args=(--dataset ml-latest-small); PEERS=0; fi
declare -A recbole=([sasrec]="SASRec" [sasrec-bce]="SASRec --set loss_type=BCE --set train_neg_sample_args={distribution: uniform, sample_num: 1}" [gru4rec]="GRU4Rec")
for m in $models; do
  for s in $seeds; do
    OMP_NUM_THREADS=2 $BIN train "${source_args[@]}" ${settings[$m]} --set split=loo --set seed="$s" --set topk=10 \
      --set metrics=recall,mrr,ndcg,hit --quiet --output "$out/affinity-$m-$s.json" >/dev/null
    if [ "${PEERS:-1}" = 1 ] && [ -n "${recbole[$m]:-}" ]; then
      ce_args="--set train_neg_sample_args=null --set loss_type=CE"
      [ "$m" = sasrec-bce ] && ce_args=""
      PEERS_OUT="$out/peers" "$PEERS_DIR/recbole.sh" "recbole-$m-$s" ${recbole[$m]} ml-100k "$(dirname "$data")" \
        --set "eval_args={split: {LS: valid_and_test}, order: TO, mode: full}" $ce_args --set seed="$s" \
        --set "topk=[10]" --set "metrics=[Recall, MRR, NDCG, Hit]" >/dev/null || true
    fi
  done
done
python3 - "$out" "$models" "$seeds" <<'PY'
import json, os, statistics, sys
out, models, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def stats(xs):
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}" if len(xs) > 1 else (f"{xs[0]:.4f}" if xs else "—")
print("| model | side | Recall@10 | NDCG@10 | MRR@10 | s/epoch (median) | epochs |")
print("|---|---|---|---|---|---|---|")
for m in models:
    rows = {"Affinity": [], "RecBole 1.2.1": []}
    for s in seeds:
        p = f"{out}/affinity-{m}-{s}.json"
        if os.path.exists(p):
            r = json.load(open(p))[0] if isinstance(json.load(open(p)), list) else json.load(open(p))
            t = r["metrics"]["test"]
            ep = [e["seconds"] for e in r.get("epochs") or []]
            rows["Affinity"].append((t["recall@10"], t["ndcg@10"], t["mrr@10"], statistics.median(ep) if ep else float("nan"), len(ep)))
        q = f"{out}/peers/results/recbole-{m}-{s}.json"
        if os.path.exists(q):
            r = json.load(open(q)); t = r["test_result"]
            rows["RecBole 1.2.1"].append((t["recall@10"], t["ndcg@10"], t["mrr@10"], r["train_epoch_s_median"], r["epochs_run"]))
    for side, v in rows.items():
        if not v: continue
        cols = list(zip(*v))
        print(f"| {m} | {side} | {stats(cols[0])} | {stats(cols[1])} | {stats(cols[2])} | {statistics.median(cols[3]):.2f} | {statistics.median(cols[4]):.0f} |")
PY
