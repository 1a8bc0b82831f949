"""Issue 12, defects 11 and 14: where reference data comes from, and how the audit runs.

11. Reference files come only from the state's location (CLAIMS_AUDIT_REFERENCE); a
    `reference` folder in an MCO drop zone is rejected by name and never read.
14. The nightly DAG runs on Kansas time and audits as of the Kansas date; a failing task
    says nothing of the data; a failed run leaves no member data in the work folder; a
    failure after the commit says the audit is committed.

Airflow reads its configuration at import, so what needs the DAG itself runs in a Python
process of its own with a throwaway AIRFLOW_HOME (as tests/test_dag.py does); parsing the
DAG needs no metadata database.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import traceback
import uuid
from pathlib import Path
from typing import Any

import fsspec
import polars as pl
import pytest

from pipelines.airflow.alerts import task_failure_alert
from pipelines.airflow.task_failures import TaskFailed, failure_type, scrub_failures
from pipelines.airflow.tasks import task_stage_landing
from pipelines.audit.run import run_audit
from pipelines.cli.main import main
from pipelines.config import dag_run_work_dir, run_date
from pipelines.db import connect, scalar
from pipelines.ingest.landing import REFERENCE_REFUSED, LandingError
from tests.world import AS_OF, World, flagged

REPO = Path(__file__).resolve().parents[1]
MEMBER = "10000000001"
KANSAS = "America/Chicago"


def _state_and_mco_worlds() -> tuple[World, World]:
    """The same claim line; the state has no treatment plan on file for the member, the MCO
    claims to have one (and every other reference file that clears its lines)."""
    state, mco = World(), World()
    for world in (state, mco):
        world.member(MEMBER)
        world.line("AETNA", "A1", MEMBER)
    state.ref["treatment_plans"].clear()
    return state, mco


# --- 11. Reference data comes from the state, never from an MCO drop zone --------------------


@pytest.mark.parametrize("folder_name", ["reference", "Reference"])
def test_reference_folder_in_an_mco_drop_zone_is_rejected_and_the_states_reference_is_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, folder_name: str
) -> None:
    state, mco = _state_and_mco_worlds()
    drop_zone = mco.write(tmp_path / "drop_zone")  # claims/ and the MCO's own reference/
    (drop_zone / "reference").rename(drop_zone / folder_name)
    state_reference = state.write(tmp_path / "state") / "reference"
    work = tmp_path / "work"

    with caplog.at_level(logging.WARNING):
        staged = task_stage_landing(
            f"file://{drop_zone}", str(state_reference), str(work), str(work / "run-1")
        )

    assert staged["rejected"] == [{"path": f"{folder_name}/", "reason": REFERENCE_REFUSED}]
    assert f"rejected {folder_name}/ in the MCO drop zone" in caplog.text
    input_dir = Path(str(staged["input_dir"]))
    assert input_dir.is_relative_to(work / "run-1")
    for name in ("treatment_plans.csv", "consents.csv", "members.csv"):
        read = (input_dir / "reference" / name).read_bytes()
        assert read == (state_reference / name).read_bytes(), name
    assert (input_dir / "claims" / "AETNA" / "claims.csv").read_bytes() == (
        drop_zone / "claims" / "AETNA" / "claims.csv"
    ).read_bytes()

    run_audit(input_dir, tmp_path / "audit.duckdb", tmp_path / "out", as_of=AS_OF)
    findings = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    # the MCO's treatment plan would have cleared it: only the state's files count
    assert flagged(findings, "PPS008") == {("AETNA", "A1")}
    assert set(findings["rule_id"]) == {"PPS008"}


def test_drop_zone_without_reference_folder_rejects_nothing(tmp_path: Path) -> None:
    state, mco = _state_and_mco_worlds()
    drop_zone = mco.write(tmp_path / "drop_zone")
    # near misses: names that only resemble the folder are not it (and are never read)
    (drop_zone / "reference").rename(drop_zone / "reference_old")
    (drop_zone / "references").mkdir()
    state_reference = state.write(tmp_path / "state") / "reference"
    work = tmp_path / "work"
    staged = task_stage_landing(str(drop_zone), str(state_reference), str(work), str(work / "r"))
    assert staged["rejected"] == []
    assert sorted(p.name for p in Path(str(staged["input_dir"])).iterdir()) == [
        "claims",
        "reference",
    ]


def test_reference_folder_in_a_remote_drop_zone_is_rejected_and_never_fetched(
    tmp_path: Path,
) -> None:
    memory = fsspec.filesystem("memory")
    state, mco = _state_and_mco_worlds()
    world = mco.write(tmp_path / "mco")
    root = f"/drop-{uuid.uuid4().hex}"
    try:
        for path in world.rglob("*"):
            if path.is_file():
                memory.pipe(f"{root}/{path.relative_to(world).as_posix()}", path.read_bytes())
        state_reference = state.write(tmp_path / "state") / "reference"
        work = tmp_path / "work"
        staged = task_stage_landing(
            f"memory://{root}", str(state_reference), str(work), str(work / "r")
        )
    finally:
        memory.rm(root, recursive=True)
    assert staged["rejected"] == [{"path": "reference/", "reason": REFERENCE_REFUSED}]
    assert list((work / "landing").rglob("claims.csv")), "the claims are mirrored"
    assert not list((work / "landing").rglob("reference")), "the MCO's references are not"


@pytest.mark.parametrize(
    ("landing", "reference"),
    [
        ("/srv/claims-audit/landing", "/srv/claims-audit/landing/reference"),
        ("file:///srv/claims-audit/landing", "/srv/claims-audit/landing"),
        ("/srv/claims-audit/landing/aetna", "/srv/claims-audit/landing"),
        ("s3://mco-drop/aetna", "s3://mco-drop/aetna/reference"),
    ],
)
def test_reference_location_inside_the_drop_zone_is_refused(
    tmp_path: Path, landing: str, reference: str
) -> None:
    with pytest.raises(LandingError, match="apart from every MCO drop zone"):
        task_stage_landing(landing, reference, str(tmp_path), str(tmp_path / "r"))


def test_reference_location_beside_the_drop_zone_is_accepted(tmp_path: Path) -> None:
    # near miss: a common prefix that is not a parent folder
    state, mco = _state_and_mco_worlds()
    drop_zone = mco.write(tmp_path / "landing")
    state_reference = state.write(tmp_path / "landing-state") / "reference"
    staged = task_stage_landing(
        str(drop_zone), str(state_reference), str(tmp_path / "w"), str(tmp_path / "w" / "r")
    )
    assert Path(str(staged["input_dir"])).is_dir()


# --- 14a. Kansas time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logical_date", "as_of"),
    [
        (dt.datetime(2025, 6, 30, 7, tzinfo=dt.UTC), "2025-06-30"),  # 02:00 CDT
        (dt.datetime(2025, 7, 1, 3, tzinfo=dt.UTC), "2025-06-30"),  # 22:00 CDT, the evening
        (dt.datetime(2025, 7, 1, 4, 59, tzinfo=dt.UTC), "2025-06-30"),  # 23:59 CDT
        (dt.datetime(2025, 7, 1, 5, tzinfo=dt.UTC), "2025-07-01"),  # midnight CDT
        (dt.datetime(2025, 1, 15, 5, 59, tzinfo=dt.UTC), "2025-01-14"),  # 23:59 CST
        (dt.datetime(2025, 1, 15, 6, tzinfo=dt.UTC), "2025-01-15"),  # midnight CST
    ],
)
def test_as_of_date_is_the_kansas_date_not_the_utc_date(
    logical_date: dt.datetime, as_of: str
) -> None:
    assert run_date(logical_date, None) == as_of
    # a manual run without a logical date: the moment it was triggered, in Kansas
    assert run_date(None, logical_date) == as_of


# One process parses the DAG and reports what these tests need. The failure callback is the
# one Airflow calls on a failed run (in the DAG processor), run here on a work folder.
PROBE = """
import datetime as dt, json, os
from pathlib import Path
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.encoders import coerce_to_core_timetable
from airflow.timetables.base import TimeRestriction
from pipelines.airflow.task_failures import scrub_failures

