"""The service's operator commands: `contam keys create|list|revoke` and `contam worker`.

They read the same `server.yaml` as `contam serve`, so they reach the same store. A key's secret
is printed once, by `keys create`; nothing prints it again (the store keeps a salted hash only).
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from servers.settings import ServerSettings
    from servers.store.base import JobStore

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="the server's YAML config (its `store` is used)",
)


def _open(config_path: Path) -> tuple[ServerSettings, JobStore]:
    from servers.settings import load_settings
    from servers.store import open_store

    settings = load_settings(config_path)
    return settings, open_store(settings.store)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@click.group()
def keys() -> None:
    """Manage the service's API keys (stored as salted hashes)."""


@keys.command("create")
@config_option
@click.option("--owner", required=True, help="who the key is for; their jobs are theirs alone")
def create_key(config_path: Path, owner: str) -> None:
    """Create a key for OWNER and print it, this once."""
    _, store = _open(config_path)
    try:
        record, token = store.create_key(owner)
    finally:
        store.close()
    click.echo(f"key {record.key_id} for {record.owner!r}; it is shown this once, store it now:", err=True)
    click.echo(token)


@keys.command("list")
@config_option
@click.option("--owner", default=None, help="only this owner's keys")
def list_keys(config_path: Path, owner: str | None) -> None:
    """List keys: id, owner, created, revoked (never a secret)."""
    _, store = _open(config_path)
    try:
        records = store.list_keys(owner)
    finally:
        store.close()
    click.echo(f"{'key id':<18} {'owner':<20} {'created':<24} revoked")
    for r in records:
        click.echo(f"{r.key_id:<18} {r.owner:<20} {_when(r.created_at):<24} {_when(r.revoked_at)}")


@keys.command("revoke")
@config_option
@click.argument("key_id")
def revoke_key(config_path: Path, key_id: str) -> None:
    """Revoke KEY_ID: requests with it are refused from now on."""
    from contam.errors import InputError

    _, store = _open(config_path)
    try:
        revoked = store.revoke_key(key_id)
    finally:
        store.close()
    if not revoked:
        raise InputError(f"no active key {key_id!r} (see `contam keys list`)", field="KEY_ID")
    click.echo(f"revoked {key_id}", err=True)


@click.command()
@config_option
@click.option(
    "--workers", "n", type=click.IntRange(1, 64), default=None, help="worker threads (default: the config's)"
)
def worker(config_path: Path, n: int | None) -> None:
    """Run workers alone (no API) on the config's store until SIGTERM or Ctrl-C; a job running
    then is put back in the queue for another worker."""
    from servers.worker import WorkerPool

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings, store = _open(config_path)
    pool = WorkerPool(settings, store, n or max(1, settings.workers))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pool.start()
    click.echo(f"{len(pool.workers)} workers on {settings.store.split('://')[0]} store", err=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        pool.stop()
        store.close()


@click.command()
@config_option
@click.option("--host", default=None, help="address to bind (default: the config's, 127.0.0.1)")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="port (default: the config's)")
@click.option(
    "--workers", "n", type=click.IntRange(0, 64), default=None,
    help="in-process job workers (default: the config's; 0: the API only, with `contam worker` elsewhere)",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
def serve(config_path: Path, host: str | None, port: int | None, n: int | None, log_level: str) -> None:
    """Serve the REST API (uvicorn) with in-process workers, until SIGTERM or Ctrl-C."""
    from servers.serve import serve as run
    from servers.settings import load_settings

    settings = load_settings(config_path)
    run(
        settings,
        host=host or settings.host,
        port=settings.port if port is None else port,
        workers=settings.workers if n is None else n,
        log_level=log_level,
    )
