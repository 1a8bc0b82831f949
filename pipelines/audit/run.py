"""The nightly audit, stage by stage: the command line and the Airflow DAG both run these.

ingest -> versions -> facts -> validate -> log -> report. Stages hand each other file paths
and counts, never frames, so the DAG can run each one as its own task.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import duckdb
import polars as pl

from pipelines.audit import facts as facts_module
from pipelines.audit import gx_process, rules
from pipelines.audit.facts import lines_of_no_claim
from pipelines.audit.identity import audit_identity
from pipelines.audit.packs import GENERAL_PACK, Pack, discover, policy_packs, unit_minutes_by_code
from pipelines.claims import partitions, scope, versions
from pipelines.config import load_settings
from pipelines.db import (
    connect,
    execute,
    load_temp_table,
    memory_lowered,
    scalar,
    transaction,
)
from pipelines.ingest.load import IngestReport, accepted_references, check_input_folder, ingest
from pipelines.ingest.snapshots import DataConflict, data_conflicts
from pipelines.log.reprocessing_log import (
    FINDING_FACTS,
    LogChanges,
    current_findings,
    update_log,
)
from pipelines.log.responses import ResponseOutcome, take_response_folder
from pipelines.log.workflow import WorkflowChanges, refresh_workflow
from pipelines.metering import StageMeasure, Stopwatch, measure
from pipelines.reports.every_output import write_outputs

log = logging.getLogger(__name__)

DATA_DOCS = "data_docs"  # under --out: member-level data, like everything there
# a pack's work folder: facts/, findings/ and docs_results/ (what the Data Docs store of each
# partition's validation) hold one file per partition, PART<number>
FACTS_DIR, FINDINGS_DIR, DOCS_RESULTS_DIR, PART = "facts", "findings", "docs_results", "part-"
AUDITED_CLAIMS_FILE = "audited_claims.parquet"  # beside facts/ on a partial audit
# the fact columns the next night needs of every line audited (scope.record_audited_lines)
AUDITED_LINE_FACTS = ["claim_line_number", *scope.AUDITED_LINE_COLUMNS]


class OutputsNotWritten(Exception):
    """Writing the outputs failed after the audit was committed: the database holds the run,
    and the next run writes the outputs again. The original error is the cause."""


@dataclass(frozen=True)
class PackAudit:
    """One pack as tonight's audit runs it: the pack, the general pack when it asks for it,
    the rules both bring, and the identity of all that (pipelines/audit/identity.py)."""

    pack: Pack
    general: Pack | None
    rules: rules.RuleSet
    identity: str

    @property
    def policy_id(self) -> str:
        return self.pack.id


def pack_audits(found: dict[str, Pack], wanted: Sequence[str] = ()) -> list[PackAudit]:
    """The packs to audit (every pack with codes of its own, or the `wanted` IDs)."""
    general = found[GENERAL_PACK]
    audits = []
    for pack in policy_packs(found, wanted):
        its_general = general if pack.general_rules else None
        audits.append(
            PackAudit(
                pack,
                its_general,
                rules.rule_set(pack, its_general),
                audit_identity(pack, its_general),
            )
        )
    return audits


@dataclass
class PolicyRun:
    """What tonight's audit did for one pack."""

    policy_id: str
    title: str
    audited: bool = False
    in_scope_lines: int = 0  # every current in-scope line of the pack
    lines_audited: int = 0  # those whose facts were built tonight (all, or what can change)
    lines_read: int = 0  # lines_audited and the other claims' lines that complete their groups
    findings_produced: int = 0
    log_changes: LogChanges | None = None
    audit_identity: str = ""  # what decided its findings (pipelines/audit/identity.py)


