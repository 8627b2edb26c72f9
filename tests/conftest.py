"""Fixtures for the whole suite. Real-component fixtures live in tests/fixtures/, one module each,
and start at most one instance per test session (per pytest-xdist worker: `make test` runs two,
and every module using the shared vLLM server is in one xdist group, so one server serves all)."""

import os

import pytest

# Idle OpenMP threads sleep instead of spinning: two xdist workers, a vLLM server and a testbed
# build share two cores, and spinning threads steal them from the one doing work. Set before
# torch loads; numerics are unchanged.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tests.fixtures import VLLM_SERVER_GROUP

pytest_plugins: list[str] = ["tests.fixtures.testbed", "tests.fixtures.models", "tests.fixtures.postgres",
                             "tests.fixtures.chromium"]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "vllm_server" not in getattr(item, "fixturenames", ()):
            continue
        groups = {str(m.args[0]) for m in item.iter_markers("xdist_group") if m.args}
        if VLLM_SERVER_GROUP not in groups:
            raise pytest.UsageError(
                f"{item.nodeid} uses the shared vLLM server: mark its module "
                f"pytest.mark.xdist_group(VLLM_SERVER_GROUP), so its users share one xdist worker "
                "and one server instead of starting another"
            )
