"""Outputs under --out: findings, the reprocessing log, quarantine, and one folder per MCO.

Every value written to CSV or XLSX is spreadsheet-safe: text that a spreadsheet program
would run as a formula is written so that it shows as text (OWASP CSV injection guidance).
An MCO's folder never names another MCO's claims, members or providers, nor the state's
analysts: its findings carry the MCO-safe detail and none of the state's own columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import xlsxwriter

from pipelines.audit.packs import discover
from pipelines.audit.rules import load_suite_definition
from pipelines.config import read_sql
from pipelines.reports.output_paths import mco_folder

DATE_FORMAT = "%Y-%m-%d"
# a workbook is for people: past this many rows the CSV beside it is the working copy
WORKBOOK_MAX_FINDINGS = 10_000
# OWASP CSV injection: text starting with any of these may run as a formula
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
FINDING_COLUMNS = [
    "payer",
    "claim_id",
    "claim_line_number",
    "member_id",
    "peer_npi",
    "service_date",
    "paid_amount",
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
]
# the state's own columns: an MCO's package leaves them out. The analyst's name and free-text
# reason are internal (a reason may name anything), and `mco_detail` becomes its `detail`.
STATE_ONLY_COLUMNS = ["waived_reason", "waived_by", "mco_detail"]
# shown to an MCO for a finding last produced before MCO details were kept: its full detail
# may name another MCO's claim, so it is never the fallback
MCO_DETAIL_NOT_RECORDED = "(no MCO detail on record: last found before MCO details were kept)"


@dataclass(frozen=True)
class RuleText:
    rule_id: str
    title: str
    bulletin_text: str
    flagged_when: str


def rule_texts() -> list[RuleText]:
    """One entry per rule of every pack, in catalog order, from the suites' own metadata."""
    seen: dict[str, RuleText] = {}
    suites = [pack.suite_file for pack in discover().values()]
    for expectation in (
        e for suite in suites for e in load_suite_definition(suite)["expectations"]
    ):
        meta = expectation["meta"]
        seen.setdefault(
            meta["rule_id"],
            RuleText(meta["rule_id"], meta["title"], meta["bulletin_text"], meta["flagged_when"]),
        )
    return list(seen.values())


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix an apostrophe to text a spreadsheet would otherwise evaluate as a formula."""
    text_columns = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.any_horizontal([pl.col(name).str.starts_with(t) for t in FORMULA_TRIGGERS]))
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
    """Findings as an MCO's package shows them: the MCO-safe detail, no state-only column."""
    return findings.with_columns(
        pl.col("mco_detail").fill_null(MCO_DETAIL_NOT_RECORDED).alias("detail")
    ).drop(STATE_ONLY_COLUMNS)


def write_findings(findings: pl.DataFrame, out_dir: Path, mcos: list[str]) -> list[Path]:
    """findings.csv with every column, and mco/<payer>/findings.csv for each MCO in `mcos`.

    `findings` comes spreadsheet-safe. An MCO's rows are not a slice of the whole file (their
    detail and columns differ), so they are formatted again: tenths of a second for 600,000.
    """
    whole = write_csv(findings, out_dir / "findings.csv", already_safe=True)
    own_files = {payer: mco_folder(out_dir, payer) / "findings.csv" for payer in mcos}
    package = mco_findings(findings)
    for payer, own in own_files.items():
        write_csv(package.filter(pl.col("payer") == payer), own, already_safe=True)
    return [whole, *own_files.values()]


