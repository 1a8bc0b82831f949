"""Findings on their way to files, a chunk at a time: a CSV file written as they come, and an
MCO's findings kept on disk, one Arrow IPC file a policy, for its workbook.

The log is read once, in findings.csv's order; each chunk goes to findings.csv and, as the
MCO's package shows it, to that MCO's CSV and spool. A workbook is laid out sheet by sheet
afterwards and reads each policy's sheet, or any part of it, from the spool. Nothing here
outlives the reports: the spool's folder is a temporary one of the caller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.ipc as ipc

from pipelines.reports.workbook import TableRows

DATE_FORMAT = "%Y-%m-%d"
# the spool is read back within minutes and then removed: Arrow IPC with LZ4 writes three
# times faster than Parquet (300,000 findings: 0.17 s against 0.54)
SPOOL_OPTIONS = ipc.IpcWriteOptions(compression="lz4")


class CsvFile:
    """A CSV file written a frame at a time; the first frame's header heads it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._sink = path.open("wb")
        self.empty = True  # nothing written yet, not even the header

    def write(self, frame: pl.DataFrame) -> None:
        frame.write_csv(self._sink, include_header=self.empty, date_format=DATE_FORMAT)
        self.empty = False

    def close(self) -> None:
        self._sink.close()


class PolicySpool:
    """Rows of several policies, kept a file a policy, in the order they are added."""

    def __init__(self, folder: Path, chunk_rows: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        self._chunk_rows = chunk_rows
        self._writers: dict[str, ipc.RecordBatchFileWriter] = {}
        self._files: dict[str, Path] = {}
        self._rows: dict[str, int] = {}
        self._schema: pl.Schema | None = None

    def add(self, frame: pl.DataFrame) -> None:
        """Keep `frame`'s rows (it has a policy_id column)."""
        self._schema = frame.schema
        by_policy = frame.partition_by("policy_id", as_dict=True, maintain_order=True)
        for (policy_id,), rows in by_policy.items():
            table = rows.to_arrow()
            writer = self._writers.get(str(policy_id))
            if writer is None:
                path = self._folder / f"policy-{len(self._writers):03d}.arrow"
                writer = ipc.new_file(path, table.schema, options=SPOOL_OPTIONS)
                self._writers[str(policy_id)] = writer
                self._files[str(policy_id)] = path
            writer.write_table(table, max_chunksize=self._chunk_rows)
            self._rows[str(policy_id)] = self._rows.get(str(policy_id), 0) + rows.height

    def close(self) -> None:
        """Finish the files: from here on they are read, not added to."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def rows(self, policy_id: str) -> int:
        """How many rows of one policy were kept."""
        return self._rows.get(policy_id, 0)

    def table(self, policy_id: str) -> TableRows:
        """One policy's kept rows, read a chunk at a time; none when it had none."""
        if self._schema is None or self._writers:
            raise RuntimeError("add the rows, then close the spool, before reading it")
        path = self._files.get(policy_id)
        chunk_rows = self._chunk_rows

        def read(skip: int, count: int) -> Iterator[pl.DataFrame]:
            if path is None:
                return
            rows = pl.scan_ipc(path)
            for offset in range(skip, skip + count, chunk_rows):
                yield rows.slice(offset, min(chunk_rows, skip + count - offset)).collect()

        return TableRows(self._schema, self.rows(policy_id), read)
