"""Outputs under --out: findings, the reprocessing log, quarantine, and one folder per MCO.

Every value written to CSV or XLSX is spreadsheet-safe: text that a spreadsheet program
would run as a formula is written so that it shows as text (OWASP CSV injection guidance).
An MCO's folder never names another MCO's claims, members or providers, nor the state's
analysts: its findings carry the MCO-safe detail and none of the state's own columns.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import xlsxwriter

from pipelines.config import read_sql
from pipelines.reports.output_paths import mco_folder
from pipelines.reports.policy_text import PolicyText, policy_text, rule_texts

DATE_FORMAT = "%Y-%m-%d"
# a workbook is for people: past this many rows the CSV beside it is the working copy
WORKBOOK_MAX_FINDINGS = 10_000
# OWASP CSV injection: text starting with any of these may run as a formula
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
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
]
# the state's own columns: an MCO's package leaves them out. The analyst's name and free-text
# reason are internal (a reason may name anything), and `mco_detail` becomes its `detail`.
STATE_ONLY_COLUMNS = ["waived_reason", "waived_by", "mco_detail"]
# shown to an MCO for a finding last produced before MCO details were kept: its full detail
# may name another MCO's claim, so it is never the fallback
MCO_DETAIL_NOT_RECORDED = "(no MCO detail on record: last found before MCO details were kept)"
# an Excel sheet name: at most 31 characters
SHEET_NAME_MAX = 31


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


def write_findings(
    findings: pl.DataFrame, package: pl.DataFrame, out_dir: Path, mcos: list[str]
) -> list[Path]:
    """findings.csv with every column, and mco/<payer>/findings.csv for each MCO in `mcos`
    from `package` (the findings as mco_findings shows them).

    An MCO gets one findings file for every policy, its `policy_id` column saying which: one
    file to load into its claims system, filtered by policy as needed; the workbook beside it
    has a sheet per policy for reading.

    Both come spreadsheet-safe. An MCO's rows are not a slice of the whole file (their detail
    and columns differ), so they are formatted again: tenths of a second for 600,000.
    """
    whole = write_csv(findings, out_dir / "findings.csv", already_safe=True)
    own_files = {payer: mco_folder(out_dir, payer) / "findings.csv" for payer in mcos}
    for payer, own in own_files.items():
        write_csv(package.filter(pl.col("payer") == payer), own, already_safe=True)
    return [whole, *own_files.values()]


def all_findings(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return (
        con.sql(
            "select * from audit.findings "
            "order by policy_id, payer, claim_id, claim_line_number, rule_id"
        )
        .pl()
        .select(FINDING_COLUMNS)
    )


def audited_policies(con: duckdb.DuckDBPyConnection) -> list[PolicyText]:
    """Every policy the log has run or found anything for, in bulletin order (a policy no
    longer among the packs, without a bulletin, last)."""
    rows = con.execute(
        "select policy_id from audit.runs union select policy_id from audit.findings"
    ).fetchall()
    policies = [policy_text(str(policy_id)) for (policy_id,) in rows]
    return sorted(policies, key=lambda p: (not p.bulletin, p.bulletin, p.policy_id))


def reprocessing_log(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
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
    con.register("policy_rules", rules)
    con.register("policy_bulletins", bulletins)
    try:
        return con.sql(read_sql("reports/reprocessing_log.sql")).pl()
    finally:
        con.unregister("policy_rules")
        con.unregister("policy_bulletins")


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
    # made spreadsheet-safe once, and shaped for the MCOs once: their CSVs and workbooks
    findings = spreadsheet_safe(all_findings(con))
    package = mco_findings(findings)
    log_rows = spreadsheet_safe(reprocessing_log(con))
    mcos = configured_mcos(con)
    policies = audited_policies(con)
    written = [
        *write_findings(findings, package, out_dir, mcos),
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
                payer, policies, own_findings, own_log, workbook_path(folder, payer), as_of
            ),
        ]
    return written


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
    findings: pl.DataFrame,
    log_rows: pl.DataFrame,
    path: Path,
    as_of: dt.date,
) -> Path:
    """One MCO's workbook: summary, a findings sheet per policy, and the rules quoted from
    the bulletins.

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
        summary.write_string(0, 0, f"Claims audit: {payer}", formats["title"])
        headings = "; ".join(p.heading for p in policies) or "no policy audited yet"
        summary.write_string(1, 0, f"As of {as_of.isoformat()}; {headings}")
        _write_table(summary, log_rows, formats, first_row=3)
        for policy in policies:
            own = findings.filter(pl.col("policy_id") == policy.policy_id)
            sheet = book.add_worksheet(findings_sheet_name(policy))
            sheet.write_string(0, 0, policy.heading, formats["title"])
            if own.height <= WORKBOOK_MAX_FINDINGS:
                _write_table(sheet, own, formats, first_row=2)
            else:
                sheet.write_string(
                    2, 0, f"{own.height} findings: too many for a workbook; see findings.csv"
                )
        rules = book.add_worksheet("Rules")
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
        _write_table(rules, spreadsheet_safe(rule_rows), formats, first_row=0, wide_text=True)
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
