"""`ts_guessing_qb` and `ts_guessing_mc`: Testset Slot Guessing (Deng et al., "Investigating Data
Contamination in Modern Benchmarks for LLMs", NAACL 2024).

Hide one piece of a benchmark item and ask the model for it. A piece that cannot be inferred from
what is left in view, guessed exactly, says the model has seen the item.

- **Question-based** (`ts_guessing_qb`): one word of the question (the item's `prompt`, else its
  `text`) becomes `[MASK]`. The word is the rarest eligible one by `wordfreq.zipf_frequency(w, "en")`,
  the first occurrence winning a tie. Eligible: alphabetic, at least 4 letters, a whole word (no
  letter, digit, or joining apostrophe or hyphen next to it, so neither "wasn" of "wasn't" nor "well"
  of "well-known"), not in `STOP_WORDS` (English function words of 4 letters or more, which are
  common, so seldom the rarest, but never worth masking), and occurring once in the question,
  counted case-insensitively at `\\b` boundaries, since masking one copy of a repeated word leaves
  the other in view. No tagger is used; the paper's Stanford POS tagger needs Java. Hit: the
  answer's first word equals the masked word after `normalize` (NFKC, lower case, punctuation
  dropped), so "Paris." and "Paris, the capital" both hit, "The answer is Paris" does not.
- **Multiple choice** (`ts_guessing_mc`): one **wrong** option, chosen by a seed from the scan seed
  and the item id, becomes `[MASK]`; the question and the other options are shown with their
  letters. The answer is scored against that masked wrong option (the peer library scores it against
  the correct answer, a bug): exact match after `normalize` (the item score) and ROUGE-L F1 (in the
  item's detail). From the answer's first non-empty line, with a leading label of the masked letter
  ("B.", "B)", "Option B:") dropped. Items are skipped, with the reason, when every option is yes,
  no, true or false (the hidden option is guessable from the rest), or when two options are near
  duplicates (equal after `normalize`, or ROUGE-L F1 >= `NEAR_DUPLICATE`: one could be copied from
  the other).

Both probes prompt in the chat form (an instruction, in the paper's spirit) or the completion form
(a text a base model continues), chosen from the model's capabilities or forced. No stop
sequence: a base model often starts its answer on a new line, which a newline stop would turn
into an empty miss (all 164 HumanEval testbed answers were); the answer is read from its first
word (qb) or first non-empty line (mc) instead. Requests are greedy; all of a run's go to the
runner in one call. The partition statistic is the exact-match rate with a Wilson interval; with a
reference partition, a one-sided Fisher exact test that the rate is higher than the reference's.
"""

from __future__ import annotations

import re
import string
from abc import abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import Field

from contam.models.base import GenerateRequest, GenerateResult, ModelClient
from contam.probe import Probe, ProbeContext, ProbeParams, scales
from contam.registry import register_probe
from contam.results import ItemScore, ProbeResult, UnscoredItem
from contam.stats import rate_greater, wilson_interval
from contam.types import Item, Partition
from probes._generation import (
    Form,
    PromptForm,
    generate_request,
    item_seed,
    normalize,
    resolve_form,
    rouge_l,
    words,
)

MASK = "[MASK]"
MIN_LETTERS = 4
NEAR_DUPLICATE = 0.9  # ROUGE-L F1 between two options at or above which they count as duplicates
BINARY_OPTIONS = frozenset({"yes", "no", "true", "false"})
LETTERS = string.ascii_uppercase

