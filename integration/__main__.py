"""`python -m integration` (make integration): start the stack, run the nights, stop it all.

Every process started is stopped by its pid and the throwaway folder removed, whether the
run passes, fails or is interrupted; INTEGRATION_KEEP=1 keeps the folder (logs) for a look.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from integration import scenario, services
from integration.api import AirflowApi, ApiError
from integration.scenario import check
from integration.settings import base_environment, dotenv
from integration.stack import (
    WORKERS,
    Stack,
    create_pool_and_admin,
    migrate,
    restart_workers,
    start_components,
    start_worker,
)

# moto takes any credentials; the workers find these the usual AWS way, in their environment
AWS = {
    "AWS_ACCESS_KEY_ID": "integration",
    "AWS_SECRET_ACCESS_KEY": "integration",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class Steps:
    """Prints each step as it starts and its time when done."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.times: list[tuple[str, float]] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        print(f"== {name}", flush=True)
        began = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - began
            self.times.append((name, seconds))
            print(f"   {name}: {seconds:.1f} s", flush=True)

    def summary(self) -> None:
        print("== step times")
        for name, seconds in self.times:
            print(f"   {seconds:6.1f} s  {name}")
        print(f"   {time.monotonic() - self.started:6.1f} s  in all", flush=True)


def run(
    root: Path, procs: services.Processes, step: Steps, alerts_url: str, alerts: list[bytes]
) -> None:
    with step("Debian packages (postgresql, redis-server, openssh-server)"):
        installed = services.ensure_debian_packages()
        print(f"  installed: {', '.join(installed) or 'none, all were present'}")

    with step("deliveries: the demo's two nights; the CLI runs them in the background"):
        deliveries = scenario.generate_deliveries(root / "deliveries")
        (root / "cli").mkdir()
        cli = scenario.CliReference(root / "cli", deliveries, procs)
        cli.start()

    with step("servers: Postgres, Redis, moto (S3), OpenSSH (SFTP)"):
        port = {name: services.free_port() for name in ("postgres", "redis", "moto", "sshd", "api")}
        for folder in ("reference", "audit", "out"):
            (root / folder).mkdir()
        s3_endpoint = f"http://127.0.0.1:{port['moto']}"
        values = dotenv(
            {
                "AIRFLOW_API_PORT": str(port["api"]),
                # two task slots a worker: the machine has two cores for everything
                "AIRFLOW_WORKER_CONCURRENCY": "2",
                "CLAIMS_AUDIT_HOST_LANDING_DIR": f"s3://{scenario.BUCKET}/landing",
                "CLAIMS_AUDIT_HOST_REFERENCE_DIR": str(root / "reference"),
                "CLAIMS_AUDIT_HOST_OUT_DIR": str(root / "out"),
                "CLAIMS_AUDIT_LANDING": f"s3://{scenario.BUCKET}/landing",
                "CLAIMS_AUDIT_LANDING_OPTIONS": json.dumps({"endpoint_url": s3_endpoint}),
                "CLAIMS_AUDIT_REFERENCE": str(root / "reference"),
                "CLAIMS_AUDIT_DB": str(root / "audit" / "claims_audit.duckdb"),
                "CLAIMS_AUDIT_OUT": str(root / "out"),
                "CLAIMS_AUDIT_WORK": str(root / "audit" / "work"),
                "CLAIMS_AUDIT_ALERT_WEBHOOK": alerts_url,
            }
        )
        services.start_postgres(
            procs, root / "postgres", port["postgres"], values["POSTGRES_PASSWORD"]
        )
        services.start_redis(procs, root / "redis", port["redis"], values["REDIS_PASSWORD"])
        services.start_moto(procs, port["moto"], base_environment() | AWS)
        sftp = services.start_sshd(procs, root / "sshd", port["sshd"])
        stack = Stack(
            root=root,
            procs=procs,
            values=values,
            addresses={
                "postgres": f"127.0.0.1:{port['postgres']}",
                "redis": f"127.0.0.1:{port['redis']}",
                "airflow-apiserver": f"127.0.0.1:{port['api']}",
            },
            api_port=port["api"],
            extra=AWS,
        )

    with step("airflow-init: db migrate"):
        migrate(stack)

    with step(
        "api-server, scheduler, dag-processor, triggerer, two Celery workers; meanwhile "
        "airflow-init's pool and admin"
    ):
        # nothing runs a task before the DAG is unpaused, and the REST API needs the admin
        # only then: the two go on while the components start
        init = ThreadPoolExecutor(max_workers=1).submit(create_pool_and_admin, stack)
        start_components(stack)
        init.result()

    with step("REST: token from the FAB auth manager, the DAG parsed, unpaused"):
        api = AirflowApi(
            stack.api_url, values["AIRFLOW_ADMIN_USERNAME"], values["AIRFLOW_ADMIN_PASSWORD"]
        )
        services.wait_for("the nightly DAG", lambda: _parsed(api), 180)
        api.unpause()

    hosts: set[str] = set()
    night_1 = scenario.claim_files(deliveries.night_1)
    with step("night 1 (2025-06-30): deliveries in the S3 drop zone"):
        scenario.land_reference(deliveries.night_1, root / "reference")
        scenario.land_in_s3(deliveries.night_1, s3_endpoint, "landing")
        night = scenario.run_night(api, stack, scenario.NIGHT_1[1])
        scenario.check_success(night)
        expected = scenario.payers_with_new_files(set(), night_1)
        check(
            night.mapped("ingest") == expected,
            f"ingest mapped over {night.mapped('ingest')}, expected {expected}",
        )
        events = scenario.check_asset_events(api, night, scenario.NIGHT_1[0], str(root / "out"))
        print(f"  ingest mapped over {expected}; asset events {events}")
        hosts |= night.hosts()
        _wait_for_cli(cli, 1)
        compared = scenario.compare_outputs(root / "out", cli.out(1))
        print(f"  {compared} outputs identical to the CLI's night 1")

    with step("night 2 (2025-10-01): the drop zone moves to SFTP; a worker is killed in ingest"):
        sftp_folder = f"{root}/sftp-dropzone"
        changes = {
            "CLAIMS_AUDIT_LANDING": f"sftp://{sftp.user}@127.0.0.1:{sftp.port}{sftp_folder}",
            "CLAIMS_AUDIT_LANDING_OPTIONS": json.dumps(
                {"key_filename": str(sftp.client_key), "known_hosts": str(sftp.known_hosts)}
            ),
        }
        stack.values |= changes
        restart_workers(stack)
        scenario.land_reference(deliveries.night_2, root / "reference")
        night_2 = scenario.claim_files(deliveries.night_2)
        scenario.land_in_sftp({f: deliveries.night_2 / f for f in night_2}, sftp, sftp_folder)
        kill = scenario.WorkerKill(stack)
        night = scenario.run_night(api, stack, scenario.NIGHT_2[1], poll=kill)
        scenario.check_success(night)
        expected = scenario.payers_with_new_files(night_1, night_2)
        check(
            night.mapped("ingest") == expected,
            f"ingest mapped over {night.mapped('ingest')}, expected {expected}",
        )
        print(f"  ingest mapped over {expected}")
        print(f"  the killed worker's task: {scenario.check_retried_elsewhere(api, night, kill)}")
        events = scenario.check_asset_events(api, night, scenario.NIGHT_2[0], str(root / "out"))
        print(f"  asset events {events}")
        hosts |= night.hosts()
        _wait_for_cli(cli, 2)
        compared = scenario.compare_outputs(root / "out", cli.out(2))
        counts = scenario.compare_databases(root / "audit" / "claims_audit.duckdb", cli.db_file)
        print(
            f"  {compared} outputs identical to the CLI's night 2; the same row counts in all "
            f"{len(counts)} tables (deliveries {counts.get('audit.deliveries')}, claim lines "
            f"{counts.get('raw.claim_lines')}, findings {counts.get('audit.findings')})"
        )

    with step("night 3 (2025-10-02): a file the contract rejects"):
        killed = kill.killed[0] if kill.killed else None
        if killed:
            start_worker(stack, killed)
        rejected = root / "rejected.csv"
        rejected.write_text("not_a_claim_column,nor_this\n1,2\n", encoding="utf-8")
        scenario.land_in_sftp({scenario.REJECTED_FILE: rejected}, sftp, sftp_folder)
        night = scenario.run_night(api, stack, scenario.NIGHT_3[1])
        print(f"  {scenario.check_rejected_file(api, night)}")
        hosts |= night.hosts()
        check(set(WORKERS) <= hosts, f"tasks ran only on {sorted(hosts)}")
        print(f"  tasks ran on {sorted(hosts)}")
        check(not alerts, f"{len(alerts)} alert(s) posted before any task failed for good")

    with step("night 4 (2025-10-03): the SFTP drop zone unreachable"):
        procs.stop("sshd")
        night = scenario.run_night(api, stack, scenario.NIGHT_4[1])
        members = scenario.member_ids(deliveries.night_2)
        print(f"  stage_landing: {scenario.check_unreachable(api, night, alerts, members)}")

    print("== REST calls made")
    for call, times in sorted(api.calls.items()):
        print(f"   {times:4d} x {call}")


