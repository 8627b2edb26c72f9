"""`contam testbed build|list|show`: small models with known, controlled contamination."""

from __future__ import annotations

import json
from pathlib import Path

import click
from pydantic import ValidationError

from contam.errors import InputError
from contam.testbed.config import FORMS, PRESETS, BuildArgs


@click.group()
def testbed() -> None:
    """Build and inspect testbed models: which partitions they saw, and how often, is known."""


def _exposures(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise InputError(
            f"{value!r} is not a comma-separated list of integers", field="--exposures"
        ) from None


@testbed.command()
@click.option("--benchmark", required=True, help="humaneval | gsm8k | truthfulqa-mc | a benchmark FILE")
@click.option("--exposures", default="16,4,1,0", show_default=True,
              help="one partition per count: seen_x{N} injected N times, 0 = unseen")
@click.option("--seed", default=0, show_default=True, type=int, help="split, data order and weights")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="output folder DIR")
@click.option("--preset", default="ci", show_default=True, type=click.Choice(sorted(PRESETS)))
@click.option("--form", default="verbatim", show_default=True, type=click.Choice(FORMS),
              help="how seen items appear in the training text")
@click.option("--steps", default=None, type=int, help="override the preset's training steps")
@click.option("--cache-dir", default=None, type=click.Path(path_type=Path),
              help="build cache (default $CONTAM_CACHE_DIR/testbed or ~/.cache/contam/testbed)")
@click.option("--force", is_flag=True, help="replace whatever is in --out")
def build(benchmark: str, exposures: str, seed: int, out: Path, preset: str, form: str,
          steps: int | None, cache_dir: Path | None, force: bool) -> None:
    """Train a small model with chosen benchmark partitions injected a chosen number of times."""
    from contam.testbed.build import build as run_build

    try:
        args = BuildArgs(benchmark=benchmark, exposures=_exposures(exposures), seed=seed,
                         preset=preset, form=form, steps=steps)  # type: ignore[arg-type]  # Choice checked
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(str(err["msg"]), field="--" + str(err["loc"][0]) if err["loc"] else None) from None
    result = run_build(args, out, cache_dir=cache_dir, force=force, log=click.echo)
    info = result.info
    if result.cached:
        click.echo(f"testbed {result.key}: reused a finished build")
    click.echo(f"\ntestbed {result.key} in {result.path}  (built in {info['seconds']['total']}s)")
    click.echo(f"training loss {info['train']['first_loss']:.3f} -> {info['train']['final_loss']:.3f}")
    click.echo(result.sanity.table())


@testbed.command("list")
@click.option("--cache-dir", default=None, type=click.Path(path_type=Path))
def list_builds(cache_dir: Path | None) -> None:
    """List the presets and the builds in the cache."""
    from contam.testbed.build import cache_root, read_build

    click.echo("presets:")
    for p in PRESETS.values():
        click.echo(f"  {p.name:<6} {p.layers} layers, hidden {p.hidden}, vocab {p.vocab_size}, "
                   f"{p.steps} steps of {p.batch_size}x{p.seq_len}, clean corpus {p.clean_bytes:,} chars, "
                   f"at most {p.max_items} items")
    root = cache_dir or cache_root()
    records = [r for r in (read_build(d) for d in sorted(root.iterdir()) if d.is_dir()) if r] \
        if root.is_dir() else []
    click.echo(f"builds in {root}: {len(records)}")
    for r in records:
        a = r["args"]
        click.echo(f"  {r['key']}  {a['benchmark']:<14} {a['preset']:<6} {a['form']:<14} "
                   f"exposures {','.join(map(str, a['exposures']))}  seed {a['seed']}  {r['created']}")


@testbed.command()
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print build.json instead of the card")
def show(directory: Path, as_json: bool) -> None:
    """Show a testbed folder's card: partitions, training and sanity figures."""
    from contam.testbed.build import read_build

    record = read_build(directory)
    if record is None:
        raise InputError("not a finished testbed build (no readable build.json)", path=str(directory))
    if as_json:
        click.echo(json.dumps(record, indent=1))
        return
    card = directory / "card.md"
    click.echo(card.read_text(encoding="utf-8") if card.is_file() else json.dumps(record, indent=1))
