"""CDD (output-distribution peakedness) on scripted mock models: the peak rule, the flag rule and
presets, unscored and skipped cases, the requests it sends, seeds, caching, the reference test and
the CLI."""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contam.cli.main import cli
from contam.errors import InputError
from contam.models.base import Capabilities, Completion, GenerateRequest, GenerateResult
from contam.models.mock import MockModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.report import ScanReport
from contam.runner import Runner
from contam.types import Item, Partition
from probes._generation import item_seed
from probes.cdd import (
    CHAT_CONTINUE,
    EMPTY_GREEDY,
    NO_PROMPT,
    NO_TOKEN_IDS,
    CDDProbe,
    cdd_prompt,
    peakedness,
)

Ids = tuple[int, ...]
Script = dict[str, tuple[Ids, list[Ids]]]  # prompt -> (greedy ids, sample ids)


def completion(ids: Ids, *, with_ids: bool = True) -> Completion:
    """Word `t<k>` is token k, so the text and the ids say the same thing."""
    return Completion(
        text=" ".join(f"t{i}" for i in ids), finish_reason="length", token_ids=ids if with_ids else None
    )


def prompt_of(request: GenerateRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    assert request.messages
    return request.messages[-1].content


def scripted(script: Script, *, with_ids: bool = True) -> Callable[[GenerateRequest], GenerateResult]:
    """A model that answers each prompt with the greedy output and samples it is given."""

    def generate(request: GenerateRequest) -> GenerateResult:
        greedy, samples = script[prompt_of(request)]
        if request.temperature == 0:
            outs = [greedy]
        else:
            assert request.n == len(samples)
            outs = samples
        return GenerateResult(completions=tuple(completion(o, with_ids=with_ids) for o in outs))

    return generate


def memorising(request: GenerateRequest) -> GenerateResult:
    """A fake model that repeats its greedy output in most samples of a seen item ("seen" in the
    prompt) and spreads its samples on any other; its draws follow the request's seed."""
    prompt = prompt_of(request)
    greedy = tuple((zlib.crc32(f"{prompt}:{j}".encode()) % 1000) for j in range(20))
    if request.temperature == 0:
        return GenerateResult(completions=(completion(greedy),))
    rng = random.Random(request.seed)
    outs = []
    for _ in range(request.n):
        copy = "seen" in prompt and rng.random() < 0.7
        outs.append(greedy if copy else tuple(rng.randrange(1000) for _ in range(20)))
    return GenerateResult(completions=tuple(completion(o) for o in outs))


class Recording(MockModel):
    """Remembers each batch handed to `generate`, to count calls and read requests."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batches: list[list[GenerateRequest]] = []

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self.batches.append(list(requests))
        return await super().generate(requests)


class NoN(MockModel):
    @property
    def capabilities(self) -> Capabilities:
        return super().capabilities.model_copy(update={"n_samples": False})


def items(name: str, prompts: Sequence[str]) -> Partition:
    return Partition(
        name,
        tuple(
            Item(id=f"{name}{i}", partition=name, text=f"{p} answer", prompt=p) for i, p in enumerate(prompts)
        ),
    )


def probe(**options: object) -> CDDProbe:
    made = get_probe("cdd").from_options(options)
    assert isinstance(made, CDDProbe)
    return made


def edit(ids: Ids, positions: Sequence[int]) -> Ids:
    """`ids` with the tokens at `positions` substituted (one edit each)."""
    return tuple(t + 10_000 if i in positions else t for i, t in enumerate(ids))


G20: Ids = tuple(range(20))


# -- the peak -----------------------------------------------------------------------------------


def test_peak_is_the_fraction_within_alpha_l_inclusive() -> None:
    # l = 20, alpha * l = 1: one edit is within (inclusive), two are not.
    result = peakedness(G20, [G20, edit(G20, [3]), edit(G20, [3, 4]), edit(G20, [0, 1, 2])], 0.05)
    assert result.distances == (0, 1, 2, 3)
    assert (result.longest, result.bound, result.within, result.peak) == (20, 1.0, 2, 0.5)


def test_l_is_the_longest_sequence_of_the_item() -> None:
    # A 40-token sample makes l = 40 for every pair (the official code), so two edits are within.
    long = G20 + tuple(range(100, 120))
    result = peakedness(G20, [edit(G20, [3, 4]), long], 0.05)
    assert result.longest == 40 and result.bound == 2.0
    assert result.distances == (2, 20) and result.peak == 0.5
    # A longer greedy output counts too.
    assert peakedness(long, [long[:38]], 0.05).peak == 1.0  # 2 deletions, l = 40


def test_sequences_are_cut_before_comparing() -> None:
    greedy = tuple(range(150))
    differs_late = tuple(range(100)) + tuple(range(500, 550))
    result = peakedness(greedy, [differs_late, edit(greedy, [99])], 0.0, cut=100)
    assert result.longest == 100 and result.distances == (0, 1) and result.peak == 0.5
    assert peakedness(greedy, [differs_late], 0.0).peak == 0.0  # uncut, they differ


def test_boundary_survives_float_rounding_and_alpha_zero_needs_exact_copies() -> None:
    greedy = tuple(range(100))
    assert 0.29 * 100 < 29  # the float product falls short of the integer
    assert peakedness(greedy, [edit(greedy, range(29))], 0.29).peak == 1.0
    assert peakedness(greedy, [edit(greedy, range(30))], 0.29).peak == 0.0
    strict = peakedness(greedy, [greedy, edit(greedy, [0]), greedy, edit(greedy, [5])], 0.0)
    assert strict.peak == 0.5


def test_characters_compare_as_strings() -> None:
    assert peakedness("abcdefghij", ["abcdefghiX", "abcdefgXYZ"], 0.1).peak == 0.5


# -- parameters and presets ---------------------------------------------------------------------


def test_presets_and_explicit_parameters() -> None:
    default = probe().params
    assert (default.alpha_used, default.xi_used) == (0.05, 0.01)
    assert (default.samples, default.temperature, default.max_tokens) == (50, 0.8, 100)
    strict = probe(preset="strict").params
    assert (strict.alpha_used, strict.xi_used) == (0.0, 0.2)
    mixed = probe(preset="strict", alpha="0.1").params  # explicit wins, the rest from the preset
    assert (mixed.alpha_used, mixed.xi_used) == (0.1, 0.2)
    assert probe(xi=0.5).params.alpha_used == 0.05


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"preset": "strict", "alpha": 0.1, "xi": 0.3}, "cdd.preset", "would set nothing"),
        ({"preset": "loose"}, "cdd.preset", "'default' or 'strict'"),
        ({"alpha": 1.5}, "cdd.alpha", "less than or equal to 1"),
        ({"xi": 1.0}, "cdd.xi", "less than 1"),
        ({"temperature": 0}, "cdd.temperature", "greater than 0"),
        ({"samples": 0}, "cdd.samples", "greater than or equal to 1"),
        ({"nope": 1}, "cdd.nope", "Extra inputs"),
    ],
)
def test_bad_parameters_are_refused(options: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        probe(**options)
    assert caught.value.field == field


# -- prompts ------------------------------------------------------------------------------------


def test_prompt_is_the_prompt_field_else_the_first_half_of_the_text() -> None:
    assert cdd_prompt(Item(id="a", partition="p", text="q\nr", prompt="q")) == ("q", "prompt")
    assert cdd_prompt(Item(id="b", partition="p", text="one  two three\nfour five")) == (
        "one  two",
        "text_head",
    )
    assert cdd_prompt(Item(id="c", partition="p", text="one two")) == ("one", "text_head")
    assert cdd_prompt(Item(id="d", partition="p", text="  single ")) is None


async def test_chat_only_model_gets_chat_requests() -> None:
    part = Partition(
        "p",
        (
            Item(id="a", partition="p", text="What is 2+2? 4", prompt="What is 2+2?"),
            Item(id="b", partition="p", text="the quick brown fox jumps"),
        ),
    )
    model = Recording(chat_only=True)
    result = await probe(samples=3).run(part, model, ProbeContext("b"))
    assert result.skipped is None and result.params["form_used"] == "chat"
    [batch] = model.batches
    assert all(r.prompt is None and r.messages for r in batch)
    assert [prompt_of(r) for r in batch] == ["What is 2+2?"] * 2 + [
        CHAT_CONTINUE.format(head="the quick")
    ] * 2
    assert any("1 of 2 items have no prompt field" in n for n in result.notes)

    forced = await probe(form="completion").run(part, Recording(chat_only=True), ProbeContext("b"))
    assert forced.skipped is not None and "chat-only" in forced.skipped


# -- per-item rules through the probe -----------------------------------------------------------


async def test_flag_rule_is_peak_above_xi() -> None:
    other = tuple(range(1000, 1020))
    script: Script = {
        "one copy": (G20, [G20] + [other] * 99),  # peak 0.01: not above xi = 0.01
        "two copies": (G20, [G20] * 2 + [other] * 98),  # peak 0.02: flagged
        "none": (G20, [other] * 100),
    }
    part = items("p", list(script))
    result = await probe(samples=100).run(part, MockModel(generate_fn=scripted(script)), ProbeContext("b"))
    assert [s.score for s in result.items] == [0.01, 0.02, 0.0]
    assert [s.detail["flagged"] for s in result.items] == [False, True, False]
    one = result.items[0].detail
    assert one["samples"] == 100 and one["greedy_length"] == 20 and one["basis"] == "token_ids"
    assert one["distances"] == {"min": 0, "median": 20.0, "max": 20} and one["l"] == 20
    flagged = result.params["flagged"]
    assert (flagged["count"], flagged["n"]) == (1, 3) and flagged["rate"] == pytest.approx(1 / 3)
    assert flagged["ci"]["method"] == "wilson" and flagged["ci"]["low"] < 1 / 3 < flagged["ci"]["high"]
    assert any("1 of 3 scored items flagged (peak > 0.01)" in n for n in result.notes)
    assert result.params["alpha_used"] == 0.05 and result.params["xi_used"] == 0.01


async def test_strict_preset_counts_only_exact_copies() -> None:
    script: Script = {
        "near": (G20, [edit(G20, [0])] * 5),  # within 0.05 * 20 = 1, but not a copy
        "exact": (G20, [G20] * 2 + [edit(G20, [0])] * 3),  # peak 0.4 > 0.2
        "few": (G20, [G20] + [edit(G20, [0])] * 4),  # peak 0.2: not above 0.2
    }
    model = MockModel(generate_fn=scripted(script))
    default = await probe(samples=5).run(items("p", list(script)), model, ProbeContext("b"))
    assert [s.score for s in default.items] == [1.0, 1.0, 1.0]
    strict = await probe(samples=5, preset="strict").run(items("p", list(script)), model, ProbeContext("b"))
    assert [s.score for s in strict.items] == [0.0, 0.4, 0.2]
    assert [s.detail["flagged"] for s in strict.items] == [False, True, False]
    assert any("alpha=0.0, xi=0.2 (preset strict)" in n for n in strict.notes)


async def test_empty_greedy_output_is_unscored_not_peaked() -> None:
    script: Script = {"empty": ((), [()] * 4), "full": (G20, [G20] * 4)}
    part = Partition(
        "p",
        (
            *items("p", list(script)).items,
            Item(id="lonely", partition="p", text="word"),  # nothing to prompt with
        ),
    )
    result = await probe(samples=4).run(part, MockModel(generate_fn=scripted(script)), ProbeContext("b"))
    assert [s.id for s in result.items] == ["p1"] and result.mean == 1.0
    assert {u.id: u.reason for u in result.unscored} == {"p0": EMPTY_GREEDY, "lonely": NO_PROMPT}
    assert result.params["flagged"]["n"] == 1
    assert any("2 of 3 items could not be scored" in n for n in result.notes)


async def test_model_without_n_samples_is_skipped() -> None:
    model = NoN(generate_fn=scripted({}))
    result = await probe().run(items("p", ["x y"]), model, ProbeContext("b"))
    assert result.skipped is not None and "n samples per request" in result.skipped
    assert model.calls == []


async def test_backend_without_token_ids_is_skipped_unless_chars_are_allowed() -> None:
    script: Script = {"a b": (G20, [G20, edit(G20, [1])]), "c d": (G20, [edit(G20, range(10))] * 2)}
    model = MockModel(generate_fn=scripted(script, with_ids=False))
    part = items("p", list(script))
    skipped = await probe(samples=2).run(part, model, ProbeContext("b"))
    assert skipped.skipped == NO_TOKEN_IDS and skipped.items == ()

    chars = await probe(samples=2, allow_chars=True, alpha=0.1).run(part, model, ProbeContext("b"))
    assert chars.skipped is None and chars.params["basis"] == "characters"
    assert all(s.detail["basis"] == "characters" for s in chars.items)
    assert any("compared as characters, not token ids" in n for n in chars.notes)
    # "t1" -> "t10001" is 4 insertions, l = 73 characters: within 0.1 * 73; ten such edits are not.
    assert [s.score for s in chars.items] == [1.0, 0.0]

    with_ids = await probe(samples=2, allow_chars=True).run(
        part, MockModel(generate_fn=scripted(script)), ProbeContext("b")
    )
    assert with_ids.params["basis"] == "token_ids"
    assert not any("compared as characters" in n for n in with_ids.notes)


# -- requests, seeds, caching -------------------------------------------------------------------


async def test_one_sampled_request_with_n_and_one_greedy_per_item_in_one_call() -> None:
    model = Recording()
    part = items("p", [f"prompt number {i}" for i in range(5)])
    result = await probe(samples=7).run(part, model, ProbeContext("b", seed=3))
    assert result.skipped is None and len(result.items) == 5
    [batch] = model.batches  # every item's requests in one generate call
    assert len(batch) == 10
    sampled, greedy = batch[0::2], batch[1::2]
    assert all(r.n == 7 and r.temperature == 0.8 and r.max_tokens == 100 for r in sampled)
    assert [r.seed for r in sampled] == [item_seed(3, "cdd", f"p{i}") for i in range(5)]
    assert all(r.n == 1 and r.temperature == 0 and r.seed is None for r in greedy)
    assert (
        [r.prompt for r in greedy] == [r.prompt for r in sampled] == [f"prompt number {i}" for i in range(5)]
    )
    assert result.params["seed"] == 3 and result.params["form_used"] == "completion"


async def test_seeds_are_stable_across_runs_and_differ_across_items() -> None:
    part = items("p", [f"prompt number {i}" for i in range(6)])

    async def seeds(scan_seed: int) -> list[int | None]:
        model = Recording()
        await probe(samples=2).run(part, model, ProbeContext("b", seed=scan_seed))
        return [r.seed for r in model.batches[0] if r.temperature > 0]

    first = await seeds(0)
    assert first == await seeds(0)
    assert len(set(first)) == 6 and None not in first
    assert set(first).isdisjoint(await seeds(1))


async def test_second_run_through_the_same_runner_makes_no_new_calls() -> None:
    model = MockModel(generate_fn=memorising)
    runner = Runner(model)
    part = items("p", [f"seen prompt {i}" for i in range(10)])
    first = await probe(samples=5).run(part, runner, ProbeContext("b"))
    calls = len(model.calls)
    assert calls == 20
    again = await probe(samples=5).run(part, runner, ProbeContext("b"))
    assert len(model.calls) == calls and runner.stats.cache_hits == 20
    assert again.items == first.items


async def test_memorised_partition_beats_reference_in_the_rank_test() -> None:
    seen = items("seen", [f"seen question {i}" for i in range(20)])
    unseen = items("unseen", [f"fresh question {i}" for i in range(20)])
    model = Runner(MockModel(generate_fn=memorising))
    result = await probe(samples=10).run(seen, model, ProbeContext("b", reference=unseen))
    st = result.statistic
    assert st is not None and st.name == "mann_whitney_u" and st.reference == "unseen"
    assert st.p_value is not None and st.p_value < 0.01
    assert st.effect is not None and st.effect > 0.9
    assert (st.n, st.n_reference) == (20, 20)
    assert result.params["flagged"]["count"] == 20

    control = await probe(samples=10).run(unseen, model, ProbeContext("b", reference=seen))
    assert control.statistic is not None and control.statistic.p_value is not None
    assert control.statistic.p_value > 0.5
    assert control.params["flagged"]["count"] == 0


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_scan_with_cdd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAM_CACHE_DIR", str(tmp_path / "cache"))
    rows = [
        {"id": f"s{i}", "text": f"a benchmark text number {i} about apples", "partition": "test"}
        for i in range(6)
    ]
    bench = tmp_path / "b.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "r.json"
    args = ["scan", str(bench), "--model", "mock:name=m", "--probe", "cdd", "--param", "cdd.samples=10"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    [cdd] = ScanReport.read(out).probes
    assert cdd.probe == "cdd" and cdd.skipped is None and len(cdd.items) == 6
    assert cdd.params["samples"] == 10 and cdd.params["basis"] == "token_ids"
    assert all(s.detail["samples"] == 10 and s.detail["prompt"] == "text_head" for s in cdd.items)
    assert cdd.params["flagged"]["n"] == 6
    assert any("no test was possible" in n for n in cdd.notes)
