#!/usr/bin/env bash
# Robustness to false positives: BPR-MF trained plainly, with T-CE, with R-CE (Wang et al., WSDM 2021) and with
# PLD's sampler (Zhang et al., WWW 2025) on training data with a fraction p of random false positives added per user
# (`train_noise=p`: ⌊p·|train_u|⌋ items the user never interacted with; validation and test untouched).
# RecBole's protocol (per-user random 8:1:1, full ranking), early stopping on validation Recall@20; prints test
# Recall@20 and NDCG@20 as mean ± std over the seeds, and each method's relative loss of Recall@20 against its own
# p = 0 figure and against plain BPR's p = 0 figure.
#   Benchmarks/noise.sh table [DATA] [SEEDS] [NOISES]   (defaults: ../shared/data/ml-100k, "2020 2021 2022", "0 0.1 0.2 0.4")
#   Benchmarks/noise.sh tune  [DATA]                    validation Recall@20 of each method's grid at p = 0.2, seed 2020
#   Benchmarks/noise.sh gowalla [DATA] [EPOCHS]          bpr, bce-tce, rce, pld at p = 0 and 0.2, seed 2020, a fixed
#                                                        budget of EPOCHS (100) on the LightGCN split (no validation);
#                                                        T-CE's num_gradual is the official 30000 there
# Environment: METHODS (a subset, in order), TCE_DROP_RATE, TCE_NUM_GRADUAL, RCE_BETA, BCE_TCE_DROP_RATE,
# BCE_TCE_NUM_GRADUAL, BCE_RCE_BETA, PLD_TEMPERATURE (the tuned values are the defaults below).
# AFFINITY_BIN=PATH runs that affinity binary instead of building .build/release/affinity.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-table}; data=${2:-../shared/data/ml-100k}
BIN="${AFFINITY_BIN:-.build/release/affinity}"
[ -n "${AFFINITY_BIN:-}" ] || swift build -c release --product affinity >/dev/null
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)"
# Shared by every method: RecBole's BPR (64 factors, Adam 1e-3, batch 2048, no weight decay).
base="--set embedding_size=64 --set learning_rate=0.001 --set train_batch_size=2048 --set valid_metric=recall@20 --set topk=10,20"
if [ "$mode" = gowalla ]; then : "${TCE_NUM_GRADUAL:=30000}" "${BCE_TCE_NUM_GRADUAL:=30000}"; fi
# The methods, with the settings chosen by `tune` (validation Recall@20 at p = 0.2). `bpr-users` is plain BPR with
# PLD's user-uniform draws (PLD samples so before `begin_adv`), `bce` plain pointwise training: the controls of PLD
# and of the pointwise T-CE and R-CE (the papers' form).
declare -A methods=(
  [bpr]=""
  [bpr-users]="--set sampling=users"
  [tce]="--set denoise=tce --set drop_rate=${TCE_DROP_RATE:-0.05} --set num_gradual=${TCE_NUM_GRADUAL:-4000}"
  [rce]="--set denoise=rce --set beta=${RCE_BETA:-0.5}"
  [bce]="--set loss=bce"
  [bce-tce]="--set loss=bce --set denoise=tce --set drop_rate=${BCE_TCE_DROP_RATE:-0.4} --set num_gradual=${BCE_TCE_NUM_GRADUAL:-2000}"
  [bce-rce]="--set loss=bce --set denoise=rce --set beta=${BCE_RCE_BETA:-0.1}"
  [pld]="--set sampling=pld --set pld_temperature=${PLD_TEMPERATURE:-1}"
)
order=${METHODS:-bpr bpr-users tce rce bce bce-tce bce-rce pld}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() {  # name noise seed extra-settings… → $out/name_noise_seed.json
  local name=$1 noise=$2 seed=$3; shift 3
  # shellcheck disable=SC2086
  "$BIN" train --data "$data" --model bpr --quiet --seed "$seed" $base --set "train_noise=$noise" "$@" \
    --output "$out/${name}_${noise}_${seed}.json" >/dev/null
}

