"""The `claims-audit` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from pipelines.log.states import LOG_STATUSES, WORKFLOW_STATES

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Audit paid KanCare MCO claim lines against written billing policies (one policy pack per
KMAP bulletin: `claims-audit policies` lists them), and keep the reprocessing log that
tells each MCO which lines to reprocess and why.

Start with `claims-audit demo` to see a whole audit on synthetic data.
"""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in YYYY-MM-DD form") from error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claims-audit",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each stage as it starts and ends, and each file as it loads",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="load new deliveries, audit, update the log, write the outputs",
        description=(
            "Load every new delivery under --input (claims/<payer>/* and reference/*), audit "
            "the current in-scope lines of every policy pack (or those --policy names), update "
            "the reprocessing log in the DuckDB file --db "
            "(created when missing) and write findings.csv, reprocessing_log.csv, "
            "quarantine.csv and mco/<payer>/ under --out. Running it again on the same input "
            "changes nothing: deliveries are recognised by content."
        ),
    )
    run.add_argument("--input", type=Path, required=True, metavar="DIR", help="input folder")
    run.add_argument("--db", type=Path, required=True, metavar="FILE", help="DuckDB audit database")
    run.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    run.add_argument(
        "--as-of",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the run date recorded in the log (default: today)",
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 when any file is rejected or a reference snapshot is held back",
    )
    run.add_argument(
        "--full",
        action="store_true",
        help=(
            "audit every current in-scope line, also when nothing new was delivered (a changed "
            "pack, suite or code re-audits its policy by itself)"
        ),
    )
    _pack_options(run, "audit only this policy (its ID, as `claims-audit policies` lists)")
    run.add_argument(
        "--accept-reference",
        action="append",
        default=[],
        metavar="FILE",
        help=(
            "take this reference file as the new snapshot even when it is outside the "
            "snapshot limits and would be held back; FILE is its name (members.csv) or its "
            "path under --input (reference/members.csv); may be repeated"
        ),
    )

    demo = commands.add_parser(
        "demo",
        help="generate a synthetic input and audit it end to end",
        description="Generate a realistic synthetic input with planted findings and audit it.",
    )
    demo.add_argument(
        "--dir", type=Path, default=Path("demo"), metavar="DIR", help="where to put it (./demo)"
    )
    demo.add_argument("--seed", type=int, default=2023, help="random seed (2023)")

    findings = commands.add_parser(
        "findings",
        help="list findings from the audit database",
        description=(
            "List findings from the reprocessing log. The console shows no member IDs; "
            "--output writes every column (member IDs included) to a CSV file."
        ),
    )
    findings.add_argument("--db", type=Path, required=True, metavar="FILE")
    findings.add_argument(
        "--policy",
        metavar="ID",
        help="one policy's findings (its ID, as `claims-audit policies` lists it)",
    )
    findings.add_argument("--payer", help="one MCO, e.g. SUNFLOWER")
    findings.add_argument(
        "--rule", help="one rule ID, as findings.csv and `claims-audit policies` show it"
    )
    findings.add_argument(
        "--status",
        choices=[*LOG_STATUSES, *WORKFLOW_STATES],
        help=(
            "a status of the log, or a state of open findings: disputed (awaiting `decide`), "
            "overdue, held, outside_lookback"
        ),
    )
    findings.add_argument(
        "--provider", metavar="NPI", help="the findings a provider billed or rendered"
    )
    findings.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="first found on/after")
    findings.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="first found on/before")
    findings.add_argument("--output", type=Path, metavar="FILE", help="write the rows as CSV")

    explain = commands.add_parser(
        "explain",
        help="show every rule a claim line breaks or passes, with the evidence",
        description="Explain one claim (or one line of it): each rule, its verdict and evidence.",
    )
    explain.add_argument("--db", type=Path, required=True, metavar="FILE")
    explain.add_argument("payer", help="the MCO, e.g. AETNA; or a finding ID (F-...) alone")
    explain.add_argument("claim_id", nargs="?")
    explain.add_argument("line", nargs="?", type=int, help="claim line number (default: all)")
    _pack_options(explain, "explain against this policy only")

    policies = commands.add_parser(
        "policies",
        help="list the policy packs the audit finds, with their rules",
        description=(
            "List every policy pack found (the project's policies/ folder, CLAIMS_AUDIT_POLICIES "
            "and --policies): its ID, bulletin, codes in scope, rule count, folder and hash."
        ),
    )
    _pack_options(policies, None)

    waive = commands.add_parser(
        "waive",
        help="waive one open finding, with a reason and the analyst's name",
        description=(
            "Waive one open finding. The reason and the analyst's name are kept in the "
            "finding and in its history; a waived finding stays waived in later runs. A "
            "finding that is closed or already waived cannot be waived, and the reason and "
            "the name must not be blank (exit 2)."
        ),
    )
    waive.add_argument("--db", type=Path, required=True, metavar="FILE")
    waive.add_argument(
        "finding",
        nargs="+",
        metavar="FINDING",
        help=(
            "the finding's ID (F-..., as findings.csv and the MCO packages show it), or its "
            "PAYER CLAIM_ID LINE RULE"
        ),
    )
    waive.add_argument(
        "--policy",
        metavar="ID",
        help="the finding's policy; needed when the key names findings of several policies",
    )
    waive.add_argument("--reason", required=True, help="why the line need not be reprocessed")
    waive.add_argument("--analyst", required=True, help="who decided")
    waive.add_argument("--as-of", type=_date, default=None, metavar="YYYY-MM-DD")

    _workflow_commands(commands)

    generate = commands.add_parser(
        "generate",
        help="write a synthetic input folder and its ground truth",
        description="Write a synthetic input folder and the findings planted in it.",
    )
    generate.add_argument("--input", type=Path, required=True, metavar="DIR")
    generate.add_argument("--truth", type=Path, required=True, metavar="FILE")
    generate.add_argument("--seed", type=int, default=2023)
    generate.add_argument("--members-per-mco", type=int, default=40)
    return parser


