"""The Great Expectations worker process: errors come back, a dead worker is reported, and a
run that failed midway leaves nothing behind for the next run to mistake for its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipelines.audit import gx_process
from pipelines.audit.rules import ValidationError
from pipelines.audit.run import stage_validate
from tests.processes import descendants, running
from tests.world import pack_audit


def test_an_error_inside_great_expectations_fails_the_request(tmp_path: Path) -> None:
    # facts without the rules' columns: GX cannot evaluate, which must never read as clean
    facts = tmp_path / "facts"
    facts.mkdir()
    pl.DataFrame(
        {"line_key": [0], "payer": ["AETNA"], "claim_id": ["C1"], "claim_line_number": [1]}
    ).write_parquet(facts / "part-00001.parquet")
    worker = gx_process.shared()
    with pytest.raises(ValidationError, match="Great Expectations failed on rule") as raised:
        worker.run(stage_validate, facts, pack_audit().rules)
    assert isinstance(raised.value.__cause__, gx_process.RemoteTraceback)
    assert "stage_validate" in str(raised.value.__cause__)
    assert not (tmp_path / "findings").exists()
    assert worker.run(len, "still serving") == 13


def test_a_worker_that_stops_is_reported_instead_of_waited_for() -> None:
    worker = gx_process.GxProcess()
    with pytest.raises(gx_process.WorkerError, match="exit code 3"):
        worker.run(os._exit, 3)
    assert not worker.alive()


def test_results_a_failed_run_left_uncollected_are_dropped() -> None:
    worker = gx_process.shared()
    worker.submit(len, "never collected")
    assert gx_process.shared().run(len, "mine") == 4


# a run that starts a worker, keeps it busy for an hour, prints the run's PID and waits
BUSY_WORKER = """
import os, time
from pipelines.audit import gx_process
worker = gx_process.GxProcess()
worker.submit(time.sleep, 3600)
print(os.getpid(), flush=True)
time.sleep(3600)
"""


def test_a_killed_run_takes_its_busy_worker_with_it() -> None:
    run = subprocess.Popen([sys.executable, "-c", BUSY_WORKER], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    pid = int(run.stdout.readline())
    workers = descendants(pid)
    run.kill()
    run.wait(timeout=60)
    run.stdout.close()
    # the worker never waits for another request: only the kernel can end it in time
    deadline = time.monotonic() + 60
    while (alive := [w for w in workers if running(w)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for orphan in alive:  # not left to sleep out its hour when this fails
        os.kill(orphan, signal.SIGKILL)
    assert workers and not alive, "the worker outlived the run it served"
