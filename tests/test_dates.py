"""Date arithmetic of rules.md, checked against the catalog's own formulas on every month."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl

from pipelines.audit.evidence import age_on
from tests.world import pack_audit

whole_years_apart = pack_audit().pack.facts().whole_years_apart


def _age(dos: dt.date, dob: dt.date) -> int:
    return dos.year - dob.year - ((dos.month, dos.day) < (dob.month, dob.day))


def _apart(a: dt.date, b: dt.date, years: int) -> bool:
    earlier, later = sorted((a, b))
    gap = later.year - earlier.year
    return gap > years or (
        gap == years and (later.month, later.day) >= (earlier.month, earlier.day)
    )


def _random_days(rng: random.Random, count: int) -> list[dt.date]:
    start = dt.date(1940, 1, 1).toordinal()
    end = dt.date(2026, 12, 31).toordinal()
    return [dt.date.fromordinal(rng.randint(start, end)) for _ in range(count)]


def test_age_on_matches_the_catalog_formula_on_every_month() -> None:
    rng = random.Random(22321)
    pairs = pl.DataFrame({"dos": _random_days(rng, 5000), "dob": _random_days(rng, 5000)})
    # every month-end and leap day, where a narrow integer type would first go wrong
    edges = [dt.date(2024, m, 28) for m in range(1, 13)] + [
        dt.date(2024, 2, 29),
        dt.date(2023, 12, 31),
    ]
    pairs = pl.concat(
        [pairs, pl.DataFrame({"dos": edges, "dob": [dt.date(2004, 2, 29)] * len(edges)})]
    )
    ages = pairs.select(age_on(pl.col("dos"), pl.col("dob")).alias("age"))["age"].to_list()
    assert ages == [_age(d, b) for d, b in pairs.iter_rows()]


def test_a_whole_years_gap_at_least_the_minimum_matches_the_catalog_formula_both_ways() -> None:
    rng = random.Random(12)
    base = _random_days(rng, 3000)
    # partners near the 3-year boundary, on both sides, in both directions
    other = [
        d.replace(year=d.year + rng.choice([-3, 3]), day=min(d.day, 28))
        + dt.timedelta(days=rng.randint(-2, 2))
        for d in base
    ]
    # 29 February against the 28th and 1 March three years on, both ways
    leap = [dt.date(2000, 2, 29)] * 4
    near = [dt.date(2003, 2, 28), dt.date(2003, 3, 1), dt.date(1997, 2, 28), dt.date(1997, 3, 1)]
    pairs = pl.DataFrame({"a": base + leap + near, "b": other + near + leap})
    gaps = pairs.select(whole_years_apart(pl.col("a"), pl.col("b")).alias("gap"))["gap"]
    for minimum in (2, 3, 4):
        apart = [gap >= minimum for gap in gaps]
        assert apart == [_apart(a, b, minimum) for a, b in pairs.iter_rows()]
    apart_3 = [gap >= 3 for gap in gaps]
    assert any(apart_3) and not all(apart_3)
    assert apart_3[-8:] == [False, True, True, False] * 2
