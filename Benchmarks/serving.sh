#!/usr/bin/env bash
# Serving throughput and latency: `affinity serve` with a BPR-MF model over Gowalla's catalogue (40,981 items,
# d = 64), loaded by wrk on loopback (32 connections, 2 wrk threads, same 2-core machine), against the same
# route's work in a plain in-process loop (`affinity-bench serve-loop`) measured in the same run.
# Usage: Benchmarks/serving.sh [GOWALLA_DIR] [SECONDS]
# AFFINITY_BENCH_BIN=PATH runs that affinity-bench binary instead of building .build/release/affinity-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
GOWALLA=${1:-../shared/data/gowalla}
SECONDS_PER_RUN=${2:-20}
OUT=${BENCH_OUT:-Benchmarks/out}/serving; mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "serving.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
swift build -c release --product affinity >/dev/null
AFF=.build/release/affinity
BENCH="${AFFINITY_BENCH_BIN:-.build/release/affinity-bench}"
[ -n "${AFFINITY_BENCH_BIN:-}" ] || swift build -c release --product affinity-bench >/dev/null
echo "# $(date -u +%FT%TZ) $(nproc) cores; wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}')"
if [ ! -f "$OUT/gowalla.affinity" ]; then
  $AFF train --data "$GOWALLA" --model bpr --set epochs=30 --set learning_rate=0.005 --set topk=20 \
    --save "$OUT/gowalla.affinity" --quiet | grep -E "recall@20|ndcg@20"
fi
cut -d' ' -f1 "$GOWALLA/train.txt" > "$OUT/users.txt"
awk '{for (i = 2; i <= NF; i++) print $i}' "$GOWALLA/train.txt" | sort -u > "$OUT/items.txt"

PORT=$((20000 + RANDOM % 20000))
rm -f "$OUT"/events.sqlite* "$OUT"/loop.sqlite*
t0=$(date +%s.%N)
$AFF serve --model "$OUT/gowalla.affinity" --store "$OUT/events.sqlite" --port $PORT --api-key bench --log-level warning ${SERVE_ARGS:-} &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.05; done
echo "startup (load model, seed the store with $(wc -l < "$OUT/users.txt") users' training events): $(echo "$(date +%s.%N) - $t0" | bc) s"
curl -s "http://127.0.0.1:$PORT/v1/users/0/recommendations?k=3"; echo
for route in recommendations similar; do
  ids="$OUT/users.txt"; [ $route = similar ] && ids="$OUT/items.txt"
  IDS_FILE=$ids ROUTE=$route wrk -t2 -c32 -d2s -s Benchmarks/serving_users.lua "http://127.0.0.1:$PORT" >/dev/null  # warm-up
  echo "## wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency ($route)"
  IDS_FILE=$ids ROUTE=$route wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency -s Benchmarks/serving_users.lua "http://127.0.0.1:$PORT" \
    | tee "$OUT/wrk_$route.txt" | grep -E "Latency |50%|90%|99%|Requests/sec|Non-2xx|Socket errors"
done
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E 'requests_total\{method="GET",route="/v1/(users|items)|mean_batch ' || true
kill -TERM $PID; wait $PID || true
trap - EXIT
echo "## in-process loop, same work (ranking, titles, JSON body), no HTTP"
"$BENCH" serve-loop --model "$OUT/gowalla.affinity" --store "$OUT/loop.sqlite" --requests 20000
