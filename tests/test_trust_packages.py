"""What leaves the state: formulas never run, and an MCO's package names only its own data.

Issue 12, defects 4 (formula escaping missed `-`) and 5 (an MCO's package named another
MCO's claims). Each test runs the real audit (DuckDB file, Great Expectations) and reads
the files as an MCO or an analyst would open them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import openpyxl
import polars as pl

from pipelines.audit.run import run_audit
from pipelines.cli import main as cli
from tests.release_db import empty_release_0_1_database
from tests.world import AS_OF, MCOS, PEER, World, luhn_npi

ANALYST = "Dana Whitfield"
MCO_SAFE_TAIL = "same member, provider, DOS, code, modifiers and units"


def _run(world: World, tmp_path: Path) -> Path:
    input_dir = world.write(tmp_path / "input")
    run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)
    return tmp_path / "out"


def _cells(path: Path) -> list[str]:
    """Every cell of a CSV, or of every sheet of an XLSX workbook, as text."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [cell for row in csv.reader(handle) for cell in row]
    assert path.suffix == ".xlsx", f"{path.name}: an MCO folder holds only CSV and XLSX"
    book = openpyxl.load_workbook(path, read_only=True)
    return [
        str(value)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for value in row
        if value is not None
    ]


def _package_cells(out: Path, payer: str) -> dict[str, list[str]]:
    folder = out / "mco" / payer
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert files, f"no package for {payer}"
    return {p.name: _cells(p) for p in files}


def _carried_only_by_others(world: World, payer: str) -> set[str]:
    """Claim IDs, member IDs and NPIs on other MCOs' claims and on none of `payer`'s."""

    def carried(rows: list[dict[str, str]]) -> set[str]:
        fields = ("claim_id", "member_id", "rendering_npi", "billing_npi")
        return {row[f] for row in rows for f in fields if row[f]}

    own = carried(world.claims.get(payer, []))
    others = set().union(*(carried(rows) for p, rows in world.claims.items() if p != payer))
    return others - own


# defect 5: an MCO's package names another MCO's claims ------------------------------------

SHARED = "40000000001"  # enrolled with UHC; AETNA bills a copy of UHC's line
BILLED_TWICE = "40000000002"  # enrolled with AETNA; UHC bills a copy of AETNA's line
AETNA_ONLY = "40000000003"  # two AETNA claims for one service: a duplicate within one MCO
UHC_ONLY = "40000000004"  # seen by a provider only UHC's claims name
CAREGIVER_ID = "40000000099"  # a SUNFLOWER child's caregiver, billed by AETNA as the member
UHC_PEER = luhn_npi(222333444)
GROUP_PEER = luhn_npi(333444555)
AETNA_GROUP = [f"4100000000{i}" for i in range(5)]
SUNFLOWER_GROUP = [f"4200000000{i}" for i in range(4)]


