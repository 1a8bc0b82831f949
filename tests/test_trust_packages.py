"""What leaves the state: formulas never run.

Issue 12, defect 4 (formula escaping missed `-`). Each test runs the real audit (DuckDB
file, Great Expectations) and reads the files as an MCO or an analyst would open them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import polars as pl

from pipelines import cli
from pipelines.audit import run_audit
from pipelines.config import load_policy
from tests.world import AS_OF, World


def _run(world: World, tmp_path: Path) -> Path:
    input_dir = world.write(tmp_path / "input")
    run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF, policy=load_policy())
    return tmp_path / "out"


# defect 4: formula escaping missed `-` ----------------------------------------------------

ADULT = "10000000002"  # an adult without written consent: PPS009 on every line


def test_formula_escaping_covers_minus_in_every_csv_and_xlsx_and_numbers_stay_numbers(
    tmp_path: Path,
) -> None:
    world = World()
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"].pop()
    world.line("AETNA", "-7", ADULT, paid_amount="-3.00")
    world.line("AETNA", "7-A", ADULT, claim_line_start_date="2023-05-03")  # `-` inside: as is
    out = _run(world, tmp_path)
    exported = tmp_path / "analyst.csv"
    assert (
        cli.main(["findings", "--db", str(tmp_path / "a.duckdb"), "--output", str(exported)]) == 0
    )

    for path in (out / "findings.csv", out / "mco" / "AETNA" / "findings.csv", exported):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert {row["claim_id"] for row in rows} == {"'-7", "7-A"}, path.name
        amounts = {row["claim_id"]: row["paid_amount"] for row in rows}
        assert amounts["'-7"] == "-3.00", f"{path.name}: a negative amount stays a number"
        assert all(row["claim_line_number"] == "1" for row in rows)
    state_log = pl.read_csv(out / "reprocessing_log.csv", infer_schema=False)
    assert state_log["amount_open"].to_list() == ["49.40"]

    book = openpyxl.load_workbook(out / "mco" / "AETNA" / "AETNA_h0038_audit.xlsx")
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                text = cell.value if isinstance(cell.value, str) else ""
                assert not text.startswith(("=", "+", "-", "@", "\t", "\r")), (
                    f"{sheet.title}!{cell.coordinate}: {text!r}"
                )
    findings = book["Findings"]
    header = [cell.value for cell in findings[1]]
    by_claim = {
        row[header.index("claim_id")]: row
        for row in findings.iter_rows(min_row=2, values_only=True)
    }
    assert set(by_claim) == {"'-7", "7-A"}
    assert by_claim["'-7"][header.index("paid_amount")] == -3.0
    summary = list(book["Summary"].iter_rows(values_only=True))
    log_header = summary[3]
    assert summary[4][log_header.index("amount_open")] == 49.4
