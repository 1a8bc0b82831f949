"""Current claim versions: voids and replacements applied, chains of any depth."""

from __future__ import annotations

import duckdb
import polars as pl

from pipelines.config import Policy, read_sql
from pipelines.db import run_sql_file, scalar


def rebuild_claim_versions(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute which version of each claim chain is current; returns the current claims."""
    run_sql_file(con, "versions/claim_versions.sql")
    return int(scalar(con, "select count(*) from audit.claim_versions where is_current"))


def current_in_scope_lines(con: duckdb.DuckDBPyConnection, policy: Policy) -> pl.DataFrame:
    return con.sql(
        read_sql("versions/current_in_scope_lines.sql"),
        params={"hcpcs_code": policy.hcpcs_code},
    ).pl()