# Function words of MIN_LETTERS letters or more; shorter ones are ineligible anyway.
_STOP_WORDS = """
    about above across after afterwards again against almost alone along already also although
    always among amongst another anyone anything anyway anywhere around because been before
    beforehand behind being below beside besides between beyond both cannot could does doing done
    down during each either else elsewhere enough even ever every everyone everything everywhere
    except from further have having hence here hereby herein hers herself himself however into
    itself just least less many more moreover most mostly much must myself neither never
    nevertheless next none nobody noone nothing onto other others otherwise ours ourselves over
    perhaps rather same shall should since some someone something sometime sometimes somewhere
    still such than that their theirs them themselves then thence there thereafter thereby
    therefore therein these they this those though through throughout thru thus together toward
    towards under unless until upon very were what whatever when whence whenever where whereas
    whereby wherein whether which while whither whoever whole whom whose will with within without
    would your yours yourself yourselves
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())

# A run of letters with no letter, digit or underscore beside it, and no apostrophe or hyphen that
# joins it to one ("wasn't", "well-known" are not words to mask, nor are pieces of them).
_CANDIDATE = re.compile(r"(?<!\w)(?<!\w['’-])[^\W\d_]+(?!\w)(?!['’-]\w)")

NO_WORD = (
    f"no word to mask (none alphabetic, of at least {MIN_LETTERS} letters, not a stop word and "
    "occurring once)"
)
NOT_MC = "not a multiple-choice item"
NO_ANSWER = "no answer index: which options are wrong is unknown"
NO_QUESTION = "no question (prompt) to show with the options"
NO_WRONG = "no wrong option with words to mask"
TOO_MANY = f"more than {len(LETTERS)} options"
BINARY = "yes/no or true/false options: the hidden one is guessable from the rest"
NEAR_DUP = f"near-duplicate options (equal, or ROUGE-L F1 >= {NEAR_DUPLICATE}): one gives the other away"


class TSGuessingParams(ProbeParams):
    form: PromptForm = Field(
        default="auto",
        description="auto: chat for a chat-only model, else completion; chat or completion forces it "
        "(a form the model cannot serve skips the probe)",
    )
    max_tokens: int = Field(
        default=8,
        ge=1,
        description="longest answer in tokens (greedy)",
        json_schema_extra=scales("max_tokens"),
    )


class TSGuessingMCParams(TSGuessingParams):
    max_tokens: int = Field(
        default=32,
        ge=1,
        description="longest answer in tokens (greedy)",
        json_schema_extra=scales("max_tokens"),
    )


@dataclass(frozen=True)
class MaskedWord:
    """A question with one word masked: the masked text, the word, where it was, its Zipf frequency."""

    text: str
    word: str
    start: int
    zipf: float


@dataclass(frozen=True)
class Task:
    """One item's guess to ask for: both prompt forms, what a right answer is, and what to report."""

    chat: str
    completion: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def eligible(word: str) -> bool:
    return len(word) >= MIN_LETTERS and word.isalpha() and word.lower() not in STOP_WORDS


def mask_word(question: str) -> MaskedWord | None:
    """The question with its rarest eligible word masked (first occurrence on a tie), or None."""
    best: tuple[float, int, str] | None = None
    for match in _CANDIDATE.finditer(question):
        word = match.group()
        if not eligible(word):
            continue
        if len(re.findall(rf"\b{re.escape(word)}\b", question, re.IGNORECASE)) > 1:
            continue
        key = (zipf(word), match.start(), word)
        if best is None or key[:2] < best[:2]:
            best = key
    if best is None:
        return None
    freq, start, word = best
    masked = question[:start] + MASK + question[start + len(word) :]
    return MaskedWord(text=masked, word=word, start=start, zipf=freq)


def binary_options(choices: Sequence[str]) -> bool:
    return all(normalize(c) in BINARY_OPTIONS for c in choices)


def near_duplicates(choices: Sequence[str]) -> bool:
    for i, a in enumerate(choices):
        for b in choices[i + 1 :]:
            if normalize(a) == normalize(b) or rouge_l(a, b) >= NEAR_DUPLICATE:
                return True
    return False


def masked_option(item: Item, seed: int, probe: str) -> int | None:
    """Index of the wrong option to mask, drawn from the seed among wrong options with words."""
    if item.choices is None or item.answer_index is None:
        return None
    wrong = [i for i, c in enumerate(item.choices) if i != item.answer_index and words(c)]
    if not wrong:
        return None
    return wrong[item_seed(seed, probe, item.id) % len(wrong)]


def first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def strip_label(answer: str, letter: str) -> str:
    """The answer without a leading label of the masked option ("B.", "B)", "Option B:")."""
    return re.sub(rf"^\s*(?:option\s+)?{letter}\s*[.):]\s*", "", answer, count=1, flags=re.IGNORECASE)


