"""`contam serve-model` on a model that vLLM loads but cannot run: it must fail to start, with the
exception that killed the server and the log's path, never print `ready`.

Head size 16 (hidden 64, 4 heads) has no vLLM CPU attention kernel; the server starts, answers
/health and /v1/models, and dies on its first request. One server start (about 60-90 s).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.models import TinySpec, build_tiny_model

pytestmark = pytest.mark.integration

HEAD_DIM_16 = TinySpec(hidden_size=64, heads=4, intermediate_size=128, train_steps=0)


def test_serve_model_names_the_exception_of_a_model_that_dies_on_its_first_request(tmp_path: Path) -> None:
    model = build_tiny_model(HEAD_DIM_16)
    log_path = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "contam.cli.main", "serve-model", str(model), "--log", str(log_path),
         "--timeout", "400"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()
    stderr = proc.stderr
    assert stderr is not None

    def pump() -> None:
        for line in stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 500
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            assert not line.startswith("ready"), "".join(seen)
        err = "".join(seen)
        assert proc.wait(timeout=60) == 1, err
        assert proc.stdout is not None and "openai:" not in proc.stdout.read(), err
        report = err.split("error: ", 1)[-1]
        assert report.startswith("vLLM server exited with code"), err
        assert "on its first request" in report.splitlines()[0], err
        # The cause comes first, then the log's path; not the shutdown noise that ends the log.
        cause, log_line = report.splitlines()[1:3]
        assert "RuntimeError: Unsupported CPU attention configuration: head_dim=16" in cause, err
        assert log_line.startswith(f"log: {log_path}, line "), err
        assert "nanobind" not in err and "[shutdown]" not in err, err
    finally:
        if proc.poll() is None:
            # SIGTERM first: serve-model then stops the server it started (its own process group).
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
