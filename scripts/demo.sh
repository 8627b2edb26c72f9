#!/usr/bin/env bash
# The main job: scan a benchmark with the embedded default model and show the verdicts.
# The model is the HumanEval `ci` testbed: a small Llama trained here with known contamination
# (seen_x16/x4/x1 injected 16/4/1 times, unseen never), built once (about 4 minutes) and cached.
# It ends with the answer: one verdict per partition, then where the full report is (JSON,
# Markdown, and the standalone HTML page with the plots).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
TB=.contam/testbed/humaneval-ci
.venv/bin/contam testbed build --benchmark humaneval --preset ci --out "$TB" --cache-dir .contam/testbed/cache
# The progress bar goes to the terminal; the tables (verdicts, then every probe) to out/scan.txt.
.venv/bin/contam scan "$TB/benchmark.jsonl" --model "hf:$TB/model" \
    --partition seen_x16 --partition seen_x4 --partition seen_x1 --reference unseen \
    --probe loss --probe min_k --probe min_k_pp --probe zlib --out out/report.json >out/scan.txt
echo
sed -n '1,/^$/p' out/scan.txt # the verdict table: the first block of the summary
echo "per-probe table: out/scan.txt"
tail -n 1 out/scan.txt # report: out/report.json, out/report.md, HTML: out/report.html
