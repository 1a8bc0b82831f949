"""The nightly DAG, run through Airflow itself with a throwaway AIRFLOW_HOME and SQLite.

Airflow reads its configuration at import, so Airflow runs in its own Python processes with
the environment they need; nothing here touches a real Airflow installation. The pool comes
from the same `airflow pools set` line that airflow-init runs in docker-compose.yml.

dag.test() runs one task at a time in its own process and never consults pools (a missing
pool does not stop it), so pools are checked statically: every DuckDB task names the pool,
and the DagBag's pool check against the metadata DB finds it. Retries would make dag.test()
wait out the retry delay, so the failing run turns them off for its one task.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest

from tests.world import PPS, World

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
AIRFLOW = Path(sys.executable).with_name("airflow")
NIGHTLY = "claims_audit_nightly"
DUCKDB_POOL = "claims_audit_duckdb"
# every task that opens the DuckDB file; validate reads only parquet, stage_landing only files
DATABASE_TASKS = {
    "load_references",
    "ingest",
    "responses",
    "versions",
    "facts",
    "reprocessing_log",
    "report",
}
# what each task publishes: an alias, through which it adds an asset per policy
ALIASES = {
    "reprocessing_log": "claims_audit_reprocessing_log",
    "report": "claims_audit_findings",
}
PUBLISHED = {
    f"claims-audit://{policy_id}/{what}"
    for policy_id in ("h0038_parent_peer_support", "chw_community_health_worker")
    for what in ("reprocessing-log", "findings")
}
LOG = "claims-audit://h0038_parent_peer_support/reprocessing-log"
FINDINGS = "claims-audit://h0038_parent_peer_support/findings"
MEMBER_IDS = ("10000000001", "19999999999")


def _compose_pool_commands() -> list[list[str]]:
    """The `airflow pools set ...` lines of airflow-init, as argument lists."""
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    return [
        shlex.split(match)[1:]
        for match in re.findall(r"^\s*/entrypoint (airflow pools set .+)$", text, re.M)
    ]


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
    steps = [["db", "migrate"], *_compose_pool_commands()]
    for step in steps:
        done = subprocess.run(
            [str(AIRFLOW), *step], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (step, done.stderr[-2000:])
    return env


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )


def test_airflow_init_creates_the_duckdb_pool_with_one_slot() -> None:
    commands = _compose_pool_commands()
    assert [c[:3] for c in commands] == [["pools", "set", DUCKDB_POOL]]
    assert commands[0][3] == "1", "DuckDB allows one writer: the pool has one slot"


INTEGRITY = """
import json
from airflow.dag_processing.dagbag import DagBag
from airflow.models.pool import Pool
from airflow.sdk import Asset
known_pools = {{pool.pool for pool in Pool.get_pools()}}
bag = DagBag(dag_folder={dags!r}, known_pools=known_pools)
integrity = {{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "warnings": sorted(w.message for w in bag.dag_warnings),
    "parse_warnings": {{k: list(v) for k, v in bag.captured_warnings.items()}},
    "dags": {{
        dag_id: {{
            "tags": sorted(dag.tags),
            "owners": sorted({{t.owner for t in dag.tasks}}),
            "default_retries": dag.default_args.get("retries", 0),
            "max_active_runs": dag.max_active_runs,
            "tasks": {{
                t.task_id: {{
                    "retries": t.retries,
                    "backoff": float(t.retry_exponential_backoff),
                    "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                    "pool": t.pool,
                    "on_failure": bool(t.on_failure_callback),
                    "mapped": t.is_mapped,
                    "outlets": [
                        o.uri if isinstance(o, Asset) else o.name for o in t.outlets
                    ],
                    "upstream": sorted(t.upstream_task_ids),
                    "ancestors": sorted(t.get_flat_relative_ids(upstream=True)),
                    "trigger_rule": t.trigger_rule.value,
                    "teardown": t.is_teardown,
                }}
                for t in dag.tasks
            }},
            "params": {{k: dag.params[k] for k in dag.params}},
        }}
        for dag_id, dag in bag.dags.items()
    }},
}}
"""


@pytest.fixture(scope="module")
def integrity(airflow_process: tuple[dict[str, Any], str, Path]) -> dict[str, Any]:
    found, _, _ = airflow_process
    return found["integrity"]


def test_every_dag_imports_with_tags_owner_and_retries(integrity: dict[str, Any]) -> None:
    assert integrity["errors"] == {}
    # includes "references non-existent pools": the pool airflow-init creates is the DAG's
    assert integrity["warnings"] == []
    assert integrity["parse_warnings"] == {}
    assert NIGHTLY in integrity["dags"]
    for dag_id, dag in integrity["dags"].items():
        assert dag["tags"], dag_id
        assert dag["owners"] == ["program-integrity"], dag_id
        assert dag["default_retries"] >= 1, dag_id
        assert dag["max_active_runs"] == 1
        for task_id, task in dag["tasks"].items():
            assert task["timeout"], f"{dag_id}.{task_id} has no execution_timeout"
            assert task["on_failure"], f"{dag_id}.{task_id} has no failure callback"
    nightly = integrity["dags"][NIGHTLY]["tasks"]
    # I/O tasks retry with a growing delay; validation never does: findings are output
    assert nightly["validate"]["retries"] == 0
    for task_id, task in nightly.items():
        if task_id != "validate":
            assert task["retries"] >= 1, task_id
            assert task["backoff"] > 1, f"{task_id}: retry_exponential_backoff is a multiplier"


def test_nightly_dag_shape(integrity: dict[str, Any]) -> None:
    nightly = integrity["dags"][NIGHTLY]["tasks"]
    assert set(nightly) == DATABASE_TASKS | {
        "stage_landing",
        "validate",
        "data_docs",
        "remove_work_files",
        "policies",
    }
    assert {t for t, task in nightly.items() if task["pool"] == DUCKDB_POOL} == DATABASE_TASKS
    # ingest per payer folder with new files; each policy pack's audit per pack
    assert {t for t, task in nightly.items() if task["mapped"]} == {
        "ingest",
        "facts",
        "validate",
        "data_docs",
        "reprocessing_log",
    }
    assert {t: task["outlets"] for t, task in nightly.items() if task["outlets"]} == {
        task_id: [alias] for task_id, alias in ALIASES.items()
    }


def test_the_dag_report_does_not_wait_for_data_docs(integrity: dict[str, Any]) -> None:
    """Data Docs come after the commit: in the DAG neither the report nor the log waits for
    them (a failure of theirs is reported, never a rolled-back audit)."""
    nightly = integrity["dags"][NIGHTLY]
    tasks = nightly["tasks"]
    # neither the report nor the log waits for the Data Docs, in any way
    assert "data_docs" not in tasks["report"]["ancestors"]
    assert "data_docs" not in tasks["reprocessing_log"]["ancestors"]
    # the work files the Data Docs read go last, once both are done, whatever their state;
    # as a teardown it does not decide the run's state
    cleanup = tasks["remove_work_files"]
    assert cleanup["teardown"] and cleanup["upstream"] == ["data_docs", "report"]
    assert cleanup["trigger_rule"] == "all_done_setup_success"
    assert not any("remove_work_files" in task["ancestors"] for task in tasks.values()), (
        "nothing runs after the work files are gone"
    )
    # a full audit on demand, off by default
    assert nightly["params"] == {"full_audit": False}


# One Airflow process (it starts once) reads every DAG as INTEGRITY does, then runs the
# nightly DAG of INTEGRITY's DagBag four times:
#   first  - two payer folders with files: ingest maps once per payer;
#   again  - nothing new: ingest maps over no payer and the database does not change;
#   late   - one new UHC file: ingest maps over UHC alone;
#   broken - the landing folder is gone: the first task fails for good and alerts, and the
#            failed run's work folder (a stand-in facts file here) is removed.
# Logical dates are 07:00 UTC, 02:00 in Kansas, when the schedule starts a run in summer.
RUNS = """
import datetime as dt, json, os, shutil
from pathlib import Path
import duckdb
from airflow.models.asset import AssetEvent
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session

