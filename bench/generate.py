"""Benchmark input: a contract input folder with millions of paid claim lines.

Everything is drawn as whole arrays (numpy, polars), so 10 million lines take a minute or two.
The mix is a year of KanCare claims (dates of service in 2024) for four MCOs: one policy
pack's in-scope lines (`--pack`: H0038 individual lines and HQ group sessions of 2 to 10
members, or Community Health Worker lines 98960-98962) and other codes. `--in-scope-share`
is the pack's share of the claim lines: 0.10 is the mixed profile (the default), 0.85 a
policy-only extract. About 2% of claims are voided or replaced (chains up to two corrections
deep), and the reference files are sized to match. Natural rule breaks and near misses are
spread through the data so that every rule of the pack has findings.

    python bench/generate.py --input DIR [--lines N] [--days K] [--seed S]
                             [--pack ID] [--in-scope-share F]
    python bench/generate.py --input DIR --one-day      # add the next day's delivery
    python bench/generate.py --input DIR --one-day --resend-references

`--one-day` reads an existing folder and writes one more claim file per MCO with about 1/365
of its lines: new claims paid that day, voids and replacements of earlier claims, and a few
lines delivered again; the pack and the in-scope share are those of the folder's claims.
Reference files are left as they are, unless `--resend-references` writes every one of them
again as a new snapshot with about 0.5% of its rows changed (a birth date, an enrollment span
end, a provider type, a level-of-care span, ...), as a nightly feed resends them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipelines.ingest.datasets import CLAIM_COLUMNS

MCOS = ("AETNA", "SUNFLOWER", "UHC", "HEALTHYBLUE")
MCO_SHARE = (0.3, 0.3, 0.2, 0.2)
# one MCO sends US-style dates; the contract accepts MM/DD/YYYY
CLAIM_DATE_FORMAT = {"HEALTHYBLUE": "%m/%d/%Y"}
ISO = "%Y-%m-%d"
EPOCH = dt.date(1970, 1, 1)
YEAR_START, YEAR_END = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
MID_YEAR = dt.date(2024, 7, 1)

CHUNK_LINES = 1_000_000
POLICIES = Path(__file__).resolve().parent.parent / "policies"
H0038_PACK = "h0038_parent_peer_support"
CHW_PACK = "chw_community_health_worker"
PACKS = (H0038_PACK, CHW_PACK)
# the mixed profile: about one claim line in ten is the pack's
MIXED_SHARE = 0.10
GROUP_SHARE = 0.30
SESSION_SIZES = np.arange(2, 11)
SESSION_SIZE_P = np.array([0.08, 0.12, 0.15, 0.16, 0.15, 0.13, 0.11, 0.06, 0.04])
POS = ("11", "53", "12", "99", "03")
POS_P = (0.45, 0.25, 0.15, 0.1, 0.05)
# other codes billed in the same year, with a made-up rate per unit
OTHER_RATES = {
    "90837": 140.0, "90834": 95.0, "90832": 60.0, "90791": 150.0, "H0036": 18.5, "H2019": 16.2,
    "H2017": 11.4, "H0031": 120.0, "H0032": 80.0, "T1017": 14.9, "99213": 75.0, "99214": 110.0,
    "96372": 25.0, "H2011": 21.0, "S9484": 35.0, "T1019": 4.5,
}  # fmt: skip
OTHER_CODES = tuple(OTHER_RATES)
LICENSED = ("LMHP", "LSCSW", "LCP", "LCPC", "LMFT", "LCMFT", "LP", "MD", "DO", "APRN", "PA")
CLAIM_DATES = ("claim_line_start_date", "claim_line_end_date", "paid_date")


@dataclass(frozen=True)
class Profile:
    """Whose in-scope lines are drawn, and what share of the claim lines they are."""

    pack: str = H0038_PACK
    in_scope_share: float = MIXED_SHARE

    @property
    def codes(self) -> list[str]:
        return list(pack_policy(self.pack)["pack"]["codes"])

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(pack_policy(self.pack)["parameters"])


@dataclass
class Stats:
    lines: int
    pack: str
    in_scope_share: float
    pack_lines: int  # lines billed with the pack's codes, corrections included
    claim_files: int
    members: int
    providers: int
    delivery_date: str
    reference_rows_changed: int = 0


@cache
def pack_policy(pack: str) -> dict[str, Any]:
    """The pack's policy.toml: its codes and parameters are read from there, never copied."""
    return tomllib.loads((POLICIES / pack / "policy.toml").read_text(encoding="utf-8"))


def is_in_scope(codes: Sequence[str], column: str = "hcpcs_code") -> pl.Expr:
    return pl.col(column).str.strip_chars().str.to_uppercase().is_in(list(codes))


# small helpers -------------------------------------------------------------------------------


def day(d: dt.date) -> int:
    return (d - EPOCH).days


def as_dates(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype(np.int32)).cast(pl.Date)


def days_between(rng: np.random.Generator, lo: dt.date, hi: dt.date, n: int) -> np.ndarray:
    return rng.integers(day(lo), day(hi) + 1, n)


def pick(
    rng: np.random.Generator,
    options: Sequence[str | None],
    n: int,
    p: Sequence[float] | None = None,
) -> pl.Series:
    return pl.Series(list(options), dtype=pl.String).gather(rng.choice(len(options), n, p=p))


def blank_where(column: str, mask: np.ndarray) -> pl.Expr:
    return pl.when(pl.Series(mask)).then(None).otherwise(pl.col(column)).alias(column)


def digits(values: np.ndarray, width: int) -> pl.Series:
    return pl.Series(values.astype(np.int64)).cast(pl.String).str.zfill(width)


