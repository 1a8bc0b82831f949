"""The stack's settings, read from the files the compose stack reads.

docker-compose.yml holds every component's environment (x-airflow-common and each service's
own), written in terms of the `.env` variables that .env.example lists. Here the same
environment is built from the same file: the `.env` values are this run's (generated secrets,
throwaway folders), and where compose names a service host (`postgres`, `redis`,
`airflow-apiserver`), the loopback address the service was started on takes its place.
A variable this run sets that .env.example does not list fails the run, so the two cannot
drift apart.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"

# `${NAME}`, `${NAME:-default}` and `${NAME:?message}`, as Compose interpolates them
_REFERENCE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")

# What differs from a deployment, and why. Everything else is the compose file's.
INTEGRATION_ONLY = {
    # the nights are triggered for fixed logical dates; the cron would add tonight's run
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    # a killed worker's task is found without a heartbeat in seconds rather than 5 minutes
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    # the DAG's retries wait Airflow's default delay, 5 minutes in a deployment
    "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "3",
    # the DAG file does not change during the run: parsed once, not every 30 seconds
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    # each Celery worker names itself in the task instances it runs (integration/worker_host.py)
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "integration.worker_host.hostname",
    "PYTHONPATH": str(REPO),
}


class SettingsError(RuntimeError):
    """The compose file or .env.example cannot give this run its settings."""


def env_example() -> dict[str, str]:
    """The variables .env.example lists, with its values (empty for every secret)."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def dotenv(overrides: Mapping[str, str]) -> dict[str, str]:
    """This run's `.env`: .env.example's values, generated secrets, then `overrides`."""
    values = env_example()
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise SettingsError(f"not in .env.example: {', '.join(unknown)}")
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_JWT_SECRET"):
        values[name] = secrets.token_hex(24)
    values["AIRFLOW_API_SECRET_KEY"] = secrets.token_hex(32)
    values["AIRFLOW_ADMIN_PASSWORD"] = secrets.token_hex(16)
    values["AIRFLOW_FERNET_KEY"] = _fernet_key()
    return values | dict(overrides)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def compose_environment(service: str, values: Mapping[str, str]) -> dict[str, str]:
    """A compose service's environment, interpolated with `values` (the run's `.env`)."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    environment: dict[str, Any] = compose["services"][service].get("environment") or {}
    return {name: interpolate(str(value), values) for name, value in environment.items()}


def interpolate(text: str, values: Mapping[str, str]) -> str:
    def value_of(match: re.Match[str]) -> str:
        value = values.get(match["name"], "")
        if value:
            return value
        if match["op"] == ":?":
            raise SettingsError(match["arg"])
        return match["arg"] if match["op"] == ":-" else ""

    return _REFERENCE.sub(value_of, text).replace("$$", "$")


def localized(environment: Mapping[str, str], addresses: Mapping[str, str]) -> dict[str, str]:
    """`environment` with each URL naming a compose service pointed at its `host:port`."""
    return {name: _localized_url(value, addresses) for name, value in environment.items()}


def _localized_url(value: str, addresses: Mapping[str, str]) -> str:
    if "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.hostname not in addresses:
        return value
    userinfo = parts.netloc.rpartition("@")[0]
    address = addresses[parts.hostname]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{address}" if userinfo else address))


def base_environment() -> dict[str, str]:
    """This process's environment without any Airflow or claims-audit setting of its own."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "CLAIMS_AUDIT_", "AWS_", "PYTHONPATH"))
    }
