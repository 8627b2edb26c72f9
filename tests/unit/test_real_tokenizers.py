"""The hf backend on real-world tokenizers, offline (issue 12, items 1-3 and 5): micro random
Llamas over Mistral 7B v0.1's SentencePiece tokenizer and over a GPT-2-style byte-level BPE whose
BOS token is not added by default. (The same tokenizers against the vLLM engine and a vLLM
server: tests/integration/test_backend_consistency.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from contam.cache import CallCache
from contam.models.base import ScoreRequest
from contam.models.distribution import stats_from_logprobs
from contam.models.hf import HFModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.runner import Runner
from contam.types import Item, Partition
from tests.fixtures.models import RealTokenizerSpec, build_real_tokenizer_model

pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")

MICRO = {"hidden_size": 16, "intermediate_size": 32, "layers": 1, "heads": 2, "train_steps": 0}
TEXTS = [
    "Hello world",
    " Hello  world, a leading space and a double one",
    "def f(x):\n    return x  # indented code\n",
    "Ünïcödé, 日本語 and an emoji 🦜 (byte fallback)",
    "Natalia sold clips to 48 of her friends in April.",
]


@pytest.fixture(scope="module")
def sentencepiece() -> HFModel:
    return HFModel(build_real_tokenizer_model(RealTokenizerSpec("sentencepiece", **MICRO)), device="cpu")


@pytest.fixture(scope="module")
def gpt2_style() -> HFModel:
    return HFModel(build_real_tokenizer_model(RealTokenizerSpec("gpt2", **MICRO)), device="cpu")


async def test_sentencepiece_token_texts_are_exact_substrings_that_join_back(sentencepiece: HFModel) -> None:
    with_bos = await sentencepiece.score([ScoreRequest(text=t) for t in TEXTS])
    without = await sentencepiece.score([ScoreRequest(text=t, add_bos=False) for t in TEXTS])
    for text, a, b in zip(TEXTS, with_bos, without, strict=True):
        assert a.bos is True and "".join(a.tokens) == text, text
        assert b.bos is False and text.endswith("".join(b.tokens)) and len(b.tokens) == len(a.tokens) - 1
        assert a.tokens[1:] == b.tokens  # the same tokens after the first, which has no log-prob then
    # "▁world" keeps its space; the first word has none, as in the text.
    assert with_bos[0].tokens == ("Hello", " world")


async def test_without_bos_a_character_split_with_the_unscored_first_token_is_not_claimed(
    gpt2_style: HFModel,
) -> None:
    """The first token has no log-prob and is not reported; a UTF-8 character it starts belongs
    to it, so the next token reports "" for its last byte, as a vLLM server does (it reads no
    context before the first scored token)."""
    text = TEXTS[3]  # "Ü" is two bytes, the byte-level vocabulary's first two tokens
    ids = gpt2_style.token_ids(text, add_bos=False)
    assert gpt2_style.tokenizer.decode(ids[:1]).endswith("\ufffd")
    [r] = await gpt2_style.score([ScoreRequest(text=text, add_bos=False)])
    assert r.tokens[0] == "" and text.endswith("".join(r.tokens)) and "".join(r.tokens) == text[1:]
    [with_bos] = await gpt2_style.score([ScoreRequest(text=text, add_bos=True)])
    assert with_bos.tokens[:2] == ("", "Ü") and "".join(with_bos.tokens) == text


async def test_sentencepiece_alternatives_keep_their_spaces_as_a_vllm_server_reports_them(
    sentencepiece: HFModel,
) -> None:
    [r] = await sentencepiece.score([ScoreRequest(text="Hello world", top_k=50)])
    assert r.top is not None
    pieces = {a.token for pos in r.top for a in pos}
    assert any(p.startswith(" ") for p in pieces), "▁ pieces decode alone without their space"


async def test_exchangeability_runs_on_a_sentencepiece_model(sentencepiece: HFModel) -> None:
    items = tuple(Item(id=str(i), partition="t", text=t) for i, t in enumerate(TEXTS * 2))
    probe = get_probe("exchangeability").from_options({"shards": 2, "permutations": 3, "context_len": 64, "stride": 32})
    result = await probe.run(Partition("t", items), Runner(sentencepiece), ProbeContext("b"))
    assert result.statistic is not None and result.statistic.p_value is not None  # no "tokenizer mismatch"


async def test_bos_follows_the_tokenizer_default_and_can_be_forced(gpt2_style: HFModel, sentencepiece: HFModel) -> None:
    tok = gpt2_style.tokenizer
    text = TEXTS[4]
    encoded = tok(text)["input_ids"]  # what tokenizer.encode gives, as Shi et al.'s code scores
    assert tok.bos_token_id is not None and encoded[0] != tok.bos_token_id
    default, forced = await gpt2_style.score([ScoreRequest(text=text), ScoreRequest(text=text, add_bos=True)])
    assert gpt2_style.identity.bos_default is False and default.bos is False
    assert len(default.logprobs) == len(encoded) - 1 and text.endswith("".join(default.tokens))
    assert forced.bos is True and len(forced.logprobs) == len(encoded) and "".join(forced.tokens) == text
    assert sentencepiece.identity.bos_default is True
    [sp] = await sentencepiece.score([ScoreRequest(text=text)])
    assert sp.bos is True and len(sp.logprobs) == len(sentencepiece.tokenizer(text)["input_ids"]) - 1


async def test_min_k_pp_moments_ignore_minus_inf_logits(gpt2_style: HFModel) -> None:
    """A model whose logits hold -inf (masked or padded vocabulary entries) gives finite moments:
    those of the distribution over the other tokens, as the vLLM path computes them."""
    import math

    import torch

    masked = list(range(10, 60))

    def mask(module: object, args: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[..., masked] = -math.inf
        return output

    handle = gpt2_style.model.lm_head.register_forward_hook(mask)
    try:
        [r] = await gpt2_style.score([ScoreRequest(text=TEXTS[4], distribution=True)])
        ids = gpt2_style.token_ids(TEXTS[4])
        with torch.inference_mode():
            logp = torch.log_softmax(gpt2_style.model(input_ids=torch.tensor([ids])).logits[0, :-1].float(), -1)
    finally:
        handle.remove()
    assert r.dist_mean is not None and r.dist_std is not None
    assert all(math.isfinite(v) for v in (*r.dist_mean, *r.dist_std))
    for pos in (0, len(ids) // 2, len(ids) - 2):
        want = stats_from_logprobs(logp[pos].tolist(), renormalise=False)
        assert (r.dist_mean[pos], r.dist_std[pos]) == pytest.approx(want, abs=1e-4)


async def test_a_new_computation_version_recomputes_instead_of_replaying(
    gpt2_style: HFModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contam.models.hf as hf
    import contam.models.versions as versions

    cache = CallCache(tmp_path / "calls.sqlite")
    ask = [ScoreRequest(text=TEXTS[0])]
    first = Runner(gpt2_style, cache)
    await first.score(ask)
    again = Runner(HFModel(gpt2_style.identity.name, device="cpu"), cache)
    await again.score(ask)
    assert first.stats.calls == 1 and again.stats.cache_hits == 1, "same computation: replayed"
    monkeypatch.setattr(hf, "COMPUTATION", "hf/999")
    fixed = Runner(HFModel(gpt2_style.identity.name, device="cpu"), cache)
    await fixed.score(ask)
    assert fixed.stats.calls == 1 and fixed.stats.cache_hits == 0
    monkeypatch.setattr(hf, "COMPUTATION", "hf/2")
    real = versions.library_version
    monkeypatch.setattr(versions, "library_version", lambda name: "99.0" if name == "transformers" else real(name))
    upgraded = Runner(HFModel(gpt2_style.identity.name, device="cpu"), cache)
    await upgraded.score(ask)
    assert upgraded.stats.calls == 1 and upgraded.stats.cache_hits == 0
    cache.close()
