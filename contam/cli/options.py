"""Options shared by several commands, each described once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from contam.models.spec import GRAMMAR

F = TypeVar("F", bound=Callable[..., Any])

# The embedded default model: the mock until a local model backend is configured.
DEFAULT_MODEL = "mock"


def model_option(default: str | None = DEFAULT_MODEL) -> Callable[[F], F]:
    def deco(f: F) -> F:
        f = click.option(
            "--api-key-env",
            default=None,
            metavar="VAR",
            help="environment variable holding the API key (default OPENAI_API_KEY); never logged",
        )(f)
        return click.option(
            "--model",
            "model_spec",
            default=default,
            show_default=True,
            metavar="SPEC",
            help=f"model spec: {GRAMMAR}",
        )(f)

    return deco


def benchmark_options(f: F) -> F:
    f = click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "qa", "mc"]),
        default=None,
        help="item format (default: inferred from the mapped fields)",
    )(f)
    return click.option(
        "--field",
        "fields",
        multiple=True,
        metavar="FIELD=COLUMN",
        help="map a file column to an item field: id, text, prompt, reference, choices (COL or A,B,C,D), "
        "answer, label, partition. Repeatable.",
    )(f)
