"""The guided-completion probe's prompts: built-in templates per task and form, rendering, and
the user's own template file, validated.

Templates are `str.format` strings over four placeholders: `{dataset}`, `{split}`, `{label}` and
`{first_piece}` (literal braces are written `{{` and `}}`). A line that holds `{label}` is dropped
when the item has no label, so one template serves labelled and unlabelled items. Every template
needs `{first_piece}`; a general template must not name the dataset (`{dataset}`, `{split}`),
since naming it is the one thing the guided prompt adds.

The chat instructions follow Golchin & Surdeanu ("Time Travel in LLMs", ICLR 2024), in our words:
the guided one names the dataset, the split and the label and asks for the second piece exactly as
it appears in the dataset; the general one asks for a second piece that fits the first. The
completion forms are for base models, which follow no instruction: the guided cue is a header like
those that precede a copy of an item in a data dump (`Dataset: X` / `Split: Y`), then the first
piece; the general one is the first piece alone (after the label, when the item has one).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from contam.errors import InputError
from contam.resolve import FileRef
from contam.types import content_sha256

Task = Literal["classification", "nli", "summarisation", "qa", "code"]
Kind = Literal["guided", "general"]
FormName = Literal["chat", "completion"]

TASKS: tuple[Task, ...] = ("classification", "nli", "summarisation", "qa", "code")
KINDS: tuple[Kind, ...] = ("guided", "general")
FORMS: tuple[FormName, ...] = ("chat", "completion")
PLACEHOLDERS = ("dataset", "split", "label", "first_piece")
_NAMES_DATASET = ("dataset", "split")


@dataclass(frozen=True, slots=True)
class PromptPair:
    """One template per form."""

    chat: str
    completion: str

    def get(self, form: FormName) -> str:
        return self.chat if form == "chat" else self.completion


@dataclass(frozen=True, slots=True)
class Templates:
    guided: PromptPair
    general: PromptPair

    def get(self, kind: Kind, form: FormName) -> str:
        return (self.guided if kind == "guided" else self.general).get(form)


_CUE = "Label: {label}\nFirst piece: {first_piece}\nSecond piece:"
_PROSE_GUIDED = "Dataset: {dataset}\nSplit: {split}\nLabel: {label}\n\n{first_piece}"
_PROSE_GENERAL = "Label: {label}\n\n{first_piece}"


def _pair(guided_instruction: str, general_instruction: str, cue: str = _CUE) -> tuple[str, str]:
    return f"Instruction: {guided_instruction}\n{cue}", f"Instruction: {general_instruction}\n{cue}"


def _builtin(
    guided_instruction: str,
    general_instruction: str,
    *,
    cue: str = _CUE,
    completion: tuple[str, str] = (_PROSE_GUIDED, _PROSE_GENERAL),
) -> Templates:
    guided_chat, general_chat = _pair(guided_instruction, general_instruction, cue)
    return Templates(
        guided=PromptPair(chat=guided_chat, completion=completion[0]),
        general=PromptPair(chat=general_chat, completion=completion[1]),
    )


BUILTIN: Mapping[Task, Templates] = {
    "classification": _builtin(
        "You are given the first piece of an instance from the {split} split of the {dataset} "
        "dataset. Finish the second piece of the instance exactly as it appears in the dataset. "
        "Rely only on the original form of the instance in the dataset: do not paraphrase, "
        "summarise or add anything.",
        "Finish the second piece based on the first piece, so that the two pieces together form "
        "one coherent instance (consistent with the label, when one is given).",
    ),
    "nli": _builtin(
        "You are given the first piece of a premise-hypothesis pair from the {split} split of the "
        "{dataset} dataset; the label is the relation between the two sentences. Finish the second "
        "piece exactly as it appears in the dataset: it must match the dataset's instance word "
        "for word.",
        "Finish the second piece based on the first piece, so that the two pieces form a premise "
        "and a hypothesis whose logical relation is the label given (when one is given).",
    ),
    "summarisation": _builtin(
        "You are given the first piece of an instance from the {split} split of the {dataset} "
        "dataset: a text and the beginning of its summary, or the beginning of a summary. Finish "
        "the second piece exactly as it appears in the dataset. Rely only on the original form of "
        "the summary in the dataset; do not write a summary of your own.",
        "Finish the second piece based on the first piece, so that the two pieces form one summary.",
    ),
    "qa": _builtin(
        "You are given the first piece of an instance from the {split} split of the {dataset} "
        "dataset: a question and the beginning of its answer. Finish the answer exactly as it "
        "appears in the dataset, word for word. Rely only on the original form of the instance "
        "in the dataset, not on the answer you would give yourself.",
        "Finish the answer based on the first piece, which holds a question and the beginning of its answer.",
    ),
    "code": _builtin(
        "You are given the first piece of a problem from the {split} split of the {dataset} "
        "dataset: its prompt and the beginning of its reference solution. Finish the solution "
        "exactly as it appears in the dataset, character for character. Reply with the remaining "
        "code only, without explanations.",
        "Finish the code based on the first piece, which holds a problem's prompt and the "
        "beginning of its solution. Reply with the remaining code only, without explanations.",
        cue="Label: {label}\nFirst piece:\n{first_piece}\nSecond piece:",
        completion=(
            "# Dataset: {dataset}\n# Split: {split}\n# Label: {label}\n\n{first_piece}",
            "# Label: {label}\n\n{first_piece}",
        ),
    ),
}


def fields(template: str) -> list[str]:
    """The placeholder names in `template`, in order (ValueError on unbalanced braces)."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no conversion or format spec")
        names.append(name)
    return names


