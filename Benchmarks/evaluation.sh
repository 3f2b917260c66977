#!/usr/bin/env bash
# Full-ranking evaluation of all Gowalla test users (29,858 × 40,981, 64-d embeddings), Affinity vs RecBole,
# side by side in one run; plus loading speed. Needs ../shared (data and peers) and the peers venv
# (../shared/peers/setup_venv.sh). Usage: Benchmarks/evaluation.sh [GOWALLA_DIR]
# AFFINITY_BENCH_BIN=PATH runs that affinity-bench binary instead of building .build/release/affinity-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
GOWALLA=${1:-../shared/data/gowalla}
PEERS=$(cd ../shared/peers && pwd)
OUT=${BENCH_OUT:-Benchmarks/out}; mkdir -p "$OUT"
BENCH="${AFFINITY_BENCH_BIN:-.build/release/affinity-bench}"
[ -n "${AFFINITY_BENCH_BIN:-}" ] || swift build -c release --product affinity-bench >/dev/null
echo "# $(date -u +%FT%TZ) $(nproc) cores; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"

echo "## loading (train.txt + test.txt → id maps + CSR)"
"$BENCH" load --data "$GOWALLA" | tee "$OUT/load.json"

echo "## Affinity evaluation (BLAS core as set in this environment)"
"$BENCH" evaluate --data "$GOWALLA" --repeats 5 | tee "$OUT/eval_affinity.json"

echo "## RecBole evaluation (BPR model, one training epoch, then full-ranking evaluation of the test file)"
DATA_CACHE=$HOME/.cache/affinity-peers/data
[ -d "$DATA_CACHE/gowalla" ] || python3 "$PEERS/convert_lightgcn_split.py" "$GOWALLA" "$DATA_CACHE" gowalla
PEERS_OUT=$(pwd)/$OUT "$PEERS/recbole.sh" bench_eval_BPR BPR gowalla "$DATA_CACHE" --no-test \
  --set "benchmark_filename=[train,test,test]" --set embedding_size=64 --set train_batch_size=2048 \
  --set epochs=1 --set eval_step=1 --set eval_batch_size=10000000 --set "topk=[20]" --set valid_metric=recall@20 | tee "$OUT/eval_recbole.txt"

python3 - "$OUT" <<'PY'
import json, sys, re
out = sys.argv[1]
ours = json.load(open(f"{out}/eval_affinity.json"))
rb = json.load(open(f"{out}/results/bench_eval_BPR.json"))
rb_s = rb.get("valid_eval_s_median")
print(f"affinity {ours['median_s']:.3f} s (core {ours['blas_core']}), recbole {rb_s:.3f} s, ratio {ours['median_s']/rb_s:.3f}")
PY
