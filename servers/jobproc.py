"""A job's own process: the worker thread starts one per claimed job and watches it.

Why a process: a job is CPU-bound for long stretches (scoring, statistics, permutation tests,
loading a benchmark) and synchronous code inside its event loop holds the interpreter, so any
heartbeat or cancel check sharing that interpreter waits for it (gaps of 20-30 s were measured
against a 2 s interval, long enough for the lease to lapse while the job still ran). In a process
of its own the job shares nothing with the worker's heartbeat, and it can be stopped at once at
any point: a signal ends CPU-bound code that no `Task.cancel()` reaches.

Processes come from a fork server ("forkserver" start method) that has already imported the
modules every job needs, so a job starts in tens of milliseconds; plain `fork` is not used, since
the worker's process is multi-threaded (the API, other workers) and a fork copies their locks.

The child talks to the worker through a one-way pipe, as `Message`s: progress snapshots, sent by
a small thread of the child every `interval` seconds (so a CPU-bound phase still reports, as the
interpreter switches threads every few milliseconds), the child's log records, and finally the
result or the error. The child leads its own process group, so stopping it also stops whatever
it started (an inference server's engine, say), and a Ctrl-C at the worker's terminal reaches the
worker alone, which decides what becomes of the job. A child whose worker died sees the pipe
close (a thread of the child waits on it) and exits at once, so no orphan goes on running a job
that another worker will take over.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from typing import TYPE_CHECKING

from contam.errors import ContamError
from servers.store.base import Progress

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from servers.jobs import JobProgress
    from servers.settings import ServerSettings
    from servers.store.base import JobRecord

log = logging.getLogger("contam.service.jobproc")

#: What the fork server imports once, so that each job process starts with them loaded (a name
#: that fails to import is skipped by the fork server; the job then imports it itself).
PRELOAD = (
    "servers.jobs",
    "servers.benchmarks",
    "servers.scans.schemas",
    "servers.checklists.schemas",
    "servers.store",
    "contam.scan",
    "contam.runner",
    "contam.registry",
    "contam.benchmarks",
    "contam.verdicts",
    "contam.checklist.run",
    "probes",
)

#: Preloaded as well when a registered model uses the backend: an `hf` job would otherwise import
#: torch and transformers anew in each job's process (seconds). Not vLLM: its import starts more.
BACKEND_PRELOAD: dict[str, tuple[str, ...]] = {"hf": ("torch", "transformers", "contam.models.hf")}

#: A stopped child gets SIGTERM, then SIGKILL if it is still there after this long.
STOP_GRACE_S = 1.0

#: The child's entry: runs the job to its result JSON, counting into the progress it is given.
Target = Callable[["JobRecord", "ServerSettings", "JobProgress"], str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    progress: Progress


@dataclass(frozen=True, slots=True)
class LogLine:
    level: int
    name: str
    message: str


@dataclass(frozen=True, slots=True)
class Finished:
    result: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The job failed with a `ContamError`: its message is the owner's to read."""

    message: str


@dataclass(frozen=True, slots=True)
class Crashed:
    """Any other exception: the owner is told its type only (the traceback went to the log)."""

    kind: str


Message = Snapshot | LogLine | Finished | Refused | Crashed

_context: ForkServerContext | None = None
_context_lock = threading.Lock()
_running: set[JobProcess] = set()


def context(settings: ServerSettings | None = None) -> ForkServerContext:
    """The fork-server context, its preload set at the first call in this process (with the heavy
    modules of the backends `settings` registers)."""
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            assert isinstance(ctx, ForkServerContext)
            extra = preload_for(settings) if settings is not None else ()
            ctx.set_forkserver_preload([*PRELOAD, *extra])
            _context = ctx
        return _context


def preload_for(settings: ServerSettings) -> tuple[str, ...]:
    backends = {entry.model_spec().backend for entry in settings.models}
    return tuple(m for backend in sorted(backends) for m in BACKEND_PRELOAD.get(backend, ()))


def warm(settings: ServerSettings | None = None) -> None:
    """Start the fork server now (it imports its preload meanwhile), so the first job need not
    wait for it."""
    from multiprocessing import forkserver

    context(settings)
    forkserver.ensure_running()