QB_CHAT = (
    "One word of this question from a benchmark has been replaced by {mask}. Which word was it? "
    "Reply with that single word and nothing else.\n\n"
    "Question: {question}"
)
QB_COMPLETION = (
    "One word of the benchmark question below has been replaced by {mask}. "
    "Fill in {mask} with the missing word.\n\n"
    "Question: {question}\n"
    "Answer:"
)
MC_CHAT = (
    "Here is a multiple-choice question from a benchmark, with option {letter} hidden as {mask}. "
    "From what you know of the benchmark, fill in option {letter}. It is not the same as any option "
    "shown. Reply with the text of option {letter} only.\n\n"
    "Question: {question}\n"
    "{options}"
)
MC_COMPLETION = (
    "A multiple-choice question from a benchmark, with option {letter} hidden as {mask}.\n\n"
    "Question: {question}\n"
    "{options}\n\n"
    "Fill in {mask} with the text of option {letter}.\n"
    "{letter}."
)


class _TSGuessingProbe(Probe):
    """What the two probes share: prompt, ask in one runner call, grade 1/0, test the hit rate."""

    needs = ()
    Params = TSGuessingParams
    params: TSGuessingParams
    what: ClassVar[str]  # what a hit is, for the null hypothesis
    seeded: ClassVar[bool] = False  # whether the scan seed decides what is masked

    @abstractmethod
    def task(self, item: Item, ctx: ProbeContext) -> Task | UnscoredItem: ...

    @abstractmethod
    def grade(self, task: Task, answer: str) -> tuple[float, dict[str, Any]]: ...

    def extra_notes(self, scores: Sequence[ItemScore]) -> list[str]:
        return []

    def request(self, task: Task, form: Form) -> GenerateRequest:
        text = task.completion if form == "completion" else task.chat
        return generate_request(form, text, max_tokens=self.params.max_tokens)

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        form, why = resolve_form(self.params.form, model.capabilities)
        if form is None:
            return self.skipped(partition, f"model {model.identity.name!r}: {why or 'form not served'}")
        notes: list[str] = [f"prompt form: {form}"]
        ref = ctx.reference
        if ref is None:
            notes.append("no reference partition given: rate reported, no test was possible")
        elif ref.name == partition.name:
            notes.append(f"the reference partition is {partition.name!r} itself: no test was possible")
            ref = None
        sides = [partition] if ref is None else [partition, ref]
        tasks = [[self.task(item, ctx) for item in side.items] for side in sides]
        requests = [self.request(t, form) for side in tasks for t in side if isinstance(t, Task)]
        # One runner call for the partition and its reference: batched, de-duplicated, cached.
        answers = iter(await model.generate(requests) if requests else [])
        graded = [
            [t if isinstance(t, UnscoredItem) else self._graded(item, t, next(answers))
             for item, t in zip(side.items, ts, strict=True)]
            for side, ts in zip(sides, tasks, strict=True)
        ]  # fmt: skip
        scores = [g for g in graded[0] if isinstance(g, ItemScore)]
        unscored = [g for g in graded[0] if isinstance(g, UnscoredItem)]
        if unscored:
            notes.append(_unscored_note(unscored, len(partition.items)))
        hits = sum(int(s.score) for s in scores)
        statistic = None
        if ref is not None:
            ref_scores = [g for g in graded[1] if isinstance(g, ItemScore)]
            ref_unscored = [g for g in graded[1] if isinstance(g, UnscoredItem)]
            if ref_unscored:
                notes.append(_unscored_note(ref_unscored, len(ref.items), of=f"{ref.name!r} "))
            if scores and ref_scores:
                statistic = rate_greater(
                    hits,
                    len(scores),
                    sum(int(s.score) for s in ref_scores),
                    len(ref_scores),
                    reference_name=ref.name,
                    what=self.what,
                )
            else:
                empty = partition.name if not scores else ref.name
                notes.append(f"no scorable item in {empty!r}: no test was possible")
        if scores:
            notes.append(f"exact-match rate {hits}/{len(scores)}, Wilson 95% interval")
        notes.extend(self.extra_notes(scores))
        return ProbeResult(
            probe=self.name,
            partition=partition.name,
            params={**self.param_dict(), "form_used": form, **({"seed": ctx.seed} if self.seeded else {})},
            items=tuple(scores),
            unscored=tuple(unscored),
            mean=hits / len(scores) if scores else None,
            mean_ci=wilson_interval(hits, len(scores)) if scores else None,
            statistic=statistic,
            notes=tuple(notes),
        )

    def _graded(self, item: Item, task: Task, result: GenerateResult) -> ItemScore:
        answer = result.completions[0].text if result.completions else ""
        score, detail = self.grade(task, answer)
        return ItemScore(id=item.id, score=score, detail={**task.detail, "answer": answer, **detail})


