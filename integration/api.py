"""The Airflow REST API (v2), as an operator calls it: a token from the auth manager, then JSON."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from typing import Any

NIGHTLY = "claims_audit_nightly"
FINISHED = {"success", "failed"}


class ApiError(RuntimeError):
    pass


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.calls: Counter[str] = Counter()  # "METHOD /path template" -> times called
        token = self._request("POST", "/auth/token", {"username": username, "password": password})
        self._token = token["access_token"]

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        template: str | None = None,
    ) -> Any:
        self.calls[f"{method} {template or path}"] += 1
        url = self.base_url + urllib.parse.quote(path, safe="/:+")
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if getattr(self, "_token", None):
            headers["Authorization"] = f"Bearer {self._token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise ApiError(f"{method} {path}: HTTP {error.code}: {detail}") from None
        content = raw.decode() if raw else ""
        return json.loads(content) if content.lstrip().startswith(("{", "[")) else content

    def dag(self) -> dict[str, Any]:
        return dict(self._request("GET", f"/api/v2/dags/{NIGHTLY}", template="/api/v2/dags/{id}"))

    def unpause(self) -> None:
        path = f"/api/v2/dags/{NIGHTLY}"
        self._request("PATCH", path, {"is_paused": False}, template="/api/v2/dags/{id}")

    def trigger(self, logical_date: str) -> str:
        run = self._request(
            "POST",
            f"/api/v2/dags/{NIGHTLY}/dagRuns",
            {"logical_date": logical_date, "conf": {}},
            template="/api/v2/dags/{id}/dagRuns",
        )
        return str(run["dag_run_id"])

    def run_state(self, run_id: str) -> str:
        run = self._request(
            "GET",
            f"/api/v2/dags/{NIGHTLY}/dagRuns/{run_id}",
            template="/api/v2/dags/{id}/dagRuns/{run}",
        )
        return str(run["state"])

    def wait(self, run_id: str, timeout: float, poll: Any = None, alive: Any = None) -> str:
        """The run's final state. `poll(task_instances)`, when given, is called every half
        second until it returns True; otherwise only the run's state is asked for, every two
        seconds (each call costs the api-server CPU that the tasks need). `alive()` raises
        when a process the run needs has died, rather than waiting out the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if alive is not None:
                alive()
            if poll is not None and poll(self.task_instances(run_id)):
                poll = None
            state = self.run_state(run_id)
            if state in FINISHED:
                return state
            time.sleep(0.5 if poll is not None else 2)
        raise ApiError(f"run {run_id} not finished after {timeout:.0f} s")

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        found = self._request(
            "GET",
            f"/api/v2/dags/{NIGHTLY}/dagRuns/{run_id}/taskInstances",
            query={"limit": 1000},
            template="/api/v2/dags/{id}/dagRuns/{run}/taskInstances",
        )
        return list(found["task_instances"])

    def tries(self, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
        found = self._request(
            "GET",
            f"/api/v2/dags/{NIGHTLY}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries",
            template="/api/v2/dags/{id}/dagRuns/{run}/taskInstances/{task}/{map_index}/tries",
        )
        return list(found["task_instances"])

    def xcom(self, run_id: str, task_id: str, map_index: int) -> Any:
        entry = self._request(
            "GET",
            f"/api/v2/dags/{NIGHTLY}/dagRuns/{run_id}/taskInstances/{task_id}"
            "/xcomEntries/return_value",
            query={"map_index": map_index, "deserialize": "true"},
            template="/api/v2/dags/{id}/dagRuns/{run}/taskInstances/{task}/xcomEntries/{key}",
        )
        return entry["value"]

    def task_log(self, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
        found = self._request(
            "GET",
            f"/api/v2/dags/{NIGHTLY}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            query={"map_index": map_index, "full_content": "true"},
            template="/api/v2/dags/{id}/dagRuns/{run}/taskInstances/{task}/logs/{try}",
        )
        content = found.get("content", found) if isinstance(found, dict) else found
        return json.dumps(content) if not isinstance(content, str) else content

    def asset_events(self, run_id: str) -> list[dict[str, Any]]:
        found = self._request(
            "GET",
            "/api/v2/assets/events",
            query={"source_dag_id": NIGHTLY, "source_run_id": run_id, "limit": 100},
        )
        return list(found["asset_events"])
