"""`contam overlap` (streaming scan) and `contam index build|query` (persistent corpus index).

Thin: parse options, load the benchmark, call `corpora_index`, write `overlap.json`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from contam.cli.common import check_writable
from contam.cli.options import benchmark_options

F = TypeVar("F", bound=Callable[..., Any])


def _settings_options(f: F) -> F:
    for option in reversed(
        [
            click.option(
                "--n", "n", type=click.IntRange(2, 64), default=13, show_default=True, help="words per n-gram"
            ),
            click.option(
                "--fold-digits",
                is_flag=True,
                help="map every digit to 0 before hashing (costs precision: arithmetic is mostly digits)",
            ),
            click.option(
                "--keep-punctuation",
                is_flag=True,
                help="make each punctuation mark a token instead of a space",
            ),
            click.option("--seed", type=int, default=0, show_default=True, help="seed of the n-gram hash"),
        ]
    ):
        f = option(f)
    return f


def _reader_options(f: F) -> F:
    for option in reversed(
        [
            click.option(
                "--text-field", default="text", show_default=True, help="JSONL/Parquet field with the text"
            ),
            click.option(
                "--id-field", default=None, help="JSONL/Parquet field with a document id (default: location)"
            ),
            click.option(
                "--glob", default="**/*", show_default=True, help="which files of a corpus folder to read"
            ),
            click.option(
                "--on-error",
                type=click.Choice(["fail", "skip"]),
                default="fail",
                show_default=True,
                help="a corrupt corpus line or file: stop with its location, or report it and go on",
            ),
        ]
    ):
        f = option(f)
    return f


def _report_options(f: F) -> F:
    f = click.option(
        "--max-documents",
        type=click.IntRange(0),
        default=100,
        show_default=True,
        help="matching documents listed per item",
    )(f)
    return click.option(
        "--frequency-cap",
        type=click.IntRange(1),
        default=None,
        help="ignore n-grams found in more than K corpus documents (boilerplate). Off by default: it "
        "costs recall, since an item copied widely is exactly such an n-gram",
    )(f)


def _partition_option(f: F) -> F:
    return click.option(
        "--partition",
        "partitions",
        multiple=True,
        metavar="P",
        help="partition to check (repeatable; default all)",
    )(f)


def _make_settings(n: int, fold_digits: bool, keep_punctuation: bool, seed: int, num_perm: int = 128) -> Any:
    from corpora_index.settings import IndexSettings, MinHashSettings, NormalizerConfig

    return IndexSettings(
        n=n,
        seed=seed,
        normalizer=NormalizerConfig(fold_digits=fold_digits, fold_punctuation=not keep_punctuation),
        minhash=MinHashSettings(num_perm=num_perm),
    )


def _reader(text_field: str, id_field: str | None, glob: str, on_error: str) -> Any:
    from corpora_index.readers import ReaderOptions

    return ReaderOptions(text_field=text_field, id_field=id_field, on_error=on_error, glob=glob)  # type: ignore[arg-type]


def _items(
    benchmark: str, fields: tuple[str, ...], fmt: str | None, partitions: tuple[str, ...]
) -> tuple[Any, str]:
    from contam.cli.common import open_benchmark

    bench = open_benchmark(benchmark, fields, fmt, partitions or None)
    return list(bench.items()), bench.name


class _Bar:
    """A tqdm bar in bytes (it shows MB/s) on stderr; tqdm turns itself off when stderr is not a
    terminal. The rate is of uncompressed input unless the bar says "compressed MB/s"."""

    def __init__(self, desc: str, quiet: bool) -> None:
        from tqdm import tqdm

        self.label = desc
        self.bar: Any = tqdm(
            total=0, desc=desc, unit="B", unit_scale=True, disable=True if quiet else None, leave=True
        )

    def total(self, n: int) -> None:
        self.bar.total = n
        self.bar.refresh()

    def sources(self, sources: Sequence[Any]) -> None:
        if any(s.compressed for s in sources) and not self.label.endswith(")"):
            self.label += " (compressed MB/s)"
            self.bar.set_description(self.label, refresh=False)
        self.total(sum(s.size for s in sources))

    def advance(self, n: int) -> None:
        self.bar.update(n)


@contextmanager
def _bytes_bar(desc: str, quiet: bool) -> Iterator[_Bar]:
    bar = _Bar(desc, quiet)
    try:
        yield bar
    finally:
        bar.bar.close()


def _summary(report: Any, out: Path, quiet: bool) -> None:
    if quiet:
        return
    items = report.items
    matched = sum(1 for i in items if i.matched)
    near = sum(1 for i in items if i.minhash is not None)
    problems = len(report.corpus.problems)
    click.echo(
        f"{matched}/{len(items)} items with exact n-gram matches, {near} with near-copies; "
        f"{report.corpus.documents} documents scanned"
        + (f", {problems} corrupt inputs skipped" if problems else "")
        + f"; wrote {out}",
        err=True,
    )


@click.command()
@click.argument("benchmark")
@click.argument("corpus", nargs=-1, required=True)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("overlap.json"), show_default=True
)
@_partition_option
@benchmark_options
@_settings_options
@click.option("--no-minhash", is_flag=True, help="exact tier only")
@click.option(
    "--num-perm", type=click.IntRange(16, 1024), default=128, show_default=True, help="MinHash permutations"
)
@_reader_options
@_report_options
@click.option("--workers", type=click.IntRange(1, 512), default=1, show_default=True, help="local processes")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option(
    "--redis", default=None, metavar="URL", help="keep the MinHash LSH in Redis (redis://HOST:PORT/DB)"
)
@click.option("--quiet", is_flag=True, help="no progress bar or summary")
def overlap(
    benchmark: str,
    corpus: tuple[str, ...],
    out: Path,
    partitions: tuple[str, ...],
    fields: tuple[str, ...],
    fmt: str | None,
    n: int,
    fold_digits: bool,
    keep_punctuation: bool,
    seed: int,
    no_minhash: bool,
    num_perm: int,
    text_field: str,
    id_field: str | None,
    glob: str,
    on_error: str,
    frequency_cap: int | None,
    max_documents: int,
    workers: int,
    engine: str,
    redis: str | None,
    quiet: bool,
) -> None:
    """Scan CORPUS (JSONL, .jsonl.gz/.zst, Parquet, text files or folders) for BENCHMARK's items."""
    from corpora_index.api import scan

    check_writable(out)
    items, name = _items(benchmark, fields, fmt, partitions)
    with _bytes_bar("overlap", quiet) as bar:
        report = scan(
            items,
            corpus,
            settings=_make_settings(n, fold_digits, keep_punctuation, seed, num_perm),
            reader=_reader(text_field, id_field, glob, on_error),
            minhash=not no_minhash,
            workers=workers,
            engine=engine,  # type: ignore[arg-type]
            frequency_cap=frequency_cap,
            max_documents=max_documents,
            redis=redis,
            benchmark=name,
            on_sources=bar.sources,
            on_progress=bar.advance,
        )
    report.write(out)
    _summary(report, out, quiet)


