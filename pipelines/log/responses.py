"""MCO responses: an MCO answers each finding of its package with agree, dispute or corrected.

A response file is the MCO's own workbook sent back (its Findings sheets) or a CSV with the
columns finding_id, response, comment, planned_date (its package's findings.csv sent back
has them too). A row naming a finding the MCO was never sent, another MCO's finding, a closed
one, or an unknown response is rejected with its row number and reason; the other rows are
taken. A file is known by its content: taken again, it changes nothing. A comment is kept as
text and never evaluated: a formula typed in a cell is read as the text of the formula, and
every output that shows it writes it as text (pipelines/reports/outputs.spreadsheet_safe).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.db import execute, scalar
from pipelines.ingest.datasets import PAYER_CODE_FORM, is_payer_code
from pipelines.log.states import RESPONSES
from pipelines.log.workflow import FindingKey, add_history

REQUIRED_COLUMNS = ("finding_id", "response")
OPTIONAL_COLUMNS = ("comment", "planned_date")
RESPONSE_SUFFIXES = (".csv", ".xlsx")
# a response file's name: letters, digits, `.`, `_`, `-` and spaces, not starting with `.`
RESPONSE_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,199}")
# the workbook's sheets that hold findings (pipelines/reports/outputs.findings_sheet_name)
FINDINGS_SHEET_PREFIX = "Findings"
# a comment longer than this is cut: it is a note, not a document
COMMENT_MAX = 2000


class ResponseFileRejected(Exception):
    """The whole file cannot be taken; nothing of it is recorded on any finding."""


@dataclass(frozen=True)
class ResponseRow:
    row_number: int  # as a spreadsheet numbers it: the header is row 1
    finding_id: str
    response: str
    comment: str
    planned_date: str


@dataclass
class ResponseOutcome:
    source_file: str
    status: str  # taken | rejected | already_taken | already_rejected
    reason: str | None = None
    taken: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)


def read_response_file(path: Path) -> list[ResponseRow]:
    """The rows of a response file that answer a finding: a row without a response is skipped
    (most rows of a workbook sent back are not answered)."""
    suffix = path.suffix.lower()
    if suffix not in RESPONSE_SUFFIXES:
        raise ResponseFileRejected("a response file is a .csv or an .xlsx file")
    tables = _csv_table(path) if suffix == ".csv" else _workbook_tables(path)
    rows = []
    for header_row, header, body in tables:
        columns = [str(h or "").strip().lower() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ResponseFileRejected(
                f"no {' or '.join(missing)} column (row {header_row}): a response file has "
                "the columns finding_id, response, comment, planned_date"
            )
        at = {c: columns.index(c) for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in columns}
        for number, values in body:
            cells = {c: _text(values[i]) if i < len(values) else "" for c, i in at.items()}
            if cells["response"]:
                rows.append(
                    ResponseRow(
                        number,
                        cells["finding_id"],
                        cells["response"],
                        cells.get("comment", "")[:COMMENT_MAX],
                        cells.get("planned_date", ""),
                    )
                )
    return rows


Table = tuple[int, list[Any], Iterator[tuple[int, list[Any]]]]


def _csv_table(path: Path) -> list[Table]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise ResponseFileRejected("the file is not UTF-8 text") from error
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise ResponseFileRejected("the file is empty")
    return [(1, list(header), ((number, row) for number, row in enumerate(reader, start=2)))]


def _workbook_tables(path: Path) -> list[Table]:
    """Each Findings sheet: its header is the first row naming finding_id. Cells are read as
    they are stored: a formula as its text, never calculated."""
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise ResponseFileRejected("the file is not an XLSX workbook") from error
    tables: list[Table] = []
    for sheet in book.worksheets:
        if not sheet.title.startswith(FINDINGS_SHEET_PREFIX):
            continue
        rows = list(sheet.iter_rows(values_only=True))
        for index, row in enumerate(rows):
            if any(_text(v).lower() == "finding_id" for v in row):
                body = ((index + 1 + n, list(r)) for n, r in enumerate(rows[index + 1 :], 1))
                tables.append((index + 1, list(row), body))
                break
    book.close()
    if not tables:
        raise ResponseFileRejected(
            f"no sheet named {FINDINGS_SHEET_PREFIX}... with a finding_id column: send back "
            "the workbook of the package, or a CSV"
        )
    return tables


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


# taking a file ---------------------------------------------------------------------------------


def take_response_file(
    con: duckdb.DuckDBPyConnection,
    payer: str,
    path: Path,
    *,
    source_file: str,
    on: dt.date,
    by: str,
) -> ResponseOutcome:
    """Record the answers of one MCO's response file, in the caller's transaction."""
    payer = payer.strip().upper()
    if not is_payer_code(payer) or not _is_mco(con, payer):
        raise ResponseFileRejected(_not_an_mco())  # such a name is never recorded
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    outcome = ResponseOutcome(source_file, "taken")
    earlier = _earlier_look(con, payer, sha)
    if earlier is not None:
        outcome.status = f"already_{earlier}"
        return outcome
    try:
        rows = read_response_file(path)
    except ResponseFileRejected as rejection:
        outcome.status, outcome.reason = "rejected", str(rejection)
        _record_file(con, outcome, payer, sha, on, by)
        return outcome
    file_id = _record_file(con, outcome, payer, sha, on, by)
    answered: set[str] = set()
    for row in rows:
        result, reason = _take_row(con, payer, row, answered, file_id=file_id, on=on, by=by)
        if result == "taken":
            outcome.taken += 1
        elif result == "unchanged":
            outcome.unchanged += 1
        else:
            outcome.rejected.append((row.row_number, reason or ""))
    return outcome


def _not_an_mco() -> str:
    return (
        f"the payer is not a configured MCO (a payer code, {PAYER_CODE_FORM}, listed in "
        "mco_implementation.csv)"
    )


def _is_mco(con: duckdb.DuckDBPyConnection, payer: str) -> bool:
    return bool(
        scalar(
            con,
            "select count(*) from ref.mco_implementation where upper(trim(payer)) = $payer",
            payer=payer,
        )
    )


def _earlier_look(con: duckdb.DuckDBPyConnection, payer: str, sha: str) -> str | None:
    """`taken` or `rejected` when this MCO's file of this content was looked at before."""
    found = scalar(
        con,
        "select min(status) from audit.response_files where payer = $payer "
        "and content_sha256 = $sha",
        payer=payer,
        sha=sha,
    )
    return None if found is None else str(found)


