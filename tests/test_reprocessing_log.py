"""The reprocessing log across runs, and the analyst's findings, explain and waive tools."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipelines.db import connect, execute, load_temp_table, transaction
from pipelines.log.analyst import FindingFilter, explain, select_findings, waive
from pipelines.log.reprocessing_log import FindingTwice, update_log
from tests.world import World, audit, pack_audit

COMMAND = Path(sys.executable).with_name("claims-audit")
ADULT = "10000000002"
PPS = "h0038_parent_peer_support"
CHILD = "10000000001"


def _world() -> World:
    world = World()
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"].pop()  # every adult line breaks PPS009
    world.member(CHILD)
    return world


def _history(db: Path, claim_id: str) -> list[tuple[object, ...]]:
    con = connect(db)
    try:
        return execute(
            con,
            "select rule_id, changed_on, from_status, to_status, note from audit.finding_history "
            "where claim_id = $claim and from_status is distinct from to_status "
            "order by changed_on, to_status",
            {"claim": claim_id},
        )
    finally:
        con.close()


def _one_adult_line() -> World:
    world = _world()
    world.line("AETNA", "ADULT1", ADULT)
    return world


@pytest.fixture(scope="module")
def adult1_audited(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder (input, audit.duckdb, out) after the first night of `_one_adult_line`, one
    open PPS009 finding (ADULT1) on 2025-06-30, audited once for the tests that start there;
    each changes a copy of it."""
    root = tmp_path_factory.mktemp("adult1_audited")
    audit(_one_adult_line(), root, as_of=dt.date(2025, 6, 30))
    return root


def _copy_db(night: Path, tmp_path: Path) -> Path:
    """The test's own copy of a shared night's database."""
    return Path(shutil.copy(night / "audit.duckdb", tmp_path / "audit.duckdb"))


def test_waived_finding_stays_waived_with_its_reason_and_analyst(
    adult1_audited: Path, tmp_path: Path
) -> None:
    world = _one_adult_line()
    shutil.copytree(adult1_audited, tmp_path, dirs_exist_ok=True)
    con = connect(tmp_path / "audit.duckdb")
    previous = waive(
        con,
        ("aetna", "ADULT1", 1, "pps009"),
        reason="consent found in the paper record",
        analyst="J. Rivera",
        on=dt.date(2025, 7, 2),
    )
    con.close()
    assert previous == "open"
    world.line("AETNA", "ADULT2", ADULT, claim_line_start_date="2023-06-01")
    findings = audit(world, tmp_path, as_of=dt.date(2025, 7, 3))
    statuses = dict(zip(findings["claim_id"], findings["status"], strict=True))
    assert statuses == {"ADULT1": "waived", "ADULT2": "open"}
    waived = findings.filter(pl.col("claim_id") == "ADULT1")
    assert waived["waived_by"][0] == "J. Rivera"
    assert waived["last_found_date"][0] == "2025-07-03"
    assert _history(tmp_path / "audit.duckdb", "ADULT1") == [
        ("PPS009", dt.date(2025, 6, 30), None, "open", "first found"),
        (
            "PPS009",
            dt.date(2025, 7, 2),
            "open",
            "waived",
            "waived by J. Rivera: consent found in the paper record",
        ),
    ]


def test_resolved_finding_that_breaks_again_reopens_with_history(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "PLAN", CHILD)
    world.ref["treatment_plans"][-1]["signed_date"] = "2023-06-01"  # after the DOS
    first = audit(world, tmp_path, as_of=dt.date(2025, 6, 30))
    assert first.filter(pl.col("rule_id") == "PPS008")["status"].to_list() == ["open"]
    world.ref["treatment_plans"][-1]["signed_date"] = "2023-04-01"  # the record was corrected
    second = audit(world, tmp_path, as_of=dt.date(2025, 7, 1))
    pps008 = second.filter(pl.col("rule_id") == "PPS008")
    assert pps008["status"].to_list() == ["resolved_data_corrected"]
    assert pps008["resolved_date"].to_list() == ["2025-07-01"]
    world.ref["treatment_plans"][-1]["signed_date"] = "2023-06-02"  # and broken again
    third = audit(world, tmp_path, as_of=dt.date(2025, 7, 2))
    pps008 = third.filter(pl.col("rule_id") == "PPS008")
    assert pps008["status"].to_list() == ["open"]
    assert pps008["first_found_date"].to_list() == ["2025-06-30"]
    assert [(h[2], h[3]) for h in _history(tmp_path / "audit.duckdb", "PLAN")] == [
        (None, "open"),
        ("open", "resolved_data_corrected"),
        ("resolved_data_corrected", "open"),
    ]


