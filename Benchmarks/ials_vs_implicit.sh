#!/usr/bin/env bash
# iALS on a LightGCN-format split (Gowalla) against the `implicit` package's ALS (conjugate gradient, 3 steps),
# 2 threads each, in alternating rounds so both see the same machine state (this shared machine's speed drifts).
# Both fit the same objective: implicit's confidence of an observed pair is alpha·r with weight 1 on unobserved
# pairs and plain regularisation, which is Affinity's `alpha = IMPLICIT_ALPHA − 1, unobserved_weight = 1,
# reg_exponent = 0`. Each round prints seconds per iteration (median over the iterations) and full-ranking test
# Recall@20 / NDCG@20 for both (Affinity's evaluator; implicit's factors scored by Benchmarks/implicit_als.py with
# the same protocol), then the medians and the speed ratio.
#   Benchmarks/ials_vs_implicit.sh DATA_DIR [ROUNDS] [FACTORS] [ITERATIONS] [REG] [IMPLICIT_ALPHA]
#   (defaults: 3 rounds, implicit's defaults: 64 factors, 15 iterations, reg 0.01, alpha 1)
# Then, with `TUNED="key=value …"` set, one more Affinity run with those settings (accuracy only).
# PEERS_VENV: a virtualenv with implicit 0.7.3 (made here, like ../shared/peers/setup_venv.sh, if it lacks it).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: Benchmarks/ials_vs_implicit.sh DATA_DIR [ROUNDS] [FACTORS] [ITERATIONS] [REG] [IMPLICIT_ALPHA]}
rounds=${2:-3}; factors=${3:-64}; iterations=${4:-15}; reg=${5:-0.01}; implicit_alpha=${6:-1}
VENV=${PEERS_VENV:-$HOME/.cache/affinity-peers/venv}
if ! "$VENV/bin/python" -c 'import implicit, threadpoolctl' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "numpy<2" "scipy<1.12" threadpoolctl implicit==0.7.3
fi
swift build -c release --product affinity >/dev/null 2>&1 || swift build -c release --product affinity
BIN=.build/release/affinity
affinity_alpha=$(python3 -c "print(float('$implicit_alpha') - 1)")
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)  OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "settings: factors $factors, iterations $iterations, reg $reg, implicit alpha $implicit_alpha (Affinity alpha $affinity_alpha, unobserved_weight 1)"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
affinity_run() {  # $1: record path; then settings
  local record=$1; shift
  local sets=()
  for s in "$@"; do sets+=(--set "$s"); done
  AFFINITY_THREADS=2 "$BIN" train --data "$data" --format lightgcn --model ials --set topk=20 --set metrics=recall,ndcg \
    "${sets[@]}" --quiet --output "$record" >/dev/null
  python3 - "$record" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
t = r["metrics"]["test"]
print(statistics.median(e["seconds"] for e in r["epochs"]), t["recall@20"], t["ndcg@20"], r["versions"]["blas"])
PY
}
for r in $(seq "$rounds"); do
  read -r a_s a_r a_n blas < <(affinity_run "$work/affinity.json" embedding_size="$factors" epochs="$iterations" \
    reg_weight="$reg" alpha="$affinity_alpha" unobserved_weight=1 reg_exponent=0)
  read -r i_s i_r i_n < <("$VENV/bin/python" Benchmarks/implicit_als.py "$data" --factors "$factors" --iterations "$iterations" \
    --reg "$reg" --alpha "$implicit_alpha" --threads 2 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["median_iteration_s"], j["recall@20"], j["ndcg@20"])')
  echo "$a_s $i_s" >> "$work/times"
  python3 -c "print(f'round $r: affinity {$a_s:.3f} s/iteration (R@20 {$a_r:.4f}, N@20 {$a_n:.4f}, BLAS $blas); implicit {$i_s:.3f} s/iteration (R@20 {$i_r:.4f}, N@20 {$i_n:.4f}); ratio {$a_s/$i_s:.2f}x')"
done
python3 - "$work/times" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
ratios = [a / i for a, i in rows]
print(f"median: affinity {statistics.median(a for a, _ in rows):.3f} s, implicit {statistics.median(i for _, i in rows):.3f} s per iteration; "
      f"ratio per round {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}x")
PY
if [ -n "${TUNED:-}" ]; then
  # shellcheck disable=SC2086
  read -r t_s t_r t_n _ < <(affinity_run "$work/tuned.json" embedding_size="$factors" $TUNED)
  echo "affinity tuned ($TUNED): R@20 $t_r, N@20 $t_n, $t_s s/iteration"
fi
