#!/usr/bin/env python3
"""Summarises Benchmarks/relmf_mnar.sh runs: per protocol, mean ± std over seeds of each model's plain and
propensity-weighted (SNIPS) test metrics.
Usage: Benchmarks/relmf_mnar_table.py OUT_FOLDER LABEL..."""
import glob, json, statistics, sys

out, labels = sys.argv[1], sys.argv[2:]
first = sorted(glob.glob(f"{out}/*.json"))
if first:
    record = json.load(open(first[0]))
    print("BLAS core:", (record[0] if isinstance(record, list) else record)["versions"].get("blas"))
keys = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "recall_snips@10", "dcg_snips@10", "recall_snips@20", "dcg_snips@20"]
for protocol in ["mnar", "random"]:
    print(f"\n{protocol} split\n")
    print("| model | " + " | ".join(keys) + " | best epoch |")
    print("|---|" + "---|" * (len(keys) + 1))
    for label in labels:
        runs = sorted(glob.glob(f"{out}/{protocol}-{label}-*.json"))
        if not runs:
            continue
        rows = []
        for r in runs:
            record = json.load(open(r))
            rows.append(record[0] if isinstance(record, list) else record)
        cells = []
        for k in keys:
            v = [r["metrics"]["test"][k] for r in rows]
            cells.append(f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" if len(v) > 1 else f"{v[0]:.4f}")
        best = []
        for r in rows:
            epochs = [e for e in r.get("epochs") or [] if e.get("valid")]
            if epochs:
                best.append(str(max(epochs, key=lambda e: (e["valid"]["dcg_snips@10"], e["epoch"]))["epoch"]))
        print(f"| {label} | " + " | ".join(cells) + f" | {', '.join(best) or '—'} |")
