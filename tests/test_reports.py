"""findings.csv with every column, and each MCO's own rows as its package shows them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from pipelines.reports.outputs import STATE_ONLY_COLUMNS, mco_findings, write_findings


def _findings() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "payer": ["AETNA", "AETNA", "OTHER", "UHC", "AETNA"],
            "claim_id": ["A1", "A2", "O1", "U1", "A3-HELD"],
            "detail": ['a "quoted" detail, with a comma', "line\nbreak", "o", "'=1+1", "h"],
            "service_date": [dt.date(2024, 1, 2)] * 5,
            "waived_reason": [None, "recouped", None, None, None],
            "waived_by": [None, "J. Rivera", None, None, None],
            "mco_detail": ["for the MCO, with a comma", "line\nbreak", "o", None, "h"],
            "held": [False, False, False, False, True],
            "outside_lookback": [False] * 5,
            # a held finding is never in its MCO's package
            "in_mco_package": [True, True, True, True, False],
        }
    )


def test_the_whole_file_has_every_column_and_each_mco_gets_only_its_own(tmp_path: Path) -> None:
    findings = _findings()
    stale = tmp_path / "mco" / "SUNFLOWER" / "findings.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("payer\nSUNFLOWER from last night\n", encoding="utf-8")

    written = write_findings(
        findings, mco_findings(findings), tmp_path, ["AETNA", "SUNFLOWER", "UHC"]
    )

    expected = tmp_path / "expected.csv"
    findings.write_csv(expected, date_format="%Y-%m-%d")
    assert (tmp_path / "findings.csv").read_bytes() == expected.read_bytes()
    package_columns = [
        c for c in findings.columns if c not in [*STATE_ONLY_COLUMNS, "in_mco_package"]
    ]
    for payer, rows in (("AETNA", 2), ("SUNFLOWER", 0), ("UHC", 1)):
        own = pl.read_csv(tmp_path / "mco" / payer / "findings.csv", infer_schema=False)
        assert own.columns == package_columns
        assert own.height == rows and set(own["payer"]) <= {payer}
    aetna = pl.read_csv(tmp_path / "mco" / "AETNA" / "findings.csv", infer_schema=False)
    assert aetna["detail"].to_list() == ["for the MCO, with a comma", "line\nbreak"]
    uhc = pl.read_csv(tmp_path / "mco" / "UHC" / "findings.csv", infer_schema=False)
    assert uhc["detail"][0].startswith("(no MCO detail on record"), "never the full detail"
    assert not (tmp_path / "mco" / "OTHER").exists()
    assert written[0] == tmp_path / "findings.csv" and len(written) == 4