def _workflow_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """respond, decide, hold, release: the workflow from notice to reprocessed claim
    (docs/workflow.md). Each is recorded with its date and who took it."""
    respond = commands.add_parser(
        "respond",
        help="take an MCO's response file (its workbook sent back, or a CSV)",
        description=(
            "Record an MCO's answers to the findings of its package: FILE is its workbook sent "
            "back (the Findings sheets' response, comment and planned_date columns) or a CSV "
            "with the columns finding_id, response, comment, planned_date; response is agree, "
            "dispute or corrected. A row naming another MCO's finding, an unknown or closed "
            "finding, or an unknown response is rejected with its row number and reason; the "
            "others are taken. A file taken before changes nothing. Exit 2 when the whole "
            "file is refused (no such MCO, no finding_id or response column)."
        ),
    )
    respond.add_argument("--db", type=Path, required=True, metavar="FILE")
    respond.add_argument("--payer", required=True, help="the MCO that answers, e.g. AETNA")
    respond.add_argument("--analyst", required=True, help="who loads the file")
    respond.add_argument("--as-of", type=_date, default=None, metavar="YYYY-MM-DD")
    respond.add_argument("file", type=Path, metavar="FILE", help="the response file")

    decide = commands.add_parser(
        "decide",
        help="uphold or waive a finding its MCO disputed",
        description=(
            "Decide a dispute (`claims-audit findings --status disputed` lists them): "
            "--uphold keeps the finding open with its due date unchanged; --waive waives it. "
            "The reason and the analyst's name are kept in its history."
        ),
    )
    decide.add_argument("--db", type=Path, required=True, metavar="FILE")
    decide.add_argument("finding_id", metavar="FINDING_ID", help="F-..., as findings.csv shows")
    choice = decide.add_mutually_exclusive_group(required=True)
    choice.add_argument("--uphold", action="store_true", help="the finding stands")
    choice.add_argument("--waive", action="store_true", help="the MCO is right: waive it")
    decide.add_argument("--reason", required=True, help="why")
    decide.add_argument("--analyst", required=True, help="who decided")
    decide.add_argument("--as-of", type=_date, default=None, metavar="YYYY-MM-DD")

    hold = commands.add_parser(
        "hold",
        help="keep a provider's findings out of every MCO package (a pending referral)",
        description=(
            "Hold a provider (billing or rendering NPI): from the next run its findings stay "
            "out of every MCO package, and are not notified, until `claims-audit release`. "
            "They stay in the state's outputs, marked held."
        ),
    )
    release = commands.add_parser(
        "release",
        help="end a provider's hold: its findings go out with the next run",
        description=(
            "Release a held provider: its findings go out with the next run's packages; one "
            "never notified is due from that run."
        ),
    )
    for command, reason_help in (
        (hold, "why (e.g. referral to the Medicaid Fraud Control Unit pending)"),
        (release, "why, optional"),
    ):
        command.add_argument("--db", type=Path, required=True, metavar="FILE")
        command.add_argument("--provider", required=True, metavar="NPI", help="10-digit NPI")
        command.add_argument("--reason", required=command is hold, help=reason_help)
        command.add_argument("--analyst", required=True, help="who decided")
        command.add_argument("--as-of", type=_date, default=None, metavar="YYYY-MM-DD")


