"""Partitions: tonight's in-scope lines of a pack in groups that no rule crosses.

A pack's related lines say how its rules tie lines together (scope.RELATED_LINES): a group
session, a peer's day, a member's day, a member's month. A unit is the smallest group no tie
crosses: a day of service when every tie stays within a day, else a month; split further by
member (a bucket of member IDs) when no tie joins different members. Units are packed in
date order into partitions of about `lines_per_partition` lines (settings.toml), each
audited whole before the next is read, so that memory follows the largest partition rather
than every line ever delivered. A unit larger than that is one partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.claims.scope import RELATED_LINES
from pipelines.config import read_sql
from pipelines.db import run_sql_file, scalar

PARTITION = "partition_number"
# enough buckets to split a state's month of one code several ways; a member never splits
MEMBER_BUCKETS = 64
# rows DuckDB hands over at a time while the partitions stream out
STREAM_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class Partitioning:
    period: str  # "day" or "month" of the DOS
    member_buckets: int  # 1: units are not split by member

    @property
    def params(self) -> dict[str, object]:
        return {"period": self.period, "member_buckets": self.member_buckets}


def partitioning(related_lines: frozenset[str]) -> Partitioning:
    """The units no tie of these related lines crosses."""
    ties = [RELATED_LINES[name] for name in related_lines]
    period = "month" if any(t.period == "month" for t in ties) else "day"
    across_members = any(t.across_members for t in ties)
    return Partitioning(period, 1 if across_members else MEMBER_BUCKETS)


def plan_partitions(
    con: duckdb.DuckDBPyConnection, units: Partitioning, lines_per_partition: int
) -> int:
    """Number the partitions of temp table in_scope_line; returns how many there are."""
    run_sql_file(
        con,
        "versions/audit_partitions.sql",
        lines_per_partition=lines_per_partition,
        **units.params,
    )
    return int(scalar(con, f"select coalesce(max({PARTITION}), 0) from audit_unit"))


def partitions(con: duckdb.DuckDBPyConnection, units: Partitioning) -> Iterator[pl.DataFrame]:
    """The lines of each partition planned by plan_partitions, one partition at a time and
    in order, read in one pass. Nothing else may use the connection while this runs."""
    lines = con.sql(read_sql("versions/partitioned_lines.sql"), params=units.params)
    pending: list[pl.DataFrame] = []
    for batch in lines.to_arrow_reader(STREAM_BATCH_ROWS):
        frame = pl.DataFrame(pl.from_arrow(batch))
        for number, part in frame.group_by(PARTITION, maintain_order=True):
            if pending and pending[0][PARTITION][0] != number[0]:
                yield _whole(pending)
                pending = []
            pending.append(part)
    if pending:
        yield _whole(pending)


def _whole(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(parts).drop(PARTITION)
