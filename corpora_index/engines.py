"""Where a scan runs: in this process, in N local worker processes, or as a Ray Data map.

"What runs" is always `scan.scan_shard` on one shard of corpus files; engines only decide where,
broadcast the benchmark index (as bytes, no pickle of our own objects) and add the shard results.

Progress: `on_bytes` hears corpus bytes as shards read them (in process directly, from worker
processes through a queue, from Ray when each shard is done) and adds up to the tasks' sizes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import partial
from multiprocessing import get_context
from typing import Any, Literal

from contam.errors import BackendUnavailable
from corpora_index.benchmark_index import BenchmarkIndex
from corpora_index.readers import ReaderOptions, Source
from corpora_index.scan import ShardResult, scan_shard

Engine = Literal["local", "ray"]


@dataclass(frozen=True, slots=True)
class ShardTask:
    """One shard's work, as JSON-able data (what a process or a Ray row carries)."""

    sources: tuple[Source, ...]
    reader: ReaderOptions
    minhash: bool
    batch_bytes: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "sources": [asdict(s) for s in self.sources],
                "reader": asdict(self.reader),
                "minhash": self.minhash,
                "batch_bytes": self.batch_bytes,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> ShardTask:
        data = json.loads(raw)
        return cls(
            tuple(Source(**s) for s in data["sources"]),
            ReaderOptions(**data["reader"]),
            data["minhash"],
            data["batch_bytes"],
        )

    @property
    def size(self) -> int:
        return sum(s.size for s in self.sources)


def run_task(
    index: BenchmarkIndex, task: ShardTask, on_bytes: Callable[[int], None] | None = None
) -> ShardResult:
    return scan_shard(
        index,
        task.sources,
        task.reader,
        minhash=task.minhash,
        batch_bytes=task.batch_bytes,
        on_bytes=on_bytes,
    )


class _Ledger:
    """Bytes heard per task, so late or missing progress never miscounts: a finished task is
    topped up to its size and what arrives for it afterwards is dropped."""

    def __init__(self, tasks: Sequence[ShardTask], on_bytes: Callable[[int], None] | None) -> None:
        self.sizes = [t.size for t in tasks]
        self.heard = [0] * len(tasks)
        self.finished: set[int] = set()
        self.on_bytes = on_bytes
        self.lock = threading.Lock()

    # the callback runs under the lock: callers (progress bars) need not be thread-safe
    def credit(self, i: int, n: int) -> None:
        with self.lock:
            if i in self.finished:
                return
            n = min(n, self.sizes[i] - self.heard[i])
            self.heard[i] += n
            if n > 0 and self.on_bytes is not None:
                self.on_bytes(n)

    def finish(self, i: int) -> None:
        with self.lock:
            rest = self.sizes[i] - self.heard[i]
            self.heard[i] = self.sizes[i]
            self.finished.add(i)
            if rest > 0 and self.on_bytes is not None:
                self.on_bytes(rest)


# -- local processes -------------------------------------------------------------------------------

_WORKER_INDEX: BenchmarkIndex | None = None
_WORKER_PROGRESS: Any = None  # a multiprocessing queue of (task, bytes), or None
_WORKER_STEP = 4 << 20


def _init_worker(index_bytes: bytes, progress: Any, step: int) -> None:
    global _WORKER_INDEX, _WORKER_PROGRESS, _WORKER_STEP
    _WORKER_INDEX = BenchmarkIndex.from_bytes(index_bytes)
    _WORKER_PROGRESS = progress
    _WORKER_STEP = step


def _worker_scan(i: int, task_json: str) -> bytes:
    assert _WORKER_INDEX is not None, "worker not initialised"
    queue = _WORKER_PROGRESS
    pending = 0

    def on_bytes(n: int) -> None:
        nonlocal pending
        pending += n
        if pending >= _WORKER_STEP:
            queue.put((i, pending))
            pending = 0

    return run_task(_WORKER_INDEX, ShardTask.from_json(task_json), on_bytes if queue else None).to_bytes()


