"""The service's configuration: one typed object read from `server.yaml` (`load_settings`).

Models are registered here and nowhere else: a request names one, so the service can never be
pointed at an address or a file by a client. An upstream API key is named by the environment
variable that holds it (`api_key_env`); its value is read when the model is opened, never stored,
logged or returned. Relative paths are relative to the working directory the service starts in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contam.errors import ModelSpecError
from contam.models.spec import ModelSpec

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ModelEntry(BaseModel):
    """A registered model: the name requests use, the spec that reaches it, its key's env var."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="the name requests use")
    spec: str = Field(min_length=1, description="a model spec: hf:PATH, vllm:PATH, openai:NAME@URL, mock:...")
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding the upstream API key (read at use time)",
    )
    description: str = ""

    @field_validator("spec")
    @classmethod
    def _spec_parses(cls, value: str) -> str:
        try:
            ModelSpec.parse(value)
        except ModelSpecError as exc:
            raise ValueError(exc.message) from exc
        return value

    def model_spec(self) -> ModelSpec:
        return ModelSpec.parse(self.spec, api_key_env=self.api_key_env)

    def public(self) -> dict[str, Any]:
        """What `GET /v1/models` may show: the name, backend and description; not the spec, which
        can hold a base URL or a path of the server's own."""
        return {"name": self.name, "backend": self.model_spec().backend, "description": self.description}