def _record_file(
    con: duckdb.DuckDBPyConnection,
    outcome: ResponseOutcome,
    payer: str | None,
    sha: str,
    on: dt.date,
    by: str,
) -> int:
    file_id = int(
        scalar(con, "select coalesce(max(response_file_id), 0) + 1 from audit.response_files")
    )
    execute(
        con,
        "insert into audit.response_files (response_file_id, payer, source_file, "
        "content_sha256, taken_on, taken_by, status, reason) values ($id, $payer, $source, "
        "$sha, $on, $by, $status, $reason)",
        {
            "id": file_id,
            "payer": payer,
            "source": outcome.source_file,
            "sha": sha,
            "on": on,
            "by": by,
            "status": outcome.status,
            "reason": outcome.reason,
        },
    )
    return file_id


def _take_row(
    con: duckdb.DuckDBPyConnection,
    payer: str,
    row: ResponseRow,
    answered: set[str],
    *,
    file_id: int,
    on: dt.date,
    by: str,
) -> tuple[str, str | None]:
    """Record one row's answer; returns its outcome and, when rejected, why."""
    finding_id = row.finding_id.upper()
    response = row.response.lower()
    planned = _date(row.planned_date)
    finding = execute(
        con,
        "select policy_id, payer, claim_id, claim_line_number, rule_id, status, "
        "notified_date, response, response_comment, planned_date from audit.findings "
        "where finding_id = $id",
        {"id": finding_id},
    )
    reason = _rejection(row, finding_id, response, planned, finding, payer, answered)
    outcome = "rejected" if reason else "taken"
    if reason is None:
        previous = finding[0][7:10]
        if tuple(previous) == (response, row.comment or None, planned):
            outcome = "unchanged"
    answered.add(finding_id)
    execute(
        con,
        "insert into audit.response_rows values ($file, $row, $id, $response, $comment, "
        "$planned, $outcome, $reason)",
        {
            "file": file_id,
            "row": row.row_number,
            "id": row.finding_id,
            "response": row.response,
            "comment": row.comment or None,
            "planned": planned,
            "outcome": outcome,
            "reason": reason,
        },
    )
    if outcome == "taken":
        policy_id, f_payer, claim_id, line, rule_id = finding[0][:5]
        key = FindingKey(str(policy_id), str(f_payer), str(claim_id), int(line), str(rule_id))
        _record_answer(con, key, response, row.comment, planned, on=on, by=by, file_id=file_id)
        note = f"{payer} answered {response}" + (f", planned {planned}" if planned else "")
        add_history(
            con,
            key,
            on=on,
            from_status="open",
            to_status="open",
            event="disputed" if response == "dispute" else "responded",
            by=by,
            note=f"{note} (response file {file_id}, row {row.row_number})",
        )
    return outcome, reason