def _pack_options(command: argparse.ArgumentParser, policy_help: str | None) -> None:
    """Where packs are found (--policies) and, for commands that take it, which (--policy)."""
    command.add_argument(
        "--policies",
        dest="policies_dir",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help=(
            "also find policy packs here (DIR/policies/<id>/ with DIR/expectations/<id>.json); "
            "a pack there replaces the project's pack of the same ID; may be repeated"
        ),
    )
    if policy_help:
        command.add_argument(
            "--policy", action="append", default=[], metavar="ID", help=policy_help + "; repeatable"
        )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "policies_dir", None):
        from pipelines.audit.packs import add_pack_locations

        add_pack_locations(args.policies_dir)
    if args.command in ("run", "demo"):
        from pipelines.audit import gx_process

        gx_process.shared()  # first: its seconds of importing overlap everything after
    from pipelines.cli import commands
    from pipelines.db import DatabaseTooNew, MigrationFailed

    try:
        if args.command == "run":
            return commands.run(args)
        handler = {
            "demo": commands.demo,
            "generate": commands.generate,
            "findings": commands.findings,
            "explain": commands.explain,
            "waive": commands.waive,
            "respond": commands.respond,
            "decide": commands.decide,
            "hold": commands.hold,
            "release": commands.release,
            "policies": commands.policies,
        }[args.command]
        return handler(args)
    except (commands.UsageError, DatabaseTooNew) as error:
        print(f"claims-audit: {error}", file=sys.stderr)
        return EXIT_USAGE
    except MigrationFailed as error:
        # names the migration and the error's type only; the file is as it was
        logging.getLogger("claims-audit").info("migration failed", exc_info=True)
        print(f"claims-audit: {error}. Re-run with -v for the details.", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as error:
        # the message of a library error may quote input values: only -v shows it
        logging.getLogger("claims-audit").info("internal error", exc_info=True)
        print(
            f"claims-audit: {_internal_error(error)} Re-run with -v for the details.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _internal_error(error: Exception) -> str:
    """What an internal error means for the database: committed, or as it was."""
    from pipelines.cli.commands import OutputsNotWritten

    if isinstance(error, OutputsNotWritten):
        return (
            f"internal error ({error}) while writing the outputs. The audit is committed; "
            "the next run writes the outputs again."
        )
    return (
        f"internal error ({type(error).__name__}). The database was left as it was before this run."
    )


if __name__ == "__main__":
    sys.exit(main())
