"""Jobs and workers on the SQLite store with the mock model: results, progress, cancel, take-over,
graceful stop, failures; the settings file; the `contam keys` commands."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contam.cache import CallCache
from contam.cli.main import cli
from contam.errors import InputError
from contam.report import ScanReport
from servers import jobs
from servers.settings import ModelEntry, ServerSettings, WorkerSettings, load_settings
from servers.store import JobStatus, Progress, open_store
from servers.store.sql import SQLStore
from servers.worker import Worker, WorkerPool

REPO = Path(__file__).resolve().parents[2]


def _items(n: int) -> list[dict[str, Any]]:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
    out = []
    for i in range(n):
        text = " ".join(words[(i + j) % len(words)] for j in range(8)) + f" number {i}"
        out.append({"id": f"t{i}", "partition": "test", "text": text})
        out.append({"id": f"u{i}", "partition": "unseen", "text": text[::-1]})
    return out


def scan_request(n: int = 6, **over: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "benchmark": {"name": "up", "items": _items(n)},
        "model": "mock",
        "probes": [{"name": "loss", "params": {}}],
        "partitions": ["test"],
        "reference": "unseen",
        "alpha": 0.05,
        "seed": 0,
    }
    req.update(over)
    return req


def settings_for(tmp: Path, *, delay: float = 0.0, lease_s: float = 30.0, **worker: Any) -> ServerSettings:
    spec = f"mock:calls={tmp / 'calls.jsonl'}" + (f",delay={delay}" if delay else "")
    return ServerSettings(
        store=f"sqlite:///{tmp / 'jobs.sqlite'}",
        cache_path=tmp / "calls.sqlite",
        models=({"name": "mock", "spec": spec},),  # type: ignore[arg-type]
        worker=WorkerSettings(lease_s=lease_s, poll_s=0.05, cancel_check_s=0.2, batch_size=1, **worker),
    )


def calls_made(tmp: Path) -> list[str]:
    path = tmp / "calls.jsonl"
    if not path.exists():
        return []
    return [json.dumps(json.loads(line)["request"], sort_keys=True) for line in path.read_text().splitlines()]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLStore]:
    s = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    assert isinstance(s, SQLStore)
    yield s
    s.close()


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def status_of(store: SQLStore, job_id: str) -> JobStatus:
    job = store.get_any_job(job_id)
    assert job is not None
    return job.status


# -- compute -----------------------------------------------------------------------------------


def test_a_scan_job_gives_a_report_with_verdicts_and_progress(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    job, _ = store.create_job("alice", "scan", scan_request(6))
    progress = jobs.JobProgress()
    result = jobs.compute(job, settings, progress)
    report = ScanReport.model_validate_json(result)
    assert report.model.spec == "mock"  # the registered name: never a server path or URL
    assert [p.partition for p in report.probes] == ["test"]
    assert report.verdicts is not None and [v.partition for v in report.verdicts.partitions] == ["test"]
    final = progress.snapshot()
    assert final.items_total == 6 and final.items_done == 6
    assert final.calls_total == final.calls_done == report.run.requests > 0


def test_the_job_report_equals_the_library_scan(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    job, _ = store.create_job("alice", "scan", scan_request(4))
    first = ScanReport.model_validate_json(jobs.compute(job, settings, jobs.JobProgress()))
    again = ScanReport.model_validate_json(jobs.compute(job, settings, jobs.JobProgress()))
    assert again.run.model_calls == 0 and again.run.cache_hits == first.run.requests  # all from the cache
    assert again.probes == first.probes and again.verdicts == first.verdicts


def test_the_call_cache_can_live_in_the_store(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path).model_copy(update={"call_cache": "store"})
    job, _ = store.create_job("alice", "scan", scan_request(4))
    first = ScanReport.model_validate_json(jobs.compute(job, settings, jobs.JobProgress()))
    again = ScanReport.model_validate_json(jobs.compute(job, settings, jobs.JobProgress()))
    assert first.run.model_calls == 8 and again.run.model_calls == 0 and again.run.cache_hits == 8
    assert not settings.cache_path.exists()  # no file cache was made
    from servers.store.calls import StoreCallCache

    assert len(StoreCallCache(store)) == 8


def test_a_bad_stored_request_fails_naming_the_field(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    job, _ = store.create_job("alice", "scan", scan_request(2, reference="nope", partitions=None))
    with pytest.raises(InputError) as info:
        jobs.compute(job, settings, jobs.JobProgress())
    assert info.value.field == "reference"
    unregistered, _ = store.create_job("alice", "scan", scan_request(2, model="gone"))
    with pytest.raises(InputError) as info:
        jobs.compute(unregistered, settings, jobs.JobProgress())
    assert info.value.field == "model"


def test_a_model_error_does_not_show_the_servers_paths(
    store: SQLStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative spec: the backend's message has the absolute path
    settings = settings_for(tmp_path).model_copy(
        update={"models": (ModelEntry(name="local", spec="hf:models/private-model"),)}
    )
    job, _ = store.create_job("alice", "scan", scan_request(2, model="local"))
    Worker(settings, store, "w").run_once()
    failed = store.get_job(job.id, "alice")
    assert failed is not None and failed.status is JobStatus.FAILED and failed.error
    assert str(tmp_path) not in failed.error and "models/private-model" not in failed.error
    assert "<model local>" in failed.error


def test_a_checklist_job_runs_the_release_checklist(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    request = {"model": "mock", "benchmarks": [{"name": "humaneval"}], "probes": [{"name": "loss"}]}
    job, _ = store.create_job("alice", "checklist", request)
    progress = jobs.JobProgress()
    result = json.loads(jobs.compute(job, settings, progress))
    assert [line["benchmark"] for line in result["lines"]] == ["humaneval"]
    assert (jobs.checklist_dir(settings, job.id) / result["lines"][0]["report"]).is_file()
    final = progress.snapshot()
    assert final.calls_done == final.calls_total > 0


def test_a_checklist_job_keeps_its_calls_where_the_config_says(store: SQLStore, tmp_path: Path) -> None:
    from servers.store.calls import StoreCallCache

    settings = settings_for(tmp_path).model_copy(update={"call_cache": "store"})
    request = {"model": "mock", "benchmarks": [{"name": "humaneval"}], "probes": [{"name": "loss"}]}
    job, _ = store.create_job("alice", "checklist", request)
    first = json.loads(jobs.compute(job, settings, jobs.JobProgress()))
    assert not settings.cache_path.exists()  # no file cache: machines sharing no disk share these
    stored = len(StoreCallCache(store))
    assert stored > 0
    assert first["benchmarks"][0]["model_calls"] == stored
    again, _ = store.create_job("alice", "checklist", request, idempotency_key="again")
    rerun = json.loads(jobs.compute(again, settings, jobs.JobProgress()))
    assert rerun["lines"] == first["lines"]
    assert rerun["benchmarks"][0]["model_calls"] == 0 and rerun["benchmarks"][0]["cache_hits"] == stored


# -- workers -----------------------------------------------------------------------------------


def test_a_worker_runs_a_queued_job_to_done(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    job, _ = store.create_job("alice", "scan", scan_request(3))
    worker = Worker(settings, store, "w1")
    assert worker.run_once() is not None
    done = store.get_job(job.id, "alice")
    assert done is not None and done.status is JobStatus.DONE and done.attempts == 1
    assert done.items_done == done.items_total == 3 and done.calls_done == done.calls_total > 0
    assert ScanReport.model_validate_json(store.result(job.id, "alice") or "").verdicts is not None
    assert worker.run_once() is None  # the queue is empty


def test_a_failing_job_is_marked_failed_with_its_reason(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    job, _ = store.create_job("alice", "scan", scan_request(2, model="gone"))
    Worker(settings, store, "w1").run_once()
    failed = store.get_job(job.id, "alice")
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and "'gone'" in failed.error and "model" in failed.error


def crash(job: Any, settings: Any, progress: Any) -> str:
    """A job whose code has a bug (run in the job's process, so defined at module level)."""
    raise RuntimeError("cannot open /srv/secret/weights.bin")


def test_a_crashing_job_fails_without_its_message(store: SQLStore, tmp_path: Path) -> None:
    job, _ = store.create_job("alice", "scan", scan_request(1))
    Worker(settings_for(tmp_path), store, "w", execute=crash).run_once()
    failed = store.get_job(job.id, "alice")
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error == "internal error (RuntimeError); see the worker's log"


def test_cancel_stops_a_running_job_and_keeps_its_cached_calls(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, delay=0.1, concurrency=1)
    job, _ = store.create_job("alice", "scan", scan_request(40))
    worker = Worker(settings, store, "w1")
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    wait_until(lambda: (store.get_any_job(job.id) or job).calls_done >= 3)
    store.request_cancel(job.id, "alice")
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert status_of(store, job.id) is JobStatus.CANCELLED
    made = calls_made(tmp_path)
    cache = CallCache(settings.cache_path)
    try:
        assert 0 < len(made) == len(cache) < 80  # of 80 (test and reference): it stopped early, and what it did is cached
    finally:
        cache.close()
    # The same scan again repeats none of those calls.
    again, _ = store.create_job("alice", "scan", scan_request(40))
    Worker(settings_for(tmp_path), store, "w2").run_once()
    assert status_of(store, again.id) is JobStatus.DONE
    all_calls = calls_made(tmp_path)
    assert len(all_calls) == len(set(all_calls)) == 80  # each text scored once in all


def test_a_dead_workers_job_is_taken_over_without_repeating_calls(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, delay=0.05, lease_s=0.6, concurrency=1)
    job, _ = store.create_job("alice", "scan", scan_request(20))
    # A worker that dies mid-job: its execution stops (as a killed process would) and its lease
    # is never renewed again.
    dying = Worker(settings, store, "dying")
    stop_dying = threading.Event()
    thread = threading.Thread(target=dying.run_once)
    original = store.heartbeat

    def heartbeat(job_id: str, worker: str, lease_s: float, progress: Progress) -> bool:
        if worker == "dying" and progress.calls_done >= 4:
            stop_dying.set()
            return False
        return original(job_id, worker, lease_s, progress)

    store.heartbeat = heartbeat  # type: ignore[method-assign]
    with _no_settle(store, "dying"):
        thread.start()
        wait_until(stop_dying.is_set)
        thread.join(timeout=30)
    store.heartbeat = original  # type: ignore[method-assign]
    held = store.get_any_job(job.id)
    assert held is not None and held.status is JobStatus.RUNNING and held.worker == "dying"
    survivor = Worker(settings, store, "survivor")
    wait_until(lambda: survivor.run_once() is not None)
    done = store.get_any_job(job.id)
    assert done is not None and done.status is JobStatus.DONE and done.attempts == 2
    made = calls_made(tmp_path)
    assert len(made) == len(set(made)) == 40  # 20 tested and 20 reference texts, each once


class _no_settle:
    """While active, `worker` cannot release, cancel or fail jobs: it behaves as a dead process."""

    def __init__(self, store: SQLStore, worker: str) -> None:
        self.store, self.worker = store, worker
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> None:
        for name in ("release", "mark_cancelled", "fail", "finish"):
            method = getattr(self.store, name)
            self.saved[name] = method

            def blocked(job_id: str, worker: str, *args: Any, _m: Any = method) -> None:
                if worker != self.worker:
                    _m(job_id, worker, *args)

            setattr(self.store, name, blocked)

    def __exit__(self, *exc: object) -> None:
        for name, method in self.saved.items():
            setattr(self.store, name, method)


def test_a_stopping_pool_hands_its_job_back(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, delay=0.1, concurrency=1)
    job, _ = store.create_job("alice", "scan", scan_request(30))
    pool = WorkerPool(settings, store, 2)
    pool.start()
    wait_until(lambda: (store.get_any_job(job.id) or job).calls_done >= 2)
    pool.stop(timeout=30)
    back = store.get_any_job(job.id)
    assert back is not None and back.status is JobStatus.QUEUED and back.worker is None
    assert store.live_workers(60) == 0  # both beat, and deregistered as they stopped
    Worker(settings_for(tmp_path), store, "next").run_once()
    assert status_of(store, job.id) is JobStatus.DONE
    made = calls_made(tmp_path)
    assert len(made) == len(set(made)) == 60


# -- settings and keys -------------------------------------------------------------------------


def test_the_example_config_loads() -> None:
    settings = load_settings(REPO / "examples" / "server.yaml")
    assert [m.name for m in settings.models] == ["mock", "humaneval-ci"]
    assert settings.model("humaneval-ci").spec == "hf:.contam/testbed/humaneval-ci/model"  # type: ignore[union-attr]
    assert settings.store.startswith("sqlite:///.contam/service/")


@pytest.mark.parametrize(
    ("body", "field", "line", "words"),
    [
        ("models:\n  - spec: mock\n", "models.0.name", 2, "Field required"),
        ("models:\n  - name: a\n    spec: mock\n  - name: a\n    spec: mock\n", "models", 1, "twice"),
        ("models:\n  - name: http://10.0.0.1\n    spec: mock\n", "models.0.name", 2, "pattern"),
        ("models:\n  - name: m\n    spec: 'openai:x'\n", "models.0.spec", 3, "openai:NAME@BASE_URL"),
        ("models:\n  - name: m\n    spec: mock\n    api_key: sk-123\n", "models.0.api_key", 4, "unknown key"),
        ("store: redis://x\n", "store", 1, "sqlite:///"),
    ],
)
def test_bad_settings_name_file_line_and_key(tmp_path: Path, body: str, field: str, line: int, words: str) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(body)
    with pytest.raises(InputError) as info:
        load_settings(path)
    assert info.value.field == field and info.value.path == str(path) and info.value.line == line
    assert words in info.value.message


def test_keys_commands_print_the_secret_once(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(f"store: sqlite:///{tmp_path / 'jobs.sqlite'}\n")
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--config", str(config), "--owner", "alice"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    key_id = token.split("_")[1]
    listed = runner.invoke(cli, ["keys", "list", "--config", str(config)])
    assert listed.exit_code == 0 and key_id in listed.stdout and "alice" in listed.stdout
    assert token.split("_", 2)[2] not in listed.output
    store = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    try:
        assert store.authenticate(token) is not None
        revoked = runner.invoke(cli, ["keys", "revoke", "--config", str(config), key_id])
        assert revoked.exit_code == 0
        assert store.authenticate(token) is None
    finally:
        store.close()
    again = runner.invoke(cli, ["keys", "revoke", "--config", str(config), key_id])
    assert again.exit_code == 2 and "no active key" in again.output


def record_priority(job: Any, settings: Any, progress: Any) -> str:
    """The CPU priority of the job's thread and of a thread it starts, as the job's result."""
    import os

    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    child: list[int] = []
    t = threading.Thread(target=lambda: child.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    t.start()
    t.join()
    return json.dumps([here, child[0]])


def test_jobs_run_at_the_configured_lower_cpu_priority(store: SQLStore, tmp_path: Path) -> None:
    """A job's process (and any thread it starts) yields the CPU to the API's requests."""
    import os

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    job, _ = store.create_job("alice", "scan", scan_request(1))
    Worker(settings_for(tmp_path, nice=7), store, "w", execute=record_priority).run_once()
    assert json.loads(store.result(job.id, "alice") or "null") == [min(19, base + 7)] * 2
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller's is untouched
