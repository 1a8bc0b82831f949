"""Load new deliveries into DuckDB: reference snapshots, claim extracts, the manifest.

A delivery is known by the SHA-256 of its content, so a file sent again (under any name)
loads nothing twice. Every row read is either loaded or quarantined with its reason; a file
that cannot be loaded at all is rejected with a reason naming the file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from pipelines.config import SnapshotGuard, load_settings
from pipelines.db import execute, registered, scalar
from pipelines.ingest.datasets import (
    CLAIMS,
    PAYER_CODE_FORM,
    REFERENCE_DATASETS,
    Dataset,
    is_payer_code,
)
from pipelines.ingest.readers import (
    BATCH_ROWS,
    ROW_COLUMN,
    FileRead,
    FileRejected,
    all_rows,
    read_delivery,
)
from pipelines.ingest.snapshots import SnapshotCounts, outside_limits
from pipelines.ingest.values import (
    REASON,
    PlausibleDates,
    TypedRows,
    finish_claim_rows,
    plausible_dates,
    type_rows,
)

log = logging.getLogger(__name__)


# why a reference snapshot outside the limits was taken all the same
FIRST_SNAPSHOT = "there is no earlier snapshot"
ACCEPTED = "accepted by --accept-reference"


class InputError(Exception):
    """The input folder cannot be audited at all (exit code 2)."""


@dataclass
class FileOutcome:
    source_file: str
    kind: str
    dataset: str
    payer: str | None
    # loaded | rejected | already_loaded | already_rejected | held_back | already_held_back
    status: str
    reason: str | None = None
    # a reference snapshot taken although outside the snapshot limits: what is wrong with
    # it (file and counts), and why it was taken (FIRST_SNAPSHOT or ACCEPTED)
    beyond_limits: str | None = None
    taken_because: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    payer_mismatches: int = 0


@dataclass
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)

    def with_status(self, *statuses: str) -> list[FileOutcome]:
        return [f for f in self.files if f.status in statuses]


def content_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def content_digests(paths: list[Path]) -> dict[Path, str]:
    """Each file's SHA-256, two files at a time: hashing leaves the GIL, and every night hashes
    every file of the input folder (a year of extracts: a gigabyte or more)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(paths, pool.map(content_sha256, paths), strict=True))


def reference_file(input_dir: Path, dataset: Dataset) -> Path | None:
    for suffix in (".csv", ".txt", ".parquet"):
        candidate = input_dir / "reference" / f"{dataset.name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def accepted_references(input_dir: Path, names: list[str] | tuple[str, ...]) -> frozenset[str]:
    """The reference files the operator accepts beyond the snapshot limits, as source files.

    A name is the file's name (`members.csv`) or its path under the input folder
    (`reference/members.csv`); a name that is no reference file of the folder is bad usage.
    """
    present = {
        path.relative_to(input_dir).as_posix()
        for dataset in REFERENCE_DATASETS
        if (path := reference_file(input_dir, dataset)) is not None
    }
    accepted = set()
    for name in names:
        wanted = name.strip()
        matches = {f for f in present if wanted in (f, f.rsplit("/", 1)[-1])}
        if not matches:
            raise InputError(
                f"--accept-reference {wanted}: no such reference file in the input folder "
                "(name it as members.csv or reference/members.csv)"
            )
        accepted |= matches
    return frozenset(accepted)


def check_input_folder(input_dir: Path) -> None:
    """Fail before touching the database when the folder cannot be audited."""
    if not input_dir.is_dir():
        raise InputError(f"input folder {input_dir} does not exist")
    missing = [
        f"reference/{d.name}.csv"
        for d in REFERENCE_DATASETS
        if d.required_file and reference_file(input_dir, d) is None
    ]
    if missing:
        raise InputError(
            f"input folder {input_dir} lacks the required reference file(s) "
            f"{', '.join(missing)}; see docs/data-contract.md for the layout"
        )


