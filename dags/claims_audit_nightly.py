"""Nightly audit of paid MCO claim lines against every policy pack (policies/<policy_id>/).

stage_landing → load_references → ingest (one task per payer folder with new claim files)
→ versions → policies → facts → validate → reprocessing_log (one task per policy pack each)
→ report; data_docs (per pack, from its validation's results) beside the log and the report;
remove_work_files last.

Thin orchestration: each task calls one function of `pipelines` and passes paths and counts
through XCom. Settings come from CLAIMS_AUDIT_* environment variables (.env.example). The
DAG runs at 02:00 Kansas time (America/Chicago) and the as-of date is the Kansas date of
the run's logical date.

- Claims come from the MCO drop zone (CLAIMS_AUDIT_LANDING), reference files only from the
  state's location (CLAIMS_AUDIT_REFERENCE); a `reference` folder in a drop zone is refused
  and listed in stage_landing's return value and log.

- Every task that opens the DuckDB file runs in the one-slot pool `claims_audit_duckdb`
  (DuckDB lets one process hold the file for writing); airflow-init creates it.
- I/O tasks retry with exponential backoff; `validate` never retries: findings are output,
  not failure.
- `reprocessing_log` and `report` update, for each policy, the assets
  `claims-audit://<policy_id>/reprocessing-log` and `claims-audit://<policy_id>/findings`
  (through the aliases `claims_audit_reprocessing_log` and `claims_audit_findings`), for
  downstream DAGs to schedule on.
- A task that fails for good calls `pipelines.airflow.alerts.task_failure_alert`, which posts to
  CLAIMS_AUDIT_ALERT_WEBHOOK when it is set.
- An error leaving a task says only its type and the task (`scrub_failures`): a library's
  message may quote a member ID.
- Data Docs never hold up the audit: `report` does not wait for `data_docs`; the teardown
  `remove_work_files` deletes the run's work files (member data) once both are done, whatever
  their state, and a failed run's callback deletes them too, wherever the run stopped.
- The param `full_audit` (trigger with config `{"full_audit": true}`) audits every current
  line, as `claims-audit run --full` does; otherwise a run re-audits everything by itself
  when the suite, the policy or the code changed.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.sdk import (
    Asset,
    AssetAlias,
    Context,
    CronTriggerTimetable,
    Param,
    TriggerRule,
    dag,
    get_current_context,
    task,
    teardown,
)

from pipelines.airflow.task_failures import failure_type, scrub_failures
from pipelines.config import AUDIT_TIMEZONE

# DuckDB allows one writing process per file, and every task that opens the audit database
# opens it for writing: the pool's single slot makes them take turns, across runs and DAGs.
DUCKDB_POOL = "claims_audit_duckdb"

# What the audit publishes, per policy: `claims-audit://<policy_id>/reprocessing-log` and
# `claims-audit://<policy_id>/findings`. Fixed names rather than file paths, so that a
# consumer (the monthly MCO package) can schedule on them wherever CLAIMS_AUDIT_OUT points;
# each event's extra carries the as-of date and counts, and the findings' event the output
# folder. The packs are found when a run runs, so the assets are added through an alias.
REPROCESSING_LOG = AssetAlias("claims_audit_reprocessing_log")
FINDINGS = AssetAlias("claims_audit_findings")


def policy_asset(policy_id: str, what: str) -> Asset:
    """One policy's asset: what is `reprocessing-log` or `findings`."""
    return Asset(
        uri=f"claims-audit://{policy_id}/{what}", name=f"{policy_id}_{what.replace('-', '_')}"
    )


def alert_on_failure(context: Context) -> None:
    from pipelines.airflow.alerts import task_failure_alert

    ti = context["ti"]
    error = context.get("exception")  # a TaskFailed: it names the original type only
    task_failure_alert(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        dag_run_id=ti.run_id,
        try_number=ti.try_number,
        map_index=ti.map_index if ti.map_index is not None else -1,
        error_type=failure_type(error),
        webhook_url=os.environ.get("CLAIMS_AUDIT_ALERT_WEBHOOK") or None,
    )


