"""Nightly audit of paid H0038 (Parent Peer Support) claim lines against KMAP bulletin 22321.

Thin orchestration: each task calls one function of `pipelines.audit` and passes paths and
counts through XCom. Paths come from CLAIMS_AUDIT_* environment variables (.env.example).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "program-integrity",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "execution_timeout": dt.timedelta(hours=2),
}


@dag(
    dag_id="h0038_nightly_audit",
    schedule="0 2 * * *",
    start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["claims-audit", "h0038", "program-integrity"],
    doc_md=__doc__,
)
def h0038_nightly_audit() -> None:
    @task
    def ingest() -> dict[str, object]:
        from pipelines.audit import task_ingest
        from pipelines.config import locations_from_env, run_date

        context = get_current_context()
        where = locations_from_env()
        as_of = run_date(context.get("logical_date"), context["dag_run"].run_after)
        return {"as_of": as_of, **task_ingest(where.landing, where.db_file, as_of)}

    @task
    def versions(loaded: dict[str, object]) -> int:
        from pipelines.audit import task_versions
        from pipelines.config import locations_from_env

        return task_versions(locations_from_env().db_file)

    @task
    def facts(current_claims: int) -> str:
        from pipelines.audit import task_facts
        from pipelines.config import locations_from_env

        where = locations_from_env()
        run_id = get_current_context()["run_id"]
        return task_facts(where.db_file, f"{where.work_dir}/{run_id}", where.policy_file)

    # findings are output, not failure: re-running validation would give the same answer
    @task(retries=0)
    def validate(facts_path: str) -> str:
        from pipelines.audit import task_validate
        from pipelines.config import locations_from_env

        where = locations_from_env()
        run_id = get_current_context()["run_id"]
        return task_validate(facts_path, f"{where.work_dir}/{run_id}", where.policy_file)

    @task
    def reprocessing_log(
        loaded: dict[str, object], facts_path: str, findings_path: str
    ) -> dict[str, int]:
        from pipelines.audit import task_log
        from pipelines.config import locations_from_env

        where = locations_from_env()
        return task_log(
            where.db_file,
            facts_path,
            findings_path,
            int(str(loaded["run_id"])),
            str(loaded["as_of"]),
            where.policy_file,
        )

    @task
    def report(loaded: dict[str, object], log_changes: dict[str, int]) -> int:
        from pipelines.audit import task_report
        from pipelines.config import locations_from_env

        where = locations_from_env()
        return task_report(where.db_file, where.out_dir, str(loaded["as_of"]))

    loaded = ingest()
    facts_path = facts(versions(loaded))
    findings_path = validate(facts_path)
    report(loaded, reprocessing_log(loaded, facts_path, findings_path))


h0038_nightly_audit()
