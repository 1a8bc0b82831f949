"""Which in-scope lines tonight's audit looks at: all of them, or only what can have changed.

A full audit reads every current in-scope line of a pack. When the pack's last audit had the
same identity (pipelines/audit/identity.py: pack, suite, code) and no reference snapshot has
arrived since, only claim deliveries changed anything, and a nightly run audits again just
the claims they touched and the claims tied to those through the pack's related lines (a
peer's day, a member's day or month: its facts depend on nothing else). Every other claim's
facts, and so its findings, are as the last audit left them (docs/decisions.md, "A nightly
run audits again only what its deliveries can change").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.claims.versions import stage_in_scope_lines
from pipelines.db import execute, run_sql_file, scalar

CLAIM = ["payer", "claim_id"]


@dataclass(frozen=True)
class Tie:
    """How a rule can tie one line's facts to other lines': within which period of the DOS,
    and whether across members."""

    period: str  # "day" or "month": the lines tied share it
    across_members: bool


# what can tie one line's facts to other lines' (a pack names those of its rules)
RELATED_LINES = {
    "peer_day": Tie("day", across_members=True),  # a group session: one peer, many members
    "member_day": Tie("day", across_members=False),
    "member_month": Tie("month", across_members=False),
}
AUDITED_LINE_COLUMNS = ["payer", "claim_id", "peer_npi", "member_id", "service_date"]


@dataclass(frozen=True)
class LastAudit:
    as_of: dt.date
    last_delivery_id: int


@dataclass(frozen=True)
class LinesToAudit:
    """Tonight's in-scope lines of a pack, in temp table in_scope_line: the audited claims'
    lines and the context lines that complete their groups."""

    lines: int
    audited_claims: pl.DataFrame | None  # payer, claim_id; None: every claim is audited


def last_audit(con: duckdb.DuckDBPyConnection, identity: str, policy_id: str) -> LastAudit | None:
    """The policy's last audit, when tonight's can build on it: same identity, no new
    reference data."""
    runs = execute(
        con,
        "select as_of, last_delivery_id, audit_identity from audit.runs "
        "where policy_id = $policy_id order by run_id desc limit 1",
        {"policy_id": policy_id},
    )
    if not runs or runs[0][2] != identity:
        return None
    as_of, last_delivery_id, _ = runs[0]
    new_references = scalar(
        con,
        "select count(*) from audit.deliveries where kind = 'reference' and status = 'loaded' "
        "and delivery_id > $last",
        last=last_delivery_id,
    )
    # a database from before audited lines were kept has none: audit it all once
    if new_references or not audited_line_count(con, policy_id):
        return None
    return LastAudit(as_of=as_of, last_delivery_id=int(last_delivery_id))


@dataclass(frozen=True)
class PackScope:
    """What a pack audits: the codes of its lines, and what ties a line's facts to others."""

    policy_id: str
    codes: tuple[str, ...]
    related_lines: frozenset[str]  # of RELATED_LINES


def lines_to_audit(
    con: duckdb.DuckDBPyConnection, pack: PackScope, previous: LastAudit | None
) -> LinesToAudit:
    """Every in-scope line without a `previous` audit to build on; else what can have changed."""
    if previous is None:
        return LinesToAudit(stage_in_scope_lines(con, pack.codes), None)
    run_sql_file(con, "versions/touched_claims.sql", last_delivery_id=previous.last_delivery_id)
    run_sql_file(con, "versions/touched_lines.sql", codes=list(pack.codes))
    execute(con, "create or replace temp table scope_claim as from touched_claim")
    ties = {tie: tie in pack.related_lines for tie in RELATED_LINES}
    # once: the claims whose facts can have changed; twice: their groups' other claims
    run_sql_file(con, "versions/claims_tied_by_day.sql", policy_id=pack.policy_id, **ties)
    audited = con.sql("select payer, claim_id from scope_claim").pl()
    run_sql_file(con, "versions/claims_tied_by_day.sql", policy_id=pack.policy_id, **ties)
    return LinesToAudit(stage_in_scope_lines(con, pack.codes, every_claim=False), audited)


def record_audited_lines(
    con: duckdb.DuckDBPyConnection, audited_claims: pl.DataFrame | None, policy_id: str
) -> int:
    """Keep the lines tonight's audit of the policy saw (temp table current_facts: the
    claim_line_number and AUDITED_LINE_COLUMNS of its facts), for the next night; returns all
    its in-scope lines."""
    con.register("audited_claims", claims_or_empty(audited_claims))
    try:
        run_sql_file(
            con,
            "versions/record_audited_lines.sql",
            every_claim=audited_claims is None,
            policy_id=policy_id,
        )
    finally:
        con.unregister("audited_claims")
    return audited_line_count(con, policy_id)


def audited_line_count(con: duckdb.DuckDBPyConnection, policy_id: str) -> int:
    return int(
        scalar(
            con,
            "select count(*) from audit.audited_lines where policy_id = $policy_id",
            policy_id=policy_id,
        )
    )


def claims_or_empty(claims: pl.DataFrame | None) -> pl.DataFrame:
    """The audited claims to register for SQL: an empty frame stands for "every claim"."""
    if claims is None:
        return pl.DataFrame(schema={"payer": pl.String, "claim_id": pl.String})
    return claims.select(CLAIM)