def _rejection(
    row: ResponseRow,
    finding_id: str,
    response: str,
    planned: dt.date | None,
    finding: list[tuple[Any, ...]],
    payer: str,
    answered: set[str],
) -> str | None:
    """Why a row cannot be taken, or None. Input values are never quoted back."""
    if not finding_id:
        return "no finding_id"
    if response not in RESPONSES:
        return f"the response is not one of {', '.join(RESPONSES)}"
    if row.planned_date and planned is None:
        return "planned_date is not a date (YYYY-MM-DD)"
    if not finding:
        return "no finding has this ID"
    status, notified = finding[0][5], finding[0][6]
    if finding[0][1] != payer:
        return f"not a finding of {payer}: another MCO's finding"
    if notified is None:
        return f"no finding of {payer} with this ID was sent in its package"
    if finding_id in answered:
        return "the finding is answered on an earlier row of this file"
    if status != "open":
        return f"the finding is closed ({status}): only an open finding takes a response"
    return None


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _record_answer(
    con: duckdb.DuckDBPyConnection,
    key: FindingKey,
    response: str,
    comment: str,
    planned: dt.date | None,
    *,
    on: dt.date,
    by: str,
    file_id: int,
) -> None:
    """The finding keeps the last answer; a dispute awaits the analyst, a later answer that is
    no dispute withdraws one still awaiting."""
    execute(
        con,
        "update audit.findings set response = $response, response_date = $on, "
        "response_comment = $comment, planned_date = $planned, review = case "
        "when $response = 'dispute' then 'disputed' when review = 'disputed' then null "
        "else review end where policy_id = $policy_id and payer = $payer "
        "and claim_id = $claim and claim_line_number = $line and rule_id = $rule",
        {
            **key.params(),
            "response": response,
            "on": on,
            "comment": comment or None,
            "planned": planned,
        },
    )


# the input folder's responses/<PAYER>/ -------------------------------------------------------

RESPONSES_DIR = "responses"


def take_response_folder(
    con: duckdb.DuckDBPyConnection, input_dir: Path, *, on: dt.date
) -> list[ResponseOutcome]:
    """Every response file under `input_dir`/responses/<PAYER>/, in the caller's transaction
    (the run's). A folder that names no configured MCO, a file elsewhere, or a file with an
    odd name is rejected whole; hidden files are ignored."""
    folder = input_dir / RESPONSES_DIR
    if not folder.is_dir():
        return []
    outcomes = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in parts):
            continue
        source = path.relative_to(input_dir).as_posix()
        outcomes.append(_take_from_folder(con, path, parts, source, on))
    return outcomes


def _take_from_folder(
    con: duckdb.DuckDBPyConnection, path: Path, parts: tuple[str, ...], source: str, on: dt.date
) -> ResponseOutcome:
    payer = parts[0].upper() if len(parts) == 2 else ""
    by = f"{payer} response file" if payer else "response file"
    reason = None
    if len(parts) != 2:
        reason = "response files belong directly in responses/<PAYER>/"
    elif not RESPONSE_FILE_NAME.fullmatch(path.name):
        reason = "the file name is not letters, digits, '.', '_', '-' and spaces"
    elif not is_payer_code(payer) or not _is_mco(con, payer):
        reason = _not_an_mco()
    if reason is None:
        return take_response_file(con, payer, path, source_file=source, on=on, by=by)
    # the path is the input's own: recorded under a name that cannot mislead
    outcome = ResponseOutcome("responses/(rejected file)", "rejected", reason)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if not scalar(
        con,
        "select count(*) from audit.response_files where content_sha256 = $sha "
        "and status = 'rejected' and reason = $reason",
        sha=sha,
        reason=reason,
    ):
        _record_file(con, outcome, None, sha, on, by)
    return outcome
