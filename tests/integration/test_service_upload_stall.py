"""One tenant's upload does not stall the others (issue 20, finding 6), against a real `contam serve`:
while a 100,000-line JSONL upload is sent, other clients' /healthz calls are answered during it,
not after it. A behaviour check with generous bounds; `bench/upload_stall.py` measures the p99."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from bench.upload_stall import NDJSON, item_lines, measure
from tests.fixtures.service import ServiceProcess, create_key, write_config

pytestmark = pytest.mark.integration


def test_healthz_is_answered_while_a_large_upload_is_parsed(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "server.yaml",
        store=f"sqlite:///{tmp_path / 'jobs.sqlite'}",
        cache_path=str(tmp_path / "calls.sqlite"),
        models=[{"name": "mock", "spec": "mock"}],
        limits={"max_items": 5000},
    )
    key = create_key(config, "alice")
    body = b"".join(item_lines(100_000, 60 * 100_000))
    with ServiceProcess(config, workers=0, log_path=tmp_path / "service.log") as service:
        measure(service.url, key, b"{}", "application/json", pollers=1, settle_s=0.1)  # warm up
        stall = measure(
            service.url, key, body, NDJSON, path="/v1/scans?model=mock&reference=unseen", pollers=2
        )
    assert stall.status == 422  # over the item limit: refused at line 5,001
    # Answered during the upload: many calls, each a small part of it (on the event loop, the
    # parse took seconds and every /healthz waited for all of it).
    assert len(stall.healthz_ms) >= 5, stall
    assert statistics.median(stall.healthz_ms) < max(100.0, stall.upload_s * 1000 / 4), stall
