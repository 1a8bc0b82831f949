"""Facts of the Community Health Worker pack (KMAP 23175): the evidence CHW001-CHW006 read.

One row per in-scope line, keyed by `line_key`. The suite compares the thresholds itself (the
DOS against the effective date, the running unit totals against the daily and monthly
limits); the facts carry the evidence, and a true/false column only where Great Expectations
has no comparison (a modifier in any of four positions, a provider type on a covering
provider row, a telehealth marker in the place of service or a modifier).

The caps are the member's, across claims, providers and MCOs: the lines of one member's day
(or calendar month) are counted in payment order (paid date, payer, claim_id,
claim_line_number), and a line breaks the cap when the running total after it is above the
limit. Only the units over the limit are at risk. The engine passes every current line of
the members' days and months, so the totals see every paid line.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import polars as pl

REFERENCES: tuple[str, ...] = ("providers",)

LINE = "line_key"
MODIFIERS = [f"hcpcs_modifier_{i}" for i in range(1, 5)]
# the order in which one member's lines of a day or month are counted (rules-23175-chw.md)
PAYMENT_ORDER = ["paid_date", "payer", "claim_id", "claim_line_number"]
UNITS = "service_unit_quantity"
# amounts at risk are computed at this scale before rounding to the cent
_EXACT = pl.Decimal(38, 12)
_MONEY = pl.Decimal(18, 2)


def build_facts(
    lines: pl.DataFrame, reference: Mapping[str, pl.DataFrame], parameters: Mapping[str, Any]
) -> pl.DataFrame:
    """One row per row of `lines`, in payment order, with the evidence the suite reads."""
    facts = _in_payment_order(lines).select(
        LINE,
        # Great Expectations compares a date column only as a datetime64[ns] against a datetime
        # parameter (it turns an ISO text parameter into a date it cannot compare): CHW001
        pl.col("service_date").cast(pl.Datetime("ns")).alias("dos_timestamp"),
        pl.col("service_date").dt.to_string("%Y-%m-%d").alias("service_date_text"),
        _has_modifier(_code(parameters["required_modifier"])).alias("has_required_modifier"),
        (pl.col(UNITS) > 0).fill_null(False).alias("adds_units"),
        _unit_text(pl.col(UNITS)).alias("line_units_text"),
        *_cap(
            "daily",
            [pl.col("service_date")],
            _whole_units(parameters["daily_unit_limit"], "daily_unit_limit"),
        ),
        *_cap(
            "monthly",
            [pl.col("service_date").dt.truncate("1mo")],
            _whole_units(parameters["monthly_unit_limit"], "monthly_unit_limit"),
        ),
        pl.col("service_date").dt.to_string("%Y-%m").alias("service_month_text"),
        *_telehealth(parameters),
    )
    return _billing_provider_type(facts, lines, reference["providers"], parameters)


def _in_payment_order(lines: pl.DataFrame) -> pl.DataFrame:
    # (payer, claim_id, claim_line_number) is unique among current lines: the order is total,
    # whatever order the rows came in. IDs compare as text; a missing paid date counts last.
    return lines.sort(PAYMENT_ORDER, nulls_last=True)


def _code(value: Any) -> str:
    return str(value).strip().upper()


def _codes(values: Any) -> list[str]:
    return [_code(v) for v in values]


def _whole_units(value: Any, name: str) -> Decimal:
    # a fractional or boolean limit is a typo in policy.toml, never a limit
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"policy parameter {name} must be a whole number of units")
    return Decimal(value)


def _has_modifier(modifier: str) -> pl.Expr:
    return pl.any_horizontal([pl.col(m) == modifier for m in MODIFIERS]).fill_null(False)


def _unit_text(units: pl.Expr) -> pl.Expr:
    """Units as an analyst writes them: 2, 2.5 (a Decimal reads 2.0000)."""
    return units.cast(pl.String).str.replace(r"\.?0+$", "")


# CHW003 and CHW004 -----------------------------------------------------------------------


def _cap(period: str, window: list[pl.Expr], limit: Decimal) -> list[pl.Expr]:
    """The running total of the member's units in the window, after this line (payment
    order), the window's total, the units of this line over the limit and their amount.

    A member ID left blank is nobody's: its line is counted alone, never pooled with other
    blank IDs. A zero or negative quantity counts like any other (it was adjudicated), but
    such a line adds nothing and so has nothing over the limit.
    """
    member = [pl.col("member_id"), pl.when(pl.col("member_id").is_null()).then(pl.col(LINE))]
    units = pl.col(UNITS)
    after = units.cum_sum().over([*member, *window])
    over = pl.min_horizontal(units, after - pl.lit(limit)).clip(lower_bound=0)
    # units over are at most the line's units, so the share is at most the paid amount
    share = pl.col("paid_amount").cast(_EXACT) * over / pl.when(units > 0).then(units).otherwise(1)
    at_risk = pl.when(over > 0).then(share.round(2, mode="half_away_from_zero")).otherwise(0)
    return [
        # exact decimal totals: as floats they keep their order against a whole-unit limit
        after.cast(pl.Float64).alias(f"{period}_units_after_line"),
        _unit_text(units.sum().over([*member, *window])).alias(f"{period}_units_total_text"),
        over.cast(pl.Decimal(18, 4)).alias(f"{period}_units_over_limit"),
        _unit_text(over).alias(f"{period}_units_over_text"),
        at_risk.cast(_MONEY).alias(f"{period}_amount_at_risk"),
    ]


# CHW005 ----------------------------------------------------------------------------------


def _billing_provider_type(
    facts: pl.DataFrame,
    lines: pl.DataFrame,
    providers: pl.DataFrame,
    parameters: Mapping[str, Any],
) -> pl.DataFrame:
    """The billing provider's excluded types on provider rows whose enrollment covers the
    DOS (inclusive, a blank end open, a blank start no lower bound). A blank type is
    unknown, never an exclusion; the rendering provider does not count."""
    excluded = _codes(parameters["excluded_provider_types"])
    if "provider_type" not in providers.columns:  # a provider file without the column
        providers = providers.with_columns(pl.lit(None, pl.String).alias("provider_type"))
    dos = pl.col("service_date")
    start, end = pl.col("enrollment_start_date"), pl.col("enrollment_end_date")
    types = (
        lines.select(LINE, "billing_npi", "service_date")
        .join(
            providers.select(
                "npi",
                "enrollment_start_date",
                "enrollment_end_date",
                pl.col("provider_type").str.strip_chars().str.to_uppercase(),
            ),
            left_on="billing_npi",
            right_on="npi",
        )
        .filter(
            (start.is_null() | (start <= dos))
            & (end.is_null() | (end >= dos))
            & pl.col("provider_type").is_in(excluded)
        )
        .group_by(LINE)
        .agg(pl.col("provider_type").unique().sort().str.join(" and ").alias("_types"))
    )
    aligned = facts.select(LINE).join(types, on=LINE, how="left", maintain_order="left")
    return facts.with_columns(
        aligned["_types"].is_not_null().alias("billing_provider_type_excluded"),
        aligned["_types"].alias("billing_provider_excluded_type"),
    )


# CHW006 ----------------------------------------------------------------------------------


def _telehealth(parameters: Mapping[str, Any]) -> list[pl.Expr]:
    places = [str(p).strip() for p in parameters["telehealth_places_of_service"]]
    markers = _codes(parameters["telehealth_modifiers"])
    pos = pl.col("place_of_service_code").str.strip_chars()
    remote_place = pos.is_in(places).fill_null(False)
    remote_modifiers = (
        pl.concat_list([pl.when(pl.col(m).is_in(markers)).then(pl.col(m)) for m in MODIFIERS])
        .list.drop_nulls()
        .list.unique(maintain_order=True)
    )
    evidence = pl.concat_str(
        [
            pl.when(remote_place).then(pl.format("POS {}", pos)),
            pl.when(remote_modifiers.list.len() > 0).then(
                pl.format("modifier {}", remote_modifiers.list.join(", "))
            ),
        ],
        separator=", ",
        ignore_nulls=True,
    )
    telehealth = remote_place | (remote_modifiers.list.len() > 0)
    return [
        telehealth.alias("billed_as_telehealth"),
        pl.when(telehealth).then(evidence).alias("telehealth_evidence"),
    ]
