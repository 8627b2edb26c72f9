"""The model-spec grammar, a public contract scripts depend on.

    hf:PATH                   local transformers model folder
    vllm:PATH                 in-process vLLM engine over a local model folder
    openai:NAME@BASE_URL      any OpenAI-compatible server (vLLM, OpenAI, llama.cpp, SGLang)
    mock[:k=v,k=v]            the scripted model, for tests and dry runs

Options for any backend may follow after `?`: `hf:PATH?device=cpu&batch=8`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from contam.errors import ModelSpecError

GRAMMAR = "hf:PATH | vllm:PATH | openai:NAME@BASE_URL | mock[:k=v,...]"


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str
    target: str = Field(default="", description="model path or served model name")
    base_url: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    api_key_env: str = "OPENAI_API_KEY"

    @classmethod
    def parse(cls, spec: str, *, api_key_env: str | None = None) -> ModelSpec:
        spec = spec.strip()
        if not spec:
            raise ModelSpecError(f"empty model spec; expected {GRAMMAR}", field="--model")
        backend, _, rest = spec.partition(":")
        extra: dict[str, str] = {}
        if api_key_env:
            extra["api_key_env"] = api_key_env
        if backend == "mock":
            options = dict(_pairs(rest, sep=",", spec=spec)) if rest else {}
            return cls(backend="mock", target="mock", options=options, **extra)
        if not rest:
            raise ModelSpecError(f"{spec!r} names no model; expected {GRAMMAR}", field="--model")
        rest, _, query = rest.partition("?")
        options = dict(_pairs(query, sep="&", spec=spec)) if query else {}
        if backend in ("hf", "vllm"):
            return cls(backend=backend, target=rest, options=options, **extra)
        if backend == "openai":
            name, at, url = rest.rpartition("@")
            if not at or not name or not url.startswith(("http://", "https://")):
                raise ModelSpecError(
                    f"{spec!r}: expected openai:NAME@BASE_URL, e.g. openai:tiny@http://127.0.0.1:8000/v1",
                    field="--model",
                )
            return cls(backend="openai", target=name, base_url=url.rstrip("/"), options=options, **extra)
        # Third-party backends (entry points) get the rest verbatim.
        return cls(backend=backend, target=rest, options=options, **extra)

    def __str__(self) -> str:
        if self.backend == "openai":
            return f"openai:{self.target}@{self.base_url}"
        if self.backend == "mock":
            opts = ",".join(f"{k}={v}" for k, v in self.options.items())
            return f"mock:{opts}" if opts else "mock"
        return f"{self.backend}:{self.target}"


def _pairs(text: str, *, sep: str, spec: str) -> list[tuple[str, str]]:
    if sep == "&":
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    pairs = []
    for part in filter(None, text.split(sep)):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise ModelSpecError(f"{spec!r}: option {part!r} is not key=value", field="--model")
        pairs.append((key.strip(), value.strip()))
    return pairs
