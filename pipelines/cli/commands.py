"""What each `claims-audit` command does, and the summary it prints."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

from pipelines.audit.packs import PackError
from pipelines.audit.run import OutputsNotWritten, PolicyRun, RunSummary, run_audit
from pipelines.ingest.load import FIRST_SNAPSHOT, FileOutcome, IngestReport, InputError
from pipelines.log.responses import ResponseOutcome

EXIT_OK, EXIT_USAGE = 0, 2


class UsageError(Exception):
    """Bad usage or an input folder that cannot be audited (exit code 2)."""


def run(args: argparse.Namespace) -> int:
    summary = _audit(
        args.input,
        args.db,
        args.out,
        args.as_of,
        policies=args.policy,
        accept_references=tuple(args.accept_reference),
        full=args.full,
    )
    print(format_summary(summary, args.out))
    _write_summary(summary, args.out)
    problems = _strict_problems(summary.ingest)
    if args.strict and problems:
        raise UsageError("--strict: " + "; ".join(problems))
    return EXIT_OK


def _strict_problems(report: IngestReport) -> list[str]:
    """What --strict refuses: rejected files, held-back snapshots, and a first snapshot
    outside the limits that nobody accepted."""
    rejected = report.with_status("rejected", "already_rejected")
    held_back = report.with_status("held_back", "already_held_back")
    unaccepted = [f for f in report.files if f.taken_because == FIRST_SNAPSHOT]
    problems = []
    if rejected:
        problems.append("rejected file(s): " + "; ".join(_why(f) for f in rejected))
    if held_back:
        problems.append(
            "reference file(s) held back (--accept-reference FILE takes one): "
            + "; ".join(_why(f) for f in held_back)
        )
    if unaccepted:
        problems.append(
            "first reference snapshot(s) taken outside the limits (--accept-reference FILE "
            "accepts one): " + "; ".join(f.beyond_limits or f.source_file for f in unaccepted)
        )
    return problems


def _why(outcome: FileOutcome) -> str:
    return outcome.reason or outcome.source_file


def _audit(
    input_dir: Path,
    db: Path,
    out: Path,
    as_of: dt.date | None,
    *,
    policies: Sequence[str] = (),
    accept_references: tuple[str, ...] = (),
    full: bool = False,
) -> RunSummary:
    try:
        return run_audit(
            input_dir,
            db,
            out,
            as_of=as_of or dt.date.today(),
            policies=policies,
            accept_references=accept_references,
            full=full,
        )
    except (InputError, PackError) as error:
        raise UsageError(str(error)) from error


def _write_summary(summary: RunSummary, out: Path) -> None:
    try:
        write_summary_json(summary, out / "run_summary.json")
    except OSError as error:  # like the other outputs, after the commit
        raise OutputsNotWritten(type(error).__name__) from error


def demo(args: argparse.Namespace) -> int:
    from pipelines.demo.synthetic import generate as generate_input

    root: Path = args.dir
    input_dir, truth = root / "input", root / "ground_truth.csv"
    stats = generate_input(input_dir, truth, seed=args.seed)
    print(
        f"Synthetic input: {stats.claim_lines} claim lines ({stats.in_scope_lines} in scope) "
        f"in {stats.files} files under {input_dir}; {stats.planted_findings} planted findings "
        f"listed in {truth}"
    )
    summary = _audit(input_dir, root / "audit.duckdb", root / "out", dt.date(2025, 6, 30))
    print(format_summary(summary, root / "out"))
    _write_summary(summary, root / "out")
    return EXIT_OK


def _existing_db(path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"no audit database at {path}: run `claims-audit run` first")
    return path


def findings(args: argparse.Namespace) -> int:
    from pipelines.db import connect
    from pipelines.log.analyst import CONSOLE_COLUMNS, FindingFilter, select_findings
    from pipelines.reports.outputs import write_csv

    con = connect(_existing_db(args.db))
    try:
        wanted = FindingFilter(
            args.policy,
            args.payer,
            args.rule,
            args.status,
            args.since,
            args.until,
            args.provider,
        )
        rows = select_findings(con, wanted)
    finally:
        con.close()
    if args.output:
        write_csv(rows, args.output)
        print(f"{rows.height} findings written to {args.output}")
        return EXIT_OK
    for row in rows.select(CONSOLE_COLUMNS).iter_rows(named=True):
        print(
            f"{row['finding_id']} {row['policy_id']} {row['payer']:<11} {row['claim_id']:<16} "
            f"line {row['claim_line_number']:<3} "
            f"{row['rule_id']} {row['severity']:<13} {row['status']:<23} "
            f"DOS {row['service_date']} ${row['paid_amount']:>9} "
            f"found {row['first_found_date']} due {row['due_date'] or '-'!s:<10}  {row['detail']}"
        )
    print(f"{rows.height} findings")
    return EXIT_OK


def policies(args: argparse.Namespace) -> int:
    """Every pack found: what it audits, how many rules, where it lives, its hash."""
    from pipelines.audit.packs import discover
    from pipelines.audit.rules import load_suite_definition, rule_checks

    try:
        found = discover()
    except PackError as error:
        raise UsageError(str(error)) from error
    for pack in found.values():
        rules = {c.rule_id for c in rule_checks(load_suite_definition(pack.suite_file))}
        codes = ", ".join(pack.codes) or "the lines of every pack that asks for it"
        print(
            f"{pack.id}  {pack.title} ({pack.source})\n"
            f"  codes: {codes}\n"
            f"  rules: {len(rules)} ({', '.join(sorted(rules))})"
            + ("; with the general claims-integrity rules" if pack.general_rules else "")
            + f"\n  folder: {pack.folder}\n  suite: {pack.suite_file}\n"
            f"  hash: {pack.content_sha256()}"
        )
    return EXIT_OK


def explain(args: argparse.Namespace) -> int:
    from pipelines.audit.packs import discover
    from pipelines.audit.run import pack_audits
    from pipelines.db import connect
    from pipelines.log.analyst import explain as explain_line
    from pipelines.log.workflow import NotFound, finding_key

    con = connect(_existing_db(args.db))
    try:
        audits = pack_audits(discover(), args.policy)
        payer, claim_id, line = args.payer, args.claim_id, args.line
        if claim_id is None:  # one argument: a finding ID
            key = finding_key(con, args.payer)
            payer, claim_id, line = key.payer, key.claim_id, key.claim_line_number
        print(explain_line(con, audits, payer, claim_id, line))
    except NotFound as error:
        raise UsageError(str(error)) from error
    finally:
        con.close()
    return EXIT_OK


def waive(args: argparse.Namespace) -> int:
    from pipelines.db import connect
    from pipelines.log.analyst import WaiverRefused, waive_by_id
    from pipelines.log.analyst import waive as waive_finding
    from pipelines.log.workflow import NotFound

    named = args.finding
    if len(named) not in (1, 4):
        raise UsageError(
            "name the finding by its ID (F-...) or by PAYER CLAIM_ID LINE RULE, as findings.csv "
            "shows them"
        )
    con = connect(_existing_db(args.db))
    on = args.as_of or dt.date.today()
    try:
        if len(named) == 1:
            what = named[0]
            previous = waive_by_id(con, what, reason=args.reason, analyst=args.analyst, on=on)
        else:
            payer, claim_id, line, rule = named
            what = f"{rule} on {payer} claim {claim_id} line {line}"
            previous = waive_finding(
                con,
                (payer, claim_id, _line_number(line), rule),
                reason=args.reason,
                analyst=args.analyst,
                on=on,
                policy_id=args.policy,
            )
    except (NotFound, WaiverRefused) as error:
        raise UsageError(str(error)) from error
    finally:
        con.close()
    print(f"{what}: {previous} -> waived")
    return EXIT_OK


def _line_number(text: str) -> int:
    try:
        return int(text)
    except ValueError as error:
        raise UsageError(f"'{text}' is not a claim line number") from error


def respond(args: argparse.Namespace) -> int:
    """Take one MCO response file: its rejected rows are listed; exit 2 when the whole file
    is refused."""
    from pipelines.db import connect, transaction
    from pipelines.log.responses import ResponseFileRejected, take_response_file

    if not args.file.is_file():
        raise UsageError(f"no response file at {args.file}")
    analyst = args.analyst.strip()
    if not analyst:
        raise UsageError("say with --analyst who loads the file")
    con = connect(_existing_db(args.db))
    try:
        with transaction(con):
            outcome = take_response_file(
                con,
                args.payer,
                args.file,
                source_file=args.file.name,
                on=args.as_of or dt.date.today(),
                by=f"{args.payer.strip().upper()} response, loaded by {analyst}",
            )
    except ResponseFileRejected as error:
        raise UsageError(f"{args.file.name}: {error}") from error
    finally:
        con.close()
    if outcome.status == "rejected":
        raise UsageError(f"{args.file.name} rejected: {outcome.reason}")
    print(format_response(outcome))
    return EXIT_OK


def format_response(outcome: ResponseOutcome) -> str:
    """What was made of a response file: counts, and each rejected row with its reason."""
    if outcome.status.startswith("already_"):
        return (
            f"{outcome.source_file}: this file was {outcome.status.removeprefix('already_')} "
            "before; nothing changed"
        )
    if outcome.status == "rejected":
        return f"{outcome.source_file}: rejected: {outcome.reason}"
    lines = [
        f"{outcome.source_file}: {outcome.taken} responses taken, {outcome.unchanged} unchanged, "
        f"{len(outcome.rejected)} rows rejected"
    ]
    lines += [f"  row {row}: {reason}" for row, reason in outcome.rejected]
    return "\n".join(lines)


def decide(args: argparse.Namespace) -> int:
    from pipelines.db import connect
    from pipelines.log.workflow import ActionRefused, NotFound
    from pipelines.log.workflow import decide as decide_dispute

    decision = "uphold" if args.uphold else "waive"
    con = connect(_existing_db(args.db))
    try:
        key = decide_dispute(
            con,
            args.finding_id,
            decision,
            reason=args.reason,
            analyst=args.analyst,
            on=args.as_of or dt.date.today(),
        )
    except (NotFound, ActionRefused) as error:
        raise UsageError(str(error)) from error
    finally:
        con.close()
    outcome = (
        "dispute not accepted: the finding stays open, its due date unchanged"
        if decision == "uphold"
        else "dispute accepted: the finding is waived"
    )
    print(f"{args.finding_id.upper()} ({key}): {outcome}")
    return EXIT_OK


def hold(args: argparse.Namespace) -> int:
    from pipelines.db import connect
    from pipelines.log.workflow import ActionRefused
    from pipelines.log.workflow import hold as hold_provider

    con = connect(_existing_db(args.db))
    try:
        count = hold_provider(
            con,
            args.provider,
            reason=args.reason,
            analyst=args.analyst,
            on=args.as_of or dt.date.today(),
        )
    except ActionRefused as error:
        raise UsageError(str(error)) from error
    finally:
        con.close()
    print(
        f"provider {args.provider.strip()} held: its {count} open findings, and any found while "
        "the hold lasts, are kept out of every MCO package from the next run"
    )
    return EXIT_OK


def release(args: argparse.Namespace) -> int:
    from pipelines.db import connect
    from pipelines.log.workflow import ActionRefused
    from pipelines.log.workflow import release as release_provider

    con = connect(_existing_db(args.db))
    try:
        count = release_provider(
            con,
            args.provider,
            analyst=args.analyst,
            on=args.as_of or dt.date.today(),
            note=args.reason or "",
        )
    except ActionRefused as error:
        raise UsageError(str(error)) from error
    finally:
        con.close()
    print(
        f"provider {args.provider.strip()} released: its {count} open findings go out with the "
        "next run's packages (those never notified, due from that run)"
    )
    return EXIT_OK


def generate(args: argparse.Namespace) -> int:
    from pipelines.demo.synthetic import generate as generate_input

    stats = generate_input(
        args.input, args.truth, seed=args.seed, members_per_mco=args.members_per_mco
    )
    print(f"{stats.claim_lines} claim lines, {stats.planted_findings} planted findings")
    return EXIT_OK


def write_summary_json(summary: RunSummary, path: Path) -> None:
    """The run's counts and stage measures for monitoring and the benchmark: no member data."""
    loaded = summary.ingest.with_status("loaded")
    record = {
        "as_of": summary.as_of.isoformat(),
        "audited": summary.audited,
        "deliveries_loaded": len(loaded),
        "claim_rows_loaded": sum(f.rows_loaded for f in loaded if f.kind == "claims"),
        "rows_quarantined": sum(f.rows_quarantined for f in loaded),
        "files_rejected": [f.reason for f in summary.ingest.with_status("rejected")],
        "references_held_back": [
            {
                "source_file": f.source_file,
                "reason": f.reason,
                "held_back_earlier": f.status == "already_held_back",
            }
            for f in summary.ingest.with_status("held_back", "already_held_back")
        ],
        "references_taken_beyond_limits": [
            {
                "source_file": f.source_file,
                "reason": f.beyond_limits,
                "taken_because": f.taken_because,
            }
            for f in summary.ingest.files
            if f.beyond_limits
        ],
        "data_conflicts": [
            {
                "source_file": c.source_file,
                "key_column": c.key_column,
                "value_column": c.value_column,
                "keys": c.keys,
                "value_used": c.value_used,
            }
            for c in summary.data_conflicts
        ],
        "in_scope_lines": summary.in_scope_lines,
        "lines_audited": summary.lines_audited,
        "findings_produced": summary.findings_produced,
        "policies": [
            {
                "policy_id": p.policy_id,
                "audited": p.audited,
                "in_scope_lines": p.in_scope_lines,
                "lines_audited": p.lines_audited,
                "lines_read": p.lines_read,
                "findings_produced": p.findings_produced,
                "audit_identity": p.audit_identity,
            }
            for p in summary.policies
        ],
        "data_docs_error": summary.data_docs_error,
        "responses": [
            {
                "source_file": o.source_file,
                "status": o.status,
                "reason": o.reason,
                "rows_taken": o.taken,
                "rows_unchanged": o.unchanged,
                "rows_rejected": len(o.rejected),
            }
            for o in summary.responses
        ],
        "workflow": None
        if summary.workflow is None
        else {
            "notified": summary.workflow.notified,
            "overdue": summary.workflow.overdue,
            "outside_lookback": summary.workflow.outside_lookback,
        },
        "stages": [
            {"stage": s.stage, "seconds": round(s.seconds, 3), "peak_rss_mb": round(s.peak_rss_mb)}
            for s in summary.stages
        ],
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _snapshot_lines(summary: RunSummary) -> list[str]:
    """Reference snapshots held back or taken outside the limits, and values that disagree."""
    lines = []
    for f in summary.ingest.with_status("held_back"):
        lines.append(
            f"  HELD BACK {f.reason}; the snapshot in use stays "
            f"(--accept-reference {f.source_file} takes it)"
        )
    for f in summary.ingest.with_status("already_held_back"):
        lines.append(f"  held back earlier, unchanged: {f.reason}")
    for f in summary.ingest.files:
        if f.beyond_limits:
            lines.append(f"  note: taken {f.beyond_limits} ({f.taken_because})")
    for c in summary.data_conflicts:
        lines.append(
            f"  data conflict: {c.source_file}: {c.keys} {c.key_column} with different "
            f"{c.value_column} values; {c.value_used} is used"
        )
    return lines


def _policy_lines(policy: PolicyRun) -> list[str]:
    """What tonight's audit did for one policy: lines, findings and the log's changes."""
    if not policy.audited:
        return []
    partial = policy.lines_audited != policy.in_scope_lines
    lines = [
        f"  {policy.title} ({policy.policy_id}): audited {policy.in_scope_lines} current lines: "
        f"{policy.findings_produced} findings"
        + (
            f" ({policy.lines_audited} lines of claims touched since the last audit "
            "looked at again; the others cannot have changed)"
            if partial
            else ""
        )
    ]
    changes = policy.log_changes
    if changes is not None:
        closed = ", ".join(f"{n} {status}" for status, n in sorted(changes.closed.items()))
        lines.append(
            f"    log: {changes.opened} new, {changes.reopened} reopened"
            + (f", closed: {closed}" if closed else "")
        )
    return lines


def format_summary(summary: RunSummary, out_dir: Path) -> str:
    """A summary an analyst can read at a glance; counts only, never a member ID."""
    files = summary.ingest.files
    loaded = [f for f in files if f.status == "loaded"]
    lines = [f"claims-audit run as of {summary.as_of.isoformat()}"]
    lines.append(
        f"  deliveries loaded: {len(loaded)} "
        f"({sum(f.kind == 'claims' for f in loaded)} claim files, "
        f"{sum(f.kind == 'reference' for f in loaded)} reference files); "
        f"already loaded and skipped: {len(summary.ingest.with_status('already_loaded'))}"
    )
    for kind in ("claims", "reference"):
        of_kind = [f for f in loaded if f.kind == kind]
        lines.append(
            f"  {kind} rows read {sum(f.rows_read for f in of_kind)}, "
            f"loaded {sum(f.rows_loaded for f in of_kind)}, "
            f"quarantined {sum(f.rows_quarantined for f in of_kind)}"
        )
    mismatched = [f for f in loaded if f.payer_mismatches]
    for f in mismatched:
        lines.append(
            f"  note: {f.source_file}: {f.payer_mismatches} rows name another payer; "
            "the folder's payer was used"
        )
    for f in summary.ingest.with_status("rejected"):
        lines.append(f"  REJECTED {f.reason}")
    for f in summary.ingest.with_status("already_rejected"):
        lines.append(f"  rejected earlier, unchanged: {f.source_file}")
    lines += _snapshot_lines(summary)
    lines += [text for policy in summary.policies for text in _policy_lines(policy)]
    for outcome in summary.responses:
        lines += ["  MCO response " + text for text in format_response(outcome).split("\n")]
    if summary.workflow is not None:
        lines.append(
            f"  workflow: {summary.workflow.notified} findings notified tonight, "
            f"{summary.workflow.overdue} became overdue, "
            f"{summary.workflow.outside_lookback} fell outside the lookback"
        )
    if not summary.audited:
        lines.append("  nothing new to audit: no finding was opened or closed")
    lines.append("  open findings by MCO and rule:")
    if not summary.open_findings:
        lines.append("    (none)")
    for payer, rule_id, count in summary.open_findings:
        lines.append(f"    {payer:<12} {rule_id}  {count}")
    lines.append(
        "  stages: "
        + ", ".join(f"{s.stage} {s.seconds:.1f} s ({s.peak_rss_mb:.0f} MB)" for s in summary.stages)
    )
    if summary.data_docs_error:
        lines.append(
            f"  Data Docs NOT built ({summary.data_docs_error}): the audit is committed and the "
            "outputs are written; -v shows why"
        )
    lines.append(
        f"  outputs in {out_dir}/: findings.csv, reprocessing_log.csv, quarantine.csv, mco/, "
        f"analyst_report_{summary.as_of.isoformat()}.html, data_docs/, run_summary.json"
    )
    return "\n".join(lines)
