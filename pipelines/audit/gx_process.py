"""Great Expectations in a process of its own, for a whole audit run in one command.

Importing Great Expectations costs seconds of CPU (4 to 5 s on the 2-core machines here),
mostly under the GIL. A process that starts with the run imports it on the other core while
this one loads deliveries and builds the facts, then validates them; it builds the Data Docs
while this one updates the log. It also spares this process tearing down thousands of
modules at exit. The Airflow DAG runs validation and Data Docs as tasks of their own and
does not use it.

Requests run one at a time, in the order they were sent; their results come back in that
order. A failed request raises its error here, with the worker's traceback as its cause.
The worker ends with the run's process, at once, even when that one is killed.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any


class WorkerError(RuntimeError):
    """The worker process failed a request, or stopped before it answered."""


class RemoteTraceback(Exception):
    """The worker's own traceback of a failed request (logged with -v, like any error)."""


class GxProcess:
    """A worker process that imports Great Expectations as soon as it starts."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of this process's threads
        self._connection, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_end, os.getpid()), name="claims-audit-gx", daemon=True
        )
        self._process.start()
        child_end.close()
        self._pending = 0

    def alive(self) -> bool:
        return self._process.is_alive()

    def drain(self) -> None:
        """Wait for and drop the results nobody collected (a run that failed midway)."""
        while self._pending:
            with suppress(Exception):
                self.result()

    def submit(self, task: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Send a request: a module-level function and picklable arguments (paths, policy)."""
        self._connection.send((task, args, kwargs, logging.getLogger().getEffectiveLevel()))
        self._pending += 1

    def result(self) -> Any:
        """The result of the oldest request not yet collected."""
        if not self._pending:
            raise WorkerError("no request is waiting for its result")
        self._pending -= 1
        try:
            ok, value, remote_traceback = self._connection.recv()
        except EOFError as error:
            self._process.join(timeout=5)
            raise WorkerError(
                f"the Great Expectations process stopped (exit code {self._process.exitcode})"
            ) from error
        if ok:
            return value
        raise value from RemoteTraceback(remote_traceback)

    def run(self, task: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.submit(task, *args, **kwargs)
        return self.result()


_shared: GxProcess | None = None


def shared() -> GxProcess:
    """This process's worker, started on first use and kept for later runs (tests run many)."""
    global _shared
    if _shared is not None:
        _shared.drain()
    if _shared is None or not _shared.alive():
        _shared = GxProcess()
    return _shared


def _serve(connection: Connection, run_pid: int) -> None:
    _end_with_the_run(run_pid)
    # Ctrl-C reaches the whole process group: the run decides, and this process ends with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    from tqdm import tqdm

    from pipelines.audit.rules import quiet_gx

    quiet_gx()
    # tqdm (progress bars, off here) would make a lock shared between processes, which the
    # resource tracker reports as leaked once this process ends without tearing down
    tqdm.set_lock(threading.RLock())
    # the collector would walk the import's hundreds of thousands of new objects again and
    # again (0.3 s); afterwards they stay put, out of its way
    gc.disable()
    with suppress(ImportError):  # the first request's own import reports it
        import great_expectations  # noqa: F401  the reason this process exists
    gc.freeze()
    gc.enable()
    while True:
        try:
            task, args, kwargs, log_level = connection.recv()
        except EOFError:  # the run is over, or its process was killed
            break
        logging.getLogger().setLevel(log_level)
        connection.send(_answer(task, args, kwargs))
    connection.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # tearing down Great Expectations' modules takes about a second


def _end_with_the_run(run_pid: int) -> None:
    """Have the kernel kill this process when the run's process ends, killed or not, also
    while this one imports or validates: it would otherwise only notice once it next waits
    for a request. Linux only; elsewhere it ends at that next wait. (Strictly, when the
    thread that started it ends: `shared()` then starts another.)"""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != run_pid:  # the run ended before the request above took effect
        os._exit(0)


def _answer(
    task: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any, str]:
    try:
        return True, task(*args, **kwargs), ""
    except Exception as error:
        text = traceback.format_exc()
        try:
            pickle.dumps(error)
        except Exception:
            error = WorkerError(f"{type(error).__name__} in the Great Expectations process")
        return False, error, text
