#!/usr/bin/env bash
# The main job: scan a benchmark with the embedded default model and write a report.
# The model is the HumanEval `ci` testbed: a small Llama trained here with known contamination
# (seen_x16/x4/x1 injected 16/4/1 times, unseen never), built once (about 4 minutes) and cached.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
TB=.contam/testbed/humaneval-ci
.venv/bin/contam testbed build --benchmark humaneval --preset ci --out "$TB" --cache-dir .contam/testbed/cache
.venv/bin/contam scan "$TB/benchmark.jsonl" --model "hf:$TB/model" \
    --partition seen_x16 --partition seen_x4 --partition seen_x1 --reference unseen \
    --probe loss --out out/report.json
