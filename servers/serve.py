"""Running the service: uvicorn over `create_app(settings)`, until SIGINT or SIGTERM.

One process serves the API and runs `workers` job workers in threads (each job in a process of
its own); more machines add `contam worker` processes on a shared PostgreSQL store. uvicorn
handles the signals: it stops accepting, lets requests in flight finish, then runs the lifespan's
shutdown (workers stop their jobs' processes and put the jobs back in the queue).
"""

from __future__ import annotations

import logging

from servers.settings import ServerSettings

KEEP_ALIVE_S = 75
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(settings: ServerSettings, *, host: str, port: int, workers: int, log_level: str = "info") -> None:
    import uvicorn

    from servers.app import create_app

    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    app = create_app(settings, workers=workers)
    # Access lines carry paths and query strings only: no header (keys) and no body is logged.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        # Longer than clients keep idle connections (httpx: 5 s, uvicorn's own default), so the
        # server never closes one just as a client sends on it (a reset the client cannot retry).
        timeout_keep_alive=KEEP_ALIVE_S,
    )
