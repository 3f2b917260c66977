#!/usr/bin/env bash
# LightGCN reproduction on Gowalla (the LightGCN paper's split, all-item ranking): 3 layers, d = 64,
# decay 1e-4, batch 2048, Adam with a cosine learning-rate schedule from LR down to 0 over EPOCHS epochs.
# Gowalla has no validation split, so the model is the one after the last epoch; the learning curve
# (test Recall@20 / NDCG@20 every 10 epochs, `--curve`) is printed for reference only.
#   Benchmarks/gowalla_lightgcn.sh [EPOCHS] [LR]        (default 100, 0.01)
# Budgets longer than a sitting survive interruptions: the run keeps a checkpoint (`--checkpoints`), so running
# the same command again resumes after the last finished epoch (the schedule's budget is fixed, so it must be
# the same EPOCHS and LR) and ends as the uninterrupted run would. The epoch log (with the curve lines) is
# appended to log.txt as the run goes; AFFINITY_BIN=PATH runs that binary (e.g. a copy, so rebuilding does not
# touch it).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-100}; lr=${2:-0.01}
bin=${AFFINITY_BIN:-}
if [ -z "$bin" ]; then swift build -c release --product affinity >/dev/null; bin=.build/release/affinity; fi
out=Benchmarks/out/gowalla-lightgcn-$epochs-$lr; mkdir -p "$out"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)  OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
/usr/bin/time -v "$bin" train --data ../shared/data/gowalla --model lightgcn \
  --set n_layers=3 --set embedding_size=64 --set reg_weight=1e-4 --set train_batch_size=2048 \
  --set learning_rate="$lr" --set lr_schedule=cosine --set sampling=users --set epochs="$epochs" --set topk=20 \
  --curve 10 --checkpoints "$out/checkpoints" --output "$out/run.json" > "$out/table.txt" 2>> "$out/log.txt"
grep -E "Maximum resident|Elapsed" "$out/log.txt" | tail -2   # this process only; epochs_s below sums them all
python3 - "$out/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r = r[0] if isinstance(r, list) else r
curve = sorted((int(k.split("_")[-1]), v) for k, v in r["metrics"].items() if k.startswith("curve_epoch_"))
for epoch, m in curve:
    print(f"epoch {epoch:>4}  recall@20 {m['recall@20']:.4f}  ndcg@20 {m['ndcg@20']:.4f}")
m = r["metrics"]["test"]
t = r["timings"]
print(f"final: recall@20 {m['recall@20']:.4f}  ndcg@20 {m['ndcg@20']:.4f}  epochs {t.get('epochs_s', t['fit_s']):.0f} s"
      f"  blas {r['versions']['blas']}")
PY
