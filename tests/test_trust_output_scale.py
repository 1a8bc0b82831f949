"""Outputs at state scale: an MCO's workbook holds every finding, however many there are.

Issue 14, item 6. A workbook used to list at most 10,000 findings a policy and say "see
findings.csv" for the rest; now a table longer than an Excel sheet (1,048,576 rows with its
header) continues on further sheets, each with the header, and the Summary says where. The
tests lower the one row-limit constant to split small tables, and read the files back with
openpyxl as an MCO would open them.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
import xlsxwriter

from pipelines.audit.run import run_audit
from pipelines.reports import outputs, workbook
from pipelines.reports.outputs import FINDING_COLUMNS, STATE_ONLY_COLUMNS, write_workbook
from pipelines.reports.policy_text import policy_text
from pipelines.reports.workbook import TableBook, sheet_names, sheet_parts
from tests.world import AS_OF, World

PPS = "h0038_parent_peer_support"
ADULT = "10000000002"  # an adult without written consent: PPS009 on every line
SHEET = "Findings 22321"
# claim IDs sort before the hostile ones, so the hostile ones land on the last sheet
PLAIN_CLAIMS = [f"{i:04d}" for i in range(1, 8)]
HOSTILE_CLAIMS = ["=HYPERLINK(1)", "@cmd"]


def _world() -> World:
    world = World()
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"].pop()
    for day, claim_id in enumerate([*PLAIN_CLAIMS, *HOSTILE_CLAIMS], start=2):
        world.line("AETNA", claim_id, ADULT, claim_line_start_date=f"2023-05-{day:02d}")
    return world


def _audit(tmp_path: Path) -> Path:
    input_dir = _world().write(tmp_path / "input")
    run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)
    return tmp_path / "out"


def _table(sheet: Any, header_row: int) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """A sheet's header row and the table rows under it."""
    rows = list(sheet.iter_rows(values_only=True))
    return rows[header_row], rows[header_row + 1 :]


def test_findings_past_a_sheets_row_limit_continue_on_more_sheets_each_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a sheet of 6 rows: title, blank line, header and 3 findings; the log read 2 findings at
    # a time and the sheets written a row at a time, so chunks and sheets cut rows apart
    monkeypatch.setattr(workbook, "EXCEL_MAX_ROWS", 6)
    monkeypatch.setattr(outputs, "CHUNK_ROWS", 2)
    monkeypatch.setattr(workbook, "BODY_CHUNK_ROWS", 1)
    out = _audit(tmp_path)
    with (out / "mco" / "AETNA" / "findings.csv").open(newline="", encoding="utf-8") as handle:
        expected = [
            (row["claim_id"], row["claim_line_number"], row["rule_id"])
            for row in csv.DictReader(handle)
            if row["policy_id"] == PPS
        ]
    assert len(expected) == 9, "one PPS009 finding per line"

    book = openpyxl.load_workbook(out / "mco" / "AETNA" / "AETNA_claims_audit.xlsx")
    parts = [SHEET, f"{SHEET} (2)", f"{SHEET} (3)"]
    assert [n for n in book.sheetnames if n.startswith(SHEET)] == parts
    seen = []
    for number, name in enumerate(parts, start=1):
        title = book[name]["A1"].value
        heading = "Parent Peer Support (KMAP General Bulletin 22321)"
        assert title == (heading if number == 1 else f"{heading} (continued: part {number} of 3)")
        header, rows = _table(book[name], header_row=2)
        assert list(header) == [c for c in FINDING_COLUMNS if c not in STATE_ONLY_COLUMNS], name
        assert len(rows) == 3, name
        seen += [
            (
                row[header.index("claim_id")],
                str(row[header.index("claim_line_number")]),
                row[header.index("rule_id")],
            )
            for row in rows
        ]
    assert sorted(seen) == sorted(expected), "every finding once, none dropped, none twice"

    last_header, last_rows = _table(book[parts[-1]], header_row=2)
    claim_ids = {row[last_header.index("claim_id")] for row in last_rows}
    assert {"'=HYPERLINK(1)", "'@cmd"} <= claim_ids, "escaped on the later sheets too"
    assert all(isinstance(row[last_header.index("service_date")], dt.datetime) for row in last_rows)
    for name in parts:
        for row in book[name].iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"formula in {name}!{cell.coordinate}"

    note = book["Summary"]["A3"].value
    assert note is not None and "continue on further sheets" in note
    for name in parts:
        assert f"{name} (3 rows)" in note
    assert f"{SHEET}: 9 rows on 3 sheets" in note
    log_header, log_rows = _table(book["Summary"], header_row=3)
    assert log_header[0] == "policy_id" and len(log_rows) == 1


def test_findings_that_just_fit_their_sheet_stay_on_one_sheet_and_out_of_the_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbook, "EXCEL_MAX_ROWS", 12)  # title, blank, header and 9 findings
    out = _audit(tmp_path)
    book = openpyxl.load_workbook(out / "mco" / "AETNA" / "AETNA_claims_audit.xlsx")
    assert [n for n in book.sheetnames if n.startswith(SHEET)] == [SHEET]
    assert len(_table(book[SHEET], header_row=2)[1]) == 9
    # the rule texts (20 rows) do not fit 12 rows: only they continue
    note = book["Summary"]["A3"].value
    assert "Rules: 20 rows on 2 sheets" in note and SHEET not in note


