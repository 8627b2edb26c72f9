"""Entry point. Subcommands are imported only when invoked, so `contam --help` stays fast and
a missing optional backend never breaks an unrelated command.

Exit codes: 0 success, 2 usage or input error or a missing optional dependency (the message names
the extra to install), 1 any other failure.
"""

from __future__ import annotations

import copy
import functools
import importlib
import os
import sys
import traceback
from typing import Any

import click

from contam import extras
from contam.errors import BackendUnavailable, ContamError, InputError

# name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "scan": "contam.cli.scan:scan",
    "models": "contam.cli.models:models",
    "benchmarks": "contam.cli.benchmarks:benchmarks",
    "overlap": "contam.cli.overlap:overlap",
    "index": "contam.cli.overlap:index",
    "serve-model": "contam.cli.serve:serve_model",
    "testbed": "contam.cli.testbed:testbed",
    "replay": "contam.cli.replay:replay",
    "report": "contam.cli.report:report",
    "checklist": "contam.cli.checklist:checklist",
    "keys": "contam.cli.service:keys",
    "worker": "contam.cli.service:worker",
    "serve": "contam.cli.service:serve",
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
        needs = extras.CHILD_PROCESS_MODULES.get(cmd_name)
        return _requiring(command, needs) if needs else command

    def invoke(self, ctx: click.Context) -> Any:
        # Our errors become one clear line and an exit code, not a traceback.
        try:
            return super().invoke(ctx)
        except (InputError, BackendUnavailable) as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except ModuleNotFoundError as exc:
            error = extras.missing(exc.name, _command_path(exc, ctx)) if exc.name else None
            if error is None:  # not an optional dependency of ours: a bug, keep its traceback
                raise
            click.echo(f"error: {error}", err=True)
            ctx.exit(2)
        except ContamError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


def _requiring(command: click.Command, modules: tuple[str, ...]) -> click.Command:
    """`command`, first checking that `modules` are installed (after parsing, so --help still works)."""
    callback = command.callback
    if callback is None:
        return command

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        extras.require(modules, click.get_current_context().command_path)
        return callback(*args, **kwargs)

    command = copy.copy(command)
    command.callback = checked
    return command


def _command_path(exc: BaseException, ctx: click.Context) -> str:
    """`contam index build`: the innermost click context the exception passed through (its own is
    closed by the time the exception reaches this group)."""
    path = ctx.command_path
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        inner = frame.f_locals.get("ctx")
        if isinstance(inner, click.Context):
            path = inner.command_path
    return path


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="contam")
def cli() -> None:
    """contam: did the model see the benchmark? Probes, corpus overlap and per-partition verdicts."""


def main() -> None:
    try:
        cli.main(prog_name="contam")
    except SystemExit as exc:
        if "vllm" not in sys.modules:
            raise
        # The in-process vLLM engine is shut down by then and every output is written and closed,
        # but its teardown can still race the interpreter's and abort ("terminate called without
        # an active exception", exit 134), turning a finished scan into a failure for a release
        # pipeline: leave with the command's own exit code instead.
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
