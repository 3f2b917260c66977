#!/usr/bin/env bash
# Next-item serving: `GET /v1/users/{id}/next?k=20` on ml-latest-small (9,742 items) with a saved SASRec model,
# loaded by wrk on loopback (32 connections, 2 wrk threads, same 2-core machine, Benchmarks/serving.sh's method),
# beside the peer route of the same server in the same minutes: `GET /v1/users/{id}/recommendations?k=20`
# (PureSVD, d = 64). Users are drawn at random from the dataset's 610; each request reads the user's events from the
# store (up to 2,698, on average 165), encodes the newest 50 and scores every item.
# Usage: Benchmarks/sequential_serving.sh [SECONDS]
# AFFINITY_BIN=PATH runs that affinity binary instead of building .build/release/affinity.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-20}
OUT=${BENCH_OUT:-Benchmarks/out}/sequential-serving; mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "sequential_serving.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
AFF="${AFFINITY_BIN:-.build/release/affinity}"
[ -n "${AFFINITY_BIN:-}" ] || swift build -c release --product affinity >/dev/null
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -f "$OUT/sasrec.affinity" ]; then
  $AFF train --dataset ml-latest-small --model sasrec --set split=loo --save "$OUT/sasrec.affinity" --quiet | grep -E "hit@10"
  $AFF train --dataset ml-latest-small --model puresvd --save "$OUT/puresvd.affinity" --quiet >/dev/null
fi
cut -d, -f1 data/ml-latest-small/ratings.csv | tail -n +2 | sort -u > "$OUT/users.txt"
PORT=$((20000 + RANDOM % 20000))
rm -f "$OUT"/events.sqlite*
$AFF serve --model "$OUT/puresvd.affinity" --sequential-model "$OUT/sasrec.affinity" --store "$OUT/events.sqlite" \
  --port $PORT --api-key bench --log-level warning &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.05; done
curl -s "http://127.0.0.1:$PORT/v1/users/1/next?k=3"; echo
for route in next recommendations next recommendations; do
  IDS_FILE="$OUT/users.txt" ROUTE=$route wrk -t2 -c32 -d2s -s Benchmarks/serving_users.lua "http://127.0.0.1:$PORT" >/dev/null  # warm-up
  echo "## wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency ($route)"
  IDS_FILE="$OUT/users.txt" ROUTE=$route wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency -s Benchmarks/serving_users.lua \
    "http://127.0.0.1:$PORT" | grep -E "Latency |50%|90%|99%|Requests/sec|Non-2xx|Socket errors"
done
kill -TERM $PID; wait $PID || true
trap - EXIT
