"""Bearer-key authentication and the per-key rate limit, as one FastAPI dependency.

Every endpoint but health depends on `principal`. A missing, malformed, unknown or revoked key
gets the same 401 (the response never says which, so a key cannot be probed); a key over its
rate gets 429 with Retry-After. A verified key is remembered for a second (`servers.keycache`),
so a revocation takes effect within a second.

Failed authentications are rate-limited per client address (`limits.auth_failures_per_s`, burst
`limits.auth_failure_burst`): an address past its budget gets 429 with Retry-After, and its key is
not even checked, so guessing keys costs the server nothing and gains the guesser a few tries a
second at most. While an address is over, a valid key sent from it is refused too: telling a
valid key apart would mean checking it, which is the work the limit saves, and the block lifts as
the bucket refills (a second per failure by default). Other addresses are unaffected. The address
is the connection's peer: `contam serve` runs uvicorn without proxy headers, so X-Forwarded-For
is never trusted, and clients behind one proxy or NAT share its budget.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from servers.problems import ApiProblem
from servers.state import AppState, state_of

_bearer = HTTPBearer(auto_error=False, description="an API key from `contam keys create`")


class Principal(BaseModel):
    """Who is calling: the key's owner (jobs belong to owners) and the key itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    key_id: str


def _unauthorized(state: AppState, address: str, detail: str) -> ApiProblem:
    state.auth_failures.take(address)
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="contam"'})


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    state = state_of(request)
    address = client_address(request)
    blocked = state.auth_failures.wait(address)
    if blocked is not None:
        raise ApiProblem(
            429,
            "auth-rate-limited",
            f"too many failed authentications from this address (over {state.auth_failures.rate:g} "
            f"per second, burst {state.auth_failures.burst:g}); retry later",
            headers={"Retry-After": state.auth_failures.retry_after(blocked)},
        )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized(state, address, "send an API key as `Authorization: Bearer <key>`")
    token = credentials.credentials
    record = state.key_cache.get(token)
    if record is None:
        # A store call can block (a hash, a PostgreSQL round trip): off the event loop.
        record = await run_in_threadpool(state.store.authenticate, token)
        if record is None:
            raise _unauthorized(state, address, "the API key is not valid (unknown or revoked)")
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
