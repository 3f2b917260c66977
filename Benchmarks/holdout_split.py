#!/usr/bin/env python3
"""A validation split carved from a LightGCN-format train.txt, for tuning on data whose own split is only
train/test (Gowalla): writes DST/train.txt (the rest of each user's training items) and DST/test.txt (a random
`--fraction` of each user's training items, at least one for users with two or more), seeded. Tune on DST, then
report the chosen settings on the original split; the original test.txt is never read.
Usage: holdout_split.py SRC_DIR DST_DIR [--fraction 0.2] [--seed 2020]"""
import argparse, os, random

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--fraction", type=float, default=0.2)
ap.add_argument("--seed", type=int, default=2020)
a = ap.parse_args()
rng = random.Random(a.seed)
os.makedirs(a.dst, exist_ok=True)
with open(f"{a.src}/train.txt") as source, open(f"{a.dst}/train.txt", "w") as train, open(f"{a.dst}/test.txt", "w") as valid:
    for line in source:
        user, *items = line.split()
        held = set(rng.sample(range(len(items)), max(1, round(a.fraction * len(items))))) if len(items) >= 2 else set()
        kept = [i for k, i in enumerate(items) if k not in held]
        train.write(" ".join([user] + kept) + "\n")
        if held:
            valid.write(" ".join([user] + [items[k] for k in sorted(held)]) + "\n")
