"""What decides a finding, and what never does.

- A missing value in a column a rule reads stops validation: Great Expectations would pass it.
- The audit's identity (suite, policy, code) decides whether a run may build on the last
  audit: change any of it, or ask with --full, and every line is audited again.
- Data Docs come after the commit: their failure is reported, never a rolled-back audit (that
  the DAG's report does not wait for them either is checked in test_dag.py, with the DAG's
  other shape checks).

Real parts throughout: DuckDB files, Great Expectations and the `claims-audit` command.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from pipelines.audit import identity
from pipelines.audit.packs import LOCATIONS_SETTING, discover, unit_minutes_by_code
from pipelines.audit.rules import (
    ValidationError,
    columns_checked,
    evaluate,
    load_suite_definition,
    with_null_guards,
)
from pipelines.audit.run import (
    PolicyRun,
    RunSummary,
    parts_of,
    run_audit,
    stage_facts,
    stage_versions,
)
from pipelines.config import PACKAGE_DIR
from pipelines.db import connect
from pipelines.ingest.load import ingest
from tests.world import AS_OF, PPS, World, pack_audit, pack_copy

COMMAND = Path(sys.executable).with_name("claims-audit")
CHILD, ADULT, STRANGER = "10000000001", "10000000002", "19999999999"
MEMBER_IDS = (CHILD, ADULT, STRANGER)
NEXT_DAY = AS_OF + dt.timedelta(days=1)


def _world() -> World:
    """A child's clean line, an adult's line without consent (PPS009), a stranger's line."""
    world = World()
    world.member(CHILD)
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"] = [c for c in world.ref["consents"] if c["member_id"] != ADULT]
    world.line("AETNA", "CHILD1", CHILD)
    world.line("AETNA", "ADULT1", ADULT)
    world.line("UHC", "STRANGER1", STRANGER)
    return world


def _run(input_dir: Path, db: Path, out: Path, as_of: dt.date, **options: Any) -> RunSummary:
    return run_audit(input_dir, db, out, as_of=as_of, **options)


def _of(summary: RunSummary, policy_id: str) -> PolicyRun:
    return next(p for p in summary.policies if p.policy_id == policy_id)


def _details(out: Path, rule_id: str) -> list[str]:
    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    return findings.filter(pl.col("rule_id") == rule_id)["detail"].to_list()


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *map(str, args)], capture_output=True, text=True, timeout=300
    )


