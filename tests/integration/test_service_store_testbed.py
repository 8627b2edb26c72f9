"""Service jobs on a real model: the HumanEval ci testbed (hf backend), run by a worker.

A scan job's report is the one the library gives for the same items and model (so the service
adds nothing and loses nothing), and finds what the testbed was built to show; a checklist job
runs the release checklist on the registered testbed model, through the same call cache.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from contam.benchmarks import load_benchmark
from contam.cache import CallCache
from contam.registry import create_model, get_probe
from contam.report import ScanReport
from contam.runner import Runner
from contam.scan import scan
from contam.verdicts import VerdictPolicy
from servers.settings import ServerSettings, WorkerSettings
from servers.store import JobStatus, open_store
from servers.worker import Worker

pytestmark = pytest.mark.integration


def _settings(tmp: Path, model_dir: Path) -> ServerSettings:
    return ServerSettings(
        store=f"sqlite:///{tmp / 'jobs.sqlite'}",
        cache_path=tmp / "calls.sqlite",
        models=({"name": "humaneval-ci", "spec": f"hf:{model_dir}"},),  # type: ignore[arg-type]
        worker=WorkerSettings(poll_s=0.05, cancel_check_s=0.5),
    )


def _uploaded(testbed: Path, partitions: tuple[str, ...]) -> list[dict[str, Any]]:
    bench = load_benchmark(str(testbed / "benchmark.jsonl"))
    rows = []
    for name in partitions:
        for item in bench.partitions[name].items:
            rows.append({"id": item.id, "partition": name, "text": item.text})
    return rows


def test_scan_and_checklist_jobs_on_the_testbed_model(testbed_ci: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path, testbed_ci / "model")
    store = open_store(settings.store)
    try:
        items = _uploaded(testbed_ci, ("seen_x16", "unseen"))
        request = {
            "benchmark": {"name": "humaneval-ci", "items": items},
            "model": "humaneval-ci",
            "probes": [{"name": "loss", "params": {}}],
            "partitions": ["seen_x16"],
            "reference": "unseen",
        }
        scan_job, _ = store.create_job("alice", "scan", request)
        checklist_job, _ = store.create_job(
            "alice",
            "checklist",
            {"model": "humaneval-ci", "benchmarks": [{"name": "humaneval"}], "probes": [{"name": "loss"}]},
        )
        worker = Worker(settings, store, "w")
        assert worker.run_once() is not None and worker.run_once() is not None

        done = store.get_job(scan_job.id, "alice")
        assert done is not None and done.status is JobStatus.DONE, done and done.error
        assert done.items_done == done.items_total == len([r for r in items if r["partition"] == "seen_x16"])
        report = ScanReport.model_validate_json(store.result(scan_job.id, "alice") or "")
        assert report.model.identity.backend == "hf"
        [result] = report.probes
        stat = result.statistic
        assert result.partition == "seen_x16" and stat is not None
        assert stat.p_value is not None and stat.p_value < 0.01  # the testbed saw seen_x16 16 times

        # The library, on the same items and model, gives the same results and verdicts.
        from servers.benchmarks import open_benchmark
        from servers.scans.schemas import BenchmarkSpec

        bench = open_benchmark(BenchmarkSpec.model_validate(request["benchmark"]))
        direct = asyncio.run(_library_scan(settings, bench))
        assert direct.probes == report.probes and direct.verdicts == report.verdicts
        assert direct.run.model_calls == 0 and direct.run.cache_hits == report.run.requests

        listed = store.get_job(checklist_job.id, "alice")
        assert listed is not None and listed.status is JobStatus.DONE, listed and listed.error
        checklist = json.loads(store.result(checklist_job.id, "alice") or "{}")
        assert checklist["identity"]["backend"] == "hf"
        assert [line["benchmark"] for line in checklist["lines"]] == ["humaneval"]
        # The testbed's items are HumanEval's: the scan job's calls were not made again.
        [run] = checklist["benchmarks"]
        assert run["requests"] == 164 and run["cache_hits"] == report.run.requests == 82
    finally:
        store.close()


async def _library_scan(settings: ServerSettings, bench: Any) -> ScanReport:
    entry = settings.model("humaneval-ci")
    assert entry is not None
    # The job's own call cache, as a `contam scan --cache` beside the service would use it.
    cache = CallCache(settings.cache_path)
    runner = Runner(create_model(entry.model_spec()), cache)
    try:
        return await scan(
            bench,
            runner,
            [get_probe("loss").from_options({})],
            model_spec=entry.name,
            partitions=["seen_x16"],
            reference=bench.partitions["unseen"],
            reference_label="unseen",
            policy=VerdictPolicy(alpha=0.05),
        )
    finally:
        await runner.aclose()
        cache.close()
