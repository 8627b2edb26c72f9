"""`guided`: guided vs general completion (Golchin & Surdeanu, "Time Travel in LLMs", ICLR 2024).

Each item is cut in two. The model is asked twice for the second piece: once by a **guided** prompt
that names the dataset, the split and the label and asks for the continuation exactly as it appears
in the dataset, once by a **general** prompt that asks for a continuation without naming the
dataset. A model that has seen the item reproduces more of it when told where it comes from. Needs
generation only, so it runs on chat-only APIs.

- **Cut.** A fraction is drawn per item, uniform in [0.4, 0.7], from a seed made of the scan seed and
  the item id (the official code draws one point for all items), and measured in whitespace-
  delimited words. The cut is at the sentence boundary (after `.`, `!`, `?` or `…`, possibly closed
  by a quote or bracket, but not after a list label like `B.`, an initialism like `U.S.` or a title
  like `Dr.`; or at a line break; for code, at line breaks only) nearest the drawn point
  among those that fall inside the window; when the text has one sentence, or no boundary falls in
  the window, at the word boundary nearest the drawn point. An item with a prompt and a reference is
  cut inside the reference: the first piece is the prompt, the separator the published text puts
  between them, and the head of the reference; a one-word reference is the whole continuation. An
  item of one word, without a reference, cannot be cut and is unscored.
- **Task** (which templates): `auto` picks `code` when the benchmark's name is HumanEval-, MBPP- or
  code-like or most items look like code; `nli` or `summarisation` when the name says so (mnli,
  snli, rte, ... / xsum, cnn, samsum, ...); `qa` when most items have a prompt and a reference;
  else `classification`, the paper's single-instance template, which names the label when the item
  has one and reads as a generic "instance" template when not.
- **Requests.** Greedy; guided and general requests of every item (the reference's too) go to
  the runner in one call.
  `max_tokens` unset: 3 tokens per whitespace-delimited word of the continuation plus 32 (a chat
  model's preamble, a tokenizer's split of code), at most `max_tokens_cap`. Completion-form requests
  stop at a blank line (`\\n\\n\\n` for code) and at a new `Dataset:` header, each unless the
  continuation itself holds it.
- **Reading a chat answer.** The first fenced code block, when there is one, is taken; a leading
  cue (`Second piece:`, `Answer:`, ...) is dropped, and so is a restatement of the first piece (its
  last 8 words found near the start of the answer: everything up to them, and a cue after them).
  Completion-form answers are read as they are.
- **Scores.** ROUGE-L F1 and word-level edit similarity of each completion against the true
  continuation, on the completion's first n + max(2, n/10) words (n = the continuation's words), so
  a completion that goes on past the continuation is not penalised. Item score = guided ROUGE-L
  minus general ROUGE-L (higher = more likely seen).
- **Match labels.** `exact` / `near_exact` / `none` for each completion, from `probes._text_match`
  (rule and thresholds there). `judge=SPEC` also asks a second model, with a few-shot prompt in the
  paper's style, whether each guided completion is an exact or near-exact match; its label goes in
  the item detail beside the matcher's (`judge`, None when its answer opens with none of exact,
  near-exact, no; `judge_answer` the answer). The judge is asked in chat form when it is chat-only,
  else by a completion prompt ending in `Answer:`, stopped at a newline; greedy, 8 tokens.
- **Partition, with a reference** (`ctx.reference`, a partition the model cannot have seen): the
  reference's items are cut, prompted, completed and scored exactly as the tested items, in the same
  call, and the partition's item scores are tested against theirs as the likelihood probes' are: a
  one-sided Mann-Whitney U, effect the AUROC with a bootstrap CI (`contam.stats.compare_to_reference`;
  the reference's scores in `reference_items`). The test compares guided - general gains, so a model
  that does better under the guided prompt on every item alike (it knows the dataset's style, or
  follows the instruction better) gains on the reference as much and is not flagged; only what the
  model does for the tested items alone is. Exactly the same treatment includes the prompt: the
  reference's items are named as the tested partition is, same dataset, same split name (the tested
  partition's), same task, form and templates. Naming the reference's own split instead would make
  the two prompts differ by more than membership: a model that answers `Split: test` differently
  from `Split: unseen` (or from a file reference's `reference:NAME`, which names no published split
  at all) would shift the reference's scores for a reason that is not membership, and the test
  would read that shift as contamination or hide it. The cost: the reference's guided requests
  depend on the tested partition, so each tested partition pays for its own (its general requests
  are shared through the call cache).
- **Partition, without a reference** (or with the partition itself as reference): no test. The
  paired one-sided Wilcoxon signed-rank test of guided over general ROUGE-L
  (`contam.stats.paired_greater`, in `params["paired_wilcoxon"]` and a note) assumes guided - general
  is symmetric about zero on unseen items, which a model that knows the dataset's style breaks
  without having seen an item; its null is not measured, so it is reported as a description, and
  `statistic` is None with a note saying why (the verdict engine then has no test from this probe).
- **The paper's rule** (contaminated with at least 1 exact or 2 near-exact guided completions) is
  reported beside them, in the notes and in `params["paper_rule"]` =
  `{"counts": {label: n}, "contaminated": bool}` (`paper_rule_judge` from the judge's labels,
  `paper_rule_reference` on the reference's items, where it should not fire). The paper applies it
  to 10 instances; on more, more chances make it flag more easily, and it has no stated error rate:
  it never decides a verdict here.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from contam.models.base import GenerateRequest, ModelClient
from contam.probe import Probe, ProbeContext, ProbeParams, scales
from contam.registry import register_probe
from contam.resolve import ModelRef
from contam.results import ItemScore, ProbeResult, UnscoredItem
from contam.stats import compare_to_reference, mean_ci, paired_greater
from contam.types import Item, Partition
from probes._generation import (
    Form,
    PromptForm,
    edit_similarity,
    generate_request,
    item_seed,
    resolve_form,
    rouge_l,
    words,
)
from probes._guided_templates import BUILTIN, Task, TemplatesRef, UserTemplates, render
from probes._text_match import LABELS, MatchLabel, match_label, paper_rule

__all__ = [
    "LABELS",
    "WINDOW",
    "Cut",
    "GuidedParams",
    "GuidedProbe",
    "Split",
    "clean_completion",
    "compared_head",
    "cut_point",
    "judge_label",
    "judge_prompt",
    "paper_rule",
    "partition_summary",
    "resolve_task",
    "split_item",
]

WINDOW = (0.4, 0.7)  # where the cut may fall, as a fraction of the words
TOO_SHORT = "one word and no reference: nothing to cut"
NO_WORDS = "the continuation has no word to compare"
RESTATED_WORDS = 8  # a restated first piece is recognised by this many of its last words
MAX_TOKENS_CAP = 512

Boundary = Literal["sentence", "line", "word", "start"]

_SPAN = re.compile(r"\S+")
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
# Not a sentence's end: a list label ("B."), an initialism ("U.S.", "e.g.") or a title ("Dr.").
_NOT_AN_END = re.compile(r"^(?:\w|\w+\.\S+|Mr|Mrs|Ms|Dr|Prof|St|vs)\.$", re.IGNORECASE)
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
# A label the answer opens with; "Answer" and the like only capitalised, as `answer: int = 0` is code.
_CUE = re.compile(r"^\W*(?:(?i:second piece|sentence 2)|Answer|Solution|Continuation)\s*:[ \t]*\n?")
_CODE_NAME = re.compile(r"humaneval|human-eval|mbpp|apps|code", re.IGNORECASE)
_NLI_NAME = re.compile(r"nli|rte|scitail|hans", re.IGNORECASE)
_SUMMARY_NAME = re.compile(r"xsum|cnn|dailymail|samsum|gigaword|summ", re.IGNORECASE)
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |return\b|for .+:\s*$|while .+:\s*$|if .+:\s*$|"
    r"elif .+:\s*$|else:\s*$|#include|public |private |function\b|const |let |var )",
    re.MULTILINE,
)
# The published names of the built-in benchmarks, as a guided prompt should say them.
DISPLAY_NAMES: Mapping[str, str] = {
    "gsm8k": "GSM8K",
    "humaneval": "HumanEval",
    "truthfulqa": "TruthfulQA",
    "truthfulqa-mc": "TruthfulQA",
}


class GuidedParams(ProbeParams):
    form: PromptForm = Field(
        default="auto",
        description="chat (an instruction), completion (a text a base model continues) or auto "
        "(chat for chat-only models, else completion); a forced form the model cannot serve skips",
    )
    task: Literal["auto", "classification", "nli", "summarisation", "qa", "code"] = Field(
        default="auto",
        description="which templates: auto = code for code benchmarks, nli / summarisation by the "
        "benchmark's name, qa for prompt/reference items, else classification",
    )
    templates: TemplatesRef | None = Field(
        default=None,
        description="your own templates: a JSON file on the command line, a registered template set "
        'on the service; the file is {"guided": {"chat": ..., "completion": ...}, '
        '"general": {...}} over {dataset} {split} {label} {first_piece}; missing ones are built in',
    )
    dataset: str | None = Field(
        default=None, description="the dataset's name in the guided prompt (default: the benchmark's)"
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="tokens per completion; unset: 3 per word of the continuation + 32, at most "
        "max_tokens_cap",
        json_schema_extra=scales("max_tokens"),
    )
    max_tokens_cap: int = Field(
        default=MAX_TOKENS_CAP,
        ge=1,
        description="the most tokens per completion",
        json_schema_extra=scales("max_tokens"),
    )
    judge: ModelRef | None = Field(
        default=None,
        description="an LLM judge (a model spec on the command line, a registered model's name on "
        "the service) that labels each guided completion exact / "
        "near-exact / no, beside the matcher",
    )


@dataclass(frozen=True, slots=True)
class Cut:
    offset: int  # where the continuation starts, in the text that was cut
    boundary: Boundary


@dataclass(frozen=True, slots=True)
class Split:
    """An item cut in two: the first piece the model is shown and the continuation it should give."""

    first_piece: str
    continuation: str
    fraction: float  # the drawn fraction
    cut: Cut
    cut_in: Literal["text", "reference"]


def cut_point(text: str, fraction: float, *, lines: bool = False) -> Cut | None:
    """Where to cut `text`, `fraction` of the way through its words (None for fewer than two words).

    A sentence boundary (a line break only, with `lines`) inside `WINDOW` nearest the drawn point,
    else the word boundary nearest it; the continuation starts at a word, or at a line's start
    (indentation and all) for a line cut.
    """
    spans = [m.span() for m in _SPAN.finditer(text)]
    n = len(spans)
    if n < 2:
        return None
    target = fraction * n

    def boundary(k: int) -> bool:  # between word k-1 and word k
        if "\n" in text[spans[k - 1][1] : spans[k][0]]:
            return True
        if lines:
            return False
        word = text[spans[k - 1][0] : spans[k - 1][1]]
        return _SENTENCE_END.search(word) is not None and _NOT_AN_END.match(word) is None

    inside = [k for k in range(1, n) if WINDOW[0] * n <= k <= WINDOW[1] * n and boundary(k)]
    if inside:
        k = min(inside, key=lambda k: (abs(k - target), k))
        if lines:
            return Cut(text.rindex("\n", spans[k - 1][1], spans[k][0]) + 1, "line")
        return Cut(spans[k][0], "sentence")
    k = min(max(math.floor(target + 0.5), 1), n - 1)
    return Cut(spans[k][0], "word")


def split_item(item: Item, scan_seed: int, *, code: bool = False) -> Split | None:
    """Cut `item` at its own drawn point (None when it cannot be cut: one word, no reference)."""
    fraction = random.Random(item_seed(scan_seed, "guided", item.id)).uniform(*WINDOW)
    if item.prompt is not None and item.reference is not None and item.reference.strip():
        cut = cut_point(item.reference, fraction, lines=code) or Cut(0, "start")
        head = item.prompt + _separator(item) + item.reference[: cut.offset]
        return Split(_trim(head, code), item.reference[cut.offset :], fraction, cut, "reference")
    found = cut_point(item.text, fraction, lines=code)
    if found is None:
        return None
    return Split(_trim(item.text[: found.offset], code), item.text[found.offset :], fraction, found, "text")


def _separator(item: Item) -> str:
    """What the published text puts between prompt and reference (a newline if it cannot be told)."""
    prompt, reference, text = item.prompt or "", item.reference or "", item.text
    if len(text) >= len(prompt) + len(reference) and text.startswith(prompt) and text.endswith(reference):
        sep = text[len(prompt) : len(text) - len(reference)]
        if len(sep) <= 32:
            return sep
    return "\n"


def _trim(first_piece: str, code: bool) -> str:
    # A prompt ending in a space makes BPE models start oddly; code keeps a final newline.
    return first_piece.rstrip(" \t") if code else first_piece.rstrip()


def looks_like_code(text: str) -> bool:
    return len(_CODE_LINE.findall(text)) >= 2


def resolve_task(requested: str, benchmark: str, items: Sequence[Item]) -> Task:
    """The templates to use for a partition (the `auto` rule is in the module docstring)."""
    if requested != "auto":
        return requested  # type: ignore[return-value]  # validated by GuidedParams
    if _CODE_NAME.search(benchmark) or 2 * sum(looks_like_code(i.text) for i in items) > len(items):
        return "code"
    if _NLI_NAME.search(benchmark):
        return "nli"
    if _SUMMARY_NAME.search(benchmark):
        return "summarisation"
    if 2 * sum(i.prompt is not None and i.reference is not None for i in items) > len(items):
        return "qa"
    return "classification"


def clean_completion(text: str, form: Form, first_piece: str) -> str:
    """The part of a completion to score (chat answers: fence, cue and restatement dropped)."""
    if form == "completion":
        return text
    fence = _FENCE.search(text)
    if fence is not None:
        text = fence.group(1)
    text = _CUE.sub("", text, count=1)
    return _CUE.sub("", _drop_restated(text, first_piece), count=1)


def _drop_restated(text: str, first_piece: str) -> str:
    piece = words(first_piece)
    tail = piece[-RESTATED_WORDS:]
    if len(tail) < RESTATED_WORDS // 2:
        return text  # too short to recognise
    tokens = list(_WORD.finditer(text))
    norm = [unicodedata.normalize("NFKC", t.group()).lower() for t in tokens]
    last_start = min(len(norm) - len(tail), len(piece) + 16)
    for i in range(last_start + 1):
        if norm[i : i + len(tail)] == tail:
            return text[tokens[i + len(tail) - 1].end() :]
    return text


def compared_head(completion: str, continuation: str) -> str:
    """The completion's first n + max(2, n/10) words (n = the continuation's), as written."""
    n = len(words(continuation))
    keep = n + max(2, math.ceil(n / 10))
    for i, m in enumerate(_WORD.finditer(completion)):
        if i == keep - 1:
            return completion[: m.end()]
    return completion


def partition_summary(labels: Sequence[str]) -> tuple[dict[str, int], bool]:
    """The count of each match label (every label present, 0 if unseen) and the paper's rule."""
    counts: dict[str, int] = dict.fromkeys(LABELS, 0)
    for label in labels:
        if label not in counts:
            raise ValueError(f"not a match label: {label!r} (labels are {', '.join(LABELS)})")
        counts[label] += 1
    return counts, paper_rule(counts)