def remove_failed_run_work_files(context: Context) -> None:
    """A failed run's facts and findings hold member IDs: remove its work folder."""
    from pipelines.airflow.tasks import task_remove_work_files
    from pipelines.config import locations_from_env

    task_remove_work_files(locations_from_env().work_dir, context["run_id"])


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "program-integrity",
    # transient trouble (a mount, the drop zone, a held database lock) clears up with time;
    # the first retry waits Airflow's [core] default_task_retry_delay (5 minutes unless set)
    "retries": 2,
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=30),
    "execution_timeout": dt.timedelta(hours=2),
    "on_failure_callback": alert_on_failure,
}


@dag(
    dag_id="claims_audit_nightly",
    # 02:00 in Kansas all year (08:00 UTC in winter, 07:00 in summer): after the day's
    # deliveries, and the logical date falls on the Kansas date the audit is as of
    schedule=CronTriggerTimetable("0 2 * * *", timezone=AUDIT_TIMEZONE),
    start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    # the DAG processor runs it once the run has failed: no task is using the files then
    on_failure_callback=remove_failed_run_work_files,
    # runs share one database and one run number sequence: one at a time
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["claims-audit", "program-integrity"],
    doc_md=__doc__,
    params={
        "full_audit": Param(
            False,
            type="boolean",
            description="audit every current in-scope line, also when nothing new was delivered",
        )
    },
)
def claims_audit_nightly() -> None:
    # multiple_outputs named: Airflow cannot read a scrubbed function's return annotation
    @task(execution_timeout=dt.timedelta(hours=1), multiple_outputs=True)
    @scrub_failures
    def stage_landing() -> dict[str, Any]:
        from pipelines.airflow.tasks import task_stage_landing
        from pipelines.config import dag_run_work_dir, locations_from_env

        where = locations_from_env()
        run_work_dir = dag_run_work_dir(where.work_dir, get_current_context()["run_id"])
        return task_stage_landing(where.landing, where.reference, where.work_dir, str(run_work_dir))

    @task(pool=DUCKDB_POOL)
    @scrub_failures
    def load_references(input_dir: str) -> list[str]:
        from pipelines.airflow.tasks import task_load_references
        from pipelines.config import locations_from_env, run_date

        context = get_current_context()
        as_of = run_date(context.get("logical_date"), context["dag_run"].run_after)
        where = locations_from_env()
        loaded = task_load_references(
            input_dir, where.db_file, as_of, accept_references=where.accept_references
        )
        # Airflow maps only over a return value, so the payer list is this task's; what the
        # later tasks share (the audit's run number, as-of date, folder) has its own key
        audit_run = {"run_id": loaded["run_id"], "as_of": as_of, "input_dir": input_dir}
        context["ti"].xcom_push(key="audit_run", value=audit_run)
        return loaded["payers"]

    # one task per payer folder with new files; the pool still makes them load one at a time
    @task(pool=DUCKDB_POOL, map_index_template="{{ payer }}", multiple_outputs=False)
    @scrub_failures
    def ingest(payer: str, audit_run: dict[str, Any]) -> dict[str, int]:
        from pipelines.airflow.tasks import task_ingest
        from pipelines.config import locations_from_env

        get_current_context()["payer"] = payer  # names the mapped task in the UI
        where = locations_from_env()
        return task_ingest(
            audit_run["input_dir"],
            where.db_file,
            audit_run["as_of"],
            run_id=int(audit_run["run_id"]),
            payers=[payer],
        )

    # the MCOs' answers, before the log update closes what they answer; runs when no payer
    # had new claims too
    @task(pool=DUCKDB_POOL, trigger_rule=TriggerRule.NONE_FAILED)
    @scrub_failures
    def responses(audit_run: dict[str, Any]) -> dict[str, int]:
        from pipelines.airflow.tasks import task_responses
        from pipelines.config import locations_from_env

        return task_responses(
            audit_run["input_dir"], locations_from_env().db_file, str(audit_run["as_of"])
        )

    # runs when no payer had anything new too: a pack or the code may have changed
    @task(pool=DUCKDB_POOL, trigger_rule=TriggerRule.NONE_FAILED)
    @scrub_failures
    def versions() -> int:
        from pipelines.airflow.tasks import task_versions
        from pipelines.config import locations_from_env

        return task_versions(locations_from_env().db_file, full=_full_audit())

    @task
    @scrub_failures
    def policies(corrected_chains: int) -> list[str]:
        from pipelines.airflow.tasks import task_policies

        return task_policies()

    # one task per policy pack from here on: each pack's facts, findings and log
    @task(pool=DUCKDB_POOL, map_index_template="{{ policy_id }}", multiple_outputs=False)
    @scrub_failures
    def facts(policy_id: str) -> dict[str, str]:
        from pipelines.airflow.tasks import task_facts
        from pipelines.config import dag_run_work_dir, locations_from_env

        context = get_current_context()
        context["policy_id"] = policy_id  # names the mapped task in the UI
        where = locations_from_env()
        run_work_dir = dag_run_work_dir(where.work_dir, context["run_id"])
        path = task_facts(where.db_file, str(run_work_dir), policy_id, full=_full_audit())
        return {"policy_id": policy_id, "facts_path": path}

    # findings are output, not failure: re-running validation would give the same answer
    @task(retries=0, multiple_outputs=False)
    @scrub_failures
    def validate(audit: dict[str, str]) -> dict[str, str]:
        from pipelines.airflow.tasks import task_validate

        findings_path = task_validate(audit["facts_path"], audit["policy_id"])
        return {**audit, "findings_path": findings_path}

    @task
    @scrub_failures
    def data_docs(audit: dict[str, str], audit_run: dict[str, Any]) -> str | None:
        from pipelines.airflow.tasks import task_data_docs
        from pipelines.config import locations_from_env

        return task_data_docs(
            audit["facts_path"],
            locations_from_env().out_dir,
            str(audit_run["as_of"]),
            audit["policy_id"],
        )

    @task(pool=DUCKDB_POOL, outlets=[REPROCESSING_LOG], multiple_outputs=False)
    @scrub_failures
    def reprocessing_log(audit: dict[str, str], audit_run: dict[str, Any]) -> dict[str, Any]:
        from pipelines.airflow.tasks import task_log
        from pipelines.config import locations_from_env

        changes = task_log(
            locations_from_env().db_file,
            audit["facts_path"],
            audit["findings_path"],
            int(audit_run["run_id"]),
            str(audit_run["as_of"]),
            audit["policy_id"],
            full=_full_audit(),
        )
        get_current_context()["outlet_events"][REPROCESSING_LOG].add(
            policy_asset(audit["policy_id"], "reprocessing-log"),
            extra={"as_of": audit_run["as_of"], **changes},
        )
        return {"policy_id": audit["policy_id"], **changes}

    @task(pool=DUCKDB_POOL, outlets=[FINDINGS])
    @scrub_failures
    def report(audit_run: dict[str, Any], log_changes: list[dict[str, Any]]) -> int:
        from pipelines.airflow.tasks import task_report
        from pipelines.config import locations_from_env

        where = locations_from_env()
        written = task_report(
            where.db_file, where.out_dir, str(audit_run["as_of"]), int(audit_run["run_id"])
        )
        for changes in log_changes:
            get_current_context()["outlet_events"][FINDINGS].add(
                policy_asset(changes["policy_id"], "findings"),
                extra={
                    "as_of": audit_run["as_of"],
                    "out_dir": where.out_dir,
                    "files_written": written,
                },
            )
        return written

    # a teardown: it runs once its upstream tasks are done, whatever their state, and does not
    # decide the run's state
    @teardown
    @scrub_failures
    def remove_work_files() -> None:
        from pipelines.airflow.tasks import task_remove_work_files
        from pipelines.config import locations_from_env

        task_remove_work_files(locations_from_env().work_dir, get_current_context()["run_id"])

    new_payers = load_references(stage_landing()["input_dir"])
    audit_run = new_payers["audit_run"]
    loaded = ingest.partial(audit_run=audit_run).expand(payer=new_payers)
    corrected_chains = versions()
    loaded >> responses(audit_run) >> corrected_chains
    facts_paths = facts.expand(policy_id=policies(corrected_chains))
    validated = validate.expand(audit=facts_paths)
    logged = reprocessing_log.partial(audit_run=audit_run).expand(audit=validated)
    written = report(audit_run, logged)
    # the Data Docs store what validation wrote and never hold up the report; the work files
    # they read go once both are done
    docs = data_docs.partial(audit_run=audit_run).expand(audit=validated)
    [written, docs] >> remove_work_files()


def _full_audit() -> bool:
    """The run's `full_audit` param: audit every line, also when nothing new was delivered."""
    return bool(get_current_context()["params"]["full_audit"])


claims_audit_nightly()
