"""Every output of a run under --out: the files (pipelines/reports/outputs.py) and the
analyst report. The provider summary and the reprocessing log, which both show, are computed
once: at state scale each reads every finding."""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from pipelines.db import REPORTS_MEMORY_LIMIT, memory_lowered, second_connection
from pipelines.metering import Stopwatch
from pipelines.reports.analyst_report import write_analyst_report
from pipelines.reports.outputs import reprocessing_log, write_reports
from pipelines.reports.providers import provider_summary

log = logging.getLogger(__name__)


def write_outputs(con: duckdb.DuckDBPyConnection, out_dir: Path, *, as_of: dt.date) -> list[Path]:
    """Write every output of the committed log. The analyst report is written beside the
    files, on a connection of its own: it reads the log while they are written."""
    with memory_lowered(con, REPORTS_MEMORY_LIMIT):
        return _write_every_output(con, out_dir, as_of=as_of)


def _write_every_output(
    con: duckdb.DuckDBPyConnection, out_dir: Path, *, as_of: dt.date
) -> list[Path]:
    watch = Stopwatch()
    providers = provider_summary(con)
    log.info("provider summary: %d rows in %.1f s", providers.height, watch.lap())
    log_rows = reprocessing_log(con, as_of)
    with second_connection(con) as report_con, ThreadPoolExecutor(max_workers=1) as beside:
        report = beside.submit(
            write_analyst_report,
            report_con,
            out_dir,
            as_of=as_of,
            providers=providers,
            log_rows=log_rows,
        )
        written = write_reports(con, out_dir, as_of=as_of, providers=providers, log_rows=log_rows)
        written.append(report.result())
    return written
