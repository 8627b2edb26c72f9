"""The service end to end: `contam serve` (uvicorn) in a subprocess on loopback, a key from
`contam keys create`, a scan of the HumanEval ci testbed on the testbed model behind the shared
vLLM server, submitted as a JSONL upload and polled to its report.

Then the same scan again on a fresh store and cache, with the service SIGKILLed mid-job and
started again: the job completes with the same findings as the uninterrupted run, and the vLLM
server answered as many requests as for the uninterrupted run, counted at the server
(`vllm:request_success_total`), so no completed model call was made twice; only the one call in
flight at the kill may be answered once more (vLLM may finish it as the service dies, before the
service can cache it). The upstream API key never shows in a response, the report or the service's log.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.service import ServiceProcess, create_key, request, write_config

pytestmark = pytest.mark.integration

PER_PARTITION = 16
UPSTREAM_SECRET = "sk-e2e-upstream-secret-31337"
KEY_ENV = "CONTAM_E2E_UPSTREAM_KEY"
KILL_AFTER_CALLS = 6
IN_FLIGHT = 1  # the worker's concurrency in these tests: calls in flight when the service is killed


def answered_requests(vllm_server: Any) -> float:
    """Requests the vLLM server finished with an answer (stop or length), from its /metrics; an
    aborted request (its client went away) is not an answer and is left out."""
    root = vllm_server.base_url.removesuffix("/v1")
    with urllib.request.urlopen(root + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^vllm:request_success_total(\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
        if m and 'finished_reason="abort"' not in (m.group(1) or ""):
            total += float(m.group(2))
    return total


def benchmark_lines(testbed_ci: Path) -> bytes:
    """The first items of the most exposed and of the unseen partition, as the testbed wrote them."""
    rows = [json.loads(line) for line in (testbed_ci / "benchmark.jsonl").read_text().splitlines() if line]
    keep: list[dict[str, Any]] = []
    for name in ("seen_x16", "unseen"):
        keep += [r for r in rows if r["partition"] == name][:PER_PARTITION]
    assert len(keep) == 2 * PER_PARTITION
    return "".join(json.dumps(r) + "\n" for r in keep).encode()


def config_for(root: Path, vllm_server: Any) -> Path:
    return write_config(
        root / "server.yaml",
        store=f"sqlite:///{root / 'jobs.sqlite'}",
        cache_path=str(root / "calls.sqlite"),
        models=[
            {"name": "testbed", "spec": vllm_server.spec, "api_key_env": KEY_ENV},
            {"name": "mock", "spec": "mock"},
        ],
        # A short lease, so a restarted service takes the job over within seconds; one call in
        # flight, so at most one answer can be lost between the server and the cache at the kill.
        worker={"lease_s": 3.0, "poll_s": 0.2, "concurrency": 1, "batch_size": 1},
    )


def submit(service: ServiceProcess, key: str, lines: bytes) -> str:
    status, headers, body = request(
        "POST",
        service.url + "/v1/scans?model=testbed&probe=loss&probe=zlib&reference=unseen&name=humaneval-ci",
        key=key,
        data=lines,
        content_type="application/x-ndjson",
    )
    assert status == 202, body
    assert headers["location"].startswith("/v1/scans/")
    return str(json.loads(body)["id"])


def poll(service: ServiceProcess, key: str, job_id: str, until: Any, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = request("GET", f"{service.url}/v1/scans/{job_id}", key=key)
        assert status == 200, body
        job: dict[str, Any] = json.loads(body)
        if until(job):
            return job
        assert job["status"] not in ("failed", "cancelled"), job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not get there in {timeout} s")


def report_of(service: ServiceProcess, key: str, job_id: str) -> Any:
    from contam.report import ScanReport

    status, headers, body = request("GET", f"{service.url}/v1/scans/{job_id}/report", key=key)
    assert status == 200 and headers["content-type"].startswith("application/json"), body
    assert UPSTREAM_SECRET.encode() not in body
    return ScanReport.model_validate_json(body)


@pytest.fixture(scope="module")
def lines(testbed_ci: Path) -> bytes:
    return benchmark_lines(testbed_ci)


@pytest.fixture(scope="module")
def uninterrupted(vllm_server: Any, lines: bytes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("service-a")
    config = config_for(root, vllm_server)
    key = create_key(config, "alice")
    env = {KEY_ENV: UPSTREAM_SECRET}
    before = answered_requests(vllm_server)
    with ServiceProcess(config, workers=1, log_path=root / "service.log", env=env) as service:
        job_id = submit(service, key, lines)
        done = poll(service, key, job_id, lambda j: j["status"] == "done")
        report = report_of(service, key, job_id)
        md = request("GET", f"{service.url}/v1/scans/{job_id}/report?format=md", key=key)
        html = request("GET", f"{service.url}/v1/scans/{job_id}/report?format=html", key=key)
        listed = request("GET", f"{service.url}/v1/scans", key=key)
    return {
        "job": done,
        "report": report,
        "calls": answered_requests(vllm_server) - before,
        "md": md,
        "html": html,
        "listed": listed,
        "log": service.read_log(),
    }


def test_end_to_end_scan_through_uvicorn(uninterrupted: dict[str, Any]) -> None:
    job, report = uninterrupted["job"], uninterrupted["report"]
    assert job["attempts"] == 1
    assert job["progress"]["calls_done"] == job["progress"]["calls_total"] > 0
    assert report.benchmark.name == "humaneval-ci"
    assert {(r.probe, r.partition) for r in report.probes} == {("loss", "seen_x16"), ("zlib", "seen_x16")}
    loss = next(r for r in report.probes if r.probe == "loss")
    # every item scored, or listed as longer than the model's context
    assert len(loss.items) + len(loss.unscored) == PER_PARTITION and len(loss.items) >= PER_PARTITION // 2
    assert loss.statistic is not None
    # The testbed model saw seen_x16 sixteen times: its loss tells it from unseen items.
    assert loss.statistic.effect is not None and loss.statistic.effect > 0.5
    assert uninterrupted["calls"] > 0
    status, headers, body = uninterrupted["md"]
    assert status == 200 and headers["content-type"].startswith("text/markdown") and b"seen_x16" in body
    status, headers, body = uninterrupted["html"]
    assert status == 200 and headers["content-type"].startswith("text/html") and b"<svg" in body
    assert json.loads(uninterrupted["listed"][2])["items"][0]["id"] == job["id"]


def test_killed_mid_job_the_restarted_service_finishes_it_with_no_call_twice(
    vllm_server: Any, lines: bytes, uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    config = config_for(tmp_path, vllm_server)
    key = create_key(config, "alice")
    env = {KEY_ENV: UPSTREAM_SECRET}
    before = answered_requests(vllm_server)
    service = ServiceProcess(config, workers=1, log_path=tmp_path / "service.log", env=env).start()
    try:
        job_id = submit(service, key, lines)
        seen = poll(
            service, key, job_id, lambda j: j["progress"]["calls_done"] >= KILL_AFTER_CALLS, timeout=300
        )
        assert seen["status"] == "running", "the job finished before the kill"
        service.kill()  # SIGKILL: no shutdown, no lease handed back
        service.start()
        done = poll(service, key, job_id, lambda j: j["status"] == "done")
        report = report_of(service, key, job_id)
    finally:
        service.stop()
    assert done["attempts"] >= 2, "the job was taken over after the restart"
    assert report.findings() == uninterrupted["report"].findings()
    # Every call the service had completed (answered and cached) before the kill is answered from
    # its cache after the restart. The one call in flight at the kill (concurrency 1) may have been
    # answered by vLLM in the instant the service died, before it could cache the answer; it is
    # the only scan call that can be sent again. Besides, every attempt builds its model client,
    # which asks the server for its capabilities with one 1-token echo completion (not a scan
    # call, never cached): one more per attempt after the first.
    setup = done["attempts"] - 1
    extra = answered_requests(vllm_server) - before - uninterrupted["calls"]
    assert 0 <= extra - setup <= IN_FLIGHT, (
        f"{extra} requests more than an uninterrupted run, {setup} of them capability probes of the "
        "restarted attempts: completed calls repeated"
    )
    log = service.read_log() + uninterrupted["log"]
    assert UPSTREAM_SECRET not in log


def mock_run(root: Path, lines: bytes, *, kill: bool) -> tuple[Any, int, dict[str, Any]]:
    """One scan on a slow mock model that logs every completed call (its own call counter)."""
    root.mkdir()
    config = write_config(
        root / "server.yaml",
        store=f"sqlite:///{root / 'jobs.sqlite'}",
        cache_path=str(root / "calls.sqlite"),
        models=[{"name": "slow", "spec": f"mock:delay=0.3,calls={root / 'model-calls.jsonl'}"}],
        worker={"lease_s": 3.0, "poll_s": 0.2, "concurrency": 1, "batch_size": 1},
    )
    key = create_key(config, "alice")
    service = ServiceProcess(config, workers=1, log_path=root / "service.log").start()
    try:
        status, _, body = request(
            "POST", service.url + "/v1/scans?model=slow&probe=loss&reference=unseen",
            key=key, data=lines, content_type="application/x-ndjson",
        )  # fmt: skip
        assert status == 202, body
        job_id = json.loads(body)["id"]
        if kill:
            seen = poll(service, key, job_id, lambda j: j["progress"]["calls_done"] >= KILL_AFTER_CALLS)
            assert seen["status"] == "running"
            service.kill()
            service.start()
        done = poll(service, key, job_id, lambda j: j["status"] == "done")
        report = report_of(service, key, job_id)
    finally:
        service.stop()
    calls = len((root / "model-calls.jsonl").read_text().splitlines())
    return report, calls, done


def test_killed_mid_job_on_the_mock_model_counted_by_its_call_log(tmp_path: Path) -> None:
    """The same restart on the scripted model, whose call log counts completed calls exactly: a
    check of the service's restart path that needs no vLLM server."""
    items = [
        {"id": f"i{k}", "partition": "test" if k < 10 else "unseen", "text": f"item number {k} with words"}
        for k in range(20)
    ]
    lines = "".join(json.dumps(i) + "\n" for i in items).encode()
    baseline, baseline_calls, _ = mock_run(tmp_path / "a", lines, kill=False)
    report, calls, done = mock_run(tmp_path / "b", lines, kill=True)
    assert done["attempts"] == 2
    assert report.findings() == baseline.findings()
    assert calls == baseline_calls > 0