class JobProcess:
    """One job's process, seen from the worker: its messages, its end, and how to stop it."""

    def __init__(self, proc: BaseProcess, conn: Connection) -> None:
        self._proc = proc
        self._conn = conn
        self._eof = False

    @classmethod
    def start(
        cls,
        target: Target,
        job: JobRecord,
        settings: ServerSettings,
        *,
        interval: float,
        nice: int,
    ) -> JobProcess:
        """Start `target(job, settings, progress)` in a new process. `nice` is the absolute CPU
        priority the child takes (never above its current one; Linux nice values)."""
        ctx = context()
        # Duplex: the worker never writes to it, but its end closing tells the child it is gone.
        receiver, sender = ctx.Pipe(duplex=True)
        level = logging.getLogger().getEffectiveLevel()
        proc = ctx.Process(
            target=_child_main,
            args=(target, job, settings, sender, interval, nice, level),
            name=f"contam-job-{job.id[:8]}",
        )
        proc.start()
        sender.close()  # the child holds the only write end: its death is an end of file here
        running = cls(proc, receiver)
        _running.add(running)
        return running

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def exitcode(self) -> int | None:
        return self._proc.exitcode

    def receive(self, timeout: float) -> Message | None:
        """The child's next message, waiting up to `timeout` s; None when there was none by then,
        or the child has ended and sent all it will (see `ended`)."""
        if self._eof:  # all sent; the process may still be on its way out
            self._proc.join(timeout)
            return None
        # The process's sentinel too: a child whose own children hold the pipe open still ends.
        ready = multiprocessing.connection.wait([self._conn, self._proc.sentinel], timeout)
        if not ready:
            return None
        if self._conn.poll():
            try:
                message: Message = self._conn.recv()
            except (EOFError, OSError):
                self._eof = True
                return None
            return message
        self._eof = not self._proc.is_alive()
        return None

    @property
    def ended(self) -> bool:
        """The child has exited and every message it sent has been received."""
        return self._eof and not self._proc.is_alive()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """End the child and its process group: SIGTERM, then SIGKILL after `grace` seconds."""
        if self._proc.is_alive():
            self._signal(signal.SIGTERM)
            self._proc.join(grace)
            if self._proc.is_alive():
                log.warning("job process %s ignored SIGTERM for %.1f s: killed", self.pid, grace)
                self._signal(signal.SIGKILL)
        self._proc.join(5.0)
        # Whatever the child started and left behind in its group goes with it.
        if self.pid is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop the child if it still runs and free the pipe and the process handle."""
        self.stop()
        self._conn.close()
        with contextlib.suppress(ValueError):
            self._proc.close()
        _running.discard(self)

    def _signal(self, signum: int) -> None:
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signum)  # the child leads its own group (see _child_main)
        except OSError:  # not yet its own group leader, or already gone
            with contextlib.suppress(OSError):
                os.kill(self.pid, signum)

    def __hash__(self) -> int:
        return id(self)


def death_message(exitcode: int | None) -> str:
    """A dead child's end in plain words, for the job's owner."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown"
        return (
            f"the job's process died (signal {-exitcode}, {name}); an out-of-memory kill ends a job this way"
        )
    return f"the job's process exited (code {exitcode}) without a result"


@atexit.register
def _stop_running() -> None:
    # Before multiprocessing's own exit handler, which would wait for a running child to end.
    for running in list(_running):
        with contextlib.suppress(Exception):
            running.stop(grace=0.5)


# -- in the child ------------------------------------------------------------------------------


class _Sender:
    """The pipe's write end, shared by the job's threads; a broken pipe means the worker died."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        try:
            with self._lock:
                self._conn.send(message)
        except OSError:
            # Nobody reads any more: the worker is gone and another may take the job over.
            os._exit(70)


class _ForwardLogs(logging.Handler):
    def __init__(self, sender: _Sender) -> None:
        super().__init__()
        self._sender = sender
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sender.send(LogLine(record.levelno, record.name, self.format(record)))
        except Exception:
            self.handleError(record)


def _child_main(
    target: Target,
    job: JobRecord,
    settings: ServerSettings,
    conn: Connection,
    interval: float,
    nice: int,
    level: int,
) -> None:
    """The job process: report progress from a thread, run the job, send how it ended."""
    from servers.jobs import JobProgress

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides; it stops this process
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    threading.Thread(target=_exit_with_worker, args=(conn,), name="contam-job-watch", daemon=True).start()
    sender = _Sender(conn)
    root = logging.getLogger()
    root.handlers[:] = [_ForwardLogs(sender)]
    root.setLevel(level)
    _lower_priority(nice)  # before the job's threads start: they inherit it

    progress = JobProgress()
    sender.send(Snapshot(progress.snapshot()))  # the worker hears from the job at once
    finished = threading.Event()

    def report() -> None:
        while not finished.wait(interval):
            sender.send(Snapshot(progress.snapshot()))

    reporter = threading.Thread(target=report, name="contam-job-progress", daemon=True)
    reporter.start()
    outcome: Message
    try:
        result = target(job, settings, progress)
    except ContamError as exc:
        outcome = Refused(str(exc))
    except BaseException as exc:
        logging.getLogger("contam.service.worker").exception("job %s crashed", job.id)
        outcome = Crashed(type(exc).__name__)
    else:
        outcome = Finished(result)
    finished.set()
    reporter.join()
    sender.send(Snapshot(progress.snapshot()))  # the final counts
    sender.send(outcome)
    conn.close()


def _exit_with_worker(conn: Connection) -> None:
    """End this process as soon as its worker is gone (killed, crashed): the worker never writes
    to the pipe, so a read returns only at its end. Another worker may take the job over then."""
    with contextlib.suppress(EOFError, OSError):
        conn.recv_bytes()
    os._exit(70)


def _lower_priority(nice: int) -> None:
    """Take CPU priority `nice` (Linux nice of this thread, inherited by the threads it starts),
    unless this process already runs at a lower one; elsewhere, or without permission, unchanged."""
    if not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        if nice > os.getpriority(os.PRIO_PROCESS, tid):
            os.setpriority(os.PRIO_PROCESS, tid, min(19, nice))
    except OSError as exc:
        log.warning("job process: could not lower its CPU priority: %s", exc)


__all__ = [
    "Crashed",
    "Finished",
    "JobProcess",
    "LogLine",
    "Message",
    "Refused",
    "Snapshot",
    "Target",
    "context",
    "death_message",
    "preload_for",
    "warm",
]
