"""Failure alerts for the nightly DAG: a log line, and a JSON POST to a webhook when set."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


def task_failure_alert(
    *,
    dag_id: str,
    task_id: str,
    dag_run_id: str,
    try_number: int,
    map_index: int = -1,
    error_type: str | None = None,
    webhook_url: str | None = None,
) -> bool:
    """Tell operators that a task failed for good: a log line, and a JSON POST to a webhook.

    Identifiers and the error's type only: an error's message may quote claim data. Returns
    whether a webhook took the alert; a webhook that fails is logged, never raised, so the
    alert cannot hide the failure it reports.
    """
    alert = {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": dag_run_id,
        "map_index": map_index,
        "try_number": try_number,
        "error_type": error_type,
    }
    log.error(
        "claims-audit task failed: dag %s, task %s (map index %d), run %s, try %d, %s",
        dag_id,
        task_id,
        map_index,
        dag_run_id,
        try_number,
        error_type or "unknown error",
    )
    if not webhook_url:
        return False
    # the URL itself may carry a token: it is never logged
    if urlsplit(webhook_url).scheme not in ("http", "https"):
        log.error("failure alert not sent: CLAIMS_AUDIT_ALERT_WEBHOOK must be an http(s) URL")
        return False
    request = urllib.request.Request(
        webhook_url,
        data=json.dumps(alert).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except (urllib.error.URLError, OSError, ValueError) as error:
        log.error("failure alert not delivered to the webhook: %s", type(error).__name__)
        return False
    return True
