"""The functions the nightly DAG's tasks call: one stage each, in the command's own code.

Each does one stage (those that write the database in one transaction) and returns paths
and counts (never frames) for XCom.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from pipelines.audit.packs import discover, unit_minutes_by_code
from pipelines.audit.run import (
    PackAudit,
    audit_basis,
    needs_audit,
    next_run_id,
    pack_audits,
    stage_data_docs,
    stage_facts,
    stage_log,
    stage_validate,
    stage_versions,
)
from pipelines.config import dag_run_work_dir
from pipelines.db import connect, transaction
from pipelines.ingest.load import IngestReport, accepted_references, check_input_folder, ingest
from pipelines.ingest.snapshots import DataConflict, data_conflicts
from pipelines.log.responses import take_response_folder
from pipelines.log.workflow import refresh_workflow
from pipelines.reports.every_output import write_outputs

log = logging.getLogger(__name__)


def task_stage_landing(
    landing: str, reference: str, work_dir: str, run_work_dir: str
) -> dict[str, object]:
    """The folder to audit: the MCO drop zone's claims beside the state's reference files.

    Each location is read in place when local, or mirrored under `work_dir` (which every
    worker must share) with the options of CLAIMS_AUDIT_LANDING_OPTIONS and
    CLAIMS_AUDIT_REFERENCE_OPTIONS; the folder that joins them lies in `run_work_dir`. A
    `reference` folder in the drop zone is refused by name: it is logged and returned under
    "rejected", and nothing in it is read.
    """
    from pipelines.ingest.landing import (
        REFERENCE_OPTIONS,
        assemble_audit_input,
        check_apart,
        landing_options_from_env,
        stage_landing,
        stage_reference,
    )

    check_apart(landing, reference)
    work = Path(work_dir)
    staged = stage_landing(landing, work / "landing", storage_options=landing_options_from_env())
    for refused in staged.refused:
        log.warning("rejected %s in the MCO drop zone: %s", refused.path, refused.reason)
    references = stage_reference(
        reference,
        work / "reference",
        storage_options=landing_options_from_env(setting=REFERENCE_OPTIONS),
    )
    folder = assemble_audit_input(staged.folder, references, Path(run_work_dir) / "input")
    check_input_folder(folder)
    return {
        "input_dir": str(folder),
        "rejected": [{"path": r.path, "reason": r.reason} for r in staged.refused],
    }


def task_load_references(
    input_dir: str,
    db_file: str,
    as_of: str,
    accept_references: tuple[str, ...] = (),
) -> dict[str, object]:
    """Load the reference snapshots and list the payer folders with new claim files.

    The run number chosen here is the one every later task of the same audit records.
    `accept_references` (CLAIMS_AUDIT_ACCEPT_REFERENCE) names reference files taken even
    outside the snapshot limits.
    """
    from pipelines.ingest.load import payers_with_new_deliveries

    accepted = accepted_references(Path(input_dir), accept_references)
    con = connect(Path(db_file))
    try:
        with transaction(con):
            run_id = next_run_id(con)
            report = ingest(
                con,
                Path(input_dir),
                loaded_on=dt.date.fromisoformat(as_of),
                run_id=run_id,
                unit_minutes=unit_minutes_by_code(discover()),
                payers=set(),
                accepted=accepted,
            )
            payers = payers_with_new_deliveries(con, Path(input_dir))
            conflicts = data_conflicts(con)
    finally:
        con.close()
    counts = _ingest_counts(report)
    _log_snapshots(report, conflicts)
    log.info("%d payer folder(s) with new claim files: %s", len(payers), ", ".join(payers))
    return {"run_id": run_id, "payers": payers, **counts}


def _log_snapshots(report: IngestReport, conflicts: list[DataConflict]) -> None:
    """File names and counts only: the reasons and conflicts carry no member data. Files held
    back or taken beyond the limits in this run were logged as ingest decided."""
    for held in report.with_status("already_held_back"):
        log.warning("still held back, the snapshot in use stays: %s", held.reason)
    for conflict in conflicts:
        log.warning(
            "data conflict: %s: %d %s with different %s values (%s is used)",
            conflict.source_file,
            conflict.keys,
            conflict.key_column,
            conflict.value_column,
            conflict.value_used,
        )


def task_ingest(
    input_dir: str,
    db_file: str,
    as_of: str,
    *,
    run_id: int | None = None,
    payers: list[str] | None = None,
) -> dict[str, int]:
    """Load new deliveries: every payer folder, or only `payers`, under `run_id` when given."""
    con = connect(Path(db_file))
    try:
        with transaction(con):
            if run_id is None:
                run_id = next_run_id(con)
            report = ingest(
                con,
                Path(input_dir),
                loaded_on=dt.date.fromisoformat(as_of),
                run_id=run_id,
                unit_minutes=unit_minutes_by_code(discover()),
                payers=None if payers is None else set(payers),
            )
    finally:
        con.close()
    return {"run_id": run_id, **_ingest_counts(report)}


def _ingest_counts(report: IngestReport) -> dict[str, int]:
    loaded = report.with_status("loaded")
    for rejected in report.with_status("rejected"):
        log.warning("rejected %s", rejected.reason)
    return {
        "deliveries_loaded": len(loaded),
        "rows_loaded": sum(f.rows_loaded for f in loaded),
        "rows_quarantined": sum(f.rows_quarantined for f in loaded),
        "files_rejected": len(report.with_status("rejected")),
        "references_held_back": len(report.with_status("held_back", "already_held_back")),
    }


def task_responses(input_dir: str, db_file: str, as_of: str) -> dict[str, int]:
    """Take the MCOs' response files under responses/<PAYER>/, before the log update closes
    what they answer; counts only (a rejected row's reason is in audit.response_rows)."""
    con = connect(Path(db_file))
    try:
        with transaction(con):
            outcomes = take_response_folder(con, Path(input_dir), on=dt.date.fromisoformat(as_of))
    finally:
        con.close()
    for outcome in outcomes:
        if outcome.status == "rejected":
            log.warning("response file rejected: %s", outcome.reason)
    return {
        "files_taken": sum(o.status == "taken" for o in outcomes),
        "files_rejected": sum(o.status == "rejected" for o in outcomes),
        "rows_taken": sum(o.taken for o in outcomes),
        "rows_rejected": sum(len(o.rejected) for o in outcomes),
    }


def task_policies() -> list[str]:
    """The policies the nightly audit runs: every pack found with codes of its own."""
    return [audit.policy_id for audit in pack_audits(discover())]


def _pack_audit(policy_id: str) -> PackAudit:
    return pack_audits(discover(), [policy_id])[0]


def task_versions(db_file: str, *, full: bool = False) -> int:
    """Rebuild the correction chains once for every pack audited tonight."""
    audits = pack_audits(discover())
    con = connect(Path(db_file))
    try:
        with transaction(con):
            bases = [audit_basis(con, a.identity, a.policy_id, full=full) for a in audits]
            return stage_versions(con, bases)
    finally:
        con.close()


def task_facts(db_file: str, work_dir: str, policy_id: str, *, full: bool = False) -> str:
    """The pack's facts folder (a file per partition), in its own folder of the run's work
    folder."""
    audit = _pack_audit(policy_id)
    con = connect(Path(db_file))
    try:
        previous = audit_basis(con, audit.identity, policy_id, full=full)
        staged = stage_facts(con, audit, previous, Path(work_dir) / policy_id)
    finally:
        con.close()
    log.info("%s: %d lines to audit, %d read", policy_id, staged.lines_audited, staged.lines_read)
    return str(staged.folder)


def task_validate(facts_path: str, policy_id: str) -> str:
    path, count = stage_validate(Path(facts_path), _pack_audit(policy_id).rules)
    log.info("%s: %d findings", policy_id, count)
    return str(path)


def task_data_docs(facts_path: str, out_dir: str, as_of: str, policy_id: str) -> str | None:
    """The pack's Data Docs index, or None when tonight validated none of its lines."""
    docs = stage_data_docs(
        Path(facts_path),
        _pack_audit(policy_id).rules,
        Path(out_dir),
        as_of=dt.date.fromisoformat(as_of),
    )
    if docs is None:
        log.info("%s: no line validated tonight, its Data Docs stay as they were", policy_id)
        return None
    return str(docs)


def task_log(
    db_file: str,
    facts_path: str,
    findings_path: str,
    run_id: int,
    as_of: str,
    policy_id: str,
    *,
    full: bool = False,
) -> dict[str, int]:
    audit = _pack_audit(policy_id)
    con = connect(Path(db_file))
    try:
        with transaction(con):
            if not (full or needs_audit(con, audit.identity, policy_id)):
                return {"opened": 0, "reopened": 0, "closed": 0}
            changes = stage_log(
                con,
                Path(facts_path),
                Path(findings_path),
                audit,
                run_id=run_id,
                as_of=dt.date.fromisoformat(as_of),
            )
    finally:
        con.close()
    return {
        "opened": changes.opened,
        "reopened": changes.reopened,
        "closed": sum(changes.closed.values()),
    }


def task_report(db_file: str, out_dir: str, as_of: str, run_id: int | None = None) -> int:
    """Move the workflow's clock (notices, due dates, overdue, lookback), then write every
    output: what the packages show tonight is what is notified tonight."""
    con = connect(Path(db_file))
    try:
        day = dt.date.fromisoformat(as_of)
        with transaction(con):
            refresh_workflow(con, as_of=day, run_id=run_id)
        written = write_outputs(con, Path(out_dir), as_of=day)
    finally:
        con.close()
    return len(written)


def task_remove_work_files(work_dir: str, run_id: str) -> None:
    """Remove a DAG run's work folder: its facts and findings hold member IDs. The DAG's
    teardown calls it once the log, the reports and the Data Docs are done with them, and the
    failure callback of a run that stopped anywhere."""
    shutil.rmtree(dag_run_work_dir(work_dir, run_id), ignore_errors=True)
