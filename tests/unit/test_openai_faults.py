"""The openai backend against a local stub HTTP server: retries, Retry-After, secrets, capabilities.

The stub speaks just enough of the OpenAI wire format and follows a script of faults per attempt,
so the tests can count exactly how many requests reached the server.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from contam.cache import CallCache
from contam.errors import ModelCallError
from contam.models.base import GenerateRequest, PartialBatchError, ScoreRequest
from contam.models.distribution import stats_from_logprobs
from contam.models.openai_http import OpenAIModel, create, parse_retry_after
from contam.models.spec import ModelSpec
from contam.runner import RetryPolicy, Runner

SECRET = "sk-test-do-not-leak-4f9a1c"
TEXT_TOKENS = ["The", " cat", " sat"]
# Top alternatives for each text token's position (the BOS has none).
TOPS = [{"The": -2.0, "A": -0.4}, {" cat": -1.0, " dog": -1.5, " cow": -3.0}, {" sat": -0.5, " ran": -1.2}]


@dataclass
class Attempt:
    path: str
    payload: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class Stub:
    """Faults to serve, in order, to non-detection requests: 'ok', '429', '500', '503', 'drop',
    'hang', '400', '404'. When the script runs out, every further request gets `then`."""

    script: list[str] = field(default_factory=list)
    then: str = "ok"
    # Per prompt, faults served to that prompt's attempts first (then the shared script applies).
    by_prompt: dict[str, list[str]] = field(default_factory=dict)
    completions_404: bool = False
    root: str = "/nonexistent/stub"  # the served model folder /v1/models lists
    adds_bos: bool = True  # the served tokenizer's default, which add_special_tokens=false turns off
    too_long: tuple[str, ...] = ()  # prompts answered as vLLM answers a prompt past its context
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self, prompt: Any = None) -> str:
        with self.lock:
            own = self.by_prompt.get(prompt) if isinstance(prompt, str) else None
            if own:
                return own.pop(0)
            return self.script.pop(0) if self.script else self.then


def _echo_body(payload: dict[str, Any], adds_bos: bool = True) -> dict[str, Any]:
    words = re.findall(r"\s*\S+", payload["prompt"])
    if not (adds_bos and payload.get("add_special_tokens", True)):
        return _echo_without_bos(words)
    tokens = ["<s>", *words, " on"]  # BOS, the prompt, one generated token
    known = words == TEXT_TOKENS
    return {
        "choices": [{
            "index": 0, "text": "".join(tokens), "finish_reason": "length",
            "logprobs": {
                "tokens": tokens,
                "token_logprobs": [None, *([-2.0, -1.0, -0.5] if known else [-3.0] * len(words)), -0.7],
                "top_logprobs": [None, *(TOPS if known else [{"x": -1.0}] * len(words)), {" on": -0.7}],
            },
        }],
        "usage": {"prompt_tokens": len(words) + 1, "completion_tokens": 1},
    }  # fmt: skip


def _echo_without_bos(words: list[str]) -> dict[str, Any]:
    tokens = [*words, " on"]  # the first text token has no log-prob
    return {
        "choices": [{
            "index": 0, "text": "".join(tokens), "finish_reason": "length",
            "logprobs": {
                "tokens": tokens,
                "token_logprobs": [None, *[-3.0] * (len(words) - 1), -0.7],
                "top_logprobs": [None, *[{"x": -1.0}] * (len(words) - 1), {" on": -0.7}],
            },
        }],
        "usage": {"prompt_tokens": len(words), "completion_tokens": 1},
    }


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return None

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/version":
                self._send(200, {"version": "0.0-stub"})
                return
            self._send(200, {"data": [{"id": "stub", "owned_by": "vllm", "root": stub.root}]})

        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.endswith("/v1/completions") and stub.completions_404:
                self._send(404, {"error": {"message": "no completions here"}})
                return
            if payload.get("prompt") == "Hello world" or (
                payload.get("messages") and payload["messages"][0]["content"] == "Hello world"
            ):
                self._answer(payload)  # capability detection: not part of the script
                return
            stub.attempts.append(Attempt(self.path, payload, dict(self.headers), time.monotonic()))
            if payload.get("prompt") in stub.too_long:
                message = (  # vLLM 0.32's words (renderers/params.py)
                    "This model's maximum context length is 1024 tokens. However, your prompt contains "
                    "1025 input tokens, which exceeds this limit even without any output tokens. "
                    "Please reduce the length of the input prompt."
                )
                self._send(400, {"error": {"message": message, "type": "BadRequestError"}})
                return
            fault = stub.next_fault(payload.get("prompt"))
            if fault == "429":
                self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
            elif fault in ("500", "503"):
                self._send(int(fault), {"error": {"message": "internal"}})
            elif fault == "400":
                self._send(400, {"error": {"message": f"bad key {SECRET} and bad request"}})
            elif fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif fault == "hang":
                time.sleep(1.5)
                self.close_connection = True
            else:
                self._answer(payload)

        def _answer(self, payload: dict[str, Any]) -> None:
            if "messages" in payload:
                n = payload.get("n", 1)
                choices = [
                    {"index": i, "message": {"role": "assistant", "content": f"reply {i}"},
                     "finish_reason": "stop", "logprobs": {"content": [{"token": "r", "logprob": -0.25}]}}
                    for i in range(n)
                ]  # fmt: skip
                self._send(200, {"choices": choices})
            elif payload.get("echo"):
                self._send(200, _echo_body(payload, stub.adds_bos))
            else:
                n = payload.get("n", 1)
                choices = [
                    {"index": i, "text": f" sample {i}", "finish_reason": "length",
                     "logprobs": {"tokens": [" sample"], "token_logprobs": [-0.5]}}
                    for i in reversed(range(n))
                ]  # fmt: skip
                self._send(200, {"choices": choices})

    return Handler


@pytest.fixture()
def stub() -> Iterator[tuple[Stub, str]]:
    state = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _client(url: str, **kw: Any) -> OpenAIModel:
    kw.setdefault("retry", RetryPolicy(attempts=5, base=0.01, cap=0.05))
    return OpenAIModel("stub", url, api_key_env="CONTAM_TEST_KEY", **kw)


async def test_recovers_from_429_500_drop_once_per_attempt(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.script = ["429", "500", "drop", "ok"]
    runner = Runner(_client(url))
    [result] = await runner.score([ScoreRequest(text="The cat sat")])
    assert result.tokens == tuple(TEXT_TOKENS) and result.logprobs == (-2.0, -1.0, -0.5)
    assert result.bos is True
    assert len(state.attempts) == 4, "each attempt reaches the server exactly once"
    assert runner.stats.calls == 1
    # The backoff base is 10 ms: only the server's Retry-After explains a wait of a second.
    assert state.attempts[1].at - state.attempts[0].at >= 1.0
    await runner.aclose()


async def test_a_request_waiting_out_retry_after_leaves_its_slot_to_others(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.by_prompt = {"The cat sat": ["429"]}  # Retry-After: 1
    client = _client(url, concurrency=1)
    first, second = await client.score([ScoreRequest(text="The cat sat"), ScoreRequest(text="A dog ran")])
    assert len(first.logprobs) == 3 and len(second.logprobs) == 3
    assert [a.payload["prompt"] for a in state.attempts] == ["The cat sat", "A dog ran", "The cat sat"]
    # The only slot went to the second request while the first slept, not after.
    assert state.attempts[1].at - state.attempts[0].at < 0.5
    assert state.attempts[2].at - state.attempts[0].at >= 1.0
    await client.aclose()


async def test_retry_after_is_honoured_only_up_to_its_cap(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.script = ["429", "ok"]  # Retry-After: 1, capped to 0.1
    client = _client(url, retry=RetryPolicy(attempts=3, base=0.0, cap=0.0, max_retry_after=0.1))
    await client.score([ScoreRequest(text="The cat sat")])
    assert len(state.attempts) == 2 and 0.05 <= state.attempts[1].at - state.attempts[0].at < 0.9
    await client.aclose()
    spec = ModelSpec.parse(f"openai:stub@{url}?retries=9&retry_cap=5&max_retry_after=7")
    assert create(spec).retry == RetryPolicy(attempts=9, base=0.5, cap=5.0, max_retry_after=7.0)


async def test_a_failing_request_does_not_throw_away_the_rest_of_its_batch(
    stub: tuple[Stub, str], tmp_path: Path
) -> None:
    state, url = stub
    texts = [f"The cat sat {i}" for i in range(6)]
    state.by_prompt = {texts[2]: ["503"] * 3}  # exhausts its 3 attempts; the others succeed
    path = tmp_path / "calls.sqlite"
    retry = RetryPolicy(attempts=3, base=0.01, cap=0.02)
    runner = Runner(_client(url, retry=retry), CallCache(path), batch_size=6)
    with pytest.raises(PartialBatchError) as info:
        await runner.score([ScoreRequest(text=t) for t in texts])
    assert sorted(info.value.completed) == [0, 1, 3, 4, 5] and list(info.value.failed) == [2]
    assert "1 of 6 requests failed" in str(info.value) and "3 attempts" in str(info.value)
    assert len(runner.cache) == 5 and runner.stats.calls == 5
    sent = len(state.attempts)
    assert sent == 5 + 3
    await runner.aclose()
    runner.cache.close()

    resumed = Runner(_client(url, retry=retry), CallCache(path), batch_size=6)
    results = await resumed.score([ScoreRequest(text=t) for t in texts])
    assert len(results) == 6
    assert [a.payload["prompt"] for a in state.attempts[sent:]] == [texts[2]], "only the failed one is re-sent"
    assert resumed.stats.cache_hits == 5 and resumed.stats.calls == 1
    await resumed.aclose()


async def test_timeout_is_retried(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.script = ["hang", "ok"]
    client = _client(url, timeout=0.5)
    [result] = await client.score([ScoreRequest(text="The cat sat")])
    assert len(result.logprobs) == 3 and len(state.attempts) == 2
    await client.aclose()


async def test_exhausted_retries_fail_after_exactly_the_allowed_attempts(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.then = "503"
    runner = Runner(_client(url, retry=RetryPolicy(attempts=3, base=0.01, cap=0.02)))
    with pytest.raises(ModelCallError, match="3 attempts"):
        await runner.score([ScoreRequest(text="The cat sat")])
    assert len(state.attempts) == 3, "the runner must not retry what the backend already gave up on"
    await runner.aclose()


async def test_client_errors_fail_at_once_and_never_show_the_key(
    stub: tuple[Stub, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAM_TEST_KEY", SECRET)
    state, url = stub
    state.script = ["400"]
    client = _client(url)
    with pytest.raises(ModelCallError) as info:
        await client.score([ScoreRequest(text="The cat sat")])
    assert len(state.attempts) == 1
    assert SECRET not in str(info.value) and "***" in str(info.value)
    await client.aclose()


async def test_api_key_goes_only_into_the_authorization_header(
    stub: tuple[Stub, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from contam.report import ScanReport  # noqa: F401  (the report is checked below via the scan)
    from contam.scan import scan
    from contam.types import Benchmark, Item, Partition
    from probes.loss import LossProbe

    monkeypatch.setenv("CONTAM_TEST_KEY", SECRET)
    state, url = stub
    spec = ModelSpec.parse(f"openai:stub@{url}?retries=2", api_key_env="CONTAM_TEST_KEY")
    client = create(spec)
    items = tuple(Item(id=f"i{i}", partition="test", text=f"The cat sat {i}") for i in range(3))
    bench = Benchmark(
        name="b", format="text", partitions={"test": Partition("test", items)}, source="x", sha256="0"
    )
    runner = Runner(client)
    report = await scan(bench, runner, [LossProbe.from_options({})], model_spec=str(spec))
    assert state.attempts and all(a.headers["Authorization"] == f"Bearer {SECRET}" for a in state.attempts)
    for text in (
        report.model_dump_json(),
        repr(client),
        client.identity.model_dump_json(),
        str(spec),
        repr(spec),
    ):
        assert SECRET not in text
    await runner.aclose()


async def test_capabilities_and_approximate_distribution_are_declared(stub: tuple[Stub, str]) -> None:
    _, url = stub
    client = _client(url)
    caps = client.capabilities
    assert caps.prompt_logprobs and caps.distribution == "approx_top_k" and caps.max_top_k == 20
    [r] = await client.score([ScoreRequest(text="The cat sat", distribution=True, top_k=2)])
    assert r.distribution == "approx_top_k"
    expected = [stats_from_logprobs(top.values(), renormalise=True) for top in TOPS]
    assert r.dist_mean == pytest.approx([m for m, _ in expected])
    assert r.dist_std == pytest.approx([s for _, s in expected])
    # Renormalised over the top-k: the weights sum to one, unlike the raw partial sum.
    assert r.dist_mean is not None and r.dist_mean[1] == pytest.approx(
        sum(p * lp for p, lp in zip(_renorm([-1.0, -1.5, -3.0]), [-1.0, -1.5, -3.0], strict=True))
    )
    assert r.top is not None and [a.token for a in r.top[1]] == [" cat", " dog"]
    await client.aclose()


async def test_generation_orders_samples_and_passes_n_and_seed(stub: tuple[Stub, str]) -> None:
    state, url = stub
    client = _client(url)
    [g] = await client.generate([GenerateRequest(prompt="x", n=3, seed=7, temperature=1.0, logprobs=1)])
    assert [c.text for c in g.completions] == [" sample 0", " sample 1", " sample 2"]
    assert g.completions[0].logprobs == (-0.5,)
    assert state.attempts[0].payload["n"] == 3 and state.attempts[0].payload["seed"] == 7
    await client.aclose()


async def test_chat_only_server_is_detected_and_never_scored(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.completions_404 = True
    client = _client(url)
    caps = client.capabilities
    assert caps.chat_only and not caps.prompt_logprobs and caps.distribution == "none"
    assert caps.missing(["prompt_logprobs"]) == ["prompt_logprobs"]
    with pytest.raises(ModelCallError, match="cannot score"):
        await client.score([ScoreRequest(text="The cat sat")])
    [g] = await client.generate([GenerateRequest(prompt="hi", n=2, logprobs=1)])
    assert [c.text for c in g.completions] == ["reply 0", "reply 1"] and g.completions[0].logprobs == (-0.25,)
    assert state.attempts[-1].path.endswith("/chat/completions")
    await client.aclose()


def _renorm(logprobs: list[float]) -> list[float]:
    probs = [math.exp(lp) for lp in logprobs]
    return [p / sum(probs) for p in probs]


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(future) or 0) <= 31


def test_identity_says_remote_weights_are_not_fingerprinted(stub: tuple[Stub, str]) -> None:
    _, url = stub
    client = _client(url)
    ident = client.identity
    assert ident.weights_fingerprinted is False  # the stub's root folder is not readable here
    assert {k: ident.settings[k] for k in ("max_top_k", "chat", "server")} == {
        "max_top_k": "20", "chat": "0", "server": url,
    }
    assert ident.settings["computation"].startswith("openai/") and "server=vllm 0.0-stub" in ident.settings["computation"]
    assert _client(url, top_k=5).identity.key != ident.key, "top-k changes the approximate statistics"
    assert _client(url).identity.key == ident.key
    assert ident.basis is not None and "not readable" in ident.basis


def _model_folder(root: Path) -> Path:
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "model.safetensors").write_bytes(b"weights")
    return root


def test_a_readable_served_folder_still_keys_the_dtype_or_the_server(
    stub: tuple[Stub, str], tmp_path: Path
) -> None:
    """Two servers of one folder at other dtypes must never share cached calls (issue 12, item 4)."""
    state, url = stub
    state.root = str(_model_folder(tmp_path / "served"))
    plain = _client(url).identity
    assert plain.weights_fingerprinted is True and plain.settings["server"] == url
    assert plain.basis is not None and "server URL" in plain.basis and "dtype is not known" in plain.basis
    bf16, fp32 = _client(url, dtype="bfloat16").identity, _client(url, dtype="float32").identity
    assert bf16.fingerprint == fp32.fingerprint == plain.fingerprint  # same weights, read here
    assert len({bf16.key, fp32.key, plain.key}) == 3
    assert "server" not in bf16.settings and bf16.settings["dtype"] == "bfloat16"
    assert bf16.basis is not None and "declared dtype bfloat16" in bf16.basis
    # The spec option reaches it too.
    assert create(ModelSpec.parse(f"openai:stub@{url}?dtype=bfloat16", api_key_env="CONTAM_TEST_KEY")).identity.key == bf16.key


async def test_a_text_past_the_servers_context_is_unscored_not_failed(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.too_long = ("a very long text",)
    client = _client(url)
    long, ok = await client.score([ScoreRequest(text="a very long text", distribution=True), ScoreRequest(text="The cat sat")])
    assert long.logprobs == () and long.overflow is not None
    assert (long.overflow.tokens, long.overflow.limit) == (1025, 1024)
    assert "1025 tokens" in long.overflow.message() and len(ok.logprobs) == 3
    await client.aclose()


async def test_bos_follows_the_servers_tokenizer_and_a_forced_one_it_cannot_give_fails(
    stub: tuple[Stub, str],
) -> None:
    state, url = stub
    state.adds_bos = False  # a GPT-2-style tokenizer: it has a BOS token but does not add it
    client = _client(url)
    assert client.identity.bos_default is False
    [r] = await client.score([ScoreRequest(text="The cat sat")])
    assert r.bos is False and r.tokens == (" cat", " sat")
    assert "add_special_tokens" not in state.attempts[-1].payload
    with pytest.raises(ModelCallError, match="cannot be asked to prepend a BOS token"):
        await client.score([ScoreRequest(text="The cat sat", add_bos=True)])
    await client.aclose()
    state.adds_bos = True
    client = _client(url)
    assert client.identity.bos_default is True
    default, forced_off = await client.score([ScoreRequest(text="The cat sat"), ScoreRequest(text="The cat sat", add_bos=False)])
    assert default.bos is True and default.tokens == ("The", " cat", " sat")
    assert forced_off.bos is False and forced_off.tokens == (" cat", " sat")
    # The two requests run concurrently: either may reach the stub last.
    sent = sorted(str(a.payload.get("add_special_tokens")) for a in state.attempts[-2:])
    assert sent == ["False", "None"]
    await client.aclose()


async def test_an_empty_text_gives_an_empty_result_without_a_call(stub: tuple[Stub, str]) -> None:
    state, url = stub
    client = _client(url)
    empty, scored = await client.score([ScoreRequest(text="", add_bos=False, distribution=True), ScoreRequest(text="The cat sat")])
    assert empty.logprobs == () and empty.tokens == () and empty.bos is False and empty.dist_mean == ()
    assert empty.distribution == "approx_top_k" and len(scored.logprobs) == 3
    assert [a.payload["prompt"] for a in state.attempts] == ["The cat sat"]
    await client.aclose()
