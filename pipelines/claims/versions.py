"""Current claim versions: voids and replacements applied, chains of any depth."""

from __future__ import annotations

import duckdb
import polars as pl

from pipelines.config import read_sql
from pipelines.db import execute, run_sql_file, scalar


def rebuild_claim_versions(
    con: duckdb.DuckDBPyConnection, delivered_after: int | None = None
) -> int:
    """Recompute which version of each corrected claim chain is current; returns the chains.

    With `delivered_after` (a delivery ID), only the chains of the claims delivered since
    are rebuilt. A claim outside audit.claim_versions has no correction: it is its own,
    current, chain.
    """
    if delivered_after is None:
        execute(con, "create or replace temp table touched_claim (payer varchar, claim_id varchar)")
    else:
        run_sql_file(con, "versions/touched_claims.sql", last_delivery_id=delivered_after)
    run_sql_file(con, "versions/claim_versions.sql", every_claim=delivered_after is None)
    return int(
        scalar(con, "select count(distinct (payer, chain_root_id)) from audit.claim_versions")
    )


def claim_version(
    con: duckdb.DuckDBPyConnection, payer: str, claim_id: str
) -> tuple[str, bool, str, object] | None:
    """One claim's chain root, whether it is current, its frequency code and paid date."""
    rows = con.execute(
        read_sql("versions/claim_version.sql"), {"payer": payer, "claim_id": claim_id}
    ).fetchall()
    return rows[0] if rows else None


def current_in_scope_lines(
    con: duckdb.DuckDBPyConnection, codes: tuple[str, ...], *, every_claim: bool = True
) -> pl.DataFrame:
    """The current lines of these codes (a pack's), as a frame: see stage_in_scope_lines."""
    stage_in_scope_lines(con, codes, every_claim=every_claim)
    return con.sql("from in_scope_line").pl()


def stage_in_scope_lines(
    con: duckdb.DuckDBPyConnection, codes: tuple[str, ...], *, every_claim: bool = True
) -> int:
    """The current lines of these codes (a pack's) into temp table in_scope_line: of every
    claim, or of the claims in temp table scope_claim. Returns their count."""
    if every_claim:
        execute(con, "create or replace temp view candidate_line as from raw.claim_lines")
    else:
        # a few thousand claims: their lines once, instead of three passes over all lines;
        # found by their keys alone first, since reading every column of every line is slower
        execute(
            con,
            "create or replace temp table scoped_claim_line as from raw.claim_lines "
            "where rowid in (select line.rowid from raw.claim_lines as line "
            "semi join scope_claim using (payer, claim_id))",
        )
        execute(con, "create or replace temp view candidate_line as from scoped_claim_line")
    run_sql_file(con, "versions/current_in_scope_lines.sql", codes=list(codes))
    # the copied lines would otherwise stay in DuckDB's memory, beside polars, all night
    execute(con, "drop view candidate_line")
    execute(con, "drop table if exists scoped_claim_line")
    return int(scalar(con, "select count(*) from in_scope_line"))
