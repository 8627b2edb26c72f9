# The two commands a fresh machine needs (see README): `make demo` and `make test`.
.PHONY: setup demo test lint unit

setup:
	bash scripts/setup.sh

# The main job: a real scan on the embedded default model, no server to start by hand.
demo: setup
	bash scripts/demo.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

# Everything CI runs: lint, types, unit and integration tests (real vLLM server, uvicorn, Redis, Ray).
# Two pytest-xdist workers: much of the suite waits on one core (vLLM start-up, servers, browsers)
# while the other is idle. Users of the shared vLLM server run in one worker (tests.fixtures.xdist_scope).
test: lint
	.venv/bin/python -m pytest -q -n 2 --dist loadscope --durations=25

unit: setup
	.venv/bin/python -m pytest -q tests/unit
