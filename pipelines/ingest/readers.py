"""Read one delivered file into a frame of text values, keeping structural rejects.

Every value comes back as text (codes keep their leading zeros); typing happens later,
row by row, so that one bad value quarantines one row and not the file.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from pipelines.db import scalar

ROW_COLUMN = "source_row"
BATCH_ROWS = 500_000  # rows typed and inserted at a time: bounds memory on large extracts
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


# one in-memory DuckDB for this process's readers, with the process that opened it: opening a
# database costs about 30 ms, a connection to it about 1 ms, and a night reads a file for each
# reference and payer
_reader_database: tuple[int, duckdb.DuckDBPyConnection] | None = None


def _reader() -> duckdb.DuckDBPyConnection:
    """A connection of its own for reading one file: DuckDB's reject tables, and the file's
    temp table, belong to a connection and go with it when it closes."""
    global _reader_database
    if _reader_database is None or _reader_database[0] != os.getpid():  # forked: its own
        _reader_database = (os.getpid(), duckdb.connect())
    return _reader_database[1].cursor()


class FileRejected(Exception):
    """The whole file cannot be loaded; the message says why, naming no member."""


class Batches:
    """Text columns + source_row, in file order, a bounded number of rows at a time."""

    # False once the rows read cannot stand (a row the reader could not split, or a reader
    # error): read the file again with read_delivery(careful=True)
    intact = True

    def __init__(self, frames: Iterable[pl.DataFrame]) -> None:
        self._frames = frames

    def __iter__(self) -> Iterator[pl.DataFrame]:
        yield from self._frames


@dataclass(frozen=True)
class FileRead:
    columns: list[str]  # as named in the header (lowercased)
    rejects: pl.DataFrame  # source_row, reason, raw_row: rows the reader could not split
    delimiter: str
    batches: Batches


def read_delivery(
    path: Path, *, careful: bool = False, unit_minutes: Mapping[str, int] | None = None
) -> FileRead:
    """The file's rows. A text file is streamed straight from the CSV reader unless `careful`;
    a streamed file with a row the reader cannot split ends with batches.intact False.
    `unit_minutes` (each code's unit length, from its policy) is given for claim files: X12
    needs it.
    """
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return _read_text(path) if careful else _stream_text(path)
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path)
    if suffix in X12_SUFFIXES:
        return _read_x12(path, unit_minutes)
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


_READ_CSV = (
    "read_csv($path, header = true, delim = $delim, quote = '\"', escape = '\"', "
    "columns = $columns, auto_detect = false, strict_mode = true, store_rejects = true, "
    "encoding = 'utf-8')"
)


def _csv_parameters(literal: str, names: list[str], delimiter: str) -> dict[str, object]:
    return {"path": literal, "delim": delimiter, "columns": dict.fromkeys(names, "varchar")}


@contextmanager
def _literal_path(path: Path) -> Iterator[str]:
    """A name for this one file that no reader takes for a pattern.

    DuckDB's read_csv and polars read `*`, `?`, `[...]` and `{...}` in a path as a glob, and a
    delivery named `x*.csv` would load its neighbours too. A link with a fixed name, in a
    folder of its own, names the delivered file and nothing else, whatever its name holds.
    """
    with tempfile.TemporaryDirectory(prefix="claims-audit-read-") as folder:
        link = Path(folder) / f"delivery{path.suffix.lower()}"
        link.symlink_to(path.absolute())
        yield str(link)


def _stream_text(path: Path) -> FileRead:
    names, delimiter = _header_names(path)
    return FileRead(names, no_rows_set_aside(), delimiter, _StreamedText(path, names, delimiter))


class _StreamedText(Batches):
    """Rows straight from DuckDB's CSV reader, numbered by ordinal: right while no row is
    rejected. A rejected row (each line number after it shifts) or a reader error leaves the
    batches not intact, and the careful reader has to read the file again.
    """

    def __init__(self, path: Path, names: list[str], delimiter: str) -> None:
        super().__init__(())
        self._path, self._names, self._delimiter = path, names, delimiter

    def __iter__(self) -> Iterator[pl.DataFrame]:
        reader = _reader()
        try:
            with _literal_path(self._path) as literal:
                # the reader keeps insertion order, so rows come back as the file has them
                batches = reader.sql(
                    f"select * from {_READ_CSV}",
                    params=_csv_parameters(literal, self._names, self._delimiter),
                ).to_arrow_reader(BATCH_ROWS)
                rows_before = 0
                for batch in batches or ():
                    rows = pl.DataFrame(pl.from_arrow(batch))
                    ordinals = pl.int_range(rows_before + 2, rows_before + 2 + rows.height)
                    yield rows.with_columns(ordinals.cast(pl.Int64).alias(ROW_COLUMN))
                    rows_before += rows.height
                # known only once the stream is done: a query now would end the stream
                self.intact = not scalar(reader, "select count(*) from reject_errors")
        except duckdb.Error:
            self.intact = False
        finally:
            reader.close()


def _read_text(path: Path) -> FileRead:
    names, delimiter = _header_names(path)
    # The file is split into a table first, so that its rejects are known before any row is
    # handed on, and the rows then leave in batches that bound the memory typing needs.
    reader = _reader()
    try:
        with _literal_path(path) as literal:
            reader.execute(
                f"create temp table delivered as select * from {_READ_CSV}",
                _csv_parameters(literal, names, delimiter),
            )
        # a line with several errors gets the same reason every time (min, not any_value)
        rejects = reader.sql(
            "select line as source_row, min(error_type) as error_type, "
            "min(csv_line) as raw_row from reject_errors group by line order by line"
        ).pl()
    except duckdb.Error:
        reader.close()
        # mixed line endings and the like defeat the fast reader: read line by line instead
        return _read_text_line_by_line(path, names, delimiter)
    rejects = rejects.select(
        pl.col("source_row").cast(pl.Int64),
        pl.col("error_type")
        .replace_strict(_REJECT_REASONS, default=pl.lit("unreadable row"))
        .alias("reason"),
        "raw_row",
    )
    return FileRead(
        names, rejects, delimiter, Batches(_batches_from(reader, rejects["source_row"]))
    )


def _batches_from(
    reader: duckdb.DuckDBPyConnection, rejected_lines: pl.Series
) -> Iterator[pl.DataFrame]:
    """The split rows in file order, each with its physical line; closes the reader."""
    try:
        # the reader keeps insertion order, so the table comes back as the file was
        batches = reader.sql("select * from delivered").to_arrow_reader(BATCH_ROWS)
        rows_before = 0
        for batch in batches or ():
            rows = pl.DataFrame(pl.from_arrow(batch))
            yield rows.with_columns(
                _physical_lines(rows_before, rows.height, rejected_lines).alias(ROW_COLUMN)
            )
            rows_before += rows.height
    finally:
        reader.close()


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
    return FileRead(names, rejects, delimiter, Batches(rows.iter_slices(BATCH_ROWS)))


def _physical_lines(rows_before: int, row_count: int, rejected_lines: pl.Series) -> pl.Series:
    """The file line of each loaded row: its ordinal, past the header and the rejected lines.

    Rows come back in file order; a rejected line r_i (1-based, header = line 1) sits after
    r_i - i - 1 loaded rows, so loaded row k lands after every reject with fewer rows before it.
    `rows_before` loaded rows came in earlier batches.
    """
    ordinals = np.arange(rows_before + 1, rows_before + row_count + 1, dtype=np.int64)
    lines = np.sort(rejected_lines.to_numpy().astype(np.int64))
    rows_before_reject = lines - np.arange(1, lines.size + 1) - 1
    rejects_before = np.searchsorted(rows_before_reject, ordinals, side="left")
    return pl.Series(ordinals + 1 + rejects_before, dtype=pl.Int64)


def _read_parquet(path: Path) -> FileRead:
    try:
        with _literal_path(path) as literal:
            frame = pl.read_parquet(literal)
    except Exception as error:  # polars raises several kinds for a damaged file
        raise FileRejected(f"the file cannot be read as Parquet: {type(error).__name__}") from error
    frame = frame.rename(dict(zip(frame.columns, _column_names(frame.columns), strict=True)))
    rows = frame.select(pl.all().cast(pl.String)).with_row_index(ROW_COLUMN, offset=1)
    rows = rows.with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))
    return FileRead(
        list(frame.columns), no_rows_set_aside(), ",", Batches(rows.iter_slices(BATCH_ROWS))
    )


def _read_x12(path: Path, unit_minutes: Mapping[str, int] | None) -> FileRead:
    """The 837P's service lines; those the reader gave a reason are set aside with it."""
    from pipelines.ingest.x12 import REASON, read_837p

    if unit_minutes is None:
        raise FileRejected("an X12 837P file is read only as a claim file")
    try:
        lines = read_837p(path, unit_minutes=unit_minutes)
    except ValueError as error:
        raise FileRejected(str(error)) from error
    set_aside = pl.col(REASON).is_not_null()
    rows = lines.filter(~set_aside).drop(REASON)
    columns = [c for c in rows.columns if c != ROW_COLUMN]
    # raw_row as for the lines the typing sets aside: the mapped values joined with *
    rejects = lines.filter(set_aside).select(
        ROW_COLUMN,
        REASON,
        pl.concat_str([pl.col(c).fill_null("") for c in columns], separator="*").alias("raw_row"),
    )
    return FileRead(columns, rejects, "*", Batches(rows.iter_slices(BATCH_ROWS)))


def all_rows(read: FileRead) -> pl.DataFrame:
    """Every batch as one frame (reference snapshots are small); empty with the columns."""
    empty = pl.DataFrame(schema={**dict.fromkeys(read.columns, pl.String), ROW_COLUMN: pl.Int64})
    return pl.concat([empty, *read.batches], how="vertical")


def no_rows_set_aside() -> pl.DataFrame:
    """An empty frame of rows set aside: source_row, reason, raw_row."""
    return pl.DataFrame(schema={"source_row": pl.Int64, "reason": pl.String, "raw_row": pl.String})
