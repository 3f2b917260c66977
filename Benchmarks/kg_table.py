"""The knowledge-graph table from `Benchmarks/kg.sh`'s records: test Recall/NDCG@10/20 (mean ± std over seeds),
seconds per epoch (median over every epoch of every seed), epochs to the best validation score, peak RSS.
    python3 Benchmarks/kg_table.py OUT_DIR MODEL [MODEL …]"""
import glob, os, re, statistics, sys
from run_records import load, mean_std

out, models = sys.argv[1], sys.argv[2:]
print("| model | Recall@10 | NDCG@10 | Recall@20 | NDCG@20 | s/epoch | best epoch | peak RSS | seeds |")
print("|---|---|---|---|---|---|---|---|---|")
for model in models:
    records = load(os.path.join(out, f"{model}-[0-9]*.json"))
    if not records:
        continue
    test = [r["metrics"]["test"] for r in records]
    cells = [mean_std([t[m] for t in test]) for m in ("recall@10", "ndcg@10", "recall@20", "ndcg@20")]
    seconds = [e["seconds"] for r in records for e in r.get("epochs", [])]
    best = []
    for r in records:
        scored = [(e["valid"]["mrr@10"], -e["epoch"]) for e in r.get("epochs", []) if e.get("valid")]
        if scored:
            best.append(-max(scored)[1])
    peaks = []
    for path in glob.glob(os.path.join(out, f"{model}-[0-9]*.time")):
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read())
        if m:
            peaks.append(int(m.group(1)) / 1e6)
    per_epoch = f"{statistics.median(seconds):.2f}" if seconds else "—"
    peak = f"{max(peaks):.2f} GB" if peaks else "—"
    print(f"| {model} | " + " | ".join(cells) + f" | {per_epoch} | {', '.join(map(str, best)) or '—'} | {peak} | "
          + ", ".join(str(r["seed"]) for r in records) + " |")
