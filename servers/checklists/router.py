"""`/v1/checklists`: submit, poll, cancel, fetch the result."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from servers.auth import Caller
from servers.intake import JSON, media_type, read_json_object, unsupported
from servers.problems import problem_responses
from servers.scans.router import IdempotencyKey, JobId
from servers.scans.schemas import Accepted, ScanStatus
from servers.state import state_of

router = APIRouter(prefix="/v1/checklists", tags=["checklists"])


@router.post(
    "",
    status_code=202,
    response_model=Accepted,
    responses={
        200: {"model": Accepted, "description": "the job an earlier submit with this Idempotency-Key made"},
        **problem_responses(400, 401, 409, 413, 415, 422, 429),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChecklistRequest"}}},
        }
    },
)
async def submit(
    request: Request, response: Response, caller: Caller, idempotency_key: IdempotencyKey = None
) -> Accepted:
    """Run the release checklist over registered names, as a job; 202 with a Location header."""
    state = state_of(request)
    if media_type(request) != JSON:
        raise unsupported(media_type(request), (JSON,))
    data = await read_json_object(request, state.settings.limits.max_body_bytes)
    parsed = await run_in_threadpool(state.checklists.parse, data)
    accepted = await run_in_threadpool(state.checklists.submit, caller.owner, parsed, idempotency_key)
    response.headers["Location"] = accepted.status_url
    if not accepted.created:
        response.status_code = 200
    return accepted


@router.get("/{job_id}", response_model=ScanStatus, responses=problem_responses(401, 404, 422, 429))
async def get_checklist(request: Request, caller: Caller, job_id: JobId) -> ScanStatus:
    return await run_in_threadpool(state_of(request).checklists.status, caller.owner, job_id)


@router.delete("/{job_id}", response_model=ScanStatus, responses=problem_responses(401, 404, 422, 429))
async def cancel_checklist(request: Request, caller: Caller, job_id: JobId) -> ScanStatus:
    return await run_in_threadpool(state_of(request).checklists.cancel, caller.owner, job_id)


_RESULT: dict[str, Any] = {
    "application/json": {"schema": {"type": "object", "description": "ChecklistResult"}}
}


@router.get(
    "/{job_id}/result",
    response_class=Response,
    responses={
        200: {"description": "the ChecklistResult", "content": _RESULT},
        **problem_responses(401, 404, 409, 422, 429),
    },
)
async def get_result(request: Request, caller: Caller, job_id: JobId) -> Response:
    """The checklist's result once done; 409 before."""
    text = await run_in_threadpool(state_of(request).checklists.result, caller.owner, job_id)
    return Response(text, media_type="application/json")
