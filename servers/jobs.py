"""Run one job: a scan or a checklist, through the same runner and SQLite call cache as the CLI.

Every model call goes through `contam.runner.Runner` over `settings.cache_path`, so a job taken
over by another worker, or run again after a restart, finds its completed calls in the cache and
repeats none of them.

A worker runs each job with `compute` in a process of its own (`servers.jobproc`): the job counts
into a `JobProgress` that a thread of that process reports, and the worker's heartbeat (lease,
progress, cancel) keeps its own schedule in the worker, whatever the job does with the CPU. A job
stopped there (cancel, lease lost, the worker stopping, `worker.max_job_s`) has its process ended;
the calls it completed are in the cache already. Called directly, `compute` runs a job in the
caller's thread (tests read its `JobProgress` afterwards); there is no heartbeat in the job's own
event loop, since one there waits whenever the job computes.

Progress: `calls_*` are the runner's requests (planned and answered, cached ones included);
for a scan, `items_*` count (probe, item) pairs of the tested partitions, done when the probe has
finished its partition (reported by `contam.scan` itself), for a checklist summed over its scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contam.cache import CallCache
from contam.errors import ContamError, InputError, ModelCallError, TransientModelError
from contam.probe import Probe
from contam.types import Partition
from servers.settings import ServerSettings
from servers.store.base import JobRecord, Progress

log = logging.getLogger("contam.service.jobs")


class JobProgress:
    """The runner's `Progress` (calls), plus items done per finished (probe, partition) pair."""

    def __init__(self) -> None:
        self.calls_total = 0
        self.calls_done = 0
        self.items_total = 0
        self.items_done = 0

    def add_total(self, n: int) -> None:
        self.calls_total += n

    def advance(self, n: int, *, cached: bool = False) -> None:
        self.calls_done += n

    # `contam.scan` counts (probe, item) pairs through these (the runner's `ItemProgress`); a
    # checklist's scans count into the same totals.
    def add_item_total(self, n: int) -> None:
        self.items_total += n

    def advance_items(self, n: int) -> None:
        self.items_done += n

    def snapshot(self) -> Progress:
        return Progress(
            items_done=self.items_done,
            items_total=self.items_total,
            calls_done=min(self.calls_done, self.calls_total),
            calls_total=self.calls_total,
        )


def compute(job: JobRecord, settings: ServerSettings, progress: JobProgress) -> str:
    """Run `job` to its result JSON in a fresh event loop, counting into `progress` (a job
    process's entry: whoever reads `progress` does so from another thread)."""
    return asyncio.run(_dispatch(job, settings, progress))


async def _dispatch(job: JobRecord, settings: ServerSettings, progress: JobProgress) -> str:
    if job.kind == "scan":
        return await run_scan(job.request, settings, progress)
    if job.kind == "checklist":
        return await run_checklist(job.request, settings, progress, out_dir=checklist_dir(settings, job.id))
    raise InputError(f"jobs of kind {job.kind!r} are answered by the API at once, never queued", field="kind")


def checklist_dir(settings: ServerSettings, job_id: str) -> Path:
    """Where a checklist job writes its per-benchmark reports (beside the call cache)."""
    return settings.cache_path.parent / "checklists" / job_id


def _validated(model: Any, request: dict[str, Any]) -> Any:
    try:
        return model.model_validate(request)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(first["msg"], field=".".join(str(p) for p in first["loc"])) from None