def _unscored_note(unscored: Sequence[UnscoredItem], total: int, of: str = "") -> str:
    reasons = Counter(u.reason for u in unscored)
    why = "; ".join(f"{reason} ({count})" for reason, count in sorted(reasons.items()))
    return f"{len(unscored)} of {total} {of}items skipped, left out of the rate and the test: {why}"


@register_probe
class TSGuessingQBProbe(_TSGuessingProbe):
    name = "ts_guessing_qb"
    Params = TSGuessingParams
    what = "exact guesses of the masked word"

    def task(self, item: Item, ctx: ProbeContext) -> Task | UnscoredItem:
        question = item.prompt if item.prompt is not None else item.text
        masked = mask_word(question)
        if masked is None:
            return UnscoredItem(id=item.id, reason=NO_WORD)
        return Task(
            chat=QB_CHAT.format(mask=MASK, question=masked.text),
            completion=QB_COMPLETION.format(mask=MASK, question=masked.text),
            target=masked.word,
            detail={"word": masked.word, "position": masked.start, "zipf": masked.zipf},
        )

    def grade(self, task: Task, answer: str) -> tuple[float, dict[str, Any]]:
        guess = words(answer)[:1]
        hit = guess == words(task.target)
        return float(hit), {"guess": guess[0] if guess else ""}


@register_probe
class TSGuessingMCProbe(_TSGuessingProbe):
    name = "ts_guessing_mc"
    Params = TSGuessingMCParams
    what = "exact guesses of the masked wrong option"
    seeded = True

    def task(self, item: Item, ctx: ProbeContext) -> Task | UnscoredItem:
        choices, question = item.choices, item.prompt
        reason = None
        if choices is None:
            reason = NOT_MC
        elif item.answer_index is None:
            reason = NO_ANSWER
        elif question is None:
            reason = NO_QUESTION
        elif len(choices) > len(LETTERS):
            reason = TOO_MANY
        elif binary_options(choices):
            reason = BINARY
        elif near_duplicates(choices):
            reason = NEAR_DUP
        index = masked_option(item, ctx.seed, self.name)
        if reason is None and index is None:
            reason = NO_WRONG
        if reason is not None or choices is None or question is None or index is None:
            return UnscoredItem(id=item.id, reason=reason or NO_WRONG)
        letter = LETTERS[index]
        options = "\n".join(f"{LETTERS[i]}. {MASK if i == index else c}" for i, c in enumerate(choices))
        fill = {"mask": MASK, "letter": letter, "question": question, "options": options}
        return Task(
            chat=MC_CHAT.format(**fill),
            completion=MC_COMPLETION.format(**fill),
            target=choices[index],
            detail={"masked": letter, "masked_index": index, "target": choices[index]},
        )

    def grade(self, task: Task, answer: str) -> tuple[float, dict[str, Any]]:
        guess = strip_label(first_line(answer), task.detail["masked"]).strip()
        exact = normalize(guess) == normalize(task.target)
        return float(exact), {"guess": guess, "exact": exact, "rouge_l": rouge_l(guess, task.target)}

    def extra_notes(self, scores: Sequence[ItemScore]) -> list[str]:
        if not scores:
            return []
        mean = sum(float(s.detail["rouge_l"]) for s in scores) / len(scores)
        return [
            f"scored against the masked wrong option, never the correct answer; "
            f"mean ROUGE-L F1 against it: {mean:.3f}"
        ]
