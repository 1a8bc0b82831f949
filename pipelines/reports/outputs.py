"""Outputs under --out: findings, the reprocessing log, quarantine, and one folder per MCO.

Every value written to CSV or XLSX is spreadsheet-safe: text that a spreadsheet program
would run as a formula is written so that it shows as text (OWASP CSV injection guidance).
An MCO's folder never names another MCO's claims, members or providers, nor the state's
analysts: its findings carry the MCO-safe detail and none of the state's own columns.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from pipelines.config import read_sql
from pipelines.db import registered, scalar
from pipelines.log.states import RESPONSES
from pipelines.metering import Stopwatch
from pipelines.reports.output_paths import mco_folder
from pipelines.reports.policy_text import PolicyText, policy_text, rule_texts
from pipelines.reports.providers import PROVIDER_SUMMARY_FILE, provider_summary
from pipelines.reports.spool import DATE_FORMAT, CsvFile, PolicySpool
from pipelines.reports.workbook import EXCEL_MAX_ROWS, SHEET_NAME_MAX, TableBook, TableRows

log = logging.getLogger(__name__)

# OWASP CSV injection: text starting with any of these may run as a formula
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# text starting with one of them, as one regex (each as its code point): one pass a column
FORMULA_START = "^[" + "".join(f"\\x{{{ord(t):02X}}}" for t in FORMULA_TRIGGERS) + "]"
FINDING_COLUMNS = [
    "policy_id",
    "payer",
    "claim_id",
    "claim_line_number",
    "member_id",
    "peer_npi",
    "service_date",
    "paid_amount",
    "amount_at_risk",
    "rule_id",
    "severity",
    "detail",
    "status",
    "first_found_date",
    "last_found_date",
    "resolved_date",
    "pre_implementation",
    "paid_date",
    "waived_reason",
    "waived_by",
    "mco_detail",
    # the workflow (docs/workflow.md)
    "finding_id",
    "supersedes_finding_id",
    "billing_npi",
    "notified_date",
    "due_date",
    "overdue",
    "days_overdue",
    "response",
    "response_date",
    "response_comment",
    "planned_date",
    "review",
    "held",
    "outside_lookback",
]
# the state's own columns: an MCO's package leaves them out. The analyst's name and free-text
# reason are internal (a reason may name anything), and `mco_detail` becomes its `detail`.
# Held findings and those outside the lookback never reach a package, so their flags are the
# state's only.
STATE_ONLY_COLUMNS = ["waived_reason", "waived_by", "mco_detail", "held", "outside_lookback"]
# an MCO answers in its package's own columns (pipelines/log/responses.py reads them back)
MCO_COLUMN_NAMES = {"response_comment": "comment"}
# the columns of an MCO's findings, in its CSV and its workbook
MCO_FINDING_COLUMNS = [
    MCO_COLUMN_NAMES.get(c, c) for c in FINDING_COLUMNS if c not in STATE_ONLY_COLUMNS
]
# beside FINDING_COLUMNS as findings are read: whether the MCO's package shows the finding
IN_PACKAGE = "in_mco_package"
# shown to an MCO for a finding last produced before MCO details were kept: its full detail
# may name another MCO's claim, so it is never the fallback
MCO_DETAIL_NOT_RECORDED = "(no MCO detail on record: last found before MCO details were kept)"
# the Summary's line under its title: which tables continue on further sheets, if any do
SUMMARY_NOTE_ROW = 2
# findings read from the log and written at a time: the outputs' memory stays the same
# whatever the number of findings (millions in a state's log)
CHUNK_ROWS = 100_000
# MCO workbooks written at once, each from its own spool
PACKAGES_AT_A_TIME = 2


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix an apostrophe to text a spreadsheet would otherwise evaluate as a formula."""
    text_columns = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text_columns
    )


