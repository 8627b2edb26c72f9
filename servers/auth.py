"""Bearer-key authentication and the per-key rate limit, as one FastAPI dependency.

Every endpoint but health depends on `principal`. A missing, malformed, unknown or revoked key
gets the same 401 (the response never says which, so a key cannot be probed); a key over its
rate gets 429 with Retry-After. A verified key is remembered for a second (`servers.keycache`),
so a revocation takes effect within a second.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from servers.problems import ApiProblem
from servers.state import state_of

_bearer = HTTPBearer(auto_error=False, description="an API key from `contam keys create`")


class Principal(BaseModel):
    """Who is calling: the key's owner (jobs belong to owners) and the key itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    key_id: str


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="contam"'})


async def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("send an API key as `Authorization: Bearer <key>`")
    state = state_of(request)
    token = credentials.credentials
    record = state.key_cache.get(token)
    if record is None:
        # A store call can block (a hash, a PostgreSQL round trip): off the event loop.
        record = await run_in_threadpool(state.store.authenticate, token)
        if record is None:
            raise _unauthorized("the API key is not valid (unknown or revoked)")
        state.key_cache.put(token, record)
    wait = state.limiter.take(record.key_id)
    if wait is not None:
        raise ApiProblem(
            429,
            "rate-limited",
            f"over {state.limiter.rate:g} requests per second (burst {state.limiter.burst:g}) on this key",
            headers={"Retry-After": state.limiter.retry_after(wait)},
        )
    return Principal(owner=record.owner, key_id=record.key_id)


Caller = Annotated[Principal, Depends(principal)]
