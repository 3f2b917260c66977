#!/usr/bin/env python3
"""Summarises Benchmarks/fairness.sh runs: per cutoff, each model's accuracy and exposure measures (mean over seeds,
± std when there are several).
Usage: Benchmarks/fairness_table.py OUT_FOLDER MODEL..."""
import glob, json, statistics, sys

out, models = sys.argv[1], sys.argv[2:]
measures = ["recall", "ndcg", "itemcoverage", "itemcoverage_norm", "giniindex", "giniindex_norm", "jainindex",
            "jainindex_norm", "entropy", "entropy_norm", "fsat", "fsat_norm", "averagepopularity", "longtailcoverage",
            "longtailshare"]
records = {}
for m in models:
    rows = []
    for path in sorted(glob.glob(f"{out}/{m}-*.json")):
        record = json.load(open(path))
        rows.append(record[0] if isinstance(record, list) else record)
    if rows:
        records[m] = rows
if records:
    print("BLAS core:", next(iter(records.values()))[0]["versions"].get("blas"))


def cell(values):
    if len(values) == 1:
        return f"{values[0]:.1f}" if abs(values[0]) >= 10 else f"{values[0]:.4f}"
    mean, std = statistics.mean(values), statistics.stdev(values)
    return f"{mean:.1f} ± {std:.1f}" if abs(mean) >= 10 else f"{mean:.4f} ± {std:.4f}"


for k in [10, 20]:
    print(f"\n@{k}\n")
    print("| model | " + " | ".join(measures) + " |")
    print("|---|" + "---|" * len(measures))
    for m, rows in records.items():
        print(f"| {m} | " + " | ".join(cell([r["metrics"]["test"][f"{x}@{k}"] for r in rows]) for x in measures) + " |")
