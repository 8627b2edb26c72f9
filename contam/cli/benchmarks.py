"""`contam benchmarks show`: partitions, counts and a sample item."""

from __future__ import annotations

import click

from contam.benchmarks.builtin import BUILTINS
from contam.cli.common import open_benchmark
from contam.cli.options import benchmark_options


@click.group()
def benchmarks() -> None:
    """Inspect benchmarks (built-in names or local files)."""


@benchmarks.command("list")
def list_builtins() -> None:
    """List the built-in benchmarks."""
    for name in BUILTINS:
        click.echo(name)


@benchmarks.command()
@click.argument("benchmark")
@benchmark_options
def show(benchmark: str, fields: tuple[str, ...], fmt: str | None) -> None:
    """Show BENCHMARK's partitions, item counts and one sample item."""
    bench = open_benchmark(benchmark, fields, fmt)
    click.echo(f"benchmark {bench.name}  format {bench.format}  source {bench.source}")
    click.echo(f"sha256 {bench.sha256}")
    width = max(len(name) for name in bench.partitions)
    for name, count in bench.counts.items():
        click.echo(f"  {name.ljust(width)}  {count:>7}")
    click.echo(f"  {'total'.ljust(width)}  {sum(bench.counts.values()):>7}")
    sample = next(bench.items())
    click.echo("\nsample item:")
    click.echo(f"  id: {sample.id}  partition: {sample.partition}")
    for field in ("prompt", "reference", "choices", "answer_index", "label"):
        value = getattr(sample, field)
        if value is not None:
            click.echo(f"  {field}: {_short(repr(value))}")
    click.echo(f"  text: {_short(repr(sample.text))}")


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