def ingest(
    con: duckdb.DuckDBPyConnection,
    input_dir: Path,
    *,
    loaded_on: dt.date,
    run_id: int,
    unit_minutes: Mapping[str, int],
    payers: set[str] | None = None,
    accepted: frozenset[str] = frozenset(),
) -> IngestReport:
    """Load the reference snapshots and the claim files not loaded before.

    `payers` restricts the claim files to those payer folders (names as upper-cased folder
    names); None loads every folder. References load every time (a known snapshot loads
    nothing), and a file lying outside any payer folder is always looked at: it can only be
    rejected, and a rejection is recorded once. `accepted` names the reference files
    (`accepted_references`) taken even outside the snapshot limits.

    `unit_minutes` gives each code's unit length (its policy's), for X12 lines billed in
    minutes.
    """
    check_input_folder(input_dir)
    references = [
        (dataset, path)
        for dataset in REFERENCE_DATASETS
        if (path := reference_file(input_dir, dataset)) is not None
    ]
    claim_files = [
        path
        for path in _claim_files(input_dir)
        if payers is None or (folder := _payer_folder(input_dir, path)) is None or folder in payers
    ]
    digests = content_digests([path for _, path in references] + claim_files)
    settings = load_settings()
    dates, guard = plausible_dates(settings.dates, loaded_on), settings.reference_snapshots
    report = IngestReport()
    for dataset, path in references:
        delivery = _Delivery(digests[path], loaded_on, run_id)
        report.files.append(
            _load_reference(
                con,
                input_dir,
                path,
                delivery,
                dataset,
                dates,
                guard,
                accepted,
            )
        )
    _require_reference_snapshots(con)
    mcos = {row[0] for row in con.execute("select payer from ref.mco_implementation").fetchall()}
    for path in claim_files:
        report.files.append(
            _load_claims(
                con, input_dir, path, digests[path], mcos, dates, loaded_on, run_id, unit_minutes
            )
        )
    return report


def payers_with_new_deliveries(con: duckdb.DuckDBPyConnection, input_dir: Path) -> list[str]:
    """Payer folders holding a claim file whose content is not loaded yet for that payer.

    Judged by content hash against the manifest, as `ingest` does: a file rejected before
    counts as new, because ingest tries it again (the configuration may have changed).
    """
    pending: set[str] = set()
    for path in _claim_files(input_dir):
        folder = _payer_folder(input_dir, path)
        if folder is None or folder in pending:
            continue
        if not _already_loaded(
            con, content_sha256(path), CLAIMS.name, _claim_payer(input_dir, path)
        ):
            pending.add(folder)
    return sorted(pending)


def _payer_folder(input_dir: Path, path: Path) -> str | None:
    """The payer folder a claim file sits in (at any depth), or None directly under claims/."""
    relative = path.relative_to(input_dir / "claims").parts
    return relative[0].upper() if len(relative) >= 2 else None


def _claim_payer(input_dir: Path, path: Path) -> str | None:
    """The payer a file is loaded for (as in `_load_claims`): only claims/<payer>/<file> has one."""
    relative = path.relative_to(input_dir / "claims").parts
    return relative[0].upper() if len(relative) == 2 else None


def _claim_files(input_dir: Path) -> list[Path]:
    """Claim files in delivery order: payer folder, then file name; hidden files are ignored."""
    claims_dir = input_dir / "claims"
    if not claims_dir.is_dir():
        return []
    return sorted(
        (
            p
            for p in claims_dir.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(claims_dir).parts)
        ),
        key=lambda p: p.relative_to(claims_dir).parts,
    )


def _require_reference_snapshots(con: duckdb.DuckDBPyConnection) -> None:
    loaded = {
        row[0]
        for row in con.execute(
            "select distinct dataset from audit.deliveries "
            "where kind = 'reference' and status = 'loaded'"
        ).fetchall()
    }
    unusable = [d.name for d in REFERENCE_DATASETS if d.required_file and d.name not in loaded]
    if unusable:
        raise InputError(
            f"required reference file(s) {', '.join(unusable)} could not be loaded and no "
            "earlier snapshot exists; fix the file(s) named above and run again"
        )


def _next_delivery_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(scalar(con, "select coalesce(max(delivery_id), 0) + 1 from audit.deliveries"))


def _record(
    con: duckdb.DuckDBPyConnection,
    outcome: FileOutcome,
    sha: str,
    loaded_on: dt.date,
    run_id: int,
    delivery_id: int | None = None,
) -> int:
    if delivery_id is None:
        delivery_id = _next_delivery_id(con)
    execute(
        con,
        "insert into audit.deliveries values "
        "($id, $run, $on, $kind, $dataset, $payer, $file, $sha, $status, $reason, "
        "$read, $loaded, $quarantined, $mismatches)",
        {
            "id": delivery_id,
            "run": run_id,
            "on": loaded_on,
            "kind": outcome.kind,
            "dataset": outcome.dataset,
            "payer": outcome.payer,
            "file": outcome.source_file,
            "sha": sha,
            "status": outcome.status,
            "reason": outcome.reason,
            "read": outcome.rows_read,
            "loaded": outcome.rows_loaded,
            "quarantined": outcome.rows_quarantined,
            "mismatches": outcome.payer_mismatches,
        },
    )
    return delivery_id


