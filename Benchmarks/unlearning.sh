#!/usr/bin/env bash
# Approximate unlearning vs retraining (issue 6, acceptance 4): BPR-MF, 50 users each forget 25% of their
# training interactions; original, retrained-without-them and unlearned models compared on where the
# forgotten items rank, on test Recall@20, and on seconds. Defaults were chosen on ml-latest-small; ml-100k
# (../shared, when present) is the held-out check, Gowalla the scale check.
# AFFINITY_BENCH_BIN=PATH runs that affinity-bench binary instead of building .build/release/affinity-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH="${AFFINITY_BENCH_BIN:-.build/release/affinity-bench}"
[ -n "${AFFINITY_BENCH_BIN:-}" ] || swift build -c release --product affinity-bench >/dev/null 2>&1
echo "# $(date -u +%FT%TZ) $(nproc) cores"
"$BENCH" unlearn --dataset ml-latest-small
[ -d ../shared/data/ml-100k ] && "$BENCH" unlearn --data ../shared/data/ml-100k --format atomic
[ -d ../shared/data/gowalla ] && "$BENCH" unlearn --data ../shared/data/gowalla --epochs 40 --learning-rate 0.005
true
