"""Turn text values into typed values, row by row, with a reason for every row that fails."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from pipelines.config import DateBounds
from pipelines.ingest.datasets import CLAIMS, PAYER_CODE_FORM, PAYER_CODE_PATTERN, Dataset
from pipelines.ingest.readers import ROW_COLUMN, no_rows_set_aside

# Each accepted date form: the shape its text must have, and how it is read. polars' %Y also
# reads `23` as the year 23, so a text is parsed only when its shape has a four-digit year
# (a year with a leading zero, `0023`, is a two-digit year padded by an export).
DATE_FORMS = (
    (r"^[1-9][0-9]{3}-[0-9]{1,2}-[0-9]{1,2}$", "%Y-%m-%d"),
    (r"^[0-9]{1,2}/[0-9]{1,2}/[1-9][0-9]{3}$", "%m/%d/%Y"),
    (r"^[1-9][0-9]{7}$", "%Y%m%d"),
)
REASON = "reason"
RAW_ROW = "raw_row"
# columns outside the contract, kept as one JSON object per row for analysts; no rule reads them
EXTRA_COLUMNS = "extra_columns"


@dataclass(frozen=True)
class TypedRows:
    loaded: pl.DataFrame
    quarantined: pl.DataFrame  # source_row, reason, raw_row


@dataclass(frozen=True)
class PlausibleDates:
    """The dates a delivery may hold when audited on one as-of date (settings.toml [dates])."""

    service_from: dt.date
    service_to: dt.date
    birth_from: dt.date
    birth_to: dt.date
    open_end_from: dt.date


def plausible_dates(bounds: DateBounds, as_of: dt.date) -> PlausibleDates:
    return PlausibleDates(
        service_from=bounds.earliest_service_date,
        service_to=as_of + dt.timedelta(days=bounds.service_days_after_as_of),
        birth_from=bounds.earliest_birth_date,
        birth_to=as_of,
        open_end_from=bounds.open_end_from,
    )


def _read_date(column: str, form: tuple[str, str]) -> pl.Expr:
    shape, fmt = form
    text = pl.col(column)
    return pl.when(text.str.contains(shape)).then(
        text.str.strptime(pl.Date, fmt, strict=False, exact=True)
    )


def parse_date(column: str) -> pl.Expr:
    """The first of DATE_FORMS whose shape the text has and that reads it."""
    return pl.coalesce([_read_date(column, form) for form in DATE_FORMS])


def _with_dates(text: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """Each date column typed: in the first form, then in every form where text is left.

    Extracts keep one format per column, so a file nearly always pays for one pass.
    """
    typed = text.with_columns(_read_date(c, DATE_FORMS[0]).alias(typed_name(c)) for c in columns)
    unread = [c for c in columns if typed.select(_unreadable(c).any()).item()]
    return typed.with_columns(parse_date(c).alias(typed_name(c)) for c in unread)


def typed_name(column: str) -> str:
    return f"{column}__typed"


def type_rows(
    rows: pl.DataFrame, dataset: Dataset, delimiter: str, dates: PlausibleDates
) -> TypedRows:
    """Type every contract column; rows with a blank key, an unreadable value or an
    implausible date are set aside.

    Each value is parsed once, beside its text; a row's reasons compare the two.
    """
    contract = list(dataset.columns)
    extras = [c for c in rows.columns if c not in contract and c != ROW_COLUMN]
    text = rows.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in contract if c not in rows.columns]
    ).with_columns(
        # blank and whitespace-only values are absent values
        [pl.col(c).str.strip_chars().replace("", None).alias(c) for c in contract]
    )
    parsed = _with_dates(text, dataset.date_columns).with_columns(
        [
            pl.col(c).cast(pl.Int64, strict=False).alias(typed_name(c))
            for c in dataset.integer_columns
        ]
        + [
            pl.col(c).cast(pl.Decimal(18, 2), strict=False).alias(typed_name(c))
            for c in dataset.amount_columns
        ]
        + [
            pl.col(c).cast(pl.Decimal(18, 4), strict=False).alias(typed_name(c))
            for c in dataset.quantity_columns
        ]
    )
    problems = _problems(dataset, dates)
    bad = parsed.select(
        pl.any_horizontal([p.is_not_null() for p in problems]).fill_null(False)
        if problems
        else pl.lit(False)
    ).to_series()
    converted = [
        *dataset.date_columns,
        *dataset.integer_columns,
        *dataset.amount_columns,
        *dataset.quantity_columns,
    ]
    typed = parsed.with_columns(
        [pl.col(typed_name(c)).alias(c) for c in converted]
        + [pl.col(c).str.to_uppercase().alias(c) for c in dataset.upper_columns]
    ).with_columns(_open_end(c, dates.open_end_from) for c in dataset.open_end_columns)
    if extras:
        typed = typed.with_columns(pl.struct(extras).struct.json_encode().alias(EXTRA_COLUMNS))
    else:
        typed = typed.with_columns(pl.lit(None, dtype=pl.String).alias(EXTRA_COLUMNS))
    kept = [*contract, ROW_COLUMN, EXTRA_COLUMNS]
    if dataset is CLAIMS:
        # the folder names the payer; a payer column is kept only to report disagreement
        in_file = pl.col("payer").str.strip_chars() if "payer" in rows.columns else pl.lit(None)
        typed = typed.with_columns(in_file.cast(pl.String).alias("payer_in_file"))
        kept.append("payer_in_file")
    if not bad.any():  # the usual batch: nothing to set aside, nothing to copy
        return TypedRows(loaded=typed.select(kept), quarantined=no_rows_set_aside())
    # reasons and the row as it came, spelled out only for the few rows set aside
    reasons = pl.concat_str(problems, separator="; ", ignore_nulls=True)
    raw_row = pl.concat_str(
        [pl.col(c).fill_null("") for c in rows.columns if c != ROW_COLUMN], separator=delimiter
    )
    return TypedRows(
        loaded=typed.filter(~bad).select(kept),
        quarantined=rows.filter(bad).select(
            ROW_COLUMN,
            parsed.filter(bad).select(reasons.alias(REASON)).to_series(),
            raw_row.alias(RAW_ROW),
        ),
    )


def _unreadable(column: str) -> pl.Expr:
    """Text was given but did not parse."""
    return pl.col(column).is_not_null() & pl.col(typed_name(column)).is_null()


def _open_end(column: str, open_end_from: dt.date) -> pl.Expr:
    """A span end on or after the open-end marker date is open: blank, as the contract's is."""
    end = pl.col(column)
    return pl.when(end < open_end_from).then(end).alias(column)


