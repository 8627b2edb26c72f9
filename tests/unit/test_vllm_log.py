"""Reading the cause of a vLLM server's death out of its log, and showing it when the server exits.

The logs under data/ are real vLLM 0.32 (CPU) output, with only the paths shortened:
- vllm_head_dim_16.log: a model with head size 16 starts, answers /health, and dies on its first
  completion (the worker's traceback, the engine core's and the API server's, then shutdown noise
  and nanobind leak warnings);
- vllm_max_model_len.log: --max-model-len above the model's positions, a pydantic error at start;
- vllm_bad_arg.log: an argparse error (the usage text trimmed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from servers.vllm_server import LogError, ServerError, VLLMServer, first_error, is_noise

DATA = Path(__file__).parent / "data"
FAKE = Path(__file__).parent / "fake_vllm_server.py"
HEAD_DIM_16 = "RuntimeError: Unsupported CPU attention configuration: head_dim=16 isa=2 kv_cache_idx=0"


def log(name: str) -> str:
    return (DATA / name).read_bytes().decode()  # as the server reads it: a bare \r ends no line


def test_first_error_is_the_first_tracebacks_exception_not_the_shutdown_noise() -> None:
    found = first_error(log("vllm_head_dim_16.log"))
    assert found == LogError(message=HEAD_DIM_16, source="Worker pid=4684", line=142)


def test_first_error_keeps_an_exceptions_indented_continuation_lines() -> None:
    found = first_error(log("vllm_max_model_len.log"))
    assert found is not None and found.source is None
    first, *rest = found.message.splitlines()
    assert first == "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig"
    assert "User-specified max_model_len (4096) is greater than the derived max_model_len" in rest[0]


def test_first_error_reads_an_argparse_error() -> None:
    found = first_error(log("vllm_bad_arg.log"))
    assert found is not None
    assert found.message.startswith("api_server.py: error: argument --dtype: invalid choice: 'bogus'")


def test_a_log_without_an_error_has_none() -> None:
    lines = log("vllm_head_dim_16.log").splitlines()
    healthy = "\n".join(lines[:105])  # up to the last request before the crash
    assert "OSError: [Errno 24]" in healthy  # a WARNING that names an exception is not an error
    assert first_error(healthy) is None
    shutdown = "\n".join(lines[-45:])  # shutdown messages and nanobind leak warnings only
    assert first_error(shutdown) is None
    assert first_error("") is None


def test_an_error_log_line_counts_when_there_is_no_traceback() -> None:
    text = (
        "(APIServer pid=7) INFO 12-01 19:52:14 [entry.py:136] Supported tasks: ['generate']\n"
        "(APIServer pid=7) WARNING 12-01 19:52:14 [cpu.py:224] Triton is not installed.\n"
        "(APIServer pid=7) INFO 12-01 19:52:18 [utils.py:628] [shutdown] Process manager: send sigterm\n"
        "(EngineCore pid=8) ERROR 12-01 19:52:18 [core.py:99] Engine core died: out of KV cache blocks\n"
    )
    assert first_error(text) == LogError(
        message="Engine core died: out of KV cache blocks", source="EngineCore pid=8", line=4
    )


def test_another_processs_lines_inside_a_traceback_do_not_end_it() -> None:
    text = (
        "(EngineCore pid=8) Traceback (most recent call last):\n"
        '(EngineCore pid=8)   File "core.py", line 1, in run\n'
        "(APIServer pid=7) INFO 12-01 19:52:18 [api.py:1] still waiting\n"
        "(EngineCore pid=8)     raise ValueError('bad config')\n"
        "(EngineCore pid=8) ValueError: bad config\n"
    )
    assert first_error(text) == LogError(message="ValueError: bad config", source="EngineCore pid=8", line=5)


@pytest.mark.parametrize(
    "line",
    [
        "nanobind: leaked 4 instances!",
        ' - leaked type "triton._C.libtriton.ir.location"',
        "(APIServer pid=4558) INFO 12-01 19:52:18 [core_client.py:777] [shutdown] MPClient: complete",
        "INFO:     Shutting down",
        "  warnings.warn('resource_tracker: There appear to be %d '",
    ],
)
def test_shutdown_and_leak_lines_are_noise(line: str) -> None:
    assert is_noise(line)


def test_an_exception_line_is_not_noise() -> None:
    assert not is_noise(f"(Worker pid=4684) ERROR 12-01 19:52:18 [multiproc_executor.py:1063] {HEAD_DIM_16}")


# The messages a user sees when the server exits, through a stand-in that replays a real log.


class FakeServer(VLLMServer):
    def __init__(self, model_dir: Path, mode: str, fixture: str, *, log_path: Path) -> None:
        super().__init__(model_dir, start_timeout=60.0, log_path=log_path)
        self.mode, self.fixture = mode, fixture

    def command(self) -> list[str]:
        return [sys.executable, str(FAKE), str(self.port), self.name, str(DATA / self.fixture), self.mode]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    return folder


def assert_cause_then_log_then_tail(message: str, cause: str, log_path: Path) -> None:
    assert cause in message, message
    assert f"log: {log_path}" in message, message
    assert message.index(cause) < message.index(f"log: {log_path}")
    assert "nanobind" not in message and "[shutdown]" not in message, message


def test_a_server_that_exits_at_start_names_the_exception_and_the_log(
    model_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "server.log"
    log_path.write_text("ValueError: an older run's error, before this start\n")
    server = FakeServer(model_dir, "exit", "vllm_max_model_len.log", log_path=log_path)
    try:
        with pytest.raises(ServerError) as caught:
            server.start()
    finally:
        server.stop()
    message = str(caught.value)
    assert message.startswith("vLLM server exited with code 1")
    assert_cause_then_log_then_tail(message, "ValidationError: 1 validation error for ModelConfig", log_path)
    assert "older run" not in message
    assert f"log: {log_path}, line 56\n" in message  # counted in the whole file, earlier runs too


def test_a_model_that_dies_on_its_first_request_fails_to_start(model_dir: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    server = FakeServer(model_dir, "die-on-request", "vllm_head_dim_16.log", log_path=log_path)
    try:
        with pytest.raises(ServerError) as caught:
            server.start()
    finally:
        server.stop()
    message = str(caught.value)
    assert "first request" in message.splitlines()[0]
    assert_cause_then_log_then_tail(message, HEAD_DIM_16, log_path)
    assert f"log: {log_path}, line 142\n" in message


def test_serve_model_names_the_exception_when_the_server_dies_later(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def command(self: VLLMServer) -> list[str]:
        fixture = str(DATA / "vllm_head_dim_16.log")
        return [sys.executable, str(FAKE), str(self.port), self.name, fixture, "die-later"]

    monkeypatch.setattr(VLLMServer, "command", command)
    from contam.cli.main import cli

    log_path = tmp_path / "server.log"
    result = CliRunner().invoke(cli, ["serve-model", str(model_dir), "--log", str(log_path)])
    assert result.exit_code == 1, result.output
    assert "ready" in result.stderr  # the first request succeeded; the server died after it
    after = result.stderr.split("ready; Ctrl-C stops it\n", 1)[1]
    assert after.lstrip().startswith("vLLM server exited with code 1"), after
    assert_cause_then_log_then_tail(after, HEAD_DIM_16, log_path)
