#!/usr/bin/env python3
"""Writes a simulated missing-not-at-random split of a RecBole atomic dataset as RecBole benchmark files, whose test
part is closer to missing-at-random than the interactions it comes from (a stand-in for Yahoo! R3's random test set).

  Benchmarks/mnar_split.py DATA_FOLDER OUT_FOLDER SEED        (writes OUT_FOLDER/NAME-mnar/NAME-mnar.{train,valid,test}.inter)

Construction, with n_i the number of interactions of item i in the whole data and Python's seeded generator:
 1. Test: 10% of the interactions (rounded down), drawn without replacement with probability proportional to 1/n_i
    (Efraimidis-Spirakis: key u^(n_i) for u uniform in (0, 1), largest keys first), skipping an interaction once its
    item already gave floor(n_i / 2) to the test, so every item keeps at least half of its interactions for
    training and validation (items seen once never enter the test). A popular item thus gives the test about as
    many interactions as a rare one, where a random split gives it n_i / 10.
 2. Validation: a uniformly random 1/9 of the remaining interactions (so about 10% of all; missing-not-at-random like
    the training part, as a deployed system's logs would be).
 3. Training: the rest (about 80%).
"""
import os, random, sys

data, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
name = os.path.basename(os.path.normpath(data))
with open(os.path.join(data, name + ".inter")) as f:
    header = f.readline()
    rows = [line for line in f if line.strip()]
items = [line.split("\t")[1] for line in rows]
popularity = {}
for i in items:
    popularity[i] = popularity.get(i, 0) + 1

rng = random.Random(seed)
keys = [rng.random() ** popularity[i] for i in items]  # weight 1/n_i
order = sorted(range(len(rows)), key=lambda r: -keys[r])
test_size = len(rows) // 10
taken, test = {}, set()
for r in order:
    if len(test) == test_size:
        break
    i = items[r]
    if taken.get(i, 0) < popularity[i] // 2:
        taken[i] = taken.get(i, 0) + 1
        test.add(r)
rest = [r for r in range(len(rows)) if r not in test]
rng.shuffle(rest)
valid = set(rest[: len(rest) // 9])

folder = os.path.join(out, name + "-mnar")
os.makedirs(folder, exist_ok=True)
parts = {"train": [], "valid": [], "test": []}
for r in range(len(rows)):
    parts["test" if r in test else "valid" if r in valid else "train"].append(rows[r])
for part, lines in parts.items():
    with open(os.path.join(folder, f"{name}-mnar.{part}.inter"), "w") as f:
        f.write(header)
        f.writelines(lines)


def share_of_top_decile(lines):
    """Share of a part's interactions on the 10% most popular items (by whole-data popularity)."""
    ranked = sorted(popularity, key=lambda i: -popularity[i])
    top = set(ranked[: max(1, len(ranked) // 10)])
    return sum(line.split("\t")[1] in top for line in lines) / max(1, len(lines))


print(f"{folder}: train {len(parts['train'])}, valid {len(parts['valid'])}, test {len(parts['test'])}; "
      f"share on the top-10% items: train {share_of_top_decile(parts['train']):.3f}, test {share_of_top_decile(parts['test']):.3f}")
