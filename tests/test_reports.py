"""findings.csv and each MCO's own copy: one slice each, written once, copied into the whole."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from pipelines.reports import write_findings


def _findings() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "payer": ["AETNA", "AETNA", "OTHER", "UHC"],
            "claim_id": ["A1", "A2", "O1", "U1"],
            "detail": ['a "quoted" detail, with a comma', "line\nbreak", "o", "'=1+1"],
            "service_date": [dt.date(2024, 1, 2)] * 4,
        }
    )


def test_the_whole_file_is_every_slice_and_each_mco_gets_only_its_own(tmp_path: Path) -> None:
    findings = _findings()
    stale = tmp_path / "mco" / "SUNFLOWER" / "findings.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("payer\nSUNFLOWER from last night\n", encoding="utf-8")

    written = write_findings(findings, tmp_path, ["AETNA", "SUNFLOWER", "UHC"])

    expected = tmp_path / "expected.csv"
    findings.write_csv(expected, date_format="%Y-%m-%d")
    assert (tmp_path / "findings.csv").read_bytes() == expected.read_bytes()
    for payer, rows in (("AETNA", 2), ("SUNFLOWER", 0), ("UHC", 1)):
        own = pl.read_csv(tmp_path / "mco" / payer / "findings.csv", infer_schema=False)
        assert own.columns == findings.columns
        assert own.height == rows and set(own["payer"]) <= {payer}
    assert not (tmp_path / "mco" / "OTHER").exists()
    assert written[0] == tmp_path / "findings.csv" and len(written) == 4
