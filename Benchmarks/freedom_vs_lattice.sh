#!/usr/bin/env bash
# FREEDOM's headline property: memory and epoch time against LATTICE on the same data, measured in one run.
# Each model trains EPOCHS epochs without validation; reported: seconds per epoch (fit time / epochs) and
# peak RSS of the whole process (/usr/bin/time). LATTICE runs twice: Affinity's exact sparse formulation and
# the reference's dense one (dense_graph=true).
#   Benchmarks/freedom_vs_lattice.sh [DATASET] [EPOCHS]     (default ml-latest-small with built-in genres + text, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-ml-latest-small}; epochs=${2:-3}
swift build -c release --product affinity >/dev/null
bin=.build/release/affinity
if [[ -d $data ]]; then source=(--data "$data"); mods=(); else source=(--dataset "$data"); mods=(--modality genres=builtin:genres --modality text=builtin:text); fi
out=Benchmarks/out/freedom-vs-lattice; mkdir -p "$out"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  data: $data  epochs: $epochs"
printf "%-22s %10s %12s\n" model "s/epoch" "peak RSS MB"
for variant in "freedom" "lattice" "lattice --set dense_graph=true"; do
  name=$(echo "$variant" | tr ' =' '__')
  /usr/bin/time -f "%e %M" -o "$out/$name.time" $bin train "${source[@]}" "${mods[@]}" --model $variant \
    --set epochs="$epochs" --set eval_step=0 --quiet --output "$out/$name.json" > /dev/null
  python3 - "$out/$name.json" "$out/$name.time" "$variant" "$epochs" <<'PY'
import json, sys
record = json.load(open(sys.argv[1]))
record = record[0] if isinstance(record, list) else record
wall, rss = open(sys.argv[2]).read().split()
print(f"{sys.argv[3]:<22} {record['timings']['fit_s'] / int(sys.argv[4]):10.2f} {int(rss) / 1024:12.0f}")
PY
done
