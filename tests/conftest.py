"""What every test process shares when the suite runs in parallel (`make unit`: pytest-xdist).

Each worker is a process of its own with its own tmp_path root. Two more things keep workers
apart: temporary files the code makes itself (tempfile, and every subprocess it starts) go to
a folder of the worker's own, and Airflow, should anything start it without a throwaway
AIRFLOW_HOME, writes to the worker's own home instead of ~/airflow.

Workers are handed whole modules, so a module-scoped fixture is built once, not once on every
worker that runs one of the module's tests; the modules of SAME_WORKER go to one worker, which
builds their session-scoped fixture once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.demo_nights import DemoNights, audit_demo_nights

# modules that read the same session-scoped fixture -> the name of their shared work unit
SAME_WORKER = {
    "tests/test_end_to_end.py": "demo_nights",
    "tests/test_analyst_report.py": "demo_nights",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    # xdist's own --dist loadgroup would group by marks, but with pytest 9.2 it silently
    # spreads a group over every worker (pytest-xdist issue 1386)
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SAME_WORKER.get(module, module)

    return ModuleScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def worker_own_folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    scratch = tmp_path_factory.mktemp("tmp")
    airflow_home = tmp_path_factory.mktemp("airflow_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(scratch))
        patch.setattr(tempfile, "tempdir", str(scratch))
        patch.setenv("AIRFLOW_HOME", str(airflow_home))
        yield


@pytest.fixture(scope="session")
def demo_nights(tmp_path_factory: pytest.TempPathFactory) -> DemoNights:
    return audit_demo_nights(tmp_path_factory.mktemp("demo_nights"))
