"""The REST service under load: 50 concurrent clients on loopback, for 60 s, each submitting a
small scan (the mock backend, an uploaded benchmark of 8 items, the loss probe) and polling it
until it is done, then submitting the next. Run once with the SQLite store and once with
PostgreSQL (a cluster of its own in a temporary folder, as the tests start it).

Prints per store: submits and status calls per second, jobs completed per second, p50/p99 of
submit and of status latency as the clients see it, the status p99 of the server's own time
(its Server-Timing header: the rest of a latency is spent outside the handler), the clients' own
event-loop lag and CPU share (a client that is late itself inflates every latency it measures),
the service process's CPU time per request (its own cost, which
other load on a shared machine does not inflate as it inflates latency; job execution by the
in-process workers included), the error count (any non-2xx, or a transport error; target 0) and
the fraction of submitted jobs completed by the end (jobs still running at the deadline are
given a short drain to finish, and counted as not completed if they do not).

    python bench/service.py [--seconds 60] [--clients 50] [--workers 2] [--stores sqlite,postgres]
                            [--topology in-process|separate] [--client aiohttp|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from servers.timing import app_ms  # noqa: E402
from tests.fixtures.service import ServiceProcess, write_config  # noqa: E402

POLL_S = 0.2  # a client's wait between status calls
DRAIN_S = 20.0


@dataclass
class Tally:
    submit_ms: list[float] = field(default_factory=list)
    status_ms: list[float] = field(default_factory=list)
    status_app_ms: list[float] = field(default_factory=list)  # the server's own share (Server-Timing)
    loop_lag_ms: list[float] = field(default_factory=list)
    client_cpu_s: float = 0.0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    submitted: int = 0
    completed: int = 0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(what[:300])


def scan_body(client: int, n: int) -> dict[str, Any]:
    # Distinct texts per job, so every job makes its own model calls (no cache hit across jobs).
    items = [
        {
            "id": f"i{k}",
            "partition": "test" if k < 4 else "unseen",
            "text": f"client {client} job {n} item {k} " * 4,
        }
        for k in range(8)
    ]
    return {"benchmark": {"name": "bench", "items": items}, "model": "mock", "reference": "unseen"}


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class AiohttpClient:
    """The default client: aiohttp costs the clients' process about a quarter of httpx's CPU per
    request, and httpx's connection pool under 50 concurrent requests adds its own queueing to
    every latency (a tail the server never sees: compare `--client httpx`)."""

    def __init__(self, clients: int) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=clients), timeout=aiohttp.ClientTimeout(total=30)
        )

    async def _answer(self, resp: Any) -> Answer:
        body = await resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)

    async def post(self, url: str, *, json: Any, headers: dict[str, str]) -> Answer:
        async with self._session.post(url, json=json, headers=headers) as resp:
            return await self._answer(resp)

    async def get(self, url: str, *, headers: dict[str, str]) -> Answer:
        async with self._session.get(url, headers=headers) as resp:
            return await self._answer(resp)

    async def close(self) -> None:
        await self._session.close()


class HttpxClient:
    def __init__(self, clients: int) -> None:
        import httpx

        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        self._client = httpx.AsyncClient(timeout=30.0, limits=limits)

    async def post(self, url: str, *, json: Any, headers: dict[str, str]) -> Answer:
        resp = await self._client.post(url, json=json, headers=headers)
        return Answer(resp.status_code, dict(resp.headers), resp.content)

    async def get(self, url: str, *, headers: dict[str, str]) -> Answer:
        resp = await self._client.get(url, headers=headers)
        return Answer(resp.status_code, dict(resp.headers), resp.content)

    async def close(self) -> None:
        await self._client.aclose()


CLIENTS: dict[str, type[AiohttpClient] | type[HttpxClient]] = {"aiohttp": AiohttpClient, "httpx": HttpxClient}


async def client_loop(http: Any, url: str, key: str, cid: int, stop_at: float, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    n = 0
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        try:
            resp = await http.post(f"{url}/v1/scans", json=scan_body(cid, n), headers=headers)
        except Exception as exc:  # a transport error counts as an error, and the client goes on
            tally.error(f"submit: {exc!r}")
            await asyncio.sleep(POLL_S)
            continue
        tally.submit_ms.append((time.perf_counter() - t0) * 1000)
        n += 1
        if resp.status_code != 202:
            tally.error(f"submit {resp.status_code}: {resp.text}")
            await asyncio.sleep(POLL_S)
            continue
        tally.submitted += 1
        job_url = url + resp.headers["location"]
        deadline = stop_at + DRAIN_S
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            t0 = time.perf_counter()
            try:
                status = await http.get(job_url, headers=headers)
            except Exception as exc:
                tally.error(f"status: {exc!r}")
                continue
            if time.monotonic() < stop_at:  # latencies of the measured window only
                tally.status_ms.append((time.perf_counter() - t0) * 1000)
                app = app_ms(status.headers.get("server-timing"))
                if app is not None:
                    tally.status_app_ms.append(app)
            if status.status_code != 200:
                tally.error(f"status {status.status_code}: {status.text}")
                continue
            state = status.json()["status"]
            if state == "done":
                tally.completed += 1
                break
            if state in ("failed", "cancelled"):
                tally.error(f"job {state}: {status.json().get('error')}")
                break


async def loop_lag(stop_at: float, lags: list[float]) -> None:
    """How late the clients' own event loop wakes a 10 ms sleeper: time a latency includes that
    the server never saw."""
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append((time.perf_counter() - t0 - 0.01) * 1000)


async def load(url: str, key: str, clients: int, seconds: float, client: str) -> tuple[Tally, float]:
    tally = Tally()
    http = CLIENTS[client](clients)
    try:
        started = time.monotonic()
        stop_at = started + seconds
        cpu0 = time.process_time()
        await asyncio.gather(
            loop_lag(stop_at, tally.loop_lag_ms),
            *(client_loop(http, url, key, c, stop_at, tally) for c in range(clients)),
        )
        tally.client_cpu_s = time.process_time() - cpu0
    finally:
        await http.close()
    return tally, seconds


def warm_up(url: str, key: str) -> None:
    """One job to completion before measuring: a worker's first job imports the statistics stack
    (seconds of CPU under the GIL), which is start-up cost, not steady state."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=60.0) as http:
        resp = http.post(f"{url}/v1/scans", json=scan_body(-1, 0), headers=headers)
        resp.raise_for_status()
        for _ in range(600):
            if http.get(url + resp.headers["location"], headers=headers).json()["status"] == "done":
                return
            time.sleep(0.1)
    raise RuntimeError("the warm-up job did not finish in 60 s")