async def run_scan(request: dict[str, Any], settings: ServerSettings, progress: JobProgress) -> str:
    """A stored scan request to its `ScanReport` JSON, verdicts included."""
    from contam.benchmarks import select_partitions
    from contam.registry import create_model, get_probe
    from contam.runner import Runner
    from contam.scan import scan
    from contam.verdicts import VerdictPolicy
    from servers.benchmarks import open_benchmark
    from servers.resolve import RegistryResolver
    from servers.scans.schemas import ScanRequest

    req: ScanRequest = _validated(ScanRequest, request)
    entry = settings.model(req.model)
    if entry is None:  # registered when submitted, since removed from server.yaml
        raise InputError(f"no model {req.model!r} is registered on this server", field="model")
    bench = open_benchmark(req.benchmark)
    reference: Partition | None = None
    if req.reference is not None:
        if req.reference not in bench.partitions:
            raise InputError(
                f"no partition {req.reference!r} in {bench.name!r} ({', '.join(bench.partitions)})",
                field="reference",
            )
        reference = bench.partitions[req.reference]
    if req.partitions:
        select_partitions(bench, req.partitions)  # an unknown name fails, naming the known ones
    probes: list[Probe] = []
    for i, spec in enumerate(req.probes):
        try:
            probes.append(get_probe(spec.name).from_options(spec.params))
        except InputError as exc:
            raise InputError(exc.message, field=f"probes[{i}]") from None

    with redacted(settings):
        client = create_model(entry.model_spec())  # an API key is read from its env var here, at use
        cache, close_cache = open_call_cache(settings)
        runner = Runner(
            client,
            cache,
            concurrency=settings.worker.concurrency,
            batch_size=settings.worker.batch_size,
            progress=progress,
        )
        try:
            report = await scan(
                bench,
                runner,
                probes,
                # The registered name, not the spec: a spec can hold the server's own URLs and paths.
                model_spec=entry.name,
                partitions=req.partitions or None,
                reference=reference,
                reference_label=req.reference,
                seed=req.seed,
                policy=VerdictPolicy(alpha=req.alpha),
                # What probe parameters name resolves through the server's registry only.
                resolver=RegistryResolver(settings, cache),
            )
        finally:
            await runner.aclose()
            close_cache()
    return report.model_dump_json()


@contextlib.contextmanager
def redacted(settings: ServerSettings) -> Iterator[None]:
    """A job's error as its owner may read it (the full one goes to the worker's log): every path
    and URL of the server's own registry replaced by the registered name, and what an upstream
    model server answered withheld, since it is not the tenant's to read."""
    try:
        yield
    except (ModelCallError, TransientModelError) as exc:
        log.warning("job error, withheld from its owner: %s", exc)
        raise JobError(
            f"a model call failed ({type(exc).__name__}); the model server's answer is in the worker's log"
        ) from exc
    except ContamError as exc:
        message = str(exc)
        for part, name in _private_parts(settings):
            message = message.replace(part, name)
        if message == str(exc):
            raise
        log.warning("job error, shown redacted to its owner: %s", exc)
        raise JobError(message) from exc


def _private_parts(settings: ServerSettings) -> list[tuple[str, str]]:
    """(what the server's config holds, what a tenant sees instead), longest first, so a URL goes
    before a part of it."""
    parts: dict[str, str] = {}
    for entry in settings.models:
        spec = entry.model_spec()
        local = spec.target if spec.backend in ("hf", "vllm") else None
        resolved = str(Path(local).resolve()) if local else None
        for part in (entry.spec, resolved, local, spec.base_url):
            # A path or a URL is the server's own; a bare word ("mock") gives nothing away.
            if part and ("/" in part or ":" in part):
                parts.setdefault(part, f"<model {entry.name}>")
    for kind, entries in (("templates", settings.templates), ("index", settings.indexes)):
        for file in entries:
            for part in (str(file.path), str(file.path.resolve())):
                parts.setdefault(part, f"<{kind} {file.name}>")
    return sorted(parts.items(), key=lambda kv: len(kv[0]), reverse=True)


class JobError(ContamError):
    """A job's failure, in words safe to show the job's owner."""


def open_call_cache(settings: ServerSettings) -> tuple[CallCache, Callable[[], None]]:
    """The call cache `settings` name, and how to close it when the job is over."""
    if settings.call_cache == "file":
        cache = CallCache(settings.cache_path)
        return cache, cache.close
    from servers.store import open_store
    from servers.store.calls import StoreCallCache
    from servers.store.sql import SQLStore

    store = open_store(settings.store)
    assert isinstance(store, SQLStore)  # every store open_store makes is one
    return StoreCallCache(store), store.close


async def run_checklist(
    request: dict[str, Any], settings: ServerSettings, progress: JobProgress, *, out_dir: Path
) -> str:
    """A stored checklist request to its `ChecklistResult` JSON; the per-benchmark reports are
    written under `out_dir`."""
    from contam.checklist.run import arun_checklist
    from servers.checklists.schemas import ChecklistRequest
    from servers.resolve import RegistryResolver

    req: ChecklistRequest = _validated(ChecklistRequest, request)
    try:
        config = req.to_config(settings)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise InputError(message or field, field=field if message else None) from None
    cache, close_cache = open_call_cache(settings)  # `call_cache: store` holds for checklists too
    try:
        with redacted(settings):
            result = await arun_checklist(
                config,
                out_dir=out_dir,
                cache=cache,
                progress=progress,
                resolver=RegistryResolver(settings, cache),
            )
    finally:
        close_cache()
    return result.model_dump_json()