def test_void_resolves_and_replacement_supersedes_keeping_first_found(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "KEEP", ADULT, paid_date="2023-05-10")
    world.line("AETNA", "DROP", ADULT, paid_date="2023-05-10", claim_line_start_date="2023-06-01")
    audit(world, tmp_path, as_of=dt.date(2025, 6, 30))
    world.claims["AETNA"] = []
    world.line(
        "AETNA",
        "KEEP2",
        ADULT,
        claim_frequency_code="7",
        original_claim_id="KEEP",
        paid_date="2025-07-01",
    )
    world.line(
        "AETNA",
        "DROPV",
        ADULT,
        claim_frequency_code="8",
        original_claim_id="DROP",
        paid_date="2025-07-01",
        paid_amount="-52.40",
    )
    findings = audit(world, tmp_path, as_of=dt.date(2025, 7, 5))
    rows = {r["claim_id"]: r for r in findings.iter_rows(named=True)}
    assert rows["KEEP"]["status"] == "superseded"
    assert rows["KEEP2"]["status"] == "open"
    assert rows["KEEP2"]["first_found_date"] == "2025-06-30"
    assert rows["DROP"]["status"] == "resolved_reprocessed"
    assert rows["DROP"]["resolved_date"] == "2025-07-05"
    assert "DROPV" not in rows


def test_findings_filter_and_explain(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "ADULT1", ADULT, claim_line_start_date="2022-12-31")
    world.line("UHC", "OTHER", "19999999999")
    audit(world, tmp_path)
    con = connect(tmp_path / "audit.duckdb")
    try:
        only = select_findings(con, FindingFilter(payer="aetna", rule_id="PPS001"))
        assert only.select("claim_id", "rule_id").rows() == [("ADULT1", "PPS001")]
        assert select_findings(con, FindingFilter(status="waived")).height == 0
        text = explain(con, [pack_audit()], "AETNA", "ADULT1")
    finally:
        con.close()
    assert "PPS001" in text and "BREAKS  DOS 2022-12-31 is before" in text
    assert "PPS009" in text and "BREAKS  member aged 32 on DOS 2022-12-31" in text
    assert "PPS003                   passes" in text
    assert ADULT not in text and "1990-01-01" not in text


def test_waive_command_names_a_missing_finding(adult1_audited: Path, tmp_path: Path) -> None:
    db = _copy_db(adult1_audited, tmp_path)
    args = ["waive", "--db", str(db), "AETNA", "NOPE", "1", "PPS009"]
    result = subprocess.run(
        [str(COMMAND), *args, "--reason", "x", "--analyst", "y"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no finding PPS009 on AETNA claim NOPE line 1" in result.stderr


def test_a_night_that_names_a_finding_twice_leaves_the_log_as_it_was(
    adult1_audited: Path, tmp_path: Path
) -> None:
    """The log's key is kept without an index (migration 0006): by the update, which inserts
    only new findings, and by refusing tonight's findings when one appears twice."""
    db = _copy_db(adult1_audited, tmp_path)
    con = connect(db)
    try:
        before = execute(con, "select * from audit.findings order by all")
        twice = tmp_path / "twice.parquet"
        con.sql("select * from audit.findings").pl().drop("policy_id").vstack(
            con.sql("select * from audit.findings").pl().drop("policy_id")
        ).write_parquet(twice)
        with transaction(con):
            load_temp_table(con, "current_findings", [twice])
            update_log(con, policy_id=PPS, run_id=9, as_of=dt.date(2025, 7, 1))
    except FindingTwice as refused:
        assert "1 findings appear more than once" in str(refused)
    else:
        raise AssertionError("a finding named twice was taken")
    finally:
        con.close()
    con = connect(db)
    try:
        assert execute(con, "select * from audit.findings order by all") == before
    finally:
        con.close()
