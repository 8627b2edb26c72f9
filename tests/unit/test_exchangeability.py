"""The sharded exchangeability test: its pieces against hand-computed values, and the probe on
the mock (order memorised vs not, published order kept, small partitions)."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats as sps

from contam.errors import ModelCallError
from contam.models.base import ScoreResult
from contam.models.mock import MockModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.runner import Runner
from contam.types import Item, Partition
from probes._likelihood import (
    Window,
    official_t_size,
    shard_bounds,
    sharded_t_test,
    window_loglik,
    windows,
)


def part(name: str, texts: list[str]) -> Partition:
    return Partition(name, tuple(Item(id=f"{name}{i}", partition=name, text=t) for i, t in enumerate(texts)))


def test_shards_are_contiguous_and_the_first_take_the_remainder() -> None:
    assert shard_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shard_bounds(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with pytest.raises(ValueError):
        shard_bounds(3, 4)


def test_t_test_matches_the_official_statistic_by_hand() -> None:
    # diffs = (1, 1, 2): mean 4/3, population std sqrt(2)/3, z = (4/3)/(sqrt(2)/3)*sqrt(3) = 2*sqrt(6).
    z, p = sharded_t_test([1.0, 2.0, 3.0], [[0.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    assert z == pytest.approx(2 * math.sqrt(6))
    # Student t with 2 degrees of freedom: P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2.
    assert p == pytest.approx((1 - z / math.sqrt(z * z + 2)) / 2)
    # Canonical below permuted: p near 1, never a false alarm.
    assert sharded_t_test([0.0, 0.0, 0.0], [[1.0], [2.0], [1.5]])[1] > 0.95
    # No order effect at all: no evidence.
    assert sharded_t_test([1.0, 2.0], [[1.0], [2.0]]) == (0.0, 1.0)


def test_exact_t_uses_the_sample_std() -> None:
    # diffs = (1, 1, 2): sample std sqrt(1/3), t = (4/3) / sqrt(1/3) * sqrt(3) = 4.
    t, p = sharded_t_test([1.0, 2.0, 3.0], [[0.0, 0.0], [1.0, 1.0], [0.0, 2.0]], exact_t=True)
    assert t == pytest.approx(4.0)
    assert p == pytest.approx((1 - 4 / math.sqrt(18)) / 2)
    assert p == pytest.approx(sps.ttest_1samp([1.0, 1.0, 2.0], 0.0, alternative="greater").pvalue)
    official, _ = sharded_t_test([1.0, 2.0, 3.0], [[0.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    assert official == pytest.approx(t * math.sqrt(3 / 2))


def test_official_statistic_size_for_few_shards() -> None:
    assert official_t_size(8) == pytest.approx(0.06, abs=0.002)
    assert 0.065 < official_t_size(4) < official_t_size(2) < 0.072
    assert official_t_size(200) == pytest.approx(0.05, abs=0.001)


def test_windows_count_every_position_once() -> None:
    assert windows(10, 4, 2) == [Window(0, 4, 0), Window(2, 6, 4), Window(4, 8, 6), Window(6, 10, 8)]
    assert windows(3, 4, 2) == [Window(0, 3, 0)]
    assert windows(8, 4, 4) == [Window(0, 4, 0), Window(4, 8, 4)]


def test_window_loglik_counts_tokens_from_the_previous_windows_end() -> None:
    # Window text is chars [2, 6) = "cdef", tokens "cd" (offset 2), "e" (4), "f" (5); count from 4.
    r = ScoreResult(tokens=("cd", "e", "f"), logprobs=(-1.0, -2.0, -4.0), bos=True)
    assert window_loglik(Window(2, 6, 4), r) == -6.0
    # Without BOS the first token is not scored: offsets run back from the window's end.
    r = ScoreResult(tokens=("e", "f"), logprobs=(-2.0, -4.0), bos=False)
    assert window_loglik(Window(2, 6, 5), r) == -4.0


def test_window_loglik_refuses_token_texts_that_do_not_join_back() -> None:
    ok = ScoreResult(tokens=("cd", "e", "f"), logprobs=(-1.0, -2.0, -4.0), bos=True)
    assert window_loglik(Window(2, 6, 4), ok, "cdef") == -6.0
    # A decoder that drops a leading space per token ("c d" scored, "c" + "d" reported).
    dropped = ScoreResult(tokens=("c", "d"), logprobs=(-1.0, -2.0), bos=True)
    with pytest.raises(ModelCallError, match=r"tokenizer mismatch.*join to 2 characters.*window's 3"):
        window_loglik(Window(0, 3, 0), dropped, "c d")
    with pytest.raises(ModelCallError, match="tokenizer mismatch"):
        window_loglik(Window(0, 3, 0), dropped)  # by length alone too
    # Same length, other text (a normalising tokenizer): caught when the text is given.
    normalised = ScoreResult(tokens=("ab", "c"), logprobs=(-1.0, -2.0), bos=True)
    with pytest.raises(ModelCallError, match="tokenizer mismatch"):
        window_loglik(Window(0, 3, 0), normalised, "AbC")
    # Without BOS the tokens are a suffix of the window's text.
    suffix = ScoreResult(tokens=(" d",), logprobs=(-2.0,), bos=False)
    assert window_loglik(Window(0, 3, 0), suffix, "c d") == -2.0
    with pytest.raises(ModelCallError, match="tokenizer mismatch"):
        window_loglik(Window(0, 3, 0), suffix, "cd ")


class _SpaceDropping(MockModel):
    """A tokenizer whose per-token decode drops leading spaces (as SentencePiece decoders can)."""

    async def score(self, requests):  # type: ignore[no-untyped-def]
        results = await super().score(requests)
        return [r.model_copy(update={"tokens": tuple(t.lstrip() for t in r.tokens)}) for r in results]


async def test_a_tokenizer_mismatch_stops_the_probe_with_a_clear_error() -> None:
    probe = get_probe("exchangeability").from_options({"shards": 2, "permutations": 2})
    with pytest.raises(ModelCallError, match="model 'mock' \\(tokenizer words\\): tokenizer mismatch"):
        await probe.run(part("t", QUESTIONS[:8]), Runner(_SpaceDropping()), ProbeContext("b"))


QUESTIONS = [f"question {i} asks about item {i * 7 % 13} and some more words" for i in range(24)]


async def test_order_the_model_memorised_is_detected() -> None:
    # The model memorised the partition as published, as one document.
    model = MockModel(seen=["\n\n".join(QUESTIONS)])
    probe = get_probe("exchangeability").from_options({"shards": 6, "permutations": 8})
    result = await probe.run(part("test", QUESTIONS), Runner(model), ProbeContext("b"))
    st = result.statistic
    assert st is not None and st.p_value is not None and st.p_value < 1e-3
    assert st.name == "sharded_likelihood_t" and st.n == 24 and st.reference is None
    assert result.items == () and result.params["shards_used"] == 6


async def test_published_order_is_scored_never_shuffled() -> None:
    model = MockModel()
    probe = get_probe("exchangeability").from_options({"shards": 4, "permutations": 3})
    result = await probe.run(part("test", QUESTIONS), Runner(model), ProbeContext("b"))
    texts = [json.loads(r)["text"] for kind, r in model.calls if kind == "score"]
    # Each shard's canonical concatenation is scored, exactly as published, in its own window.
    for start in range(0, 24, 6):
        assert "\n\n".join(QUESTIONS[start : start + 6]) in texts
    st = result.statistic
    assert st is not None and st.p_value is not None
    # The default is the exact one-sample t test over the 4 shards: p is t's survival at 3 df.
    assert st.p_value == pytest.approx(float(sps.t.sf(st.value, df=3)))
    assert any("ddof=1" in note for note in result.notes)


async def test_long_shards_are_windowed_and_windows_reach_the_backend() -> None:
    model = MockModel()
    probe = get_probe("exchangeability").from_options(
        {"shards": 2, "permutations": 2, "context_len": 64, "stride": 32}
    )
    await probe.run(part("test", QUESTIONS[:8]), Runner(model), ProbeContext("b"))
    lengths = [len(json.loads(r)["text"]) for kind, r in model.calls if kind == "score"]
    assert max(lengths) == 64 and len(lengths) > 6


async def test_small_partitions_use_fewer_shards_and_say_so() -> None:
    probe = get_probe("exchangeability").from_options({"shards": 50, "permutations": 2})
    result = await probe.run(part("test", QUESTIONS[:9]), Runner(MockModel()), ProbeContext("b"))
    assert result.params["shards_used"] == 4
    assert any("used 4 shards" in n for n in result.notes)
    tiny = await probe.run(part("test", QUESTIONS[:3]), Runner(MockModel()), ProbeContext("b"))
    assert tiny.skipped is not None and "at least 2 shards" in tiny.skipped


async def test_same_seed_same_answer_and_calls_are_cached() -> None:
    runner = Runner(MockModel())
    probe = get_probe("exchangeability").from_options({"shards": 4, "permutations": 5})
    first = await probe.run(part("t", QUESTIONS), runner, ProbeContext("b", seed=3))
    sent = runner.stats.calls
    second = await probe.run(part("t", QUESTIONS), runner, ProbeContext("b", seed=3))
    assert first.statistic == second.statistic
    assert runner.stats.calls == sent, "the second run was answered entirely from the cache"


class _NoBos(MockModel):
    """A tokenizer without a BOS token: asked to prepend one, the backend prepends nothing."""

    async def score(self, requests):  # type: ignore[no-untyped-def]
        return await super().score([r.model_copy(update={"add_bos": False}) for r in requests])


async def test_bos_note_reports_what_the_backend_did_not_what_was_asked() -> None:
    probe = get_probe("exchangeability").from_options({"shards": 2, "permutations": 2})
    result = await probe.run(part("t", QUESTIONS[:8]), Runner(_NoBos()), ProbeContext("b"))
    assert result.params["add_bos"] is None  # the tokenizer default
    assert any("BOS prepended to each window: no (as the model's tokenizer does" in n for n in result.notes)
    plain = await probe.run(part("t", QUESTIONS[:8]), Runner(MockModel()), ProbeContext("b"))
    assert any("BOS prepended to each window: yes (" in n for n in plain.notes)


async def test_notes_say_windows_are_measured_in_characters() -> None:
    probe = get_probe("exchangeability").from_options(
        {"shards": 2, "permutations": 2, "context_len": 64, "stride": 32}
    )
    result = await probe.run(part("t", QUESTIONS[:8]), Runner(MockModel()), ProbeContext("b"))
    assert any("context_len 64 and stride 32 are in characters, not tokens" in n for n in result.notes)


async def test_the_official_statistic_is_noted_as_anti_conservative_and_exact_t_is_the_default() -> None:
    official = get_probe("exchangeability").from_options({"shards": 4, "permutations": 3, "exact_t": False})
    result = await official.run(part("t", QUESTIONS), Runner(MockModel()), ProbeContext("b"))
    assert any(n.startswith("p-value anti-conservative: with 4 shards") for n in result.notes)
    assert get_probe("exchangeability")().params.exact_t is True  # type: ignore[attr-defined]
    exact = get_probe("exchangeability").from_options({"shards": 4, "permutations": 3, "exact_t": True})
    strict = await exact.run(part("t", QUESTIONS), Runner(MockModel()), ProbeContext("b"))
    assert strict.params["exact_t"] is True
    assert not any("anti-conservative" in n for n in strict.notes)
    assert any("one-sample t test" in n for n in strict.notes)
    assert result.statistic is not None and strict.statistic is not None
    assert result.statistic.p_value is not None and strict.statistic.p_value is not None
    # Same shards and permutations (same seed): only the std differs, and ddof=1 is the larger p.
    assert strict.statistic.value == pytest.approx(result.statistic.value * math.sqrt(3 / 4))
    assert strict.statistic.p_value >= result.statistic.p_value
    many = get_probe("exchangeability").from_options({"shards": 24, "permutations": 1, "min_shard_size": 2})
    wide = await many.run(part("t", QUESTIONS * 2), Runner(MockModel()), ProbeContext("b"))
    assert wide.params["shards_used"] == 24 and not any("approximate" in n for n in wide.notes)
