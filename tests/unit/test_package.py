"""Package-level contracts: a light import, the public API, the model-spec grammar."""

from __future__ import annotations

import subprocess
import sys

import pytest

import contam
from contam.errors import ModelSpecError
from contam.models.spec import ModelSpec

HEAVY = {"torch", "vllm", "openai", "ray", "redis", "httpx", "transformers", "datasketch"}


def test_import_contam_imports_no_heavy_backend() -> None:
    code = "import contam, contam.cli.main, sys; print(','.join(sorted(set(sys.modules))))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        .stdout.strip()
        .split(",")
    )
    assert not HEAVY & loaded


def test_public_api_is_exported() -> None:
    for name in contam.__all__:
        assert hasattr(contam, name), name


@pytest.mark.parametrize(
    ("spec", "backend", "target", "base_url"),
    [
        ("hf:/models/tiny", "hf", "/models/tiny", None),
        ("vllm:rel/dir", "vllm", "rel/dir", None),
        ("openai:tiny@http://127.0.0.1:8000/v1", "openai", "tiny", "http://127.0.0.1:8000/v1"),
        (
            "openai:org/model@name@https://api.example/v1/",
            "openai",
            "org/model@name",
            "https://api.example/v1",
        ),
        ("mock", "mock", "mock", None),
    ],
)
def test_spec_grammar(spec: str, backend: str, target: str, base_url: str | None) -> None:
    parsed = ModelSpec.parse(spec)
    assert (parsed.backend, parsed.target, parsed.base_url) == (backend, target, base_url)


def test_spec_options_and_round_trip() -> None:
    assert ModelSpec.parse("mock:delay=0.5,name=x").options == {"delay": "0.5", "name": "x"}
    assert ModelSpec.parse("hf:/m?batch=8&device=cpu").options == {"batch": "8", "device": "cpu"}
    assert str(ModelSpec.parse("openai:tiny@http://h:1/v1")) == "openai:tiny@http://h:1/v1"
    assert ModelSpec.parse("openai:t@http://h/v1", api_key_env="MY_KEY").api_key_env == "MY_KEY"


@pytest.mark.parametrize(
    "spec", ["", "hf:", "openai:tiny", "openai:@http://x", "openai:t@ftp://x", "mock:delay"]
)
def test_bad_specs_are_input_errors(spec: str) -> None:
    with pytest.raises(ModelSpecError):
        ModelSpec.parse(spec)
