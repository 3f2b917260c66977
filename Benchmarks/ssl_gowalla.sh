#!/usr/bin/env bash
# Self-supervision against LightGCN on Gowalla (the LightGCN paper's split, all-item ranking) at a fixed epoch
# budget: each model trains EPOCHS epochs with its paper's defaults (configs/MODEL.yaml when there is one;
# Gowalla has no validation split, so no early stopping) and reports test Recall@20 / NDCG@20 and the fit time.
#   Benchmarks/ssl_gowalla.sh [EPOCHS] [MODELS]        (default 10, "lightgcn simgcl sgl dccf lightgcl")
# CURVE=N also logs test Recall/NDCG every N epochs (`--curve`: it never selects or stops).
# VERBOSE=1 keeps the epoch log (and curve lines) in Benchmarks/out/ssl-gowalla-EPOCHS/MODEL.txt as the run
# goes, for runs of hours; AFFINITY_BIN=PATH runs that binary (e.g. a copy, so rebuilding does not touch it).
# `python3 Benchmarks/ssl_table.py Benchmarks/out/ssl-gowalla-EPOCHS` tabulates the curves, finished or not.
# Runs of hours survive interruptions: each model keeps a checkpoint (`--checkpoints`), so running the script
# again resumes an interrupted model from its last epoch and skips the models that finished (their JSON exists).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-10}; models=${2:-"lightgcn simgcl sgl dccf lightgcl"}
curve=(); [ "${CURVE:-0}" -gt 0 ] && curve=(--curve "$CURVE")
quiet=(--quiet); [ "${VERBOSE:-0}" = 1 ] && quiet=()
bin=${AFFINITY_BIN:-}
if [ -z "$bin" ]; then swift build -c release --product affinity >/dev/null; bin=.build/release/affinity; fi
out=Benchmarks/out/ssl-gowalla-$epochs; mkdir -p "$out"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  epochs: $epochs"
for model in $models; do
  config=(); [ -f "configs/$model.yaml" ] && config=(--config "configs/$model.yaml")
  if [ ! -f "$out/$model.json" ]; then
    "$bin" train --data ../shared/data/gowalla --model "$model" "${config[@]}" --set epochs="$epochs" \
      --set topk=20 "${curve[@]}" "${quiet[@]}" --checkpoints "$out/checkpoints" --output "$out/$model.json" >> "$out/$model.txt" 2>&1
  fi
  python3 - "$out/$model.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r = r[0] if isinstance(r, list) else r
m = r["metrics"]["test"]
t = r["timings"]  # epochs_s: all epochs, also those of earlier processes a checkpoint resumed from
print(f"{r['model']:<10} recall@20 {m['recall@20']:.4f}  ndcg@20 {m['ndcg@20']:.4f}  epochs {t.get('epochs_s', t['fit_s']):.0f} s")
curve = sorted((int(k.split('_')[-1]), v) for k, v in r["metrics"].items() if k.startswith("curve_epoch_"))
for epoch, c in curve: print(f"  epoch {epoch:>3}: recall@20 {c['recall@20']:.4f}  ndcg@20 {c['ndcg@20']:.4f}")
PY
done
