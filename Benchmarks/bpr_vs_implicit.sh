#!/usr/bin/env bash
# BPR-MF epoch on Gowalla (64 factors, batch 2048) against the `implicit` package's BPR iteration, in
# alternating rounds so both see the same machine state (this shared machine's speed drifts by 2× over
# minutes). Each round: Affinity with Adam (RecBole's algorithm), Affinity with plain SGD (implicit's
# algorithm), then implicit (Hogwild SGD, 2 threads). Prints each round's seconds and ratios, then medians.
#   Benchmarks/bpr_vs_implicit.sh [ROUNDS] [GOWALLA_DIR]     (default 5)
# AFFINITY_BENCH_BIN=PATH runs that affinity-bench binary instead of building .build/release/affinity-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}; data=${2:-../shared/data/gowalla}
VENV=${PEERS_VENV:-$HOME/.cache/affinity-peers/venv}
BENCH="${AFFINITY_BENCH_BIN:-.build/release/affinity-bench}"
[ -n "${AFFINITY_BENCH_BIN:-}" ] || swift build -c release --product affinity-bench >/dev/null
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)  OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
out=$(mktemp)
for r in $(seq "$rounds"); do
  adam=$("$BENCH" bpr-epoch --data "$data" --epochs 5 | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_epoch_s"])')
  sgd=$("$BENCH" bpr-epoch --data "$data" --epochs 5 --optimizer sgd --learning-rate 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_epoch_s"])')
  imp=$("$VENV/bin/python" Benchmarks/implicit_bpr_epoch.py "$data" --iterations 50 | python3 -c 'import json,sys; print(json.load(sys.stdin)["s_per_iteration"])')
  echo "$adam $sgd $imp" >> "$out"
  python3 -c "a,s,i=$adam,$sgd,$imp; print(f'round $r: affinity adam {a:.3f} s, sgd {s:.3f} s; implicit {i:.3f} s/iteration; ratios {a/i:.2f}x, {s/i:.2f}x')"
done
python3 - "$out" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
med = [statistics.median(c) for c in zip(*rows)]
ratios = [(a / i, s / i) for a, s, i in rows]
print(f"median: affinity adam {med[0]:.3f} s, sgd {med[1]:.3f} s; implicit {med[2]:.3f} s/iteration")
print(f"ratio to implicit, per round: adam {', '.join(f'{a:.2f}' for a, _ in ratios)}; sgd {', '.join(f'{s:.2f}' for _, s in ratios)}")
print(f"median ratio: adam {statistics.median(a for a, _ in ratios):.2f}x, sgd {statistics.median(s for _, s in ratios):.2f}x")
PY
rm -f "$out"
