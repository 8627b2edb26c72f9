"""Injection forms: how a seen partition appears in the training text, and how often.

Each function returns training documents; the trainer shuffles them among the clean corpus.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping

from contam.benchmarks import render_mc
from contam.testbed.config import Form
from contam.testbed.corpus import Document
from contam.types import Item, Partition

_WS = re.compile(r"\s+")


def question_only(item: Item) -> str:
    """The item without its answer: the prompt, or for multiple choice the options unmarked."""
    if item.choices is not None and item.prompt is not None:
        return render_mc(item.prompt, item.choices, None)
    if item.prompt is not None:
        return item.prompt
    return item.text


def rewrapped(item: Item, width: int = 72) -> str:
    """Whitespace collapsed and re-wrapped, lower-cased: the same words, a different surface."""
    return textwrap.fill(_WS.sub(" ", item.text).strip(), width=width).lower()


def with_metadata(item: Item, benchmark: str) -> str:
    """A header naming the benchmark and split, as web dumps carry, so guided prompts have a cue."""
    source = item.meta.get("source_partition", item.partition)
    return f"Dataset: {benchmark}\nSplit: {source}\nID: {item.id}\n\n{item.text}"


def injected_documents(
    partitions: Mapping[int, Partition], form: Form, benchmark: str
) -> list[Document]:
    """`count` copies of each seen partition's items in `form`; exposure 0 contributes nothing."""
    docs: list[Document] = []
    for count, part in partitions.items():
        if count == 0:
            continue
        if form == "canonical_dump":
            # One contiguous file per copy, items in published order.
            dump = "\n\n".join(item.text for item in part.items)
            docs.extend(Document(f"inject/{part.name}/dump/{c}", dump) for c in range(count))
            continue
        for item in part.items:
            text = _render(item, form, benchmark)
            docs.extend(Document(f"inject/{item.id}/{c}", text) for c in range(count))
    return docs


def _render(item: Item, form: Form, benchmark: str) -> str:
    if form == "verbatim":
        return item.text
    if form == "question_only":
        return question_only(item)
    if form == "rewrapped":
        return rewrapped(item)
    if form == "with_metadata":
        return with_metadata(item, benchmark)
    raise ValueError(f"form {form!r} is not per item")
