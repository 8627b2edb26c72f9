"""`contam checklist release.yaml`: gate a model release on every benchmark's verdicts.

Exit codes: 0 nothing flagged, 3 a partition is contaminated (or suspicious, with
`--fail-on suspicious`), 2 a bad checklist file (file, line and key named), 1 any other failure.
"""

from __future__ import annotations

from pathlib import Path

import click

from contam.cache import default_cache_path
from contam.cli.progress import TqdmProgress
from contam.errors import InputError


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("checklist"),
    show_default=True,
    help="folder for checklist.{json,md,html} and one report per benchmark",
)
@click.option(
    "--fail-on",
    type=click.Choice(["contaminated", "suspicious"]),
    default="contaminated",
    show_default=True,
    help="which verdict fails the release (exit 3)",
)
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite call cache, so a re-run resumes (default $CONTAM_CACHE_DIR/calls.sqlite or ~/.cache/contam)",
)
@click.option("--quiet", is_flag=True, help="no progress bar or table; the exit code and paths only")
def checklist(config: Path, out: Path, fail_on: str, cache_path: Path | None, quiet: bool) -> None:
    """Run the release checklist CONFIG (YAML): model, benchmarks, probes, alpha."""
    from contam.checklist import load_checklist, run_checklist
    from contam.checklist.render import checklist_table
    from contam.checklist.result import FailOn

    loaded = load_checklist(config)
    _check_folder(out)
    with TqdmProgress("checklist", enabled=not quiet) as progress:
        result = run_checklist(
            loaded, out_dir=out, cache_path=cache_path or default_cache_path(), progress=progress
        )
    if not quiet:
        click.echo(checklist_table(result))
    click.echo(f"checklist: {out / 'checklist.json'}, {out / 'checklist.md'}, HTML: {out / 'checklist.html'}")
    gate: FailOn = "contaminated" if fail_on == "contaminated" else "suspicious"
    code = result.exit_code(gate)
    if code:
        flagged = result.flagged(gate)
        click.echo(
            f"release gate failed: {len(flagged)} partition(s) flagged (--fail-on {fail_on})", err=True
        )
    click.get_current_context().exit(code)


def _check_folder(out: Path) -> None:
    """Fail before the scans, not after them, when the results could not be written (click has
    already refused an existing file)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the folder: {exc.strerror or exc}", path=str(out), field="--out"
        ) from exc
