#!/usr/bin/env python3
"""A grid search of iALS settings on a LightGCN-format folder (made for a validation split from
Benchmarks/holdout_split.py): one `affinity train` per combination, 2 threads, with `--curve STEP` so every
STEP iterations are scored (Recall@20, NDCG@20 of the folder's test.txt) in the same run. Appends one JSON line
per combination to OUT (settings, the curve, median seconds per iteration) and skips combinations OUT already
has, so a search can be resumed or extended.
Usage: ials_search.py DATA_DIR OUT.jsonl GRID_JSON [--epochs 20] [--curve 2]
  GRID_JSON: {"setting": [values…], …}, e.g. '{"reg_exponent": [1], "unobserved_weight": [0.005, 0.01]}'"""
import argparse, itertools, json, os, subprocess, sys, tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("out")
ap.add_argument("grid")
ap.add_argument("--epochs", type=int, default=20)
ap.add_argument("--curve", type=int, default=2)
a = ap.parse_args()
grid = json.loads(a.grid)
done = set()
if os.path.exists(a.out):
    done = {json.dumps(json.loads(line)["settings"], sort_keys=True) for line in open(a.out)}
binary = os.path.join(root, ".build/release/affinity")
for values in itertools.product(*grid.values()):
    settings = dict(zip(grid, values))
    if json.dumps(settings, sort_keys=True) in done:
        continue
    with tempfile.NamedTemporaryFile(suffix=".json") as record:
        args = [binary, "train", "--data", a.data, "--format", "lightgcn", "--model", "ials", "--set", f"epochs={a.epochs}",
                "--set", "topk=20", "--set", "metrics=recall,ndcg", "--curve", str(a.curve), "--quiet", "--output", record.name]
        for key, value in settings.items():
            args += ["--set", f"{key}={value}"]
        run = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "AFFINITY_THREADS": "2"})
        if run.returncode != 0:
            print("failed:", settings, run.stderr.strip()[-300:], file=sys.stderr, flush=True)
            continue
        r = json.load(open(record.name))
    curve = {int(k.rsplit("_", 1)[1]): [v["recall@20"], v["ndcg@20"]] for k, v in r["metrics"].items() if k.startswith("curve_epoch_")}
    seconds = sorted(e["seconds"] for e in r["epochs"])
    row = {"settings": settings, "curve": dict(sorted(curve.items())), "seconds_per_iteration": seconds[len(seconds) // 2]}
    with open(a.out, "a") as out:
        out.write(json.dumps(row) + "\n")
    best = max(row["curve"].items(), key=lambda kv: kv[1][0])
    print(json.dumps(settings), f"best at {best[0]} iterations: R@20 {best[1][0]:.4f}, N@20 {best[1][1]:.4f}", flush=True)
