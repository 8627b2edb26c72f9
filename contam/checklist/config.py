"""`release.yaml`: what a model-release checklist runs, validated before anything runs.

Every value is checked at load time where it can be without the model: probe names against the
registry, probe parameters by each probe's own `from_options`, files and index folders for
existence. Relative paths are resolved against the YAML file's folder, so a checklist runs the
same from any working directory. Any problem is an `InputError` naming the file, line and key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contam.errors import InputError
from contam.yamlconf import load_yaml

# Suffixes of benchmark files (`contam.benchmarks.readers`); a reference ending in one is a file,
# anything else may still be a partition name, decided once the benchmark is open.
_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".jsonl.gz", ".jsonl.zst", ".arrow")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _base(info: ValidationInfo) -> Path:
    context = info.context or {}
    base = context.get("base")
    return Path(base) if base is not None else Path.cwd()


def _resolve(value: str, info: ValidationInfo) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (_base(info) / path).resolve())


def _looks_like_path(value: str) -> bool:
    return "/" in value or value.startswith(".") or value.lower().endswith(_FILE_SUFFIXES)


class ProbeEntry(_Frozen):
    """A probe by registry name, with its parameters (as `--param name.key=value` would give)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        from contam.registry import get_probe

        try:
            get_probe(value)
        except InputError as exc:
            raise ValueError(exc.message) from None
        return value

    @model_validator(mode="after")
    def _params(self, info: ValidationInfo) -> ProbeEntry:
        # A YAML file is checked by `load_checklist` instead, which can point at the key's line.
        if not (info.context or {}).get("params_checked_later"):
            from contam.registry import get_probe

            try:
                get_probe(self.name).from_options(self.params)
            except InputError as exc:
                raise ValueError(f"{exc.field}: {exc.message}" if exc.field else exc.message) from None
        return self


