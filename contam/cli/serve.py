"""`contam serve-model PATH`: a vLLM OpenAI-compatible server for a local model, until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click


@click.command("serve-model")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", type=int, default=None, help="port to listen on (default: a free one)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--name", default=None, help="served model name (default: the folder's name)")
@click.option("--max-model-len", type=int, default=1024, show_default=True)
@click.option("--dtype", default="float32", show_default=True)
@click.option("--log", "log_path", type=click.Path(path_type=Path), default=None, help="server log file")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="seconds to wait for health")
def serve_model(
    path: Path,
    port: int | None,
    host: str,
    name: str | None,
    max_model_len: int,
    dtype: str,
    log_path: Path | None,
    timeout: float,
) -> None:
    """Start a vLLM server for the model folder PATH, wait until it is healthy and has answered one
    1-token completion, print the model spec that reaches it, and stop it cleanly on Ctrl-C or
    SIGTERM. If the server dies, say which exception killed it and where its log is."""
    from servers.vllm_server import VLLMServer

    server = VLLMServer(
        path,
        name=name,
        host=host,
        port=port,
        dtype=dtype,
        max_model_len=max_model_len,
        log_path=log_path,
        start_timeout=timeout,
    )
    click.echo(
        f"starting vLLM for {server.model_dir} on {server.base_url} (log: {server.log_path})", err=True
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with server:
            click.echo(server.spec)
            click.echo("ready; Ctrl-C stops it", err=True)
            while not stop.wait(1.0):
                code = server.process.poll() if server.process is not None else None
                if server.process is None or code is not None:
                    click.echo(server.failure_report(f"vLLM server exited with code {code}"), err=True)
                    raise SystemExit(1)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo("stopped", err=True)
