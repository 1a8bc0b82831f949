"""The provider view: the billing and rendering providers behind the findings, ranked by open
findings and amount at stake (sql/reports/provider_summary.sql). The state's only: it names
every MCO's providers, so it never goes in an MCO's folder."""

from __future__ import annotations

import duckdb
import polars as pl

from pipelines.config import read_sql

PROVIDER_SUMMARY_FILE = "provider_summary.csv"


def provider_summary(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(read_sql("reports/provider_summary.sql")).pl()
