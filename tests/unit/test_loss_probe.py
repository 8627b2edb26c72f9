"""The template probe against hand-computed values on a scripted model."""

from __future__ import annotations

import pytest

from contam.models.base import ScoreResult
from contam.models.mock import MockModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.runner import Runner
from contam.types import Item, Partition


def part(name: str, texts: list[str]) -> Partition:
    return Partition(name, tuple(Item(id=f"{name}{i}", partition=name, text=t) for i, t in enumerate(texts)))


async def test_loss_is_mean_token_logprob() -> None:
    script = {
        "a b c": ScoreResult(tokens=("a", " b", " c"), logprobs=(-1.0, -2.0, -3.0), bos=True),
        "d e": ScoreResult(tokens=("d", " e"), logprobs=(-0.5, -1.5), bos=True),
    }
    probe = get_probe("loss")()
    result = await probe.run(
        part("test", ["a b c", "d e"]), Runner(MockModel(score_script=script)), ProbeContext("b")
    )
    assert [s.score for s in result.items] == [-2.0, -1.0]
    assert result.mean == pytest.approx(-1.5)
    assert result.items[0].detail == {"tokens": 3, "bos": True}
    assert result.params == {"add_bos": None}


async def test_loss_separates_memorised_partition() -> None:
    seen = [f"the memorised sentence number {i}" for i in range(10)]
    unseen = [f"a sentence never shown, number {i}" for i in range(10)]
    ctx = ProbeContext("b", reference=part("unseen", unseen))
    result = await get_probe("loss")().run(part("seen", seen), Runner(MockModel(seen=seen)), ctx)
    assert result.statistic is not None and result.statistic.effect == 1.0
    assert result.statistic.p_value is not None and result.statistic.p_value < 1e-3


async def test_probe_without_capability_is_skipped_with_reason() -> None:
    result = await get_probe("loss")().run(
        part("t", ["x"]), Runner(MockModel(chat_only=True)), ProbeContext("b")
    )
    assert result.skipped is not None and "prompt_logprobs" in result.skipped
    assert result.items == ()