def run_local(
    index: BenchmarkIndex,
    tasks: Sequence[ShardTask],
    *,
    workers: int = 1,
    on_done: Callable[[ShardTask], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    progress_step: int = 4 << 20,
) -> ShardResult:
    """Scan shards in this process (workers=1) or in `workers` spawned processes.

    Worker processes send progress every `progress_step` bytes read.
    """
    ledger = _Ledger(tasks, on_bytes)
    if workers <= 1 or len(tasks) <= 1:
        parts = []
        for i, task in enumerate(tasks):
            parts.append(run_task(index, task, partial(ledger.credit, i)))
            ledger.finish(i)
            if on_done is not None:
                on_done(task)
        return ShardResult.concat(parts)
    # spawn, not fork: the parent may hold threads (progress bars, Ray, Redis clients)
    ctx = get_context("spawn")
    progress = ctx.Queue() if on_bytes is not None else None

    def drain() -> None:
        assert progress is not None
        while (message := progress.get()) is not None:
            ledger.credit(*message)

    drainer = threading.Thread(target=drain, daemon=True) if progress is not None else None
    if drainer is not None:
        drainer.start()
    results: dict[int, ShardResult] = {}
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(index.to_bytes(), progress, progress_step),
        ) as pool:
            futures = {pool.submit(_worker_scan, i, task.to_json()): i for i, task in enumerate(tasks)}
            for future in as_completed(futures):
                i = futures[future]
                results[i] = ShardResult.from_bytes(future.result())
                ledger.finish(i)
                if on_done is not None:
                    on_done(tasks[i])
    finally:
        if progress is not None and drainer is not None:
            progress.put(None)  # after the pool has shut down: every worker message came before it
            drainer.join()
            progress.close()
    return ShardResult.concat([results[i] for i in range(len(tasks))])


# -- Ray Data ----------------------------------------------------------------------------------------

_RAY_CACHE: dict[str, BenchmarkIndex] = {}


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailable("--engine ray needs Ray: pip install 'contam[ray]'") from exc
    return ray


def run_ray(
    index: BenchmarkIndex,
    tasks: Sequence[ShardTask],
    *,
    on_done: Callable[[ShardTask], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    init_kwargs: dict[str, Any] | None = None,
) -> ShardResult:
    """The same per-shard function as a Ray Data `map_batches` over shards of corpus files.

    The benchmark index goes into the object store once (`ray.put`) and every task reads it from
    there: a broadcast, not a copy per task. Uses the running Ray instance, or starts a local one.
    Progress comes per finished shard (`split_sources` keeps shards small).
    """
    ledger = _Ledger(tasks, on_bytes)
    ray = _ray()
    import hashlib

    import numpy as np

    if not ray.is_initialized():
        ray.init(**(init_kwargs or {"include_dashboard": False}))
    index_bytes = index.to_bytes()
    digest = hashlib.sha256(index_bytes).hexdigest()
    index_ref = ray.put(index_bytes)
    holder = [index_ref]  # in a list so Ray passes the reference, not the resolved bytes

    def scan_batch(batch: dict[str, Any]) -> dict[str, Any]:
        index_here = _RAY_CACHE.get(digest)
        if index_here is None:
            index_here = BenchmarkIndex.from_bytes(ray.get(holder[0]))
            _RAY_CACHE.clear()
            _RAY_CACHE[digest] = index_here
        out = [run_task(index_here, ShardTask.from_json(str(raw))).to_bytes() for raw in batch["task"]]
        return {"order": batch["order"], "result": np.array(out, dtype=object)}

    rows = [{"order": i, "task": task.to_json()} for i, task in enumerate(tasks)]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows))).map_batches(
        scan_batch, batch_size=1
    )
    results: dict[int, ShardResult] = {}
    for row in ds.iter_rows():
        i = int(row["order"])
        results[i] = ShardResult.from_bytes(bytes(row["result"]))
        ledger.finish(i)
        if on_done is not None:
            on_done(tasks[i])
    return ShardResult.concat([results[i] for i in range(len(tasks))])
