"""Entry point. Subcommands are imported only when invoked, so `contam --help` stays fast and
a missing optional backend never breaks an unrelated command.

Exit codes: 0 success, 2 usage or input error, 1 any other failure.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from contam.errors import ContamError, InputError

# name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "scan": "contam.cli.scan:scan",
    "models": "contam.cli.models:models",
    "benchmarks": "contam.cli.benchmarks:benchmarks",
    "overlap": "contam.cli.overlap:overlap",
    "index": "contam.cli.overlap:index",
    "serve-model": "contam.cli.serve:serve_model",
    "testbed": "contam.cli.testbed:testbed",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        ref = COMMANDS.get(cmd_name)
        if ref is None:
            return None
        module, _, attr = ref.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        # Our errors become one clear line and an exit code, not a traceback.
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except ContamError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="contam")
def cli() -> None:
    """contam: did the model see the benchmark? Probes, corpus overlap and per-partition verdicts."""


def main() -> None:
    cli.main(prog_name="contam")


if __name__ == "__main__":
    main()
