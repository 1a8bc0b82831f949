"""Reference snapshots a bad export cannot turn into findings, and choices among reference
rows that do not depend on the order DuckDB returns them in (issue 12, defects 6 and 7)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.airflow.tasks import task_load_references
from pipelines.audit.evidence import DELIVERY_ORDER
from pipelines.audit.facts import REFERENCE_TABLES, build_facts, read_reference
from pipelines.audit.run import RunSummary, run_audit
from pipelines.claims.versions import current_in_scope_lines
from pipelines.cli import main as cli
from pipelines.cli.commands import format_summary, write_summary_json
from pipelines.config import locations_from_env
from pipelines.db import connect
from pipelines.ingest.load import ACCEPTED, FIRST_SNAPSHOT
from pipelines.ingest.values import EXTRA_COLUMNS
from tests.world import AS_OF, PEER, World, pack_audit, write_rows

MEMBERS = [f"2000000{i:04d}" for i in range(20)]  # 20 rows: one row is exactly 5%
ADULT = MEMBERS[0]
DAY_TWO = AS_OF + dt.timedelta(days=1)
DAY_THREE = AS_OF + dt.timedelta(days=2)
MEMBER_COLUMNS = ["member_id", "date_of_birth"]


def _world() -> World:
    world = World()
    world.member(ADULT, dob="1990-01-01")
    for member_id in MEMBERS[1:]:
        world.member(member_id)
    world.ref["consents"] = [c for c in world.ref["consents"] if c["member_id"] != ADULT]
    for i, member_id in enumerate(MEMBERS):
        world.line("AETNA", f"A{i}", member_id)
    return world


def _members_file(input_dir: Path, rows: list[dict[str, str]]) -> None:
    write_rows(input_dir / "reference" / "members.csv", MEMBER_COLUMNS, rows)


def _members(world: World, *, unreadable: int = 0, keep: int | None = None) -> list[dict[str, str]]:
    """The world's member rows, the first `unreadable` with a birth date no reader accepts."""
    rows = [dict(r) for r in world.ref["members"][:keep]]
    for row in rows[:unreadable]:
        row["date_of_birth"] = "unknown"
    return rows


def _run(
    input_dir: Path, tmp_path: Path, as_of: dt.date, accept_references: tuple[str, ...] = ()
) -> RunSummary:
    return run_audit(
        input_dir,
        tmp_path / "audit.duckdb",
        tmp_path / f"out-{as_of}",
        as_of=as_of,
        accept_references=accept_references,
    )


def _open_findings(tmp_path: Path, as_of: dt.date) -> set[tuple[str, str]]:
    findings = pl.read_csv(tmp_path / f"out-{as_of}" / "findings.csv", infer_schema=False)
    rows = findings.filter(pl.col("status") == "open")
    return set(zip(rows["claim_id"], rows["rule_id"], strict=True))


def _deliveries(tmp_path: Path, status: str) -> list[tuple[object, ...]]:
    # attached under another name: a file called audit.duckdb shadows the audit schema
    con = duckdb.connect()
    try:
        con.execute("attach $p as db (read_only)", {"p": str(tmp_path / "audit.duckdb")})
        return con.execute(
            "select source_file, rows_quarantined from db.audit.deliveries where status = $s "
            "order by delivery_id",
            {"s": status},
        ).fetchall()
    finally:
        con.close()


def _status(summary: RunSummary, dataset: str = "members") -> str:
    return next(f.status for f in summary.ingest.files if f.dataset == dataset)


