"""The REST service under load, and under the job mix and the upload that starved it (issue 20).

`--mix load` (the default): 50 concurrent clients on loopback, for 60 s, each submitting a
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

`--mix starving`: the job that starved heartbeats, a 5,000-item mock scan with 5 likelihood
probes, on `--workers` workers and the shipped lease (30 s) and cancel check (2 s). Items of 100
words: on 2 shared cores 40 words gave 15-19 s gaps, and 100 words a lapsed lease. Three jobs,
one after another, each with different texts (no call-cache hit between them): A runs to the
end while another worker idles (so a lapsed lease is taken over, as in the issue); B is cancelled
(DELETE) `--act-after` seconds into its run; C gets SIGTERM (the `contam worker` process, or the
`contam serve` process with in-process workers) as far into its run. The bench reads the job's row
from the store every 0.1 s: each heartbeat renews `lease_expires` to its own time plus the lease,
so consecutive values give the gaps between renewals exactly (claim to first renewal, and last
renewal to the job's end, included; another worker's claim of a lapsed lease counts as one, so
read a gap with the takeover column). Prints per job: the largest gap and how many exceed 3x the
interval (the target: none), whether another worker took the job over, DELETE to `cancelled`,
SIGTERM to `queued` again, when `items_total` first read nonzero (target: within 1 s of the
claim), the job's wall time, and the bench's own largest gap between reads (a gap above is
exact only to that).

`--mix upload`: while one client posts a maximal upload (`--upload-items` items, padded to just
under `--upload-bytes`; the server's limits set to exactly these), `--health-clients` other
clients call `/healthz` every 20 ms. Per upload form (JSONL body, multipart file, JSON items):
`--uploads` rounds of a quiet window, then an upload; `/healthz` p50/p99/max of requests that
overlapped an upload against those within a quiet window, their p99 ratio, and the upload's
own latency and status code. The API runs with no workers (an accepted upload is cancelled
while still queued), so the parse is all it does.

    python bench/service.py [--mix load|starving|upload] [--stores sqlite,postgres] [--workers 2]
                            [--topology in-process|separate]
                            load:     [--seconds 60] [--clients 50] [--client aiohttp|httpx]
                            starving: [--items 5000] [--probes loss,zlib,min_k,min_k_pp,lowercase]
                                      [--words 100] [--act-after 5] [--lease-s 30] [--cancel-check-s 2]
                            upload:   [--upload-items 100000] [--upload-bytes 8388608]
                                      [--upload-forms jsonl,multipart,json] [--uploads 3]
                                      [--health-clients 8] [--quiet-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from servers.timing import app_ms  # noqa: E402
from tests.fixtures.service import ServiceProcess, request, write_config  # noqa: E402

POLL_S = 0.2  # a client's wait between status calls
DRAIN_S = 20.0
WATCH_S = 0.1  # the starving mix: the bench's wait between reads of the job's row
HEALTH_PACE_S = 0.02  # the upload mix: a /healthz client's wait between calls


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
    assert service.proc is not None
    fields = Path(f"/proc/{service.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@dataclass
class Served:
    """A running service (and its `contam worker` process, with `--topology separate`)."""

    url: str
    key: str
    service: ServiceProcess
    workers: subprocess.Popen[bytes] | None

    def sigterm_workers(self) -> subprocess.Popen[bytes]:
        """SIGTERM to the process that runs the jobs: `contam worker`, or `contam serve` itself."""
        proc = self.workers if self.workers is not None else self.service.proc
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        return proc


@contextlib.contextmanager
def serving(
    name: str,
    store_url: str,
    root: Path,
    args: argparse.Namespace,
    *,
    workers: int,
    limits: dict[str, Any],
    worker: dict[str, Any],
) -> Iterator[Served]:
    """`contam serve` on `store_url` with the mock model registered, and a key for it."""
    from servers.store import open_store

    config = write_config(
        root / f"server-{name}.yaml",
        store=store_url,
        cache_path=str(root / f"calls-{name}.sqlite"),
        models=[{"name": "mock", "spec": "mock"}],
        limits=limits,
        worker=worker,
    )
    store = open_store(store_url)
    _, key = store.create_key("bench")
    store.close()
    separate = args.topology == "separate" and workers > 0
    proc = None
    if separate:  # `contam serve --workers 0` for the API, and `contam worker` in a process of its own
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "contam.cli.main",
                "worker",
                "--config",
                str(config),
                "--workers",
                str(workers),
            ],
            stdout=(root / f"worker-{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        api_workers = 0 if separate else workers
        with ServiceProcess(config, workers=api_workers, log_path=root / f"service-{name}.log") as service:
            yield Served(service.url, key, service, proc)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def log_tracebacks(service: ServiceProcess, samples: list[str]) -> None:
    """The server's own account of a 5xx, for the reader of the table."""
    log = service.read_log()
    if "Traceback" in log:
        start = log.index("Traceback")
        samples.append("server log: " + log[start : start + 3000])