def rule_note(counts: Mapping[str, int], contaminated: bool, *, by: str) -> str:
    n = sum(counts.values())
    said = "contaminated" if contaminated else "not contaminated"
    return (
        f"paper's rule ({by}): {said} ({counts['exact']} exact, {counts['near_exact']} near-exact of {n} "
        "guided completions; contaminated at >= 1 exact or >= 2 near-exact)"
    )


def _unscored(unscored: Sequence[UnscoredItem], total: int, effect: str, of: str = "") -> str:
    reasons = "; ".join(sorted({u.reason for u in unscored}))
    return f"{len(unscored)} of {total} {of}items could not be scored, {effect}: {reasons}"


# -- the judge -------------------------------------------------------------------------------------

_JUDGE_INSTRUCTION = (
    "Instruction: You are given a reference text and a candidate text. The candidate was generated as "
    "a copy of the reference. Decide whether the candidate is an exact match or a near-exact match "
    "of the reference. An exact match has the same words in the same order (case, punctuation and "
    "spacing aside). A near-exact match keeps the reference's sentence structure, its words and its "
    "particulars, with only small edits: a word changed or dropped, a few words added. A candidate "
    "that says the same thing in other words, or changes a name or a number, is not a match. Answer "
    "with one of: exact, near-exact, no."
)
_JUDGE_EXAMPLES = (
    (
        "the pump was installed in 1998 and has run without a single failure since.",
        "the pump was installed in 1998 and has run without a single failure since.",
        "exact",
    ),
    (
        "She sold 14 jars on Monday and twice as many on Tuesday, so 42 jars in all.",
        "She sold 14 jars on Monday and twice as many on Tuesday, so 42 jars altogether.",
        "near-exact",
    ),
    (
        "The river floods each spring, when snow melts in the hills above the town.",
        "Every spring the river overflows because the snow in the nearby hills melts.",
        "no",
    ),
    (
        "return sorted(set(values))[:k]",
        "return sorted(values)[-k:]",
        "no",
    ),
    (
        "The treaty was signed in Vienna by four of the five delegations.",
        "The treaty was signed in Vienna by four of five delegations present.",
        "near-exact",
    ),
)
_JUDGE_ANSWER = re.compile(r"^\W*(exact|near[-_ ]?exact|no|none)\b", re.IGNORECASE)


