"""The host name each Celery worker of the integration run gives its task instances.

Both workers share one machine, so the machine's name would not tell them apart in the task
instances the REST API shows; each is started with INTEGRATION_WORKER_NAME set and Airflow's
`[core] hostname_callable` pointing here.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("INTEGRATION_WORKER_NAME") or socket.getfqdn()
