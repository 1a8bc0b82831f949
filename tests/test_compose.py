"""Static checks of the deployment files: docker-compose.yml, Dockerfile, .env.example.

No Docker daemon is needed: the compose file is validated against the vendored
Compose Specification schema and inspected as data.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA_FILE = Path(__file__).resolve().parent / "fixtures" / "compose-spec.json"

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
ONE_SHOT_SERVICES = {"airflow-init"}
EXPECTED_SERVICES = AIRFLOW_SERVICES | ONE_SHOT_SERVICES | {"postgres", "redis"}

AUDIT_MOUNTS = (
    "/opt/claims-audit/landing",
    "/opt/claims-audit/reference",
    "/opt/claims-audit/db",
    "/opt/claims-audit/out",
)
AUDIT_ENV = (
    "CLAIMS_AUDIT_LANDING",
    "CLAIMS_AUDIT_REFERENCE",
    "CLAIMS_AUDIT_DB",
    "CLAIMS_AUDIT_OUT",
)

SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY", re.IGNORECASE)
# `${VAR}`, `${VAR?msg}` or `${VAR:?msg}`: a reference with no default value to leak.
SECRET_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}")
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://([^/@\s]*)@", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml must be a YAML mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        assert sep, f".env.example line is not NAME=value: {line!r}"
        assert name not in settings, f"{name} is listed twice in .env.example"
        settings[name] = value
    return settings


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Dockerfile instructions, with continuation lines joined and comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [line.strip() for line in joined.splitlines() if line.strip()]


def _strings(node: Any) -> Iterator[str]:
    """Every string in the document, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _named_values(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, name, value) for every mapping entry and every `NAME=value` list item."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            yield where, str(key), value
            yield from _named_values(value, where)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            where = f"{path}[{index}]"
            if isinstance(item, str) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", item):
                name, _, value = item.partition("=")
                yield where, name, value
            yield from _named_values(item, where)


