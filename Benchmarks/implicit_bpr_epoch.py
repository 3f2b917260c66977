#!/usr/bin/env python3
"""Seconds per BPR iteration of the `implicit` package (CPU, Hogwild SGD) on a LightGCN-format train.txt,
timing only `fit` (no evaluation), for Benchmarks/bpr_vs_implicit.sh.
Usage: implicit_bpr_epoch.py DATA_DIR [--iterations 50] [--factors 64] [--threads 2]"""
import argparse, json, time
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits
from implicit.cpu.bpr import BayesianPersonalizedRanking

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("--iterations", type=int, default=50)
ap.add_argument("--factors", type=int, default=64)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
rows, cols = [], []
for line in open(f"{a.data}/train.txt"):
    p = line.split()
    rows += [int(p[0])] * (len(p) - 1)
    cols += [int(x) for x in p[1:]]
train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)))
model = BayesianPersonalizedRanking(factors=a.factors, iterations=a.iterations, num_threads=a.threads, random_state=0)
with threadpool_limits(1, "blas"):
    t0 = time.perf_counter()
    model.fit(train, show_progress=False)
    secs = time.perf_counter() - t0
print(json.dumps({"bench": "implicit-bpr", "iterations": a.iterations, "factors": a.factors, "threads": a.threads,
                  "s_per_iteration": secs / a.iterations}))
