"""Column mapping: from whatever columns a file has to `Item` fields, checked row by row."""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contam.benchmarks.readers import Location, Row
from contam.errors import BenchmarkError
from contam.types import BenchmarkFormat, Item

FIELDS = ("id", "text", "prompt", "reference", "choices", "answer", "label", "partition")

# Column names tried, in order, when the user maps nothing for a field.
_GUESSES: dict[str, tuple[str, ...]] = {
    "id": ("id", "task_id", "idx", "uid"),
    "text": ("text",),
    "prompt": ("prompt", "question", "input", "query"),
    "reference": ("reference", "canonical_solution", "output", "target", "solution", "answer"),
    "choices": ("choices", "options"),
    "answer": ("answer_index", "answer_idx", "label_index", "answer"),
    "label": ("label",),
    "partition": ("partition", "split"),
}


class FieldMap(BaseModel):
    """Which column feeds which `Item` field. `choices` may name several columns (A, B, C, D)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = None
    text: str | None = None
    prompt: str | None = None
    reference: str | None = None
    choices: tuple[str, ...] | None = None
    answer: str | None = None
    label: str | None = None
    partition: str | None = None
    join: str = Field(default="\n", description="joins prompt and reference into text when no text column")

    @classmethod
    def parse(cls, pairs: Iterable[str]) -> FieldMap:
        """From CLI `--field item_field=column` pairs; `choices=A,B,C,D` names several columns."""
        values: dict[str, Any] = {}
        for pair in pairs:
            key, eq, column = pair.partition("=")
            key = key.strip()
            if not eq or not column:
                raise BenchmarkError(f"{pair!r} is not FIELD=COLUMN", field="--field")
            if key not in FIELDS:
                raise BenchmarkError(
                    f"unknown item field {key!r}; one of {', '.join(FIELDS)}", field="--field"
                )
            values[key] = tuple(c.strip() for c in column.split(",")) if key == "choices" else column.strip()
        return cls(**values)

    def resolve(self, columns: Sequence[str], fmt: BenchmarkFormat | None) -> FieldMap:
        """Fill unmapped fields from the columns present, without stealing a mapped column."""
        taken = {v for k, v in self.model_dump().items() if isinstance(v, str) and k != "join"}
        taken |= set(self.choices or ())
        filled: dict[str, Any] = {}
        multiple_choice = fmt == "mc" or bool(self.choices) or any(c in columns for c in _GUESSES["choices"])
        for name, guesses in _GUESSES.items():
            if getattr(self, name) is not None:
                continue
            for guess in guesses:
                if guess in columns and guess not in taken:
                    # `answer` is a reference in QA files but an index in multiple-choice files.
                    if guess == "answer" and name == "reference" and multiple_choice:
                        continue
                    if guess == "answer" and name == "answer" and not multiple_choice:
                        continue
                    filled[name] = (guess,) if name == "choices" else guess
                    taken.add(guess)
                    break
        return self.model_copy(update=filled)

    def infer_format(self) -> BenchmarkFormat:
        if self.choices:
            return "mc"
        if self.prompt and self.reference:
            return "qa"
        return "text"


def _cell(row: Row, column: str, loc: Location, field: str, *, required: bool) -> Any:
    if column not in row:
        if required:
            known = ", ".join(sorted(row)) or "none"
            raise loc.error(f"missing column {column!r} (columns: {known})", field=field)
        return None
    return row[column]


def _text(value: Any, loc: Location, field: str) -> str:
    if value is None:
        raise loc.error("is empty", field=field)
    if not isinstance(value, str):
        if isinstance(value, (int, float)):
            return str(value)
        raise loc.error(f"expected text, got {type(value).__name__}", field=field)
    return value


def _choices(fm: FieldMap, row: Row, loc: Location) -> tuple[str, ...]:
    assert fm.choices is not None
    if len(fm.choices) > 1:
        return tuple(_text(_cell(row, c, loc, c, required=True), loc, c) for c in fm.choices)
    column = fm.choices[0]
    value = _cell(row, column, loc, column, required=True)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise loc.error(f"malformed JSON list: {exc.msg}", field=column) from None
        else:
            value = [part for part in stripped.split("; ") if part]
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise loc.error("expected a list of at least two choices", field=column)
    return tuple(_text(v, loc, column) for v in value)


def _answer_index(value: Any, n_choices: int, loc: Location, field: str) -> int:
    if isinstance(value, str):
        token = value.strip()
        if len(token) == 1 and token.upper() in string.ascii_uppercase:
            index = string.ascii_uppercase.index(token.upper())
        elif token.lstrip("-").isdigit():
            index = int(token)
        else:
            raise loc.error(f"answer {value!r} is neither an index nor a letter", field=field)
    elif isinstance(value, int) and not isinstance(value, bool):
        index = value
    elif isinstance(value, float) and value.is_integer():  # pandas/Parquet store 1 as 1.0 beside NaNs
        index = int(value)
    else:
        raise loc.error(f"answer {value!r} is neither an index nor a letter", field=field)
    if not 0 <= index < n_choices:
        raise loc.error(f"answer index {index} out of range for {n_choices} choices", field=field)
    return index


def render_mc(prompt: str, choices: Sequence[str], answer_index: int | None) -> str:
    """The usual published layout of a multiple-choice item."""
    letters = string.ascii_uppercase
    lines = [prompt, *(f"{letters[i]}. {c}" for i, c in enumerate(choices))]
    if answer_index is not None:
        lines.append(f"Answer: {letters[answer_index]}")
    return "\n".join(lines)


def row_to_item(
    fm: FieldMap,
    fmt: BenchmarkFormat,
    row: Row,
    loc: Location,
    *,
    default_id: str,
    default_partition: str,
    meta: Mapping[str, Any] | None = None,
) -> Item:
    """One validated `Item`; any problem raises with the file, line or row, and field."""
    item_id = default_id
    if fm.id is not None:
        item_id = _text(_cell(row, fm.id, loc, fm.id, required=True), loc, fm.id)
        if not item_id.strip():
            raise loc.error("empty id", field=fm.id)
    partition = default_partition
    if fm.partition is not None:
        partition = _text(
            _cell(row, fm.partition, loc, fm.partition, required=True), loc, fm.partition
        ).strip()
        if not partition:
            raise loc.error("empty partition name", field=fm.partition)
    prompt = reference = None
    if fm.prompt is not None:
        prompt = _text(_cell(row, fm.prompt, loc, fm.prompt, required=True), loc, fm.prompt)
    if fm.reference is not None and fmt != "mc":
        reference = _text(
            _cell(row, fm.reference, loc, fm.reference, required=fmt == "qa"), loc, fm.reference
        )
    choices = answer_index = None
    if fmt == "mc":
        if fm.choices is None:
            raise loc.error(
                "multiple-choice format needs a choices column (--field choices=COL)", field="choices"
            )
        choices = _choices(fm, row, loc)
        if fm.answer is not None:
            answer_index = _answer_index(
                _cell(row, fm.answer, loc, fm.answer, required=True), len(choices), loc, fm.answer
            )
    if fmt == "qa" and (prompt is None or reference is None):
        raise loc.error(
            "QA format needs prompt and reference columns (--field prompt=COL --field reference=COL)"
        )
    label = None
    if fm.label is not None:
        raw = _cell(row, fm.label, loc, fm.label, required=False)
        label = None if raw is None else str(raw)

    text: str | None = None
    if fm.text is not None:
        text = _text(_cell(row, fm.text, loc, fm.text, required=True), loc, fm.text)
    elif fmt == "mc" and prompt is not None and choices is not None:
        text = render_mc(prompt, choices, answer_index)
    elif prompt is not None and reference is not None:
        text = prompt + fm.join + reference
    elif prompt is not None:
        text = prompt
    if text is None:
        raise loc.error("no text: map a text column (--field text=COL) or a prompt column", field="text")
    if not text.strip():
        raise loc.error("is empty", field=fm.text or fm.prompt or "text")
    return Item(
        id=item_id,
        partition=partition,
        text=text,
        prompt=prompt,
        reference=reference,
        choices=choices,
        answer_index=answer_index,
        label=label,
        meta=meta or {},
    )
