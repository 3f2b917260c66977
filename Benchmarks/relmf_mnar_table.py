#!/usr/bin/env python3
"""Summarises Benchmarks/relmf_mnar.sh runs: per protocol, mean ± std over seeds of each model's plain and
propensity-weighted (SNIPS) test metrics, and the epochs early stopping kept.
Usage: Benchmarks/relmf_mnar_table.py OUT_FOLDER LABEL..."""
import sys
from run_records import load, mean_std

out, labels = sys.argv[1], sys.argv[2:]
keys = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "recall_snips@10", "dcg_snips@10", "recall_snips@20", "dcg_snips@20"]
everything = load(f"{out}/*.json")
if everything:
    print("BLAS core:", everything[0]["versions"].get("blas"))
for protocol in ["mnar", "random"]:
    print(f"\n{protocol} split\n")
    print("| model | " + " | ".join(keys) + " | best epoch |")
    print("|---|" + "---|" * (len(keys) + 1))
    for label in labels:
        rows = load(f"{out}/{protocol}-{label}-*.json")
        if not rows:
            continue
        cells = [mean_std([r["metrics"]["test"][k] for r in rows]) for k in keys]
        best = []
        for r in rows:
            epochs = [e for e in r.get("epochs") or [] if e.get("valid")]
            if epochs:  # the trainer keeps the later epoch of a tie
                best.append(str(max(epochs, key=lambda e: (e["valid"]["dcg_snips@10"], e["epoch"]))["epoch"]))
        print(f"| {label} | " + " | ".join(cells) + f" | {', '.join(best) or '—'} |")
