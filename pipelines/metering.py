"""Wall time and peak memory of each audit stage, for the run summary and the benchmark."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class StageMeasure:
    stage: str
    seconds: float
    peak_rss_mb: float  # peak resident memory by the stage's end (reset per stage on Linux)


def _peak_rss_mb() -> float:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak() -> None:
    # Linux resets the high-water mark when "5" is written here; elsewhere peaks accumulate
    with suppress(OSError):
        _CLEAR_REFS.write_text("5")


@contextmanager
def measure(stage: str, into: list[StageMeasure]) -> Iterator[None]:
    """Measure a stage, and say when it starts and ends (-v: progress on a long run)."""
    log.info("%s started", stage)
    _reset_peak()
    started = time.perf_counter()
    try:
        yield
    finally:
        measured = StageMeasure(stage, time.perf_counter() - started, _peak_rss_mb())
        into.append(measured)
        log.info("%s took %.1f s, peak %.0f MB", stage, measured.seconds, measured.peak_rss_mb)


class Stopwatch:
    """Seconds between one step of a stage and the next, for its progress lines (-v): a
    long run says where its time goes."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def lap(self) -> float:
        """Seconds since the watch started or the last lap; the next lap starts now."""
        now = time.perf_counter()
        elapsed, self._started = now - self._started, now
        return elapsed
