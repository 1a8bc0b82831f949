"""The nights the live stack runs, and what each must show.

1. Night 1's deliveries land in the S3 drop zone; the DAG runs for 2025-06-30.
2. Night 2's (replacements and voids among them) land in the SFTP drop zone, where the state
   moved the drop zone; the DAG runs for 2025-10-01, and one Celery worker is killed while it
   runs an ingest task. Both nights' outputs and database match the CLI's night-by-night run.
3. A file the contract rejects lands for 2025-10-02: that file is rejected, nothing fails.
4. The drop zone is unreachable on 2025-10-03: stage_landing retries, fails, and alerts.

Everything is asked of Airflow through its REST API; the outputs and the DuckDB file are
read where the audit wrote them.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from integration.api import AirflowApi
from integration.services import VENV_BIN, Processes, SftpServer
from integration.settings import base_environment
from integration.stack import WORKERS, Stack

BUCKET = "claims-audit-dropzone"
# (as-of date, logical date): 02:00 in Kansas, when the schedule would start the run
NIGHT_1 = ("2025-06-30", "2025-06-30T07:00:00Z")
NIGHT_2 = ("2025-10-01", "2025-10-01T07:00:00Z")
NIGHT_3 = ("2025-10-02", "2025-10-02T07:00:00Z")
NIGHT_4 = ("2025-10-03", "2025-10-03T07:00:00Z")
# a file whose header lacks the contract's columns: rejected whole, never guessed at
REJECTED_FILE = "claims/UHC/uhc_ks_claims_20251002_resend.csv"
RUN_TIMEOUT = 300
# the outputs the CLI and the DAG must write byte for byte alike (the workbooks and the
# HTML report carry their creation time)
COMPARED_OUTPUTS = ("findings.csv", "reprocessing_log.csv", "quarantine.csv", "mco/*/*.csv")
ALERT_KEYS = {"dag_id", "task_id", "run_id", "map_index", "try_number", "error_type"}


class IntegrationFailure(AssertionError):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise IntegrationFailure(message)


# deliveries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deliveries:
    night_1: Path  # input folders as the CLI reads them: claims/ beside reference/
    night_2: Path


def generate_deliveries(root: Path) -> Deliveries:
    """The demo's two nights (pipelines.demo.synthetic), each kept as its own input folder."""
    from pipelines.demo.synthetic import generate, generate_followup

    growing = root / "growing"
    generate(growing / "input", growing / "truth.csv")
    shutil.copytree(growing / "input", root / "night_1")
    generate_followup(growing / "input", growing / "truth.csv")
    shutil.copytree(growing / "input", root / "night_2")
    shutil.rmtree(growing)
    return Deliveries(root / "night_1", root / "night_2")


def claim_files(input_dir: Path) -> set[str]:
    return {p.relative_to(input_dir).as_posix() for p in (input_dir / "claims").rglob("*.*")}


def payers_with_new_files(before: set[str], after: set[str]) -> list[str]:
    return sorted({path.split("/")[1] for path in after - before})


def land_reference(deliveries: Path, reference: Path) -> None:
    """The state puts the night's reference files in its own location."""
    shutil.rmtree(reference, ignore_errors=True)
    shutil.copytree(deliveries / "reference", reference)


