"""`make integration` builds each component's environment from docker-compose.yml and
.env.example: the settings it derives, checked without starting anything."""

from __future__ import annotations

import pytest

from integration import settings

SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-worker", "airflow-init")
ADDRESSES = {
    "postgres": "127.0.0.1:5001",
    "redis": "127.0.0.1:5002",
    "airflow-apiserver": "127.0.0.1:5003",
}


@pytest.mark.parametrize("service", SERVICES)
def test_every_compose_setting_is_filled_from_the_runs_env(service: str) -> None:
    environment = settings.compose_environment(service, settings.dotenv({}))
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name, value in environment.items():
        assert "${" not in value, name


def test_service_hosts_become_loopback_addresses() -> None:
    values = settings.dotenv({})
    local = settings.localized(settings.compose_environment("airflow-worker", values), ADDRESSES)
    password = values["POSTGRES_PASSWORD"]
    assert local["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"postgresql+psycopg2://airflow:{password}@127.0.0.1:5001/airflow"
    )
    assert local["AIRFLOW__CELERY__BROKER_URL"] == (
        f"redis://:{values['REDIS_PASSWORD']}@127.0.0.1:5002/0"
    )
    assert local["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:5003/execution/"
    # a URL naming no compose service is left alone
    outside = settings.localized({"URL": "s3://postgres-bucket/landing"}, ADDRESSES)
    assert outside == {"URL": "s3://postgres-bucket/landing"}


def test_a_setting_missing_from_env_example_fails() -> None:
    assert settings.dotenv({"CLAIMS_AUDIT_LANDING": "s3://b/p"})["CLAIMS_AUDIT_LANDING"]
    with pytest.raises(settings.SettingsError, match="CLAIMS_AUDIT_LANDNG"):
        settings.dotenv({"CLAIMS_AUDIT_LANDNG": "s3://b/p"})


def test_a_required_setting_left_empty_fails_as_compose_would() -> None:
    values = settings.dotenv({}) | {"AIRFLOW_JWT_SECRET": ""}
    with pytest.raises(settings.SettingsError, match="AIRFLOW_JWT_SECRET"):
        settings.compose_environment("airflow-scheduler", values)
