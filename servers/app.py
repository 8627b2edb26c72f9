"""`create_app(settings)`: the FastAPI application, its routers, its error model and its lifespan.

The lifespan opens the job store (migrating it) and, when asked for, starts in-process workers
(`contam serve --workers N`); on shutdown it stops them, and they put their running jobs back in
the queue for another worker.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from servers import problems
from servers.probe_schema import probe_spec_components
from servers.settings import ServerSettings
from servers.store.base import JobStore
from servers.timing import ServerTiming

API_VERSION = "1"


def _body_schemas() -> list[type[BaseModel]]:
    """Request bodies that handlers read themselves (to enforce the size limit while reading, and
    to take JSONL or multipart too), so FastAPI does not see them; the schema lists them."""
    from servers.checklists.schemas import ChecklistRequest
    from servers.overlap.schemas import OverlapRequest
    from servers.scans.schemas import ScanOptions, ScanRequest

    return [ScanRequest, ScanOptions, ChecklistRequest, OverlapRequest]


def create_app(
    settings: ServerSettings,
    *,
    store: JobStore | None = None,
    workers: int | None = None,
    pool_factory: Callable[[ServerSettings, JobStore, int], Any] | None = None,
) -> FastAPI:
    """The app for `settings`. `store` overrides the one the settings name (tests pass their own);
    `workers` overrides `settings.workers` (0: this process only serves the API)."""
    from servers.catalog.router import router as catalog_router
    from servers.checklists.router import router as checklists_router
    from servers.health.router import router as health_router
    from servers.overlap.router import router as overlap_router
    from servers.scans.router import router as scans_router

    n_workers = settings.workers if workers is None else workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from servers.store import open_store

        own = store is None
        the_store = await run_in_threadpool(open_store, settings.store) if store is None else store
        app.state.contam = _state(settings, the_store, expects_workers=n_workers > 0)
        pool = None
        if n_workers > 0:
            factory = pool_factory or _default_pool
            pool = factory(settings, the_store, n_workers)
            pool.start()
        # What startup built lives as long as the process: out of the collector's full passes,
        # which otherwise walk it all (30-45 ms with the GIL held) while a large upload allocates.
        gc.freeze()
        try:
            yield
        finally:
            if pool is not None:
                await run_in_threadpool(pool.stop)
            if own:
                the_store.close()
            gc.unfreeze()

    app = FastAPI(
        title="contam",
        version=API_VERSION,
        summary="Benchmark contamination scans as durable jobs",
        description="Every endpoint but /healthz and /readyz needs `Authorization: Bearer <key>` "
        "(`contam keys create`). Errors are application/problem+json (RFC 9457).",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(ServerTiming)
    for router in (health_router, scans_router, checklists_router, overlap_router, catalog_router):
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in _body_schemas():
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            # Each probe's parameters, with this server's caps and registered names.
            components.update(probe_spec_components(settings))
            app.openapi_schema = problems.patch_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _state(settings: ServerSettings, store: JobStore, *, expects_workers: bool) -> Any:
    from servers.catalog.service import CatalogService
    from servers.checklists.service import ChecklistService
    from servers.keycache import KeyCache
    from servers.limits import RateLimiter
    from servers.overlap.service import OverlapService
    from servers.scans.service import ScanService
    from servers.state import AppState

    return AppState(
        settings=settings,
        store=store,
        limiter=RateLimiter(settings.limits.rate_per_s, settings.limits.burst),
        auth_failures=RateLimiter(settings.limits.auth_failures_per_s, settings.limits.auth_failure_burst),
        key_cache=KeyCache(),
        scans=ScanService(settings, store),
        checklists=ChecklistService(settings, store),
        overlap=OverlapService(settings),
        catalog=CatalogService(settings),
        expects_workers=expects_workers,
    )


def _default_pool(settings: ServerSettings, store: JobStore, n: int) -> Any:
    from servers.worker import WorkerPool

    return WorkerPool(settings, store, n)
