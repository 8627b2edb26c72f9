"""The scan resource's logic: check a request against what this server has, queue it, read it back.

A request is checked completely before anything is stored: the model is registered, every probe
exists and accepts its parameters, the benchmark loads (an upload through the library's loader)
and the partitions named are in it. So a job that is queued can only fail for reasons of the run
itself, never because of what the client sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from contam.errors import InputError
from contam.types import Benchmark
from servers import jsontext
from servers.benchmarks import open_benchmark
from servers.problems import ApiProblem, from_input_error, from_validation_error
from servers.scans.schemas import (
    Accepted,
    ProbeSpec,
    Progress,
    ScanList,
    ScanRequest,
    ScanStatus,
    UploadLimits,
)
from servers.settings import ServerSettings
from servers.store.base import JobKind, JobRecord, JobStatus, JobStore, TooManyJobs

# Seconds a client is told to wait when it has too many jobs: about one short scan.
ACTIVE_RETRY_AFTER_S = 5


def upload_limits(settings: ServerSettings) -> UploadLimits:
    lim = settings.limits
    return UploadLimits(
        max_body_bytes=lim.max_body_bytes, max_items=lim.max_items, max_field_chars=lim.max_field_chars
    )


def not_found(job_id: str) -> ApiProblem:
    return ApiProblem(404, "not-found", f"no job {job_id!r}")


def check_model(settings: ServerSettings, name: str, field: str = "model") -> None:
    if settings.model(name) is None:
        known = ", ".join(m.name for m in settings.models) or "none"
        raise ApiProblem(
            422,
            "unknown-model",
            f"no model {name!r} is registered on this server (has: {known})",
            field=field,
        )


def check_probes_of(settings: ServerSettings, probes: Sequence[ProbeSpec]) -> None:
    """Every probe exists and accepts its parameters (each probe's own pydantic model); every
    reference among them names a registered model or file (`servers.resolve`), and every
    parameter that scales work is within this server's caps."""
    from contam.registry import get_probe
    from servers.resolve import RegistryResolver

    resolver = RegistryResolver(settings)
    seen: set[str] = set()
    for i, spec in enumerate(probes):
        if spec.name in seen:
            raise ApiProblem(
                422, "invalid-input", f"probe {spec.name!r} listed twice", field=f"probes[{i}].name"
            )
        seen.add(spec.name)
        try:
            cls = get_probe(spec.name)
        except InputError as exc:
            raise from_input_error(exc, field=f"probes[{i}].name") from None
        where = f"probes[{i}].params"
        try:
            probe = cls.from_options(spec.params)
        except InputError as exc:
            # from_options names the field "probe.key"; the client wrote probes[i].params.key.
            key = (exc.field or "").removeprefix(f"{spec.name}.")
            raise from_input_error(exc, field=where + (f".{key}" if key else "")) from None
        try:
            resolver.check(probe.params, field=where)
        except InputError as exc:
            raise ApiProblem(422, "unregistered-reference", exc.message, field=exc.field) from None
        check_caps(settings, probe.params, where)


def check_caps(settings: ServerSettings, params: BaseModel, where: str) -> None:
    from contam.probe import capped

    for path, cap, value in capped(params):
        bound, floor = settings.caps.bound(cap)
        if (value < bound) if floor else (value > bound):
            side = "under this server's floor" if floor else "over this server's cap"
            raise ApiProblem(
                422, "over-cap", f"{value} is {side} of {bound} (caps.{cap})", field=f"{where}.{path}"
            )


def check_work(settings: ServerSettings, items: int, probes: int, field: str = "benchmark") -> None:
    """(item, probe) pairs within `caps.item_probes`: the size of a job, known before it is queued."""
    cap = settings.caps.item_probes
    if items * probes > cap:
        raise ApiProblem(
            422,
            "over-cap",
            f"{items} items x {probes} probes = {items * probes} (item, probe) pairs, over this "
            f"server's cap of {cap} (caps.item_probes); scan fewer partitions or probes",
            field=field,
        )


def check_partitions(request: ScanRequest) -> Benchmark:
    try:
        bench = open_benchmark(request.benchmark)
    except InputError as exc:
        raise from_input_error(exc) from None
    known = list(bench.partitions)
    for i, name in enumerate(request.partitions or ()):
        if name not in bench.partitions:
            raise ApiProblem(
                422,
                "invalid-input",
                f"no partition {name!r} in the benchmark (has: {', '.join(known)})",
                field=f"partitions[{i}]",
            )
    if request.reference is not None and request.reference not in bench.partitions:
        raise ApiProblem(
            422,
            "invalid-input",
            f"no partition {request.reference!r} in the benchmark (has: {', '.join(known)})",
            field="reference",
        )
    if not request.partitions and [p for p in known if p != request.reference] == []:
        raise ApiProblem(
            422, "invalid-input", "nothing to test: the reference is the only partition", field="reference"
        )
    return bench


def scored_items(bench: Benchmark, partitions: Sequence[str] | None, reference: str | None) -> int:
    """Items a scan scores per probe: the tested partitions and the reference."""
    tested = partitions or [p for p in bench.partitions if p != reference]
    return sum(len(bench.partitions[p]) for p in {*tested, *([reference] if reference else [])})


def stored_request(request: ScanRequest) -> dict[str, Any]:
    return request.model_dump(mode="json", exclude_none=True)


def public_request(request: dict[str, Any]) -> dict[str, Any]:
    """The stored request without the uploaded items (they can be megabytes), their count kept."""
    bench = dict(request.get("benchmark") or {})
    items = bench.pop("items", None)
    if isinstance(items, list):
        bench["uploaded_items"] = len(items)
    return {**request, "benchmark": bench} if "benchmark" in request else dict(request)


def status_of(job: JobRecord, report_url: str | None) -> ScanStatus:
    return ScanStatus(
        id=job.id,
        kind=job.kind,
        status=job.status.value,
        progress=Progress(
            items_done=job.items_done,
            items_total=job.items_total,
            calls_done=job.calls_done,
            calls_total=job.calls_total,
        ),
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        cancel_requested=job.cancel_requested,
        attempts=job.attempts,
        report_url=report_url if job.status is JobStatus.DONE else None,
        request=public_request(job.request),
    )


class JobService:
    """What every job resource shares: queue with idempotency and the active-job limit, read, cancel."""

    kind: JobKind = "scan"
    prefix = "/v1/scans"
    result_suffix = "report"

    def __init__(self, settings: ServerSettings, store: JobStore) -> None:
        self.settings = settings
        self.store = store

    def urls(self, job_id: str) -> tuple[str, str]:
        return f"{self.prefix}/{job_id}", f"{self.prefix}/{job_id}/{self.result_suffix}"

    def enqueue(self, owner: str, request: dict[str, Any], idempotency_key: str | None) -> Accepted:
        try:
            job, created = self.store.create_job(
                owner,
                self.kind,
                request,
                idempotency_key,
                max_active=self.settings.limits.max_active_jobs,
                request_json=jsontext.dumps(request),  # piece by piece: see servers.jsontext
            )
        except TooManyJobs as exc:
            raise ApiProblem(
                429, "too-many-jobs", str(exc), headers={"Retry-After": str(ACTIVE_RETRY_AFTER_S)}
            ) from None
        if not created and (job.kind != self.kind or job.request != request):
            raise ApiProblem(
                409,
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different request; use a new key for a new request",
                field="header.idempotency-key",
            )
        return Accepted(id=job.id, status=job.status.value, status_url=self.urls(job.id)[0], created=created)

    def get(self, owner: str, job_id: str) -> JobRecord:
        job = self.store.get_job(job_id, owner)
        if job is None or job.kind != self.kind:
            raise not_found(job_id)
        return job

    def status(self, owner: str, job_id: str) -> ScanStatus:
        job = self.get(owner, job_id)
        return status_of(job, self.urls(job.id)[1])

    def list(self, owner: str, limit: int, cursor: str | None) -> ScanList:
        # Filtered in the store, so a page of scans is full even when checklists interleave.
        jobs, next_cursor = self.store.list_jobs(owner, limit, cursor, kind=self.kind)
        return ScanList(items=[status_of(j, self.urls(j.id)[1]) for j in jobs], next_cursor=next_cursor)

    def cancel(self, owner: str, job_id: str) -> ScanStatus:
        self.get(owner, job_id)
        job = self.store.request_cancel(job_id, owner)
        if job is None:
            raise not_found(job_id)
        return status_of(job, self.urls(job.id)[1])

    def result(self, owner: str, job_id: str) -> str:
        job = self.get(owner, job_id)
        if job.status is not JobStatus.DONE:
            why = f": {job.error}" if job.error else ""
            raise ApiProblem(409, "not-ready", f"job {job_id!r} is {job.status.value}{why}; no result yet")
        text = self.store.result(job_id, owner)
        if text is None:
            raise not_found(job_id)
        return text


class ScanService(JobService):
    kind: JobKind = "scan"
    prefix = "/v1/scans"
    result_suffix = "report"

    def parse(self, data: dict[str, Any]) -> ScanRequest:
        try:
            return ScanRequest.model_validate(data, context={"limits": upload_limits(self.settings)})
        except ValidationError as exc:
            raise from_validation_error(exc) from None

    def submit(self, owner: str, request: ScanRequest, idempotency_key: str | None) -> Accepted:
        check_model(self.settings, request.model)
        check_probes_of(self.settings, request.probes)
        bench = check_partitions(request)
        check_work(
            self.settings, scored_items(bench, request.partitions, request.reference), len(request.probes)
        )
        return self.enqueue(owner, stored_request(request), idempotency_key)

    def report(self, owner: str, job_id: str, fmt: str) -> tuple[str, str]:
        """The report as (text, media type): JSON as stored, or rendered as Markdown or HTML."""
        text = self.result(owner, job_id)
        if fmt == "json":
            return text, "application/json"
        from contam.report import ScanReport
        from contam.reports import render_html, render_markdown

        report = ScanReport.model_validate_json(text)
        if fmt == "md":
            return render_markdown(report), "text/markdown; charset=utf-8"
        return render_html(report), "text/html; charset=utf-8"
