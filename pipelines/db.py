"""The DuckDB audit database: opening it, its schema, and all-or-nothing writes."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from math import inf
from pathlib import Path
from typing import Any

import duckdb

from pipelines.config import project_path, read_sql

DEFAULT_MEMORY_LIMIT = "2GB"
# DuckDB's cap while it only streams rows to polars (memory_lowered)
STREAMING_MEMORY_LIMIT = "512MB"
# DuckDB's cap while the outputs are written: it sorts every finding for findings.csv, and
# at 2GB the process held 2.6 GB writing the 10M-line log's 5M findings, at 1GB 1.6 GB and
# took 7% longer (at 768MB: 1.4 GB, 15% longer)
REPORTS_MEMORY_LIMIT = "1GB"
SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?i?b)", re.IGNORECASE)
SIZE_UNITS = {
    "b": 1,
    **{f"{prefix}b": 1000**power for power, prefix in enumerate("kmgt", start=1)},
    **{f"{prefix}ib": 1024**power for power, prefix in enumerate("kmgt", start=1)},
}
# the audit file's name inside DuckDB: fixed, so a file called audit.duckdb cannot shadow the
# audit schema
DATABASE_NAME = "claims_audit"
# sql/migrations/NNNN_<what>.sql: applied in order of NNNN, each once (docs/decisions.md)
MIGRATION_FILE = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")


class DatabaseTooNew(Exception):
    """The database was upgraded by a newer claims-audit: this release cannot read it."""


class MigrationFailed(Exception):
    """A schema migration failed: the database file is as it was. The cause is the error."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def execute(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run one statement and fetch its result: DuckDB wants each result finished before the next."""
    return con.execute(query, params).fetchall()


def connect(db_file: Path, migrations_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating when missing) the audit database, upgraded to this release's schema.

    `migrations_dir` is sql/migrations unless a test points elsewhere.
    """
    db_file.parent.mkdir(parents=True, exist_ok=True)
    # freed memory goes back to the system in the background: without it, a gigabyte that
    # DuckDB no longer uses stays resident while polars builds the facts beside it
    con = duckdb.connect(
        config={
            "memory_limit": memory_limit(),
            "preserve_insertion_order": False,
            "allocator_background_threads": True,
        }
    )
    execute(con, f"attach $path as {DATABASE_NAME}", {"path": str(db_file)})
    execute(con, f"use {DATABASE_NAME}")
    try:
        migrate(con, migrations(migrations_dir or project_path("sql", "migrations")))
    except BaseException:
        con.close()
        raise
    return con


def second_connection(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Another connection to `con`'s audit database, for a thread that reads beside it: it
    sees what is committed, not `con`'s open transaction nor its temp tables."""
    other = con.cursor()
    execute(other, f"use {DATABASE_NAME}")
    return other


def migrations(folder: Path) -> list[Migration]:
    """The numbered migrations in `folder`, in order; a misnamed or repeated one is refused."""
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise MigrationFailed(f"{path.name} is not named NNNN_<what>.sql")
        version = int(match["version"])
        if version in found:
            raise MigrationFailed(f"two migrations numbered {match['version']}")
        found[version] = Migration(version, match["name"], path)
    return [found[v] for v in sorted(found)]


def migrate(con: duckdb.DuckDBPyConnection, known: list[Migration]) -> list[int]:
    """Apply the migrations the database has not had, in one transaction; returns their versions.

    Backup-free: a failing step rolls everything back, so the file is as it was. A database
    without audit.schema_migrations is a release-0.1 (or new) one: migration 0001 is written
    to change nothing on it. A version this release does not know means a newer release
    upgraded the file: it is refused rather than read with the wrong meaning.
    """
    with transaction(con):
        execute(con, "create schema if not exists audit")
        execute(
            con,
            "create table if not exists audit.schema_migrations ("
            "version integer primary key, name varchar not null, "
            "applied_on timestamp not null)",  # UTC
        )
        applied = {int(v) for (v,) in execute(con, "select version from audit.schema_migrations")}
        unknown = applied - {m.version for m in known}
        if unknown:
            raise DatabaseTooNew(
                f"the audit database has schema version {max(unknown):04d}, newer than this "
                "release of claims-audit knows: upgrade claims-audit to open it"
            )
        pending = [m for m in known if m.version not in applied]
        for migration in pending:
            _apply(con, migration)
        # views hold no data: made again each time, as this release defines them
        run_sql_file(con, "ddl/views.sql")
    return [m.version for m in pending]


