#!/usr/bin/env bash
# The main job: scan a benchmark with the embedded default model and write a report.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
.venv/bin/contam scan humaneval --model mock --probe loss --out out/report.json
