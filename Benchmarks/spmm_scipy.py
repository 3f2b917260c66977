#!/usr/bin/env python3
"""scipy.sparse reference for `affinity-bench spmm`: the symmetric-normalised user+item adjacency of a
LightGCN-format train.txt times a random [nodes, dim] float32 matrix. Usage: spmm_scipy.py DATA_DIR [dim] [repeats]"""
import sys, time, json
import numpy as np, scipy, scipy.sparse as sp

data, dim, repeats = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 64, int(sys.argv[3]) if len(sys.argv) > 3 else 50
rows, cols = [], []
for line in open(f"{data}/train.txt"):
    p = line.split()
    if len(p) > 1:
        rows += [int(p[0])] * (len(p) - 1); cols += [int(x) for x in p[1:]]
users, items = max(rows) + 1, max(cols) + 1
# Count items in test.txt too, as Affinity's catalogue does.
for line in open(f"{data}/test.txt"):
    p = line.split()
    if len(p) > 1: items = max(items, max(int(x) for x in p[1:]) + 1); users = max(users, int(p[0]) + 1)
r = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(users, items))
a = sp.bmat([[None, r], [r.T, None]]).tocsr().astype(np.float32)
deg = np.asarray(a.sum(axis=1)).ravel()
inv = np.where(deg > 0, 1 / np.sqrt(np.maximum(deg, 1e-12)), 0).astype(np.float32)
a = (sp.diags(inv) @ a @ sp.diags(inv)).tocsr().astype(np.float32)
x = np.random.default_rng(1).standard_normal((a.shape[1], dim)).astype(np.float32)
a @ x
times = []
for _ in range(repeats):
    t = time.perf_counter(); a @ x; times.append(time.perf_counter() - t)
print(json.dumps({"bench": "spmm_scipy", "nodes": a.shape[0], "nnz": int(a.nnz), "dim": dim,
                  "median_ms": float(np.median(times) * 1000), "scipy": scipy.__version__}))
