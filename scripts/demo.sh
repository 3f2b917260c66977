#!/usr/bin/env bash
# The main job on the built-in data: train and evaluate the baselines on MovieLens ml-latest-small
# (all ratings as implicit feedback, per-user random 8:1:1 split, seed 2020) and print the metrics table.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product affinity
.build/release/affinity train --dataset ml-latest-small --model mostpop,itemknn,ease "$@"
