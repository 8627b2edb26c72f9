"""Writing a testbed's files: benchmark rows the loader reads back, and atomic replacement."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contam.types import Item

OPTIONAL_FIELDS = ("prompt", "reference", "choices", "answer_index", "label")


def write_items(path: Path, items: Sequence[Item]) -> None:
    """Rows the foundation loader reads: id, partition, text, and whichever optional fields all items
    have (so the file loads in the benchmark's own format: qa, mc or text)."""
    optional = [f for f in OPTIONAL_FIELDS if all(getattr(i, f) is not None for i in items)]
    lines = []
    for item in items:
        row: dict[str, Any] = {"id": item.id, "partition": item.partition, "text": item.text}
        for f in optional:
            value = getattr(item, f)
            row[f] = list(value) if isinstance(value, tuple) else value
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    atomic_write_text(path, "".join(lines))


def atomic_write_text(path: Path, text: str) -> None:
    """Write beside `path`, then rename over it: a reader never sees half a file, and two writers of
    the same content (concurrent reuses of one build) cannot interleave."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