class BenchmarkEntry(_Frozen):
    """One benchmark of the checklist: what `contam scan` would be given for it."""

    name: str = Field(description="a built-in benchmark name or a benchmark file (relative to the YAML)")
    label: str | None = Field(
        default=None,
        description="its name in the checklist and the folder of its report (default: from name)",
    )
    partitions: tuple[str, ...] | None = Field(
        default=None, min_length=1, description="partitions to test (default: all but the reference)"
    )
    reference: str | None = Field(
        default=None, description="a partition of the benchmark, or a file of items the model never saw"
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="item field -> file column, as `--field FIELD=COLUMN`"
    )
    format: Literal["text", "qa", "mc"] | None = None
    overlap: str | None = Field(default=None, description="an overlap.json of this benchmark")

    @field_validator("name")
    @classmethod
    def _benchmark(cls, value: str, info: ValidationInfo) -> str:
        from contam.benchmarks.builtin import BUILTINS

        if value in BUILTINS:
            return value
        resolved = _resolve(value, info)
        if not Path(resolved).exists():
            raise ValueError(f"not a built-in benchmark ({', '.join(BUILTINS)}) and no such file: {resolved}")
        return resolved

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not _looks_like_path(value):
            return value  # a partition name, checked once the benchmark is open
        resolved = _resolve(value, info)
        if not Path(resolved).exists():
            raise ValueError(f"no such file: {resolved}")
        return resolved

    @field_validator("overlap")
    @classmethod
    def _overlap(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        resolved = _resolve(value, info)
        if not Path(resolved).is_file():
            raise ValueError(f"no such file: {resolved}")
        return resolved

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        from contam.benchmarks import FieldMap

        try:
            FieldMap.parse(field_pairs(value))
        except InputError as exc:
            raise ValueError(exc.message) from None
        return value

    @property
    def field_args(self) -> tuple[str, ...]:
        return field_pairs(self.fields)


def field_pairs(fields: dict[str, str]) -> tuple[str, ...]:
    """`{prompt: question}` as the CLI's `prompt=question` pairs."""
    return tuple(f"{key}={column}" for key, column in fields.items())


def _spec_with_resolved_paths(raw: str, spec: Any, info: ValidationInfo) -> str:
    """The spec with its local paths made relative to the YAML file: a local model folder, and
    the mock's script and call log."""
    if spec.backend in ("hf", "vllm"):
        _, _, query = raw.partition(":")[2].partition("?")
        target = _resolve(spec.target, info)
        return f"{spec.backend}:{target}" + (f"?{query}" if query else "")
    if spec.backend == "mock" and spec.options:
        options = {k: _resolve(v, info) if k in ("seen", "calls") else v for k, v in spec.options.items()}
        return "mock:" + ",".join(f"{k}={v}" for k, v in options.items())
    return raw


class ChecklistConfig(_Frozen):
    """A release checklist: one model, its benchmarks, the probes, and the error rate to hold."""

    model: str = Field(description="model spec: hf:PATH | vllm:PATH | openai:NAME@BASE_URL | mock[:k=v,...]")
    api_key_env: str | None = Field(default=None, description="environment variable holding the API key")
    benchmarks: tuple[BenchmarkEntry, ...] = Field(min_length=1)
    indexes: tuple[str, ...] = Field(
        default=(),
        description="persistent corpus index folders (`contam index build`), queried per benchmark",
    )
    alpha: float = Field(
        default=0.05, gt=0, lt=1, description="family-wise error over every partition of every benchmark"
    )
    probes: tuple[ProbeEntry, ...] = Field(default=(ProbeEntry(name="loss"),), min_length=1)
    seed: int = 0
    concurrency: int = Field(default=4, ge=1, le=256, description="model calls in flight")

    # The file it came from, so checks made after validation (a partition name, a probe parameter)
    # can still point at a line.
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("model")
    @classmethod
    def _model(cls, value: str, info: ValidationInfo) -> str:
        from contam.models.spec import ModelSpec

        try:
            spec = ModelSpec.parse(value)
        except InputError as exc:
            raise ValueError(exc.message) from None
        return _spec_with_resolved_paths(value.strip(), spec, info)

    @field_validator("indexes")
    @classmethod
    def _indexes(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        resolved = tuple(_resolve(v, info) for v in value)
        for raw, path in zip(value, resolved, strict=True):
            if not Path(path).is_dir():
                raise ValueError(f"{raw!r}: no such index folder ({path})")
        return resolved

    @field_validator("probes")
    @classmethod
    def _unique_probes(cls, value: tuple[ProbeEntry, ...]) -> tuple[ProbeEntry, ...]:
        names = [p.name for p in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"probe(s) listed twice: {', '.join(twice)}; give each once with its params")
        return value

    @property
    def source(self) -> Path | None:
        return self._source

    def error(self, message: str, loc: tuple[str | int, ...]) -> InputError:
        """An input error at `loc` (a key path such as ("benchmarks", 0, "reference")) of the file."""
        line = locate(self._source, loc) if self._source is not None else None
        key = ".".join(str(part) for part in loc)
        return InputError(message, path=str(self._source) if self._source else None, line=line, field=key)


def locate(path: Path, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the key at `loc` in the YAML file (its parent's when it is missing)."""
    import yaml

    from contam.yamlconf import _line_of  # the locator load_yaml uses; one definition of "the line"

    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return None
    return _line_of(root, loc)


def load_checklist(path: str | Path) -> ChecklistConfig:
    """Read and check `release.yaml`; an `InputError` names the file, line and key of a problem."""
    source = Path(path)
    context = {"base": source.resolve().parent, "params_checked_later": True}
    config = load_yaml(source, ChecklistConfig, context=context)
    config._source = source
    for i, entry in enumerate(config.probes):
        _check_params(config, i, entry)
    return config


def _check_params(config: ChecklistConfig, index: int, entry: ProbeEntry) -> None:
    """Each probe validates its own parameters; the error points at the offending key."""
    from contam.registry import get_probe

    try:
        get_probe(entry.name).from_options(entry.params)
    except InputError as exc:
        # from_options names the field "probe.key"; the key is what the YAML shows.
        prefix = f"{entry.name}."
        key = exc.field[len(prefix) :] if exc.field and exc.field.startswith(prefix) else None
        loc: tuple[str | int, ...] = ("probes", index, "params", *(key.split(".") if key else ()))
        if not entry.params:
            loc = ("probes", index)
        raise config.error(exc.message, loc) from None