def db_counts():
    con = duckdb.connect()
    con.execute("attach $p as db (read_only)", {{"p": os.environ["CLAIMS_AUDIT_DB"]}}).fetchall()
    counts = {{
        t: con.sql(f"select count(*) from db.{{t}}").fetchall()[0][0]
        for t in ("audit.deliveries", "audit.runs", "audit.findings", "raw.claim_lines")
    }}
    con.close()
    return counts

def audit(day):
    logical_date = dt.datetime(2025, 7, day, 7, tzinfo=dt.UTC)
    run = dag.test(logical_date=logical_date, run_after=logical_date)
    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.run_id == run.run_id).all()
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).all()
        result = {{
            "state": str(run.state),
            "tasks": {{f"{{ti.task_id}}[{{ti.map_index}}]": str(ti.state) for ti in tis}},
            "mapped_payers": sorted(
                ti.rendered_map_index for ti in tis if ti.task_id == "ingest" and ti.map_index >= 0
            ),
            "events": {{e.asset.uri: e.extra for e in events}},
        }}
    out = Path(os.environ["CLAIMS_AUDIT_OUT"]) / "findings.csv"
    result["findings_csv"] = out.read_text() if out.exists() else None
    result["db"] = db_counts() if Path(os.environ["CLAIMS_AUDIT_DB"]).exists() else None
    return result

