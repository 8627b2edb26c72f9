"""`/v1/models`, `/v1/benchmarks`, `/v1/indexes`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from servers.auth import Caller
from servers.catalog.schemas import BenchmarkList, IndexList, ModelList
from servers.problems import problem_responses
from servers.state import state_of

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/models", response_model=ModelList, responses=problem_responses(401, 429))
async def models(request: Request, caller: Caller) -> ModelList:
    """The models a request may name."""
    return state_of(request).catalog.models()


@router.get("/benchmarks", response_model=BenchmarkList, responses=problem_responses(401, 429))
async def benchmarks(request: Request, caller: Caller) -> BenchmarkList:
    """The built-in benchmarks a request may name, with their partitions (any other is uploaded)."""
    return await run_in_threadpool(state_of(request).catalog.benchmarks)


@router.get("/indexes", response_model=IndexList, responses=problem_responses(401, 429))
async def indexes(request: Request, caller: Caller) -> IndexList:
    """The corpus indexes `POST /v1/overlap` may query."""
    return state_of(request).catalog.indexes()