bag = DagBag(dag_folder={dags!r})
dag = bag.dags["claims_audit_nightly"]
timetable = coerce_to_core_timetable(dag.timetable)
first_runs = {{}}
for day in ("2025-06-29T12:00:00+00:00", "2025-01-14T12:00:00+00:00"):
    earliest = dt.datetime.fromisoformat(day)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=earliest, latest=None, catchup=True),
    )
    first_runs[day] = info.logical_date.isoformat()
scrubbed = scrub_failures(print).__code__
dag.on_failure_callback({{"dag": dag, "run_id": {failed_run!r}, "reason": "task_failure"}})
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "expression": dag.timetable.expression,
    "timezone": str(dag.timetable.timezone),
    "first_runs": first_runs,
    "unscrubbed_tasks": sorted(
        t.task_id for t in dag.tasks if t.python_callable.__code__ is not scrubbed
    ),
    "tasks": len(dag.tasks),
    "work_left": sorted(p.name for p in Path(os.environ["CLAIMS_AUDIT_WORK"]).iterdir()),
}}))
"""

FAILED_RUN = "scheduled__2025-06-30T07:00:00+00:00"
OTHER_RUN = "scheduled__2025-07-01T07:00:00+00:00"


@pytest.fixture(scope="module")
def nightly_dag(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("airflow_home")
    work = tmp_path_factory.mktemp("work")
    for run in (FAILED_RUN, OTHER_RUN):
        (work / run / "input").mkdir(parents=True)
        (work / run / "facts.parquet").write_bytes(b"member data")
        (work / run / "findings.parquet").write_bytes(b"member data")
    env = os.environ | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "CLAIMS_AUDIT_WORK": str(work),
        "PYTHONPATH": str(REPO),
    }
    code = PROBE.format(dags=str(REPO / "dags"), failed_run=FAILED_RUN)
    probe = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    result: dict[str, Any] = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    return result


def test_nightly_dag_runs_at_two_in_the_morning_kansas_time(nightly_dag: dict[str, Any]) -> None:
    assert nightly_dag["expression"] == "0 2 * * *"
    assert nightly_dag["timezone"] == KANSAS
    # 02:00 in Kansas in summer (CDT) and in winter (CST); each run is as of that Kansas day
    assert nightly_dag["first_runs"] == {
        "2025-06-29T12:00:00+00:00": "2025-06-30T07:00:00+00:00",
        "2025-01-14T12:00:00+00:00": "2025-01-15T08:00:00+00:00",
    }
    summer = dt.datetime.fromisoformat(nightly_dag["first_runs"]["2025-06-29T12:00:00+00:00"])
    winter = dt.datetime.fromisoformat(nightly_dag["first_runs"]["2025-01-14T12:00:00+00:00"])
    assert (run_date(summer, None), run_date(winter, None)) == ("2025-06-30", "2025-01-15")


# --- 14b. A failing task says nothing of the data -----------------------------------------------


def _facts_of_a_member() -> None:
    """Fails as a real task can: polars quotes the value it could not convert, and the
    error chained to it names the member as well."""
    try:
        pl.Series("member_id", [f"{MEMBER}x"]).cast(pl.Int64)
    except pl.exceptions.InvalidOperationError as error:
        raise ValueError(f"no facts for member {MEMBER}") from error


def test_failing_task_leaves_no_member_id_in_its_error_chain_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(pl.exceptions.InvalidOperationError) as unscrubbed:
        pl.Series("member_id", [f"{MEMBER}x"]).cast(pl.Int64)
    assert MEMBER in str(unscrubbed.value), "the library does quote the value"

    facts = scrub_failures(_facts_of_a_member)
    with caplog.at_level(logging.DEBUG), pytest.raises(TaskFailed) as raised:
        try:
            facts()
        except TaskFailed:
            # as Airflow's task runner logs the exception that leaves a task
            logging.getLogger("airflow.task").exception("Task failed with exception")
            raise
    failure = raised.value
    assert str(failure) == "ValueError in _facts_of_a_member"
    assert failure.__cause__ is None and failure.__context__ is None
    assert failure.__suppress_context__
    told = "".join(traceback.format_exception(failure)) + repr(failure) + caplog.text
    assert "Task failed with exception" in caplog.text
    assert MEMBER not in told
    # the alert names the original type, and nothing else of the error
    assert failure_type(failure) == "ValueError"


def test_failure_alert_carries_only_the_error_type(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TaskFailed) as raised:
        scrub_failures(_facts_of_a_member)()
    task_failure_alert(
        dag_id="claims_audit_nightly",
        task_id="facts",
        dag_run_id=FAILED_RUN,
        try_number=3,
        error_type=failure_type(raised.value),
    )
    assert "ValueError" in caplog.text
    assert MEMBER not in caplog.text


def test_scrubbed_input_errors_keep_their_message(tmp_path: Path) -> None:
    # near miss: the project's own InputError names folders and settings, never row values
    stage = scrub_failures(task_stage_landing)
    reference, work = tmp_path / "reference", tmp_path / "work"
    reference.mkdir()
    with pytest.raises(TaskFailed) as raised:
        stage(str(tmp_path / "unmounted"), str(reference), str(work), str(work / "r"))
    assert raised.value.error_type == "LandingError"
    assert "does not exist" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is None


def test_every_task_of_the_nightly_dag_scrubs_its_failures(nightly_dag: dict[str, Any]) -> None:
    assert nightly_dag["tasks"] >= 9
    assert nightly_dag["unscrubbed_tasks"] == []


# --- 14c. A failed run leaves no member data -----------------------------------------------------


def test_failed_dag_run_removes_its_work_files(nightly_dag: dict[str, Any]) -> None:
    # the failed run's folder is gone; another run's stays
    assert nightly_dag["work_left"] == [OTHER_RUN]


@pytest.mark.parametrize("run_id", ["", ".", "..", "../db", "a/b"])
def test_a_run_id_never_leads_out_of_the_work_folder(run_id: str) -> None:
    with pytest.raises(ValueError, match="cannot name a work folder"):
        dag_run_work_dir("/opt/claims-audit/db/work", run_id)
    assert dag_run_work_dir("/w", FAILED_RUN) == Path("/w") / FAILED_RUN


# --- 14d. After the commit, a failure says the audit is committed -------------------------------


def _cli_input(tmp_path: Path) -> Path:
    world = World()
    world.member(MEMBER)
    world.line("AETNA", "A1", MEMBER)
    return world.write(tmp_path / "input")


def test_output_failure_after_the_commit_says_the_audit_is_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, db = tmp_path / "out", tmp_path / "claims.duckdb"
    out.mkdir()
    (out / "mco").write_text("a file where the MCO folders must go")
    args = ["run", "--input", str(_cli_input(tmp_path)), "--db", str(db), "--out", str(out)]

    assert main([*args, "--as-of", "2025-06-30"]) == 1
    error = capsys.readouterr().err
    assert "The audit is committed; the next run writes the outputs again." in error
    assert "left as it was" not in error
    assert MEMBER not in error
    con = connect(db)
    try:
        assert scalar(con, "select count(distinct run_id) from audit.runs") == 1, "committed"
    finally:
        con.close()

    # as the message says: the next run writes the outputs
    (out / "mco").unlink()
    assert main([*args, "--as-of", "2025-07-01"]) == 0
    assert "nothing new to audit" in capsys.readouterr().out
    assert (out / "mco" / "AETNA" / "findings.csv").is_file()


def test_failure_before_the_commit_still_says_the_database_is_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # near miss: a database file that is not one fails before anything is committed
    db = tmp_path / "claims.duckdb"
    db.write_text("not a DuckDB file")
    args = ["run", "--input", str(_cli_input(tmp_path)), "--db", str(db)]
    assert main([*args, "--out", str(tmp_path / "out"), "--as-of", "2025-06-30"]) == 1
    error = capsys.readouterr().err
    assert "The database was left as it was before this run." in error
    assert "committed" not in error
