"""The likelihood scores against hand-computed values on scripted token log-probs (mock backend)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from contam.cache import CallCache
from contam.models.base import Capabilities, ScoreRequest, ScoreResult
from contam.models.mock import MockModel
from contam.models.spec import ModelSpec
from contam.probe import ProbeContext
from contam.registry import get_probe, register_backend
from contam.report import ScanReport
from contam.resolve import LocalResolver
from contam.results import ItemScore
from contam.runner import Runner
from contam.scan import scan
from contam.types import Benchmark, Item, Partition
from probes._likelihood import DEGENERATE_Z, lowest_fraction_mean, mink_pp_token_scores, zlib_bytes
from probes.loss import NO_TOKENS
from probes.lowercase import ZERO_LOGLIK
from probes.min_k_pp import APPROX_NOTE


def part(name: str, texts: list[str]) -> Partition:
    return Partition(name, tuple(Item(id=f"{name}{i}", partition=name, text=t) for i, t in enumerate(texts)))


def scripted(logprobs: tuple[float, ...], **kw: object) -> ScoreResult:
    return ScoreResult(tokens=tuple(f"t{i}" for i in range(len(logprobs))), logprobs=logprobs, bos=True, **kw)  # type: ignore[arg-type]


TEN = (-1.0, -5.0, -2.0, -0.5, -3.0, -0.1, -0.2, -0.3, -0.4, -0.6)


async def run(probe_name: str, texts: list[str], model: MockModel, **params: object) -> list[float]:
    probe = get_probe(probe_name).from_options(params)
    result = await probe.run(part("p", texts), Runner(model), ProbeContext("b"))
    assert result.skipped is None, result.skipped
    return [s.score for s in result.items]


@pytest.mark.parametrize(
    ("k", "expected", "used"),
    [
        (0.2, (-5.0 - 3.0) / 2, 2),  # int(10 * 0.2) = 2 lowest: -5, -3
        (0.5, (-5.0 - 3.0 - 2.0 - 1.0 - 0.6) / 5, 5),
        (0.05, -5.0, 1),  # int(0.5) = 0 in the official code (NaN); we keep at least one token
        (1.0, sum(TEN) / 10, 10),
    ],
)
async def test_min_k_is_mean_of_lowest_fraction(k: float, expected: float, used: int) -> None:
    model = MockModel(score_script={"x": scripted(TEN)})
    probe = get_probe("min_k").from_options({"k": k})
    result = await probe.run(part("p", ["x"]), Runner(model), ProbeContext("b"))
    assert result.items[0].score == pytest.approx(expected)
    assert result.items[0].detail == {"tokens": 10, "bos": True, "k_tokens": used}
    assert result.params == {"add_bos": None, "k": k}


async def test_min_k_pp_standardises_each_token_by_its_position() -> None:
    # z_t = (logp - mu) / sigma = (1, 0, -2, 1, -2) by hand.
    r = scripted(
        (-1.0, -2.0, -3.0, -0.5, -4.0),
        dist_mean=(-2.0, -2.0, -1.0, -1.0, -2.0),
        dist_std=(1.0, 2.0, 1.0, 0.5, 1.0),
        distribution="exact",
    )
    assert mink_pp_token_scores(r) == [1.0, 0.0, -2.0, 1.0, -2.0]
    model = MockModel(score_script={"x": r})
    assert await run("min_k_pp", ["x"], model, k=0.4) == [pytest.approx(-2.0)]
    assert await run("min_k_pp", ["x"], model, k=0.6) == [pytest.approx(-4.0 / 3)]
    result = await get_probe("min_k_pp")().run(part("p", ["x"]), Runner(model), ProbeContext("b"))
    assert result.params["distribution"] == "exact"
    assert result.items[0].detail["distribution"] == "exact"
    assert not any("APPROX" in n for n in result.notes)


async def test_min_k_pp_at_a_one_hot_position_scores_the_mode_typical_and_any_other_token_impossible() -> (
    None
):
    # sigma 0: a point mass at log p = mu. The mode (log p = mu = 0) is exactly typical; a token
    # the model gave ~no probability must not be called typical too (it used to get z = 0).
    r = scripted(
        (-1.0, 0.0, -40.0, -1e-7),
        dist_mean=(-2.0, 0.0, 0.0, 0.0),
        dist_std=(1.0, 0.0, 0.0, 0.0),
        distribution="exact",
    )
    assert mink_pp_token_scores(r) == [1.0, 0.0, DEGENERATE_Z, 0.0]
    model = MockModel(score_script={"x": r})
    result = (
        await get_probe("min_k_pp")
        .from_options({"k": 0.25})
        .run(part("p", ["x"]), Runner(model), ProbeContext("b"))
    )
    assert [s.score for s in result.items] == [DEGENERATE_Z]
    assert result.items[0].detail["degenerate_tokens"] == 1
    assert (
        "degenerate_tokens"
        not in (
            await get_probe("min_k_pp")().run(part("p", ["a b c"]), Runner(MockModel()), ProbeContext("b"))
        )
        .items[0]
        .detail
    )


async def test_min_k_pp_on_mock_distribution_matches_its_definition() -> None:
    """The mock's exact distribution: recompute the score from its per-token statistics by hand."""
    model = MockModel()
    text = "one two three four five six seven eight nine ten"
    [r] = await model.score([ScoreRequest(text=text, distribution=True)])
    assert r.dist_mean is not None and r.dist_std is not None
    z = sorted((lp - m) / s for lp, m, s in zip(r.logprobs, r.dist_mean, r.dist_std, strict=True))
    assert await run("min_k_pp", [text], model) == [pytest.approx(sum(z[:2]) / 2)]