@dataclass
class RunSummary:
    as_of: dt.date
    ingest: IngestReport
    policies: list[PolicyRun] = field(default_factory=list)
    open_findings: list[tuple[str, str, int]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    stages: list[StageMeasure] = field(default_factory=list)
    data_conflicts: list[DataConflict] = field(default_factory=list)
    data_docs_error: str | None = None  # the error's type when the Data Docs were not built
    responses: list[ResponseOutcome] = field(default_factory=list)
    workflow: WorkflowChanges | None = None

    @property
    def audited(self) -> bool:
        return any(p.audited for p in self.policies)

    @property
    def in_scope_lines(self) -> int:
        return sum(p.in_scope_lines for p in self.policies)

    @property
    def lines_audited(self) -> int:
        return sum(p.lines_audited for p in self.policies)

    @property
    def findings_produced(self) -> int:
        return sum(p.findings_produced for p in self.policies)


def next_run_id(con: duckdb.DuckDBPyConnection) -> int:
    latest = scalar(
        con,
        "select greatest(coalesce((select max(run_id) from audit.runs), 0), "
        "coalesce((select max(run_id) from audit.deliveries), 0))",
    )
    return int(latest or 0) + 1


def needs_audit(con: duckdb.DuckDBPyConnection, identity: str, policy_id: str) -> bool:
    """Audit the policy when a delivery arrived since its last audit, or the audit's identity
    changed (policy, suite or code: pipelines/audit/identity.py)."""
    latest_delivery = scalar(
        con, "select coalesce(max(delivery_id), 0) from audit.deliveries where status = 'loaded'"
    )
    runs = execute(
        con,
        "select last_delivery_id, audit_identity from audit.runs where policy_id = $policy_id "
        "order by run_id desc limit 1",
        {"policy_id": policy_id},
    )
    last = runs[0] if runs else None
    if last is None:
        return bool(latest_delivery)
    return bool(latest_delivery != last[0] or identity != last[1])


def audit_basis(
    con: duckdb.DuckDBPyConnection, identity: str, policy_id: str, *, full: bool
) -> scope.LastAudit | None:
    """The last audit tonight's builds on; None means audit every line: asked for (--full),
    or no audit with the same identity and reference data to build on."""
    return None if full else scope.last_audit(con, identity, policy_id)


def stage_versions(con: duckdb.DuckDBPyConnection, bases: Sequence[scope.LastAudit | None]) -> int:
    """Rebuild the corrected chains: all of them, or on a nightly run those touched since the
    earliest audit tonight's builds on (every pack's chains are then current)."""
    if not bases or any(basis is None for basis in bases):
        return versions.rebuild_claim_versions(con, None)
    earliest = min(basis.last_delivery_id for basis in bases if basis is not None)
    return versions.rebuild_claim_versions(con, earliest)


@dataclass(frozen=True)
class StagedFacts:
    """A pack's facts folder, and the lines whose facts it holds out of the lines read."""

    folder: Path
    lines_audited: int
    lines_read: int  # lines_audited and the other claims' lines that complete their groups


def stage_facts(
    con: duckdb.DuckDBPyConnection,
    audit: PackAudit,
    previous: scope.LastAudit | None,
    work_dir: Path,
    *,
    on_partition: Callable[[Path], None] | None = None,
) -> StagedFacts:
    """The pack's facts of the lines to audit tonight: a folder of one file per partition
    (pipelines/claims/partitions.py), each written before the next is built and handed to
    `on_partition`; beside it, when only some claims are audited, those claims
    (AUDITED_CLAIMS_FILE)."""
    pack_scope = audit.pack.scope(audit.general)
    audited_claims = scope.lines_to_audit(con, pack_scope, previous)
    used = [p for p in (audit.pack, audit.general) if p is not None]
    reference = facts_module.read_reference(con, facts_module.references_of(used))
    units = partitions.partitioning(pack_scope.related_lines)
    planned = partitions.plan_partitions(con, units, load_settings().lines_per_partition)
    # an audit with no line still has one partition: its files carry the columns
    parts = partitions.partitions(con, units) if planned else iter([lines_of_no_claim(con)])
    facts_dir = _empty_folder(work_dir / FACTS_DIR)
    # findings of an earlier attempt belong to other facts: never to be folded into the log
    shutil.rmtree(work_dir / FINDINGS_DIR, ignore_errors=True)
    shutil.rmtree(work_dir / DOCS_RESULTS_DIR, ignore_errors=True)
    claims_path = facts_dir.with_name(AUDITED_CLAIMS_FILE)
    claims_path.unlink(missing_ok=True)
    if audited_claims is not None:
        audited_claims.write_parquet(claims_path)
    first_key = audited = 0
    watch = Stopwatch()
    with memory_lowered(con):  # DuckDB streams the partitions, polars builds beside it
        for number, lines in enumerate(parts, start=1):
            read = watch.lap()
            facts = facts_module.build_facts(
                lines,
                reference,
                audit.pack,
                audit.general,
                first_key=first_key,
                audited_claims=audited_claims,
            )
            first_key += lines.height
            path = facts_dir / f"{PART}{number:05d}.parquet"
            facts.write_parquet(path, compression="lz4")  # read back three times within minutes
            audited += facts.height
            log.info(
                "%s: partition %d of %d, %d lines read in %.1f s, facts of %d built in %.1f s",
                audit.policy_id,
                number,
                max(planned, 1),
                lines.height,
                read,
                facts.height,
                watch.lap(),
            )
            if on_partition is not None:
                on_partition(path)
    return StagedFacts(facts_dir, lines_audited=audited, lines_read=first_key)


def _empty_folder(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def parts_of(folder: Path) -> list[Path]:
    """A facts or findings folder's partition files, in partition order."""
    return sorted(folder.glob(f"{PART}*.parquet"))


def _audited_claims(facts_dir: Path) -> pl.DataFrame | None:
    claims_path = facts_dir.with_name(AUDITED_CLAIMS_FILE)
    return pl.read_parquet(claims_path) if claims_path.exists() else None


def findings_file(facts_file: Path) -> Path:
    """Where a partition's findings go: the findings folder beside its facts folder."""
    return facts_file.parent.with_name(FINDINGS_DIR) / facts_file.name


def docs_result_file(facts_file: Path) -> Path:
    """Where a partition's validation result goes for the Data Docs (none for a partition
    without lines: nothing was validated)."""
    return facts_file.parent.with_name(DOCS_RESULTS_DIR) / f"{facts_file.stem}.json"


def validate_partition(facts_file: Path, rule_set: rules.RuleSet) -> int:
    """Validate one partition's facts; write its findings, as the log takes them (with the
    facts it keeps of their lines), to findings_file(), and GX's result as the Data Docs keep
    it to docs_result_file(). Returns how many findings there are."""
    from pipelines.audit.data_docs import write_docs_result

    present = _columns(facts_file)
    wanted = {*rules.columns_for_findings(rule_set.definition, present), *FINDING_FACTS}
    facts = pl.read_parquet(facts_file, columns=[c for c in present if c in wanted])
    validation = rules.validate(facts, rule_set)
    findings = current_findings(validation.findings, facts)
    path = findings_file(facts_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    findings.write_parquet(path)
    if validation.result is not None:
        write_docs_result(validation.result, facts, docs_result_file(facts_file))
    return findings.height


def stage_validate(facts_dir: Path, rule_set: rules.RuleSet) -> tuple[Path, int]:
    """Validate every partition of the facts, one after the other."""
    found = sum(validate_partition(path, rule_set) for path in parts_of(facts_dir))
    return facts_dir.with_name(FINDINGS_DIR), found


def stage_log(
    con: duckdb.DuckDBPyConnection,
    facts_dir: Path,
    findings_dir: Path,
    audit: PackAudit,
    *,
    run_id: int,
    as_of: dt.date,
) -> LogChanges:
    """Fold the findings into the policy's log and record its run; other policies' rows
    stay as they are."""
    # the findings of tonight's facts, partition by partition: a partition without its
    # findings file was not validated, and stops the run
    parts = parts_of(facts_dir)
    findings = [findings_dir / facts.name for facts in parts]
    unvalidated = [path.name for path in findings if not path.is_file()]
    if unvalidated:
        raise FileNotFoundError(f"partitions never validated (no findings file): {unvalidated}")
    load_temp_table(con, "current_findings", findings)
    load_temp_table(con, "current_facts", parts, columns=AUDITED_LINE_FACTS)
    audited_claims = _audited_claims(facts_dir)
    previous = (
        scope.last_audit(con, audit.identity, audit.policy_id)
        if audited_claims is not None
        else None
    )
    changes = update_log(
        con,
        policy_id=audit.policy_id,
        run_id=run_id,
        as_of=as_of,
        audited_claims=audited_claims,
        previous_as_of=previous.as_of if previous else None,
    )
    in_scope_lines = scope.record_audited_lines(con, audited_claims, audit.policy_id)
    execute(
        con,
        "insert into audit.runs (run_id, policy_id, as_of, last_delivery_id, policy_sha256, "
        "in_scope_lines, findings_produced, audit_identity) values ($run, $policy_id, $as_of, "
        "(select coalesce(max(delivery_id), 0) from audit.deliveries where status = 'loaded'), "
        "$policy, $lines, $findings, $identity)",
        {
            "run": run_id,
            "policy_id": audit.policy_id,
            "as_of": as_of,
            "policy": audit.pack.content_sha256(),
            "lines": in_scope_lines,
            "findings": changes.produced,
            "identity": audit.identity,
        },
    )
    return changes


def stage_data_docs(
    facts_dir: Path, rule_set: rules.RuleSet, out_dir: Path, *, as_of: dt.date
) -> Path | None:
    """Great Expectations' own view of the pack's run, partition by partition, in a folder
    marked as restricted data: the results validate_partition wrote, named by the partitions'
    dates of service. Returns the site's index, or None when tonight validated no line of
    the pack: its Data Docs then stay as they were, or are not made."""
    from pipelines.audit.data_docs import ValidatedPartition, build_data_docs, dates_of_service

    validated = [
        ValidatedPartition(
            docs_result_file(path),
            dates_of_service(pl.read_parquet(path, columns=["service_date"])),
        )
        for path in parts_of(facts_dir)
        if docs_result_file(path).is_file()
    ]
    if not validated:
        return None
    docs_dir = out_dir / DATA_DOCS / rule_set.policy_id
    return build_data_docs(validated, rule_set, docs_dir, as_of=as_of)


def _columns(parquet_path: Path) -> list[str]:
    return list(pl.read_parquet_schema(parquet_path))


def open_findings_by_rule(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    rows = con.execute(
        "select payer, rule_id, count(*) from audit.findings where status = 'open' "
        "group by all order by payer, rule_id"
    ).fetchall()
    return [(str(p), str(r), int(n)) for p, r, n in rows]


def run_audit(
    input_dir: Path,
    db_file: Path,
    out_dir: Path,
    *,
    as_of: dt.date,
    policies: Sequence[str] = (),
    accept_references: tuple[str, ...] = (),
    full: bool = False,
) -> RunSummary:
    """The whole nightly audit in one transaction: all of it lands, or none of it.

    Every pack found (pipelines/audit/packs.py) is audited, or those named in `policies`.
    `full` audits every current line, also when nothing new was delivered;
    `accept_references` names reference files taken even outside the snapshot limits. Great
    Expectations runs in a worker process (gx_process), started before ingest so that its
    import overlaps the work here; it builds the Data Docs while the log is updated and the
    outputs are written. The Data Docs are collected after
    the commit and never decide the audit's outcome: when they fail, the summary says so
    (data_docs_error) and the audit stands.
    """
    check_input_folder(input_dir)  # before the database file is even created
    accepted = accepted_references(input_dir, accept_references)
    found = discover()
    audits = pack_audits(found, policies)
    gx = gx_process.shared()
    stages: list[StageMeasure] = []
    con = connect(db_file)
    try:
        # the work files outlive the transaction: the Data Docs may still be reading them
        with ExitStack() as stack:
            with transaction(con):
                run_id = next_run_id(con)
                with measure("ingest", stages):
                    report = ingest(
                        con,
                        input_dir,
                        loaded_on=as_of,
                        run_id=run_id,
                        unit_minutes=unit_minutes_by_code(found),
                        accepted=accepted,
                    )
                summary = RunSummary(as_of=as_of, ingest=report, stages=stages)
                summary.data_conflicts = data_conflicts(con)
                with measure("responses", stages):  # before the log closes what they answer
                    summary.responses = take_response_folder(con, input_dir, on=as_of)
                due = [a for a in audits if full or needs_audit(con, a.identity, a.policy_id)]
                summary.policies = [
                    PolicyRun(a.policy_id, a.pack.title, audit_identity=a.identity) for a in audits
                ]
                if due:
                    work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                    _audit_packs(con, gx, due, summary, work_dir, out_dir, run_id, full)
                # every run, audited or not: tonight's packages show what is notified tonight
                summary.workflow = refresh_workflow(con, as_of=as_of, run_id=run_id)
            # committed: from here a failure must not read as if the database were untouched
            try:
                summary.open_findings = open_findings_by_rule(con)
                with measure("reports", stages):
                    summary.outputs = write_outputs(con, out_dir, as_of=as_of)
            except Exception as error:
                raise OutputsNotWritten(type(error).__name__) from error
            if due:
                with measure("data_docs", stages):  # what is left of it by now
                    errors = [collect_data_docs(gx) for _ in due]
                    summary.data_docs_error = next((e for e in errors if e), None)
    finally:
        con.close()
    return summary


def _audit_packs(
    con: duckdb.DuckDBPyConnection,
    gx: gx_process.GxProcess,
    due: list[PackAudit],
    summary: RunSummary,
    work_dir: Path,
    out_dir: Path,
    run_id: int,
    full: bool,
) -> None:
    """Facts, validation and log of each pack due tonight, inside the run's transaction.

    The worker answers in request order: every pack's facts are built and sent to it
    partition by partition, while it imports Great Expectations and validates what came
    first; then the Data Docs of all are requested (built while the logs are updated and the
    outputs written).
    """
    stages, as_of = summary.stages, summary.as_of
    runs = {p.policy_id: p for p in summary.policies}
    bases = {a.policy_id: audit_basis(con, a.identity, a.policy_id, full=full) for a in due}
    with measure("versions", stages):
        stage_versions(con, list(bases.values()))
    validated = []
    submitted: list[Path] = []
    for audit in due:
        pack_dir = work_dir / audit.policy_id
        validate = partial(_validate_in_worker, gx, audit.rules, submitted)
        with measure("facts", stages):
            staged = stage_facts(
                con, audit, bases[audit.policy_id], pack_dir, on_partition=validate
            )
        runs[audit.policy_id].lines_audited = staged.lines_audited
        runs[audit.policy_id].lines_read = staged.lines_read
        validated.append((audit, staged.folder, staged.folder.with_name(FINDINGS_DIR)))
    with measure("validation", stages):  # what is left of it by now
        for _ in submitted:
            gx.result()
    for audit, facts_dir, _ in validated:
        gx.submit(stage_data_docs, facts_dir, audit.rules, out_dir.absolute(), as_of=as_of)
    for audit, facts_dir, findings_dir in validated:
        policy_run = runs[audit.policy_id]
        with measure("log", stages):
            policy_run.log_changes = stage_log(
                con, facts_dir, findings_dir, audit, run_id=run_id, as_of=as_of
            )
        policy_run.in_scope_lines, policy_run.findings_produced = execute(
            con,
            "select in_scope_lines, findings_produced from audit.runs "
            "where run_id = $r and policy_id = $policy_id",
            {"r": run_id, "policy_id": audit.policy_id},
        )[0]
        policy_run.audited = True


def _validate_in_worker(
    gx: gx_process.GxProcess, rule_set: rules.RuleSet, submitted: list[Path], facts_file: Path
) -> None:
    """Have the worker validate a partition while this process builds the next one."""
    gx.submit(validate_partition, facts_file, rule_set)
    submitted.append(facts_file)


def collect_data_docs(gx: gx_process.GxProcess) -> str | None:
    """Wait for the worker's Data Docs. A failure is reported, never raised: the audit is
    committed and its outputs written by now. Returns the error's type, or None."""
    try:
        gx.result()
    except Exception as error:
        # the type only: a library's message can quote input values (-v shows it all)
        log.warning(
            "Data Docs were not built (%s); the audit is committed and its outputs are written",
            type(error).__name__,
        )
        log.info("why the Data Docs were not built", exc_info=True)
        return type(error).__name__
    return None
