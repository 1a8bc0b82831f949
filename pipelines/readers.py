"""Read one delivered file into a frame of text values, keeping structural rejects.

Every value comes back as text (codes keep their leading zeros); typing happens later,
row by row, so that one bad value quarantines one row and not the file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

ROW_COLUMN = "source_row"
TEXT_SUFFIXES = {".csv", ".txt"}
PARQUET_SUFFIXES = {".parquet"}
X12_SUFFIXES = {".837", ".x12", ".edi"}

# DuckDB's reject error types, in the words an MCO's data team would use
_REJECT_REASONS = {
    "TOO MANY COLUMNS": "too many fields",
    "MISSING COLUMNS": "too few fields",
    "INVALID ENCODING": "undecodable bytes (the row is not UTF-8)",
    "INVALID UNICODE": "undecodable bytes (the row is not UTF-8)",
    "UNQUOTED VALUE": "badly quoted field",
    "LINE SIZE OVER MAXIMUM": "row too long",
}


class FileRejected(Exception):
    """The whole file cannot be loaded; the message says why, naming no member."""


@dataclass(frozen=True)
class FileRead:
    rows: pl.DataFrame  # text columns named as in the header (lowercased) + source_row
    rejects: pl.DataFrame  # source_row, reason, raw_row: rows the reader could not split
    delimiter: str


def read_delivery(path: Path) -> FileRead:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return _read_text(path)
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path)
    if suffix in X12_SUFFIXES:
        return _read_x12(path)
    raise FileRejected(
        f"unsupported file type '{path.suffix}' (expected .csv, .txt, .parquet, .837, .x12 or .edi)"
    )


def _header_names(path: Path) -> tuple[list[str], str]:
    with path.open("rb") as handle:
        first_line = handle.readline()
    if not first_line.strip():
        raise FileRejected("the file is empty (no header row on line 1)")
    try:
        header = first_line.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise FileRejected("line 1 (header): not UTF-8 text") from error
    delimiter = "|" if header.count("|") > header.count(",") else ","
    return _column_names(header.split(delimiter)), delimiter


def _column_names(header: list[str]) -> list[str]:
    """Header names matched as the contract spells them: trimmed, unquoted, lower case."""
    names = [name.strip().strip('"').strip().lower() for name in header]
    if any(not name for name in names):
        raise FileRejected("line 1 (header): a column name is blank")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise FileRejected(f"line 1 (header): column(s) {', '.join(duplicates)} appear twice")
    return names


def _read_text(path: Path) -> FileRead:
    names, delimiter = _header_names(path)
    # a private connection per file: DuckDB's reject tables accumulate per connection
    reader = duckdb.connect()
    try:
        rows = reader.sql(
            "select * from read_csv($path, header = true, delim = $delim, quote = '\"', "
            "escape = '\"', columns = $columns, auto_detect = false, strict_mode = true, "
            "store_rejects = true, encoding = 'utf-8')",
            params={
                "path": str(path),
                "delim": delimiter,
                "columns": dict.fromkeys(names, "varchar"),
            },
        ).pl()
        rejects = reader.sql(
            "select line as source_row, any_value(error_type) as error_type, "
            "any_value(csv_line) as raw_row from reject_errors group by line order by line"
        ).pl()
    except duckdb.Error:
        # mixed line endings and the like defeat the fast reader: read line by line instead
        return _read_text_line_by_line(path, names, delimiter)
    finally:
        reader.close()
    rejects = rejects.select(
        pl.col("source_row").cast(pl.Int64),
        pl.col("error_type")
        .replace_strict(_REJECT_REASONS, default=pl.lit("unreadable row"))
        .alias("reason"),
        "raw_row",
    )
    rows = rows.with_columns(_physical_lines(rows.height, rejects["source_row"]).alias(ROW_COLUMN))
    return FileRead(rows=rows, rejects=rejects, delimiter=delimiter)


def _read_text_line_by_line(path: Path, names: list[str], delimiter: str) -> FileRead:
    """The slow, forgiving reader: each physical line is one row, judged on its own."""
    good: list[list[str | None]] = []
    bad: list[tuple[int, str, str]] = []
    with path.open("rb") as handle:
        handle.readline()  # the header, already read
        for line_number, raw in enumerate(handle, start=2):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                shown = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                bad.append((line_number, "undecodable bytes (the row is not UTF-8)", shown))
                continue
            if not text.strip():
                continue
            fields = next(csv.reader([text], delimiter=delimiter))
            if len(fields) != len(names):
                reason = "too many fields" if len(fields) > len(names) else "too few fields"
                bad.append((line_number, reason, text))
                continue
            good.append([*fields, line_number])  # type: ignore[list-item]
    rows = pl.DataFrame(
        good, schema={**dict.fromkeys(names, pl.String), ROW_COLUMN: pl.Int64}, orient="row"
    )
    rejects = pl.DataFrame(
        bad,
        schema={"source_row": pl.Int64, "reason": pl.String, "raw_row": pl.String},
        orient="row",
    )
    return FileRead(rows=rows, rejects=rejects, delimiter=delimiter)


def _physical_lines(row_count: int, rejected_lines: pl.Series) -> pl.Series:
    """The file line of each loaded row: its ordinal, past the header and the rejected lines.

    Rows come back in file order; a rejected line r_i (1-based, header = line 1) sits after
    r_i - i - 1 loaded rows, so loaded row k lands after every reject with fewer rows before it.
    """
    ordinals = np.arange(1, row_count + 1, dtype=np.int64)
    lines = np.sort(rejected_lines.to_numpy().astype(np.int64))
    rows_before_reject = lines - np.arange(1, lines.size + 1) - 1
    rejects_before = np.searchsorted(rows_before_reject, ordinals, side="left")
    return pl.Series(ordinals + 1 + rejects_before, dtype=pl.Int64)


def _read_parquet(path: Path) -> FileRead:
    try:
        frame = pl.read_parquet(path)
    except Exception as error:  # polars raises several kinds for a damaged file
        raise FileRejected(f"the file cannot be read as Parquet: {type(error).__name__}") from error
    frame = frame.rename(dict(zip(frame.columns, _column_names(frame.columns), strict=True)))
    rows = frame.select(pl.all().cast(pl.String)).with_row_index(ROW_COLUMN, offset=1)
    rows = rows.with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))
    return FileRead(rows=rows, rejects=_no_rejects(), delimiter=",")


def _read_x12(path: Path) -> FileRead:
    from pipelines.x12 import read_837p

    try:
        rows = read_837p(path)
    except ValueError as error:
        raise FileRejected(str(error)) from error
    return FileRead(rows=rows, rejects=_no_rejects(), delimiter="*")


def _no_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema={"source_row": pl.Int64, "reason": pl.String, "raw_row": pl.String})
