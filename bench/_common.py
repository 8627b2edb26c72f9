"""What the bench scripts share: the bare client a backend is measured against.

`bare_post` is the client with nothing in it: an httpx pool sending ready-made JSON bodies to an
OpenAI-compatible server at a fixed concurrency and only reading the answers. Its wall time is
what the server itself takes, as close as a client can see it, so a backend's (or a probe's)
time over it is the client-side overhead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

WireRequest = tuple[str, dict[str, Any]]  # (path under the base URL, JSON body)


async def bare_post(
    base_url: str, requests: Sequence[WireRequest], *, concurrency: int = 16, timeout: float = 300
) -> None:
    """POST every body to `base_url + path`, `concurrency` at a time; raise on any HTTP error."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:

        async def one(path: str, payload: dict[str, Any]) -> None:
            async with semaphore:
                (await http.post(base_url + path, json=payload)).raise_for_status()

        await asyncio.gather(*(one(path, payload) for path, payload in requests))
