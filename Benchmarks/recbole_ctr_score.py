#!/usr/bin/env python3
"""The peer reference of `affinity-bench ctr-score`: one request's latency of RecBole 1.2.1 scoring CANDIDATES items
for one user with a context model (FM, DeepFM, AutoInt) on CPU with 2 threads, ml-100k with the fields of
Benchmarks/ctr.sh. Per request: a random user and random items, their feature fields joined as RecBole's data
loaders do (`dataset.join`), then `model.predict` under `torch.no_grad()`; median and 99th percentile over
REQUESTS requests, and the median of `model.predict` alone. The weights are the initial ones: a forward pass costs the same trained or not.

  recbole_ctr_score.py DATA_DIR MODEL [CANDIDATES (1000)] [REQUESTS (300)]
Run with the peers' virtualenv (../shared/peers/setup_venv.sh).
"""
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
import torch  # noqa: E402

torch.set_num_threads(2)
from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset  # noqa: E402
from recbole.data.interaction import Interaction  # noqa: E402
from recbole.utils import get_model, init_seed  # noqa: E402


def main():
    data, model_name = sys.argv[1], sys.argv[2]
    candidates = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    requests = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    config = Config(model=model_name, dataset="ml-100k", config_dict={
        "data_path": data, "use_gpu": False, "show_progress": False, "embedding_size": 10,
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"], "user": ["user_id", "age", "gender", "occupation"],
                     "item": ["item_id", "release_year", "class"]},
        "threshold": {"rating": 4},
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": None, "mode": "labeled"},
        "metrics": ["AUC", "LogLoss"], "valid_metric": "AUC"})
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(2)
    dataset = create_dataset(config)
    dataset.build()  # the split, which also turns the feature tables into tensors as data_preparation does
    model = get_model(config["model"])(config, dataset).eval()
    generator = torch.Generator().manual_seed(1)
    times, forward = [], []
    with torch.no_grad():
        for r in range(requests + 10):
            user = torch.randint(1, dataset.user_num, (1,), generator=generator).repeat(candidates)
            items = torch.randint(1, dataset.item_num, (candidates,), generator=generator)
            start = time.perf_counter()
            batch = dataset.join(Interaction({dataset.uid_field: user, dataset.iid_field: items}))
            joined = time.perf_counter()
            scores = model.predict(batch)
            end = time.perf_counter()
            assert scores.shape[0] == candidates
            if r >= 10:
                times.append((end - start) * 1000)
                forward.append((end - joined) * 1000)
    times.sort()
    print(json.dumps({"bench": "recbole-ctr-score", "model": model_name, "candidates": candidates, "requests": requests,
                      "median_ms": statistics.median(times), "p99_ms": times[len(times) * 99 // 100],
                      "predict_only_median_ms": statistics.median(forward),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