def test_sheet_parts_split_at_excels_row_limit_header_and_titles_included() -> None:
    per_sheet = 1_048_576 - 3  # a findings sheet: title, blank line, header
    assert sheet_parts(SHEET, per_sheet, header_row=2) == [workbook.SheetPart(SHEET, 0, per_sheet)]
    assert sheet_parts(SHEET, per_sheet + 1, header_row=2) == [
        workbook.SheetPart(SHEET, 0, per_sheet),
        workbook.SheetPart(f"{SHEET} (2)", per_sheet, 1),
    ]
    assert sheet_parts(SHEET, 0, header_row=2) == [workbook.SheetPart(SHEET, 0, 0)]


def test_continuation_sheet_names_fit_excels_31_characters() -> None:
    names = sheet_names("Findings " + "x" * 40, 12)
    assert all(len(name) <= 31 for name in names)
    assert names[0] == ("Findings " + "x" * 40)[:31]
    assert names[11].endswith(" (12)") and len(set(names)) == 12


def _mco_package(height: int) -> pl.DataFrame:
    """`height` findings of one policy as an MCO's package shows them."""
    columns = [c for c in FINDING_COLUMNS if c not in STATE_ONLY_COLUMNS]
    frame = pl.DataFrame(
        {
            "policy_id": [PPS] * height,
            "payer": ["AETNA"] * height,
            "claim_id": [f"C{i:06d}" for i in range(height)],
            "claim_line_number": [1] * height,
            "paid_amount": [Decimal("52.40")] * height,
            "service_date": [dt.date(2023, 5, 2)] * height,
            "rule_id": ["PPS009"] * height,
        }
    )
    return frame.with_columns(
        pl.lit(None, pl.String).alias(c) for c in columns if c not in frame.columns
    ).select(columns)


def test_a_workbook_holds_every_finding_past_the_old_10000_limit(tmp_path: Path) -> None:
    findings = _mco_package(10_001)
    path = write_workbook(
        "AETNA", [policy_text(PPS)], {PPS: findings}, pl.DataFrame(), tmp_path / "a.xlsx", AS_OF
    )
    book = openpyxl.load_workbook(path, read_only=True)
    header, rows = _table(book[SHEET], header_row=2)
    assert len(rows) == 10_001
    assert rows[-1][header.index("claim_id")] == "C010000"
    assert rows[-1][header.index("paid_amount")] == 52.4


TRICKY_TEXT = [
    "a<b & c>d",
    "bell\x07and\x1f",
    "_x0041_ stays literal",
    " leading space",
    "trailing space ",
    "é, 漢字 and 🙂",
    None,
    "'=1+1",
]


def test_bulk_rows_read_back_exactly_as_xlsxwriters_own_cells(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "text": TRICKY_TEXT,
            "count": [1, -2, None, 4, 5, 6, 7, 2**40],
            "paid_amount": [Decimal("-3.00"), Decimal("0.10"), None] + [Decimal("1.05")] * 5,
            "day": [dt.date(2024, 2, 29), None] + [dt.date(1999, 12, 31)] * 6,
            "flag": [True, False, None, True, False, True, False, None],
        },
        schema_overrides={"paid_amount": pl.Decimal(18, 2)},
    )
    book = TableBook(tmp_path / "bulk.xlsx")
    book.table("Table", frame, titles=[("a title", "title")], header_row=2)
    book.close()

    # xlsxwriter's constant-memory mode writes inline strings, as the bulk rows are
    options = {"strings_to_formulas": False, "constant_memory": True}
    reference = xlsxwriter.Workbook(str(tmp_path / "cells.xlsx"), options)
    sheet = reference.add_worksheet("Table")
    date_format = reference.add_format({"num_format": "yyyy-mm-dd"})
    for row, values in enumerate(frame.iter_rows(), start=3):
        for col, value in enumerate(values):
            if isinstance(value, str):
                sheet.write_string(row, col, value)
            elif isinstance(value, bool):
                sheet.write_boolean(row, col, value)
            elif isinstance(value, dt.date):
                sheet.write_datetime(row, col, dt.datetime.combine(value, dt.time()), date_format)
            elif value is not None:
                sheet.write_number(row, col, float(value))
    reference.close()

    def body(path: Path) -> list[tuple[object, ...]]:
        rows = openpyxl.load_workbook(path)["Table"].iter_rows(min_row=4, values_only=True)
        return list(rows)

    assert body(tmp_path / "bulk.xlsx") == body(tmp_path / "cells.xlsx")
    loaded = openpyxl.load_workbook(tmp_path / "bulk.xlsx")["Table"]
    assert loaded["C4"].number_format == "$#,##0.00" and loaded["D4"].number_format == "yyyy-mm-dd"
    assert loaded.dimensions == "A1:E11"
