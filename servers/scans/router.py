"""`/v1/scans`: thin handlers; the work is in `ScanService`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from servers.auth import Caller
from servers.gcpause import gc_paused
from servers.problems import problem_responses
from servers.scans.body import ndjson_parameters, read_scan_request, scan_request_body
from servers.scans.schemas import Accepted, ScanList, ScanStatus
from servers.state import state_of

router = APIRouter(prefix="/v1/scans", tags=["scans"])

JOB_ID = r"^[0-9a-f]{32}$"
JobId = Annotated[str, Path(pattern=JOB_ID, description="the job id (32 hex digits)")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,200}$",
        description="a retried submit with the same key returns the job of the first one",
    ),
]
Cursor = Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="from next_cursor")]
Limit = Annotated[int, Query(ge=1, le=200)]


@router.post(
    "",
    status_code=202,
    response_model=Accepted,
    responses={
        200: {"model": Accepted, "description": "the job an earlier submit with this Idempotency-Key made"},
        **problem_responses(400, 401, 409, 413, 415, 422, 429),
    },
    summary="Submit a scan",
    description="The body is a ScanRequest (application/json); or a benchmark file as the body "
    "(application/x-ndjson, one item per line) with the scan's settings as query parameters; or "
    "multipart/form-data with a `file` part (the benchmark: .jsonl, .json or .csv) and a `request` "
    "part (ScanOptions as JSON). Answers 202 with a Location header.",
    openapi_extra={"requestBody": scan_request_body(), "parameters": ndjson_parameters()},
)
async def submit(
    request: Request, response: Response, caller: Caller, idempotency_key: IdempotencyKey = None
) -> Accepted:
    state = state_of(request)
    with gc_paused():  # an upload's many small objects hold no cycles (servers.gcpause)
        scan = await read_scan_request(request, state.scans)
        accepted = await run_in_threadpool(state.scans.submit, caller.owner, scan, idempotency_key)
    response.headers["Location"] = accepted.status_url
    if not accepted.created:
        response.status_code = 200  # the job of a retried submit, already there
    return accepted


@router.get(
    "", response_model=ScanList, responses=problem_responses(401, 422, 429), summary="List your scans"
)
async def list_scans(request: Request, caller: Caller, limit: Limit = 50, cursor: Cursor = None) -> ScanList:
    return await run_in_threadpool(state_of(request).scans.list, caller.owner, limit, cursor)


@router.get("/{job_id}", response_model=ScanStatus, responses=problem_responses(401, 404, 422, 429))
async def get_scan(request: Request, caller: Caller, job_id: JobId) -> ScanStatus:
    """Status and progress (items and model calls done out of the totals known so far)."""
    return await run_in_threadpool(state_of(request).scans.status, caller.owner, job_id)


@router.delete("/{job_id}", response_model=ScanStatus, responses=problem_responses(401, 404, 422, 429))
async def cancel_scan(request: Request, caller: Caller, job_id: JobId) -> ScanStatus:
    """Cancel: a queued job at once, a running one at its worker's next heartbeat (its cached calls
    are kept, so a resubmit repeats none)."""
    return await run_in_threadpool(state_of(request).scans.cancel, caller.owner, job_id)


_REPORT_CONTENT: dict[str, Any] = {
    "application/json": {"schema": {"type": "object", "description": "the ScanReport"}},
    "text/markdown": {"schema": {"type": "string"}},
    "text/html": {"schema": {"type": "string"}},
}


@router.get(
    "/{job_id}/report",
    response_class=Response,
    responses={
        200: {"description": "the report", "content": _REPORT_CONTENT},
        **problem_responses(401, 404, 409, 422, 429),
    },
)
async def get_report(
    request: Request,
    caller: Caller,
    job_id: JobId,
    format: Annotated[
        Literal["json", "md", "html"], Query(description="json (default), md or html")
    ] = "json",
) -> Response:
    """The `ScanReport` of a finished scan; `?format=md|html` renders it. 409 until it is done."""
    text, media = await run_in_threadpool(state_of(request).scans.report, caller.owner, job_id, format)
    return Response(text, media_type=media)