class IndexEntry(BaseModel):
    """A registered corpus index (`contam index build`), queried by `POST /v1/overlap`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    path: Path
    description: str = ""


class TemplatesEntry(BaseModel):
    """A registered template set for the `guided` probe (`guided.templates` names it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    path: Path = Field(description="the JSON template file (see the guided probe)")
    description: str = ""


class ProbeCaps(BaseModel):
    """The most work one request may ask of a worker: every probe parameter that scales work is
    bounded here (a parameter declares its cap by name, `contam.probe.scales`), and so is the
    number of (item, probe) pairs of a job. A request over a cap is refused before it is queued."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    permutations: int = Field(default=1000, ge=1, description="exchangeability: permutations per shard")
    shards: int = Field(default=200, ge=2, description="exchangeability: shards of a partition")
    context_len: int = Field(default=8192, ge=16, description="exchangeability: window length, characters")
    min_stride: int = Field(
        default=256, ge=1, description="exchangeability: the smallest window step, characters (a floor)"
    )
    samples: int = Field(default=100, ge=1, description="cdd: samples drawn per item")
    max_tokens: int = Field(default=1024, ge=1, description="tokens per generated completion, any probe")
    item_probes: int = Field(
        default=100_000,
        ge=1,
        description="items scored (tested partitions and the reference) times probes, per scan; "
        "summed over the benchmarks of a checklist",
    )

    def bound(self, cap: str) -> tuple[int, bool]:
        """The bound named `cap` and whether it is a floor (`min_...`) rather than a ceiling."""
        value = getattr(self, cap)
        assert isinstance(value, int)
        return value, cap.startswith("min_")


class LimitsSettings(BaseModel):
    """Per-key limits, failed authentications per client address, and upload bounds (enforced by
    the API)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_per_s: float = Field(default=20.0, gt=0, description="requests per second per key (token bucket)")
    burst: int = Field(default=40, ge=1, description="token bucket size per key")
    max_active_jobs: int = Field(default=8, ge=1, description="queued + running jobs per key")
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_items: int = Field(default=5000, ge=1, description="items in an uploaded benchmark")
    max_field_chars: int = Field(default=100_000, ge=16, description="characters in one uploaded field")
    auth_failures_per_s: float = Field(
        default=1.0,
        gt=0,
        description="failed authentications (a missing, wrong or revoked key) per second per client "
        "address (token bucket); past it the address gets 429 with Retry-After on every endpoint that "
        "needs a key, valid keys included, and no key is checked, until the bucket refills",
    )
    auth_failure_burst: int = Field(
        default=20, ge=1, description="failed authentications a client address may make at once"
    )


class WorkerSettings(BaseModel):
    """How workers run jobs: each in a process of its own, watched by a heartbeat (`servers.worker`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lease_s: float = Field(
        default=30.0, gt=0, description="a claimed job's lease; heartbeats renew it every third of it"
    )
    poll_s: float = Field(default=0.5, gt=0, description="idle wait between claims")
    cancel_check_s: float = Field(
        default=2.0, gt=0, description="heartbeat at least this often, so a cancel stops a job within it"
    )
    max_attempts: int = Field(
        default=3, ge=1, description="claims of a job whose workers all died before it is failed"
    )
    concurrency: int = Field(default=4, ge=1, le=256, description="model calls in flight per job")
    batch_size: int | None = Field(default=None, ge=1, le=4096)
    nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU priority of the job processes (Linux nice, added to the worker's): jobs are "
        "CPU-bound (scoring, statistics, reports), so on a machine the API shares they yield to its "
        "requests, and to the workers' heartbeats",
    )
    max_job_s: float = Field(
        default=3600.0,
        gt=0,
        description="wall-clock limit of one run of a job: past it the job's process is stopped and "
        "the job failed, so a job waiting on a slow model cannot hold a worker forever",
    )

    @property
    def heartbeat_interval(self) -> float:
        """Every third of the lease (two beats can be lost before it lapses), or more often."""
        return min(self.lease_s / 3, self.cancel_check_s)

    @property
    def liveness_s(self) -> float:
        """A worker counts as live (`/readyz`) while its last beat is this recent: three intervals,
        as every worker beats once an interval, busy or idle."""
        return 3 * self.heartbeat_interval


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(
        default="sqlite:///.contam/service/jobs.sqlite",
        description="job store URL: sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
    )
    cache_path: Path = Field(
        default=Path(".contam/service/calls.sqlite"),
        description="the SQLite call cache shared by every job (as `contam scan --cache`)",
    )
    call_cache: Literal["file", "store"] = Field(
        default="file",
        description="where completed model calls are kept: 'file' (cache_path, one machine) or "
        "'store' (the job store's database: shared by workers on every machine of a PostgreSQL store; "
        "checklist jobs keep theirs in cache_path)",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=0, le=64, description="in-process workers of `contam serve`")
    models: tuple[ModelEntry, ...] = ()
    indexes: tuple[IndexEntry, ...] = ()
    templates: tuple[TemplatesEntry, ...] = Field(
        default=(), description="template sets a `guided.templates` parameter may name"
    )
    caps: ProbeCaps = ProbeCaps()
    limits: LimitsSettings = LimitsSettings()
    worker: WorkerSettings = WorkerSettings()

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("expected sqlite:///PATH or postgresql://...")
        return value

    @field_validator("models", "indexes", "templates")
    @classmethod
    def _unique_names(
        cls, entries: tuple[ModelEntry | IndexEntry | TemplatesEntry, ...]
    ) -> tuple[ModelEntry | IndexEntry | TemplatesEntry, ...]:
        first: dict[str, int] = {}
        for i, entry in enumerate(entries):
            if entry.name in first:
                where = first[entry.name]
                raise ValueError(f"[{i}]: name {entry.name!r} is registered twice (first at [{where}])")
            first[entry.name] = i
        return entries

    def model(self, name: str) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def index(self, name: str) -> IndexEntry | None:
        return next((i for i in self.indexes if i.name == name), None)

    def template_set(self, name: str) -> TemplatesEntry | None:
        return next((t for t in self.templates if t.name == name), None)


def load_settings(path: str | Path) -> ServerSettings:
    """Read and validate `server.yaml`; an error names the file, line and key."""
    from contam.yamlconf import load_yaml

    return load_yaml(path, ServerSettings)


__all__ = [
    "IndexEntry",
    "LimitsSettings",
    "ModelEntry",
    "ProbeCaps",
    "ServerSettings",
    "TemplatesEntry",
    "WorkerSettings",
    "load_settings",
]
