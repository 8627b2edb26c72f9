"""schemathesis against the running service's own OpenAPI schema: for every operation, examples
generated from the schema (its own examples first), sent with a valid key to `contam serve` on
loopback. No response may be a 5xx, and every one must match the schema: documented status,
content type, headers and body.

Bounded: 25 examples per operation. Workers are off, so submitted jobs stay queued and the run
does not depend on a model; the per-key job limit is high so submits are validated, not refused.
Probe parameters are in the schema too (one component per probe, with this server's caps and
its registered models and template sets), so the run generates them, at and over the caps.
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
    (root / "house.json").write_text(json.dumps({"guided": {"completion": "{dataset}: {first_piece}"}}))
    config = write_config(
        root / "server.yaml",
        store=store_url,
        cache_path=str(root / "calls.sqlite"),
        models=[{"name": "mock", "spec": "mock"}, {"name": "clean", "spec": "mock:name=clean"}],
        templates=[{"name": "house", "path": str(root / "house.json")}],
        caps={"permutations": 50, "samples": 8, "max_tokens": 64},
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



def _inline(schema: Any, components: dict[str, Any]) -> Any:
    """`schema` with every `#/components/schemas/X` reference replaced by X (no cycles here)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            return _inline(components[ref.rsplit("/", 1)[1]], components)
        return {k: _inline(v, components) for k, v in schema.items() if k != "discriminator"}
    if isinstance(schema, list):
        return [_inline(v, components) for v in schema]
    return schema


def test_probe_parameters_are_fuzzed_from_the_schema(service: tuple[ServiceProcess, str]) -> None:
    """schemathesis's own generation for `POST /v1/scans`, with the benchmark and model pinned to
    registered ones so that the probes decide: every generated probe list is sent, and whatever
    the server accepts validates against the published per-probe schema (caps and registered
    names included); nothing is a 5xx."""
    import jsonschema

    from tests.fixtures.service import request

    proc, key = service
    schema = schemathesis.openapi.from_url(proc.url + "/openapi.json")
    submit = next(
        r.ok()
        for r in schema.get_all_operations()
        if r.ok().method.upper() == "POST" and r.ok().path == "/v1/scans"
    )
    published = request("GET", proc.url + "/openapi.json")[2]
    components = json.loads(published)["components"]["schemas"]
    probe_list = {"type": "array", "items": _inline(components["ProbeSpec"], components)}
    seen = {"accepted": 0, "refused": 0, "with_params": 0}

    @given(case=submit.as_strategy(media_type="application/json"))
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case: Any) -> None:
        body = case.body if isinstance(case.body, dict) else {}
        probes = body.get("probes") or [{"name": "loss"}]
        sent = {"benchmark": {"name": "humaneval"}, "model": "mock", "probes": probes}
        status, _, answer = request("POST", proc.url + "/v1/scans", key=key, body=sent)
        assert status < 500, answer[:500]
        if status in (200, 202):
            seen["accepted"] += 1
            seen["with_params"] += any(p.get("params") for p in probes if isinstance(p, dict))
            jsonschema.validate(probes, probe_list)  # accepted => within the published caps and names
        else:
            assert status == 422, answer[:500]
            seen["refused"] += 1

    check()
    assert seen["accepted"] and seen["refused"] and seen["with_params"], seen
