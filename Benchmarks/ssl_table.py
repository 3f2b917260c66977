#!/usr/bin/env python3
"""The SSL-vs-LightGCN table from a Benchmarks/ssl_gowalla.sh output folder, runs finished or still going.

    python3 Benchmarks/ssl_table.py Benchmarks/out/ssl-gowalla-50 [MORE FOLDERS…]

With several folders (runs at a constant learning rate, so a curve point at epoch E is the E-epoch budget
whatever the run's budget), each model's curve points are merged, earlier folders first.
Reads each MODEL.txt epoch log (the script with VERBOSE=1 and CURVE=N) for its curve lines
("epoch E: loss …, S s | curve ndcg@20 …, recall@20 …"), so a model still training shows the epochs it has
reached. Prints test Recall@20 / NDCG@20 per curve epoch and each SSL model's change against LightGCN's
Recall@20 at the same epoch.
"""
import pathlib
import re
import sys

folders = [pathlib.Path(a) for a in sys.argv[1:]] or [pathlib.Path("Benchmarks/out/ssl-gowalla-50")]
order = ["lightgcn", "simgcl", "dccf", "sgl", "lightgcl"]
line = re.compile(r"^epoch (\d+): loss [-0-9.e]+, ([0-9.]+) s \| curve ndcg@20 ([0-9.]+), recall@20 ([0-9.]+)")
epoch_time = re.compile(r"^epoch (\d+): loss [-0-9.e]+, ([0-9.]+) s")
curves, seconds, reached = {}, {}, {}
paths = [p for folder in folders for p in folder.glob("*.txt")]
for path in sorted(paths, key=lambda p: order.index(p.stem) if p.stem in order else 99):   # stable: folder order
    model = path.stem
    curves.setdefault(model, {}); seconds.setdefault(model, [])
    for text in path.read_text().splitlines():
        if m := line.match(text):
            curves[model][int(m[1]) + 1] = (float(m[4]), float(m[3]))   # logged epochs are 0-based
        if m := epoch_time.match(text):
            seconds[model].append(float(m[2]))
            reached[model] = max(reached.get(model, 0), int(m[1]) + 1)
epochs = sorted({e for c in curves.values() for e in c})
print("| model | epochs done | " + " | ".join(f"epoch {e}" for e in epochs) + " |")
print("|---|---|" + "---|" * len(epochs))
base = curves.get("lightgcn", {})
for model, curve in curves.items():
    cells = []
    for e in epochs:
        if e not in curve:
            cells.append("")
            continue
        recall, ndcg = curve[e]
        delta = f" ({100 * (recall / base[e][0] - 1):+.0f}%)" if model != "lightgcn" and e in base else ""
        cells.append(f"{recall:.4f} / {ndcg:.4f}{delta}")
    median = sorted(seconds[model])[len(seconds[model]) // 2] if seconds[model] else float("nan")
    print(f"| {model} | {reached.get(model, 0)} (median {median:.0f} s/epoch) | " + " | ".join(cells) + " |")
