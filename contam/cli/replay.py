"""`contam replay guided`: score completions made elsewhere (another harness, an earlier API run)
without calling any model. Thin: check `--out`, call `contam.replay`, write, print a summary."""

from __future__ import annotations

from pathlib import Path

import click

from contam.cli.common import check_writable


@click.group()
def replay() -> None:
    """Score completions made elsewhere, without calling any model."""


@replay.command("guided")
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSONL, one pair a line: partition, reference, guided, and optionally general and id",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="result JSON: instances (match label and scores) and partitions (counts, rule, p-value)",
)
@click.option("--quiet", is_flag=True, help="print nothing but errors")
def guided(input_path: Path, out: Path, quiet: bool) -> None:
    """Guided vs general completion (Golchin & Surdeanu): a match label per instance, and per
    partition the paper's rule (1 exact or 2 near-exact) and the paired test of guided over general
    ROUGE-L when every instance has a general completion."""
    from contam.replay import replay_guided

    check_writable(out)
    result = replay_guided(input_path)
    result.write(out)
    if quiet:
        return
    for part in result.partitions:
        c = part.counts
        verdict = "contaminated" if part.contaminated else "not flagged"
        p = "no paired test" if part.p_value is None else f"paired test p = {part.p_value:.3g}"
        click.echo(
            f"{part.partition}: n={part.n}  exact={c.exact} near_exact={c.near_exact} none={c.none}  "
            f"paper rule: {verdict}  {p}"
        )
        if part.note:
            click.echo(f"  note: {part.note}")
    click.echo(f"wrote {out}")