def _already_loaded(
    con: duckdb.DuckDBPyConnection, sha: str, dataset: str, payer: str | None
) -> bool:
    """Whether this exact content needs no loading now.

    Claims: loaded before for the same payer. References: the current snapshot already.
    A rejected file is always tried again: the configuration may have changed since.
    """
    if dataset == CLAIMS.name:
        return bool(
            scalar(
                con,
                "select count(*) from audit.deliveries where kind = 'claims' and status = 'loaded' "
                "and payer = $payer and content_sha256 = $sha",
                payer=payer,
                sha=sha,
            )
        )
    current = scalar(
        con,
        "select content_sha256 from audit.deliveries where kind = 'reference' "
        "and dataset = $dataset and status = 'loaded' order by delivery_id desc limit 1",
        dataset=dataset,
    )
    return current == sha


def _reject(
    con: duckdb.DuckDBPyConnection,
    outcome: FileOutcome,
    reason: str,
    sha: str,
    loaded_on: dt.date,
    run_id: int,
) -> FileOutcome:
    """Record a rejection once: the same file rejected again for the same reason adds nothing."""
    outcome.reason = f"{outcome.source_file}: {reason}"
    seen = scalar(
        con,
        "select count(*) from audit.deliveries where status = 'rejected' and "
        "content_sha256 = $sha and source_file = $file and reason = $reason",
        sha=sha,
        file=outcome.source_file,
        reason=outcome.reason,
    )
    if seen:
        outcome.status = "already_rejected"
        return outcome
    outcome.status = "rejected"
    _record(con, outcome, sha, loaded_on, run_id)
    log.warning("rejected %s", outcome.reason)
    return outcome


def _open(
    path: Path,
    dataset: Dataset,
    *,
    careful: bool = False,
    unit_minutes: Mapping[str, int] | None = None,
) -> FileRead:
    read = read_delivery(path, careful=careful, unit_minutes=unit_minutes)
    missing = [c for c in dataset.required_columns if c not in read.columns]
    if missing:
        raise FileRejected(f"line 1 (header): required column(s) {', '.join(missing)} missing")
    return read


def _quarantine(
    con: duckdb.DuckDBPyConnection, delivery_id: int, source_file: str, frames: list[pl.DataFrame]
) -> None:
    rows = pl.concat(
        [f.select(ROW_COLUMN, REASON, "raw_row").cast({ROW_COLUMN: pl.Int64}) for f in frames]
    ).sort(ROW_COLUMN)
    if rows.height == 0:
        return
    quarantined = rows.select(
        pl.lit(delivery_id, dtype=pl.Int32).alias("delivery_id"),
        pl.lit(source_file).alias("source_file"),
        pl.col(ROW_COLUMN).alias("row_number"),
        REASON,
        "raw_row",
    )
    _insert(con, "audit.quarantine", quarantined)


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame | pa.RecordBatchReader
) -> None:
    """Rows into one of the engine's tables, always as a stream (`as_stream`)."""
    stream = as_stream(rows) if isinstance(rows, pl.DataFrame) else rows
    with registered(con, incoming_rows=stream):
        # table names are the engine's own (the dataset catalog's, audit.quarantine), never
        # from input
        execute(con, f"insert into {table} by name select * from incoming_rows")


def as_stream(rows: pl.DataFrame) -> pa.RecordBatchReader:
    """A frame as DuckDB should insert it into a table: batch by batch. DuckDB keeps the rows
    of a frame inserted whole in this process's memory until the run's transaction commits
    (docs/decisions.md, "DuckDB's memory is capped"); a stream's go to the database file."""
    table = rows.to_arrow()
    return pa.RecordBatchReader.from_batches(
        table.schema, table.to_batches(max_chunksize=BATCH_ROWS)
    )


@dataclass(frozen=True)
class _Delivery:
    sha: str
    loaded_on: dt.date
    run_id: int


