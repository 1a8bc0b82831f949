"""The evidence helpers every pack builds its sentences with."""

from __future__ import annotations

import random

import polars as pl

from pipelines.audit.evidence import LINE, joined_per_line


def test_a_lines_values_are_joined_in_row_order_as_a_group_by_would_join_them() -> None:
    """Against polars' own join of every group: one value, several, none (nulls only), in
    the rows' order, whatever order the lines come in."""
    rng = random.Random(7)
    values = [None, "A", "B", "C", "=D", "B"]
    rows = pl.DataFrame(
        {
            LINE: [rng.randrange(200) for _ in range(1000)],
            "caregiver_id": [rng.choice(values) for _ in range(1000)],
        },
        schema={LINE: pl.UInt32, "caregiver_id": pl.String},
    )
    expected = rows.group_by(LINE).agg(pl.col("caregiver_id").str.join(", ")).sort(LINE)
    joined = joined_per_line(rows, "caregiver_id", ", ").sort(LINE)
    assert joined.equals(expected)
    counts = rows.group_by(LINE).agg(pl.col("caregiver_id").drop_nulls().len().alias("n"))
    assert {0, 1, 2} <= set(counts["n"].to_list())  # the three cases are all there


def test_a_line_without_a_value_joins_to_empty_text_and_order_is_the_rows() -> None:
    rows = pl.DataFrame(
        {LINE: [3, 1, 3, 2, 3], "why": ["late", None, None, "unsigned", "no PPS"]},
        schema={LINE: pl.UInt32, "why": pl.String},
    )
    joined = dict(joined_per_line(rows, "why", "; ").iter_rows())
    assert joined == {1: "", 2: "unsigned", 3: "late; no PPS"}