def judge_prompt(reference: str, candidate: str) -> str:
    """The few-shot judge prompt (the paper's, in our words and with our own examples)."""
    shots = "\n\n".join(
        f"Example {i}:\nReference text: {ref}\nCandidate text: {cand}\nAnswer: {answer}"
        for i, (ref, cand, answer) in enumerate(_JUDGE_EXAMPLES, start=1)
    )
    query = f"Reference text: {reference}\nCandidate text: {candidate}\nAnswer:"
    return f"{_JUDGE_INSTRUCTION}\n\n{shots}\n\n{query}"


def judge_label(answer: str) -> MatchLabel | None:
    """The label a judge's answer gives, or None if it gives none."""
    found = _JUDGE_ANSWER.match(answer.strip())
    if found is None:
        return None
    word = found.group(1).lower()
    return "exact" if word == "exact" else "none" if word in ("no", "none") else "near_exact"


# -- the probe -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    item: Item
    split: Split
    request: dict[str, Any]  # what guided and general requests share


@register_probe
class GuidedProbe(Probe):
    name = "guided"
    needs = ()
    Params = GuidedParams
    params: GuidedParams

    def user_templates(self, ctx: ProbeContext) -> UserTemplates | None:
        """The user's template file, through the resolver (a path, or a registered name)."""
        if self.params.templates is None:
            return None
        loaded = ctx.resolver.load(self.params.templates, field="guided.templates")
        assert isinstance(loaded, UserTemplates)
        return loaded

    def max_tokens(self, continuation: str) -> int:
        if self.params.max_tokens is not None:
            return self.params.max_tokens
        return min(self.params.max_tokens_cap, 3 * len(continuation.split()) + 32)

    @staticmethod
    def stops(form: Form, task: Task, continuation: str) -> tuple[str, ...]:
        if form == "chat":
            return ()
        candidates = ("\n\n\n", "\n# Dataset:") if task == "code" else ("\n\n", "\nDataset:")
        return tuple(s for s in candidates if s not in continuation)

    def _plan(
        self, items: Sequence[Item], form: Form, task: Task, seed: int
    ) -> tuple[list[_Plan], list[UnscoredItem]]:
        """Each item's cut and request settings, or why it cannot be scored."""
        plans: list[_Plan] = []
        unscored: list[UnscoredItem] = []
        for item in items:
            split = split_item(item, seed, code=task == "code")
            if split is None or not words(split.continuation):
                reason = TOO_SHORT if split is None else NO_WORDS
                unscored.append(UnscoredItem(id=item.id, reason=reason, detail={}))
                continue
            shared = {
                "max_tokens": self.max_tokens(split.continuation),
                "stop": self.stops(form, task, split.continuation),
            }
            plans.append(_Plan(item, split, shared))
        return plans, unscored

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        p = self.params
        form, why = resolve_form(p.form, model.capabilities)
        if form is None:
            return self.skipped(partition, f"{why} (guided.form={p.form})")
        task = resolve_task(p.task, ctx.benchmark, partition.items)
        user = self.user_templates(ctx)
        templates = user.over(BUILTIN[task]) if user is not None else BUILTIN[task]
        dataset = p.dataset or DISPLAY_NAMES.get(ctx.benchmark, ctx.benchmark)
        ref = ctx.reference if ctx.reference is not None and ctx.reference.name != partition.name else None
        plans, unscored = self._plan(partition.items, form, task, ctx.seed)
        ref_plans, ref_unscored = self._plan(ref.items, form, task, ctx.seed) if ref else ([], [])
        requests: list[GenerateRequest] = []
        for plan in (*plans, *ref_plans):
            for kind in ("guided", "general"):
                text = render(
                    templates.get(kind, form),
                    dataset=dataset,
                    split=partition.name,  # the reference's items too: see the module docstring
                    label=plan.item.label,
                    first_piece=plan.split.first_piece,
                )
                requests.append(generate_request(form, text, **plan.request))
        # One call for both partitions, so the runner batches them together.
        results = await model.generate(requests) if requests else []
        completions = [r.completions[0].text if r.completions else "" for r in results]
        scored = [
            self._score(plan, completions[2 * i], completions[2 * i + 1], form)
            for i, plan in enumerate((*plans, *ref_plans))
        ]
        items, ref_items = scored[: len(plans)], scored[len(plans) :]
        params: dict[str, Any] = {
            **self.param_dict(),
            "task_used": task,
            "form_used": form,
            "dataset_named": dataset,
            "seed": ctx.seed,
        }
        if user is not None:
            params["templates_sha256"] = user.sha256
        notes = [
            f"task {task}, {form} form; the guided prompt names dataset {dataset!r} and split "
            f"{partition.name!r} (and the label, when the item has one), the general prompt does not; "
            "scores compare each completion's first n + max(2, n/10) words with the n-word true "
            "continuation"
        ]
        if ref is not None:
            notes.append(
                f"the reference {ref.name!r}'s items are cut, prompted (naming split {partition.name!r}, "
                "as the tested items are) and scored exactly as the tested items, so membership is "
                "the only difference between the two"
            )
        counts, contaminated = partition_summary([s.detail["match"] for s in items])
        params["paper_rule"] = {"counts": counts, "contaminated": contaminated}
        notes.append(rule_note(counts, contaminated, by="matcher"))
        if ref is not None:
            ref_counts, ref_contaminated = partition_summary([s.detail["match"] for s in ref_items])
            params["paper_rule_reference"] = {"counts": ref_counts, "contaminated": ref_contaminated}
            notes.append(
                rule_note(ref_counts, ref_contaminated, by=f"matcher, on the reference {ref.name!r}")
            )
        if p.judge and items:
            async with ctx.resolver.model(p.judge, field="guided.judge") as judge:
                items = await self._judged(items, plans, judge)
                params["judge_model"] = judge.identity.key
            judged = [s.detail["judge"] for s in items if s.detail["judge"] is not None]
            counts, contaminated = partition_summary(judged)
            params["paper_rule_judge"] = {"counts": counts, "contaminated": contaminated}
            notes.append(rule_note(counts, contaminated, by=f"judge {params['judge_model']}"))
            if len(judged) < len(items):
                notes.append(f"the judge gave no label for {len(items) - len(judged)} of {len(items)} items")
        if len(items) > 10:
            notes.append(
                "the paper applies its rule to 10 instances; on more, it flags more easily and has no "
                "stated error rate: only the test against a reference has a p-value"
            )
        if items:
            paired = paired_greater(
                [s.detail["guided_rouge_l"] for s in items], [s.detail["general_rouge_l"] for s in items]
            )
            params["paired_wilcoxon"] = paired.model_dump(mode="json")
            notes.append(
                f"paired Wilcoxon signed-rank of guided over general ROUGE-L (descriptive, not the test): "
                f"rank-biserial r {paired.effect:.2f}, p = {paired.p_value:.3g} (n {paired.n}); its "
                "null, that guided - general is symmetric about zero on unseen items, fails for a model "
                "that knows the dataset's style without having seen these items"
            )
        if unscored:
            notes.append(_unscored(unscored, len(partition.items), "excluded from the mean and the test"))
        if ref_unscored and ref is not None:
            notes.append(
                _unscored(ref_unscored, len(ref.items), "excluded from the test", of=f"{ref.name!r} ")
            )
        values = [s.score for s in items]
        mean, interval = mean_ci(values) if values else (None, None)
        statistic = None
        if ctx.reference is None:
            notes.append(
                "no reference partition given: scores reported, no test was possible (the paired "
                "test's null, guided - general symmetric about zero on unseen items, is not calibrated: "
                "a model that knows the dataset's style scores higher under the guided prompt without "
                "having seen the items; give a reference of unseen items)"
            )
        elif ref is None:
            notes.append(
                f"the reference partition is {partition.name!r} itself: scores reported, no test was possible"
            )
        elif values and ref_items:
            statistic = compare_to_reference(
                values, [s.score for s in ref_items], reference_name=ref.name, seed=ctx.seed
            )
        else:
            empty = partition.name if not values else ref.name
            notes.append(f"no scorable item in {empty!r}: no test was possible")
        return ProbeResult(
            probe=self.name,
            partition=partition.name,
            params=params,
            items=tuple(items),
            unscored=tuple(unscored),
            reference_items=tuple(ref_items),
            mean=mean,
            mean_ci=interval,
            statistic=statistic,
            notes=tuple(notes),
        )

    @staticmethod
    def _score(plan: _Plan, guided: str, general: str, form: Form) -> ItemScore:
        continuation = plan.split.continuation
        detail: dict[str, Any] = {
            "cut": plan.split.cut.offset,
            "cut_in": plan.split.cut_in,
            "cut_fraction": round(plan.split.fraction, 4),
            "boundary": plan.split.cut.boundary,
            "continuation_words": len(words(continuation)),
        }
        for kind, raw in (("guided", guided), ("general", general)):
            cleaned = clean_completion(raw, form, plan.split.first_piece)
            head = compared_head(cleaned, continuation)
            detail[f"{kind}_rouge_l"] = rouge_l(head, continuation)
            detail[f"{kind}_edit"] = edit_similarity(head, continuation)
            detail[f"{kind}_match"] = match_label(cleaned, continuation)
            detail[f"{kind}_completion"] = head
        detail["match"] = detail["guided_match"]
        return ItemScore(
            id=plan.item.id, score=detail["guided_rouge_l"] - detail["general_rouge_l"], detail=detail
        )

    async def _judged(
        self, items: Sequence[ItemScore], plans: Sequence[_Plan], judge: ModelClient
    ) -> list[ItemScore]:
        form, _ = resolve_form("auto", judge.capabilities)
        requests = [
            generate_request(
                form or "chat",
                judge_prompt(plan.split.continuation, score.detail["guided_completion"]),
                max_tokens=8,
                stop=("\n",) if form == "completion" else (),
            )
            for score, plan in zip(items, plans, strict=True)
        ]
        results = await judge.generate(requests) if requests else []
        out = []
        for score, result in zip(items, results, strict=True):
            answer = result.completions[0].text if result.completions else ""
            detail = {**score.detail, "judge": judge_label(answer), "judge_answer": answer.strip()}
            out.append(score.model_copy(update={"detail": detail}))
        return out
