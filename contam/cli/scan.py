"""`contam scan`: run probes over a benchmark's partitions, decide a verdict per partition, and
write the report as JSON, Markdown and HTML."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from contam.benchmarks import select_partitions
from contam.cache import CallCache, default_cache_path
from contam.cli.common import check_writable, open_benchmark, open_model, parse_params, resolve_reference
from contam.cli.options import benchmark_options, model_option
from contam.cli.progress import TqdmProgress
from contam.errors import InputError
from contam.registry import get_probe
from contam.report import ScanReport, check_overlap
from contam.resolve import LocalResolver
from contam.runner import Runner
from contam.scan import scan as run_scan
from contam.scan import suspect_partitions
from contam.verdicts.table import verdict_table
from contam.verdicts.types import VerdictPolicy
from probes.loss import TOO_LONG


@click.command()
@click.argument("benchmark")
@model_option()
@click.option(
    "--partition",
    "partitions",
    multiple=True,
    metavar="P",
    help="partition to test (repeatable; default all)",
)
@click.option(
    "--probe", "probes", multiple=True, metavar="NAME", help="probe to run (repeatable; default loss)"
)
@click.option(
    "--param", "params", multiple=True, metavar="PROBE.KEY=VALUE", help="probe parameter (repeatable)"
)
@click.option(
    "--reference",
    default=None,
    metavar="X",
    help="reference partition or file of items the model cannot have seen",
)
@benchmark_options
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.json"), show_default=True
)
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite call cache (default $CONTAM_CACHE_DIR/calls.sqlite or ~/.cache/contam)",
)
@click.option("--no-cache", is_flag=True, help="keep the call cache in memory only")
@click.option(
    "--overlap",
    "overlap_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="OVERLAP.JSON",
    help="attach corpus overlap evidence (from `contam overlap` or `contam index query` on this benchmark)",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 256), default=4, show_default=True, help="model calls in flight"
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    default=None,
    help="requests per model call (default: the backend's)",
)
@click.option(
    "--on-too-long",
    type=click.Choice(["skip", "fail"]),
    default="skip",
    show_default=True,
    help="an item longer than the model's context: listed as unscored (with its length and the limit) "
    "while the scan goes on, or the scan fails",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="family-wise error rate of the verdicts over the scan's partitions (Holm)",
)
@click.option(
    "--combination",
    type=click.Choice(["holm", "cauchy"]),
    default="holm",
    show_default=True,
    help="how a partition's probe p-values become one: Bonferroni on the smallest (exactly valid under "
    "any dependence), or the Cauchy combination (more powerful, slightly liberal at 0.05 under dependence)",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="no progress bar or summary")
def scan(
    benchmark: str,
    model_spec: str,
    api_key_env: str | None,
    partitions: tuple[str, ...],
    probes: tuple[str, ...],
    params: tuple[str, ...],
    reference: str | None,
    fields: tuple[str, ...],
    fmt: str | None,
    out: Path,
    cache_path: Path | None,
    no_cache: bool,
    overlap_path: Path | None,
    concurrency: int,
    batch_size: int | None,
    on_too_long: str,
    alpha: float,
    combination: str,
    seed: int,
    quiet: bool,
) -> None:
    """Scan BENCHMARK (a built-in name or a file) for signs that the model has seen it.

    Writes OUT (JSON) and its .md and .html siblings; the verdict table is printed first."""
    if out.suffix in (".md", ".html"):
        raise InputError("the JSON report needs a suffix other than .md or .html", field="--out")
    check_writable(out)
    bench = open_benchmark(benchmark, fields, fmt)
    ref_partition, ref_label = resolve_reference(bench, reference, fields, fmt)
    if partitions:
        select_partitions(bench, partitions)  # fails on an unknown name, listing the known ones
    probe_options = parse_params(params)
    chosen = list(probes) or ["loss"]
    unknown_params = set(probe_options) - set(chosen)
    if unknown_params:
        raise InputError(f"parameters given for probes not run: {sorted(unknown_params)}", field="--param")
    probe_objs = [get_probe(name).from_options(probe_options.get(name, {})) for name in chosen]
    for probe in probe_objs:  # a bad spec or template file fails before any model is opened
        LocalResolver().check(probe.params, field=probe.name)
    overlap = None
    if overlap_path is not None:
        from corpora_index.report import OverlapReport

        overlap = OverlapReport.read(overlap_path)
        tested = [p.name for p in suspect_partitions(bench, partitions or None, ref_partition)]
        check_overlap(overlap, bench, tested, where=str(overlap_path))

    policy = VerdictPolicy(alpha=alpha, combination="holm" if combination == "holm" else "cauchy")
    spec, client = open_model(model_spec, api_key_env)
    cache = CallCache(None if no_cache else (cache_path or default_cache_path()))
    with TqdmProgress("scan", enabled=not quiet) as progress:
        runner = Runner(
            client,
            cache,
            concurrency=concurrency,
            batch_size=batch_size,
            progress=progress,
            on_too_long="fail" if on_too_long == "fail" else "skip",
        )

        async def go() -> ScanReport:
            try:
                return await run_scan(
                    bench,
                    runner,
                    probe_objs,
                    model_spec=str(spec),
                    partitions=partitions or None,
                    reference=ref_partition,
                    reference_label=ref_label,
                    seed=seed,
                    policy=policy,
                    overlap=overlap,
                )
            finally:
                await runner.aclose()

        report = asyncio.run(go())
    cache.close()
    from contam.reports import select_excerpts, write_reports  # matplotlib, when the HTML draws

    report = report.model_copy(update={"excerpts": select_excerpts(report, bench)})
    paths = write_reports(report, out)
    if not quiet:
        click.echo(summary_table(report))
    click.echo(f"report: {paths['json']}, {paths['md']}, HTML: {paths['html']}")


def summary_table(report: ScanReport) -> str:
    """The verdict table, then one row per probe and partition, then the caveats."""
    head = verdict_table(report.verdicts) + "\n\n" if report.verdicts is not None else ""
    return head + probe_table(report)


def probe_table(report: ScanReport) -> str:
    rows = [("partition", "probe", "n", "mean [95% CI]", "p-value", "AUROC [95% CI]", "note")]
    for r in report.probes:
        if r.skipped:
            rows.append((r.partition, r.probe, "-", "-", "-", "-", f"skipped: {r.skipped}"))
            continue
        ci = f" [{r.mean_ci.low:.3f}, {r.mean_ci.high:.3f}]" if r.mean_ci else ""
        mean = f"{r.mean:.3f}{ci}" if r.mean is not None else "-"
        st = r.statistic
        p = f"{st.p_value:.2e}" if st and st.p_value is not None else "-"
        auc = "-"
        if st and st.effect is not None:
            auc = f"{st.effect:.3f}" + (
                f" [{st.effect_ci.low:.3f}, {st.effect_ci.high:.3f}]" if st.effect_ci else ""
            )
        note = f"vs {st.reference}" if st and st.reference else ""
        n = str(len(r.items)) + (f" (+{len(r.unscored)} unscored)" if r.unscored else "")
        rows.append((r.partition, r.probe, n, mean, p, auc, note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    probes = ", ".join(sorted({r.probe for r in report.probes}))
    lines.insert(0, f"model {report.model.spec}  benchmark {report.benchmark.name}  probes {probes}")
    # Caveats (approximations, BOS, unscored items) once per probe, with the partitions they hit.
    notes: dict[tuple[str, str], list[str]] = {}
    for r in report.probes:
        for text in r.notes:
            notes.setdefault((r.probe, text), []).append(r.partition)
    if notes:
        lines.append("notes:")
        lines += [f"  {probe} [{', '.join(parts)}]: {text}" for (probe, text), parts in notes.items()]
    too_long = {
        (r.partition, u.id): u.detail for r in report.probes for u in r.unscored if u.reason == TOO_LONG
    }
    if too_long:
        shown = [
            f"{part}/{item} ({detail.get('length') or '?'} > {detail.get('limit') or '?'} tokens)"
            for (part, item), detail in list(too_long.items())[:5]
        ]
        more = f" and {len(too_long) - 5} more" if len(too_long) > 5 else ""
        lines.append(
            f"not scored, longer than the model's context: {len(too_long)} item(s): {', '.join(shown)}{more} "
            "(--on-too-long fail stops the scan instead)"
        )
    if report.overlap is not None:
        items = report.overlap.items
        matched = sum(i.matched for i in items)
        near = sum(i.minhash is not None for i in items)
        lines.append(
            f"corpus overlap: {matched}/{len(items)} items with exact n-gram matches, {near} with near-copies"
        )
    return "\n".join(lines)
