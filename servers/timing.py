"""`Server-Timing: app;dur=MS` on every HTTP response (W3C Server Timing): the time from the
request reaching the application to its response starting. A client's latency minus this is
time spent outside the handler (the network, the event loop's queue, a busy CPU), which is how
bench/service.py splits its tail. A pure ASGI middleware: it adds no per-request task or copy of
the body."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServerTiming:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                headers: list[Any] = [*message.get("headers", ()), (b"server-timing", b"app;dur=%.2f" % ms)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)


def app_ms(header: str | None) -> float | None:
    """The `app` duration in a Server-Timing header value, or None."""
    for metric in (header or "").split(","):
        name, _, params = metric.strip().partition(";")
        if name == "app":
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key == "dur":
                    try:
                        return float(value)
                    except ValueError:
                        return None
    return None
