"""What every test process shares when the suite runs in parallel (`make unit`: pytest-xdist).

Each worker is a process of its own with its own tmp_path root. Two more things keep workers
apart: temporary files the code makes itself (tempfile, and every subprocess it starts) go to
a folder of the worker's own, and Airflow, should anything start it without a throwaway
AIRFLOW_HOME, writes to the worker's own home instead of ~/airflow.

Workers are handed whole modules, so a module-scoped fixture is built once, not once on every
worker that runs one of the module's tests; the modules of SAME_WORKER go to one worker, which
builds their session-scoped fixture once. The slowest work goes out first (MODULE_SECONDS), so
that the last modules to finish are short ones and both workers end at about the same time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from math import inf
from typing import Any

import pytest

from tests.demo_nights import DemoNights, audit_demo_nights

# modules that read the same session-scoped fixture -> the name of their shared work unit
SAME_WORKER = {
    "tests/test_end_to_end.py": "demo_nights",
    "tests/test_analyst_report.py": "demo_nights",
    "tests/test_partitions.py": "demo_nights",
}

# modules whose tests share no fixture wider than a test: each test is a work unit of its own,
# so that these long modules spread over both workers
ONE_TEST_A_UNIT = {
    "tests/test_bench.py",
    "tests/test_incremental.py",
    "tests/test_trust_packages.py",
}

# What each work unit costs: seconds (setup and teardown included, `--durations=0` summed by
# module) of one worker of two on 2 cores; only their order matters. A module not listed is
# handed out first, as if it were the slowest: a slow one left for last would keep one worker
# busy while the other has ended. Update the numbers when a module grows slow.
MODULE_SECONDS = {
    "tests/test_bench.py": 76,
    "tests/test_dag.py": 57,
    "tests/test_trust_identity.py": 49,
    "tests/test_ingest.py": 46,
    "tests/test_incremental.py": 49,
    "tests/test_hostile_input.py": 41,
    "demo_nights": 32,  # with test_partitions' nights in small partitions
    "tests/test_trust_nightly_references.py": 28,
    "tests/test_trust_snapshots.py": 26,
    "tests/test_trust_lifecycle.py": 26,
    "tests/test_workflow.py": 24,
    "tests/test_adding_a_policy.py": 19,
    "tests/test_reprocessing_log.py": 18,
    "tests/test_trust_x12.py": 17,
    "tests/test_trust_ingest.py": 17,
    "tests/test_chw_pack.py": 17,
    "tests/test_versions.py": 16,
    "tests/test_trust_operations.py": 15,
    "tests/test_cli.py": 14,
    "tests/test_pps_thresholds.py": 14,
    "tests/test_policy_log.py": 13,
    "tests/test_trust_output_scale.py": 9,
    "tests/test_x12.py": 9,
    "tests/test_facts_of_audited_claims.py": 8,
    "tests/test_log_memory.py": 8,
    "tests/test_migrations.py": 6,
    "tests/test_trust_packages.py": 6,
    "tests/test_gx_process.py": 6,
    "tests/test_synthetic.py": 4,
    "tests/test_rules.py": 2,
    "tests/test_landing.py": 1,
    "tests/test_reports.py": 1,
    "tests/test_integration_settings.py": 1,
    "tests/test_compose.py": 1,
    "tests/test_dates.py": 1,
    "tests/test_evidence.py": 1,
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    # xdist's own --dist loadgroup would group by marks, but with pytest 9.2 it silently
    # spreads a group over every worker (pytest-xdist issue 1386)
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if module in ONE_TEST_A_UNIT else SAME_WORKER.get(module, module)

        def _seconds(self, unit: str) -> float:
            module = unit.split("::", 1)[0]
            seconds = MODULE_SECONDS.get(SAME_WORKER.get(module, module), inf)
            if module in ONE_TEST_A_UNIT:  # a module's share a test
                seconds /= sum(nodeid.startswith(f"{module}::") for nodeid in self.collection)
            return seconds

        def _assign_work_unit(self, node: Any) -> None:
            # the slowest unit still waiting, wherever collection (or xdist's reordering by
            # number of tests) put it
            slowest = max(self.workqueue, key=self._seconds)
            self.workqueue.move_to_end(slowest, last=False)
            super()._assign_work_unit(node)

        def _reschedule(self, node: Any) -> None:
            # the next unit only when this one is down to its last test (xdist's own default
            # is two): a worker that took one too early would hold it while the other idles
            waiting = self.workqueue and not node.shutting_down
            if waiting and self._pending_of(self.assigned_work[node]) > 1:
                return
            super()._reschedule(node)

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
