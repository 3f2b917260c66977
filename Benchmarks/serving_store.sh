#!/usr/bin/env bash
# Recommendation reads from a PostgreSQL-backed server against a SQLite-backed one, measured in the same run with
# the method of serving.sh: BPR-MF over Gowalla's catalogue (40,981 items, d = 64), wrk on loopback (32
# connections, 2 threads, the same 2-core machine), random users. PostgreSQL is a throwaway server started here
# (initdb into a temporary folder, loopback port; as root it runs as the `postgres` user); the PostgreSQL-backed
# server polls it for other replicas' changes every 0.25 s, as `serve` does by default. Each store is measured
# ROUNDS times, alternating, so that drift on a shared machine hits both.
# Then replica count: one PostgreSQL-backed replica under one wrk (-t2 -c32) against two replicas on two ports
# under two wrk processes at once (-t1 -c16 each, the same 32 connections in all), alternating ROUNDS times. wrk,
# the replicas and PostgreSQL all share the machine's cores (`taskset` pins nothing apart): on 2 cores the load
# generator takes about one of them, so this shows the ceiling of one machine, not what a second machine adds.
# Usage: Benchmarks/serving_store.sh [GOWALLA_DIR] [SECONDS] [ROUNDS]
# AFFINITY_BIN=PATH uses that executable instead of building (a release build of the same source).
set -euo pipefail
cd "$(dirname "$0")/.."
GOWALLA=${1:-../shared/data/gowalla}
SECONDS_PER_RUN=${2:-15}
ROUNDS=${3:-2}
OUT=${BENCH_OUT:-Benchmarks/out}/serving_store; mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "serving_store.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
PGBIN=${AFFINITY_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PGBIN/initdb" ] || { echo "serving_store.sh needs PostgreSQL's server binaries (apt-get install postgresql)" >&2; exit 1; }
AFF=${AFFINITY_BIN:-.build/release/affinity}
[ -n "${AFFINITY_BIN:-}" ] || swift build -c release --product affinity >/dev/null
echo "# $(date -u +%FT%TZ) $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}'); $("$PGBIN/postgres" --version)"
if [ ! -f "$OUT/gowalla.affinity" ]; then
  $AFF train --data "$GOWALLA" --model bpr --set epochs=${EPOCHS:-30} --set learning_rate=0.005 --set topk=20 \
    --save "$OUT/gowalla.affinity" --quiet | grep -E "recall@20|ndcg@20"
fi
cut -d' ' -f1 "$GOWALLA/train.txt" > "$OUT/users.txt"

# The throwaway PostgreSQL server.
PGDIR=$(mktemp -d /tmp/affinity-bench-pg.XXXXXX)
AS=(); if [ "$(id -u)" = "0" ]; then chown postgres "$PGDIR"; AS=(runuser -u postgres --); fi
PGPORT=$((20000 + RANDOM % 20000))
"${AS[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c shared_buffers=256MB" start >/dev/null
PID=""; PIDS=()
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT
"$PGBIN/createdb" -h 127.0.0.1 -p $PGPORT -U postgres affinity

measure() {  # $1: label, $2: --store value
  local port=$((20000 + RANDOM % 20000)) t0
  t0=$(date +%s.%N)
  $AFF serve --model "$OUT/gowalla.affinity" --store "$2" --port $port --api-key bench --log-level warning &
  PID=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.05; done
  echo "startup ($1): $(echo "$(date +%s.%N) - $t0" | bc) s"
  IDS_FILE="$OUT/users.txt" ROUTE=recommendations wrk -t2 -c32 -d2s -s Benchmarks/serving_users.lua "http://127.0.0.1:$port" >/dev/null
  echo "## $1: wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency (recommendations)"
  IDS_FILE="$OUT/users.txt" ROUTE=recommendations wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency -s Benchmarks/serving_users.lua \
    "http://127.0.0.1:$port" | tee "$OUT/wrk_$1_$3.txt" | grep -E "Latency |50%|99%|Requests/sec|Non-2xx|Socket errors"
  kill -TERM $PID; wait $PID || true
  PID=""
}
rm -f "$OUT"/events.sqlite*
for round in $(seq 1 "$ROUNDS"); do
  measure sqlite "sqlite:$OUT/events.sqlite" "$round"
  measure postgres "postgres://postgres@127.0.0.1:$PGPORT/affinity" "$round"
done
echo "events stored in PostgreSQL: $(psql -h 127.0.0.1 -p $PGPORT -U postgres -d affinity -Atc 'SELECT COUNT(*) FROM events')"

# Replica count on one PostgreSQL database (already seeded above).
PGURL="postgres://postgres@127.0.0.1:$PGPORT/affinity"
start_replica() {  # sets PORT
  PORT=$((20000 + RANDOM % 20000))
  $AFF serve --model "$OUT/gowalla.affinity" --store "$PGURL" --port $PORT --api-key bench --log-level warning &
  PIDS+=($!)
  until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.05; done
}
summary() {  # $1: wrk output file → "req/s p99"
  awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} END {print r, p}' "$1"
}
start_replica; PORT_A=$PORT; start_replica; PORT_B=$PORT
IDS_FILE="$OUT/users.txt" ROUTE=recommendations wrk -t2 -c32 -d2s -s Benchmarks/serving_users.lua "http://127.0.0.1:$PORT_B" >/dev/null
echo "## replica count: recommendations, ${SECONDS_PER_RUN}s per run, 32 connections in all"
echo "| replicas | round | req/s (sum) | p99 per replica |"
echo "|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  IDS_FILE="$OUT/users.txt" ROUTE=recommendations wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency -s Benchmarks/serving_users.lua \
    "http://127.0.0.1:$PORT_A" > "$OUT/wrk_one_$round.txt"
  read -r one p99 < <(summary "$OUT/wrk_one_$round.txt")
  echo "| 1 | $round | $one | $p99 |"
  loaders=()
  for port in $PORT_A $PORT_B; do
    IDS_FILE="$OUT/users.txt" ROUTE=recommendations wrk -t1 -c16 -d${SECONDS_PER_RUN}s --latency -s Benchmarks/serving_users.lua \
      "http://127.0.0.1:$port" > "$OUT/wrk_two_${round}_$port.txt" &
    loaders+=($!)
  done
  wait "${loaders[@]}"
  read -r a pa < <(summary "$OUT/wrk_two_${round}_$PORT_A.txt"); read -r b pb < <(summary "$OUT/wrk_two_${round}_$PORT_B.txt")
  echo "| 2 | $round | $(echo "$a + $b" | bc) ($a + $b) | $pa, $pb |"
done
