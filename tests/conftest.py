"""Fixtures for the whole suite. Real-component fixtures live in tests/fixtures/, one module each,
and start at most one instance per test session (per pytest-xdist worker: `make test` runs two,
scheduled by `tests.fixtures.xdist_scope`, so one vLLM server serves every test that uses it)."""

import os
from typing import Any

import pytest

# Idle OpenMP threads sleep instead of spinning: two xdist workers, a vLLM server and a testbed
# build share two cores, and spinning threads steal them from the one doing work. Set before
# torch loads; numerics are unchanged.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tests.fixtures import VLLM_SERVER_MODULES, xdist_scope

pytest_plugins: list[str] = ["tests.fixtures.testbed", "tests.fixtures.models", "tests.fixtures.postgres",
                             "tests.fixtures.chromium"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if "vllm_server" in getattr(item, "fixturenames", ()) and path not in VLLM_SERVER_MODULES:
            raise pytest.UsageError(
                f"{item.nodeid} uses the shared vLLM server: add {path} to VLLM_SERVER_MODULES in "
                "tests/fixtures/__init__.py, so its users share one xdist worker and one server"
            )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units by `xdist_scope`. (xdist's own loadgroup marks cannot be used: they rename node
    ids through an attribute that pytest 9.2 no longer reads, so every test ran apart.)"""
    if config.getvalue("dist") not in ("load", "loadscope", "loadfile", "loadgroup"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByScope(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return ByScope(config, log)