def land_in_s3(deliveries: Path, endpoint: str, prefix: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    for relative in sorted(claim_files(deliveries)):
        fs.put_file(str(deliveries / relative), f"{BUCKET}/{prefix}/{relative}")


def sftp_filesystem(server: SftpServer) -> Any:
    import fsspec

    # the MCO's own upload to its server; the audit's side checks the host key (landing.py)
    return fsspec.filesystem(
        "sftp",
        host="127.0.0.1",
        port=server.port,
        username=server.user,
        key_filename=str(server.client_key),
        look_for_keys=False,
        allow_agent=False,
    )


def land_in_sftp(files: dict[str, Path], server: SftpServer, folder: str) -> None:
    fs = sftp_filesystem(server)
    for relative, source in sorted(files.items()):
        target = f"{folder}/{relative}"
        fs.makedirs(target.rpartition("/")[0], exist_ok=True)
        fs.put_file(str(source), target)


# the CLI's night-by-night run ---------------------------------------------------------------


class CliReference(threading.Thread):
    """`claims-audit run` for each night in turn, beside the live stack (its processes are
    the stack's, so that they are stopped with it)."""

    def __init__(self, root: Path, deliveries: Deliveries, procs: Processes) -> None:
        super().__init__(name="cli-reference", daemon=True)
        self.root, self.deliveries, self.procs = root, deliveries, procs
        self.error: str | None = None
        self.seconds: list[float] = []

    def out(self, night: int) -> Path:
        return self.root / f"out_night_{night}"

    @property
    def db_file(self) -> Path:
        return self.root / "audit.duckdb"

    def run(self) -> None:
        nights = [(self.deliveries.night_1, NIGHT_1[0]), (self.deliveries.night_2, NIGHT_2[0])]
        for number, (deliveries, as_of) in enumerate(nights, start=1):
            began = time.monotonic()
            input_dir = self.root / "input"
            shutil.rmtree(input_dir, ignore_errors=True)
            shutil.copytree(deliveries, input_dir)
            command = [
                str(VENV_BIN / "claims-audit"),
                "run",
                *("--input", str(input_dir), "--db", str(self.db_file)),
                *("--out", str(self.root / "out"), "--as-of", as_of),
            ]
            name = f"cli-night-{number}"
            started = self.procs.start(name, command, env=base_environment(), service=False)
            returncode = started.process.wait()
            self.procs.started.pop(name, None)
            if returncode != 0:
                self.error = (
                    f"claims-audit run --as-of {as_of} exited {returncode}: see {started.log}"
                )
                return
            shutil.copytree(self.root / "out", self.out(number))
            self.seconds.append(time.monotonic() - began)


def compare_outputs(live: Path, reference: Path) -> int:
    """The compared outputs, byte for byte; returns how many files were compared."""
    names = sorted(
        p.relative_to(reference).as_posix() for g in COMPARED_OUTPUTS for p in reference.glob(g)
    )
    check(names, f"the CLI wrote none of {COMPARED_OUTPUTS}")
    for name in names:
        live_file = live / name
        check(live_file.is_file(), f"the live run did not write {name}")
        check(
            live_file.read_bytes() == (reference / name).read_bytes(),
            f"{name} differs between the live run and the CLI",
        )
    return len(names)


def table_counts(db_file: Path) -> dict[str, int]:
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        tables = con.execute(
            "select database_name, schema_name, table_name from duckdb_tables() "
            "where database_name = current_database() order by all"
        ).fetchall()
        # fully qualified: a file named audit.duckdb is a catalog named like the schema
        return {
            f"{schema}.{table}": int(
                con.execute(f'select count(*) from "{db}"."{schema}"."{table}"').fetchall()[0][0]
            )
            for db, schema, table in tables
        }
    finally:
        con.close()


def compare_databases(live: Path, reference: Path) -> dict[str, int]:
    live_counts, reference_counts = table_counts(live), table_counts(reference)
    differ = {
        name: (live_counts.get(name), count)
        for name, count in reference_counts.items()
        if live_counts.get(name) != count
    }
    check(not differ, f"row counts (live, CLI) differ: {differ}")
    return live_counts


# alerts -------------------------------------------------------------------------------------


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def alert_listener() -> Iterator[tuple[str, list[bytes]]]:
    """A local HTTP listener for CLAIMS_AUDIT_ALERT_WEBHOOK; yields its URL and the bodies."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/claims-audit-alerts", _Webhook.received
    finally:
        server.shutdown()
        server.server_close()


def member_ids(deliveries: Path) -> set[str]:
    with (deliveries / "reference" / "members.csv").open(encoding="utf-8") as handle:
        return {row["member_id"] for row in csv.DictReader(handle)}


# the runs -----------------------------------------------------------------------------------


@dataclass
class Night:
    run_id: str
    state: str
    task_instances: list[dict[str, Any]] = field(default_factory=list)

    def mapped(self, task_id: str) -> list[str]:
        return sorted(
            str(ti["rendered_map_index"])
            for ti in self.task_instances
            if ti["task_id"] == task_id and ti["map_index"] >= 0
        )

    def states(self) -> dict[str, str]:
        return {
            f"{ti['task_id']}[{ti['rendered_map_index'] or ti['map_index']}]": str(ti["state"])
            for ti in self.task_instances
        }

    def hosts(self) -> set[str]:
        return {str(ti["hostname"]) for ti in self.task_instances if ti.get("hostname")}


def run_night(api: AirflowApi, stack: Stack, logical_date: str, poll: Any = None) -> Night:
    run_id = api.trigger(logical_date)
    print(f"  triggered {run_id}", flush=True)
    state = api.wait(run_id, RUN_TIMEOUT, poll, alive=stack.procs.check_alive)
    night = Night(run_id, state, api.task_instances(run_id))
    print(
        f"  {run_id}: {state}; {len(night.task_instances)} task instances on "
        f"{', '.join(sorted(night.hosts()))}",
        flush=True,
    )
    return night


def check_success(night: Night) -> None:
    bad = {k: v for k, v in night.states().items() if v not in ("success", "skipped")}
    check(night.state == "success" and not bad, f"{night.run_id} is {night.state}: {bad}")


def check_asset_events(api: AirflowApi, night: Night, as_of: str, out_dir: str) -> list[str]:
    """A log and a findings event per policy pack, with the extras consumers read."""
    events = api.asset_events(night.run_id)
    by_uri = {str(e["uri"]): e.get("extra") or {} for e in events}
    policies = night.mapped("facts")  # its map index is named by the policy
    expected = {
        f"claims-audit://{p}/{what}" for p in policies for what in ("reprocessing-log", "findings")
    }
    check(set(by_uri) == expected, f"asset events {sorted(by_uri)}, expected {sorted(expected)}")
    for uri, extra in by_uri.items():
        check(extra.get("as_of") == as_of, f"{uri}: extra as_of {extra.get('as_of')}")
        if uri.endswith("/reprocessing-log"):
            check({"opened", "reopened", "closed"} <= set(extra), f"{uri}: extra {extra}")
        else:
            check(extra.get("out_dir") == out_dir, f"{uri}: extra out_dir {extra.get('out_dir')}")
            check(int(extra.get("files_written", 0)) > 0, f"{uri}: extra {extra}")
    return sorted(by_uri)


@dataclass
class WorkerKill:
    """Kills the worker running the first ingest task it sees running, once."""

    stack: Stack
    killed: tuple[str, int, int] | None = None  # worker, pid, the ingest task's map index

    def __call__(self, task_instances: list[dict[str, Any]]) -> bool:
        """Whether it is done: a worker was killed, or every ingest task has finished."""
        for ti in task_instances:
            worker = ti.get("hostname")
            if ti["task_id"] == "ingest" and ti["state"] == "running" and worker in WORKERS:
                pid = self.stack.procs.started[worker].process.pid
                self.stack.procs.stop(worker, signal.SIGKILL)
                self.killed = (worker, pid, int(ti["map_index"]))
                print(
                    f"  killed {worker} (pid {pid}, SIGKILL to its process group) while it "
                    f"ran ingest, map index {ti['map_index']} (try {ti['try_number']})",
                    flush=True,
                )
                return True
        ingest = [ti for ti in task_instances if ti["task_id"] == "ingest"]
        return bool(ingest) and all(
            ti["state"] in ("success", "failed", "skipped") for ti in ingest
        )


def check_retried_elsewhere(api: AirflowApi, night: Night, kill: WorkerKill) -> str:
    if kill.killed is None:
        raise IntegrationFailure("no ingest task was seen running: no worker was killed")
    worker, _, map_index = kill.killed
    ti = next(
        t for t in night.task_instances if (t["task_id"], t["map_index"]) == ("ingest", map_index)
    )
    payer = ti["rendered_map_index"]
    tries = api.tries(night.run_id, "ingest", map_index)
    history = [(t["try_number"], t["state"], t.get("hostname")) for t in tries]
    check(len(tries) >= 2, f"ingest[{payer}] ran once: {history}")
    check(tries[0]["hostname"] == worker and tries[0]["state"] != "success", f"history {history}")
    check(
        tries[-1]["state"] == "success" and tries[-1]["hostname"] not in (worker, None),
        f"ingest[{payer}] did not succeed on the other worker: {history}",
    )
    return ", ".join(f"try {n} {state} on {host}" for n, state, host in history)


def check_rejected_file(api: AirflowApi, night: Night) -> str:
    """Only the rejected file's payer is ingested, it says what it rejected, nothing fails."""
    check_success(night)
    payer = REJECTED_FILE.split("/")[1]
    check(night.mapped("ingest") == [payer], f"ingest mapped over {night.mapped('ingest')}")
    ti = next(t for t in night.task_instances if t["task_id"] == "ingest" and t["map_index"] >= 0)
    summary = api.xcom(night.run_id, "ingest", int(ti["map_index"]))
    if isinstance(summary, str):
        summary = json.loads(summary)
    check(summary.get("files_rejected") == 1, f"ingest[{payer}] returned {summary}")
    check(summary.get("deliveries_loaded") == 0, f"ingest[{payer}] returned {summary}")
    log = api.task_log(night.run_id, "ingest", int(ti["map_index"]), int(ti["try_number"]))
    name = REJECTED_FILE.rpartition("/")[2]
    check("rejected" in log and name in log, f"ingest[{payer}]'s log does not name {name}")
    return f"ingest[{payer}] returned {summary}"


def check_unreachable(api: AirflowApi, night: Night, alerts: list[bytes], members: set[str]) -> str:
    states = night.states()
    check(night.state == "failed", f"{night.run_id} is {night.state}")
    check(states.get("stage_landing[-1]") == "failed", f"stage_landing is {states}")
    check(states.get("report[-1]") == "upstream_failed", f"report is {states.get('report[-1]')}")
    tries = api.tries(night.run_id, "stage_landing", -1)
    check(len(tries) == 3, f"stage_landing tried {len(tries)} times, expected 1 + 2 retries")
    check(len(alerts) == 1, f"{len(alerts)} alerts posted, expected 1 (stage_landing, for good)")
    body = alerts[0].decode()
    alert = json.loads(body)
    check(set(alert) == ALERT_KEYS, f"alert keys {sorted(alert)}")
    check(
        (alert["task_id"], alert["run_id"], alert["try_number"])
        == ("stage_landing", night.run_id, 3),
        f"alert {alert}",
    )
    check(not any(m in body for m in members), "the alert quotes a member ID")
    return f"{len(tries)} tries, alert {alert}"
