"""A command whose optional dependency is missing names the extra to install: exit 2, one line, no
traceback. The real thing, in a venv without the extras, is tests/integration/test_missing_extras.py."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import click
import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement

from contam import extras
from contam.cli import main
from contam.errors import BackendUnavailable


def _optional_distributions() -> dict[str, set[str]]:
    """Distribution -> the non-dev extras that list it, read from the installed metadata."""
    names = set(importlib.metadata.metadata("contam").get_all("Provides-Extra") or []) - {"dev"}
    found: dict[str, set[str]] = {}
    for line in importlib.metadata.requires("contam") or []:
        req = Requirement(line)
        for extra in names:
            if req.marker is not None and req.marker.evaluate({"extra": extra}):
                found.setdefault(extras.normalize(req.name), set()).add(extra)
    return found


def test_every_optional_distribution_has_a_module() -> None:
    """A dependency added to a non-dev extra in pyproject.toml must be added to the table too."""
    wanted = _optional_distributions()
    assert set().union(*wanted.values()) >= {"hf", "vllm", "openai", "server", "index", "ray", "redis"}
    assert set(wanted) <= set(extras.MODULE_DISTRIBUTIONS.values())
    for distribution, names in wanted.items():
        assert set(extras.extras_of(distribution)) == names, distribution


def test_table_names_the_real_distribution_of_each_module() -> None:
    installed = importlib.metadata.packages_distributions()
    for module, distribution in extras.MODULE_DISTRIBUTIONS.items():
        if module in installed:  # the dev venv has every extra
            assert distribution in {extras.normalize(d) for d in installed[module]}, module


@click.command()
@click.option("--module", required=True)
def boom(module: str) -> None:
    """Stands for a command whose code imports an optional dependency that is not installed."""
    raise ModuleNotFoundError(f"No module named {module!r}", name=module)


@click.group()
def group() -> None:
    pass


group.add_command(boom, "build")


@click.command()
def unavailable() -> None:
    raise BackendUnavailable("the hf backend needs torch; install them with: pip install 'contam[hf]'")


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch):
    for name, attr in [("boom", "boom"), ("testbed", "group"), ("unavailable", "unavailable")]:
        monkeypatch.setitem(main.COMMANDS, name, f"{__name__}:{attr}")
    runner = CliRunner()
    return lambda *args: runner.invoke(main.cli, list(args), prog_name="contam")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["boom", "--module", "numba"],
         "error: contam boom needs numba, which the 'index' extra installs: pip install 'contam[index]'"),
        (["boom", "--module", "ray.data"],
         "error: contam boom needs ray.data, which the 'ray' extra installs: pip install 'contam[ray]'"),
        (["boom", "--module", "vllm"],
         "error: contam boom needs vllm, which the 'vllm' extra installs: pip install 'contam[vllm]'"),
        (["boom", "--module", "fastapi"],
         "error: contam boom needs fastapi, which the 'server' extra installs: pip install 'contam[server]'"),
        # torch is in two extras: a command under `testbed` names that one, any other the first
        (["boom", "--module", "torch"],
         "error: contam boom needs torch, which the 'hf' extra installs: pip install 'contam[hf]'"),
        (["testbed", "build", "--module", "torch"],
         "error: contam testbed build needs torch, which the 'testbed' extra installs: pip install 'contam[testbed]'"),
    ],
)  # fmt: skip
def test_missing_module_names_its_extra(invoke, args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == message
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_module_that_is_no_dependency_of_ours_is_a_bug_and_keeps_its_traceback(invoke) -> None:
    result = invoke("boom", "--module", "contam_no_such_module")
    assert isinstance(result.exception, ModuleNotFoundError)


def test_backend_unavailable_exits_2(invoke) -> None:
    result = invoke("unavailable")
    assert result.exit_code == 2
    assert "pip install 'contam[hf]'" in result.output


def test_serve_model_checks_for_vllm_before_starting_a_server(
    invoke, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """vLLM runs in a child process there, so no import in the command itself would fail."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else find_spec(name, *a)
    )
    assert invoke("serve-model", "--help").exit_code == 0
    result = invoke("serve-model", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "contam serve-model needs vllm, which the 'vllm' extra installs" in result.output
