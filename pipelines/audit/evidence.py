"""What every policy pack's facts are built with: the line key, and evidence helpers.

A pack's `facts.py` builds its evidence columns from the engine's in-scope lines (one row
per line, keyed by `line_key`) and the reference tables it declares; these helpers say the
things every pack says the same way (spans, dates, ages, one value per key).
"""

from __future__ import annotations

import polars as pl

KEY = ["payer", "claim_id", "claim_line_number"]
LINE = "line_key"
# the order reference rows were delivered in: snapshot, then row of its file
DELIVERY_ORDER = ["delivery_id", "source_row"]
MODIFIERS = [f"hcpcs_modifier_{i}" for i in range(1, 5)]


def attach(facts: pl.DataFrame, evidence: pl.DataFrame) -> pl.DataFrame:
    """Evidence keyed by line, lined up beside the facts: only its own columns are gathered."""
    aligned = facts.select(LINE).join(evidence, on=LINE, how="left", maintain_order="left")
    return facts.hstack(aligned.drop(LINE))


def look_up(facts: pl.DataFrame, table: pl.DataFrame, key: str) -> pl.DataFrame:
    """Columns of a table with one row per `key`, lined up beside the facts."""
    aligned = facts.select(key).join(table, on=key, how="left", maintain_order="left")
    return facts.hstack(aligned.drop(key))


def covers(start: str, end: str, day: pl.Expr) -> pl.Expr:
    """An inclusive span with blank ends open: blank start no lower bound, blank end ongoing."""
    return (pl.col(start).is_null() | (pl.col(start) <= day)) & (
        pl.col(end).is_null() | (pl.col(end) >= day)
    )


def date_text(column: str) -> pl.Expr:
    return pl.col(column).dt.to_string("%Y-%m-%d").fill_null("open")


def last_in_file(table: pl.DataFrame, key: str, column: str, alias: str) -> pl.DataFrame:
    """One value per key: of the key's rows with a value, the last delivered (the snapshot's
    last row), as between copies of a claim line (docs/decisions.md, "Reference data with
    several rows"). Sorted here, whatever order the rows arrive in; groups keep that order.
    """
    return (
        table.select(key, column, *DELIVERY_ORDER)
        .sort(DELIVERY_ORDER)
        .group_by(key)
        .agg(pl.col(column).drop_nulls().last().alias(alias))
    )


def joined_per_line(rows: pl.DataFrame, column: str, separator: str) -> pl.DataFrame:
    """Each line's values of `column` (LINE, `column`), in the order of `rows`, joined by
    `separator`: one row per line of `rows`, "" where it has no value. Joining text per
    group is slow in polars (about a third of a partition's facts, once for each line); most
    lines have one value, which is taken as it is."""
    per_line = rows.group_by(LINE).agg(
        pl.col(column).drop_nulls().len().alias("_values"),
        pl.col(column).drop_nulls().first().alias("_only"),
    )
    several = rows.join(
        per_line.filter(pl.col("_values") > 1).select(LINE),
        on=LINE,
        how="semi",
        maintain_order="left",
    )
    joined = several.group_by(LINE).agg(pl.col(column).str.join(separator).alias("_joined"))
    return per_line.join(joined, on=LINE, how="left").select(
        LINE, pl.coalesce("_joined", "_only", pl.lit("")).alias(column)
    )


def evidence_only_where_broken(facts: pl.DataFrame, passes: dict[str, pl.Expr]) -> pl.DataFrame:
    """Each evidence sentence speaks of a broken rule: it is kept only on lines that break it
    (`passes` maps an evidence column to the condition under which its rule passes)."""
    return facts.with_columns(
        pl.when(passing).then(None).otherwise(pl.col(column)).alias(column)
        for column, passing in passes.items()
    )


def month_day(day: pl.Expr) -> pl.Expr:
    # month() and day() are Int8: widen first, or December * 100 wraps around
    return day.dt.month().cast(pl.Int32) * 100 + day.dt.day().cast(pl.Int32)


def age_on(day: pl.Expr, birth: pl.Expr) -> pl.Expr:
    """Whole years on `day` (a 29 February birthday falls on 1 March in common years)."""
    before_birthday = month_day(day) < month_day(birth)
    return day.dt.year() - birth.dt.year() - before_birthday.cast(pl.Int32)
