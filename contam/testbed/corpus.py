"""Clean training text: what the testbed model learns besides the injected benchmark items.

Code benchmarks get the CPython standard library of the running interpreter; GSM8K gets its own
train split (in-distribution, never injected as a benchmark partition); TruthfulQA gets half of
each. The selection is fixed (not seeded by the build) so one preset always means one corpus.
"""

from __future__ import annotations

import random
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from contam.benchmarks import load_benchmark
from contam.types import content_sha256

CORPUS_ORDER_SEED = 20240601


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class CleanCorpus:
    documents: tuple[Document, ...]
    sources: tuple[str, ...]

    @property
    def chars(self) -> int:
        return sum(len(d.text) for d in self.documents)

    @property
    def sha256(self) -> str:
        return content_sha256(*(f"{d.id}\x00{d.text}" for d in self.documents))


def stdlib_documents(budget: int) -> Iterator[Document]:
    """Top-level stdlib modules (no tests, no site-packages) in a fixed shuffled order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"))
    random.Random(CORPUS_ORDER_SEED).shuffle(files)
    used = 0
    for path in files:
        if used >= budget:
            return
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        used += len(text)
        yield Document(f"stdlib/{path.name}", text)


def gsm8k_train_documents(budget: int) -> Iterator[Document]:
    """GSM8K train items as published (question, newline, worked answer), in a fixed order."""
    items = list(load_benchmark("gsm8k", partitions=["train"]).items())
    random.Random(CORPUS_ORDER_SEED).shuffle(items)
    used = 0
    for item in items:
        if used >= budget:
            return
        used += len(item.text)
        yield Document(item.id, item.text)


def clean_corpus(benchmark_name: str, budget: int) -> CleanCorpus:
    """The clean corpus for a benchmark, about `budget` characters."""
    name = benchmark_name.lower()
    if name.startswith("gsm8k"):
        return CleanCorpus(tuple(gsm8k_train_documents(budget)), ("gsm8k-train",))
    if name.startswith("truthfulqa"):
        docs = (*stdlib_documents(budget // 2), *gsm8k_train_documents(budget // 2))
        return CleanCorpus(docs, ("stdlib", "gsm8k-train"))
    return CleanCorpus(tuple(stdlib_documents(budget)), ("stdlib",))
