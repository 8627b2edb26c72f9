"""Kill `contam scan` mid-scan, re-run it, and get the same report without repeating completed calls."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from contam.report import ScanReport

N_ITEMS = 60


def _scan(bench: Path, out: Path, cache: Path, calls: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "contam.cli.main",
        "scan",
        str(bench),
        "--model",
        f"mock:delay=0.05,calls={calls}",
        "--reference",
        "unseen",
        "--partition",
        "suspect",
        "--batch-size",
        "2",
        "--concurrency",
        "2",
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--quiet",
    ]


def _calls(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.dumps(json.loads(line)["request"], sort_keys=True) for line in path.read_text().splitlines()]


def _cached_requests(cache: Path) -> set[str]:
    with sqlite3.connect(cache) as db:
        return {json.dumps(json.loads(r), sort_keys=True) for (r,) in db.execute("SELECT request FROM calls")}


def test_killed_scan_resumes_to_the_same_report(tmp_path: Path) -> None:
    bench = tmp_path / "b.jsonl"
    rows = [
        {"id": f"{p[0]}{i}", "text": f"{p} item {i} " + "word " * (i % 7), "partition": p}
        for p in ("suspect", "unseen")
        for i in range(N_ITEMS // 2)
    ]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cache, calls = tmp_path / "cache.sqlite", tmp_path / "calls.jsonl"
    out = tmp_path / "resumed.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen(_scan(bench, out, cache, calls), env=env)
    deadline = time.monotonic() + 60
    while len(_calls(calls)) < 12 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the scan finished before it could be killed"

    before_kill = _calls(calls)
    completed = _cached_requests(cache)
    assert 0 < len(completed) < N_ITEMS and not out.exists()

    done = subprocess.run(_scan(bench, out, cache, calls), env=env, timeout=120)
    assert done.returncode == 0
    after_kill = _calls(calls)[len(before_kill) :]
    # No call whose answer had been stored was made again; at most the in-flight ones were.
    assert not completed & set(after_kill)
    assert len(before_kill) + len(after_kill) - N_ITEMS <= 2 * 2
    assert sorted(set(before_kill) | set(after_kill)) == sorted(_cached_requests(cache))

    fresh = tmp_path / "fresh.json"
    subprocess.run(
        _scan(bench, fresh, tmp_path / "fresh.sqlite", tmp_path / "fresh_calls.jsonl"),
        env=env,
        timeout=120,
        check=True,
    )
    resumed_findings, fresh_findings = ScanReport.read(out).findings(), ScanReport.read(fresh).findings()
    # The specs differ only in the call-log path each run was given.
    assert resumed_findings["model"].pop("spec") != fresh_findings["model"].pop("spec")
    assert resumed_findings == fresh_findings