# 8. A null passes an expectation silently -------------------------------------------------


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The facts of _world(), built by the pipeline itself from a real database file."""
    root = tmp_path_factory.mktemp("facts")
    input_dir = _world().write(root / "input")
    con = connect(root / "audit.duckdb")
    try:
        units = unit_minutes_by_code(discover())
        ingest(con, input_dir, loaded_on=AS_OF, run_id=1, unit_minutes=units)
        stage_versions(con, [None])
        path = stage_facts(con, pack_audit(), None, root / "work").folder
    finally:
        con.close()
    return pl.concat(map(pl.read_parquet, parts_of(path)))


def test_every_column_a_rule_reads_is_guarded_against_nulls() -> None:
    definition = pack_audit().rules.definition
    guarded = with_null_guards(definition)["expectations"]
    guards = {
        e["kwargs"]["column"]
        for e in guarded
        if e["type"] == "expect_column_values_to_not_be_null" and e["meta"].get("guard")
    }
    read = set(columns_checked(definition))
    # every expectation's column and its row condition's column
    assert {
        "age_on_dos",
        "consent_in_force",
        "group_session_members",
        "is_group",
        "largest_age_gap_years",
        "age_gap_known_for_every_candidate",
        "dos_timestamp",
    } <= read
    assert guards == read
    assert guarded[: len(definition["expectations"])] == definition["expectations"]


@pytest.mark.parametrize(
    "column",
    [
        "age_on_dos",  # between: GX passes a null
        "consent_in_force",  # a row condition's column: a null drops the line from PPS009
        "group_session_members",  # between
        "largest_age_gap_years",  # between, under a row condition
        "age_gap_known_for_every_candidate",  # a row condition's column
        "dos_timestamp",  # a date against a datetime parameter
        "lived_experience_on_file",  # in-set
    ],
)
def test_a_null_in_a_column_a_rule_reads_stops_validation_instead_of_passing(
    facts: pl.DataFrame, column: str
) -> None:
    # the near miss: the same facts without the null audit as usual
    clean = evaluate(facts, pack_audit().rules)
    assert clean.filter(pl.col("rule_id") == "PPS009")["claim_id"].to_list() == ["ADULT1"]

    holed = facts.with_columns(
        pl.when(pl.col("claim_id") == "ADULT1").then(None).otherwise(pl.col(column)).alias(column)
    )
    with pytest.raises(ValidationError) as stopped:
        evaluate(holed, pack_audit().rules)
    message = str(stopped.value)
    assert column in message and "1 line(s)" in message
    for member_id in MEMBER_IDS:
        assert member_id not in message, "the message names the column and a count, no value"


# 9. A changed rule does not re-audit ------------------------------------------------------


@dataclass(frozen=True)
class FirstNight:
    """_world() delivered as day1.csv and audited on AS_OF, as every test below starts."""

    root: Path  # input/ and a.duckdb as the first night left them
    summary: RunSummary


@pytest.fixture(scope="module")
def first_night(tmp_path_factory: pytest.TempPathFactory) -> FirstNight:
    """Built once; each test works on a copy of it."""
    root = tmp_path_factory.mktemp("first_night")
    input_dir = _world().write(root / "input", claim_file="day1.csv")
    return FirstNight(root, _run(input_dir, root / "a.duckdb", root / "out1", AS_OF))


def _copy_of(first_night: FirstNight, tmp_path: Path) -> tuple[Path, Path]:
    """The input folder and database of a copy of the first night."""
    shutil.copytree(first_night.root, tmp_path, dirs_exist_ok=True)
    return tmp_path / "input", tmp_path / "a.duckdb"


def test_an_edited_suite_re_audits_every_line_on_the_next_run(
    first_night: FirstNight, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    input_dir, db = _copy_of(first_night, tmp_path)
    first = first_night.summary
    assert first.audited and first.lines_audited == first.in_scope_lines == 3

    location = pack_copy(tmp_path / "packs")
    suite = location / "expectations" / f"{PPS}.json"
    edited = load_suite_definition(suite)
    for expectation in edited["expectations"]:
        if expectation["meta"]["rule_id"] == "PPS009":
            expectation["meta"]["detail"] = "adult without written consent: {consent_evidence}"
    suite.write_text(json.dumps(edited), encoding="utf-8")

    # nothing new was delivered: only the suite changed
    monkeypatch.setenv(LOCATIONS_SETTING, str(location))
    second = _run(input_dir, db, tmp_path / "out2", NEXT_DAY)
    assert second.audited
    assert second.lines_audited == second.in_scope_lines == 3
    assert _of(second, PPS).audit_identity != _of(first, PPS).audit_identity
    [detail] = _details(tmp_path / "out2", "PPS009")
    assert detail.startswith("adult without written consent: ")

    # the near miss: the same suite again, nothing new, nothing to audit
    third = _run(input_dir, db, tmp_path / "out3", NEXT_DAY)
    assert not third.audited


def test_a_changed_line_of_code_re_audits_every_line_on_the_next_run(
    first_night: FirstNight, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _world()
    input_dir, db = _copy_of(first_night, tmp_path)

    # the same package version, one more line in the code that computes the facts
    code = tmp_path / "pipelines"
    shutil.copytree(PACKAGE_DIR, code, ignore=shutil.ignore_patterns("__pycache__"))
    with (code / "audit" / "facts.py").open("a", encoding="utf-8") as handle:
        handle.write("\n# a changed line\n")
    monkeypatch.setattr(identity, "PACKAGE_DIR", code)
    # and a claim delivery that alone would make a nightly run audit only its own claim
    world.claims = {}
    world.line("HEALTHYBLUE", "NEW1", CHILD, claim_line_start_date="2023-07-01")
    world.write(input_dir, claim_file="day2.csv")
    second = _run(input_dir, db, tmp_path / "out2", NEXT_DAY)
    assert second.audited
    assert second.lines_audited == second.in_scope_lines == 4

    # the near miss: a change to what only presents the results decides no finding
    with (code / "reports" / "outputs.py").open("a", encoding="utf-8") as handle:
        handle.write("\n# a changed line\n")
    third = _run(input_dir, db, tmp_path / "out3", NEXT_DAY)
    assert not third.audited


def test_a_new_package_version_or_policy_changes_the_audit_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit = pack_audit()
    before = identity.audit_identity(audit.pack, audit.general)
    assert identity.audit_identity(audit.pack, audit.general) == before, "stable, run after run"
    monkeypatch.setenv(LOCATIONS_SETTING, str(pack_copy(tmp_path, edit=lambda t: t + "\n# seen\n")))
    edited = pack_audit()
    assert identity.audit_identity(edited.pack, edited.general) != before
    real_version = identity.version
    monkeypatch.setattr(
        identity,
        "version",
        lambda name: "9.9.9" if name == identity.PACKAGE else real_version(name),
    )
    assert identity.audit_identity(audit.pack, audit.general) != before


def test_a_database_from_before_the_audit_identity_audits_everything_once(
    first_night: FirstNight, tmp_path: Path
) -> None:
    world = _world()
    input_dir, db = _copy_of(first_night, tmp_path)
    # the database as migration 0001 leaves one from before the identity: its runs have none
    con = duckdb.connect(str(db))
    con.execute("update a.audit.runs set audit_identity = null")
    con.close()
    world.claims = {}
    world.line("HEALTHYBLUE", "NEW1", CHILD, claim_line_start_date="2023-07-01")
    world.write(input_dir, claim_file="day2.csv")
    second = _run(input_dir, db, tmp_path / "out2", NEXT_DAY)
    assert second.lines_audited == second.in_scope_lines == 4
    third = _run(input_dir, db, tmp_path / "out3", NEXT_DAY)
    assert not third.audited, "the upgraded database keeps the identity from then on"


def test_full_re_audits_every_line_when_nothing_new_was_delivered(
    first_night: FirstNight, tmp_path: Path
) -> None:
    input_dir, db = _copy_of(first_night, tmp_path)
    args = ("run", "--input", input_dir, "--db", db, "--out", tmp_path / "out")
    # the near miss: without --full, nothing new means nothing to audit
    again = _cli(*args, "--as-of", NEXT_DAY.isoformat())
    assert "nothing new to audit" in again.stdout
    full = _cli(*args, "--as-of", NEXT_DAY.isoformat(), "--full")
    assert full.returncode == 0, full.stderr
    assert "audited 3 current lines" in full.stdout
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert summary["audited"] and summary["lines_audited"] == summary["in_scope_lines"] == 3
    con = duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True)
    try:
        runs = con.execute("select distinct as_of from audit.runs order by as_of").fetchall()
    finally:
        con.close()
    assert runs == [(AS_OF,), (NEXT_DAY,)]
    assert "--full" in _cli("run", "--help").stdout


# 10. Data Docs can roll back an audit -----------------------------------------------------


def test_a_data_docs_failure_leaves_the_audit_committed_and_is_reported(tmp_path: Path) -> None:
    input_dir = _world().write(tmp_path / "input")
    out = tmp_path / "out"
    out.mkdir()
    (out / "data_docs").write_text("a plain file where the Data Docs folder goes\n")
    db = tmp_path / "a.duckdb"
    result = _cli("run", "--input", input_dir, "--db", db, "--out", out, "--as-of", "2025-06-30")

    assert result.returncode == 0, result.stderr
    assert "Data Docs NOT built (NotADirectoryError)" in result.stdout
    assert "Data Docs were not built (NotADirectoryError)" in result.stderr
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["audited"] and summary["data_docs_error"] == "NotADirectoryError"
    # the audit is committed and its outputs are written
    con = duckdb.connect(str(db), read_only=True)
    try:
        logged = con.execute("select claim_id, rule_id from audit.findings").fetchall()
        runs = con.execute("select count(distinct run_id) from audit.runs").fetchone()
    finally:
        con.close()
    assert ("ADULT1", "PPS009") in logged and runs == (1,)
    assert _details(out, "PPS009")
    assert (out / "mco" / "AETNA" / "findings.csv").exists()
    for member_id in MEMBER_IDS:
        assert member_id not in result.stdout + result.stderr

    # the near miss: where the folder can be made, the Data Docs are built and nothing is said
    (out / "data_docs").unlink()
    rebuilt = _cli(
        "run", "--input", input_dir, "--db", db, "--out", out, "--as-of", "2025-07-01", "--full"
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Data Docs" not in rebuilt.stdout
    assert json.loads((out / "run_summary.json").read_text())["data_docs_error"] is None
    assert (out / "data_docs" / PPS / "README-RESTRICTED.txt").exists()
    # a pack with no line to validate (no CHW line here) gets no Data Docs
    assert [p.name for p in (out / "data_docs").iterdir()] == [PPS]
