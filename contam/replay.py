"""Replay guided completion: score completions made elsewhere, without calling any model.

Input is JSONL, one pair a line: `partition`, `reference` (the true continuation), `guided` (the
completion under the guided prompt, which names the dataset), optionally `general` (under the
general prompt) and `id` (default: the line number). Each instance gets its match label
(`probes._text_match`) and ROUGE-L and word edit similarity against the reference; each partition
gets the counts of each label, the paper's rule (at least 1 exact or 2 near-exact: contaminated)
and, when every instance has a `general` completion, the paired one-sided Wilcoxon test of guided
over general ROUGE-L.

The output names (`instances`, `partitions` and their fields) are a public contract.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contam.errors import InputError
from contam.results import PartitionStatistic
from contam.stats import paired_greater
from probes._generation import edit_similarity, rouge_l, words
from probes._text_match import (
    LABELS,
    NEAR_EXACT_MIN_SIMILARITY,
    PAPER_MIN_EXACT,
    PAPER_MIN_NEAR_EXACT,
    MatchLabel,
    match_label,
    paper_rule,
)
from probes.guided import compared_head

__all__ = [
    "SCHEMA_VERSION",
    "GuidedPair",
    "MatchCounts",
    "ReplayInstance",
    "ReplayPartition",
    "ReplayResult",
    "Scores",
    "read_pairs",
    "replay_guided",
    "score_pairs",
]

SCHEMA_VERSION = "1.0"

REQUIRED = ("partition", "reference", "guided")
OPTIONAL = ("general", "id")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class GuidedPair:
    """One input line, checked."""

    id: str
    partition: str
    reference: str
    guided: str
    general: str | None
    line: int


class Scores(_Frozen):
    """One completion against the reference continuation, each in [0, 1]."""

    rouge_l: float = Field(allow_inf_nan=False, description="ROUGE-L F1 (rouge-score, no stemming)")
    edit_similarity: float = Field(
        allow_inf_nan=False, description="1 - word-level Levenshtein distance / the longer length"
    )


class ReplayInstance(_Frozen):
    id: str
    partition: str
    line: int = Field(description="the input line the pair was read from")
    match: MatchLabel = Field(description="the guided completion's match label: exact, near_exact or none")
    guided: Scores
    general: Scores | None = Field(default=None, description="null when the line had no general completion")


class MatchCounts(_Frozen):
    exact: int
    near_exact: int
    none: int


class ReplayPartition(_Frozen):
    partition: str
    n: int
    counts: MatchCounts
    contaminated: bool = Field(
        description=f"the paper's rule: at least {PAPER_MIN_EXACT} exact or {PAPER_MIN_NEAR_EXACT} near-exact"
    )
    p_value: float | None = Field(
        description="one-sided paired Wilcoxon p-value, guided over general ROUGE-L; null without general"
    )
    statistic: PartitionStatistic | None = Field(
        default=None, description="the paired test in full: statistic, rank-biserial effect, n"
    )
    note: str | None = Field(default=None, description="why there is no p-value, when there is none")


class MatcherInfo(_Frozen):
    near_exact_min_similarity: float
    paper_min_exact: int
    paper_min_near_exact: int


class InputInfo(_Frozen):
    path: str
    sha256: str
    pairs: int = Field(description="pairs read (blank lines are not pairs)")


class ReplayResult(_Frozen):
    schema_version: str = SCHEMA_VERSION
    kind: Literal["guided"] = "guided"
    input: InputInfo | None = None
    matcher: MatcherInfo
    instances: tuple[ReplayInstance, ...]
    partitions: tuple[ReplayPartition, ...]

    def write(self, path: str | Path) -> None:
        """Atomically: a temporary file beside `path`, then a rename, so no reader sees half a file."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A fresh name per writer, opened with "x" so it gets the umask's mode (mkstemp's is 0600).
        tmp = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with tmp.open("x", encoding="utf-8") as f:
                f.write(self.model_dump_json(indent=2))
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def read(cls, path: str | Path) -> ReplayResult:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def read_pairs(path: str | Path) -> list[GuidedPair]:
    """Every pair of a JSONL file, or an `InputError` naming the file, line and field of the first
    fault: malformed JSON, a line that is not an object, a missing, non-string or unknown field, an
    empty partition or id, a reference without a word, an id repeated within a partition, or no
    pair at all. Blank lines are skipped; `general` and `id` may be null (as absent)."""
    return _parse_pairs(_read_bytes(path), str(path))


def _read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None