def _load_reference(
    con: duckdb.DuckDBPyConnection,
    input_dir: Path,
    path: Path,
    delivery: _Delivery,
    dataset: Dataset,
    dates: PlausibleDates,
    guard: SnapshotGuard,
    accepted: frozenset[str],
) -> FileOutcome:
    source_file = path.relative_to(input_dir).as_posix()
    outcome = FileOutcome(source_file, "reference", dataset.name, None, "loaded")
    sha, loaded_on, run_id = delivery.sha, delivery.loaded_on, delivery.run_id
    if _already_loaded(con, sha, dataset.name, None):
        outcome.status = "already_loaded"
        return outcome
    try:
        read = _open(path, dataset)
    except FileRejected as rejection:
        return _reject(con, outcome, str(rejection), sha, loaded_on, run_id)
    rows = all_rows(read)
    if not read.batches.intact:  # rows the fast reader could not split: read it carefully
        read = read_delivery(path, careful=True)
        rows = all_rows(read)
    # an empty reference snapshot is data (nobody in care)
    typed, rejects = type_rows(rows, dataset, read.delimiter, dates), read.rejects
    _count(outcome, typed, rejects)
    rows_in_use = _rows_in_use(con, dataset.name)
    counts = SnapshotCounts(outcome.rows_read, outcome.rows_quarantined, outcome.rows_loaded)
    problem = outside_limits(counts, rows_in_use, guard)
    if problem is not None and rows_in_use is not None and source_file not in accepted:
        return _hold_back(con, outcome, problem, delivery, [rejects, typed.quarantined])
    if problem is not None:
        outcome.beyond_limits = f"{source_file}: {problem}"
        outcome.taken_because = ACCEPTED if source_file in accepted else FIRST_SNAPSHOT
        log.warning("taken %s (%s)", outcome.beyond_limits, outcome.taken_because)
    delivery_id = _record(con, outcome, sha, loaded_on, run_id)
    # a reference file is a full snapshot: it replaces the previous one
    execute(con, f"delete from {dataset.table}")
    _insert(
        con,
        dataset.table,
        typed.loaded.with_columns(pl.lit(delivery_id, dtype=pl.Int32).alias("delivery_id")),
    )
    # rows kept while this content was held back are listed once: under the loaded delivery
    execute(
        con,
        "delete from audit.quarantine where delivery_id in (select delivery_id from "
        "audit.deliveries where status = 'held_back' and content_sha256 = $sha "
        "and source_file = $file)",
        {"sha": sha, "file": source_file},
    )
    _quarantine(con, delivery_id, source_file, [rejects, typed.quarantined])
    return outcome


def _rows_in_use(con: duckdb.DuckDBPyConnection, dataset: str) -> int | None:
    """The row count of the snapshot in use (None: none was ever loaded)."""
    rows = execute(
        con,
        "select rows_loaded from audit.deliveries where kind = 'reference' "
        "and dataset = $dataset and status = 'loaded' order by delivery_id desc limit 1",
        {"dataset": dataset},
    )
    return int(rows[0][0]) if rows else None


def _hold_back(
    con: duckdb.DuckDBPyConnection,
    outcome: FileOutcome,
    problem: str,
    delivery: _Delivery,
    quarantined: list[pl.DataFrame],
) -> FileOutcome:
    """Keep the snapshot in use; record the held-back file once, with the rows it would have
    quarantined (they tell the analyst what is wrong with it)."""
    outcome.reason = f"{outcome.source_file}: {problem}"
    seen = scalar(
        con,
        "select count(*) from audit.deliveries where status = 'held_back' and "
        "content_sha256 = $sha and source_file = $file and reason = $reason",
        sha=delivery.sha,
        file=outcome.source_file,
        reason=outcome.reason,
    )
    if seen:
        outcome.status = "already_held_back"
        return outcome
    held_before = scalar(
        con,
        "select count(*) from audit.deliveries where status = 'held_back' and "
        "content_sha256 = $sha and source_file = $file",
        sha=delivery.sha,
        file=outcome.source_file,
    )
    outcome.status = "held_back"
    delivery_id = _record(con, outcome, delivery.sha, delivery.loaded_on, delivery.run_id)
    if not held_before:  # held back again for another reason: its rows are listed already
        _quarantine(con, delivery_id, outcome.source_file, quarantined)
    log.warning("held back %s; the snapshot in use stays", outcome.reason)
    return outcome


def _count(outcome: FileOutcome, typed: TypedRows, rejects: pl.DataFrame) -> None:
    outcome.rows_loaded = typed.loaded.height
    outcome.rows_quarantined = typed.quarantined.height + rejects.height
    outcome.rows_read = outcome.rows_loaded + outcome.rows_quarantined


