"""`cdd`: output-distribution peakedness (Dong et al., "Generalization or Memorization: Data
Contamination and Trustworthy Evaluation for Large Language Models", ACL 2024).

A model that memorised an item keeps producing (nearly) the same continuation when sampled; one
that did not spreads its samples. Per item:

- **Prompt.** The item's `prompt` field when it has one; otherwise the first half of its text by
  words (the first `floor(words / 2)` words, cut at the end of a word so the model supplies the
  next word with its leading space). An item with neither a prompt nor two words is unscored. In
  completion form the prompt is sent as is; in chat form a prompt field is the user message as is
  (the task input, as the paper queries chat models) and a head of text is preceded by
  `CHAT_CONTINUE`.
- **Outputs.** `samples` draws at `temperature` in ONE request with `n` (the server shares the
  prompt), seeded per item from the scan seed, plus one greedy output; all items' requests go to
  the runner in one call, so they are batched, de-duplicated and cached.
- **Peak.** The edit distance (`rapidfuzz` Levenshtein) between each sample and the greedy output
  on the backend's token ids, each cut to `max_tokens`. As in the official code
  (`get_edit_distance_distribution_star` + `calculate_ratio`), `l` is the length of the longest of
  the item's sequences (the greedy output and every sample, after the cut), and the peak is the
  fraction of samples with distance <= `alpha * l` (inclusive; float rounding of `alpha * l` is
  absorbed). The item is flagged when peak > `xi`. The official code's text clean-up for code
  (`strip_code`) is not applied: the backend's ids are compared as generated, an end-of-sequence
  id included where the backend reports one, the same for the greedy output and the samples.
- **Presets.** `default` (alpha = 0.05, xi = 0.01, the official code's detection setting) and
  `strict` (alpha = 0, xi = 0.2, its setting for real-world use: only exact copies of the greedy
  output count). An explicit `alpha` or `xi` wins over the preset; naming a preset and giving both
  is refused, since the preset would set nothing.

An empty (or whitespace-only) greedy output says nothing about memorisation, so such an item is
unscored with that reason rather than counted as peaked. A backend that returns no token ids (an
OpenAI-compatible API other than vLLM's) gets the probe skipped, unless `allow_chars=true`: then
the whole completions are compared as characters (each is at most `max_tokens` tokens long) and
the notes say so; such peaks do not compare with the paper's.

The item score is the peak. The partition gets the rate of flagged items with a Wilson interval
(a threshold rule with no stated false-positive rate, in the notes and in `params["flagged"]`),
and, with a reference partition, the one-sided Mann-Whitney test of the peaks (`ItemScoreProbe`).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from rapidfuzz.distance import Levenshtein

from contam.errors import ModelCallError
from contam.models.base import Capabilities, Completion, GenerateRequest, ModelClient
from contam.probe import ItemScoreProbe, ProbeContext, ProbeParams, scales
from contam.registry import register_probe
from contam.results import ItemScore, ProbeResult, UnscoredItem
from contam.stats import wilson_interval
from contam.types import Item, Partition
from probes._generation import Form, PromptForm, generate_request, item_seed, resolve_form

Preset = Literal["default", "strict"]
Basis = Literal["token_ids", "characters"]

PRESETS: dict[Preset, tuple[float, float]] = {"default": (0.05, 0.01), "strict": (0.0, 0.2)}

CHAT_CONTINUE = "Continue the following text:\n\n{head}"

NO_TOKEN_IDS = "the backend returns no token ids (CDD compares token sequences)"
EMPTY_GREEDY = "the greedy output is empty: it says nothing about memorisation"
NO_PROMPT = "no prompt field and fewer than two words: nothing to prompt with"

_WORD = re.compile(r"\S+")
_EPS = 1e-9  # alpha * l in floats can land just below an integer (0.29 * 100 = 28.999...)


class CDDParams(ProbeParams):
    samples: int = Field(
        default=50,
        ge=1,
        description="samples drawn per item, in one request with n",
        json_schema_extra=scales("samples"),
    )
    temperature: float = Field(default=0.8, gt=0.0, description="sampling temperature of the samples")
    max_tokens: int = Field(
        default=100,
        ge=1,
        description="tokens generated per output; token sequences are cut to this",
        json_schema_extra=scales("max_tokens"),
    )
    alpha: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="a sample is 'the same' as the greedy output within edit distance alpha * l "
        "(l: the item's longest sequence); unset: from the preset (0.05)",
    )
    xi: float | None = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        description="an item is flagged when its peak exceeds xi; unset: from the preset (0.01)",
    )
    preset: Preset | None = Field(
        default=None,
        description="default: alpha=0.05, xi=0.01 (official detection setting); strict: alpha=0, "
        "xi=0.2 (official real-world setting); an explicit alpha or xi wins",
    )
    form: PromptForm = Field(
        default="auto", description="auto (chat for chat-only models, else completion), chat or completion"
    )
    allow_chars: bool = Field(
        default=False,
        description="where the backend returns no token ids, compare characters instead of skipping",
    )

    # After alpha and xi, so both are in `info.data`; runs only when a preset is named.
    @field_validator("preset")
    @classmethod
    def _preset_sets_something(cls, preset: Preset | None, info: ValidationInfo) -> Preset | None:
        if preset is not None and info.data.get("alpha") is not None and info.data.get("xi") is not None:
            raise ValueError(
                f"preset {preset!r} sets alpha and xi, and both were given, so it would set nothing: "
                "drop the preset or one of alpha and xi"
            )
        return preset

    @property
    def alpha_used(self) -> float:
        return self.alpha if self.alpha is not None else PRESETS[self.preset or "default"][0]

    @property
    def xi_used(self) -> float:
        return self.xi if self.xi is not None else PRESETS[self.preset or "default"][1]


@dataclass(frozen=True, slots=True)
class Peakedness:
    """One item's sample-to-greedy distances and the peak they give."""

    peak: float
    distances: tuple[int, ...]
    longest: int  # l: the longest sequence among the greedy output and the samples
    bound: float  # alpha * l
    within: int  # samples with distance <= bound


