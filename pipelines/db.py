"""The DuckDB audit database: opening it, its schema, and all-or-nothing writes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from pipelines.config import read_sql

DEFAULT_MEMORY_LIMIT = "2GB"


def execute(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run one statement and fetch its result: DuckDB wants each result finished before the next."""
    return con.execute(query, params).fetchall()


def connect(db_file: Path) -> duckdb.DuckDBPyConnection:
    """Open (creating when missing) the audit database with its schema in place."""
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
    # attached under a fixed name: a file called audit.duckdb must not shadow the audit schema
    execute(con, "attach $path as claims_audit", {"path": str(db_file)})
    execute(con, "use claims_audit")
    execute(con, read_sql("ddl/schema.sql"))
    return con


def memory_limit() -> str:
    """DuckDB's memory cap: it would cache up to 80% of memory, and the audit shares its host."""
    return os.environ.get("CLAIMS_AUDIT_DUCKDB_MEMORY", DEFAULT_MEMORY_LIMIT)


def hand_back_freed_memory(con: duckdb.DuckDBPyConnection) -> None:
    """Return to the system the memory DuckDB has freed but keeps for reuse.

    Setting the memory limit, even to the value it has, makes DuckDB flush its allocator; the
    background purge does not reach memory freed inside a transaction that loaded a large
    delivery. At 10M lines that is 0.8 GB, otherwise held while polars builds the facts.
    """
    execute(con, "set memory_limit = $limit", {"limit": memory_limit()})


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


def run_sql_file(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
    """Execute a file of `sql/`, statement by statement, with named parameters.

    Values always travel as parameters, never inside the SQL text; each statement gets
    only the parameters it names.
    """
    for statement in read_sql(name).split(";\n"):
        if not _has_code(statement):
            continue
        used = {k: v for k, v in params.items() if f"${k}" in statement}
        execute(con, statement, used or None)


def _has_code(statement: str) -> bool:
    """A part of a file that is more than blank lines and comments."""
    return any(line.strip() and not line.strip().startswith("--") for line in statement.split("\n"))


def scalar(con: duckdb.DuckDBPyConnection, query: str, **params: Any) -> Any:
    rows = execute(con, query, params or None)
    return rows[0][0] if rows else None
