"""schemathesis against the running service's own OpenAPI schema: for every operation, examples
generated from the schema (its own examples first), sent with a valid key to `contam serve` on
loopback. No response may be a 5xx, and every one must match the schema: documented status,
content type, headers and body.

Bounded: 25 examples per operation. Workers are off, so submitted jobs stay queued and the run
does not depend on a model; the per-key job limit is high so submits are validated, not refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.service import ServiceProcess, write_config

pytestmark = pytest.mark.integration


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: object, value: object) -> bytes:
    """A JSONL body is a string in the schema; sent as its UTF-8 bytes (anything else as JSON)."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, str]]:
    from servers.store import open_store

    root = tmp_path_factory.mktemp("schemathesis")
    store_url = f"sqlite:///{root / 'jobs.sqlite'}"
    config = write_config(
        root / "server.yaml",
        store=store_url,
        cache_path=str(root / "calls.sqlite"),
        models=[{"name": "mock", "spec": "mock"}],
        limits={
            "rate_per_s": 10_000.0,
            "burst": 10_000,
            "max_active_jobs": 100_000,
            "max_body_bytes": 1_000_000,
        },
    )
    store = open_store(store_url)
    _, key = store.create_key("fuzzer")
    store.close()
    with ServiceProcess(config, workers=0, log_path=root / "service.log") as proc:
        yield proc, key
        log = proc.read_log()
    assert "Traceback" not in log, log[-4000:]


def test_service_conforms_to_its_schema(service: tuple[ServiceProcess, str]) -> None:
    """Each operation in turn, with hypothesis driving schemathesis's strategy for it (this
    pytest's node API does not suit schemathesis's lazy `from_fixture` loader)."""
    proc, key = service
    schema = schemathesis.openapi.from_url(proc.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    headers = {"Authorization": f"Bearer {key}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

        check()


def test_the_schema_was_exercised(service: tuple[ServiceProcess, str], tmp_path: Path) -> None:
    """The run above reached the handlers: jobs were stored from generated valid requests."""
    from servers.store import open_store

    proc, _ = service
    store_url = next(line for line in proc.config.read_text().splitlines() if line.startswith("store:"))
    store = open_store(store_url.split(":", 1)[1].strip())
    try:
        jobs, _ = store.list_jobs("fuzzer", 1000)
    finally:
        store.close()
    assert jobs, "no generated request was accepted: the examples never passed validation"