def _problems(dataset: Dataset, dates: PlausibleDates) -> list[pl.Expr]:
    """One expression per way a row can fail; each yields its reason or null."""
    problems: list[pl.Expr] = [
        pl.when(pl.col(c).is_null()).then(pl.lit(f"{c} is blank")) for c in dataset.key_columns
    ]
    formats = "YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD"
    problems += [
        pl.when(_unreadable(c)).then(pl.lit(f"{c} is not a date ({formats})"))
        for c in dataset.date_columns
    ]
    problems += [
        pl.when(pl.col(c).is_not_null() & ~(pl.col(typed_name(c)) >= 1).fill_null(False)).then(
            pl.lit(f"{c} is not a whole number of at least 1")
        )
        for c in dataset.integer_columns
    ]
    problems += [
        pl.when(_unreadable(c)).then(pl.lit(f"{c} is not a number"))
        for c in (*dataset.amount_columns, *dataset.quantity_columns)
    ]
    problems += [
        pl.when(
            pl.col(c).is_not_null() & ~pl.col(c).str.to_uppercase().str.contains(PAYER_CODE_PATTERN)
        ).then(pl.lit(f"{c} is not a payer code ({PAYER_CODE_FORM})"))
        for c in dataset.payer_columns
    ]
    problems += _date_bound_problems(
        dataset.service_date_columns, dates.service_from, dates.service_to, "service or paid"
    )
    problems += _date_bound_problems(
        dataset.birth_date_columns, dates.birth_from, dates.birth_to, "birth"
    )
    if dataset is CLAIMS:
        problems += _claim_problems()
    return problems


def _date_bound_problems(
    columns: tuple[str, ...], earliest: dt.date, latest: dt.date, kind: str
) -> list[pl.Expr]:
    """A date outside [earliest, latest] is a typing slip, never a real one (settings.toml)."""
    problems: list[pl.Expr] = []
    for c in columns:
        day = pl.col(typed_name(c))
        problems += [
            pl.when(day < earliest).then(
                pl.lit(f"{c} is before {earliest.isoformat()}, the earliest plausible {kind} date")
            ),
            pl.when(day > latest).then(
                pl.lit(f"{c} is after {latest.isoformat()}, the latest plausible {kind} date")
            ),
        ]
    return problems


def _claim_problems() -> list[pl.Expr]:
    frequency = pl.col("claim_frequency_code").fill_null("1")
    start = pl.col(typed_name("claim_line_start_date"))
    end = pl.col(typed_name("claim_line_end_date"))
    return [
        pl.when(~frequency.is_in(["1", "7", "8"])).then(
            pl.lit("claim_frequency_code is not 1 (original), 7 (replacement) or 8 (void)")
        ),
        pl.when(frequency.is_in(["7", "8"]) & pl.col("original_claim_id").is_null()).then(
            pl.lit("original_claim_id is blank on a replacement or void")
        ),
        pl.when(end < start).then(pl.lit("claim_line_end_date is before claim_line_start_date")),
    ]


def finish_claim_rows(loaded: pl.DataFrame, payer: str) -> pl.DataFrame:
    """Claim defaults from the contract: frequency 1, end date = start, payer from the folder."""
    return loaded.with_columns(
        pl.col("claim_frequency_code").fill_null("1"),
        pl.col("claim_line_end_date").fill_null(pl.col("claim_line_start_date")),
        pl.lit(payer).alias("payer"),
    )