def _parse_pairs(data: bytes, where: str) -> list[GuidedPair]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError("not valid UTF-8; re-encode it as UTF-8", path=where, line=line) from None
    pairs: list[GuidedPair] = []
    first_line: dict[tuple[str, str], int] = {}
    # Lines end at \n only: splitlines() would also cut at U+2028 or U+0085 inside a JSON string.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        pair = _parse_line(raw, where, number)
        key = (pair.partition, pair.id)
        if key in first_line:
            raise InputError(
                f"duplicate id {pair.id!r} in partition {pair.partition!r} (first on line {first_line[key]})",
                path=where,
                line=number,
                field="id",
            )
        first_line[key] = number
        pairs.append(pair)
    if not pairs:
        raise InputError("no pairs: the file is empty or blank", path=where)
    return pairs


def _parse_line(raw: str, where: str, number: int) -> GuidedPair:
    def error(message: str, field: str | None = None) -> InputError:
        return InputError(message, path=where, line=number, field=field)

    try:
        row: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise error(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(row, dict):
        raise error(f"expected a JSON object, got {_json_type(row)}")
    for name in row:
        if name not in REQUIRED and name not in OPTIONAL:
            known = ", ".join((*REQUIRED, *OPTIONAL))
            raise error(f"unknown field (the fields are {known})", field=name)
    values: dict[str, str | None] = {}
    for name in (*REQUIRED, *OPTIONAL):
        value = row.get(name)
        if value is None:
            if name in REQUIRED:
                raise error("missing" if name not in row else "is null; expected a string", field=name)
            values[name] = None
        elif not isinstance(value, str):
            raise error(f"expected a string, got {_json_type(value)}", field=name)
        else:
            values[name] = value
    partition, reference, guided = (values[name] or "" for name in REQUIRED)
    if not partition.strip():
        raise error("is empty", field="partition")
    if values["id"] is not None and not values["id"].strip():
        raise error("is empty", field="id")
    if not words(reference):
        raise error("has no words: nothing to compare a completion with", field="reference")
    return GuidedPair(
        id=values["id"] if values["id"] is not None else str(number),
        partition=partition,
        reference=reference,
        guided=guided,
        general=values["general"],
        line=number,
    )


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _scores(completion: str, reference: str) -> Scores:
    # As the guided probe scores: only the completion's first n + max(2, n/10) words, so a
    # completion that goes on past the continuation is not penalised for it.
    head = compared_head(completion, reference)
    return Scores(
        rouge_l=rouge_l(head, reference), edit_similarity=edit_similarity(head, reference)
    )


def score_pairs(pairs: Sequence[GuidedPair], *, source: InputInfo | None = None) -> ReplayResult:
    """Label and score every pair, then summarise each partition (in order of first appearance)."""
    if not pairs:
        raise ValueError("score_pairs needs at least one pair")
    instances = tuple(
        ReplayInstance(
            id=pair.id,
            partition=pair.partition,
            line=pair.line,
            match=match_label(pair.guided, pair.reference),
            guided=_scores(pair.guided, pair.reference),
            general=None if pair.general is None else _scores(pair.general, pair.reference),
        )
        for pair in pairs
    )
    by_partition: dict[str, list[ReplayInstance]] = {}
    for instance in instances:
        by_partition.setdefault(instance.partition, []).append(instance)
    return ReplayResult(
        input=source,
        matcher=MatcherInfo(
            near_exact_min_similarity=NEAR_EXACT_MIN_SIMILARITY,
            paper_min_exact=PAPER_MIN_EXACT,
            paper_min_near_exact=PAPER_MIN_NEAR_EXACT,
        ),
        instances=instances,
        partitions=tuple(_summarise(name, members) for name, members in by_partition.items()),
    )


def _summarise(partition: str, instances: Iterable[ReplayInstance]) -> ReplayPartition:
    members = list(instances)
    counts: dict[str, int] = {label: 0 for label in LABELS}
    for instance in members:
        counts[instance.match] += 1
    statistic, note = None, None
    missing = sum(instance.general is None for instance in members)
    if missing:
        note = (
            f"no paired test: {missing} of {len(members)} instances have no general completion, "
            "and the test compares guided with general on every instance"
        )
    else:
        statistic = paired_greater(
            [m.guided.rouge_l for m in members],
            [m.general.rouge_l for m in members if m.general is not None],
            name="guided - general ROUGE-L",
        )
    return ReplayPartition(
        partition=partition,
        n=len(members),
        counts=MatchCounts(**counts),
        contaminated=paper_rule(counts),
        p_value=None if statistic is None else statistic.p_value,
        statistic=statistic,
        note=note,
    )


def replay_guided(path: str | Path) -> ReplayResult:
    """Read `path` (see `read_pairs`) and score it."""
    data = _read_bytes(path)
    pairs = _parse_pairs(data, str(path))
    digest = hashlib.sha256(data).hexdigest()
    return score_pairs(pairs, source=InputInfo(path=str(path), sha256=digest, pairs=len(pairs)))
