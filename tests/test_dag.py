"""The nightly DAG, run through Airflow itself with a throwaway AIRFLOW_HOME and SQLite.

Airflow reads its configuration at import, so each check runs in its own Python process
with the environment it needs; nothing here touches a real Airflow installation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.world import World

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
AIRFLOW = Path(sys.executable).with_name("airflow")


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    env = os.environ | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "PYTHONPATH": str(REPO),
    }
    migrate = subprocess.run(
        [str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return env


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )


INTEGRITY = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={dags!r})
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "dags": {{
        dag_id: {{
            "tags": sorted(dag.tags),
            "owners": sorted({{t.owner for t in dag.tasks}}),
            "retries": {{t.task_id: t.retries for t in dag.tasks}},
            "max_active_runs": dag.max_active_runs,
        }}
        for dag_id, dag in bag.dags.items()
    }},
}}))
"""


def test_every_dag_imports_with_tags_owner_and_retries(airflow_env: dict[str, str]) -> None:
    probe = _python(INTEGRITY.format(dags=str(DAGS)), airflow_env)
    assert probe.returncode == 0, probe.stderr[-2000:]
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert "h0038_nightly_audit" in report["dags"]
    for dag_id, dag in report["dags"].items():
        assert dag["tags"], dag_id
        assert dag["owners"] == ["program-integrity"], dag_id
        assert dag["max_active_runs"] == 1
    nightly = report["dags"]["h0038_nightly_audit"]
    # I/O tasks retry; validation never does: findings are output, not failure
    assert nightly["retries"]["validate"] == 0
    assert nightly["retries"]["ingest"] >= 1


RUN = """
import datetime as dt
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder={dags!r}).get_dag("h0038_nightly_audit")
run = dag.test(logical_date=dt.datetime(2025, 6, 30, tzinfo=dt.UTC))
print("STATE", run.state)
"""


def test_nightly_dag_writes_findings(airflow_env: dict[str, str], tmp_path: Path) -> None:
    world = World()
    world.member("10000000001")
    world.line("AETNA", "BEFORE", "10000000001", claim_line_start_date="2022-12-31")
    world.line("AETNA", "CLEAN", "10000000001")
    world.line("UHC", "STRANGER", "19999999999")
    world.write(tmp_path / "landing")
    env = airflow_env | {
        "CLAIMS_AUDIT_LANDING": str(tmp_path / "landing"),
        "CLAIMS_AUDIT_DB": str(tmp_path / "db" / "audit.duckdb"),
        "CLAIMS_AUDIT_OUT": str(tmp_path / "out"),
        "CLAIMS_AUDIT_WORK": str(tmp_path / "work"),
    }
    run = _python(RUN.format(dags=str(DAGS)), env)
    assert "STATE success" in run.stdout, (run.stdout + run.stderr)[-3000:]
    findings = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    assert set(zip(findings["claim_id"], findings["rule_id"], strict=True)) == {
        ("BEFORE", "PPS001"),
        ("STRANGER", "PPS006"),
        ("STRANGER", "PPS007"),
        ("STRANGER", "PPS008"),
    }
    assert set(findings["first_found_date"]) == {"2025-06-30"}, "as-of is the logical date"
    # task logs carry counts and paths, never a member ID
    assert "19999999999" not in run.stdout + run.stderr
    assert "10000000001" not in run.stdout + run.stderr
    assert (tmp_path / "out" / "mco" / "UHC" / "findings.csv").exists()
