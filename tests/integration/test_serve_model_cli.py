"""`contam serve-model` starts a healthy server and stops it cleanly; `contam models check`
prints a served model's capabilities."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contam.cli.main import cli
from servers.vllm_server import free_port

pytestmark = pytest.mark.integration


def test_models_check_prints_capabilities(vllm_server: Any) -> None:
    result = CliRunner().invoke(cli, ["models", "check", vllm_server.spec])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["capabilities"]["prompt_logprobs"] is True
    assert info["capabilities"]["distribution"] == "approx_top_k"
    assert info["identity"]["backend"] == "openai" and info["checks"]["score"].startswith("ok")


def test_serve_model_serves_until_sigterm(served_model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "contam.cli.main", "serve-model", str(served_model_dir), "--port", str(port),
         "--name", "cli-tiny", "--log", str(tmp_path / "server.log")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = lines.get(timeout=600)
        assert first.strip() == f"openai:cli-tiny@http://127.0.0.1:{port}/v1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10) as resp:
            assert [m["id"] for m in json.loads(resp.read())["data"]] == ["cli-tiny"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        with socket.socket() as sock, pytest.raises(OSError):
            sock.connect(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
