#!/usr/bin/env python3
"""The `implicit` package's ALS (CPU, conjugate gradient) on a LightGCN-format split, for Benchmarks/ials_vs_implicit.sh:
seconds per iteration (fit only, per-iteration times from its callback) and full-ranking test Recall@20 / NDCG@20
by Affinity's protocol (every item scored, the user's training items excluded, users with test items averaged).
implicit's confidence of an observed pair is alpha · r (1 for unobserved pairs): its alpha=A is Affinity's
`alpha=A-1, unobserved_weight=1`.
Usage: implicit_als.py DATA_DIR [--factors 64] [--iterations 15] [--reg 0.01] [--alpha 1] [--cg-steps 3] [--threads 2]"""
import argparse, json, statistics, time
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits
from implicit.cpu.als import AlternatingLeastSquares


def read_split(path):
    rows, cols = [], []
    for line in open(path):
        p = line.split()
        rows += [int(p[0])] * (len(p) - 1)
        cols += [int(x) for x in p[1:]]
    return np.array(rows), np.array(cols)


def evaluate(user_f, item_f, train, test, k=20):
    """Mean Recall@k and NDCG@k (RecBole's definitions) over users with test items; training items excluded."""
    users = np.unique(test.nonzero()[0])
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    recall = ndcg = 0.0
    for start in range(0, len(users), 1024):
        batch = users[start:start + 1024]
        scores = user_f[batch] @ item_f.T
        scores[train[batch].nonzero()] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        truth = test[batch]
        hits = np.take_along_axis(truth.toarray() > 0, top, 1)
        counts = np.diff(truth.indptr)
        recall += (hits.sum(1) / counts).sum()
        ideal = np.array([discount[:min(c, k)].sum() for c in counts])
        ndcg += ((hits * discount).sum(1) / ideal).sum()
    return recall / len(users), ndcg / len(users)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--reg", type=float, default=0.01)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--cg-steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    tr_u, tr_i = read_split(f"{a.data}/train.txt")
    te_u, te_i = read_split(f"{a.data}/test.txt")
    shape = (max(tr_u.max(), te_u.max()) + 1, max(tr_i.max(), te_i.max()) + 1)
    train = sp.csr_matrix((np.ones(len(tr_u), np.float32), (tr_u, tr_i)), shape=shape)
    train.sum_duplicates(); train.data[:] = 1
    test = sp.csr_matrix((np.ones(len(te_u), np.float32), (te_u, te_i)), shape=shape)
    test.sum_duplicates(); test.data[:] = 1
    with threadpool_limits(1, "blas"):  # implicit checks the BLAS threads when the model is made
        model = AlternatingLeastSquares(factors=a.factors, iterations=a.iterations, regularization=a.reg, alpha=a.alpha,
                                        num_threads=a.threads, random_state=0)
    model.cg_steps = a.cg_steps  # an attribute, not a constructor argument, in implicit 0.7
    seconds = []
    with threadpool_limits(1, "blas"):
        t0 = time.perf_counter()
        model.fit(train, show_progress=False, callback=lambda it, elapsed, loss: seconds.append(elapsed))
        fit = time.perf_counter() - t0
    r, n = evaluate(np.asarray(model.user_factors), np.asarray(model.item_factors), train, test)
    print(json.dumps({"bench": "implicit-als", "factors": a.factors, "iterations": a.iterations, "reg": a.reg,
                      "alpha": a.alpha, "cg_steps": a.cg_steps, "threads": a.threads, "fit_s": fit,
                      "median_iteration_s": statistics.median(seconds), "iteration_s": seconds,
                      "recall@20": float(r), "ndcg@20": float(n)}))


if __name__ == "__main__":
    main()