def _parsed(api: AirflowApi) -> bool:
    try:
        api.dag()
    except (ApiError, OSError):
        return False
    return True


def _wait_for_cli(cli: scenario.CliReference, night: int) -> None:
    while cli.is_alive() and len(cli.seconds) < night:
        time.sleep(0.5)
    check(cli.error is None, f"the CLI's reference run failed: {cli.error}")
    check(len(cli.seconds) >= night, f"the CLI's reference run stopped before night {night}")
    print(f"  the CLI ran night {night} in {cli.seconds[night - 1]:.1f} s")


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    step = Steps()
    root = Path(tempfile.mkdtemp(prefix="claims-audit-integration-"))
    # Postgres runs as another account, in a folder of its own under this one
    root.chmod(0o711)
    (root / "logs").mkdir()
    procs = services.Processes(root / "logs")
    made_run_sshd = os.geteuid() == 0 and not Path("/run/sshd").exists()
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)
    os.environ.update(AWS)  # for the driver's own uploads to moto
    print(f"throwaway folder: {root}", flush=True)
    failed = True
    try:
        with scenario.alert_listener() as (alerts_url, alerts):
            run(root, procs, step, alerts_url, alerts)
        failed = False
    except (scenario.IntegrationFailure, services.ServiceError) as error:
        print(f"FAILED: {error}", file=sys.stderr, flush=True)
    except Exception as error:
        print(f"FAILED: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        raise
    finally:
        if failed:
            _show_logs(procs)
        with step("stop everything, remove the throwaway folder"):
            procs.stop_all()
            if made_run_sshd:
                shutil.rmtree("/run/sshd", ignore_errors=True)
            if os.environ.get("INTEGRATION_KEEP") == "1":
                print(f"  kept {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
        step.summary()
    print("make integration: FAILED" if failed else "make integration: passed", flush=True)
    return 1 if failed else 0


def _show_logs(procs: services.Processes) -> None:
    for started in procs.started.values():
        print(f"--- {started.name} (pid {started.process.pid}), last lines of {started.log}:")
        print(services.tail(started.log, 1200))


if __name__ == "__main__":
    sys.exit(main())
