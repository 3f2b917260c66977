#!/usr/bin/env bash
# Compute-core benchmarks, each side by side with its reference in the same run:
#  - SpMM: Gowalla's normalised user+item adjacency × [70,839, 64], Affinity (2 threads) vs scipy.sparse;
#  - GEMM: Affinity's BLAS wrapper vs cblas_sgemm called directly from C, same shapes, same OpenBLAS;
#  - BPR-MF epoch on Gowalla (64 factors, batch 2048): Affinity vs RecBole 1.2.1 BPR vs implicit 0.7.3 BPR.
# Needs ../shared (data, peers venv from ../shared/peers/setup_venv.sh). Usage: Benchmarks/core.sh [GOWALLA_DIR]
# AFFINITY_BENCH_BIN=PATH runs that affinity-bench binary instead of building .build/release/affinity-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
GOWALLA=$(cd "${1:-../shared/data/gowalla}" && pwd)
PEERS=$(cd ../shared/peers && pwd)
VENV=${PEERS_VENV:-$HOME/.cache/affinity-peers/venv}
OUT=$(pwd)/${BENCH_OUT:-Benchmarks/out}; mkdir -p "$OUT"
BENCH="${AFFINITY_BENCH_BIN:-.build/release/affinity-bench}"
[ -n "${AFFINITY_BENCH_BIN:-}" ] || swift build -c release --product affinity-bench >/dev/null
cc -O2 $(pkg-config --cflags openblas) Benchmarks/gemm_direct.c $(pkg-config --libs openblas) -o "$OUT/gemm_direct"
echo "# $(date -u +%FT%TZ) $(nproc) cores; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"

echo "## SpMM"
"$BENCH" spmm --data "$GOWALLA" | tee "$OUT/spmm_affinity.json"
OMP_NUM_THREADS=2 python3 Benchmarks/spmm_scipy.py "$GOWALLA" | tee "$OUT/spmm_scipy.json"

echo "## GEMM (m n k)"
: > "$OUT/gemm.jsonl"
for shape in "2048 40981 64" "1024 1024 1024" "256 256 256"; do
  set -- $shape
  "$OUT/gemm_direct" "$1" "$2" "$3" 200 | tee -a "$OUT/gemm.jsonl"
  "$BENCH" gemm --m "$1" --n "$2" --k "$3" --repeats 200 | tee -a "$OUT/gemm.jsonl"
done

echo "## BPR-MF epoch"
"$BENCH" bpr-epoch --data "$GOWALLA" --epochs 5 | tee "$OUT/bpr_affinity.json"
DATA_CACHE=$HOME/.cache/affinity-peers/data
[ -d "$DATA_CACHE/gowalla" ] || python3 "$PEERS/convert_lightgcn_split.py" "$GOWALLA" "$DATA_CACHE" gowalla
PEERS_OUT=$OUT "$PEERS/recbole.sh" bench_BPR_epochs BPR gowalla "$DATA_CACHE" --no-test \
  --set "benchmark_filename=[train,test,test]" --set embedding_size=64 --set train_batch_size=2048 \
  --set epochs=3 --set eval_step=100 --set "topk=[20]" --set valid_metric=recall@20 | tail -3
"$VENV/bin/python" "$PEERS/implicit_bench.py" "$GOWALLA" --bpr-iters 100 --als-iters 1 --out "$OUT/implicit.json" | grep '^bpr'

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
ours = json.load(open(f"{out}/spmm_affinity.json")); sc = json.load(open(f"{out}/spmm_scipy.json"))
print(f"SpMM: affinity {ours['median_ms']:.2f} ms, scipy {sc['median_ms']:.2f} ms, ratio {ours['median_ms']/sc['median_ms']:.3f}")
rows = [json.loads(l) for l in open(f"{out}/gemm.jsonl")]
for c, a in zip(rows[0::2], rows[1::2]):
    print(f"GEMM {a['m']}x{a['n']}x{a['k']}: affinity {a['gflops']:.1f} GFLOP/s, direct C {c['gflops']:.1f} GFLOP/s, "
          f"{a['gflops']/c['gflops']*100:.0f}% (core {a['blas_core']})")
bpr = json.load(open(f"{out}/bpr_affinity.json")); rb = json.load(open(f"{out}/results/bench_BPR_epochs.json"))
im = json.load(open(f"{out}/implicit.json"))["bpr"]
e = bpr["median_epoch_s"]
print(f"BPR epoch: affinity {e:.3f} s, RecBole {rb['train_epoch_s_median']:.3f} s (ratio {e/rb['train_epoch_s_median']:.3f}), "
      f"implicit {im['s_per_iteration']:.3f} s/iteration (ratio {e/im['s_per_iteration']:.2f})")
PY