@click.group()
def index() -> None:
    """Persistent corpus index: build once, check many benchmarks against it in seconds."""


@index.command("build")
@click.argument("corpus", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="index folder")
@_settings_options
@_reader_options
@click.option(
    "--shard-mb", type=click.FloatRange(0.0001), default=64.0, show_default=True, help="corpus MB per shard"
)
@click.option("--quiet", is_flag=True)
def build(
    corpus: tuple[str, ...],
    out: Path,
    n: int,
    fold_digits: bool,
    keep_punctuation: bool,
    seed: int,
    text_field: str,
    id_field: str | None,
    glob: str,
    on_error: str,
    shard_mb: float,
    quiet: bool,
) -> None:
    """Build (or resume building) a sharded, memory-mapped n-gram index of CORPUS in OUT."""
    from corpora_index.persistent import build_index
    from corpora_index.readers import expand_sources

    reader = _reader(text_field, id_field, glob, on_error)
    sources = expand_sources(corpus, reader)
    with _bytes_bar("index build", quiet) as bar:
        bar.sources(sources)
        stats = build_index(
            sources,
            out,
            _make_settings(n, fold_digits, keep_punctuation, seed),
            reader,
            shard_bytes=int(shard_mb * (1 << 20)),
            on_bytes=bar.advance,
        )
    if not quiet:
        click.echo(
            f"{stats.shards} shards ({stats.built} built, {stats.reused} reused), "
            f"{stats.documents} documents, {stats.keys} distinct n-grams, "
            f"{stats.bytes_on_disk} bytes; index in {out}",
            err=True,
        )


@index.command("query")
@click.argument("idx", type=click.Path(file_okay=False, path_type=Path))
@click.argument("benchmark")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("overlap.json"), show_default=True
)
@_partition_option
@benchmark_options
@_report_options
@click.option("--quiet", is_flag=True)
def query(
    idx: Path,
    benchmark: str,
    out: Path,
    partitions: tuple[str, ...],
    fields: tuple[str, ...],
    fmt: str | None,
    frequency_cap: int | None,
    max_documents: int,
    quiet: bool,
) -> None:
    """Check BENCHMARK against the persistent index IDX (exact tier)."""
    from corpora_index.api import check_index

    check_writable(out)
    items, name = _items(benchmark, fields, fmt, partitions)
    # in corpus bytes as indexed (uncompressed text), one shard at a time
    with _bytes_bar("index query", quiet) as bar:
        report = check_index(
            items,
            idx,
            frequency_cap=frequency_cap,
            max_documents=max_documents,
            benchmark=name,
            on_total=bar.total,
            on_progress=bar.advance,
        )
    report.write(out)
    _summary(report, out, quiet)
