"""The hf backend on a real (small) model: batching, exact distribution statistics, seeded
sampling, BOS handling, and an identity that follows the weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contam.cache import CallCache
from contam.models.base import GenerateRequest, ScoreRequest
from contam.models.hf import HFModel, create
from contam.models.identity import folder_fingerprint
from contam.models.spec import ModelSpec
from contam.registry import create_model
from contam.runner import Runner

pytestmark = pytest.mark.integration

TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "The quick brown fox jumps over the lazy dog.",
    "x",
    "import os\nimport sys\n\n\ndef main():\n    print(sys.argv)\n" * 3,
]


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> HFModel:
    return HFModel(tiny_model_dir, device="cpu", batch=3)


async def test_scores_do_not_depend_on_batching_or_padding(model: HFModel) -> None:
    together = await model.score([ScoreRequest(text=t) for t in TEXTS])
    alone = [(await model.score([ScoreRequest(text=t)]))[0] for t in TEXTS]
    for a, b in zip(together, alone, strict=True):
        assert a.tokens == b.tokens
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
    assert [len(r.logprobs) for r in together] == [len(model.token_ids(t, False)) for t in TEXTS]
    assert "".join(together[0].tokens) == TEXTS[0]


async def test_distribution_statistics_are_the_full_vocabulary_moments(model: HFModel) -> None:
    import torch

    text = TEXTS[0]
    [r] = await model.score([ScoreRequest(text=text, distribution=True, top_k=5)])
    ids = torch.tensor([model.token_ids(text, True)])
    with torch.inference_mode():
        logp = torch.log_softmax(model.model(input_ids=ids).logits[0, :-1].double(), -1)
    p = logp.exp()
    mean = (p * logp).sum(-1)
    std = ((p * logp * logp).sum(-1) - mean**2).sqrt()
    assert r.distribution == "exact" and r.bos is True
    assert r.dist_mean == pytest.approx(mean.tolist(), abs=1e-4)
    assert r.dist_std == pytest.approx(std.tolist(), abs=1e-4)
    assert r.top is not None and len(r.top) == len(r.logprobs) and all(len(t) == 5 for t in r.top)
    assert all(t[0].logprob >= lp - 1e-6 for t, lp in zip(r.top, r.logprobs, strict=True))


async def test_without_bos_the_first_token_is_dropped(model: HFModel) -> None:
    [with_bos, without] = await model.score(
        [ScoreRequest(text=TEXTS[1]), ScoreRequest(text=TEXTS[1], add_bos=False)]
    )
    assert with_bos.bos and not without.bos
    assert with_bos.tokens[1:] == without.tokens and len(without.logprobs) == len(with_bos.logprobs) - 1


async def test_greedy_is_batch_invariant_and_sampling_is_seeded(model: HFModel) -> None:
    greedy = [GenerateRequest(prompt=t, max_tokens=16) for t in TEXTS]
    batched = await model.generate(greedy)
    single = [(await model.generate([g]))[0] for g in greedy]
    assert [g.completions[0].text for g in batched] == [g.completions[0].text for g in single]

    ask = GenerateRequest(prompt=TEXTS[0], max_tokens=12, temperature=1.0, n=3, seed=5, logprobs=1)
    a, b = await model.generate([ask]), await model.generate([ask, greedy[0]])
    c = await model.generate([ask.model_copy(update={"seed": 6})])
    texts = [x.text for x in a[0].completions]
    assert len(texts) == 3 and texts == [x.text for x in b[0].completions]
    assert texts != [x.text for x in c[0].completions]
    assert all(x.logprobs is not None and all(v <= 0 for v in x.logprobs) for x in a[0].completions)


async def test_stop_strings_cut_the_continuation(model: HFModel) -> None:
    [free] = await model.generate([GenerateRequest(prompt=TEXTS[3], max_tokens=24)])
    text = free.completions[0].text
    assert len(text) >= 8
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    [cut] = await model.generate([GenerateRequest(prompt=TEXTS[3], max_tokens=24, stop=(stop,))])
    assert cut.completions[0].text == text[: text.find(stop)]
    assert cut.completions[0].finish_reason == "stop"


def test_identity_follows_the_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert folder_fingerprint(copy) == folder_fingerprint(tiny_model_dir)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # one weight byte changes
    weights.write_bytes(bytes(data))
    assert folder_fingerprint(copy) != folder_fingerprint(tiny_model_dir)


async def test_registry_builds_it_and_the_runner_caches_it(tiny_model_dir: Path) -> None:
    client = create_model(ModelSpec.parse(f"hf:{tiny_model_dir}?batch=2&device=cpu"))
    assert isinstance(client, HFModel) and client.max_batch == 2
    runner = Runner(client, CallCache(None))
    first = await runner.score([ScoreRequest(text=t) for t in TEXTS])
    again = await runner.score([ScoreRequest(text=t) for t in TEXTS])
    assert first == again and runner.stats.calls == len(TEXTS) and runner.stats.cache_hits == len(TEXTS)


def test_bad_options_name_the_field(tiny_model_dir: Path) -> None:
    from contam.errors import ModelSpecError

    with pytest.raises(ModelSpecError, match="unknown hf option"):
        create(ModelSpec.parse(f"hf:{tiny_model_dir}?bogus=1"))
    with pytest.raises(ModelSpecError, match="not a model folder"):
        create(ModelSpec.parse(f"hf:{tiny_model_dir.parent}"))


async def test_past_the_context_is_unscored_and_empty_texts_score_empty(model: HFModel) -> None:
    too_long = ScoreRequest(text=TEXTS[3] * 200)
    ok, long = await model.score([ScoreRequest(text=TEXTS[0]), too_long])
    assert ok.overflow is None and ok.logprobs and long.logprobs == () and long.overflow is not None
    assert long.overflow.limit == 1024 and (long.overflow.tokens or 0) > 1024
    assert "maximum context length is 1024 tokens" in long.overflow.message()
    empty, bos_only = await model.score([ScoreRequest(text="", add_bos=False), ScoreRequest(text="")])
    assert (empty.logprobs, empty.bos, bos_only.logprobs, bos_only.bos) == ((), False, (), True)


def test_identity_carries_the_dtype(tiny_model_dir: Path, model: HFModel) -> None:
    half = HFModel(tiny_model_dir, device="cpu", dtype="bfloat16")
    assert model.identity.fingerprint == half.identity.fingerprint
    assert model.identity.key != half.identity.key
