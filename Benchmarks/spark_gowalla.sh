#!/usr/bin/env bash
# Batch scoring of every Gowalla user: `affinity score` alone against examples/spark/score_users.py piping the same
# ids through it in Spark's local[N] mode; checks that the two outputs are identical (as sets of lines, per user) and
# prints both wall times.
#   Benchmarks/spark_gowalla.sh [DATA] [K] [MASTER]   (defaults: ../shared/data/gowalla, 20, local[2])
# Needs Java and pyspark (`./scripts/setup.sh --spark`); SPARK_PYTHON (default ~/.cache/affinity-spark/venv/bin/python).
# The model: BPR-MF, 20 epochs (`affinity train --save`); MODEL=PATH scores an existing model file instead.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/gowalla}; k=${2:-20}; master=${3:-local[2]}
BIN="${AFFINITY_BIN:-.build/release/affinity}"
[ -n "${AFFINITY_BIN:-}" ] || swift build -c release --product affinity >/dev/null
PY=${SPARK_PYTHON:-$HOME/.cache/affinity-spark/venv/bin/python}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
model=${MODEL:-$out/model.affinity}
if [ -z "${MODEL:-}" ]; then
  $BIN train --data "$data" --model bpr --set epochs=20 --set eval_step=100 --quiet --save "$model" >/dev/null
fi
cut -d' ' -f1 "$data/train.txt" > "$out/users.txt"
echo "users: $(wc -l < "$out/users.txt")"
seconds() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
single=$(seconds sh -c "'$BIN' score --model '$model' -k $k < '$out/users.txt' > '$out/single.jsonl'")
# The job's own output goes to a log inside the timed command: only the time reaches $(…).
spark=$(seconds sh -c "'$PY' examples/spark/score_users.py --users '$out/users.txt' --model '$model' --output '$out/spark.jsonl' \
  --master '$master' --affinity '$BIN' -k $k >'$out/spark.log' 2>&1") || { tail -20 "$out/spark.log"; exit 1; }
if cmp -s <(sort "$out/single.jsonl") <(sort "$out/spark.jsonl"); then same=identical; else same=DIFFERENT; fi
printf '| affinity score alone | Spark %s, rdd.pipe | outputs |\n|---|---|---|\n| %.1f s | %.1f s | %s (%s lines) |\n' \
  "$master" "$single" "$spark" "$same" "$(wc -l < "$out/spark.jsonl")"
[ "$same" = identical ]
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
