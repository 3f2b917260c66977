#!/usr/bin/env bash
# Generate-then-rank on ml-100k's general protocol (per-user random 8:1:1, full ranking, items seen in training or
# validation excluded): BPR-MF alone against BPR-MF's top 100 re-ranked by DeepFM and AutoInt, both trained on the
# training part only (`affinity-bench rerank`). Two labellings of the click-through models: `rating` (the rated
# rows, label rating >= 4: the click-through protocol's "liked among rated") and `interaction` (every training
# interaction positive plus 4 sampled non-interacted items per interaction as negatives: the ranking protocol's
# target). Prints one JSON line per ranker, labelling and seed, then a table of test Recall/NDCG@20.
#   Benchmarks/rerank.sh [DATA_DIR (default ../shared/data)] [SEEDS (default "2020 2021 2022")]
# LABELS (default "rating interaction"); MODELS (default "deepfm,autoint"); CANDIDATES (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$(cd "${1:-../shared/data}" && pwd)
SEEDS=${2:-"2020 2021 2022"}
LABELS=${LABELS:-"rating interaction"}
MODELS=${MODELS:-deepfm,autoint}
CANDIDATES=${CANDIDATES:-100}
swift build -c release --product affinity-bench >/dev/null 2>&1 || swift build -c release --product affinity-bench
OUT=$(mktemp)
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
for seed in $SEEDS; do
  for labels in $LABELS; do
    .build/release/affinity-bench rerank --data "$DATA/ml-100k" --seed "$seed" --labels "$labels" --models "$MODELS" \
      --candidates "$CANDIDATES" --quiet | tee -a "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import collections, json, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    name = r["ranker"] if r["ranker"] == "bpr" else f"{r['ranker']} ({r['labels']} labels)"
    rows[name].append((r["recall@20"], r["ndcg@20"], r.get("ctr_valid_auc")))
def stat(xs):
    return f"{statistics.mean(xs):.4f}" + (f" ± {statistics.stdev(xs):.4f}" if len(xs) > 1 else "")
print("| ranker | seeds | test Recall@20 | test NDCG@20 | click-through valid AUC |")
print("|---|---|---|---|---|")
for name, v in rows.items():
    if name == "bpr":  # printed once per labelling run; a seed's BPR-MF is the same model each time
        v = list(dict.fromkeys(v))
    auc = stat([x[2] for x in v]) if v[0][2] is not None else "—"
    print(f"| {name} | {len(v)} | {stat([x[0] for x in v])} | {stat([x[1] for x in v])} | {auc} |")
PY
rm -f "$OUT"
