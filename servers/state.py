"""What the routers find on `app.state`: the settings, the store and the per-resource services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import Request

    from servers.catalog.service import CatalogService
    from servers.checklists.service import ChecklistService
    from servers.keycache import KeyCache
    from servers.limits import RateLimiter
    from servers.overlap.service import OverlapService
    from servers.scans.service import ScanService
    from servers.settings import ServerSettings
    from servers.store.base import JobStore


@dataclass(frozen=True, slots=True)
class AppState:
    settings: ServerSettings
    store: JobStore
    limiter: RateLimiter
    # Failed authentications per client address (`servers.auth`).
    auth_failures: RateLimiter
    key_cache: KeyCache
    scans: ScanService
    checklists: ChecklistService
    overlap: OverlapService
    catalog: CatalogService
    # Whether this process runs workers; /readyz then also asks the store for live ones.
    expects_workers: bool


def state_of(request: Request) -> AppState:
    state = getattr(request.app.state, "contam", None)
    if not isinstance(state, AppState):
        raise RuntimeError("the app was not started through its lifespan (create_app)")
    return state