def all_findings(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return (
        con.sql("select * from audit.findings order by payer, claim_id, claim_line_number, rule_id")
        .pl()
        .select(FINDING_COLUMNS)
    )


def reprocessing_log(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    issues = pl.DataFrame(
        [{"rule_id": r.rule_id, "issue_description": r.title} for r in rule_texts()]
    )
    con.register("rule_issues", issues)
    try:
        return con.sql(read_sql("reports/reprocessing_log.sql")).pl()
    finally:
        con.unregister("rule_issues")


def quarantine(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(
        "select source_file, row_number, reason, raw_row from audit.quarantine "
        "order by delivery_id, row_number"
    ).pl()


def configured_mcos(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("select distinct payer from ref.mco_implementation order by payer")
    return [str(r[0]) for r in rows.fetchall()]


def write_reports(con: duckdb.DuckDBPyConnection, out_dir: Path, *, as_of: dt.date) -> list[Path]:
    """Write every output; an MCO's folder holds only that MCO's rows, as it may see them."""
    # made spreadsheet-safe once: each MCO's rows are a slice of the whole
    findings = spreadsheet_safe(all_findings(con))
    package = mco_findings(findings)
    log_rows = spreadsheet_safe(reprocessing_log(con))
    mcos = configured_mcos(con)
    written = [
        *write_findings(findings, out_dir, mcos),
        write_csv(log_rows, out_dir / "reprocessing_log.csv", already_safe=True),
        write_csv(quarantine(con), out_dir / "quarantine.csv"),
    ]
    for payer in mcos:
        folder = mco_folder(out_dir, payer)
        own_findings = package.filter(pl.col("payer") == payer)
        own_log = log_rows.filter(pl.col("payer") == payer)
        written += [
            write_csv(own_log, folder / "reprocessing_log.csv", already_safe=True),
            write_workbook(
                payer, own_findings, own_log, folder / f"{payer}_h0038_audit.xlsx", as_of
            ),
        ]
    return written


# XLSX -------------------------------------------------------------------------------------


def write_workbook(
    payer: str, findings: pl.DataFrame, log_rows: pl.DataFrame, path: Path, as_of: dt.date
) -> Path:
    """One MCO's workbook: summary, findings and the rules quoted from the bulletin.

    `findings` (as mco_findings shows them) and `log_rows` come spreadsheet-safe already.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # input text is never turned into a formula, a number or a link
    options = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    with xlsxwriter.Workbook(str(path), options) as book:
        formats = {
            "header": book.add_format({"bold": True, "bg_color": "#DDE5F0", "border": 1}),
            "date": book.add_format({"num_format": "yyyy-mm-dd"}),
            "money": book.add_format({"num_format": "$#,##0.00"}),
            "title": book.add_format({"bold": True, "font_size": 14}),
            "wrap": book.add_format({"text_wrap": True, "valign": "top"}),
        }
        summary = book.add_worksheet("Summary")
        summary.write_string(0, 0, f"H0038 Parent Peer Support audit: {payer}", formats["title"])
        summary.write_string(1, 0, f"As of {as_of.isoformat()}; KMAP General Bulletin 22321")
        _write_table(summary, log_rows, formats, first_row=3)
        sheet = book.add_worksheet("Findings")
        if findings.height <= WORKBOOK_MAX_FINDINGS:
            _write_table(sheet, findings, formats, first_row=0)
        else:
            sheet.write_string(
                0, 0, f"{findings.height} findings: too many for a workbook; see findings.csv"
            )
        rules = book.add_worksheet("Rules")
        rule_rows = spreadsheet_safe(pl.DataFrame([r.__dict__ for r in rule_texts()]))
        _write_table(rules, rule_rows, formats, first_row=0, wide_text=True)
    return path


def _write_table(
    sheet: Any,
    frame: pl.DataFrame,
    formats: dict[str, Any],
    *,
    first_row: int,
    wide_text: bool = False,
) -> None:
    for col, name in enumerate(frame.columns):
        sheet.write_string(first_row, col, name, formats["header"])
        dtype = frame.schema[name]
        cell_format = None
        if dtype == pl.Date:
            cell_format = formats["date"]
        elif name.endswith("amount") or name.startswith("amount"):
            cell_format = formats["money"]
        for row, value in enumerate(frame[name].to_list(), start=first_row + 1):
            _write_cell(sheet, row, col, value, cell_format)
        width = 60 if wide_text and dtype == pl.String else max(12, min(48, len(name) + 4))
        sheet.set_column(col, col, width, formats["wrap"] if wide_text else None)
    sheet.freeze_panes(first_row + 1, 0)
    sheet.autofilter(first_row, 0, first_row + frame.height, max(frame.width - 1, 0))


def _write_cell(sheet: Any, row: int, col: int, value: object, cell_format: Any) -> None:
    if value is None:
        sheet.write_blank(row, col, None)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, col, dt.datetime.combine(value, dt.time()), cell_format)
    elif isinstance(value, int | float) or hasattr(value, "as_tuple"):
        sheet.write_number(row, col, float(value), cell_format)  # type: ignore[arg-type]
    else:
        sheet.write_string(row, col, str(value))