if [ "$mode" = tune ]; then
  grid() {  # label settings… : prints validation and test Recall@20 (test only for the record; selection uses validation)
    local label=$1; shift
    run tune 0.2 2020 "$@"
    python3 - "$out/tune_0.2_2020.json" "$label" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["metrics"]
print(f"{sys.argv[2]:<40} valid recall@20 {r['valid']['recall@20']:.4f}   (test {r['test']['recall@20']:.4f})")
PY
  }
  grid "bpr"
  grid "bce" --set loss=bce
  for form in bpr bce; do
    for rate in 0.05 0.1 0.2 0.4; do for gradual in 400 1000 2000 4000; do
      grid "$form tce drop_rate=$rate num_gradual=$gradual" --set loss=$form --set denoise=tce --set drop_rate=$rate --set num_gradual=$gradual
    done; done
    for beta in 0.05 0.1 0.25 0.5 1.0; do grid "$form rce beta=$beta" --set loss=$form --set denoise=rce --set beta=$beta; done
  done
  for tau in 0.05 0.1 0.5 1; do grid "pld pld_temperature=$tau" --set sampling=pld --set pld_temperature=$tau; done
  exit 0
fi

if [ "$mode" = gowalla ]; then
  epochs=${3:-100}
  echo "test metrics after $epochs epochs, seed 2020"
  echo "| method | p | recall@20 | ndcg@20 | fit |"
  echo "|---|---|---|---|---|"
  for method in ${METHODS:-bpr bce-tce rce pld}; do
    for noise in 0 0.2; do
      # shellcheck disable=SC2086
      run "$method" "$noise" 2020 --set epochs="$epochs" ${methods[$method]}
      python3 - "$out/${method}_${noise}_2020.json" "$method" "$noise" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["metrics"]["test"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {t['recall@20']:.4f} | {t['ndcg@20']:.4f} | {r['timings']['fit_s']:.0f} s |", flush=True)
PY
    done
  done
  exit 0
fi

seeds=${3:-2020 2021 2022}; noises=${4:-0 0.1 0.2 0.4}
for method in $order; do
  # shellcheck disable=SC2086
  for noise in $noises; do for seed in $seeds; do run "$method" "$noise" "$seed" ${methods[$method]}; done; done
  echo "done: $method ${methods[$method]}" >&2
done
python3 - "$out" "$order" "$noises" "$seeds" <<'PY'
import json, statistics, sys
folder, order, noises, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
def runs(method, noise):
    return [json.load(open(f"{folder}/{method}_{noise}_{s}.json")) for s in seeds]
def stat(method, noise, metric):
    v = [r["metrics"]["test"][metric] for r in runs(method, noise)]
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)
def cell(method, noise, metric):
    m, s = stat(method, noise, metric)
    return f"{m:.4f} ± {s:.4f}"
print(f"test metrics, mean ± std over seeds {', '.join(seeds)}")
for metric in ["recall@20", "ndcg@20"]:
    print(f"\n| {metric} | " + " | ".join(f"p = {p}" for p in noises) + " |")
    print("|---|" + "---|" * len(noises))
    for method in order:
        print(f"| {method} | " + " | ".join(cell(method, p, metric) for p in noises) + " |")
print("\nRecall@20 lost at p, relative to the method's own p = 0 / to plain BPR's p = 0:")
print("\n| method | " + " | ".join(f"p = {p}" for p in noises[1:]) + " |")
print("|---|" + "---|" * (len(noises) - 1))
clean_bpr = stat("bpr", noises[0], "recall@20")[0]
for method in order:
    own = stat(method, noises[0], "recall@20")[0]
    cells = []
    for p in noises[1:]:
        m = stat(method, p, "recall@20")[0]
        cells.append(f"{100 * (1 - m / own):.1f}% / {100 * (1 - m / clean_bpr):.1f}%")
    print(f"| {method} | " + " | ".join(cells) + " |")
epochs = {m: statistics.mean(len(r.get("epochs") or []) for p in noises for r in runs(m, p)) for m in order}
fit = {m: statistics.mean(r["timings"]["fit_s"] for p in noises for r in runs(m, p)) for m in order}
print("\nmean epochs run (early stopping) and fit seconds: " + ", ".join(f"{m} {epochs[m]:.0f} / {fit[m]:.1f} s" for m in order))
PY
