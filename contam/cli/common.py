"""Glue shared by commands: building the benchmark, the model and the runner from CLI values."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contam.benchmarks import FieldMap, load_benchmark
from contam.errors import InputError
from contam.models.base import ModelClient
from contam.models.spec import ModelSpec
from contam.registry import create_model
from contam.types import Benchmark, BenchmarkFormat, Partition


def open_benchmark(
    spec: str, fields: Sequence[str], fmt: str | None, partitions: Sequence[str] | None = None
) -> Benchmark:
    fmt_value: BenchmarkFormat | None = fmt  # type: ignore[assignment]  # click.Choice checked it
    return load_benchmark(spec, fields=FieldMap.parse(fields), format=fmt_value, partitions=partitions)


def open_model(spec: str, api_key_env: str | None) -> tuple[ModelSpec, ModelClient]:
    parsed = ModelSpec.parse(spec, api_key_env=api_key_env)
    return parsed, create_model(parsed)


def resolve_reference(
    bench: Benchmark, reference: str | None, fields: Sequence[str] = (), fmt: str | None = None
) -> tuple[Partition | None, str | None]:
    """`--reference` names a partition of the same benchmark, or a benchmark file of unseen items,
    read with the benchmark's own `--field` mapping and format."""
    if reference is None:
        return None, None
    if reference in bench.partitions:
        return bench.partitions[reference], reference
    if Path(reference).exists():
        ref_bench = open_benchmark(reference, fields, fmt)
        items = tuple(ref_bench.items())
        return Partition(f"reference:{ref_bench.name}", items), f"file:{reference}"
    known = ", ".join(bench.partitions)
    raise InputError(
        f"{reference!r} is neither a partition of {bench.name!r} ({known}) nor a file", field="--reference"
    )


def parse_params(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`--param min_k.k=0.1` pairs into {probe: {key: value}}; probes' pydantic models coerce types."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        probe, dot, name = key.partition(".")
        if not eq or not dot or not probe or not name:
            raise InputError(f"{pair!r} is not PROBE.KEY=VALUE", field="--param")
        out.setdefault(probe, {})[name] = value
    return out


def check_writable(out: Path, option: str = "--out") -> None:
    """Fail before the work, not after it: create the folder and try writing a file beside `out`."""
    if out.is_dir():
        raise InputError("is a folder; give a file name", path=str(out), field=option)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".check"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write here: {exc.strerror or exc}", path=str(out), field=option) from exc
