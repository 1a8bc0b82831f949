"""findings.csv with every column, and each MCO's own rows as its package shows them, read
from the log a chunk at a time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.db import connect
from pipelines.reports import outputs
from pipelines.reports.outputs import (
    FINDING_COLUMNS,
    STATE_ONLY_COLUMNS,
    findings_in_chunks,
    package_findings_in_chunks,
    write_csv_chunks,
)

PPS = "h0038_parent_peer_support"
FINDINGS = pl.DataFrame(
    {
        "payer": ["AETNA", "AETNA", "OTHER", "UHC"],
        "claim_id": ["A1", "A2", "O1", "U1"],
        "detail": ['a "quoted" detail, with a comma', "line\nbreak", "o", "=1+1"],
        "waived_reason": [None, "recouped", None, None],
        "waived_by": [None, "J. Rivera", None, None],
        "mco_detail": ["for the MCO, with a comma", "line\nbreak", "o", None],
    }
)


def _log(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(tmp_path / "audit.duckdb")
    rows = FINDINGS.with_columns(
        pl.lit(PPS).alias("policy_id"),
        pl.lit(1).alias("claim_line_number"),
        pl.lit("PPS009").alias("rule_id"),
        pl.lit("root").alias("chain_root_id"),
        pl.lit("M1").alias("member_id"),
        pl.lit(dt.date(2024, 1, 2)).alias("service_date"),
        pl.lit(52.4).cast(pl.Decimal(18, 2)).alias("paid_amount"),
        pl.lit(dt.date(2024, 1, 20)).alias("paid_date"),
        pl.lit("error").alias("severity"),
        pl.lit("open").alias("status"),
        pl.lit(dt.date(2024, 2, 1)).alias("first_found_date"),
        pl.lit(dt.date(2024, 2, 1)).alias("last_found_date"),
        pl.lit(False).alias("pre_implementation"),
    )
    con.register("rows", rows)
    con.execute("insert into audit.findings by name select * from rows")
    con.unregister("rows")
    return con


@pytest.mark.parametrize("chunk_rows", [1, 2, 100_000])
def test_the_whole_file_has_every_column_and_each_mco_gets_only_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    monkeypatch.setattr(outputs, "CHUNK_ROWS", chunk_rows)
    con = _log(tmp_path)

    written = write_csv_chunks(findings_in_chunks(con), tmp_path / "findings.csv")

    # chunk by chunk, the file is byte for byte what one write of every finding makes
    whole = con.sql("select * from audit.findings order by claim_id").pl()
    expected = tmp_path / "expected.csv"
    outputs.spreadsheet_safe(whole.select(FINDING_COLUMNS)).write_csv(
        expected, date_format="%Y-%m-%d"
    )
    assert written.read_bytes() == expected.read_bytes()
    assert pl.read_csv(written, infer_schema=False)["detail"][3] == "'=1+1", "spreadsheet-safe"

    package_columns = [c for c in FINDING_COLUMNS if c not in STATE_ONLY_COLUMNS]
    for payer, rows in (("AETNA", 2), ("SUNFLOWER", 0), ("UHC", 1)):
        path = write_csv_chunks(package_findings_in_chunks(con, payer), tmp_path / f"{payer}.csv")
        own = pl.read_csv(path, infer_schema=False)
        assert own.columns == package_columns
        assert own.height == rows and set(own["payer"]) <= {payer}
    aetna = pl.read_csv(tmp_path / "AETNA.csv", infer_schema=False)
    assert aetna["detail"].to_list() == ["for the MCO, with a comma", "line\nbreak"]
    uhc = pl.read_csv(tmp_path / "UHC.csv", infer_schema=False)
    assert uhc["detail"][0].startswith("(no MCO detail on record"), "never the full detail"


def test_a_package_reads_any_run_of_its_findings(tmp_path: Path) -> None:
    con = _log(tmp_path)
    frames = list(package_findings_in_chunks(con, "AETNA", PPS, skip=1, count=1))
    assert [f["claim_id"].to_list() for f in frames] == [["A2"]]
    nothing = list(package_findings_in_chunks(con, "AETNA", "another_policy"))
    assert len(nothing) == 1 and nothing[0].height == 0, "no rows, yet the columns"
    assert "detail" in nothing[0].columns and "mco_detail" not in nothing[0].columns
