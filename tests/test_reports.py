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
from pipelines.reports.outputs import FINDING_COLUMNS, STATE_ONLY_COLUMNS, write_findings
from pipelines.reports.spool import PolicySpool

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
    out = tmp_path / "out"
    payers = ["AETNA", "SUNFLOWER", "UHC"]
    spools = {p: PolicySpool(tmp_path / "spool" / p, chunk_rows) for p in payers}

    write_findings(con, out, spools)

    # chunk by chunk, the file is byte for byte what one write of every finding makes
    whole = con.sql("select * from audit.findings order by claim_id").pl()
    expected = tmp_path / "expected.csv"
    outputs.spreadsheet_safe(whole.select(FINDING_COLUMNS)).write_csv(
        expected, date_format="%Y-%m-%d"
    )
    assert (out / "findings.csv").read_bytes() == expected.read_bytes()
    assert pl.read_csv(out / "findings.csv", infer_schema=False)["detail"][3] == "'=1+1"

    package_columns = [c for c in FINDING_COLUMNS if c not in STATE_ONLY_COLUMNS]
    for payer, rows in (("AETNA", 2), ("SUNFLOWER", 0), ("UHC", 1)):
        own = pl.read_csv(out / "mco" / payer / "findings.csv", infer_schema=False)
        assert own.columns == package_columns
        assert own.height == rows and set(own["payer"]) <= {payer}
        kept = spools[payer].table(PPS)
        assert kept.height == rows and kept.columns == package_columns
    aetna = pl.read_csv(out / "mco" / "AETNA" / "findings.csv", infer_schema=False)
    assert aetna["detail"].to_list() == ["for the MCO, with a comma", "line\nbreak"]
    uhc = pl.read_csv(out / "mco" / "UHC" / "findings.csv", infer_schema=False)
    assert uhc["detail"][0].startswith("(no MCO detail on record"), "never the full detail"
    assert not (out / "mco" / "OTHER").exists()


def test_the_spool_gives_each_policy_its_rows_and_any_run_of_them(tmp_path: Path) -> None:
    spool = PolicySpool(tmp_path, chunk_rows=2)
    spool.add(pl.DataFrame({"policy_id": ["a", "a", "b"], "claim_id": ["1", "2", "3"]}))
    spool.add(pl.DataFrame({"policy_id": ["b", "b"], "claim_id": ["4", "5"]}))
    with pytest.raises(RuntimeError):
        spool.table("b")  # still being written
    spool.close()

    b = spool.table("b")
    assert b.height == 3 and b.columns == ["policy_id", "claim_id"]
    assert [f["claim_id"].to_list() for f in b.read(0, 3)] == [["3", "4"], ["5"]]
    assert [f["claim_id"].to_list() for f in b.read(1, 1)] == [["4"]]
    none = spool.table("c")
    assert none.height == 0 and list(none.read(0, 0)) == []
