"""Untrusted extracts: nothing lost, nothing leaked, nothing run as a formula."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from pipelines.audit.run import run_audit
from pipelines.ingest.datasets import CLAIM_COLUMNS
from pipelines.reports.outputs import spreadsheet_safe
from tests.processes import descendants, running
from tests.test_ingest import table_counts
from tests.world import AS_OF, World, write_rows

COMMAND = Path(sys.executable).with_name("claims-audit")
FIXTURES = Path(__file__).parent / "fixtures" / "x12"
ADULT = "10000000002"
ADULT_DOB = "1990-01-01"


def _world() -> World:
    world = World()
    world.member(ADULT, dob=ADULT_DOB)
    world.ref["consents"].pop()
    return world


def _run(input_dir: Path, tmp_path: Path) -> None:
    run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)


def test_empty_header_only_and_unreadable_files_are_rejected_by_name(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "GOOD", ADULT)
    input_dir = world.write(tmp_path / "input")
    folder = input_dir / "claims" / "AETNA"
    (folder / "empty.csv").write_bytes(b"")
    write_rows(folder / "header_only.csv", list(CLAIM_COLUMNS), [])
    (folder / "damaged.parquet").write_bytes(b"PAR1 not really")
    (folder / "notes.docx").write_bytes(b"minutes of the meeting")
    summary = run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)
    reasons = {f.source_file: f.reason or "" for f in summary.ingest.with_status("rejected")}
    assert set(reasons) == {
        "claims/AETNA/empty.csv",
        "claims/AETNA/header_only.csv",
        "claims/AETNA/damaged.parquet",
        "claims/AETNA/notes.docx",
    }
    assert "empty" in reasons["claims/AETNA/empty.csv"]
    assert "no data rows" in reasons["claims/AETNA/header_only.csv"]
    assert "Parquet" in reasons["claims/AETNA/damaged.parquet"]
    assert "unsupported file type" in reasons["claims/AETNA/notes.docx"]
    findings = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    assert set(findings["claim_id"]) == {"GOOD"}


def test_formulas_are_escaped_in_csv_and_never_cells_in_xlsx(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", '=HYPERLINK("http://x")', ADULT)
    world.line("AETNA", "+SUM(A1)", ADULT, claim_line_start_date="2023-05-03")
    world.line("AETNA", "@cmd", ADULT, claim_line_start_date="2023-05-04")
    world.line("AETNA", "-7", ADULT, claim_line_start_date="2023-05-06", paid_amount="-3.00")
    _run(world.write(tmp_path / "input"), tmp_path)
    for path in (
        tmp_path / "out" / "findings.csv",
        tmp_path / "out" / "mco" / "AETNA" / "findings.csv",
    ):
        claim_ids = set(pl.read_csv(path, infer_schema=False)["claim_id"])
        assert claim_ids == {'\'=HYPERLINK("http://x")', "'+SUM(A1)", "'@cmd", "'-7"}
    book = openpyxl.load_workbook(tmp_path / "out" / "mco" / "AETNA" / "AETNA_claims_audit.xlsx")
    assert book.sheetnames == ["Summary", "Findings 22321", "Findings 23175", "Rules"]
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"formula in {sheet.title}!{cell.coordinate}"
    findings = book["Findings 22321"]
    assert findings["A1"].value == "Parent Peer Support (KMAP General Bulletin 22321)"
    header = [c.value for c in findings[3]]
    amounts = [
        r[header.index("paid_amount")] for r in findings.iter_rows(min_row=4, values_only=True)
    ]
    assert -3.0 in amounts, "amounts stay numbers"


def test_spreadsheet_safe_escapes_every_trigger_and_only_text() -> None:
    frame = pl.DataFrame(
        {"text": ["=1+1", "+1", "@SUM(A1)", "\tx", "\rx", "plain", "-3", None], "n": range(-4, 4)}
    )
    escaped = spreadsheet_safe(frame)
    assert escaped["text"].to_list() == [
        "'=1+1",
        "'+1",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "plain",
        "'-3",
        None,
    ]
    assert escaped["n"].to_list() == list(range(-4, 4))


def test_member_ids_and_birth_dates_never_reach_logs_or_console(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "GOOD", ADULT)
    world.line("AETNA", "BAD_DATE", ADULT, claim_line_start_date="20231399")
    world.line("AETNA", "BAD_UNITS", ADULT, service_unit_quantity="x")
    world.line("NOT_AN_MCO", "ELSEWHERE", ADULT)
    input_dir = world.write(tmp_path / "input")
    bad = input_dir / "claims" / "UHC" / "renamed_columns.csv"
    write_rows(bad, ["claim_id", "member_number"], [{"claim_id": "1", "member_number": ADULT}])
    args = ["run", "--input", input_dir, "--db", tmp_path / "a.duckdb", "--out", tmp_path / "out"]
    result = subprocess.run(
        [str(COMMAND), "-v", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout + result.stderr
    assert "REJECTED" in printed and "renamed_columns.csv" in printed
    # progress on a long run: each partition and output says what it did and how long it took
    assert "partition 1 of 1, " in printed and "findings.csv and the MCOs'" in printed
    assert "AETNA: workbook of " in printed and "provider summary: " in printed
    for member_id in {m["member_id"] for m in world.ref["members"]}:
        assert member_id not in printed
    assert ADULT_DOB not in printed and "20231399" not in printed


def test_837p_and_csv_give_identical_findings(tmp_path: Path) -> None:
    results = []
    for name in ("paid_encounters.837", "paid_encounters.csv"):
        world = World()
        root = tmp_path / name
        input_dir = world.write(root / "input")
        (input_dir / "claims" / "SUNFLOWER").mkdir(parents=True)
        shutil.copy(FIXTURES / name, input_dir / "claims" / "SUNFLOWER" / name)
        run_audit(input_dir, root / "a.duckdb", root / "out", as_of=AS_OF)
        findings = pl.read_csv(root / "out" / "findings.csv", infer_schema=False)
        results.append(findings.drop("detail").sort("claim_id", "claim_line_number", "rule_id"))
    x12, csv = results
    assert x12.height > 0
    assert x12.equals(csv)


def _big_delivery(path: Path, lines: int) -> None:
    # out of scope (H2017): the load is what is under test, not the audit of it
    row = World().line("AETNA", "X", ADULT, hcpcs_code="H2017")
    frame = pl.DataFrame([row] * lines).with_columns(
        (pl.lit("BIG") + pl.int_range(lines).cast(pl.String)).alias("claim_id")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.select(CLAIM_COLUMNS).write_csv(path)


@dataclass(frozen=True)
class NightBeforeTheKill:
    """A database after one night, with a 200,000-line delivery waiting in its input."""

    root: Path  # input/, a.duckdb and out/ as the first night left them
    before: dict[str, int]  # the database's table counts then


@pytest.fixture(scope="module")
def night_before_the_kill(tmp_path_factory: pytest.TempPathFactory) -> NightBeforeTheKill:
    """Built once for every kill point; each test works on a copy of it."""
    root = tmp_path_factory.mktemp("night_before_the_kill")
    world = _world()
    world.line("AETNA", "FIRST", ADULT)
    input_dir = world.write(root / "input")
    _run(input_dir, root)
    before = table_counts(root / "a.duckdb")
    _big_delivery(input_dir / "claims" / "AETNA" / "night2.csv", 200_000)
    return NightBeforeTheKill(root, before)


# where to kill, by the stage the run's progress (-v) has just announced: inside the
# transaction as the delivery starts loading, with it loaded but not committed, and after the
# commit as the outputs are written
@pytest.mark.parametrize(
    ("stage", "left"), [("ingest", "before"), ("responses", "before"), ("reports", "complete")]
)
def test_killed_run_leaves_the_database_as_before_or_complete(
    night_before_the_kill: NightBeforeTheKill, tmp_path: Path, stage: str, left: str
) -> None:
    shutil.copytree(night_before_the_kill.root, tmp_path, dirs_exist_ok=True)
    input_dir, before = tmp_path / "input", night_before_the_kill.before
    assert table_counts(tmp_path / "a.duckdb") == before
    args = ["-v", "run", "--input", input_dir, "--db", tmp_path / "a.duckdb"]
    process = subprocess.Popen(
        [str(COMMAND), *map(str, [*args, "--out", tmp_path / "o2"])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    announced = next((line for line in process.stderr if f"{stage} started" in line), None)
    helpers = descendants(process.pid)  # the Great Expectations worker among them
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    process.stderr.close()
    assert announced, f"the run ended without starting {stage}"
    after_kill = table_counts(tmp_path / "a.duckdb")
    deadline = time.monotonic() + 60
    while (alive := [pid for pid in helpers if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert helpers and not alive, "the run's helper processes outlive it"
    # the next run completes the work, whatever point the kill reached
    _run(input_dir, tmp_path)
    complete = table_counts(tmp_path / "a.duckdb")
    assert after_kill == {"before": before, "complete": complete}[left]
    assert complete["raw.claim_lines"] == before["raw.claim_lines"] + 200_000
