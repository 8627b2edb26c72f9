"""`/healthz`: the process answers. `/readyz`: the store answers and, when this process runs
workers, at least one beat recently; a load balancer sends traffic only to a ready instance.

`workers` counts the live workers of every process on the store: those that beat within
`worker.liveness_s` (three heartbeat intervals; a worker beats once an interval, busy or idle, as
its job runs in a process of its own). A worker that stopped has deregistered, and one that died
ages out of that window within seconds."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from servers.state import state_of

router = APIRouter(tags=["health"])


class Health(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: str
    store: bool | None = None
    workers: int | None = None


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health, "description": "not ready"}})
async def readyz(request: Request) -> JSONResponse:
    state = state_of(request)

    def check() -> tuple[bool, int]:
        try:
            alive = state.store.ping()
        except Exception:  # an unreachable store is an answer here, not an error
            return False, 0
        return alive, state.store.live_workers(within_s=state.settings.worker.liveness_s) if alive else 0

    store_ok, workers = await run_in_threadpool(check)
    ready = store_ok and (workers > 0 or not state.expects_workers)
    body = Health(status="ready" if ready else "not ready", store=store_ok, workers=workers)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