def peakedness(
    greedy: Sequence[Hashable],
    samples: Sequence[Sequence[Hashable]],
    alpha: float,
    cut: int | None = None,
) -> Peakedness:
    """The fraction of `samples` within edit distance `alpha * l` of `greedy`, all cut to `cut`.

    `l` is the longest of the cut sequences, greedy included (the official code's convention).
    Sequences are token ids or strings (characters).
    """
    if not samples:
        raise ValueError("peakedness needs at least one sample")
    g = greedy[:cut]
    cut_samples = [s[:cut] for s in samples]
    longest = max(len(g), *(len(s) for s in cut_samples))
    distances = tuple(int(Levenshtein.distance(g, s)) for s in cut_samples)
    bound = alpha * longest
    within = sum(d <= bound + _EPS for d in distances)
    return Peakedness(within / len(distances), distances, longest, bound, within)


def cdd_prompt(item: Item) -> tuple[str, Literal["prompt", "text_head"]] | None:
    """The item's prompt field, else the first half of its text by words; None when neither exists."""
    if item.prompt is not None and item.prompt.strip():
        return item.prompt, "prompt"
    ends = [m.end() for m in _WORD.finditer(item.text)]
    if len(ends) < 2:
        return None
    return item.text[: ends[len(ends) // 2 - 1]], "text_head"


class _Skip(Exception):
    """The probe cannot run on this model; the message is the reason."""


@register_probe
class CDDProbe(ItemScoreProbe):
    name = "cdd"
    needs = ("n_samples",)
    Params = CDDParams
    params: CDDParams

    def _form(self, caps: Capabilities) -> Form:
        form, why = resolve_form(self.params.form, caps)
        if form is None:
            raise _Skip(why or "the prompt form cannot be served")
        return form

    def requests(
        self, item: Item, prompt: str, source: str, form: Form, ctx: ProbeContext
    ) -> list[GenerateRequest]:
        """The item's sampled request (n samples, seeded) and its greedy request."""
        p = self.params
        text = CHAT_CONTINUE.format(head=prompt) if form == "chat" and source == "text_head" else prompt
        seed = item_seed(ctx.seed, self.name, item.id)
        return [
            generate_request(
                form, text, max_tokens=p.max_tokens, temperature=p.temperature, n=p.samples, seed=seed
            ),
            generate_request(form, text, max_tokens=p.max_tokens, temperature=0.0),
        ]

    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore | UnscoredItem]:
        p = self.params
        form = self._form(model.capabilities)
        prompts = {item.id: cdd_prompt(item) for item in items}
        asked = [(item, found) for item in items if (found := prompts[item.id]) is not None]
        requests = [
            r for item, (prompt, source) in asked for r in self.requests(item, prompt, source, form, ctx)
        ]
        results = await model.generate(requests) if requests else []  # one call for every item
        outputs: dict[str, tuple[tuple[Completion, ...], Completion]] = {}
        for i, (item, _) in enumerate(asked):
            sampled, greedy = results[2 * i].completions, results[2 * i + 1].completions
            if len(sampled) != p.samples or not greedy:
                raise ModelCallError(
                    f"asked for {p.samples} samples and 1 greedy output for item {item.id!r}; the "
                    f"backend returned {len(sampled)} and {len(greedy)}"
                )
            outputs[item.id] = (sampled, greedy[0])
        every = [c for sampled, greedy in outputs.values() for c in (*sampled, greedy)]
        basis: Basis = "token_ids"
        if any(c.token_ids is None for c in every):
            if not p.allow_chars:
                raise _Skip(NO_TOKEN_IDS)
            basis = "characters"
        scored: list[ItemScore | UnscoredItem] = []
        for item in items:
            found = prompts[item.id]
            if found is None:
                scored.append(self.item_score(item.id, math.nan, {}, unscorable=NO_PROMPT))
                continue
            scored.append(self._score(item.id, *outputs[item.id], basis=basis, source=found[1]))
        return scored

    def _score(
        self,
        item_id: str,
        sampled: Sequence[Completion],
        greedy: Completion,
        *,
        basis: Basis,
        source: str,
    ) -> ItemScore | UnscoredItem:
        p = self.params

        def seq(c: Completion) -> Sequence[Hashable]:
            return c.token_ids if basis == "token_ids" and c.token_ids is not None else c.text

        cut = p.max_tokens if basis == "token_ids" else None  # characters: whole completions
        g = seq(greedy)[:cut]
        detail: dict[str, Any] = {
            "samples": len(sampled),
            "greedy_length": len(g),
            "basis": basis,
            "prompt": source,
        }
        if not greedy.text.strip() or not g:
            return self.item_score(item_id, math.nan, detail, unscorable=EMPTY_GREEDY)
        result = peakedness(g, [seq(c) for c in sampled], p.alpha_used, cut)
        flagged = result.peak > p.xi_used
        detail.update(
            peak=result.peak,
            flagged=flagged,
            within=result.within,
            l=result.longest,
            bound=result.bound,
            distances={
                "min": min(result.distances),
                "median": float(statistics.median(result.distances)),
                "max": max(result.distances),
            },
        )
        return self.item_score(item_id, result.peak, detail)

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        p = self.params
        if not model.capabilities.n_samples:
            return self.skipped(
                partition,
                f"model {model.identity.name!r} cannot return n samples per request (n_samples); CDD "
                f"draws its {p.samples} samples in one request so the server shares the prompt",
            )
        try:
            form = self._form(model.capabilities)
            result = await super().run(partition, model, ctx)
        except _Skip as skip:
            return self.skipped(partition, str(skip))
        return self._summarise(result, partition, form, ctx)

    def _summarise(
        self, result: ProbeResult, partition: Partition, form: Form, ctx: ProbeContext
    ) -> ProbeResult:
        """Add the flagged rate, the rule that was applied and how items were prompted."""
        p = self.params
        alpha, xi = p.alpha_used, p.xi_used
        details = [s.detail for s in result.items] + [u.detail for u in result.unscored]
        # One basis per batch of items (score_items), so one per partition.
        basis = next((d["basis"] for d in details if "basis" in d), None)
        unit = "characters" if basis == "characters" else "token ids"
        preset = f"preset {p.preset}" if p.preset else "default preset"
        overridden = [f"{k}={v}" for k, v in (("alpha", p.alpha), ("xi", p.xi)) if v is not None]
        settings = f"{preset}{' with ' + ', '.join(overridden) if overridden else ''}"
        cut = f"cut to {p.max_tokens}" if basis != "characters" else "whole completions"
        notes = [
            f"peak: the fraction of {p.samples} samples (temperature {p.temperature}) within edit "
            f"distance alpha*l of the greedy output, on {unit} ({cut}), l the item's longest "
            f"sequence; flagged when peak > xi; alpha={alpha}, xi={xi} ({settings}); {form} form",
        ]
        if basis == "characters":
            notes.append(
                "compared as characters, not token ids: the backend returns no token ids "
                "(allow_chars=true); distances and alpha*l are in characters, so these peaks do not "
                "compare with token-level ones"
            )
        heads = sum(1 for d in details if d.get("prompt") == "text_head")
        if heads:
            notes.append(
                f"{heads} of {len(partition.items)} items have no prompt field: prompted with the "
                "first half of their text (cut at a word boundary)"
            )
        flagged_info: dict[str, Any] | None = None
        if result.items:
            k, n = sum(1 for s in result.items if s.detail["flagged"]), len(result.items)
            ci = wilson_interval(k, n)
            flagged_info = {"count": k, "n": n, "rate": k / n, "ci": ci.model_dump(mode="json")}
            notes.append(
                f"{k} of {n} scored items flagged (peak > {xi}): rate {k / n:.3f}, "
                f"{ci.level:.0%} Wilson interval [{ci.low:.3f}, {ci.high:.3f}]; a threshold rule "
                "without a stated false-positive rate, not a test"
            )
        params = {
            **result.params,
            "alpha_used": alpha,
            "xi_used": xi,
            "form_used": form,
            "basis": basis,
            "seed": ctx.seed,
            "flagged": flagged_info,
        }
        return result.model_copy(update={"params": params, "notes": (*result.notes, *notes)})
