"""The reprocessing log: every finding across nightly runs, with its status history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.audit.rules import KEY
from pipelines.claims.scope import claims_or_empty
from pipelines.config import read_sql
from pipelines.db import execute, registered, run_sql_file, scalar

FINDING_FACTS = [
    "chain_root_id",
    "member_id",
    "peer_npi",
    "billing_npi",
    "service_date",
    "paid_amount",
    "paid_date",
    "pre_implementation",
]
# the part of a line's paid amount a finding puts at risk; null: the whole paid amount
AMOUNT_AT_RISK = "amount_at_risk"
MONEY = pl.Decimal(18, 2)


@dataclass(frozen=True)
class LogChanges:
    opened: int
    reopened: int
    closed: dict[str, int]
    produced: int  # findings produced tonight, those of claims not audited again included


def current_findings(findings: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """Tonight's findings as the log takes them: with the facts it keeps of their lines
    (FINDING_FACTS) and their amount at risk as money."""
    return with_amount_at_risk(findings).join(
        facts.select(*KEY, *FINDING_FACTS), on=KEY, how="left"
    )


def update_log(
    con: duckdb.DuckDBPyConnection,
    *,
    policy_id: str,
    run_id: int,
    as_of: dt.date,
    audited_claims: pl.DataFrame | None = None,
    previous_as_of: dt.date | None = None,
) -> LogChanges:
    """Open, keep, reopen or close every finding of the policy against tonight's result, in
    temp table current_findings (current_findings(), loaded with db.load_temp_table).

    Those findings are the policy's only: another policy's findings are never read or
    changed, so each pack's run keeps its own log.

    Every finding first takes its claim's current chain root from audit.claim_versions
    (rebuilt just before), so a chain whose root changed keeps its findings.

    With `audited_claims`, tonight's audit looked only at those claims: the open findings of
    the others were found again by the audit of `previous_as_of` and stand.
    """
    _refuse_a_finding_twice(con)
    # before closing anything: a replaced line is matched to its successor by chain root
    run_sql_file(con, "log/follow_chain_roots.sql", policy_id=policy_id)
    with registered(con, audited_claims=claims_or_empty(audited_claims)):
        run_sql_file(
            con,
            "log/update_findings.sql",
            policy_id=policy_id,
            run_id=run_id,
            as_of=as_of,
            every_claim=audited_claims is None,
        )
        refreshed = 0
        if audited_claims is not None:
            rows = execute(
                con,
                read_sql("log/refresh_unaudited_findings.sql"),
                {"policy_id": policy_id, "as_of": as_of, "previous_as_of": previous_as_of},
            )
            refreshed = int(rows[0][0]) if rows else 0
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
    found = int(scalar(con, "select count(*) from current_findings"))
    return LogChanges(opened=opened, reopened=reopened, closed=closed, produced=found + refreshed)


class FindingTwice(ValueError):
    """Tonight's findings name one finding twice: the log keeps one row per finding."""


def _refuse_a_finding_twice(con: duckdb.DuckDBPyConnection) -> None:
    """The log's key (migration 0006) is kept by this check and by the update inserting only
    findings the log has not got, not by an index, which DuckDB must hold in memory."""
    twice = int(scalar(con, read_sql("log/findings_named_twice.sql")))
    if twice:
        raise FindingTwice(
            f"{twice} findings appear more than once among tonight's findings: the log is "
            "left as it was; report this as a defect of the audit"
        )


def with_amount_at_risk(findings: pl.DataFrame) -> pl.DataFrame:
    """The findings with their amount at risk as money; a suite that names none puts the
    whole paid amount at risk (null)."""
    amount = pl.col(AMOUNT_AT_RISK) if AMOUNT_AT_RISK in findings.columns else pl.lit(None)
    return findings.with_columns(amount.cast(MONEY).alias(AMOUNT_AT_RISK))
