"""Audit databases as earlier releases left them, for the upgrade tests."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import duckdb

from pipelines.config import read_sql

# made by release 0.1's code (tests/fixtures/README.md): the demo's two nights and a waiver
RELEASE_0_1 = Path(__file__).parent / "fixtures" / "release_db" / "release-0.1.duckdb.gz"


def release_0_1_database(target: Path) -> Path:
    """The committed release-0.1 database, unpacked to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(RELEASE_0_1, "rb") as source, target.open("wb") as copy:
        shutil.copyfileobj(source, copy)
    return target


def empty_release_0_1_database(target: Path) -> Path:
    """An empty database with release 0.1's schema and, as that release had, no record of
    migrations: what migration 0001 declares."""
    with duckdb.connect(str(target)) as con:
        con.execute(read_sql("migrations/0001_release_0_1.sql"))
    return target