def render(template: str, *, dataset: str, split: str, label: str | None, first_piece: str) -> str:
    """Fill `template`; without a label, every line that holds `{label}` is dropped."""
    if label is None:
        lines = template.split("\n")
        kept = [line for line in lines if "label" not in fields(line)]
        if len(kept) != len(lines):
            template = "\n".join(kept).lstrip("\n")
    return template.format(dataset=dataset, split=split, label=label or "", first_piece=first_piece)


def check(template: str, kind: Kind, *, where: str, path: str | None = None) -> None:
    """An `InputError` naming `path` and the field `where` unless `template` is usable."""
    try:
        names = fields(template)
    except ValueError as exc:
        raise InputError(f"not a valid template: {exc}", path=path, field=where) from None
    unknown = sorted({n for n in names if n not in PLACEHOLDERS})
    if unknown:
        raise InputError(
            f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"known: {', '.join('{' + n + '}' for n in PLACEHOLDERS)}",
            path=path,
            field=where,
        )
    if "first_piece" not in names:
        raise InputError("the template has no {first_piece}", path=path, field=where)
    named = [n for n in _NAMES_DATASET if n in names]
    if kind == "general" and named:
        raise InputError(
            f"a general template must not name the dataset ({', '.join('{' + n + '}' for n in named)}): "
            "naming it is what the guided prompt adds",
            path=path,
            field=where,
        )


@dataclass(frozen=True, slots=True)
class UserTemplates:
    """The templates a user's file gives; the rest come from the built-in ones for the task."""

    given: Mapping[tuple[Kind, FormName], str]
    path: str
    sha256: str

    def over(self, base: Templates) -> Templates:
        def pair(kind: Kind) -> PromptPair:
            own = base.guided if kind == "guided" else base.general
            return PromptPair(
                chat=self.given.get((kind, "chat"), own.chat),
                completion=self.given.get((kind, "completion"), own.completion),
            )

        return Templates(guided=pair("guided"), general=pair("general"))


class TemplatesRef(FileRef):
    """`guided.templates`: a template file, read by `load_templates` whichever resolver finds it."""

    kind = "templates"

    @classmethod
    def load(cls, path: Path) -> UserTemplates:
        return load_templates(path)


def load_templates(path: str | Path) -> UserTemplates:
    """Read and validate a template file: a JSON object
    `{"guided": {"chat": "...", "completion": "..."}, "general": {...}}`; any of the four may be
    left out (the built-in one is used), none may be unknown.
    """
    where = str(path)
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the template file: {exc}", path=where, field="templates") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg}", path=where, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputError('expected a JSON object {"guided": {...}, "general": {...}}', path=where)
    given: dict[tuple[Kind, FormName], str] = {}
    for key, forms in data.items():
        if key not in KINDS:
            raise InputError(f"unknown key; expected {' or '.join(KINDS)}", path=where, field=key)
        kind: Kind = "guided" if key == "guided" else "general"
        if not isinstance(forms, dict):
            raise InputError('expected an object {"chat": "...", "completion": "..."}', path=where, field=key)
        for form_key, template in forms.items():
            field = f"{key}.{form_key}"
            if form_key not in FORMS:
                raise InputError(f"unknown form; expected {' or '.join(FORMS)}", path=where, field=field)
            if not isinstance(template, str):
                raise InputError("expected a string", path=where, field=field)
            check(template, kind, where=field, path=where)
            given[(kind, "chat" if form_key == "chat" else "completion")] = template
    if not given:
        raise InputError("the file gives no template", path=where)
    return UserTemplates(given=given, path=where, sha256=content_sha256(raw))