def write_csv(frame: pl.DataFrame, path: Path, *, already_safe: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    safe = frame if already_safe else spreadsheet_safe(frame)
    safe.write_csv(path, date_format=DATE_FORMAT)
    return path


def mco_findings(findings: pl.DataFrame) -> pl.DataFrame:
    """Findings as an MCO's package shows them: only those notified and neither held nor
    outside the lookback (IN_PACKAGE), with the MCO-safe detail, no state-only column, and its
    answer's columns named as it answers."""
    return (
        findings.filter(pl.col(IN_PACKAGE))
        .with_columns(pl.col("mco_detail").fill_null(MCO_DETAIL_NOT_RECORDED).alias("detail"))
        .drop(*STATE_ONLY_COLUMNS, IN_PACKAGE)
        .rename(MCO_COLUMN_NAMES, strict=False)
    )


def read_in_chunks(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None
) -> Iterator[pl.DataFrame]:
    """A query's rows, CHUNK_ROWS at a time. A query without rows still yields one empty
    frame of its columns, so a file of no rows keeps its header."""
    # a relation streams its rows; a DB-API result (con.execute) would copy them all first
    reader = con.sql(query, params=params).to_arrow_reader(CHUNK_ROWS)
    empty = True
    for batch in reader:
        empty = False
        yield _frame(pa.Table.from_batches([batch]))
    if empty:
        yield _frame(reader.schema.empty_table())


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # a table, not an array, comes back a frame
    return frame


def findings_in_chunks(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> Iterator[pl.DataFrame]:
    """Every finding, with every column and IN_PACKAGE, spreadsheet-safe: findings.csv's rows
    (days overdue counted to `as_of`)."""
    params = {"as_of": as_of}
    for chunk in read_in_chunks(con, read_sql("reports/findings.sql"), params):
        yield spreadsheet_safe(chunk.select(*FINDING_COLUMNS, IN_PACKAGE))


def all_findings(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None) -> pl.DataFrame:
    """Every finding with its state in the workflow; days overdue counted to `as_of` (by
    default the last run's as-of date, when the overdue flags were set)."""
    params = {"as_of": as_of or latest_as_of(con)}
    chunks = read_in_chunks(con, read_sql("reports/findings.sql"), params)
    return pl.concat(chunks).select(FINDING_COLUMNS)


def latest_as_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The as-of date of the last run; today before any."""
    found = scalar(con, "select max(as_of) from audit.runs")
    return found if isinstance(found, dt.date) else dt.date.today()


def audited_policies(con: duckdb.DuckDBPyConnection) -> list[PolicyText]:
    """Every policy the log has run or found anything for, in bulletin order (a policy no
    longer among the packs, without a bulletin, last)."""
    rows = con.execute(
        "select policy_id from audit.runs union select policy_id from audit.findings"
    ).fetchall()
    policies = [policy_text(str(policy_id)) for (policy_id,) in rows]
    return sorted(policies, key=lambda p: (not p.bulletin, p.bulletin, p.policy_id))


def reprocessing_log(
    con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, *, mco_view: bool = False
) -> pl.DataFrame:
    """One row per (policy, payer, rule) issue; days overdue counted to `as_of` (the last
    run's by default). With `mco_view`, only the findings the MCOs' packages show."""
    policies = audited_policies(con)
    rules = pl.DataFrame(
        [
            {"policy_id": p.policy_id, "rule_id": r.rule_id, "issue_description": r.title}
            for p in policies
            for r in rule_texts(p.policy_id)
        ],
        schema={"policy_id": pl.String, "rule_id": pl.String, "issue_description": pl.String},
    )
    bulletins = pl.DataFrame(
        [{"policy_id": p.policy_id, "bulletin": p.bulletin or None} for p in policies],
        schema={"policy_id": pl.String, "bulletin": pl.String},
    )
    with registered(con, policy_rules=rules, policy_bulletins=bulletins):
        params = {"as_of": as_of or latest_as_of(con), "mco_view": mco_view}
        return con.sql(read_sql("reports/reprocessing_log.sql"), params=params).pl()


def quarantine(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(
        "select source_file, row_number, reason, raw_row from audit.quarantine "
        "order by delivery_id, row_number"
    ).pl()


def configured_mcos(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("select distinct payer from ref.mco_implementation order by payer")
    return [str(r[0]) for r in rows.fetchall()]


def write_reports(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    *,
    as_of: dt.date,
    providers: pl.DataFrame | None = None,
    log_rows: pl.DataFrame | None = None,
) -> list[Path]:
    """Write every output but the analyst report (pipelines/reports/every_output.py writes
    both); an MCO's folder holds only that MCO's rows, as it may see them. `providers` is the
    provider summary, `log_rows` the reprocessing log as of `as_of`, when the caller has them
    already.

    The log's findings are read once, CHUNK_ROWS at a time, and each chunk written to
    findings.csv and to each MCO's package: memory does not grow with the log. The
    reprocessing log's rows (one per policy, MCO and rule) are few, and made
    spreadsheet-safe once."""
    log_rows = spreadsheet_safe(reprocessing_log(con, as_of) if log_rows is None else log_rows)
    # an MCO's rows count only the findings its package shows
    package_log = spreadsheet_safe(reprocessing_log(con, as_of, mco_view=True))
    policies = audited_policies(con)
    mcos = configured_mcos(con)
    written = [
        out_dir / "findings.csv",
        write_csv(log_rows, out_dir / "reprocessing_log.csv", already_safe=True),
        write_csv(quarantine(con), out_dir / "quarantine.csv"),
        write_csv(
            provider_summary(con) if providers is None else providers,
            out_dir / PROVIDER_SUMMARY_FILE,
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="claims-audit-packages-") as spool_root:
        spools = {
            payer: PolicySpool(Path(spool_root) / f"mco-{number:03d}", CHUNK_ROWS)
            for number, payer in enumerate(mcos)
        }
        watch = Stopwatch()
        found = write_findings(con, out_dir, spools, as_of)
        log.info(
            "findings.csv and the MCOs' findings.csv: %d findings in %.1f s", found, watch.lap()
        )

        def write_package(payer: str) -> list[Path]:
            watch = Stopwatch()
            folder = mco_folder(out_dir, payer)
            own_log = package_log.filter(pl.col("payer") == payer)
            sheets = {p.policy_id: spools[payer].table(p.policy_id) for p in policies}
            written = [
                folder / "findings.csv",
                write_csv(own_log, folder / "reprocessing_log.csv", already_safe=True),
                write_workbook(
                    payer, policies, sheets, own_log, workbook_path(folder, payer), as_of
                ),
            ]
            shown = sum(spools[payer].rows(p.policy_id) for p in policies)
            log.info("%s: workbook of %d findings in %.1f s", payer, shown, watch.lap())
            return written

        # polars and zlib work outside the GIL: two MCOs' workbooks at a time use both cores
        with ThreadPoolExecutor(max_workers=PACKAGES_AT_A_TIME) as pool:
            for paths in pool.map(write_package, mcos):
                written += paths
    return written


def write_findings(
    con: duckdb.DuckDBPyConnection, out_dir: Path, spools: dict[str, PolicySpool], as_of: dt.date
) -> int:
    """findings.csv with every column, and for each MCO of `spools` mco/<payer>/findings.csv
    with its rows as its package shows them (mco_findings), kept in its spool as well.
    Returns how many findings findings.csv lists.

    An MCO gets one findings file for every policy, its `policy_id` column saying which: one
    file to load into its claims system, filtered by policy as needed; the workbook beside it
    has a sheet per policy for reading."""
    whole = CsvFile(out_dir / "findings.csv")
    packages = {payer: CsvFile(mco_folder(out_dir, payer) / "findings.csv") for payer in spools}
    found = 0
    try:
        # findings.csv takes each chunk on a thread of its own while the packages take it
        # here; one chunk at a time, so memory stays that of one chunk
        with ThreadPoolExecutor(max_workers=1) as beside:
            for chunk in findings_in_chunks(con, as_of):
                written = beside.submit(whole.write, chunk.drop(IN_PACKAGE))
                shown = mco_findings(chunk)
                for payer, package in packages.items():
                    own = shown.filter(pl.col("payer") == payer)
                    if own.height or package.empty:  # an MCO without findings gets the header
                        package.write(own)
                        spools[payer].add(own)
                written.result()
                found += chunk.height
    finally:
        for file in [whole, *packages.values()]:
            file.close()
        for spool in spools.values():
            spool.close()
    return found


# XLSX -------------------------------------------------------------------------------------


def workbook_path(folder: Path, payer: str) -> Path:
    """An MCO's workbook: one for every policy, so its name names none."""
    return folder / f"{payer}_claims_audit.xlsx"


def findings_sheet_name(policy: PolicyText) -> str:
    """The sheet of one policy's findings, named by its bulletin (short, and what MCOs cite)."""
    return f"Findings {policy.bulletin or policy.policy_id}"[:SHEET_NAME_MAX]


def write_workbook(
    payer: str,
    policies: list[PolicyText],
    findings: Mapping[str, pl.DataFrame | TableRows],
    log_rows: pl.DataFrame,
    path: Path,
    as_of: dt.date,
) -> Path:
    """One MCO's workbook: summary, a findings sheet per policy, and the rules quoted from
    the bulletins. Every row is in it: a table longer than a sheet continues on more sheets,
    and the Summary says which.

    `findings` holds each policy's findings (as mco_findings shows them) by policy ID; they
    and `log_rows` come spreadsheet-safe already.
    """
    book = TableBook(path)
    headings = "; ".join(p.heading for p in policies) or "no policy audited yet"
    summary_titles: list[tuple[str, str | None]] = [
        (f"Claims audit: {payer}", "title"),
        (f"As of {as_of.isoformat()}; {headings}", None),
    ]
    summary = book.table("Summary", log_rows, titles=summary_titles, header_row=3)
    for policy in policies:
        sheets = book.table(
            findings_sheet_name(policy),
            findings[policy.policy_id],
            titles=[(policy.heading, "title")],
            header_row=2,
        )
        _response_choices(sheets, findings[policy.policy_id], header_row=2)
    rule_rows = pl.DataFrame(
        [
            {"policy_id": p.policy_id, **r.__dict__}
            for p in policies
            for r in rule_texts(p.policy_id)
        ],
        schema=dict.fromkeys(
            ["policy_id", "rule_id", "title", "bulletin_text", "flagged_when"], pl.String
        ),
    )
    book.table("Rules", spreadsheet_safe(rule_rows), titles=[], header_row=0, wide_text=True)
    note = book.continuation_note()
    if note:
        summary[0].write_string(SUMMARY_NOTE_ROW, 0, note)
    return book.close()


def _response_choices(
    sheets: list[Any], findings: pl.DataFrame | TableRows, *, header_row: int
) -> None:
    """The `response` cells of a findings sheet offer the answers `claims-audit respond`
    takes: the MCO fills them in and sends the workbook back as it is."""
    if "response" not in findings.columns:
        return
    column = findings.columns.index("response")
    last_row = header_row + max(1, min(findings.height, EXCEL_MAX_ROWS - header_row - 1))
    for sheet in sheets:
        sheet.data_validation(
            header_row + 1,
            column,
            last_row,
            column,
            {
                "validate": "list",
                "source": list(RESPONSES),
                "error_title": "response",
                "error_message": f"Answer with one of: {', '.join(RESPONSES)}.",
            },
        )