def _apply(con: duckdb.DuckDBPyConnection, migration: Migration) -> None:
    try:
        _run_statements(con, migration.path.read_text(encoding="utf-8"), {})
    except duckdb.Error as error:
        raise MigrationFailed(
            f"schema migration {migration.version:04d}_{migration.name} failed "
            f"({type(error).__name__}); the database file is unchanged"
        ) from error
    execute(
        con,
        "insert into audit.schema_migrations values ($version, $name, $on)",
        {"version": migration.version, "name": migration.name, "on": _utc_now()},
    )


def memory_limit() -> str:
    """DuckDB's memory cap: it would cache up to 80% of memory, and the audit shares its host."""
    return os.environ.get("CLAIMS_AUDIT_DUCKDB_MEMORY", DEFAULT_MEMORY_LIMIT)


@contextmanager
def memory_lowered(
    con: duckdb.DuckDBPyConnection, limit: str = STREAMING_MEMORY_LIMIT
) -> Iterator[None]:
    """DuckDB's cap at `limit` for the block when that is below its usual cap; the usual cap
    back after.

    For work where DuckDB only streams rows to polars (the facts stage): what DuckDB keeps of
    tonight's lines then waits on disk rather than in memory beside polars. For the outputs
    (REPORTS_MEMORY_LIMIT): DuckDB's sort of every finding spills instead. Setting the cap,
    even to the value it has, also flushes DuckDB's allocator: the memory it freed but kept
    for reuse (0.8 GB after loading 10M lines) goes back to the system.
    """
    usual = memory_limit()
    _set_memory_limit(con, limit if _size_bytes(limit) < _size_bytes(usual) else usual)
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):  # an aborted transaction: the first error is what counts
            _set_memory_limit(con, usual)
        raise
    _set_memory_limit(con, usual)


def _set_memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    execute(con, "set memory_limit = $limit", {"limit": limit})


def _size_bytes(size: str) -> float:
    """A DuckDB size (`2GB`, `1.5 GiB`, `512MB`) in bytes; infinite when it is not one."""
    match = SIZE.fullmatch(size.strip())
    if match is None:
        return inf
    number, unit = match.groups()
    return float(number) * SIZE_UNITS[unit.lower()]


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Commit everything or nothing: a crash or error leaves the database as it was."""
    execute(con, "begin transaction")
    try:
        yield con
    except BaseException:
        execute(con, "rollback")
        raise
    execute(con, "commit")


def _utc_now() -> dt.datetime:
    # naive UTC: reading a zoned timestamp back would need pytz, which nothing else needs
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_sql_file(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
    """Execute a file of `sql/`, statement by statement, with named parameters.

    Values always travel as parameters, never inside the SQL text; each statement gets
    only the parameters it names.
    """
    _run_statements(con, read_sql(name), params)


def _run_statements(con: duckdb.DuckDBPyConnection, text: str, params: dict[str, Any]) -> None:
    for statement in text.split(";\n"):
        if not _has_code(statement):
            continue
        used = {k: v for k, v in params.items() if f"${k}" in statement}
        execute(con, statement, used or None)


def _has_code(statement: str) -> bool:
    """A part of a file that is more than blank lines and comments."""
    return any(line.strip() and not line.strip().startswith("--") for line in statement.split("\n"))


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **frames: object) -> Iterator[None]:
    """The frames (polars, Arrow readers) visible to SQL under these names for the block.

    After an error inside DuckDB the transaction is aborted, and unregistering fails too: that
    second error must not hide the first, which says what went wrong (out of memory, say).
    """
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        yield
    except BaseException:
        for name in frames:
            with suppress(duckdb.Error):
                con.unregister(name)
        raise
    for name in frames:
        con.unregister(name)


def load_temp_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    files: list[Path],
    columns: list[str] | None = None,
) -> None:
    """Temp table `table` (one of the engine's own names) made of Parquet files with the same
    columns, or only `columns` of them (the engine's own names too). DuckDB reads them in
    parallel, and spills what does not fit its memory cap; none passes through Python."""
    if not files:
        raise ValueError(f"temp table {table}: no file to make it of")
    selected = ", ".join(f'"{name}"' for name in columns) if columns else "*"
    parts = "read_parquet($files, union_by_name = true)"
    execute(
        con,
        f"create or replace temp table {table} as select {selected} from {parts}",
        {"files": [str(path) for path in files]},
    )


def scalar(con: duckdb.DuckDBPyConnection, query: str, **params: Any) -> Any:
    rows = execute(con, query, params or None)
    return rows[0][0] if rows else None