class _Caps(MockModel):
    def __init__(self, distribution: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._caps = Capabilities(prompt_logprobs=True, token_logprobs=True, distribution=distribution)  # type: ignore[arg-type]


async def test_min_k_pp_over_top_k_only_is_refused_unless_allowed_and_then_labelled() -> None:
    model = _Caps("approx_top_k")
    refused = await get_probe("min_k_pp")().run(part("p", ["a b c"]), Runner(model), ProbeContext("b"))
    assert refused.skipped is not None and "allow_approx" in refused.skipped and refused.items == ()
    allowed = (
        await get_probe("min_k_pp")
        .from_options({"allow_approx": True})
        .run(part("p", ["a b c"]), Runner(model), ProbeContext("b"))
    )
    assert allowed.skipped is None and len(allowed.items) == 1
    assert allowed.params["distribution"] == "approx_top_k"
    assert allowed.notes[0] == APPROX_NOTE


async def test_min_k_pp_without_distribution_is_skipped_with_reason() -> None:
    result = (
        await get_probe("min_k_pp")
        .from_options({"allow_approx": True})
        .run(part("p", ["a"]), Runner(_Caps("none")), ProbeContext("b"))
    )
    assert result.skipped is not None and "distribution" in result.skipped


async def test_zlib_divides_mean_loglik_by_compressed_length() -> None:
    assert zlib_bytes("a b c") == 13  # 2 header + 7 deflate + 4 adler32 bytes
    model = MockModel(score_script={"a b c": scripted((-1.0, -2.0, -3.0))})
    assert await run("zlib", ["a b c"], model) == [pytest.approx(-2.0 / 13)]


async def test_lowercase_is_ratio_of_lowercased_to_published_loglik() -> None:
    model = MockModel(
        score_script={
            "Hello World": scripted((-0.5, -1.5)),  # mean -1
            "hello world": scripted((-2.0, -4.0)),  # mean -3
        }
    )
    assert await run("lowercase", ["Hello World"], model) == [pytest.approx(3.0)]
    # No cased letters: the two texts are one request, the ratio exactly 1.
    assert await run("lowercase", ["a b c"], MockModel()) == [1.0]


async def test_lowercase_of_a_text_with_zero_loglik_is_unscored_not_a_division_error() -> None:
    model = MockModel(
        score_script={
            "Certain Text": scripted((0.0, 0.0)),  # every token has probability 1
            "certain text": scripted((-1.0, -2.0)),
            "Other Text": scripted((-1.0, -1.0)),
            "other text": scripted((-2.0, -2.0)),
        }
    )
    probe = get_probe("lowercase")()
    result = await probe.run(part("p", ["Certain Text", "Other Text"]), Runner(model), ProbeContext("b"))
    assert [(u.id, u.reason) for u in result.unscored] == [("p0", ZERO_LOGLIK)]
    assert [(s.id, s.score) for s in result.items] == [("p1", 2.0)]
    assert result.mean == 2.0
    assert any(n.startswith("1 of 2 items could not be scored") and ZERO_LOGLIK in n for n in result.notes)


_REF_CALLS: list[str] = []


@register_backend("scripted-ref")
def _scripted_reference(spec: ModelSpec) -> MockModel:
    model = MockModel(
        score_script={"x": scripted((-3.0, -5.0)), "y": scripted((-1.0,))}, name="ref", calls_path=None
    )
    original = model.score

    async def score(requests):  # type: ignore[no-untyped-def]
        _REF_CALLS.extend(r.text for r in requests)
        return await original(requests)

    model.score = score  # type: ignore[method-assign]
    return model


async def test_reference_is_target_minus_reference_loglik_and_shares_the_cache() -> None:
    target = MockModel(score_script={"x": scripted((-1.0, -1.0)), "y": scripted((-2.0,))})
    cache = CallCache(None)
    probe = get_probe("reference").from_options({"model": "scripted-ref:anything"})
    ctx = ProbeContext("b", resolver=LocalResolver(cache))
    result = await probe.run(part("p", ["x", "y"]), Runner(target, cache), ctx)
    # target -1 vs reference -4: +3 (more likely under the target = seen); -2 vs -1: -1.
    assert [s.score for s in result.items] == [pytest.approx(3.0), pytest.approx(-1.0)]
    assert result.items[0].detail["loglik_reference"] == -4.0
    assert any("score = loglik(" in n for n in result.notes)
    assert sorted(_REF_CALLS) == ["x", "y"]
    again = await probe.run(part("p", ["x", "y"]), Runner(target, cache), ctx)
    assert [s.score for s in again.items] == [s.score for s in result.items]
    assert sorted(_REF_CALLS) == ["x", "y"], "the reference model's answers came from the shared cache"


async def test_reference_without_model_is_skipped() -> None:
    result = await get_probe("reference")().run(part("p", ["x"]), Runner(MockModel()), ProbeContext("b"))
    assert result.skipped is not None and "reference.model" in result.skipped


async def test_reference_sign_flags_what_the_target_memorised() -> None:
    seen = [f"the memorised sentence number {i}" for i in range(10)]
    unseen = [f"a sentence never shown, number {i}" for i in range(10)]
    # The reference is the same mock without the memorised texts: a model that never saw them.
    probe = get_probe("reference").from_options({"model": "mock:name=clean"})
    ctx = ProbeContext("b", reference=part("unseen", unseen))
    result = await probe.run(part("seen", seen), Runner(MockModel(seen=seen)), ctx)
    assert all(s.score > 0 for s in result.items)
    assert result.statistic is not None and result.statistic.effect == 1.0


@pytest.mark.parametrize("name", ["loss", "min_k", "min_k_pp", "zlib", "lowercase"])
async def test_every_score_ranks_memorised_items_higher_and_tests_against_reference(name: str) -> None:
    seen = [f"The Memorised Sentence Number {i} goes on for a while" for i in range(12)]
    unseen = [f"A Sentence Never Shown, number {i} goes on for a while" for i in range(12)]
    ctx = ProbeContext("b", reference=part("unseen", unseen))
    result = await get_probe(name)().run(part("seen", seen), Runner(MockModel(seen=seen)), ctx)
    st = result.statistic
    assert st is not None and st.name == "mann_whitney_u" and st.reference == "unseen"
    assert st.effect == 1.0 and st.p_value is not None and st.p_value < 1e-3
    # Perfect separation: every bootstrap resample separates too, so the interval is the point.
    assert st.effect_ci is not None and st.effect_ci.low == st.effect_ci.high == 1.0
    assert "BOS token prepended: yes" in result.notes[-1]


async def test_without_reference_scores_are_reported_and_no_test_claimed() -> None:
    result = await get_probe("min_k")().run(
        part("p", ["a b c", "d e f"]), Runner(MockModel()), ProbeContext("b")
    )
    assert result.statistic is None and len(result.items) == 2
    assert any("no test was possible" in n for n in result.notes)


async def test_bos_choice_is_recorded() -> None:
    probe = get_probe("min_k").from_options({"add_bos": False})
    result = await probe.run(part("p", ["a b c"]), Runner(MockModel()), ProbeContext("b"))
    assert result.items[0].detail["bos"] is False and result.items[0].detail["tokens"] == 2
    assert "BOS token prepended: no (forced by add_bos=false)" in result.notes[-1]


def test_lowest_fraction_of_nothing_is_nan() -> None:
    value, used = lowest_fraction_mean([], 0.2)
    assert math.isnan(value) and used == 0


async def test_reference_that_is_the_partition_itself_says_so() -> None:
    texts = ["a b c", "d e f"]
    ctx = ProbeContext("b", reference=part("p", texts))
    result = await get_probe("min_k")().run(part("p", texts), Runner(MockModel()), ctx)
    assert result.statistic is None
    assert any("is 'p' itself" in n and "no test was possible" in n for n in result.notes)
    assert not any("no reference partition given" in n for n in result.notes)


SCORE_PROBES = ["loss", "zlib", "lowercase", "min_k", "min_k_pp", "reference"]


def no_bos(name: str) -> dict[str, object]:
    return {"add_bos": False, **({"model": "mock:name=clean"} if name == "reference" else {})}


@pytest.mark.parametrize("name", SCORE_PROBES)
async def test_an_item_without_scored_tokens_is_listed_apart_and_left_out_of_the_statistics(
    name: str,
) -> None:
    # Without a BOS a one-word text has no scored token: before, its NaN voided p, AUROC, CI and mean.
    seen = [f"The Memorised Sentence Number {i} goes on for a while" for i in range(6)]
    unseen = [f"A Sentence Never Shown, number {i} goes on for a while" for i in range(6)]
    ctx = ProbeContext("b", reference=part("unseen", ["Lone", *unseen]))
    probe = get_probe(name).from_options(no_bos(name))
    result = await probe.run(part("seen", ["Word", *seen]), Runner(MockModel(seen=seen)), ctx)
    assert [(u.id, u.reason) for u in result.unscored] == [("seen0", NO_TOKENS)]
    assert result.unscored[0].detail["tokens"] == 0 and result.unscored[0].detail["bos"] is False
    assert [s.id for s in result.items] == [f"seen{i}" for i in range(1, 7)]
    st = result.statistic
    assert st is not None and st.n == 6 and st.n_reference == 6
    assert st.effect == 1.0 and st.p_value is not None and st.p_value < 0.01
    assert st.effect_ci is not None and math.isfinite(st.effect_ci.low)
    assert result.mean is not None and math.isfinite(result.mean) and result.mean_ci is not None
    assert f"1 of 7 items could not be scored, excluded from the mean and the test: {NO_TOKENS} (1)" in (
        result.notes
    )
    assert any(
        n.startswith("1 of 7 'unseen' items could not be scored, excluded from the test")
        for n in result.notes
    )
    assert any("BOS token prepended: no" in n for n in result.notes)


async def test_a_partition_with_no_scorable_item_reports_no_mean_and_no_test() -> None:
    ctx = ProbeContext("b", reference=part("unseen", ["a b", "c d"]))
    result = (
        await get_probe("loss")
        .from_options({"add_bos": False})
        .run(part("p", ["x", "y"]), Runner(MockModel()), ctx)
    )
    assert result.items == () and len(result.unscored) == 2
    assert result.mean is None and result.mean_ci is None and result.statistic is None
    assert "no scorable item in 'p': no test was possible" in result.notes


def test_an_item_score_is_finite_by_construction() -> None:
    with pytest.raises(ValidationError):
        ItemScore(id="x", score=math.nan)
    with pytest.raises(ValidationError):
        ItemScore(id="x", score=-math.inf)


async def test_a_report_with_unscorable_items_round_trips(tmp_path: Path) -> None:
    seen, unseen = part("seen", ["x", "a b c", "d e f"]), part("unseen", ["y", "g h i", "j k l"])
    bench = Benchmark("b", "jsonl", {"seen": seen, "unseen": unseen}, source="memory", sha256="0" * 64)
    probes = [get_probe(n).from_options(no_bos(n)) for n in SCORE_PROBES]
    report = await scan(
        bench,
        Runner(MockModel()),
        probes,
        model_spec="mock",
        partitions=["seen"],
        reference=unseen,
        reference_label="unseen",
    )
    assert all(r.skipped is None and [u.id for u in r.unscored] == ["seen0"] for r in report.probes)
    assert all(r.statistic is not None and r.statistic.n == 2 for r in report.probes)
    path = tmp_path / "r.json"
    report.write(path)
    assert "null" not in "".join(line for line in path.read_text().splitlines() if '"score"' in line)
    assert ScanReport.read(path).findings() == report.findings()


_OPENED: list[str] = []
_CLOSED: list[str] = []


class _CountedReference(MockModel):
    def __init__(self) -> None:
        super().__init__(name="counted")
        _OPENED.append(self.identity.name)

    async def aclose(self) -> None:
        _CLOSED.append(self.identity.name)


@register_backend("counted-ref")
def _counted_reference(spec: ModelSpec) -> MockModel:
    return _CountedReference()


async def test_a_scan_shares_one_reference_model_across_concurrent_partitions() -> None:
    # `hf` would load the reference weights once per partition, all at the same time.
    _OPENED.clear()
    _CLOSED.clear()
    parts = {n: part(n, [f"{n} text number {i}" for i in range(4)]) for n in ("a", "b", "c", "unseen")}
    bench = Benchmark("b", "text", parts, source="memory", sha256="0" * 64)
    probe = get_probe("reference").from_options({"model": "counted-ref:x"})
    report = await scan(
        bench,
        Runner(MockModel()),
        [probe],
        model_spec="mock",
        reference=parts["unseen"],
        reference_label="unseen",
    )
    assert [r.partition for r in report.probes] == ["a", "b", "c"]
    assert all(r.skipped is None and r.statistic is not None for r in report.probes)
    assert _OPENED == ["counted"] and _CLOSED == ["counted"], "one reference client, closed once"
    # A later run, after the scan closed it, opens a fresh one and closes it again.
    await probe.run(parts["a"], Runner(MockModel()), ProbeContext("b"))
    assert _OPENED == ["counted"] * 2 and _CLOSED == ["counted"] * 2