def run_store(name: str, store_url: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    limits = {"rate_per_s": 10_000.0, "burst": 10_000, "max_active_jobs": 10_000}
    worker = {"lease_s": 30.0, "poll_s": 0.05}
    with serving(name, store_url, root, args, workers=args.workers, limits=limits, worker=worker) as served:
        if args.workers:
            warm_up(served.url, served.key)
        cpu_before = process_cpu_s(served.service)
        tally, seconds = asyncio.run(load(served.url, served.key, args.clients, args.seconds, args.client))
        cpu = process_cpu_s(served.service) - cpu_before
    log_tracebacks(served.service, tally.error_samples)
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


LOAD_COLUMNS = [
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


# --- the starving mix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One read of the job's row. Times are the wall clock: the store's clock on this machine."""

    t: float
    status: str
    worker: str | None
    attempts: int
    lease_expires: float | None
    items_total: int
    started_at: float | None
    finished_at: float | None
    updated_at: float


class Watch:
    """Reads one job's row from the store every `WATCH_S` in a thread of its own, until `stop()`:
    the bench's other waits (a DELETE the API is slow to answer) never delay a read."""

    def __init__(self, store_url: str, job_id: str) -> None:
        from servers.store import open_store

        self.store = open_store(store_url)
        self.job_id = job_id
        self.seen: list[Seen] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.get_any_job(self.job_id)
            except Exception as exc:  # a busy store: note it, read again
                self.errors.append(repr(exc)[:300])
                job = None
            if job is not None:
                self.seen.append(
                    Seen(
                        t=time.time(),
                        status=str(job.status),
                        worker=job.worker,
                        attempts=job.attempts,
                        lease_expires=job.lease_expires.timestamp() if job.lease_expires else None,
                        items_total=job.items_total,
                        started_at=job.started_at.timestamp() if job.started_at else None,
                        finished_at=job.finished_at.timestamp() if job.finished_at else None,
                        updated_at=job.updated_at.timestamp(),
                    )
                )
            self._stop.wait(WATCH_S)

    def until(self, done: Callable[[Seen], bool], timeout: float, *, since: float = 0.0) -> Seen | None:
        """The first read made after `since` (wall clock) for which `done` holds; None after
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        checked = 0
        while time.monotonic() < deadline:
            for seen in self.seen[checked:]:
                if seen.t >= since and done(seen):
                    return seen
            checked = len(self.seen)
            time.sleep(0.02)
        return None

    def stop(self) -> list[Seen]:
        self._stop.set()
        self._thread.join(10)
        self.store.close()
        return self.seen


FINAL_STATES = ("done", "failed", "cancelled")


def starving_body(job: str, items: int, words: int, probes: list[str]) -> dict[str, Any]:
    """`items` uploaded items, half tested and half the reference, each `words` words that no
    other job shares (so each job makes all its own model calls)."""
    rows = [
        {
            "id": f"{job}-{k}",
            "partition": "test" if k % 2 == 0 else "unseen",
            "text": " ".join(f"{job}{k}w{w}" for w in range(words)),
        }
        for k in range(items)
    ]
    return {
        "benchmark": {"name": "starving", "items": rows},
        "model": "mock",
        "probes": [{"name": p} for p in probes],
        "reference": "unseen",
    }


def heartbeat_gaps(seen: list[Seen], lease_s: float, alive_until: float | None = None) -> list[float]:
    """Seconds between consecutive lease renewals while the job ran: from the claim (started_at)
    through every renewal (`lease_expires - lease_s`) to the moment it stopped running, or, for a
    job its worker left running, to `alive_until` (when that worker's process exited)."""
    running = [s for s in seen if s.status == "running"]
    if not running:
        return []
    marks = {s.lease_expires - lease_s for s in running if s.lease_expires is not None}
    if running[0].started_at is not None:
        marks.add(running[0].started_at)
    after = [s for s in seen if s.t > running[-1].t and s.status != "running"]
    if after:  # settled (finished_at) or released to the queue (updated_at)
        marks.add(after[0].finished_at if after[0].finished_at is not None else after[0].updated_at)
    elif alive_until is not None:
        marks.add(alive_until)
    points: list[float] = []
    for mark in sorted(marks):  # a claim's started_at and lease_expires can differ by microseconds
        if not points or mark - points[-1] > 0.01:
            points.append(mark)
    return [b - a for a, b in itertools.pairwise(points)]


def job_row(
    label: str,
    seen: list[Seen],
    args: argparse.Namespace,
    interval: float,
    *,
    cancel_s: float | None = None,
    requeue_s: float | None = None,
    alive_until: float | None = None,
    note: str = "",
) -> dict[str, Any]:
    gaps = heartbeat_gaps(seen, args.lease_s, alive_until)
    workers = {s.worker for s in seen if s.worker}
    started = next((s.started_at for s in seen if s.started_at is not None), None)
    progress = next((s.t for s in seen if s.items_total > 0), None)
    last = seen[-1] if seen else None
    wall = None
    if last is not None and last.status == "done" and last.finished_at and started:
        wall = last.finished_at - started
    reads = [b.t - a.t for a, b in itertools.pairwise(seen)]
    claims = max((s.attempts for s in seen), default=0)
    return {
        "job": label,
        "items x probes": f"{args.items} x {len(args.probe_list)}",
        "interval s": interval,
        "max gap s": max(gaps) if gaps else None,
        "gaps > 3x": sum(g > 3 * interval for g in gaps) if gaps else None,
        "gaps": len(gaps),
        "taken over": f"yes ({claims} claims)" if len(workers) > 1 or claims > 1 else "no",
        "cancel s": cancel_s,
        "SIGTERM to queued s": requeue_s,
        "first progress s": progress - started if progress is not None and started is not None else "never",
        "job wall s": wall,
        "final": last.status if last else "?",
        "max read gap s": max(reads) if reads else None,
        "note": note,
    }


def submit_job(served: Served, body: dict[str, Any]) -> str:
    code, _, raw = request("POST", served.url + "/v1/scans", key=served.key, body=body, timeout=300)
    if code != 202:
        raise RuntimeError(f"submit answered {code}: {raw[:500]!r}")
    return str(json.loads(raw)["id"])


def run_starving(name: str, store_url: str, root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from servers.settings import WorkerSettings

    worker = {"lease_s": args.lease_s, "cancel_check_s": args.cancel_check_s}
    interval = WorkerSettings(**worker).heartbeat_interval
    limits = {
        "rate_per_s": 10_000.0,
        "burst": 10_000,
        "max_active_jobs": 100,
        "max_items": max(args.items, 5000),
    }
    label = f"{name} ({args.topology})"
    rows = []
    run_s = 300.0 + args.items * 0.1  # a generous bound on one job's wall time
    with serving(name, store_url, root, args, workers=args.workers, limits=limits, worker=worker) as served:
        warm_up(served.url, served.key)

        # A: to the end, with another worker idle (a lapsed lease is taken over).
        job = submit_job(served, starving_body("a", args.items, args.words, args.probe_list))
        watch = Watch(store_url, job)
        watch.until(lambda s: s.status in FINAL_STATES, run_s)
        rows.append(job_row(f"{label} A: to the end", watch.stop(), args, interval))

        # B: cancelled `act_after` s into its run.
        job = submit_job(served, starving_body("b", args.items, args.words, args.probe_list))
        watch = Watch(store_url, job)
        first = watch.until(lambda s: s.started_at is not None, run_s)
        cancel_s = None
        note = ""
        if first is not None and first.started_at is not None:
            time.sleep(max(0.0, first.started_at + args.act_after - time.time()))
            was = watch.seen[-1].status
            sent = time.time()
            code, _, _ = request("DELETE", f"{served.url}/v1/scans/{job}", key=served.key, timeout=300)
            answered = time.time() - sent
            end = watch.until(lambda s: s.status in FINAL_STATES, run_s, since=sent)
            if end is not None and end.status == "cancelled" and end.finished_at is not None:
                cancel_s = end.finished_at - sent
            note = f"{was} when DELETE was sent; it answered {code} in {answered:.1f} s"
        rows.append(
            job_row(
                f"{label} B: DELETE at {args.act_after:g} s",
                watch.stop(),
                args,
                interval,
                cancel_s=cancel_s,
                note=note,
            )
        )

        # C: SIGTERM to the workers' process `act_after` s into its run (last: in-process, the API goes too).
        job = submit_job(served, starving_body("c", args.items, args.words, args.probe_list))
        watch = Watch(store_url, job)
        first = watch.until(lambda s: s.started_at is not None, run_s)
        requeue_s = None
        alive_until = None
        note = ""
        if first is not None and first.started_at is not None:
            time.sleep(max(0.0, first.started_at + args.act_after - time.time()))
            was = watch.seen[-1].status
            sent = time.time()
            proc = served.sigterm_workers()
            # Until the job leaves `running`, or its process has exited and left it there.
            end = None
            exited = None
            while end is None and time.time() - sent < run_s:
                end = watch.until(lambda s: s.status != "running", 0.5, since=sent)
                if exited is None and proc.poll() is not None:
                    exited = time.time() - sent
                elif exited is not None and time.time() - sent > exited + 2.0:
                    break
            if end is not None and end.status == "queued":
                requeue_s = end.updated_at - sent
            then = end.status if end is not None else "still running, its lease left to lapse"
            gone = ""
            if exited is not None:
                alive_until = sent + exited
                gone = f", the process exited {exited:.1f} s after SIGTERM"
            note = f"{was} when SIGTERM was sent; then {then}{gone}"
        rows.append(
            job_row(
                f"{label} C: SIGTERM at {args.act_after:g} s",
                watch.stop(),
                args,
                interval,
                requeue_s=requeue_s,
                alive_until=alive_until,
                note=note,
            )
        )
    return rows


STARVING_COLUMNS = [
    "job",
    "items x probes",
    "interval s",
    "max gap s",
    "gaps > 3x",
    "gaps",
    "taken over",
    "cancel s",
    "SIGTERM to queued s",
    "first progress s",
    "job wall s",
    "final",
    "max read gap s",
    "note",
]


# --- the upload mix -----------------------------------------------------------------------------


def upload_bodies(items: int, max_bytes: int) -> dict[str, tuple[bytes, str, str]]:
    """Per form: (body, content type, query string), each at `items` items and just under
    `max_bytes` (the texts padded to fill it)."""
    options = {"model": "mock", "probes": [{"name": "loss"}], "reference": "unseen"}
    # The JSON form wraps the same rows (a comma for a newline) plus the options: size the rows
    # so the largest form fits with 1% to spare.
    slack = 1024 + int(max_bytes * 0.01)

    def row(k: int, pad: int) -> str:
        return json.dumps(
            {"id": f"u{k}", "partition": "test" if k % 2 == 0 else "unseen", "text": f"item {k} " + "x" * pad}
        )

    bare = sum(len(row(k, 0)) + 1 for k in range(items))
    pad = max(0, (max_bytes - slack - bare) // items)
    lines = "\n".join(row(k, pad) for k in range(items)) + "\n"
    jsonl = lines.encode()
    boundary = "contambenchboundary"
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(options)}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload.jsonl"\r\n'
            f"Content-Type: application/x-ndjson\r\n\r\n"
        ).encode()
        + jsonl
        + f"\r\n--{boundary}--\r\n".encode()
    )
    as_json = json.dumps(
        {"benchmark": {"name": "upload", "items": [json.loads(x) for x in lines.splitlines()]}, **options},
        separators=(",", ":"),
    ).encode()
    bodies = {
        "jsonl": (jsonl, "application/x-ndjson", "?model=mock&probe=loss&reference=unseen&name=upload"),
        "multipart": (multipart, f"multipart/form-data; boundary={boundary}", ""),
        "json": (as_json, "application/json", ""),
    }
    for form, (body, _, _) in bodies.items():
        if len(body) > max_bytes:
            raise RuntimeError(f"the {form} body is {len(body)} bytes, over {max_bytes}")
    return bodies


@dataclass
class UploadTally:
    health: list[tuple[float, float]] = field(default_factory=list)  # (start, end), perf_counter
    health_errors: int = 0
    quiet: list[tuple[float, float]] = field(default_factory=list)
    uploads: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, status)
    upload_errors: list[str] = field(default_factory=list)
    loop_lag_ms: list[float] = field(default_factory=list)


async def health_client(session: Any, url: str, stop: asyncio.Event, tally: UploadTally) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            async with session.get(url + "/healthz") as resp:
                await resp.read()
                ok = resp.status == 200
        except Exception:
            ok = False
        if ok:
            tally.health.append((t0, time.perf_counter()))
        else:
            tally.health_errors += 1
        await asyncio.sleep(HEALTH_PACE_S)


async def upload_rounds(
    served: Served, body: tuple[bytes, str, str], args: argparse.Namespace
) -> UploadTally:
    import aiohttp

    tally = UploadTally()
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=300)
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=args.health_clients), timeout=timeout
        ) as health,
        aiohttp.ClientSession(timeout=timeout) as uploader,
    ):
        lag = asyncio.create_task(loop_lag(float("inf"), tally.loop_lag_ms))
        clients = [
            asyncio.create_task(health_client(health, served.url, stop, tally))
            for _ in range(args.health_clients)
        ]
        data, content_type, query = body
        headers = {"Authorization": f"Bearer {served.key}", "Content-Type": content_type}
        for _ in range(args.uploads):
            q0 = time.perf_counter()
            await asyncio.sleep(args.quiet_s)
            tally.quiet.append((q0, time.perf_counter()))
            t0 = time.perf_counter()
            try:
                async with uploader.post(
                    served.url + "/v1/scans" + query, data=data, headers=headers
                ) as resp:
                    answer = await resp.read()
                    status = resp.status
            except Exception as exc:
                tally.upload_errors.append(repr(exc)[:300])
                continue
            tally.uploads.append((t0, time.perf_counter(), status))
            if status == 202:  # still queued (no workers): cancelled at once
                async with uploader.delete(
                    served.url + resp.headers["location"], headers={"Authorization": f"Bearer {served.key}"}
                ) as gone:
                    await gone.read()
            else:
                tally.upload_errors.append(f"{status}: {answer[:300]!r}")
        stop.set()
        await asyncio.gather(*clients)
        lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag
    return tally