def process_cpu_s(service: ServiceProcess) -> float:
    """CPU seconds (user + system) the service process has used: its own cost per request, which
    other load on the machine does not inflate the way it inflates latency."""
    import os

    assert service.proc is not None
    fields = Path(f"/proc/{service.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_store(name: str, store_url: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from servers.store import open_store

    config = write_config(
        root / f"server-{name}.yaml",
        store=store_url,
        cache_path=str(root / f"calls-{name}.sqlite"),
        models=[{"name": "mock", "spec": "mock"}],
        limits={"rate_per_s": 10_000.0, "burst": 10_000, "max_active_jobs": 10_000},
        worker={"lease_s": 30.0, "poll_s": 0.05},
    )
    store = open_store(store_url)
    _, key = store.create_key("bench")
    store.close()
    separate = args.topology == "separate"
    workers = None
    if separate:  # `contam serve --workers 0` for the API, and `contam worker` in a process of its own
        workers = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "contam.cli.main",
                "worker",
                "--config",
                str(config),
                "--workers",
                str(args.workers),
            ],
            stdout=(root / f"worker-{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        api_workers = 0 if separate else args.workers
        with ServiceProcess(config, workers=api_workers, log_path=root / f"service-{name}.log") as service:
            if args.workers:
                warm_up(service.url, key)
            cpu_before = process_cpu_s(service)
            tally, seconds = asyncio.run(load(service.url, key, args.clients, args.seconds, args.client))
            cpu = process_cpu_s(service) - cpu_before
    finally:
        if workers is not None:
            workers.send_signal(signal.SIGTERM)
            try:
                workers.wait(timeout=30)
            except subprocess.TimeoutExpired:
                workers.kill()
    log = service.read_log()
    if "Traceback" in log:  # the server's own account of a 5xx, for the reader of the table
        start = log.index("Traceback")
        tally.error_samples.append("server log: " + log[start : start + 3000])
    return {
        "store": f"{name} ({args.topology} workers)",
        "submit/s": tally.submitted / seconds,
        "status/s": len(tally.status_ms) / seconds,
        "done/s": tally.completed / seconds,
        "submit p50 ms": percentile(tally.submit_ms, 50),
        "submit p99 ms": percentile(tally.submit_ms, 99),
        "status p50 ms": percentile(tally.status_ms, 50),
        "status p99 ms": percentile(tally.status_ms, 99),
        "status app p99 ms": percentile(tally.status_app_ms, 99),
        "client loop lag p99 ms": percentile(tally.loop_lag_ms, 99),
        "client CPU %": 100 * tally.client_cpu_s / seconds,
        "server CPU ms/req": 1000 * cpu / max(1, len(tally.status_ms) + len(tally.submit_ms)),
        "errors": tally.errors,
        "completed": tally.completed / tally.submitted if tally.submitted else float("nan"),
        "samples": tally.error_samples,
    }


def table(rows: list[dict[str, Any]]) -> str:
    cols = [
        "store",
        "submit/s",
        "status/s",
        "done/s",
        "submit p50 ms",
        "submit p99 ms",
        "status p50 ms",
        "status p99 ms",
        "status app p99 ms",
        "client loop lag p99 ms",
        "client CPU %",
        "server CPU ms/req",
        "errors",
        "completed",
    ]

    def cell(row: dict[str, Any], c: str) -> str:
        v = row[c]
        if c == "completed":
            return f"{v:.1%}"
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="job workers")
    parser.add_argument(
        "--topology",
        choices=["in-process", "separate"],
        default="in-process",
        help="workers in the API's process (`contam serve --workers N`) or in a `contam worker` process",
    )
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument(
        "--client", choices=sorted(CLIENTS), default="aiohttp", help="the clients' HTTP library"
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="contam-bench-service-") as tmp:
        root = Path(tmp)
        for name in args.stores.split(","):
            if name == "sqlite":
                rows.append(run_store(name, f"sqlite:///{root / 'jobs.sqlite'}", root, args))
            elif name == "postgres":
                import os

                from tests.fixtures.postgres import PostgresCluster

                pg_root = root / "pg"
                pg_root.mkdir()
                if os.geteuid() == 0:
                    os.chmod(root, 0o755)
                cluster = PostgresCluster(pg_root / "cluster")
                cluster.start()
                try:
                    rows.append(run_store(name, cluster.new_database(), root, args))
                finally:
                    cluster.stop()
            else:
                raise SystemExit(f"unknown store {name!r}: sqlite or postgres")
    print(
        f"{args.clients} clients, {args.seconds:.0f} s, {args.workers} {args.topology} workers, mock model, "
        f"8-item uploaded scans, status polled every {POLL_S} s, {args.client} clients"
    )
    print(table(rows))
    for row in rows:
        for sample in row["samples"]:
            print(f"{row['store']} error: {sample}")
    print(json.dumps([{k: v for k, v in r.items() if k != "samples"} for r in rows]))


if __name__ == "__main__":
    main()