def luhn_npis(bases: np.ndarray) -> pl.Series:
    """10-digit NPIs: 9 digits and a Luhn check digit computed over the "80840" prefix."""
    payload = np.hstack(
        [
            np.tile([8, 0, 8, 4, 0], (bases.size, 1)),
            (bases[:, None] // 10 ** np.arange(8, -1, -1)) % 10,
        ]
    )[:, ::-1]
    doubled = payload[:, 0::2] * 2
    total = np.where(doubled > 9, doubled - 9, doubled).sum(1) + payload[:, 1::2].sum(1)
    return digits(bases * 10 + (10 - total % 10) % 10, 10)


# reference files ---------------------------------------------------------------------------


def build_reference(rng: np.random.Generator, n_members: int, n_providers: int) -> dict:
    """The reference snapshots as typed frames (dates as dates), before any claim exists."""
    members = _members(rng, n_members)
    pps = members["pps"].to_numpy()
    providers = _providers(rng, n_providers)
    return {
        "members": members,
        "enrollment": _enrollment(rng, members),
        "providers": providers,
        "level_of_care": _level_of_care(rng, members, pps),
        "treatment_plans": _treatment_plans(rng, members, pps, providers),
        "consents": _consents(rng, members, pps),
        "caregivers": _caregivers(rng, members, pps),
        "mco_implementation": pl.DataFrame(
            {
                "payer": list(MCOS),
                "implemented_date": [
                    dt.date(2024, 3, 1),
                    dt.date(2024, 1, 15),
                    dt.date(2024, 6, 1),
                    None,
                ],
                "reprocessing_completed_date": [dt.date(2024, 9, 30), None, None, None],
            }
        ),
    }


def _members(rng: np.random.Generator, n: int) -> pl.DataFrame:
    # about one member in five is a child whose parent receives Parent Peer Support
    pps = rng.random(n) < 0.2
    r = rng.random(n)
    age = np.where(
        pps,
        np.where(r < 0.8, rng.integers(3, 18, n), rng.integers(18, 21, n)),
        rng.integers(0, 65, n),
    )
    dob = day(MID_YEAR) - np.floor(age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    return pl.DataFrame(
        {
            "member_id": digits(10_000_000_000 + np.arange(n) * 37, 11),
            "date_of_birth": as_dates(dob),
            "pps": pps,
        }
    ).with_columns(blank_where("date_of_birth", rng.random(n) < np.where(pps, 0.02, 0.01)))


def _enrollment(rng: np.random.Generator, members: pl.DataFrame) -> pl.DataFrame:
    n = members.height
    home = rng.choice(len(MCOS), n, p=MCO_SHARE)
    start = days_between(rng, dt.date(2019, 1, 1), dt.date(2023, 12, 31), n)
    start = np.where(rng.random(n) < 0.04, days_between(rng, YEAR_START, YEAR_END, n), start)
    change = days_between(rng, dt.date(2024, 2, 1), dt.date(2024, 11, 30), n)
    r = rng.random(n)
    switch, gap, ended = r < 0.05, (r >= 0.05) & (r < 0.075), (r >= 0.075) & (r < 0.1)
    other = (home + rng.integers(1, len(MCOS), n)) % len(MCOS)
    first_end = np.where(switch | gap | ended, change - 1, -1)
    second = switch | gap
    second_start = np.where(gap, change + rng.integers(15, 61, n), change)
    ids = members["member_id"]
    mcos = pl.Series(list(MCOS))
    spans = pl.concat(
        [
            pl.DataFrame(
                {
                    "member_id": ids,
                    "payer": mcos.gather(home),
                    "start_date": as_dates(start),
                    "end_date": as_dates(first_end),
                }
            ).with_columns(
                blank_where("end_date", first_end < 0),
                # a blank start means no lower bound
                blank_where("start_date", rng.random(n) < 0.01),
            ),
            pl.DataFrame(
                {
                    "member_id": ids.filter(second),
                    "payer": mcos.gather(np.where(switch, other, home)[second]),
                    "start_date": as_dates(second_start[second]),
                    "end_date": pl.Series(values=[None] * int(second.sum()), dtype=pl.Date),
                }
            ),
        ]
    )
    return spans.sort("member_id", "start_date", nulls_last=False)


def _providers(rng: np.random.Generator, n: int) -> pl.DataFrame:
    bases = rng.choice(200_000_000, n, replace=False) + 100_000_000
    pps = np.arange(n) < max(10, round(n * 0.15))
    enrolled = days_between(rng, dt.date(2010, 1, 1), dt.date(2022, 12, 31), n)
    enrolled = np.where(rng.random(n) < 0.02, days_between(rng, YEAR_START, YEAR_END, n), enrolled)
    left = days_between(rng, dt.date(2024, 3, 1), YEAR_END, n)
    r_pps = rng.random(n)
    pps_start = np.where(
        r_pps < 0.93,
        days_between(rng, dt.date(2022, 6, 1), dt.date(2023, 6, 30), n),
        days_between(rng, dt.date(2024, 2, 1), dt.date(2024, 10, 31), n),
    )
    r_lived = rng.random(n)
    lived = np.select(
        [r_lived < 0.88, r_lived < 0.92, r_lived < 0.96, r_lived < 0.99],
        ["Y", "Y2024", "Y-", "N"],
        "",
    )
    lived_date = np.where(
        lived == "Y2024",
        days_between(rng, dt.date(2024, 2, 1), dt.date(2024, 11, 30), n),
        days_between(rng, dt.date(2018, 1, 1), dt.date(2022, 12, 31), n),
    )
    dob = np.where(
        pps,
        days_between(rng, dt.date(1955, 1, 1), dt.date(1982, 12, 31), n),
        days_between(rng, dt.date(1950, 1, 1), dt.date(1995, 12, 31), n),
    )
    flag = np.where(np.char.startswith(lived, "Y"), "Y", lived)
    flag = np.where((flag == "Y") & (rng.random(n) < 0.03), "y", flag)  # flags are any case
    return pl.DataFrame(
        {
            "npi": luhn_npis(bases),
            "provider_name": pl.Series(np.arange(n)).cast(pl.String).str.zfill(4),
            "enrollment_start_date": as_dates(enrolled),
            "enrollment_end_date": as_dates(left),
            "pps_start_date": as_dates(pps_start),
            "lived_experience_attested": pl.Series(flag).replace("", None),
            "lived_experience_attested_date": as_dates(lived_date),
            "date_of_birth": as_dates(dob),
        }
    ).with_columns(
        pl.format("Peer Support Provider {}", "provider_name").alias("provider_name"),
        blank_where("enrollment_start_date", rng.random(n) < 0.01),
        blank_where("enrollment_end_date", rng.random(n) >= np.where(pps, 0.03, 0.1)),
        blank_where("pps_start_date", np.where(pps, r_pps >= 0.98, rng.random(n) >= 0.1)),
        blank_where("lived_experience_attested_date", (lived == "Y-") | (lived == "")),
        blank_where("date_of_birth", rng.random(n) < 0.03),
    )


# Kansas provider types; the excluded ones (RHC, FQHC, IHC) come from the CHW pack's policy
OTHER_PROVIDER_TYPES = ("PHYSICIAN", "CMHC", "CLINIC", "HOSPITAL", "CCBHC")
OTHER_PROVIDER_TYPE_P = (0.5, 0.17, 0.13, 0.07, 0.05)
# the share of providers of each excluded type, and of a blank (unknown) type
EXCLUDED_TYPE_SHARE, BLANK_TYPE_SHARE = 0.025, 0.06


def billing_agencies(providers: pl.DataFrame) -> np.ndarray:
    """Indices of the providers that bill for others: the first 50 without the PPS service."""
    return np.flatnonzero(providers["pps_start_date"].is_null().to_numpy())[:50]


def add_provider_types(providers: pl.DataFrame, seed: int, pack: str) -> pl.DataFrame:
    """The `provider_type` column, drawn apart from the other columns (their draws stay as
    they were); two billing agencies have an excluded type. For the CHW pack the second of
    them leaves mid-2024, and a few providers have a second row: an agency that became an
    excluded type mid-year, and others that were one in a span ended in 2023."""
    rng = np.random.default_rng([seed, 23175])
    excluded = list(pack_policy(CHW_PACK)["parameters"]["excluded_provider_types"])
    n = providers.height
    share = (1 - BLANK_TYPE_SHARE - EXCLUDED_TYPE_SHARE * len(excluded)) / sum(
        OTHER_PROVIDER_TYPE_P
    )
    options = [*(share * p for p in OTHER_PROVIDER_TYPE_P)]
    types = rng.choice(
        [*OTHER_PROVIDER_TYPES, *excluded, ""],
        n,
        p=[*options, *[EXCLUDED_TYPE_SHARE] * len(excluded), BLANK_TYPE_SHARE],
    )
    agencies = billing_agencies(providers)
    types[agencies] = rng.choice(
        OTHER_PROVIDER_TYPES, agencies.size, p=_normal(OTHER_PROVIDER_TYPE_P)
    )
    types[agencies[7]], types[agencies[23]] = excluded[0], excluded[-1]
    typed = providers.with_columns(pl.Series("provider_type", types).replace("", None))
    if pack != CHW_PACK:
        return typed
    changed = typed[[int(agencies[11])]]
    formerly = typed[rng.choice(n, max(2, n // 100), replace=False)]
    second_rows = pl.concat(
        [
            changed.with_columns(
                pl.lit(excluded[0]).alias("provider_type"),
                pl.lit(dt.date(2024, 7, 1)).alias("enrollment_start_date"),
            ),
            formerly.with_columns(
                pick(rng, excluded, formerly.height).alias("provider_type"),
                pl.lit(dt.date(2015, 1, 1)).alias("enrollment_start_date"),
                pl.lit(dt.date(2023, 6, 30)).alias("enrollment_end_date"),
            ),
        ]
    )
    mid_year = pl.int_range(n).is_in([int(agencies[11]), int(agencies[23])])
    first_rows = typed.with_columns(
        pl.when(mid_year)
        .then(pl.lit(dt.date(2024, 6, 30)))
        .otherwise("enrollment_end_date")
        .alias("enrollment_end_date")
    )
    return pl.concat([first_rows, second_rows])


def _normal(p: Sequence[float]) -> list[float]:
    return [v / sum(p) for v in p]


def _level_of_care(
    rng: np.random.Generator, members: pl.DataFrame, pps: np.ndarray
) -> pl.DataFrame:
    # about 3% of members have stays on file, children in the program more often than others
    idx = np.concatenate(
        [
            rng.choice(np.flatnonzero(pps), round(members.height * 0.015)),
            rng.choice(np.flatnonzero(~pps), round(members.height * 0.015)),
        ]
    )
    idx = np.concatenate([idx, idx[rng.random(idx.size) < 0.25]])  # some have a second stay
    n = idx.size
    kind = rng.choice(4, n, p=(0.35, 0.25, 0.1, 0.3))
    category = pl.Series(["ACUTE", "RESIDENTIAL", "RESIDENTIAL", "COMMUNITY"]).gather(kind)
    loc_type = pl.Series(["INPATIENT_PSYCH", "PRTF", "RESIDENTIAL_SUD", "CRISIS_STABILIZATION"])
    start = days_between(rng, dt.date(2023, 11, 1), YEAR_END, n)
    length = np.where(kind == 0, rng.integers(1, 22, n), rng.integers(14, 121, n))
    length = np.where(rng.random(n) < 0.05, 0, length)  # a same-day stay covers its one day
    return pl.DataFrame(
        {
            "member_id": members["member_id"].gather(idx),
            "loc_category": category,
            "loc_type": loc_type.gather(kind),
            "start_date": as_dates(start),
            "end_date": as_dates(start + length),
        }
    ).with_columns(blank_where("end_date", rng.random(n) < 0.08))


def _treatment_plans(
    rng: np.random.Generator, members: pl.DataFrame, pps: np.ndarray, providers: pl.DataFrame
) -> pl.DataFrame:
    idx = np.flatnonzero(pps & (rng.random(pps.size) < 0.97))  # PPS008: a few have no plan
    n = idx.size
    start = days_between(rng, dt.date(2023, 1, 1), dt.date(2023, 12, 31), n)
    annual = rng.random(n) < 0.6
    end = start + np.where(annual, 364, 729)
    # most annual plans are renewed, some after a gap without a plan
    renewed = annual & (rng.random(n) < 0.92)
    renew_start = end + np.where(rng.random(n) < 0.7, 1, rng.integers(5, 41, n))
    starts = np.concatenate([start, renew_start[renewed]])
    ends = np.concatenate([end, renew_start[renewed] + 364])
    owners = np.concatenate([idx, idx[renewed]])
    m = owners.size
    r_sign = rng.random(m)
    signed = np.where(
        r_sign < 0.97, starts - rng.integers(0, 21, m), starts + rng.integers(5, 61, m)
    )
    includes = pick(rng, ["Y", "y", "N", None], m, p=(0.95, 0.03, 0.015, 0.005))
    licence = pick(
        rng, [*LICENSED, "QMHP", "CPSS", None], m, p=[0.98 / 11] * 11 + [0.01, 0.005, 0.005]
    )
    return pl.DataFrame(
        {
            "plan_id": "TP" + digits(np.arange(m), 8),
            "member_id": members["member_id"].gather(owners),
            "start_date": as_dates(starts),
            "end_date": as_dates(ends),
            "includes_pps": includes,
            "signed_date": as_dates(signed),
            "practitioner_npi": providers["npi"].gather(rng.integers(0, providers.height, m)),
            "practitioner_license_type": licence,
        }
    ).with_columns(blank_where("signed_date", r_sign >= 0.99))


def _consents(rng: np.random.Generator, members: pl.DataFrame, pps: np.ndarray) -> pl.DataFrame:
    dob = members["date_of_birth"].to_physical().fill_null(day(YEAR_END)).to_numpy()
    # members who are 18 at some point in 2024
    adult = pps & (dob <= day(dt.date(2006, 12, 31)))
    idx = np.flatnonzero(adult)
    n = idx.size
    r = rng.random(n)
    keep = r < 0.91  # 9% of adults never gave written consent
    signed = np.where(
        r < 0.80,
        days_between(rng, dt.date(2022, 6, 1), dt.date(2023, 12, 31), n),
        days_between(rng, dt.date(2024, 2, 1), dt.date(2024, 11, 30), n),
    )
    revoked = np.where(
        (r >= 0.86) & (r < 0.91), days_between(rng, dt.date(2024, 3, 1), YEAR_END, n), -1
    )
    pps_consents = pl.DataFrame(
        {
            "member_id": members["member_id"].gather(idx[keep]),
            "consent_type": pick(rng, ["PPS", "pps"], int(keep.sum()), p=(0.98, 0.02)),
            "signed_date": as_dates(signed[keep]),
            "revoked_date": as_dates(revoked[keep]),
        }
    ).with_columns(blank_where("revoked_date", revoked[keep] < 0))
    others = np.flatnonzero(rng.random(members.height) < 0.1)
    releases = pl.DataFrame(
        {
            "member_id": members["member_id"].gather(others),
            "consent_type": pick(rng, ["ROI", "TELEHEALTH"], others.size),
            "signed_date": as_dates(days_between(rng, dt.date(2022, 1, 1), YEAR_END, others.size)),
            "revoked_date": pl.Series(values=[None] * others.size, dtype=pl.Date),
        }
    )
    return pl.concat([pps_consents, releases])


def _caregivers(rng: np.random.Generator, members: pl.DataFrame, pps: np.ndarray) -> pl.DataFrame:
    has = np.where(pps, True, rng.random(pps.size) < 0.1)
    first = np.flatnonzero(has)
    second = first[rng.random(first.size) < 0.4]
    owners = np.concatenate([first, second])
    n = owners.size
    is_first = np.arange(n) < first.size
    relationship = np.where(
        is_first,
        rng.choice(5, n, p=(0.55, 0.2, 0.1, 0.1, 0.05)),
        rng.choice(5, n, p=(0.1, 0.6, 0.1, 0.15, 0.05)),
    )
    member_dob = members["date_of_birth"].gather(owners)
    known = member_dob.is_not_null().to_numpy()
    born = member_dob.to_physical().fill_null(day(dt.date(2012, 1, 1))).to_numpy().astype(np.int64)
    years = np.where(relationship == 3, rng.integers(40, 61, n), rng.integers(20, 41, n))
    dob = born - np.floor(years * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    start = np.where(known, born, day(dt.date(2015, 1, 1)))
    start = np.where(rng.random(n) < 0.04, days_between(rng, YEAR_START, YEAR_END, n), start)
    end = np.where(rng.random(n) < 0.05, days_between(rng, dt.date(2024, 2, 1), YEAR_END, n), -1)
    medicaid = np.where(rng.random(n) < 0.35, 30_000_000_000 + np.arange(n) * 11, -1)
    # some parents have two children in the program: listed once per child, as one person
    person = np.arange(n)
    shared = rng.choice(first.size, (2, first.size // 40), replace=False)
    person[shared[0]] = shared[1]
    dob, medicaid = dob[person], medicaid[person]
    return pl.DataFrame(
        {
            "caregiver_id": "CG" + digits(person, 8),
            "member_id": members["member_id"].gather(owners),
            "relationship": pl.Series(
                ["MOTHER", "FATHER", "GUARDIAN", "GRANDPARENT", "FOSTER_PARENT"]
            ).gather(relationship),
            "date_of_birth": as_dates(dob),
            "medicaid_id": digits(medicaid, 11),
            "start_date": as_dates(start),
            "end_date": as_dates(end),
        }
    ).with_columns(
        blank_where("date_of_birth", (rng.random(n) < 0.03)[person]),
        blank_where("medicaid_id", medicaid < 0),
        blank_where("end_date", end < 0),
    )


# who bills what -----------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """What claims draw from, read back from the reference frames (so --one-day can too)."""

    member_ids: pl.Series
    pps_members: np.ndarray  # indices of the children whose parents get the service
    caregiver_medicaid: pl.Series  # a caregiver's Medicaid ID per member, aligned, or null
    enrollment: pl.DataFrame  # member_id, payer, start_date (blank start = long ago)
    first_payer: pl.DataFrame  # member_id, payer of the earliest span
    npis: pl.Series
    pps_npis: np.ndarray  # indices of providers that added Parent Peer Support
    agencies: np.ndarray  # indices of billing agencies
    unknown_npis: pl.Series  # valid NPIs that are not in the provider file


def world_from_reference(ref: dict) -> World:
    members = ref["members"]["member_id"]
    if "pps" in ref["members"].columns:
        pps = ref["members"]["pps"].to_numpy()
    else:  # read back from files: the members with a treatment plan
        pps = members.is_in(ref["treatment_plans"]["member_id"].implode()).to_numpy()
    medicaid = (
        members.to_frame()
        .join(
            ref["caregivers"]
            .filter(pl.col("medicaid_id").is_not_null())
            .group_by("member_id")
            .agg(pl.col("medicaid_id").min()),
            on="member_id",
            how="left",
            maintain_order="left",
        )
        .get_column("medicaid_id")
    )
    enrollment = ref["enrollment"].select(
        "member_id", "payer", pl.col("start_date").fill_null(dt.date(1900, 1, 1))
    )
    providers = ref["providers"]
    pps_npi = providers["pps_start_date"].is_not_null().to_numpy()
    return World(
        member_ids=members,
        pps_members=np.flatnonzero(pps),
        caregiver_medicaid=medicaid,
        enrollment=enrollment.sort("start_date"),
        first_payer=enrollment.sort("start_date")
        .group_by("member_id")
        .agg(pl.col("payer").first()),
        npis=providers["npi"],
        pps_npis=np.flatnonzero(pps_npi),
        agencies=billing_agencies(providers),
        unknown_npis=luhn_npis(np.arange(300_000_000, 300_000_040)),
    )


def payer_on(
    rng: np.random.Generator, world: World, member_id: pl.Series, dos: pl.Series
) -> pl.Series:
    """The MCO the member is enrolled with on the DOS (the span that started last before it)."""
    keyed = pl.DataFrame({"member_id": member_id, "dos": dos}).with_row_index("row").sort("dos")
    found = (
        keyed.join_asof(
            world.enrollment,
            left_on="dos",
            right_on="start_date",
            by="member_id",
            strategy="backward",
            check_sortedness=False,
        )
        .join(world.first_payer.rename({"payer": "first"}), on="member_id", how="left")
        .sort("row")
    )
    anyone = pick(rng, MCOS, found.height, p=MCO_SHARE)
    return found["payer"].fill_null(found["first"]).fill_null(anyone)


# claims ---------------------------------------------------------------------------------------

MODIFIERS = pl.Series([None, "HQ", "HA", "UK", "GT", "95", "U1"], dtype=pl.String)
# a void (8) or replacement (7), naming the original claim (0) or the previous correction (1)
SCENARIOS = (
    ((8, 0),),
    ((7, 0),),
    ((7, 0), (7, 1)),
    ((7, 0), (7, 0)),  # the second names a version that is already superseded
    ((7, 0), (8, 1)),
    ((8, 0), (7, 0)),  # voided, then revived by a later replacement
)
SCENARIO_P = (0.35, 0.42, 0.08, 0.05, 0.05, 0.05)


def h0038_services(
    rng: np.random.Generator, world: World, n: int, first_dos: int, last_dos: int
) -> pl.DataFrame:
    """One row per H0038 service: group sessions of 2 to 10 members, then individual lines."""
    mean_size = float((SESSION_SIZES * SESSION_SIZE_P).sum())
    n_sessions = max(1, round(n * GROUP_SHARE / mean_size))
    sizes = rng.choice(SESSION_SIZES, n_sessions, p=SESSION_SIZE_P)
    session = np.repeat(np.arange(n_sessions), sizes)
    n_group, n_single = session.size, max(0, n - session.size)
    pps_npis, pps_members = world.pps_npis, world.pps_members
    s_npi = np.where(
        rng.random(n_sessions) < 0.95,
        rng.choice(pps_npis, n_sessions),
        rng.integers(0, world.npis.len(), n_sessions),
    )
    # most MCOs know the session; a blank session_id is one value per provider, DOS and place
    s_named = rng.random(n_sessions) < 0.8
    s_hq_second = rng.random(n_sessions) < 0.15
    single_member = np.where(
        rng.random(n_single) < 0.97,
        pps_members[rng.integers(0, pps_members.size, n_single)],
        rng.integers(0, world.member_ids.len(), n_single),
    )
    r = rng.random(n_single)
    single_npi = np.where(
        r < 0.85,
        pps_npis[single_member % pps_npis.size],  # the member's usual peer provider
        np.where(
            r < 0.98,
            rng.choice(pps_npis, n_single),
            rng.integers(0, world.npis.len(), n_single),
        ),
    )
    member = np.concatenate(
        [pps_members[rng.integers(0, pps_members.size, n_group)], single_member]
    )
    npi = np.concatenate([s_npi[session], single_npi])
    dos = np.concatenate(
        [
            rng.integers(first_dos, last_dos + 1, n_sessions)[session],
            rng.integers(first_dos, last_dos + 1, n_single),
        ]
    )
    pos = np.concatenate(
        [
            rng.choice(len(POS), n_sessions, p=POS_P)[session],
            rng.choice(len(POS), n_single, p=POS_P),
        ]
    )
    units = np.concatenate([rng.integers(2, 9, n_sessions)[session], rng.integers(1, 9, n_single)])
    session_no = np.concatenate(
        [
            np.where(s_named, rng.integers(10_000_000, 99_999_999, n_sessions), -1)[session],
            np.full(n_single, -1),
        ]
    )
    # group lines carry HQ first, or second after HA; single lines mostly no modifier
    mod1 = np.concatenate(
        [np.where(s_hq_second[session], 2, 1), rng.choice(4, n_single, p=(0.85, 0, 0.1, 0.05))]
    )
    mod2 = np.concatenate([np.where(s_hq_second[session], 1, 0), np.zeros(n_single, np.int64)])
    size = member.size
    r = rng.random(size)
    parent = world.caregiver_medicaid.gather(member)
    nobody = digits(40_000_000_000 + rng.integers(0, 999_999_999, size), 11)
    return pl.DataFrame(
        {
            "member_id": world.member_ids.gather(member),
            "peer_npi": world.npis.gather(npi),
            "dos": as_dates(dos),
            "place_of_service_code": pl.Series(POS).gather(pos),
            "session_id": digits(session_no, 8),
            "units": units,
            "hcpcs_modifier_1": MODIFIERS.gather(mod1),
            "hcpcs_modifier_2": MODIFIERS.gather(mod2),
            "hcpcs_modifier_3": pl.Series(values=[None] * size, dtype=pl.String),
            "hcpcs_modifier_4": pl.Series(values=[None] * size, dtype=pl.String),
            "hcpcs_code": pick(
                rng, ["H0038", "h0038", " H0038", "H0038 "], size, (0.994, 0.002, 0.002, 0.002)
            ),
        }
    ).with_columns(
        pl.when(pl.Series(session_no >= 0)).then("GS" + pl.col("session_id")).alias("session_id"),
        # PPS007: billed under the parent's Medicaid ID, or under an ID that is nobody's
        pl.when(pl.Series(r < 0.004) & parent.is_not_null())
        .then(parent)
        .when(pl.Series(r < 0.005))
        .then(nobody)
        .otherwise(pl.col("member_id"))
        .alias("member_id"),
        # PPS004/PPS005: a peer provider that is not in the provider file
        pl.when(pl.Series(rng.random(size) < 0.002))
        .then(world.unknown_npis.gather(rng.integers(0, world.unknown_npis.len(), size)))
        .otherwise(pl.col("peer_npi"))
        .alias("peer_npi"),
    )


# CHW lines: 98960 individual, 98961 2-4 patients, 98962 5-8 patients (the pack's codes, in
# that order), billed in 30-minute units; made-up rates per unit
CHW_CODE_P = (0.75, 0.18, 0.07)
CHW_RATES = {"98960": 22.64, "98961": 10.88, "98962": 8.08}
CHW_UNITS = np.arange(1, 7)
CHW_UNITS_P = (0.31, 0.4, 0.16, 0.124, 0.004, 0.002)
# face-to-face places of service; the pack's telehealth places take TELEHEALTH_POS_SHARE
CHW_POS = ("11", "12", "99", "22", "03")
CHW_POS_P = (0.4, 0.25, 0.15, 0.12, 0.08)
TELEHEALTH_POS_SHARE = 0.02
# a second visit on the same day from another provider, at the daily limit 40% of the time
SAME_DAY_SHARE, AT_DAILY_LIMIT = 0.03, 0.4
# lines of members seen 8 to 13 times in one calendar month (about the monthly limit)
INTENSIVE_SHARE, INTENSIVE_VISITS = 0.05, (8, 13)


def chw_services(
    rng: np.random.Generator,
    world: World,
    n: int,
    first_dos: int,
    last_dos: int,
    parameters: dict[str, Any],
) -> pl.DataFrame:
    """One row per Community Health Worker line: members seen now and then, a second visit on
    some days, and a few members seen 8 to 13 times in one month."""
    intensive_member, intensive_dos = intensive_months(rng, world, n, first_dos, last_dos)
    n_second = round(n * SAME_DAY_SHARE)
    n_first = max(1, n - intensive_member.size - n_second)
    member = np.concatenate([rng.integers(0, world.member_ids.len(), n_first), intensive_member])
    # most members see their usual provider
    npi = np.where(
        rng.random(member.size) < 0.85,
        (member * 7919) % world.npis.len(),
        rng.integers(0, world.npis.len(), member.size),
    )
    dos = np.concatenate([rng.integers(first_dos, last_dos + 1, n_first), intensive_dos])
    units = rng.choice(CHW_UNITS, member.size, p=CHW_UNITS_P)
    first = rng.choice(member.size, n_second)
    second_units = np.where(
        rng.random(n_second) < AT_DAILY_LIMIT,
        np.maximum(1, parameters["daily_unit_limit"] - units[first]),
        rng.choice(CHW_UNITS, n_second, p=CHW_UNITS_P),
    )
    member = np.concatenate([member, member[first]])
    npi = np.concatenate([npi, rng.integers(0, world.npis.len(), n_second)])
    dos = np.concatenate([dos, dos[first]])
    units = np.concatenate([units, second_units])
    size = member.size
    telehealth_pos = list(parameters["telehealth_places_of_service"])
    pos_p = [p * (1 - TELEHEALTH_POS_SHARE) for p in CHW_POS_P]
    pos_p += [TELEHEALTH_POS_SHARE / len(telehealth_pos)] * len(telehealth_pos)
    codes = pick(rng, parameters["codes"], size, CHW_CODE_P)
    padded = rng.random(size)
    return pl.DataFrame(
        {
            "member_id": world.member_ids.gather(member),
            "peer_npi": world.npis.gather(npi),
            "dos": as_dates(dos),
            "place_of_service_code": pick(rng, [*CHW_POS, *telehealth_pos], size, pos_p),
            "session_id": pl.Series(values=[None] * size, dtype=pl.String),
            "units": units,
            **chw_modifiers(rng, size, parameters),
            "hcpcs_code": codes,
        }
    ).with_columns(
        # a few codes padded with a blank
        pl.when(pl.Series(padded < 0.002))
        .then(" " + pl.col("hcpcs_code"))
        .when(pl.Series(padded < 0.004))
        .then(pl.col("hcpcs_code") + " ")
        .otherwise("hcpcs_code")
        .alias("hcpcs_code"),
        # a supervising provider that is not in the provider file
        pl.when(pl.Series(rng.random(size) < 0.002))
        .then(world.unknown_npis.gather(rng.integers(0, world.unknown_npis.len(), size)))
        .otherwise(pl.col("peer_npi"))
        .alias("peer_npi"),
    )


def intensive_months(
    rng: np.random.Generator, world: World, n: int, first_dos: int, last_dos: int
) -> tuple[np.ndarray, np.ndarray]:
    """Members seen 8 to 13 times in one calendar month (at least one such month): each
    visit's member index and DOS, within first_dos..last_dos."""
    months = max(1, round(n * INTENSIVE_SHARE / np.mean(INTENSIVE_VISITS)))
    visits = rng.integers(INTENSIVE_VISITS[0], INTENSIVE_VISITS[1] + 1, months)
    anchor = rng.integers(first_dos, last_dos + 1, months).astype("datetime64[D]")
    month_start = anchor.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    month_days = (anchor.astype("datetime64[M]") + 1).astype("datetime64[D]").astype(
        np.int64
    ) - month_start
    owner = np.repeat(np.arange(months), visits)
    dos = month_start[owner] + (rng.random(owner.size) * month_days[owner]).astype(np.int64)
    member = rng.choice(world.member_ids.len(), months)[owner]
    return member, np.clip(dos, first_dos, last_dos)


def chw_modifiers(
    rng: np.random.Generator, size: int, parameters: dict[str, Any]
) -> dict[str, pl.Series]:
    """The four modifier positions: the required modifier first on most lines, or after other
    modifiers in position 2, 3 or 4, or missing (CHW002); a telehealth modifier (CHW006) or
    HQ (a near miss) after it on a few."""
    r = rng.random(size)
    position = np.select([r < 0.93, r < 0.95, r < 0.965, r < 0.975], [1, 2, 3, 4], 0)
    markers = list(parameters["telehealth_modifiers"])
    frame = pl.DataFrame(
        {
            "position": position,
            "before": pick(rng, ["HA", "UK", "U1"], size),
            "after": pick(
                rng,
                [None, *markers, "HQ"],
                size,
                [0.975] + [0.015 / len(markers)] * len(markers) + [0.01],
            ),
            "instead": pick(rng, [None, "U1", "HA"], size, (0.6, 0.2, 0.2)),
        }
    )
    required = pl.lit(parameters["required_modifier"])
    at = pl.col("position")
    columns = {}
    for k in range(1, 5):
        value = pl.when(at == k).then(required).when(at > k).then("before")
        if k == 1:
            value = value.when(at == 0).then("instead")
        if k == 2:
            value = value.when(at == 1).then("after")
        columns[f"hcpcs_modifier_{k}"] = frame.select(value.otherwise(None).alias("m"))["m"]
    return columns


def late_service_days(rng: np.random.Generator, pack: str, n: int) -> np.ndarray:
    """Dates of service of lines billed long after the service, about the policy's effective
    date: for H0038 the year before it; otherwise half a year either side, a tenth on it."""
    effective = day(pack_policy(pack)["parameters"]["effective_date"])
    if pack == H0038_PACK:
        return rng.integers(effective - 365, effective, n)
    around = rng.integers(effective - 182, effective + 183, n)
    return np.where(rng.random(n) < 0.1, effective, around)


def _other_lines(
    rng: np.random.Generator, world: World, n: int, first_dos: int, last_dos: int
) -> pl.DataFrame:
    """Claims of other codes, one to four lines each."""
    if n <= 0:
        return pl.DataFrame()
    # n draws of at least one line each always cover n lines; the last claim is trimmed to fit
    counts = rng.choice(4, n, p=(0.5, 0.25, 0.15, 0.1)) + 1
    cut = int(np.searchsorted(np.cumsum(counts), n)) + 1
    counts = counts[:cut]
    counts[-1] -= int(counts.sum()) - n
    claims = counts.size
    claim = np.repeat(np.arange(claims), counts)
    position = np.arange(claim.size) - np.repeat(np.cumsum(counts) - counts, counts)
    size = claim.size
    c_dos = rng.integers(first_dos, last_dos + 1, claims)
    return pl.DataFrame(
        {
            "claim": claim,
            "position": position,
            "member_id": world.member_ids.gather(
                rng.integers(0, world.member_ids.len(), claims)[claim]
            ),
            "peer_npi": world.npis.gather(rng.integers(0, world.npis.len(), claims)[claim]),
            "dos": as_dates(c_dos[claim] + np.where(position > 0, rng.integers(0, 3, size), 0)),
            "place_of_service_code": pl.Series(POS).gather(rng.choice(len(POS), size, p=POS_P)),
            "session_id": pl.Series(values=[None] * size, dtype=pl.String),
            "units": rng.integers(1, 5, size),
            "hcpcs_modifier_1": MODIFIERS.gather(
                rng.choice(7, size, p=(0.9, 0.02, 0.02, 0.01, 0.02, 0.02, 0.01))
            ),
            "hcpcs_modifier_2": pl.Series(values=[None] * size, dtype=pl.String),
            "hcpcs_modifier_3": pl.Series(values=[None] * size, dtype=pl.String),
            "hcpcs_modifier_4": pl.Series(values=[None] * size, dtype=pl.String),
            "hcpcs_code": pick(rng, OTHER_CODES, size),
        }
    )


def make_claims(
    rng: np.random.Generator,
    world: World,
    n_lines: int,
    first_dos: int,
    last_dos: int,
    next_ids: dict[str, int],
    profile: Profile,
    *,
    paid_on: int | None = None,
    old_dos_share: float = 0.0,
) -> pl.DataFrame:
    """About `n_lines` original claim lines, the profile's share of them the pack's; claim IDs
    continue from `next_ids`."""
    n_services = max(1, round(n_lines * profile.in_scope_share / 1.02))
    if profile.pack == CHW_PACK:
        services = chw_services(
            rng, world, n_services, first_dos, last_dos,
            {**profile.parameters, "codes": profile.codes},
        )  # fmt: skip
    else:
        services = h0038_services(rng, world, n_services, first_dos, last_dos)
    n = services.height
    late_bills = as_dates(late_service_days(rng, profile.pack, n))
    services = services.with_columns(
        # PPS001, CHW001: a few dates of service about the policy's effective date
        pl.when(pl.Series(rng.random(n) < old_dos_share))
        .then(late_bills)
        .otherwise("dos")
        .alias("dos"),
        pl.lit(0).alias("position"),
        pl.int_range(n, dtype=pl.Int64).alias("claim"),
        pl.int_range(n, dtype=pl.Int64).alias("source"),
    )
    # GEN001: a service billed again on another claim, its modifiers possibly reordered
    copies = services[rng.choice(n, round(n * 0.015), replace=False)]
    swap = pl.col("hcpcs_modifier_2").is_not_null() & pl.Series(rng.random(copies.height) < 0.5)
    copies = copies.with_columns(
        pl.int_range(n, n + copies.height, dtype=pl.Int64).alias("claim"),
        pl.when(swap)
        .then("hcpcs_modifier_2")
        .otherwise("hcpcs_modifier_1")
        .alias("hcpcs_modifier_1"),
        pl.when(swap)
        .then("hcpcs_modifier_1")
        .otherwise("hcpcs_modifier_2")
        .alias("hcpcs_modifier_2"),
    )
    # the same service twice on one claim is not a duplicate under GEN001
    repeats = services[rng.choice(n, round(n * 0.002), replace=False)].with_columns(
        pl.lit(1).alias("position")
    )
    h0038 = pl.concat([services, copies, repeats])
    n_claims = n + copies.height
    # a visit billed with another service: the other service takes line 1 (fewer of them
    # where the extract is mostly the pack's lines)
    share = profile.in_scope_share
    companion_share = min(0.15, 0.5 * (1 - share) / share)
    companions = h0038.filter(
        (pl.col("position") == 0) & pl.Series(rng.random(h0038.height) < companion_share)
    ).with_columns(
        pl.lit(-1).alias("position"),
        pl.lit(None, pl.String).alias("session_id"),
        *[pl.lit(None, pl.String).alias(f"hcpcs_modifier_{k}") for k in range(1, 5)],
    )
    companions = companions.with_columns(
        pick(rng, OTHER_CODES, companions.height).alias("hcpcs_code")
    )
    parts = [h0038, companions]
    other = _other_lines(
        rng, world, n_lines - h0038.height - companions.height, first_dos, last_dos
    )
    if other.height:
        parts.append(
            other.with_columns(
                (pl.col("claim") + n_claims).alias("claim"),
                (pl.col("claim") + n_claims).alias("source"),
            ).select(h0038.columns)
        )
    lines = pl.concat(parts, how="vertical_relaxed")
    headers = _claim_headers(rng, lines, world, n, next_ids, paid_on)
    return _finish_lines(rng, world, lines.join(headers, on="claim").sort("claim", "position"))


def _claim_headers(
    rng: np.random.Generator,
    lines: pl.DataFrame,
    world: World,
    n_services: int,
    next_ids: dict[str, int],
    paid_on: int | None,
) -> pl.DataFrame:
    """Claim-level values: paying MCO, paid date, claim ID, frequency code."""
    heads = lines.filter(pl.col("position") == 0).select("claim", "source", "member_id", "dos")
    heads = heads.sort("claim")
    size = heads.height
    payer = payer_on(rng, world, heads["member_id"], heads["dos"])
    copy = (heads["claim"] != heads["source"]).to_numpy()
    # GEN002: some copies and a few claims are paid by an MCO the member is not enrolled with
    moved = (copy & (rng.random(size) < 0.15)) | (rng.random(size) < 0.005)
    mco_index = payer.replace_strict({m: i for i, m in enumerate(MCOS)}).to_numpy()
    payer = pl.Series(list(MCOS)).gather(
        np.where(moved, (mco_index + rng.integers(1, len(MCOS), size)) % len(MCOS), mco_index)
    )
    paid = heads["dos"].to_physical().to_numpy().astype(np.int64) + rng.integers(14, 76, size)
    source = heads["source"].to_numpy()
    # a copy is paid a little before or after the claim it copies
    paid = np.where(copy, paid[source] + rng.integers(-10, 21, size), paid)
    if paid_on is not None:
        paid[:] = paid_on
    orphan = (heads["claim"].to_numpy() < n_services) & (rng.random(size) < 0.0005)
    headers = (
        pl.DataFrame({"claim": heads["claim"], "payer": payer, "paid_date": as_dates(paid)})
        .sort("paid_date", "claim")
        .with_columns(
            (pl.int_range(pl.len()).over("payer") + pl.col("payer").replace_strict(next_ids)).alias(
                "sequence"
            )
        )
    )
    _advance(next_ids, headers)
    orphans = heads.select("claim").with_columns(
        pl.Series("orphan", orphan),
        # a replacement whose original was paid before this extract began
        ("9" + digits(rng.integers(0, 10**11, size), 11)).alias("unseen"),
    )
    return headers.join(orphans, on="claim").select(
        "claim",
        "payer",
        "paid_date",
        pl.col("sequence").cast(pl.String).str.zfill(12).alias("claim_id"),
        pl.when("orphan").then(pl.lit("7")).otherwise(pl.lit("1")).alias("claim_frequency_code"),
        pl.when("orphan").then("unseen").alias("original_claim_id"),
    )


def _advance(next_ids: dict[str, int], headers: pl.DataFrame) -> None:
    for payer, last in headers.group_by("payer").agg(pl.col("sequence").max()).iter_rows():
        next_ids[payer] = max(next_ids.get(payer, 1), int(last) + 1)


def _finish_lines(rng: np.random.Generator, world: World, lines: pl.DataFrame) -> pl.DataFrame:
    """Line numbers, billing and rendering NPIs, end dates and paid amounts."""
    size = lines.height
    r_end = rng.random(size)
    end = (
        pl.when(pl.Series(r_end < 0.95))
        .then(pl.col("dos"))
        .when(pl.Series(r_end < 0.98))
        .then(None)  # a blank end date means the start date
        .otherwise(pl.col("dos") + pl.duration(days=pl.Series(rng.integers(1, 4, size))))
    )
    agency = world.npis.gather(world.agencies[lines["claim"].to_numpy() % world.agencies.size])
    rendered = pl.Series(rng.random(size) < 0.9)
    code = pl.col("hcpcs_code").str.strip_chars().str.to_uppercase()
    h0038 = code == "H0038"
    group = (pl.col("hcpcs_modifier_1") == "HQ") | (pl.col("hcpcs_modifier_2") == "HQ")
    rate = (
        pl.when(h0038 & group.fill_null(False))
        .then(3.24)
        .when(h0038)
        .then(10.81)
        .otherwise(code.replace_strict({**OTHER_RATES, **CHW_RATES}, default=50.0))
    )
    return (
        lines.sort("claim", "position")
        .with_columns(
            (pl.int_range(pl.len()).over("claim") + 1).alias("claim_line_number"),
            pl.when(rendered).then(pl.col("peer_npi")).alias("rendering_npi"),
            pl.when(rendered).then(agency).otherwise(pl.col("peer_npi")).alias("billing_npi"),
            end.alias("claim_line_end_date"),
            pl.when(pl.Series(rng.random(size) < 0.003))
            .then(0.0)  # zero-paid lines are still in scope
            .otherwise((pl.col("units") * rate).round(2))
            .alias("paid_amount"),
        )
        .select(
            "payer",
            "claim_id",
            "claim_line_number",
            "claim_frequency_code",
            "original_claim_id",
            "member_id",
            "rendering_npi",
            "billing_npi",
            "hcpcs_code",
            "hcpcs_modifier_1",
            "hcpcs_modifier_2",
            "hcpcs_modifier_3",
            "hcpcs_modifier_4",
            pl.col("dos").alias("claim_line_start_date"),
            "claim_line_end_date",
            "place_of_service_code",
            pl.col("units").cast(pl.Int64).alias("service_unit_quantity"),
            "paid_amount",
            "paid_date",
            "session_id",
            pl.lit(0, pl.Int8).alias("defect"),
        )
    )


def make_corrections(
    rng: np.random.Generator,
    lines: pl.DataFrame,
    targets: pl.DataFrame,
    next_ids: dict[str, int],
    *,
    paid_on: int | None = None,
    scenario_p: Sequence[float] = SCENARIO_P,
) -> pl.DataFrame:
    """Voids and replacements of the `targets` claims (payer, claim_id, paid_date)."""
    n = targets.height
    if n == 0:
        return lines.clear()
    scenario = rng.choice(len(SCENARIOS), n, p=scenario_p)
    steps = np.array([len(s) for s in SCENARIOS])[scenario]
    target = np.repeat(np.arange(n), steps)
    step = np.arange(target.size) - np.repeat(np.cumsum(steps) - steps, steps)
    frequency = np.array([[s[min(i, len(s) - 1)][0] for i in range(2)] for s in SCENARIOS])
    names_previous = np.array([[s[min(i, len(s) - 1)][1] for i in range(2)] for s in SCENARIOS])
    lag = rng.integers(3, 41, target.size)
    base = targets["paid_date"].to_physical().to_numpy().astype(np.int64)[target]
    # each correction of a chain is paid after the one before it
    paid = base + lag + np.where(step == 1, np.roll(lag, 1), 0)
    if paid_on is not None:
        paid[:] = paid_on
    corrections = (
        pl.DataFrame(
            {
                "payer": targets["payer"].gather(target),
                "target_id": targets["claim_id"].gather(target),
                "step": step,
                "claim_frequency_code": frequency[scenario[target], step].astype(str),
                "names_previous": names_previous[scenario[target], step] == 1,
                "paid_date": as_dates(paid),
                "trim_last": np.repeat(rng.random(n) < 0.1, steps),
            }
        )
        .sort("paid_date", "target_id", "step")
        .with_columns(
            (pl.int_range(pl.len()).over("payer") + pl.col("payer").replace_strict(next_ids)).alias(
                "sequence"
            )
        )
    )
    _advance(next_ids, corrections)
    corrections = corrections.with_columns(
        pl.col("sequence").cast(pl.String).str.zfill(12).alias("claim_id")
    ).with_columns(
        pl.when("names_previous")
        .then(pl.col("claim_id").shift(1).over("payer", "target_id"))
        .otherwise("target_id")
        .alias("original_claim_id")
    )
    copied = lines.drop("claim_frequency_code", "original_claim_id", "paid_date").join(
        corrections.select(
            "payer",
            pl.col("target_id").alias("claim_id"),
            pl.col("claim_id").alias("new_id"),
            "claim_frequency_code",
            "original_claim_id",
            "paid_date",
            "trim_last",
        ),
        on=["payer", "claim_id"],
        maintain_order="left",
    )
    replacement = pl.col("claim_frequency_code") == "7"
    bumped = replacement & pl.Series(rng.random(copied.height) < 0.3)
    units = pl.col("service_unit_quantity")
    new_units = pl.when(bumped).then(units + 1).otherwise(units)
    last_line = pl.col("claim_line_number") == pl.col("claim_line_number").max().over(
        "payer", "new_id"
    )
    return (
        copied.with_columns(
            new_units.alias("service_unit_quantity"),
            pl.when(~replacement)
            .then(-pl.col("paid_amount"))  # a void pays the claim back
            .when(bumped)
            .then((pl.col("paid_amount") * new_units / units).round(2))
            .otherwise("paid_amount")
            .alias("paid_amount"),
        )
        # some replacements drop their last line
        .filter(
            ~(replacement & pl.col("trim_last") & last_line & (pl.col("claim_line_number") > 1))
        )
        .with_columns(pl.col("new_id").alias("claim_id"))
        .select(lines.columns)
    )


# record reviews and planted edges --------------------------------------------------------------


def is_h0038(column: str = "hcpcs_code") -> pl.Expr:
    return is_in_scope(pack_policy(H0038_PACK)["pack"]["codes"], column)


def service_participants(
    rng: np.random.Generator, lines: pl.DataFrame, caregivers: pl.DataFrame
) -> pl.DataFrame:
    """Record reviews of about 4% of H0038 lines: who took part, and whether it was documented."""
    reviewed = lines.filter(is_h0038()).select(
        "payer", "claim_id", "claim_line_number", "member_id"
    )
    reviewed = reviewed.filter(pl.Series(rng.random(reviewed.height) < 0.04))
    own = caregivers.group_by("member_id").agg(
        pl.col("caregiver_id").min().alias("first"), pl.col("caregiver_id").max().alias("second")
    )
    reviewed = reviewed.join(own, on="member_id", how="left", maintain_order="left")
    n = reviewed.height
    who = rng.choice(4, n, p=(0.6, 0.1, 0.1, 0.2))
    unknown = "CG9" + digits(rng.integers(0, 9_999_999, n), 7)  # not in the caregiver file
    rows = reviewed.select(
        "payer",
        "claim_id",
        "claim_line_number",
        pl.when(pl.Series(who == 0))
        .then("first")
        .when(pl.Series(who == 1))
        .then("second")
        .when(pl.Series(who == 2))
        .then(unknown)
        .alias("caregiver_id"),
        pick(rng, ["Y", "y", "N"], n, (0.32, 0.03, 0.65)).alias("non_medicaid_participant"),
        pick(rng, ["Y", "N", None], n, (0.55, 0.3, 0.15)).alias("direct_benefit_documented"),
    )
    # a second participant on some lines: a sibling or a family friend, named or not
    extra = rows.filter(pl.Series(rng.random(n) < 0.1))
    extra = extra.with_columns(
        pl.lit(None, pl.String).alias("caregiver_id"),
        pick(rng, ["Y", "N"], extra.height, (0.6, 0.4)).alias("non_medicaid_participant"),
        pick(rng, ["Y", "N", None], extra.height, (0.5, 0.3, 0.2)).alias(
            "direct_benefit_documented"
        ),
    )
    return pl.concat([rows, extra])


def plant_age_gap_edges(
    rng: np.random.Generator, lines: pl.DataFrame, providers: pl.DataFrame, caregivers: pl.DataFrame
) -> pl.DataFrame:
    """Caregivers born exactly 3 years, or 3 years less a day, apart from a line's peer provider."""
    peers = providers.filter(pl.col("date_of_birth").is_not_null()).select(
        pl.col("npi").alias("peer"), pl.col("date_of_birth").alias("peer_dob")
    )
    firsts = caregivers.group_by("member_id").agg(pl.col("caregiver_id").min())
    edges = (
        lines.filter(is_h0038())
        .select("member_id", pl.coalesce("rendering_npi", "billing_npi").alias("peer"))
        .join(peers, on="peer", maintain_order="left")
        .join(firsts, on="member_id", maintain_order="left")
        .unique("caregiver_id", keep="first", maintain_order=True)
    )
    edges = edges[rng.choice(edges.height, min(60, edges.height), replace=False)]
    n = edges.height
    older = pl.Series(rng.random(n) < 0.5)
    exact = pl.Series(rng.random(n) < 0.5)
    three_years = (
        pl.when(older)
        .then(pl.col("peer_dob").dt.offset_by("-3y"))
        .otherwise(pl.col("peer_dob").dt.offset_by("3y"))
    )
    one_day = pl.when(older).then(pl.duration(days=1)).otherwise(pl.duration(days=-1))
    moved = edges.select(
        "caregiver_id",
        pl.when(exact).then(three_years).otherwise(three_years + one_day).alias("new_dob"),
    )
    return (
        caregivers.join(moved, on="caregiver_id", how="left", maintain_order="left")
        .with_columns(pl.coalesce("new_dob", "date_of_birth").alias("date_of_birth"))
        .drop("new_dob")
    )


# files --------------------------------------------------------------------------------------


def write_reference(input_dir: Path, ref: dict) -> None:
    folder = input_dir / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in ref.items():
        frame.drop("pps", strict=False).write_csv(folder / f"{name}.csv", date_format=ISO)


class ClaimFiles:
    """Claim files per MCO, appended chunk by chunk: `days` files per MCO, each holding a run of
    paid dates and named by the last one, so that names sort in delivery order."""

    def __init__(self, input_dir: Path, days: int = 1, name: str | None = None) -> None:
        self.input_dir, self.name = input_dir, name
        # paid dates of the year's claims run from mid-January 2024 into mid-2025
        self.edges = np.linspace(day(dt.date(2024, 1, 15)), day(dt.date(2025, 7, 1)), days + 1)
        self.last_paid: dict[Path, int] = {}

    def append(self, lines: pl.DataFrame) -> None:
        for payer in MCOS:
            part = lines.filter(pl.col("payer") == payer)
            if part.height == 0:
                continue
            paid = part["paid_date"].to_physical().to_numpy()
            bucket = np.searchsorted(self.edges[1:-1], paid, side="right")
            fmt = CLAIM_DATE_FORMAT.get(payer, ISO)
            text = (
                part.with_columns(pl.Series("bucket", bucket))
                .sort("bucket", "paid_date", "claim_id", "claim_line_number")
                .with_columns([pl.col(c).dt.to_string(fmt) for c in CLAIM_DATES])
                .with_columns(
                    # rows the audit must quarantine: a blank key value, a date that is no date
                    pl.when(pl.col("defect") == 1)
                    .then(None)
                    .otherwise("member_id")
                    .alias("member_id"),
                    pl.when(pl.col("defect") == 2)
                    .then(pl.lit("2024-02-30"))
                    .otherwise("claim_line_start_date")
                    .alias("claim_line_start_date"),
                )
            )
            folder = self.input_dir / "claims" / payer
            folder.mkdir(parents=True, exist_ok=True)
            for (number,), rows in text.group_by("bucket", maintain_order=True):
                # hidden until finished: the audit skips dot files
                path = folder / f".{payer}_{number:04d}.part"
                with path.open("ab") as handle:
                    rows.select(CLAIM_COLUMNS).write_csv(
                        handle, include_header=path not in self.last_paid, float_precision=2
                    )
                last = int(paid[bucket == number].max())
                self.last_paid[path] = max(self.last_paid.get(path, last), last)

    def finish(self) -> list[Path]:
        written = []
        for path, last in sorted(self.last_paid.items()):
            label = self.name or (EPOCH + dt.timedelta(days=last)).isoformat()
            payer = path.parent.name
            final = path.with_name(f"{payer}_{label}.csv")
            path.rename(final)
            written.append(final)
        return written


def _correction_targets(
    rng: np.random.Generator, lines: pl.DataFrame, share: float, codes: Sequence[str]
) -> pl.DataFrame:
    """About `share` of the claims, the pack's claims more often than others."""
    claims = (
        lines.group_by("payer", "claim_id", maintain_order=True)
        .agg(
            pl.col("paid_date").first(),
            is_in_scope(codes).any().alias("in_scope"),
            (pl.col("claim_frequency_code") == "1").all().alias("original"),
        )
        .filter("original")
    )
    # in the mixed profile 10% of claims carry the pack's codes
    weight = np.where(claims["in_scope"].to_numpy(), 3.0, 0.78)
    chosen = rng.random(claims.height) < share * weight
    return claims.filter(pl.Series(chosen)).select("payer", "claim_id", "paid_date")


def generate(
    input_dir: Path,
    lines: int = 1_000_000,
    seed: int = 7,
    days: int = 1,
    profile: Profile = Profile(),
) -> Stats:
    """A whole input folder with about `lines` claim lines, made a million lines at a time."""
    if any((input_dir / "claims").glob("*/*")):
        raise SystemExit(f"{input_dir} already holds claim files; use --one-day to add a day")
    rng = np.random.default_rng(seed)
    ref = build_reference(rng, max(500, lines // 20), 2000)
    ref["providers"] = add_provider_types(ref["providers"], seed, profile.pack)
    world = world_from_reference(ref)
    next_ids = dict.fromkeys(MCOS, 1)  # claim IDs are unique only within an MCO
    files = ClaimFiles(input_dir, days)
    chunks = max(1, math.ceil(lines / CHUNK_LINES))
    # each chunk holds a run of dates of service, so group sessions and copies stay inside it
    bounds = np.linspace(day(YEAR_START), day(YEAR_END) + 1, chunks + 1).round().astype(int)
    participants, edge_pool = [], []
    total = pack_lines = last_paid = 0
    for chunk in range(chunks):
        # corrections add about 2.7% more lines
        claims = make_claims(
            rng, world, round(lines / 1.027 / chunks), int(bounds[chunk]),
            int(bounds[chunk + 1]) - 1, next_ids, profile, old_dos_share=0.003,
        )  # fmt: skip
        targets = _correction_targets(rng, claims, 0.02, profile.codes)
        every = pl.concat([claims, make_corrections(rng, claims, targets, next_ids)])
        defects = rng.choice(every.height, max(2, round(every.height * 3e-5)), replace=False)
        kinds = np.zeros(every.height, np.int8)
        kinds[defects] = rng.integers(1, 3, defects.size)
        every = every.with_columns(pl.Series("defect", kinds))
        participants.append(service_participants(rng, every, ref["caregivers"]))
        h0038 = every.filter(is_h0038())
        edge_pool.append(
            h0038.select("member_id", "rendering_npi", "billing_npi", "hcpcs_code").sample(
                min(1000, h0038.height), seed=int(rng.integers(1 << 31))
            )
        )
        files.append(every)
        total += every.height
        pack_lines += every.filter(is_in_scope(profile.codes)).height
        last_paid = max(last_paid, day(every["paid_date"].max()))
    ref["service_participants"] = pl.concat(participants)
    ref["caregivers"] = plant_age_gap_edges(
        rng, pl.concat(edge_pool), ref["providers"], ref["caregivers"]
    )
    write_reference(input_dir, ref)
    return Stats(
        lines=total,
        pack=profile.pack,
        in_scope_share=profile.in_scope_share,
        pack_lines=pack_lines,
        claim_files=len(files.finish()),
        members=ref["members"].height,
        providers=ref["providers"].height,
        delivery_date=(EPOCH + dt.timedelta(days=last_paid)).isoformat(),
    )


# the next day's delivery ------------------------------------------------------------------------

DATE_FORMATS = (ISO, "%m/%d/%Y", "%Y%m%d")


def parse_dates(column: str) -> pl.Expr:
    text = pl.col(column)
    return pl.coalesce([text.str.strptime(pl.Date, f, strict=False) for f in DATE_FORMATS]).alias(
        column
    )


def read_reference(input_dir: Path) -> dict:
    ref = {}
    for name in ("members", "enrollment", "providers", "treatment_plans", "caregivers"):
        frame = pl.read_csv(input_dir / "reference" / f"{name}.csv", infer_schema=False)
        dates = [c for c in frame.columns if c.endswith("date") or c == "date_of_birth"]
        ref[name] = frame.with_columns([parse_dates(c) for c in dates])
    return ref


def scan_claims(files: list[Path], columns: list[str] | None = None) -> pl.LazyFrame:
    frames = []
    for path in files:
        frame = pl.scan_csv(path, infer_schema=False)
        if columns:
            frame = frame.select(columns)
        frames.append(frame.with_columns(pl.lit(path.parent.name).alias("payer")))
    return pl.concat(frames)


def type_claims(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        *[parse_dates(c) for c in CLAIM_DATES],
        pl.col("claim_line_number").cast(pl.Int64),
        pl.col("service_unit_quantity").cast(pl.Float64).cast(pl.Int64),
        pl.col("paid_amount").cast(pl.Float64),
        pl.lit(0, pl.Int8).alias("defect"),
    ).select("payer", *CLAIM_COLUMNS, "defect")


def folder_profile(known: pl.DataFrame) -> Profile:
    """The pack whose codes the folder's claims carry most, and their share of the lines."""
    counts = {pack: known.filter(is_in_scope(Profile(pack).codes)).height for pack in PACKS}
    pack = max(counts, key=lambda p: counts[p])
    return Profile(pack, round(counts[pack] / max(1, known.height), 2))


def add_one_day(input_dir: Path, seed: int = 7, *, resend_references: bool = False) -> Stats:
    """The next day's delivery: new claims, corrections of earlier ones, lines sent again;
    and, with `resend_references`, every reference file again with a few rows changed."""
    files = sorted((input_dir / "claims").glob("*/*.csv"))
    keys = ["payer", "claim_id", "claim_line_number"]
    known = scan_claims(
        files,
        [
            "claim_id",
            "claim_line_number",
            "claim_frequency_code",
            "original_claim_id",
            "hcpcs_code",
            "paid_date",
        ],
    ).with_columns(parse_dates("paid_date"), pl.col("claim_line_number").cast(pl.Int64))
    known = known.collect()
    profile = folder_profile(known)
    in_scope = is_in_scope(profile.codes)
    delivery = day(known["paid_date"].max()) + 1
    n_lines = max(1, round(known.height / 365))
    rng = np.random.default_rng([seed, delivery])
    world = world_from_reference(read_reference(input_dir))
    next_ids = {
        payer: int(last) + 1
        for payer, last in known.filter(pl.col("claim_id").str.contains(r"^0\d+$"))
        .group_by("payer")
        .agg(pl.col("claim_id").cast(pl.Int64).max())
        .iter_rows()
    }
    fresh = make_claims(
        rng, world, n_lines, delivery - 75, delivery - 14, next_ids, profile, paid_on=delivery
    )

    corrected = (
        known.filter(pl.col("claim_frequency_code").is_in(["7", "8"]))
        .select("payer", pl.col("original_claim_id").alias("claim_id"))
        .unique()
    )
    claims = (
        known.group_by("payer", "claim_id", maintain_order=True)
        .agg(
            pl.col("paid_date").max(),
            in_scope.any().alias("in_scope"),
            (pl.col("claim_frequency_code") == "1").all().alias("original"),
        )
        .filter("original")
    )
    untouched = claims.join(
        corrected, on=["payer", "claim_id"], how="anti", maintain_order="left"
    ).filter("in_scope")
    superseded = claims.join(corrected, on=["payer", "claim_id"], how="semi", maintain_order="left")
    count = max(4, round(n_lines * 0.02))
    # most corrections name the current claim; some name a version already superseded
    targets = pl.concat(
        [
            untouched.sample(
                min(untouched.height, count - count // 5), seed=int(rng.integers(1 << 31))
            ),
            superseded.sample(min(superseded.height, count // 5), seed=int(rng.integers(1 << 31))),
        ]
    ).select("payer", "claim_id", "paid_date")
    again = (
        known.filter(in_scope)
        .join(untouched, on=["payer", "claim_id"], how="semi", maintain_order="left")
        .join(targets, on=["payer", "claim_id"], how="anti", maintain_order="left")
        .select(keys)
    )
    again = again.sample(
        min(again.height, max(2, round(n_lines * 0.005))), seed=int(rng.integers(1 << 31))
    )
    wanted = pl.concat(
        [targets.select("payer", "claim_id"), again.select("payer", "claim_id")]
    ).unique()
    old_lines = type_claims(
        scan_claims(files)
        .join(wanted.lazy(), on=["payer", "claim_id"], how="semi", maintain_order="left")
        # a line delivered twice: its latest copy is the one on file
        .unique(keys, keep="last", maintain_order=True)
        .collect()
    )
    corrections = make_corrections(
        rng, old_lines, targets, next_ids, paid_on=delivery, scenario_p=(0.4, 0.6, 0, 0, 0, 0)
    )
    # lines delivered again with corrected units
    resent = old_lines.join(again, on=keys, how="semi").with_columns(
        (pl.col("service_unit_quantity") + 1).alias("service_unit_quantity"),
        (
            pl.col("paid_amount")
            * (pl.col("service_unit_quantity") + 1)
            / pl.col("service_unit_quantity")
        )
        .round(2)
        .alias("paid_amount"),
    )
    every = pl.concat([fresh, corrections, resent.select(fresh.columns)], how="vertical_relaxed")
    label = (EPOCH + dt.timedelta(days=delivery)).isoformat()
    files = ClaimFiles(input_dir, name=label)
    files.append(every)
    changed = resend(input_dir, rng) if resend_references else 0
    return Stats(
        lines=every.height,
        pack=profile.pack,
        in_scope_share=profile.in_scope_share,
        pack_lines=every.filter(in_scope).height,
        claim_files=len(files.finish()),
        members=world.member_ids.len(),
        providers=world.npis.len(),
        delivery_date=label,
        reference_rows_changed=changed,
    )


# reference files sent again ---------------------------------------------------------------------

RESEND_SHARE = 0.005


def resend(input_dir: Path, rng: np.random.Generator) -> int:
    """Every reference file written again as a new snapshot, about 0.5% of its rows changed
    in a value some rule reads; returns how many rows changed. mco_implementation.csv (one
    row per MCO) is sent again unchanged."""
    changed = 0
    for path in sorted((input_dir / "reference").glob("*.csv")):
        frame = pl.read_csv(path, infer_schema=False)
        change = RESEND_CHANGES.get(path.stem)
        if change is None or frame.height == 0:
            rows = np.zeros(frame.height, bool)
        else:
            picked = rng.choice(frame.height, max(1, round(frame.height * RESEND_SHARE)), False)
            rows = np.zeros(frame.height, bool)
            rows[picked] = True
            frame = change(rng, frame, pl.Series(rows))
        changed += int(rows.sum())
        frame.write_csv(path)
    return changed


def _shift_days(column: str, rng: np.random.Generator, n: int, lo: int, hi: int) -> pl.Expr:
    """The date moved by lo..hi days (either way), kept as ISO text; a blank stays blank."""
    moved = pl.Series(rng.integers(lo, hi + 1, n) * rng.choice([-1, 1], n))
    return (parse_dates(column) + pl.duration(days=pl.lit(moved))).dt.to_string(ISO)


def _set(column: str, rows: pl.Series | pl.Expr, value: pl.Expr) -> pl.Expr:
    return pl.when(rows).then(value).otherwise(pl.col(column)).alias(column)


def _members_changed(
    rng: np.random.Generator, frame: pl.DataFrame, rows: pl.Series
) -> pl.DataFrame:
    # a birth date corrected by up to two years, never after mid-2024 (ages and adulthood move)
    shifted = _shift_days("date_of_birth", rng, frame.height, 1, 730)
    latest = pl.lit(MID_YEAR.isoformat())
    return frame.with_columns(_set("date_of_birth", rows, pl.min_horizontal(shifted, latest)))


def _enrollment_changed(
    rng: np.random.Generator, frame: pl.DataFrame, rows: pl.Series
) -> pl.DataFrame:
    # a span that ends during the year, or an end that is lifted (GEN002, PPS007 move)
    end = as_dates(days_between(rng, dt.date(2024, 2, 1), dt.date(2024, 11, 30), frame.height))
    start = parse_dates("start_date")
    new_end = (
        pl.when(pl.Series(rng.random(frame.height) < 0.3))
        .then(None)
        .otherwise(pl.max_horizontal(pl.lit(end), start.fill_null(pl.lit(end))))
    )
    return frame.with_columns(_set("end_date", rows, new_end.dt.to_string(ISO)))


def _providers_changed(
    rng: np.random.Generator, frame: pl.DataFrame, rows: pl.Series
) -> pl.DataFrame:
    # half get another provider type (CHW005), half an enrollment end during the year (PPS005)
    excluded = list(pack_policy(CHW_PACK)["parameters"]["excluded_provider_types"])
    n = frame.height
    new_type = pick(rng, [*OTHER_PROVIDER_TYPES, *excluded, None], n)
    end = as_dates(days_between(rng, dt.date(2024, 3, 1), dt.date(2024, 11, 30), n))
    start = parse_dates("enrollment_start_date")
    retype = rows & pl.Series(rng.random(n) < 0.5)
    return frame.with_columns(
        _set("provider_type", retype, pl.lit(new_type)),
        _set(
            "enrollment_end_date",
            rows & ~retype,
            pl.max_horizontal(pl.lit(end), start.fill_null(pl.lit(end))).dt.to_string(ISO),
        ),
    )


def _level_of_care_changed(
    rng: np.random.Generator, frame: pl.DataFrame, rows: pl.Series
) -> pl.DataFrame:
    # a stay that starts or ends up to a month earlier or later (PPS003)
    start = _shift_days("start_date", rng, frame.height, 1, 30)
    end = _shift_days("end_date", rng, frame.height, 1, 30)
    later = pl.max_horizontal(start, end)
    return frame.with_columns(
        _set("start_date", rows, start),
        _set("end_date", rows & pl.col("end_date").is_not_null(), later),
    )


def _plans_changed(rng: np.random.Generator, frame: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    # a plan signed or ending up to two months earlier or later (PPS008)
    return frame.with_columns(
        _set("signed_date", rows, _shift_days("signed_date", rng, frame.height, 1, 60)),
        _set("end_date", rows, _shift_days("end_date", rng, frame.height, 1, 60)),
    )


def _consents_changed(
    rng: np.random.Generator, frame: pl.DataFrame, rows: pl.Series
) -> pl.DataFrame:
    # a consent revoked during the year, or a revocation withdrawn (PPS009)
    revoked = as_dates(days_between(rng, dt.date(2024, 3, 1), YEAR_END, frame.height))
    signed = parse_dates("signed_date")
    new = pl.when(pl.col("revoked_date").is_null()).then(
        pl.max_horizontal(pl.lit(revoked), signed.fill_null(pl.lit(revoked))).dt.to_string(ISO)
    )
    return frame.with_columns(_set("revoked_date", rows, new))


def _caregivers_changed(
    rng: np.random.Generator, frame: pl.DataFrame, rows: pl.Series
) -> pl.DataFrame:
    # a caregiver's birth date corrected by up to two years (PPS006)
    return frame.with_columns(
        _set("date_of_birth", rows, _shift_days("date_of_birth", rng, frame.height, 1, 730))
    )


def _participants_changed(
    rng: np.random.Generator, frame: pl.DataFrame, rows: pl.Series
) -> pl.DataFrame:
    # a record review that now documents the direct benefit, or no longer does (PPS010)
    flipped = (
        pl.when(pl.col("direct_benefit_documented").str.to_uppercase() == "Y")
        .then(pl.lit("N"))
        .otherwise(pl.lit("Y"))
    )
    return frame.with_columns(_set("direct_benefit_documented", rows, flipped))


RESEND_CHANGES = {
    "members": _members_changed,
    "enrollment": _enrollment_changed,
    "providers": _providers_changed,
    "level_of_care": _level_of_care_changed,
    "treatment_plans": _plans_changed,
    "consents": _consents_changed,
    "caregivers": _caregivers_changed,
    "service_participants": _participants_changed,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", type=Path, required=True, help="input folder to write")
    parser.add_argument("--lines", type=int, default=1_000_000, help="claim lines (about)")
    parser.add_argument("--days", type=int, default=1, help="claim files per MCO (by paid date)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pack", choices=PACKS, default=H0038_PACK, help="whose lines to draw")
    parser.add_argument(
        "--in-scope-share",
        type=float,
        default=MIXED_SHARE,
        help="share of the claim lines that are the pack's (0.10 mixed, 0.85 policy-only)",
    )
    parser.add_argument("--one-day", action="store_true", help="add the next day's delivery")
    parser.add_argument(
        "--resend-references",
        action="store_true",
        help="with --one-day: write every reference file again, about 0.5%% of its rows changed",
    )
    args = parser.parse_args(argv)
    if not 0 < args.in_scope_share <= 0.95:
        parser.error("--in-scope-share must be above 0 and at most 0.95")
    if args.resend_references and not args.one_day:
        parser.error("--resend-references goes with --one-day")
    if args.one_day:
        stats = add_one_day(args.input, args.seed, resend_references=args.resend_references)
    else:
        profile = Profile(args.pack, args.in_scope_share)
        stats = generate(args.input, args.lines, args.seed, args.days, profile)
    print(json.dumps(asdict(stats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