@pytest.fixture(scope="module")
def audited_day_one(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The world's first night audited once for the module: input/, audit.duckdb, outputs."""
    root = tmp_path_factory.mktemp("day_one")
    _run(_world().write(root / "input"), root, AS_OF)
    assert _open_findings(root, AS_OF) == {("A0", "PPS009")}
    return root


@pytest.fixture
def day_one(audited_day_one: Path, tmp_path: Path) -> tuple[World, Path]:
    """A copy of the first night in tmp_path, for the test to deliver the next ones to."""
    shutil.copytree(audited_day_one, tmp_path, dirs_exist_ok=True)
    return _world(), tmp_path / "input"


@pytest.fixture(scope="module")
def audited_held_back(
    audited_day_one: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunSummary, Path]:
    """The second night audited once for the module, every members row unreadable: its
    summary and its folder (input/, audit.duckdb, outputs). Read it, change only a copy."""
    root = tmp_path_factory.mktemp("held_back")
    shutil.copytree(audited_day_one, root, dirs_exist_ok=True)
    _members_file(root / "input", _members(_world(), unreadable=len(MEMBERS)))
    return _run(root / "input", root, DAY_TWO), root


# defect 6: a broken reference snapshot replaces a good one ---------------------------------


def test_broken_members_file_is_held_back_and_the_findings_do_not_change(
    tmp_path: Path, audited_held_back: tuple[RunSummary, Path]
) -> None:
    summary, night = audited_held_back
    assert _status(summary) == "held_back"
    # the good snapshot stays in use: no wave of PPS007, nothing new to audit
    assert _open_findings(night, DAY_TWO) == {("A0", "PPS009")}
    assert not summary.audited
    text = format_summary(summary, night / "out")
    assert "HELD BACK reference/members.csv: 20 of its 20 rows are quarantined" in text
    assert "more than the 5% allowed" in text
    write_summary_json(summary, tmp_path / "run_summary.json")
    record = json.loads((tmp_path / "run_summary.json").read_text())
    assert [h["source_file"] for h in record["references_held_back"]] == ["reference/members.csv"]
    # recorded with its own status; its rows are in quarantine.csv, where the analyst looks
    assert _deliveries(night, "held_back") == [("reference/members.csv", 20)]
    quarantine = pl.read_csv(night / f"out-{DAY_TWO}" / "quarantine.csv", infer_schema=False)
    assert quarantine.filter(pl.col("source_file") == "reference/members.csv").height == 20
    for line in text.splitlines():
        assert not any(member_id in line for member_id in MEMBERS)


def test_strict_exits_2_naming_the_held_back_file_and_accept_reference_takes_it(
    tmp_path: Path, day_one: tuple[World, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    world, input_dir = day_one
    _members_file(input_dir, _members(world, unreadable=len(MEMBERS)))
    args = ["run", "--input", str(input_dir), "--db", str(tmp_path / "audit.duckdb")]
    out = ["--out", str(tmp_path / "out"), "--as-of", DAY_TWO.isoformat()]
    assert cli.main([*args, *out]) == 0
    assert "HELD BACK reference/members.csv" in capsys.readouterr().out
    assert cli.main([*args, *out, "--strict"]) == 2
    printed = capsys.readouterr()
    assert "held back" in printed.err and "reference/members.csv" in printed.err
    assert "held back earlier, unchanged: reference/members.csv" in printed.out
    # a name that is no reference file of the folder is bad usage, not a silent no-op
    assert cli.main([*args, *out, "--accept-reference", "member.csv"]) == 2
    assert "--accept-reference member.csv" in capsys.readouterr().err
    accepted = [*args, *out, "--strict", "--accept-reference", "reference/members.csv"]
    assert cli.main(accepted) == 0
    printed = capsys.readouterr()
    assert "note: taken reference/members.csv: 20 of its 20 rows are quarantined" in printed.out
    assert ACCEPTED in printed.out
    findings = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    # taken as asked: an empty member file, so every line is billed for an unknown member
    assert set(findings.filter(pl.col("status") == "open")["rule_id"]) == {"PPS007"}
    assert _deliveries(tmp_path, "loaded")[-1:] == [("reference/members.csv", 20)]


def test_snapshot_with_fewer_than_half_the_rows_is_held_back_and_exactly_half_is_taken(
    tmp_path: Path, day_one: tuple[World, Path]
) -> None:
    world, input_dir = day_one
    _members_file(input_dir, _members(world, keep=9))
    held = _run(input_dir, tmp_path, DAY_TWO)
    assert _status(held) == "held_back"
    assert "it has 9 rows, fewer than 50% of the 20 rows of the snapshot in use" in str(
        held.ingest.with_status("held_back")[0].reason
    )
    assert _open_findings(tmp_path, DAY_TWO) == {("A0", "PPS009")}
    _members_file(input_dir, _members(world, keep=10))
    taken = _run(input_dir, tmp_path, DAY_THREE)
    assert _status(taken) == "loaded"
    # the members left out are no longer on file: the half that was taken decides now
    assert ("A10", "PPS007") in _open_findings(tmp_path, DAY_THREE)


def test_exactly_five_percent_quarantined_is_taken_and_more_is_held_back(
    tmp_path: Path, day_one: tuple[World, Path]
) -> None:
    world, input_dir = day_one
    _members_file(input_dir, _members(world, unreadable=2))  # 10%
    assert _status(_run(input_dir, tmp_path, DAY_TWO)) == "held_back"
    _members_file(input_dir, _members(world, unreadable=1))  # exactly 5%
    taken = _run(input_dir, tmp_path, DAY_THREE)
    assert _status(taken) == "loaded"
    assert not any(f.beyond_limits for f in taken.ingest.files)
    # the adult's row is the one quarantined: the snapshot taken does not know the adult
    assert _open_findings(tmp_path, DAY_THREE) == {("A0", "PPS007")}


def test_first_snapshot_is_taken_even_outside_the_limits_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = _world()
    input_dir = world.write(tmp_path / "input")
    _members_file(input_dir, _members(world, unreadable=3))
    args = ["run", "--input", str(input_dir), "--db", str(tmp_path / "audit.duckdb")]
    out = ["--out", str(tmp_path / "out"), "--as-of", AS_OF.isoformat(), "--strict"]
    assert cli.main([*args, *out]) == 2  # taken, and --strict says nobody accepted it
    printed = capsys.readouterr()
    assert "note: taken reference/members.csv: 3 of its 20 rows are quarantined" in printed.out
    assert FIRST_SNAPSHOT in printed.out
    assert "first reference snapshot(s) taken outside the limits" in printed.err
    record = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert record["references_taken_beyond_limits"] == [
        {
            "source_file": "reference/members.csv",
            "reason": "reference/members.csv: 3 of its 20 rows are quarantined, "
            "more than the 5% allowed",
            "taken_because": FIRST_SNAPSHOT,
        }
    ]
    assert ("reference/members.csv", 3) in _deliveries(tmp_path, "loaded")


def test_held_back_file_sent_again_unchanged_is_held_back_again_and_recorded_once(
    tmp_path: Path, audited_held_back: tuple[RunSummary, Path]
) -> None:
    summary, night = audited_held_back
    assert _status(summary) == "held_back"
    shutil.copytree(night, tmp_path, dirs_exist_ok=True)  # to send the file again to
    input_dir = tmp_path / "input"
    again = _run(input_dir, tmp_path, DAY_THREE)
    assert _status(again) == "already_held_back"  # tried again, not taken as current
    assert "held back earlier, unchanged: reference/members.csv" in format_summary(
        again, tmp_path / "out"
    )
    assert _deliveries(tmp_path, "held_back") == [("reference/members.csv", 20)]
    quarantine = pl.read_csv(tmp_path / f"out-{DAY_THREE}" / "quarantine.csv", infer_schema=False)
    assert quarantine.filter(pl.col("source_file") == "reference/members.csv").height == 20
    # taken later on request: its rows are listed once, under the delivery that loaded it
    taken = _run(input_dir, tmp_path, DAY_THREE, accept_references=("members.csv",))
    assert _status(taken) == "loaded"
    quarantine = pl.read_csv(tmp_path / f"out-{DAY_THREE}" / "quarantine.csv", infer_schema=False)
    assert quarantine.filter(pl.col("source_file") == "reference/members.csv").height == 20


def test_nightly_run_after_a_held_back_snapshot_stays_incremental(
    tmp_path: Path, day_one: tuple[World, Path]
) -> None:
    world, input_dir = day_one
    world.claims = {}
    world.line("AETNA", "NEW", MEMBERS[1], claim_line_start_date="2023-07-01")
    world.write(input_dir, claim_file="day2.csv")
    _members_file(input_dir, _members(world, unreadable=len(MEMBERS)))
    summary = _run(input_dir, tmp_path, DAY_TWO)
    assert _status(summary) == "held_back"
    assert summary.audited
    # a held-back file is no new reference data: only the new claim is looked at again
    assert (summary.lines_audited, summary.in_scope_lines) == (1, 21)
    assert _open_findings(tmp_path, DAY_TWO) == {("A0", "PPS009")}


def test_nightly_task_logs_the_held_back_file_and_reads_accepts_from_the_environment(
    tmp_path: Path, day_one: tuple[World, Path], caplog: pytest.LogCaptureFixture
) -> None:
    world, input_dir = day_one
    _members_file(input_dir, _members(world, unreadable=len(MEMBERS)))
    db = str(tmp_path / "audit.duckdb")
    with caplog.at_level(logging.WARNING):
        counts = task_load_references(str(input_dir), db, DAY_TWO.isoformat())
    assert counts["references_held_back"] == 1
    assert "reference/members.csv" in caplog.text
    assert not any(member_id in caplog.text for member_id in MEMBERS)
    where = locations_from_env({"CLAIMS_AUDIT_ACCEPT_REFERENCE": " members.csv, providers.csv "})
    assert where.accept_references == ("members.csv", "providers.csv")
    counts = task_load_references(
        str(input_dir), db, DAY_TWO.isoformat(), accept_references=where.accept_references
    )
    assert counts["references_held_back"] == 0
    assert counts["deliveries_loaded"] == 1


# defect 7: results depend on DuckDB's row order --------------------------------------------


def _conflicting_world() -> World:
    """A member, the peer provider and a caregiver each with two different birth dates:
    the last row of each file tells the other story than the first."""
    world = World()
    child = "10000000001"
    world.member(child, dob="1990-01-01")  # first row: an adult (no consent: PPS009)
    world.ref["consents"].pop()
    world.ref["members"].append(
        {"member_id": child, "date_of_birth": "2012-05-01"}
    )  # last: a child
    # the peer: first row 15 years apart from the caregiver, last row 1 year apart (PPS006)
    world.ref["providers"][0]["date_of_birth"] = "1970-01-01"
    world.provider(PEER, date_of_birth="")  # a blank in between is no value
    world.provider(PEER, date_of_birth="1984-01-01")
    caregiver = dict(world.ref["caregivers"][-1])
    world.ref["caregivers"][-1]["date_of_birth"] = "1960-01-01"
    world.ref["caregivers"].append(caregiver)  # last: 1985-01-01
    world.line("AETNA", "C1", child)
    return world


def test_reference_rows_with_two_birth_dates_give_the_last_in_the_file_whatever_the_row_order(
    tmp_path: Path,
) -> None:
    world = _conflicting_world()
    input_dir = world.write(tmp_path / "input")
    summary = _run(input_dir, tmp_path, AS_OF)
    # the documented rule: the last birth date in the file, not whichever comes first
    assert _open_findings(tmp_path, AS_OF) == {("C1", "PPS006")}
    con = connect(tmp_path / "audit.duckdb")
    try:
        audit = pack_audit()
        lines = current_in_scope_lines(con, audit.pack.codes)
        ref = read_reference(con, REFERENCE_TABLES)
        # each table whole but for the extra columns no rule reads, in delivery order and with
        # DuckDB's types (it comes through a file)
        for name, table in ref.items():
            in_db = con.sql(
                f"select * exclude ({EXTRA_COLUMNS}) from ref.{name} "
                f"order by {', '.join(DELIVERY_ORDER)}"
            ).pl()
            assert table.equals(in_db) and table.schema == in_db.schema, name
    finally:
        con.close()
    chosen = [
        "member_date_of_birth",
        "peer_date_of_birth",
        "largest_age_gap_years",
        "age_gap_known_for_every_candidate",
        "age_gap_evidence",
    ]
    expected = build_facts(lines, ref, audit.pack, audit.general).select(chosen)
    # the last rows: caregiver born 1985-01-01, peer 1984-01-01, one whole year apart
    assert expected.row(0) == (
        dt.date(2012, 5, 1),
        dt.date(1984, 1, 1),
        1,
        True,
        "peer provider NPI " + PEER + " is less than 3 years apart in age from caregiver(s) "
        "CG-0001",
    )
    for seed in range(6):  # the rows in any order DuckDB might hand them over
        shuffled = {
            name: table.sample(fraction=1.0, shuffle=True, seed=seed) for name, table in ref.items()
        }
        built = build_facts(lines, shuffled, audit.pack, audit.general)
        assert built.select(chosen).equals(expected)
    text = format_summary(summary, tmp_path / "out")
    assert (
        "data conflict: reference/members.csv: 1 member_id with different date_of_birth "
        "values; the last in the file is used" in text
    )
    assert "reference/providers.csv: 1 npi with different date_of_birth" in text
    assert "reference/caregivers.csv: 1 caregiver_id with different date_of_birth" in text
    assert "10000000001" not in text and "1990-01-01" not in text
    write_summary_json(summary, tmp_path / "run_summary.json")
    conflicts = json.loads((tmp_path / "run_summary.json").read_text())["data_conflicts"]
    assert {(c["source_file"], c["key_column"], c["keys"]) for c in conflicts} == {
        ("reference/caregivers.csv", "caregiver_id", 1),
        ("reference/members.csv", "member_id", 1),
        ("reference/providers.csv", "npi", 1),
    }


def test_same_birth_date_twice_or_a_blank_beside_one_is_no_data_conflict(tmp_path: Path) -> None:
    world = _world()
    world.ref["members"].append(dict(world.ref["members"][0]))  # the same value twice
    world.ref["members"].append({"member_id": MEMBERS[1], "date_of_birth": ""})
    summary = _run(world.write(tmp_path / "input"), tmp_path, AS_OF)
    assert summary.data_conflicts == []
    assert "data conflict" not in format_summary(summary, tmp_path / "out")