def _compose_variables(compose: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for text in _strings(compose):
        # `$$` is Compose's escape for a literal `$` handed to the container's shell.
        names.update(VARIABLE.findall(text.replace("$$", "")))
    return names


def _volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> "ro" or "rw"; a source may itself hold `${VAR:?message}`."""
    targets: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            match = re.search(r":(/[^:]*)(?::([a-zA-Z,]+))?$", volume)
            assert match, f"cannot read volume {volume!r}"
            modes = (match.group(2) or "rw").split(",")
            targets[match.group(1)] = "ro" if "ro" in modes else "rw"
        else:
            targets[volume["target"]] = "ro" if volume.get("read_only") else "rw"
    return targets


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    assert isinstance(deps, dict), "depends_on must use the long form with conditions"
    return {name: spec["condition"] for name, spec in deps.items()}


# --- The compose file ---------------------------------------------------------


def test_compose_is_a_yaml_mapping_with_services(compose: dict[str, Any]) -> None:
    assert isinstance(compose.get("services"), dict)
    assert "version" not in compose, "the top-level `version` key is obsolete"


def test_vendored_schema_is_a_valid_draft7_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["title"] == "Compose Specification"


def test_compose_validates_against_compose_spec(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path)
    )
    messages = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    assert not messages, "\n".join(messages)


def test_schema_rejects_what_compose_would_reject(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-worker"]["replicas_typo"] = 3
    broken["services"]["airflow-scheduler"]["depends_on"]["postgres"]["condition"] = "ready"
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(broken))
    assert errors, "the schema should catch an unknown key and a bad depends_on condition"


def test_defines_the_stack_services(services: dict[str, Any]) -> None:
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"missing services: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES - ONE_SHOT_SERVICES))
def test_long_running_service_has_healthcheck(services: dict[str, Any], name: str) -> None:
    check = services[name].get("healthcheck")
    assert check, f"{name} has no healthcheck"
    assert not check.get("disable"), f"{name} disables its healthcheck"
    test = check["test"]
    first = test[0] if isinstance(test, list) else test
    assert first not in {"NONE", ""}, f"{name}'s healthcheck runs nothing"
    assert services[name].get("restart") in {"always", "unless-stopped"}


def test_every_long_running_service_is_covered(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES or service.get("profiles"):
            continue
        assert "healthcheck" in service, f"{name} has no healthcheck"


def test_init_is_one_shot_and_prepares_the_database(services: dict[str, Any]) -> None:
    init = services["airflow-init"]
    assert init.get("restart") in {"no", None}
    script = "\n".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert "airflow db migrate" in script
    env = init["environment"]
    for name in ("_AIRFLOW_WWW_USER_USERNAME", "_AIRFLOW_WWW_USER_PASSWORD"):
        assert SECRET_REFERENCE.fullmatch(str(env[name])), f"{name} must come from .env"
    assert "_AIRFLOW_WWW_USER_CREATE" in script or env.get("_AIRFLOW_WWW_USER_CREATE")


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_airflow_service_waits_for_its_dependencies(services: dict[str, Any], name: str) -> None:
    deps = _depends_on(services[name])
    assert deps.get("postgres") == "service_healthy"
    assert deps.get("redis") == "service_healthy"
    assert deps.get("airflow-init") == "service_completed_successfully"


def test_init_waits_for_healthy_backends(services: dict[str, Any]) -> None:
    deps = _depends_on(services["airflow-init"])
    assert deps == {"postgres": "service_healthy", "redis": "service_healthy"}


def test_worker_waits_for_the_execution_api(services: dict[str, Any]) -> None:
    assert _depends_on(services["airflow-worker"]).get("airflow-apiserver") == "service_healthy"


def test_airflow_services_share_the_common_block(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    common = compose["x-airflow-common"]
    for name in AIRFLOW_SERVICES | ONE_SHOT_SERVICES:
        service = services[name]
        assert service["image"] == common["image"], name
        assert service.get("build") == common["build"], name
        for key, value in common["environment"].items():
            assert service["environment"].get(key) == value, f"{name} overrides {key}"


def test_commands_match_airflow_3_components(services: dict[str, Any]) -> None:
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"
    assert services["airflow-worker"]["command"] == "celery worker"


def test_celery_executor_configuration(compose: dict[str, Any]) -> None:
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert "@redis:" in env["AIRFLOW__CELERY__BROKER_URL"]
    # the result backend names the metadata connection's driver: a bare postgresql:// lets
    # SQLAlchemy pick its default driver, which need not be installed
    driver = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].partition("://")[0]
    assert driver == "postgresql+psycopg2"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith(f"db+{driver}://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
        "http://airflow-apiserver:8080/"
    )
    # One JWT secret for every component, from .env.
    assert SECRET_REFERENCE.fullmatch(env["AIRFLOW__API_AUTH__JWT_SECRET"])
    assert SECRET_REFERENCE.fullmatch(env["AIRFLOW__CORE__FERNET_KEY"])


def test_worker_can_be_scaled(services: dict[str, Any]) -> None:
    worker = services["airflow-worker"]
    assert "container_name" not in worker, "a fixed name prevents --scale"
    assert "ports" not in worker, "a published port prevents --scale"
    assert "AIRFLOW__CELERY__WORKER_CONCURRENCY" in worker["environment"]


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_audit_folders_and_dags_are_mounted(services: dict[str, Any], name: str) -> None:
    targets = _volume_targets(services[name])
    for target in (*AUDIT_MOUNTS, "/opt/airflow/dags"):
        assert target in targets, f"{name} does not mount {target}"
    assert targets["/opt/claims-audit/landing"] == "ro", "extracts must stay untouched"
    assert targets["/opt/claims-audit/reference"] == "ro", "so must the state's reference files"
    assert targets["/opt/claims-audit/db"] == "rw"
    assert targets["/opt/claims-audit/out"] == "rw"
    env = services[name]["environment"]
    for variable in AUDIT_ENV:
        assert variable in env, f"{name} does not set {variable}"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith(("/", ".", "~", "$")):
                assert source in declared, f"{name} uses undeclared volume {source}"


# --- Secrets and settings -----------------------------------------------------


def test_no_literal_secret_in_compose(compose: dict[str, Any]) -> None:
    offenders = [
        f"{where} = {value!r}"
        for where, name, value in _named_values(compose)
        if SECRET_NAME.search(name)
        and not isinstance(value, dict | list)
        and not (isinstance(value, str) and SECRET_REFERENCE.fullmatch(value))
    ]
    assert not offenders, "secrets must be ${VAR} references to .env:\n" + "\n".join(offenders)


def test_no_literal_credentials_in_urls(compose: dict[str, Any]) -> None:
    for text in _strings(compose):
        for userinfo in URL_CREDENTIALS.findall(text):
            _, _, password = userinfo.partition(":")
            assert not password or SECRET_REFERENCE.fullmatch(password), (
                f"literal password in URL: {text!r}"
            )


def test_every_compose_variable_is_in_env_example(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    missing = _compose_variables(compose) - env_example.keys()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_env_example_lists_only_what_compose_reads(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    unused = {
        name
        for name in env_example.keys() - _compose_variables(compose)
        if not name.startswith("COMPOSE_")
    }
    assert not unused, f".env.example settings the compose file never reads: {sorted(unused)}"


def test_env_example_ships_no_secret_values(env_example: dict[str, str]) -> None:
    filled = [
        name
        for name, value in env_example.items()
        if SECRET_NAME.search(name) and value.strip().strip("'\"")
    ]
    assert not filled, f"leave secrets blank in .env.example: {filled}"


def test_env_example_comments_every_setting() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert index > 0 and lines[index - 1].startswith("#"), f"no comment above {line!r}"


# --- Dockerfile ---------------------------------------------------------------


def test_dockerfile_base_matches_the_locked_airflow(dockerfile: list[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pin = next(d for d in project["dependencies"] if d.startswith("apache-airflow=="))
    version = pin.split("==", 1)[1]
    froms = [line for line in dockerfile if line.upper().startswith("FROM ")]
    assert froms, "Dockerfile has no FROM"
    assert froms[0].split()[1] == f"apache/airflow:{version}-python3.11"


def test_dockerfile_installs_from_the_lock(dockerfile: list[str]) -> None:
    copies = " ".join(line for line in dockerfile if line.upper().startswith("COPY "))
    for source in ("pyproject.toml", "uv.lock", "README.md", "pipelines/", "sql/", "dags/"):
        assert source in copies, f"Dockerfile does not copy {source}"
    assert "expectations/" in copies
    assert "policies/" in copies, "the image audits no policy without its packs"
    runs = [line for line in dockerfile if line.upper().startswith("RUN ")]
    exports = [r for r in runs if "uv export" in r or "uv sync" in r]
    assert exports, "dependencies must come from uv.lock (uv export or uv sync)"
    assert all("--frozen" in r or "--locked" in r for r in exports)
    assert all("--no-dev" in r for r in exports), "dev dependencies do not belong in the image"
    installs = " ".join(r for r in runs if "pip install" in r)
    assert "--no-deps" in installs, "the project itself must not re-resolve dependencies"
    assert "compile" in " ".join(runs), "bytecode should be compiled at build time"


def test_dockerfile_ends_as_the_airflow_user(dockerfile: list[str]) -> None:
    users = [line.split()[1] for line in dockerfile if line.upper().startswith("USER ")]
    assert users, "Dockerfile never sets USER"
    assert users[-1] == "airflow"
