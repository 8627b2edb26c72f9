"""A new user's `pip install -e .` (no extras): every command that needs an extra says which one to
install, with exit code 2 and no traceback. Runs the real `contam` script in fresh venvs that hold
only the base dependencies (and, for the Ray and Redis options, which run on the corpus index, the
`index` extra as well)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# (extra the command needs, venv it runs in, arguments)
CASES = [
    ("index", "base", ["overlap", "gsm8k", "corpus.jsonl", "--out", "overlap.json"]),
    ("index", "base", ["index", "build", "corpus.jsonl", "--out", "idx"]),
    ("hf", "base", ["scan", "gsm8k", "--model", "hf:model", "--out", "r.json", "--no-cache"]),
    ("hf", "base", ["models", "check", "hf:model"]),
    ("vllm", "base", ["scan", "gsm8k", "--model", "vllm:model", "--out", "r.json", "--no-cache"]),
    ("vllm", "base", ["serve-model", "model", "--timeout", "30"]),
    ("openai", "base", ["scan", "gsm8k", "--model", "openai:x@http://127.0.0.1:9/v1", "--out", "r.json"]),
    ("testbed", "base", ["testbed", "build", "--benchmark", "gsm8k", "--out", "tb"]),
    ("ray", "index", ["overlap", "gsm8k", "corpus.jsonl", "--out", "overlap.json", "--engine", "ray"]),
    ("redis", "index", ["overlap", "gsm8k", "corpus.jsonl", "--out", "overlap.json",
                        "--redis", "redis://127.0.0.1:9"]),
    ("server", "base", ["serve", "--config", "server.yaml", "--port", "9"]),
]  # fmt: skip
NO_COMMAND_YET: set[str] = set()


def test_every_extra_has_a_case() -> None:
    extras = set(PROJECT["optional-dependencies"]) - {"dev"}
    assert {extra for extra, _, _ in CASES} | NO_COMMAND_YET == extras


def _make_venv(path: Path, requirements: list[str]) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--no-deps", "-e", str(REPO)], check=True, capture_output=True)
    subprocess.run([*pip, *requirements], check=True, capture_output=True)
    return path / "bin" / "contam"


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The `contam` script of each venv (about 45 s for both here, most of it downloads)."""
    root = tmp_path_factory.mktemp("venvs")
    base = list(PROJECT["dependencies"])
    wanted = {"base": base, "index": base + PROJECT["optional-dependencies"]["index"]}
    start = time.monotonic()
    made = {name: _make_venv(root / name, requirements) for name, requirements in wanted.items()}
    print(f"[missing extras] venvs made in {time.monotonic() - start:.1f} s")
    return made


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("work")
    (path / "corpus.jsonl").write_text('{"text": "a small corpus with one document in it"}\n')
    (path / "model").mkdir()
    (path / "model" / "config.json").write_text("{}")
    (path / "server.yaml").write_text("store: sqlite:///jobs.sqlite\nmodels:\n  - name: mock\n    spec: mock\n")
    return path


def _run(script: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["CONTAM_CACHE_DIR"] = str(cwd / "cache")
    # another numba version than the dev venv's: keep its compiled kernels out of the repo's cache
    env["NUMBA_CACHE_DIR"] = str(cwd / "numba-cache")
    # the benchmarks are found from the package's folder (../shared/data), as for any editable install
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("extra", "venv", "args"), CASES, ids=[" ".join(c[2][:2]) + f"-{c[0]}" for c in CASES]
)
def test_missing_extra_is_named(scripts: dict[str, Path], workdir: Path, extra: str, venv: str,
                                args: list[str]) -> None:  # fmt: skip
    result = _run(scripts[venv], args, workdir)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert f"pip install 'contam[{extra}]'" in result.stderr, result.stderr


def test_help_needs_no_extra(scripts: dict[str, Path], workdir: Path) -> None:
    for args in [[], ["overlap"], ["index", "build"], ["scan"], ["serve-model"], ["testbed", "build"],
                 ["serve"], ["checklist"], ["report"]]:
        result = _run(scripts["base"], [*args, "--help"], workdir)
        assert result.returncode == 0 and "Usage:" in result.stdout, (args, result.stderr)
