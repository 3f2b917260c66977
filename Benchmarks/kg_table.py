"""The knowledge-graph table from `Benchmarks/kg.sh`'s records: test Recall/NDCG@10/20 (mean ± std over seeds),
seconds per epoch (median over every epoch of every seed), epochs to the best validation score, peak RSS, and CPU
seconds per run (user + system, mean over seeds: on a shared machine the wall-clock epoch time grows with the
load, the CPU time much less).
    python3 Benchmarks/kg_table.py OUT_DIR MODEL [MODEL …]"""
import glob, os, re, statistics, sys
from run_records import load, mean_std

out, models = sys.argv[1], sys.argv[2:]
print("| model | Recall@10 | NDCG@10 | Recall@20 | NDCG@20 | s/epoch | best epoch | peak RSS | CPU s/run | seeds |")
print("|---|---|---|---|---|---|---|---|---|---|")
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
    peaks, cpu = [], []
    for path in glob.glob(os.path.join(out, f"{model}-[0-9]*.time")):
        text = open(path).read()
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        if m:
            peaks.append(int(m.group(1)) / 1e6)
        times = re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", text)
        if len(times) == 2:
            cpu.append(sum(map(float, times)))
    per_epoch = f"{statistics.median(seconds):.2f}" if seconds else "—"
    peak = f"{max(peaks):.2f} GB" if peaks else "—"
    cpu_cell = f"{statistics.mean(cpu):.0f}" if cpu else "—"
    print(f"| {model} | " + " | ".join(cells) + f" | {per_epoch} | {', '.join(map(str, best)) or '—'} | {peak} | {cpu_cell} | "
          + ", ".join(str(r["seed"]) for r in records) + " |")
