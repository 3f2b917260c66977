#!/usr/bin/env python3
"""Summarises Benchmarks/fairness.sh runs: per cutoff, each model's accuracy and exposure measures (mean over seeds,
± std when there are several).
Usage: Benchmarks/fairness_table.py OUT_FOLDER MODEL..."""
import sys
from run_records import load, mean_std

out, models = sys.argv[1], sys.argv[2:]
measures = ["recall", "ndcg", "itemcoverage", "itemcoverage_norm", "giniindex", "giniindex_norm", "jainindex",
            "jainindex_norm", "entropy", "entropy_norm", "fsat", "fsat_norm", "averagepopularity", "longtailcoverage",
            "longtailshare"]
records = {m: rows for m in models if (rows := load(f"{out}/{m}-*.json"))}
if records:
    print("BLAS core:", next(iter(records.values()))[0]["versions"].get("blas"))
for k in [10, 20]:
    print(f"\n@{k}\n")
    print("| model | " + " | ".join(measures) + " |")
    print("|---|" + "---|" * len(measures))
    for m, rows in records.items():
        cells = [mean_std([r["metrics"]["test"][f"{x}@{k}"] for r in rows], 1 if x == "averagepopularity" else 4) for x in measures]
        print(f"| {m} | " + " | ".join(cells) + " |")
