#!/usr/bin/env python3
"""Summaries of Benchmarks/ctr.sh's run records (Affinity's `--output` JSON and ../shared/peers' RecBole JSON).

  ctr_table.py --run RECORD     one line: side, model, seed, test AUC / LogLoss, median training s/epoch
  ctr_table.py --table FOLDER   per model: AUC and LogLoss mean ± std over the seeds, both sides, and the speed
                                ratio Affinity / RecBole (per seed, then the median)
"""
import glob
import json
import os
import statistics
import sys


def read(path):
    r = json.load(open(path))
    if "test_result" in r:  # RecBole (../shared/peers/run_recbole.py)
        return {"side": "recbole", "model": r["model"].lower(), "seed": int(r["config_final"]["seed"]),
                "auc": r["test_result"].get("auc"), "logloss": r["test_result"].get("logloss"),
                "seconds": r["train_epoch_s_median"], "epochs": r["epochs_run"], "extra": ""}
    epochs = [e["seconds"] for e in r["epochs"]]
    test = r["metrics"]["test"]
    arch = r.get("config", {}).get("architecture", "")
    return {"side": "affinity", "model": r["model"], "seed": int(r["seed"]), "auc": test["auc"], "logloss": test["logloss"],
            "seconds": statistics.median(epochs), "epochs": len(epochs), "valid_auc": r["metrics"].get("valid", {}).get("auc"),
            "extra": f"BLAS {r.get('versions', {}).get('blas', '?')}" + (f"; architecture {arch}" if arch and arch != "search" else "")}


def line(x):
    valid = f", valid AUC {x['valid_auc']:.4f}" if x.get("valid_auc") is not None else ""
    return (f"{x['side']:8} {x['model']:8} seed {x['seed']}: test AUC {x['auc']:.4f} LogLoss {x['logloss']:.4f}{valid}, "
            f"{x['seconds']:.3f} s/epoch (median of {x['epochs']}) {x['extra']}")


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"


def table(folder):
    runs = [read(p) for p in sorted(glob.glob(os.path.join(folder, "affinity_*.json")) + glob.glob(os.path.join(folder, "results", "recbole_*.json")))]
    models = [m for m in ["fm", "deepfm", "autoint", "optinter"] if any(r["model"] == m for r in runs)]
    print("| model | Affinity AUC | RecBole AUC | Affinity LogLoss | RecBole LogLoss | Affinity s/epoch | RecBole s/epoch | ratio (per seed) |")
    print("|---|---|---|---|---|---|---|---|")
    for m in models:
        a = {r["seed"]: r for r in runs if r["model"] == m and r["side"] == "affinity"}
        b = {r["seed"]: r for r in runs if r["model"] == m and r["side"] == "recbole"}
        seeds = sorted(set(a) & set(b))
        ratios = [a[s]["seconds"] / b[s]["seconds"] for s in seeds]
        ratio = f"{statistics.median(ratios):.3f} ({', '.join(f'{x:.3f}' for x in ratios)})" if ratios else "—"
        seconds = lambda side: f"{statistics.median(r['seconds'] for r in side.values()):.3f}" if side else "—"
        print(f"| {m} | {mean_std([r['auc'] for r in a.values()])} | {mean_std([r['auc'] for r in b.values()])} | "
              f"{mean_std([r['logloss'] for r in a.values()])} | {mean_std([r['logloss'] for r in b.values()])} | "
              f"{seconds(a)} | {seconds(b)} | {ratio} |")
    print(f"seeds: {sorted({r['seed'] for r in runs})}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--run":
        print(line(read(sys.argv[2])))
    elif len(sys.argv) == 3 and sys.argv[1] == "--table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)