def run_upload(name: str, store_url: str, root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    limits = {
        "rate_per_s": 10_000.0,
        "burst": 10_000,
        "max_active_jobs": 100,
        "max_items": args.upload_items,
        "max_body_bytes": args.upload_bytes,
    }
    bodies = upload_bodies(args.upload_items, args.upload_bytes)
    rows = []
    with serving(name, store_url, root, args, workers=0, limits=limits, worker={}) as served:
        for form in args.upload_forms.split(","):
            if form not in bodies:
                raise SystemExit(f"unknown upload form {form!r}: {', '.join(bodies)}")
            tally = asyncio.run(upload_rounds(served, bodies[form], args))
            during = [
                (b - a) * 1000
                for a, b in tally.health
                if any(a < u1 and b > u0 for u0, u1, _ in tally.uploads)
            ]
            quiet = [
                (b - a) * 1000 for a, b in tally.health if any(q0 <= a and b <= q1 for q0, q1 in tally.quiet)
            ]
            p99_quiet = percentile(quiet, 99)
            p99_during = percentile(during, 99)
            statuses = sorted({str(s) for _, _, s in tally.uploads}) or ["none"]
            rows.append(
                {
                    "store, form": f"{name}, {form}",
                    "items": args.upload_items,
                    "body MB": len(bodies[form][0]) / 1e6,
                    "upload status": "/".join(statuses),
                    "upload s (max)": max((u1 - u0 for u0, u1, _ in tally.uploads), default=float("nan")),
                    "healthz quiet p50/p99/max ms": triple(quiet),
                    "healthz during p50/p99/max ms": triple(during),
                    "p99 during/quiet": p99_during / p99_quiet if p99_quiet > 0 else float("nan"),
                    "n quiet/during": f"{len(quiet)}/{len(during)}",
                    "healthz errors": tally.health_errors,
                    "client loop lag p99 ms": percentile(tally.loop_lag_ms, 99),
                    "samples": tally.upload_errors,
                }
            )
        log_tracebacks(served.service, rows[-1]["samples"] if rows else [])
    return rows


def triple(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f} / {max(values):.1f}"


UPLOAD_COLUMNS = [
    "store, form",
    "items",
    "body MB",
    "upload status",
    "upload s (max)",
    "healthz quiet p50/p99/max ms",
    "healthz during p50/p99/max ms",
    "p99 during/quiet",
    "n quiet/during",
    "healthz errors",
    "client loop lag p99 ms",
]


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def cell(row: dict[str, Any], c: str) -> str:
        v = row[c]
        if v is None:
            return "-"
        if c == "completed":
            return f"{v:.1%}"
        if c == "p99 during/quiet":
            return f"{v:.1f}x"
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def header(args: argparse.Namespace) -> str:
    if args.mix == "starving":
        return (
            f"starving mix: {args.items}-item mock scans (half of them the 'unseen' reference), "
            f"{args.words} words an item, probes {','.join(args.probe_list)}; {args.workers} "
            f"{args.topology} workers, lease {args.lease_s:g} s, cancel_check {args.cancel_check_s:g} s; "
            f"the job's row read every {WATCH_S} s; B and C acted on {args.act_after:g} s after the "
            f"claim; {os.cpu_count()} CPUs"
        )
    if args.mix == "upload":
        return (
            f"upload mix: {args.upload_items}-item uploads just under {args.upload_bytes} bytes "
            f"(the server's max_items and max_body_bytes), {args.uploads} per form, each after a "
            f"{args.quiet_s:g} s quiet window; {args.health_clients} clients calling /healthz every "
            f"{HEALTH_PACE_S * 1000:.0f} ms; the API with no workers; {os.cpu_count()} CPUs"
        )
    return (
        f"{args.clients} clients, {args.seconds:.0f} s, {args.workers} {args.topology} workers, mock model, "
        f"8-item uploaded scans, status polled every {POLL_S} s, {args.client} clients"
    )


MIXES: dict[str, tuple[Callable[[str, str, Path, argparse.Namespace], list[dict[str, Any]]], list[str]]] = {
    "load": (lambda *a: [run_store(*a)], LOAD_COLUMNS),
    "starving": (run_starving, STARVING_COLUMNS),
    "upload": (run_upload, UPLOAD_COLUMNS),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mix", choices=sorted(MIXES), default="load", help="what to run (see above)")
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
    starving = parser.add_argument_group("--mix starving")
    starving.add_argument("--items", type=int, default=5000, help="items per job")
    starving.add_argument("--probes", default="loss,zlib,min_k,min_k_pp,lowercase")
    starving.add_argument("--words", type=int, default=100, help="words per item text")
    starving.add_argument(
        "--act-after", type=float, default=5.0, help="seconds after the claim to cancel or SIGTERM"
    )
    starving.add_argument("--lease-s", type=float, default=30.0, help="worker.lease_s")
    starving.add_argument("--cancel-check-s", type=float, default=2.0, help="worker.cancel_check_s")
    upload = parser.add_argument_group("--mix upload")
    upload.add_argument("--upload-items", type=int, default=100_000, help="items in an upload (max_items)")
    upload.add_argument("--upload-bytes", type=int, default=8 * 1024 * 1024, help="max_body_bytes")
    upload.add_argument("--upload-forms", default="jsonl,multipart,json")
    upload.add_argument("--uploads", type=int, default=3, help="uploads per form")
    upload.add_argument("--health-clients", type=int, default=8)
    upload.add_argument("--quiet-s", type=float, default=3.0, help="quiet window before each upload")
    args = parser.parse_args()
    args.probe_list = args.probes.split(",")
    run, cols = MIXES[args.mix]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="contam-bench-service-") as tmp:
        root = Path(tmp)
        for name in args.stores.split(","):
            if name == "sqlite":
                rows += run(name, f"sqlite:///{root / 'jobs.sqlite'}", root, args)
            elif name == "postgres":
                from tests.fixtures.postgres import PostgresCluster

                pg_root = root / "pg"
                pg_root.mkdir()
                if os.geteuid() == 0:
                    os.chmod(root, 0o755)
                cluster = PostgresCluster(pg_root / "cluster")
                cluster.start()
                try:
                    rows += run(name, cluster.new_database(), root, args)
                finally:
                    cluster.stop()
            else:
                raise SystemExit(f"unknown store {name!r}: sqlite or postgres")
    print(header(args))
    print(table(rows, cols))
    for row in rows:
        for sample in row.get("samples", []):
            print(f"{row[cols[0]]} error: {sample}")
    print(json.dumps([{k: v for k, v in r.items() if k != "samples"} for r in rows]))


if __name__ == "__main__":
    main()
