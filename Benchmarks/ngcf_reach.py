"""Share of Gowalla's nodes and edges that NGCF's last layer reads in one batch: the batch's users,
positive and negative items (2,048 pairs, negatives uniform) and their neighbours. Usage: python3 Benchmarks/ngcf_reach.py"""
import random
random.seed(1)
pairs, nu, ni = [], 0, 0
for line in open('../shared/data/gowalla/train.txt'):
    xs = list(map(int, line.split()))
    if not xs: continue
    nu = max(nu, xs[0] + 1)
    for i in xs[1:]: pairs.append((xs[0], i)); ni = max(ni, i + 1)
users = [[] for _ in range(nu)]; items = [[] for _ in range(ni)]
for u, i in pairs: users[u].append(nu + i); items[i].append(u)
neighbours = lambda v: users[v] if v < nu else items[v - nu]
for _ in range(3):
    rows = set()
    for u, i in random.sample(pairs, 2048): rows.update((u, nu + i, nu + random.randrange(ni)))
    reach = set(rows)
    for r in rows: reach.update(neighbours(r))
    edges = sum(len(neighbours(r)) for r in reach)
    print(f"batch rows {len(rows)}: nodes read {len(reach) / (nu + ni):.1%}, edges {edges / (2 * len(pairs)):.1%}")