def _insert_claim_rows(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    read: FileRead,
    payer: str,
    dates: PlausibleDates,
    delivery_id: int,
    outcome: FileOutcome,
) -> list[pl.DataFrame]:
    """Insert the file's claim lines; returns the rows set aside (reader rejects included)."""
    quarantined = _insert_claim_batches(con, read, payer, dates, delivery_id, outcome)
    if not read.batches.intact:
        # rare: rows the fast reader could not split; start over with the careful reader
        execute(con, "delete from raw.claim_lines where delivery_id = $id", {"id": delivery_id})
        outcome.rows_loaded = outcome.payer_mismatches = 0
        read = read_delivery(path, careful=True)
        quarantined = _insert_claim_batches(con, read, payer, dates, delivery_id, outcome)
    return [read.rejects, *quarantined]


def _insert_claim_batches(
    con: duckdb.DuckDBPyConnection,
    read: FileRead,
    payer: str,
    dates: PlausibleDates,
    delivery_id: int,
    outcome: FileOutcome,
) -> list[pl.DataFrame]:
    """Type the file a batch at a time, inserting the batches as one stream.

    One insert of a stream is as fast as one insert of the whole file (many small inserts
    take twice as long) while only a batch is held in memory. Returns the rows set aside.
    """
    quarantined: list[pl.DataFrame] = []

    def typed_batches() -> Iterator[pa.RecordBatch]:
        for batch in read.batches:
            typed = type_rows(batch, CLAIMS, read.delimiter, dates)
            quarantined.append(typed.quarantined)
            lines = finish_claim_rows(typed.loaded, payer)
            outcome.payer_mismatches += lines.filter(
                pl.col("payer_in_file").is_not_null()
                & (pl.col("payer_in_file").str.to_uppercase() != payer)
            ).height
            outcome.rows_loaded += lines.height
            delivery = pl.lit(delivery_id, dtype=pl.Int32).alias("delivery_id")
            yield from lines.with_columns(delivery).to_arrow().to_batches()

    batches = typed_batches()
    first = next(batches, None)
    if first is not None:
        stream = pa.RecordBatchReader.from_batches(first.schema, chain([first], batches))
        _insert(con, CLAIMS.table, stream)
    return quarantined


def _load_claims(
    con: duckdb.DuckDBPyConnection,
    input_dir: Path,
    path: Path,
    sha: str,
    mcos: set[str],
    dates: PlausibleDates,
    loaded_on: dt.date,
    run_id: int,
    unit_minutes: Mapping[str, int],
) -> FileOutcome:
    source_file = path.relative_to(input_dir).as_posix()
    relative = path.relative_to(input_dir / "claims").parts
    payer = relative[0].upper() if len(relative) == 2 else None
    outcome = FileOutcome(source_file, "claims", CLAIMS.name, payer, "loaded")
    if _already_loaded(con, sha, CLAIMS.name, payer):
        outcome.status = "already_loaded"
        return outcome
    try:
        if payer is None:
            raise FileRejected("claim files belong directly in claims/<payer>/")
        if not is_payer_code(payer):
            outcome.payer = None  # a name that is no payer code never reaches a path
            raise FileRejected(f"the payer folder's name is not a payer code ({PAYER_CODE_FORM})")
        if payer not in mcos:
            outcome.payer = None  # never carry an unconfigured payer name into outputs
            raise FileRejected(
                f"payer folder '{relative[0]}' is not an MCO listed in mco_implementation.csv"
            )
        read = _open(path, CLAIMS, unit_minutes=unit_minutes)
    except FileRejected as rejection:
        return _reject(con, outcome, str(rejection), sha, loaded_on, run_id)
    assert payer is not None
    delivery_id = _next_delivery_id(con)
    quarantined = _insert_claim_rows(con, path, read, payer, dates, delivery_id, outcome)
    outcome.rows_quarantined = sum(frame.height for frame in quarantined)
    outcome.rows_read = outcome.rows_loaded + outcome.rows_quarantined
    if outcome.rows_read == 0:
        # an empty extract is a mistake (nothing was inserted)
        return _reject(
            con, outcome, "the file has a header but no data rows", sha, loaded_on, run_id
        )
    _record(con, outcome, sha, loaded_on, run_id, delivery_id)
    _quarantine(con, delivery_id, source_file, quarantined)
    log.info(
        "loaded %s: %d rows read, %d loaded, %d quarantined",
        source_file,
        outcome.rows_read,
        outcome.rows_loaded,
        outcome.rows_quarantined,
    )
    return outcome
