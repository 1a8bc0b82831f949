"""The reprocessing log: every finding across nightly runs, with its status history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.db import run_sql_file
from pipelines.rules import KEY

FINDING_FACTS = [
    "chain_root_id",
    "member_id",
    "peer_npi",
    "service_date",
    "paid_amount",
    "paid_date",
    "pre_implementation",
]


@dataclass(frozen=True)
class LogChanges:
    opened: int
    reopened: int
    closed: dict[str, int]


def update_log(
    con: duckdb.DuckDBPyConnection,
    findings: pl.DataFrame,
    facts: pl.DataFrame,
    *,
    run_id: int,
    as_of: dt.date,
) -> LogChanges:
    """Open, keep, reopen or close every finding against tonight's result."""
    current = findings.join(facts.select(*KEY, *FINDING_FACTS), on=KEY, how="left")
    con.register("current_findings", current)
    try:
        run_sql_file(con, "log/update_findings.sql", run_id=run_id, as_of=as_of)
    finally:
        con.unregister("current_findings")
    changes = con.sql("select from_status, to_status, count(*) from finding_changes group by all")
    opened = reopened = 0
    closed: dict[str, int] = {}
    for from_status, to_status, count in changes.fetchall():
        if from_status is None:
            opened += count
        elif to_status == "open":
            reopened += count
        else:
            closed[to_status] = closed.get(to_status, 0) + count
    return LogChanges(opened=opened, reopened=reopened, closed=closed)