def _world_across_mcos() -> World:
    world = World()
    world.provider(UHC_PEER)
    world.provider(GROUP_PEER)
    world.member(SHARED, payer="UHC")
    world.member(BILLED_TWICE, payer="AETNA")
    world.member(AETNA_ONLY, payer="AETNA")
    world.member(UHC_ONLY, payer="UHC")
    # GEN001 across MCOs, both ways; GEN002 on the copy billed by the MCO not enrolling them
    world.line("UHC", "U-KEPT", SHARED, paid_date="2023-05-10")
    world.line("AETNA", "A-COPY", SHARED, paid_date="2023-05-20")
    world.line("AETNA", "A-FIRST", BILLED_TWICE, paid_date="2023-05-05")
    world.line("UHC", "U-LATER", BILLED_TWICE, paid_date="2023-05-25")
    # GEN001 within one MCO: the MCO's own claim may be named
    world.line(
        "AETNA", "A-ORIG", AETNA_ONLY, claim_line_start_date="2023-06-01", paid_date="2023-06-10"
    )
    world.line(
        "AETNA", "A-AGAIN", AETNA_ONLY, claim_line_start_date="2023-06-01", paid_date="2023-06-20"
    )
    # a UHC line before the policy took effect, with a provider no other MCO's claim names
    world.line(
        "UHC", "U-EARLY", UHC_ONLY, rendering_npi=UHC_PEER, claim_line_start_date="2022-12-01"
    )
    # PPS002: one group session of nine members billed to two MCOs
    for i, member_id in enumerate(AETNA_GROUP + SUNFLOWER_GROUP):
        payer = "AETNA" if member_id in AETNA_GROUP else "SUNFLOWER"
        world.member(member_id, payer=payer)
        world.line(
            payer,
            f"{payer[0]}-GROUP{i}",
            member_id,
            rendering_npi=GROUP_PEER,
            hcpcs_modifier_1="HQ",
            claim_line_start_date="2023-08-01",
            session_id="S-SPAN",
        )
    # PPS007: AETNA bills the Medicaid ID of a SUNFLOWER child's caregiver
    sunflower_caregiver = next(
        row for row in world.ref["caregivers"] if row["member_id"] == SUNFLOWER_GROUP[0]
    )
    sunflower_caregiver.update(caregiver_id="CG-S-CHILD-1", medicaid_id=CAREGIVER_ID)
    world.line("AETNA", "A-CAREGIVER", CAREGIVER_ID, claim_line_start_date="2023-09-01")
    return world


def _finding(findings: pl.DataFrame, claim_id: str, rule_id: str) -> dict[str, str]:
    rows = findings.filter((pl.col("claim_id") == claim_id) & (pl.col("rule_id") == rule_id))
    assert rows.height == 1, (claim_id, rule_id)
    return rows.row(0, named=True)


def test_an_mco_package_never_names_another_mcos_claims_members_providers_or_analysts(
    tmp_path: Path,
) -> None:
    world = _world_across_mcos()
    _run(world, tmp_path)
    waived = cli.main(
        [
            "waive",
            "--db",
            str(tmp_path / "a.duckdb"),
            "AETNA",
            "A-COPY",
            "1",
            "GEN001",
            "--reason",
            "recouped through UHC claim U-KEPT",
            "--analyst",
            ANALYST,
        ]
    )
    assert waived == 0
    out = _run(world, tmp_path)  # the outputs are written again from the log

    # the state's own file keeps the full detail and the analyst's record
    state = pl.read_csv(out / "findings.csv", infer_schema=False)
    copy = _finding(state, "A-COPY", "GEN001")
    assert copy["detail"].startswith("duplicate of UHC claim U-KEPT line 1 (paid 2023-05-10)")
    assert copy["waived_by"] == ANALYST and "U-KEPT" in copy["waived_reason"]
    assert _finding(state, "A-COPY", "GEN002")["detail"] == (
        "member enrolled with UHC, not AETNA, on DOS 2023-05-02"
    )
    assert "CG-S-CHILD-1" in _finding(state, "A-CAREGIVER", "PPS007")["detail"]

    # each MCO's package: every cell of every file, against what only other MCOs carry
    for payer in MCOS:
        forbidden = _carried_only_by_others(world, payer)
        forbidden |= {p for p in world.claims if p != payer}  # other MCOs' payer codes
        forbidden |= {ANALYST, "CG-S-CHILD-1"}
        for name, cells in _package_cells(out, payer).items():
            leaks = {token for token in forbidden for cell in cells if token in cell}
            assert not leaks, f"mco/{payer}/{name} names {sorted(leaks)}"
    assert UHC_PEER in _carried_only_by_others(world, "AETNA"), "the check covers NPIs"
    assert SUNFLOWER_GROUP[0] in _carried_only_by_others(world, "AETNA"), "and members"

    # what the MCO is told instead, and its own claims still named
    aetna = pl.read_csv(out / "mco" / "AETNA" / "findings.csv", infer_schema=False)
    assert not {"waived_by", "waived_reason", "mco_detail"} & set(aetna.columns)
    assert _finding(aetna, "A-COPY", "GEN001")["detail"] == (
        f"duplicate of a line paid by another MCO on 2023-05-10: {MCO_SAFE_TAIL}"
    )
    assert _finding(aetna, "A-COPY", "GEN001")["status"] == "waived"
    assert _finding(aetna, "A-COPY", "GEN002")["detail"] == (
        "member enrolled with another MCO, not AETNA, on DOS 2023-05-02"
    )
    assert _finding(aetna, "A-AGAIN", "GEN001")["detail"] == (
        f"duplicate of AETNA claim A-ORIG line 1 (paid 2023-06-10): {MCO_SAFE_TAIL}"
    )
    assert _finding(aetna, "A-CAREGIVER", "PPS007")["detail"] == (
        "the billed ID is a caregiver's Medicaid ID, not the identified member's"
    )
    assert "had 9 members" in _finding(aetna, "A-GROUP0", "PPS002")["detail"]
    uhc = pl.read_csv(out / "mco" / "UHC" / "findings.csv", infer_schema=False)
    assert _finding(uhc, "U-LATER", "GEN001")["detail"] == (
        f"duplicate of a line paid by another MCO on 2023-05-05: {MCO_SAFE_TAIL}"
    )
    book = openpyxl.load_workbook(out / "mco" / "AETNA" / "AETNA_claims_audit.xlsx")
    header = [cell.value for cell in book["Findings 22321"][3]]
    assert "detail" in header and not {"waived_by", "waived_reason", "mco_detail"} & set(header)