dag = bag.get_dag("claims_audit_nightly")
landing = Path(os.environ["CLAIMS_AUDIT_LANDING"])
results = {{"first": audit(1), "again": audit(2)}}
shutil.copy({late!r}, landing / "claims" / "UHC" / "late_delivery.csv")
results["late"] = audit(3)
# a failure for good without waiting out the retry delay: this run only, no retries
dag.get_task("stage_landing").retries = 0
os.environ["CLAIMS_AUDIT_LANDING"] = str(landing.parent / "unmounted")
# the run ID dag.test gives a run whose run_after is 2025-07-04T07:00Z
broken_work = Path(os.environ["CLAIMS_AUDIT_WORK"]) / "manual__2025-07-04T07:00:00+00:00"
broken_work.mkdir(parents=True)
(broken_work / "facts.parquet").write_bytes(b"member data")
results["broken"] = audit(4)
results["broken"]["work_left"] = sorted(p.name for p in broken_work.parent.iterdir())
# a file, not stdout: the results quote findings, and stdout is checked like a task log
Path({results!r}).write_text(json.dumps({{"integrity": integrity, "runs": results}}))
"""


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", _Webhook.received
    server.shutdown()


@pytest.fixture(scope="module")
def airflow_process(
    airflow_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    webhook: tuple[str, list[dict[str, Any]]],
) -> tuple[dict[str, Any], str, Path]:
    root = tmp_path_factory.mktemp("nightly")
    world = World()
    world.member("10000000001")
    world.line("AETNA", "BEFORE", "10000000001", claim_line_start_date="2022-12-31")
    world.line("AETNA", "CLEAN", "10000000001")
    world.line("UHC", "STRANGER", "19999999999")
    world.write(root / "landing")
    # the state's reference files, apart from the MCO drop zone
    (root / "landing" / "reference").rename(root / "reference")
    late = World()
    late.line("UHC", "LATE", "19999999999")
    late.write(root / "late")
    env = airflow_env | {
        "CLAIMS_AUDIT_LANDING": str(root / "landing"),
        "CLAIMS_AUDIT_REFERENCE": str(root / "reference"),
        "CLAIMS_AUDIT_DB": str(root / "db" / "audit.duckdb"),
        "CLAIMS_AUDIT_OUT": str(root / "out"),
        "CLAIMS_AUDIT_WORK": str(root / "work"),
        "CLAIMS_AUDIT_ALERT_WEBHOOK": webhook[0],
    }
    code = INTEGRITY.format(dags=str(DAGS)) + RUNS.format(
        late=str(root / "late" / "claims" / "UHC" / "claims.csv"),
        results=str(root / "results.json"),
    )
    run = _python(code, env)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    return json.loads((root / "results.json").read_text()), output, root


@pytest.fixture(scope="module")
def nightly_runs(
    airflow_process: tuple[dict[str, Any], str, Path],
) -> tuple[dict[str, Any], str, Path]:
    found, output, root = airflow_process
    return found["runs"], output, root


def _findings(csv_text: str) -> set[tuple[str, str]]:
    findings = pl.read_csv(csv_text.encode(), infer_schema=False)
    return set(zip(findings["claim_id"], findings["rule_id"], strict=True))


def test_nightly_dag_maps_ingest_over_payers_with_new_files(
    nightly_runs: tuple[dict[str, Any], str, Path],
) -> None:
    runs, _, root = nightly_runs
    first = runs["first"]
    assert first["state"] == "success", first["tasks"]
    assert first["mapped_payers"] == ["AETNA", "UHC"]
    assert _findings(first["findings_csv"]) == {
        ("BEFORE", "PPS001"),
        ("STRANGER", "PPS006"),
        ("STRANGER", "PPS007"),
        ("STRANGER", "PPS008"),
    }
    findings = pl.read_csv(first["findings_csv"].encode(), infer_schema=False)
    assert set(findings["first_found_date"]) == {"2025-07-01"}, "as-of is the logical date"
    assert (root / "out" / "mco" / "UHC" / "findings.csv").exists()
    assert (root / "out" / "analyst_report_2025-07-01.html").exists()
    assert (root / "out" / "data_docs" / PPS / "README-RESTRICTED.txt").exists()
    # the runs' facts and findings files (member-level data) are removed after the report
    assert not list((root / "work").rglob("*.parquet"))

    late = runs["late"]
    assert late["state"] == "success", late["tasks"]
    assert late["mapped_payers"] == ["UHC"], "only the payer with a new file is loaded"
    assert {("LATE", "PPS006")} <= _findings(late["findings_csv"])


def test_nightly_dag_with_nothing_new_changes_nothing(
    nightly_runs: tuple[dict[str, Any], str, Path],
) -> None:
    runs, _, _ = nightly_runs
    first, again = runs["first"], runs["again"]
    assert again["state"] == "success", again["tasks"]
    assert again["mapped_payers"] == []
    assert again["tasks"]["ingest[-1]"] == "skipped", "a mapped task over no payer is skipped"
    assert again["tasks"]["report[-1]"] == "success", "the audit still runs: policy may change"
    assert again["db"] == first["db"]
    assert again["findings_csv"] == first["findings_csv"]


def test_nightly_dag_publishes_findings_and_log_assets(
    nightly_runs: tuple[dict[str, Any], str, Path],
) -> None:
    runs, _, root = nightly_runs
    events = runs["first"]["events"]
    assert set(events) == PUBLISHED, "a log and a findings event for every policy pack"
    assert events[LOG]["as_of"] == "2025-07-01"
    assert events[LOG]["opened"] == 4
    assert events[FINDINGS]["out_dir"] == str(root / "out")
    assert runs["again"]["events"][LOG]["opened"] == 0
    assert runs["broken"]["events"] == {}, "a failed run publishes nothing"


def test_task_failing_for_good_alerts_the_webhook(
    nightly_runs: tuple[dict[str, Any], str, Path],
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    runs, _, _ = nightly_runs
    broken = runs["broken"]
    assert broken["state"] == "failed"
    assert broken["tasks"]["stage_landing[-1]"] == "failed"
    assert broken["tasks"]["report[-1]"] == "upstream_failed"
    alerts = webhook[1]
    assert [(a["dag_id"], a["task_id"], a["try_number"]) for a in alerts] == [
        (NIGHTLY, "stage_landing", 1)
    ]
    assert alerts[0]["error_type"] == "LandingError", "the original type, behind TaskFailed"
    assert alerts[0]["run_id"]
    # the DAG's failure callback removed the failed run's work folder (the successful runs'
    # folders went with their report)
    assert broken["work_left"] == []


def test_task_logs_carry_no_member_id(nightly_runs: tuple[dict[str, Any], str, Path]) -> None:
    _, output, _ = nightly_runs
    for member_id in MEMBER_IDS:
        assert member_id not in output


def test_failure_alert_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    from pipelines.airflow.alerts import task_failure_alert

    ids = {"dag_id": NIGHTLY, "task_id": "facts", "dag_run_id": "scheduled__x", "try_number": 3}
    assert task_failure_alert(**ids) is False
    # nothing listens on port 9 of loopback; a file:// URL is refused before any request
    assert task_failure_alert(**ids, webhook_url="http://127.0.0.1:9/alerts") is False
    assert task_failure_alert(**ids, webhook_url="file:///etc/passwd") is False
    assert "task facts" in caplog.text
    assert "127.0.0.1:9" not in caplog.text, "the webhook URL may hold a token"
