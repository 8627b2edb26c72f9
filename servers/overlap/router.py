"""`POST /v1/overlap`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from corpora_index.report import OverlapReport
from servers.auth import Caller
from servers.intake import JSON, json_object, load_json, media_type, read_body, unsupported
from servers.problems import problem_responses
from servers.state import state_of

router = APIRouter(prefix="/v1", tags=["overlap"])


@router.post(
    "/overlap",
    response_model=OverlapReport,
    responses=problem_responses(400, 401, 413, 415, 422, 429, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OverlapRequest"}}},
        }
    },
)
async def overlap(request: Request, caller: Caller) -> OverlapReport:
    """Query a registered corpus index with a benchmark (exact n-gram tier); answers at once."""
    state = state_of(request)
    if media_type(request) != JSON:
        raise unsupported(media_type(request), (JSON,))
    data = json_object(
        load_json(await read_body(request, state.settings.limits.max_body_bytes), "body"), "body"
    )
    parsed = state.overlap.parse(data)
    return await run_in_threadpool(state.overlap.query, parsed)