def test_findings_logged_before_mco_details_never_show_their_full_detail(tmp_path: Path) -> None:
    # a database from before MCO details (a build before release 0.1): the column is
    # missing, a closed finding names UHC
    con = duckdb.connect(str(empty_release_0_1_database(tmp_path / "a.duckdb")))
    con.execute("alter table audit.findings drop column mco_detail")
    con.execute(
        "insert into audit.findings values ('AETNA', 'A-OLD', 1, 'GEN001', 'A-OLD', "
        "'40000000001', $peer, '2023-05-02', 52.40, '2023-05-20', 'violation', "
        "'duplicate of UHC claim U-SECRET line 1 (paid 2023-05-10)', 'resolved_reprocessed', "
        "'2025-01-31', '2025-01-31', '2025-02-28', false, null, null)",
        {"peer": PEER},
    )
    con.close()
    world = World()
    world.member("40000000005")
    world.line("AETNA", "A-NEW", "40000000005")
    out = _run(world, tmp_path)
    with duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True) as upgraded:
        columns = [row[0] for row in upgraded.sql("describe audit.findings").fetchall()]
    assert "mco_detail" in columns
    state = pl.read_csv(out / "findings.csv", infer_schema=False)
    assert "U-SECRET" in _finding(state, "A-OLD", "GEN001")["detail"]
    for name, cells in _package_cells(out, "AETNA").items():
        assert not any("U-SECRET" in cell for cell in cells), name
    aetna = pl.read_csv(out / "mco" / "AETNA" / "findings.csv", infer_schema=False)
    assert _finding(aetna, "A-OLD", "GEN001")["detail"].startswith("(no MCO detail on record")


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

    book = openpyxl.load_workbook(out / "mco" / "AETNA" / "AETNA_claims_audit.xlsx")
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                text = cell.value if isinstance(cell.value, str) else ""
                assert not text.startswith(("=", "+", "-", "@", "\t", "\r")), (
                    f"{sheet.title}!{cell.coordinate}: {text!r}"
                )
    findings = book["Findings 22321"]
    header = [cell.value for cell in findings[3]]
    by_claim = {
        row[header.index("claim_id")]: row
        for row in findings.iter_rows(min_row=4, values_only=True)
    }
    assert set(by_claim) == {"'-7", "7-A"}
    assert by_claim["'-7"][header.index("paid_amount")] == -3.0
    summary = list(book["Summary"].iter_rows(values_only=True))
    log_header = summary[3]
    assert summary[4][log_header.index("amount_open")] == 49.4
