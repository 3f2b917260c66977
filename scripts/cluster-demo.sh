#!/usr/bin/env bash
# A local cluster in one command: a throwaway PostgreSQL server (Debian's postgresql package; a temporary data
# directory, loopback only, no system service), one `affinity worker` and two `affinity serve --worker-trains`
# replicas on different ports, all on that one database. It posts events to replica A and reads them back through
# replica B, asks A for a retrain and checks that both replicas swap to the worker's new version, deletes a user
# through A and checks that B forgot them. Prints `replicas agree` and exits 0 when every check holds; otherwise
# names the failed check and exits 1. Everything it started is stopped and removed on exit.
#   scripts/cluster-demo.sh            (AFFINITY_BIN=PATH uses that binary instead of building a release one;
#                                        AFFINITY_PG_BIN=DIR names PostgreSQL's bin directory)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${AFFINITY_BIN:-.build/release/affinity}"
if [ -z "${AFFINITY_BIN:-}" ]; then swift build -c release --product affinity >/dev/null; fi
PG_BIN=${AFFINITY_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  echo "cluster-demo: PostgreSQL's server binaries are not installed (./scripts/setup.sh --postgres)" >&2
  exit 2
fi

work=$(mktemp -d /tmp/affinity-cluster.XXXXXX)
chmod 711 "$work"  # the server runs as postgres when this runs as root
pids=()
as_server() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -d "$work/pg" ] && as_server "$PG_BIN/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "cluster-demo: FAILED: $*" >&2; for f in "$work"/*.log; do echo "--- $f" >&2; tail -5 "$f" >&2; done; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f} s')" "$1" "$(now)"; }
demo_started=$(now)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. PostgreSQL in a throwaway directory.
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_server "$PG_BIN/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
pg_port=$(free_port)
as_server "$PG_BIN/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work/pg" start >/dev/null
STORE="postgres://postgres@127.0.0.1:$pg_port/postgres"
echo "postgresql on 127.0.0.1:$pg_port"

# 2. A model of the built-in data; the first replica publishes it as version 1.
"$BIN" train --dataset ml-latest-small --model bpr --set epochs=5 --set eval_step=100 --quiet --save "$work/model.affinity" >/dev/null
export AFFINITY_API_KEY=demo-key
auth=(-H "Authorization: Bearer demo-key" -H "Content-Type: application/json")
port_a=$(free_port); port_b=$(free_port)
"$BIN" serve --worker-trains --model "$work/model.affinity" --store "$STORE" --port "$port_a" --follow-interval 0.2 > "$work/replica-a.log" 2>&1 &
pids+=($!)
wait_up() { for _ in $(seq 1 300); do curl -sf "localhost:$1/healthz" >/dev/null && return 0; sleep 0.1; done; fail "replica on port $1 did not start"; }
wait_up "$port_a"
"$BIN" serve --worker-trains --store "$STORE" --port "$port_b" --follow-interval 0.2 > "$work/replica-b.log" 2>&1 &
pids+=($!)
wait_up "$port_b"
"$BIN" worker --store "$STORE" --poll 0.2 > "$work/worker.log" 2>&1 &
pids+=($!)
echo "replicas on :$port_a and :$port_b, one worker"

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }
until_true() { # seconds check-command...
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}

# 3. Events through A, recommendations through B.
posted=$(now)
curl -sf "${auth[@]}" -X POST "localhost:$port_a/v1/events" \
  -d '{"events": [{"user": "demo-newcomer", "item": "1"}, {"user": "demo-newcomer", "item": "260"}, {"user": "demo-newcomer", "item": "1196"}]}' >/dev/null \
  || fail "posting events to replica A"
source_on_b() { [ "$(curl -sf "localhost:$port_b/v1/users/demo-newcomer/recommendations?k=5" | json 'd["source"]')" = "$1" ]; }
until_true 10 source_on_b fold-in || fail "replica B did not fold in the events posted to A"
echo "check: events posted to A are folded in on B ($(since "$posted") after posting)"

# 4. A retrain asked of A is trained by the worker; both replicas swap to the new version.
live_before=$(curl -sf "${auth[@]}" "localhost:$port_a/v1/admin/status" | json 'd.get("registry_version")')
requested=$(now)
[ "$(curl -sf "${auth[@]}" -X POST "localhost:$port_a/v1/admin/retrain" | json 'd["status"]')" = requested ] || fail "retrain request through A"
newer() { local v; v=$(curl -sf "${auth[@]}" "localhost:$1/v1/admin/status" | json 'd.get("registry_version")'); [ "$v" != "$live_before" ] && [ "$v" != None ]; }
until_true 120 newer "$port_a" || fail "replica A did not swap to the worker's new version"
until_true 30 newer "$port_b" || fail "replica B did not swap to the worker's new version"
swapped=$(since "$requested")
version_a=$(curl -sf "${auth[@]}" "localhost:$port_a/v1/admin/status" | json 'd["registry_version"]')
version_b=$(curl -sf "${auth[@]}" "localhost:$port_b/v1/admin/status" | json 'd["registry_version"]')
[ "$version_a" = "$version_b" ] || fail "replicas serve different versions ($version_a, $version_b)"
until_true 10 source_on_b model || fail "the worker's version does not know the newcomer on B"
top_a=$(curl -sf "localhost:$port_a/v1/users/demo-newcomer/recommendations?k=10" | json '[i["item"] for i in d["items"]]')
top_b=$(curl -sf "localhost:$port_b/v1/users/demo-newcomer/recommendations?k=10" | json '[i["item"] for i in d["items"]]')
[ "$top_a" = "$top_b" ] || fail "replicas disagree on the newcomer's top 10"
fit=$(grep -o 'seconds=[0-9.]*' "$work/worker.log" | tail -1 | cut -d= -f2)
swap_a=$(grep "now serving the registry" "$work/replica-a.log" | grep -o 'seconds=[0-9.]*' | tail -1 | cut -d= -f2)
swap_b=$(grep "now serving the registry" "$work/replica-b.log" | grep -o 'seconds=[0-9.]*' | tail -1 | cut -d= -f2)
echo "check: the worker published version $version_a (was $live_before); both replicas serve it and agree"
echo "       request → both replicas on it: $swapped (worker fit and publish ${fit:-?} s; swap on A ${swap_a:-?} s, on B ${swap_b:-?} s)"

# 5. A deletion through A reaches B.
deleted=$(now)
curl -sf "${auth[@]}" -X DELETE "localhost:$port_a/v1/users/demo-newcomer" >/dev/null || fail "deleting the user through A"
until_true 10 source_on_b popularity || fail "replica B still serves the user deleted through A"
echo "check: a user deleted through A is forgotten on B ($(since "$deleted") after the deletion)"
echo "replicas agree ($(since "$demo_started") in all)"
