#!/usr/bin/env python3
"""Summarises Benchmarks/multimodal.sh runs: mean ± std over seeds of each model's test metrics.
Usage: Benchmarks/multimodal_table.py OUT_FOLDER MODEL..."""
import glob, json, statistics, sys

out, models = sys.argv[1], sys.argv[2:]
keys = ["recall@10", "recall@20", "ndcg@10", "ndcg@20"]
print("| model | " + " | ".join(keys) + " | fit s | peak RSS MB |")
print("|---|" + "---|" * (len(keys) + 2))
for m in models:
    runs = sorted(glob.glob(f"{out}/{m}-*.json"))
    if not runs:
        continue
    rows = []
    for r in runs:
        record = json.load(open(r))
        rows.append(record[0] if isinstance(record, list) else record)
    times = [open(r.replace(".json", ".time")).read().split() for r in runs]
    cells = []
    for k in keys:
        v = [r["metrics"]["test"].get(k) for r in rows]
        if any(x is None for x in v):
            cells.append("unable")
            continue
        cells.append(f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" if len(v) > 1 else f"{v[0]:.4f}")
    fit = statistics.mean(r["timings"]["fit_s"] for r in rows)
    rss = max(int(t[1]) for t in times) / 1024
    print(f"| {m} | " + " | ".join(cells) + f" | {fit:.0f} | {rss:.0f} |")
