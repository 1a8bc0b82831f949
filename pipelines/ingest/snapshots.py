"""Whether a new reference snapshot may replace the one in use, and where snapshots disagree.

A reference file replaces its whole snapshot, so one broken export (every birth date
unreadable, a truncated file) would otherwise turn into a wave of false findings. A new
snapshot outside the limits of settings.toml ([reference_snapshots]) is held back and the
snapshot in use stays, unless the operator accepts it by name (docs/decisions.md,
"Reference files").
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import duckdb

from pipelines.config import SnapshotGuard, read_sql
from pipelines.db import execute


@dataclass(frozen=True)
class SnapshotCounts:
    rows_read: int
    rows_quarantined: int
    rows_loaded: int


def outside_limits(
    new: SnapshotCounts, rows_in_use: int | None, guard: SnapshotGuard
) -> str | None:
    """Why a new snapshot is outside the limits, in counts only; None when it is within them.

    `rows_in_use` is the row count of the snapshot in use (None: there is none). The limits
    are read literally: more than the quarantined share, fewer than the row share.
    """
    problems = []
    # exact fractions: 1 of 20 quarantined is exactly the 5% allowed, not a rounding above it
    max_quarantined = _exact(guard.max_quarantined_share)
    if new.rows_read and Fraction(new.rows_quarantined, new.rows_read) > max_quarantined:
        problems.append(
            f"{new.rows_quarantined} of its {new.rows_read} rows are quarantined, "
            f"more than the {_percent(max_quarantined)} allowed"
        )
    min_rows = _exact(guard.min_rows_share_of_current)
    if rows_in_use is not None and new.rows_loaded < min_rows * rows_in_use:
        problems.append(
            f"it has {new.rows_loaded} rows, fewer than {_percent(min_rows)} of the "
            f"{rows_in_use} rows of the snapshot in use"
        )
    return "; ".join(problems) or None


def _exact(share: float) -> Fraction:
    return Fraction(str(share))


def _percent(share: Fraction) -> str:
    return f"{float(share * 100):g}%"


@dataclass(frozen=True)
class DataConflict:
    """Keys of a snapshot in use with several different values where the audit takes one."""

    source_file: str
    key_column: str
    value_column: str
    keys: int
    value_used: str  # which of the values the audit takes


def data_conflicts(con: duckdb.DuckDBPyConnection) -> list[DataConflict]:
    """Counts per file and column, never the keys themselves (they are member data)."""
    rows = execute(con, read_sql("reports/data_conflicts.sql"))
    return [DataConflict(str(f), str(k), str(v), int(n), str(u)) for f, k, v, n, u in rows]
