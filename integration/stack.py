"""Airflow's components as docker-compose.yml runs them, here as processes of one machine.

airflow-init's steps (migrate, the pool, the admin), then the api-server, scheduler,
dag-processor, triggerer and two Celery workers, each with the environment compose gives it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from integration import settings
from integration.services import (
    VENV_BIN,
    Processes,
    ServiceError,
    Started,
    free_port,
    http_ok,
    wait_for,
)

AIRFLOW = str(VENV_BIN / "airflow")
WORKERS = ("worker-a", "worker-b")


@dataclass
class Stack:
    """The running stack: its throwaway folder, processes, `.env` values and addresses."""

    root: Path
    procs: Processes
    values: dict[str, str]  # this run's .env
    addresses: dict[str, str]  # compose service -> 127.0.0.1:port
    api_port: int
    extra: dict[str, str] = field(default_factory=dict)  # AWS credentials for moto

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def environment(self, service: str, **dotenv_changes: str) -> dict[str, str]:
        """What compose gives `service`, pointed at this machine's servers."""
        values = self.values | dotenv_changes
        compose = settings.compose_environment(service, values)
        return (
            settings.base_environment()
            | settings.localized(compose, self.addresses)
            | {
                "AIRFLOW_HOME": str(self.root / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(settings.REPO / "dags"),
            }
            | settings.INTEGRATION_ONLY
            | self.extra
        )

    def airflow(self, *args: str, service: str = "airflow-init") -> None:
        done = subprocess.run(
            [AIRFLOW, *args],
            env=self.environment(service),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise ServiceError(f"airflow {args[0]} {args[1:2]} failed: {done.stderr[-2000:]}")


def init_commands() -> list[list[str]]:
    """airflow-init's `airflow ...` lines other than the migration, as argument lists."""
    text = settings.COMPOSE_FILE.read_text(encoding="utf-8")
    lines = re.findall(r"^\s*/entrypoint (airflow .+)$", text, re.M)
    return [shlex.split(line)[1:] for line in lines if "db migrate" not in line]


def migrate(stack: Stack) -> None:
    stack.airflow("db", "migrate")


def create_pool_and_admin(stack: Stack) -> None:
    """The rest of what airflow-init does, once the database is migrated: the pool, the admin."""
    for command in init_commands():
        stack.airflow(*command)
    admin = stack.environment("airflow-init")
    stack.airflow(
        "users",
        "create",
        *("--username", admin["_AIRFLOW_WWW_USER_USERNAME"]),
        *("--password", admin["_AIRFLOW_WWW_USER_PASSWORD"]),
        *("--email", admin["_AIRFLOW_WWW_USER_EMAIL"]),
        *("--role", admin["_AIRFLOW_WWW_USER_ROLE"]),
        *("--firstname", "Airflow", "--lastname", "Admin"),
    )


def start_components(stack: Stack) -> None:
    """The api-server first (the others report to it), then the rest at once."""
    api = stack.procs.start(
        "api-server",
        # one worker process: two cores are shared by the whole stack
        [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(stack.api_port)],
        env=stack.environment("airflow-apiserver") | {"AIRFLOW__API__WORKERS": "1"},
    )
    health = free_port()
    scheduler = stack.procs.start(
        "scheduler",
        [AIRFLOW, "scheduler"],
        env=stack.environment("airflow-scheduler")
        | {"AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(health)},
    )
    stack.procs.start(
        "dag-processor", [AIRFLOW, "dag-processor"], env=stack.environment("airflow-dag-processor")
    )
    # its log server would take a fixed port; its logs are on this machine's disk anyway
    triggerer = [AIRFLOW, "triggerer", "--skip-serve-logs"]
    stack.procs.start("triggerer", triggerer, env=stack.environment("airflow-triggerer"))
    for name in WORKERS:
        start_worker(stack, name)
    wait_for("api-server", lambda: http_ok(f"{stack.api_url}/api/v2/monitor/health"), 180, api)
    wait_for("scheduler", lambda: http_ok(f"http://127.0.0.1:{health}/health"), 180, scheduler)
    for name in WORKERS:
        wait_for_worker(stack, name)


def start_worker(stack: Stack, name: str, **dotenv_changes: str) -> Started:
    """A Celery worker named `name`, with this run's `.env` changed by `dotenv_changes`."""
    env = stack.environment("airflow-worker", **dotenv_changes) | {"INTEGRATION_WORKER_NAME": name}
    argv = [AIRFLOW, "celery", "worker", "--celery-hostname", f"{name}@%h", "--skip-serve-logs"]
    return stack.procs.start(name, argv, env=env)


def wait_for_worker(stack: Stack, name: str) -> None:
    started = stack.procs.started[name]

    def ready() -> bool:
        return re.search(rf"{name}@\S+ ready\.", started.output()) is not None

    wait_for(name, ready, 180, started)


def restart_workers(stack: Stack, **dotenv_changes: str) -> None:
    """Stop both workers (warm shutdown) and start them with `dotenv_changes`, as a deployment
    restarts its workers after changing `.env`. Queued tasks wait for them, so nothing waits
    here for them to be ready."""
    for name in WORKERS:
        if stack.procs.running(name):
            stack.procs.stop(name)
        else:
            stack.procs.started.pop(name, None)
    for name in WORKERS:
        start_worker(stack, name, **dotenv_changes)
