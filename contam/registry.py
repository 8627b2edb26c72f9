"""One way to register probes and model backends: a decorator, or the entry-point groups
`contam.probes` and `contam.backends` for third-party packages.

Built-ins are listed as "module:attribute" strings and imported only when asked for, so
`import contam` stays free of torch, vllm, httpx, ray and redis.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeVar

from contam.errors import BackendUnavailable, InputError

if TYPE_CHECKING:
    from contam.models.base import ModelClient
    from contam.models.spec import ModelSpec
    from contam.probe import Probe

BackendFactory = Callable[["ModelSpec"], "ModelClient"]

_BUILTIN_BACKENDS: dict[str, str] = {
    "mock": "contam.models.mock:create",
    "hf": "contam.models.hf:create",
    "vllm": "contam.models.vllm_engine:create",
    "openai": "contam.models.openai_http:create",
}
# Which pip extra brings each backend's heavy dependency, for the error message.
BACKEND_EXTRAS: dict[str, str] = {"hf": "hf", "vllm": "vllm", "openai": "openai"}

_BUILTIN_PROBES: dict[str, str] = {
    "loss": "probes.loss:LossProbe",
    "min_k": "probes.min_k:MinKProbe",
    "min_k_pp": "probes.min_k_pp:MinKPPProbe",
    "zlib": "probes.zlib:ZlibProbe",
    "lowercase": "probes.lowercase:LowercaseProbe",
    "reference": "probes.reference:ReferenceProbe",
    "exchangeability": "probes.exchangeability:ExchangeabilityProbe",
    "guided": "probes.guided:GuidedProbe",
    "ts_guessing_qb": "probes.ts_guessing:TSGuessingQBProbe",
    "ts_guessing_mc": "probes.ts_guessing:TSGuessingMCProbe",
    "cdd": "probes.cdd:CDDProbe",
}

_backends: dict[str, BackendFactory | str] = dict(_BUILTIN_BACKENDS)
_probes: dict[str, type[Probe] | str] = dict(_BUILTIN_PROBES)
_entry_points_loaded = False

P = TypeVar("P", bound="type[Probe]")


def register_probe(cls: P) -> P:
    """Class decorator: make a probe available by its `name`."""
    _probes[cls.name] = cls
    return cls


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    def deco(factory: BackendFactory) -> BackendFactory:
        _backends[name] = factory
        return factory

    return deco


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group="contam.probes"):
        _probes.setdefault(ep.name, ep.value)
    for ep in entry_points(group="contam.backends"):
        _backends.setdefault(ep.name, ep.value)


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def probe_names() -> list[str]:
    _load_entry_points()
    return sorted(_probes)


def backend_names() -> list[str]:
    _load_entry_points()
    return sorted(_backends)


def get_probe(name: str) -> type[Probe]:
    _load_entry_points()
    try:
        ref = _probes[name]
    except KeyError:
        raise InputError(
            f"unknown probe {name!r}; known: {', '.join(probe_names())}", field="--probe"
        ) from None
    if isinstance(ref, str):
        ref = _probes[name] = _resolve(ref)
    return ref


def get_backend(name: str) -> BackendFactory:
    _load_entry_points()
    try:
        ref = _backends[name]
    except KeyError:
        known = ", ".join(backend_names())
        raise InputError(f"unknown model backend {name!r}; known: {known}", field="--model") from None
    if isinstance(ref, str):
        try:
            ref = _backends[name] = _resolve(ref)
        except ModuleNotFoundError as exc:
            extra = BACKEND_EXTRAS.get(name)
            hint = f"; install it with: pip install 'contam[{extra}]'" if extra else ""
            raise BackendUnavailable(f"backend {name!r} is not available ({exc}){hint}") from exc
    return ref


def create_model(spec: ModelSpec) -> ModelClient:
    """Build the client a spec names."""
    return get_backend(spec.backend)(spec)
