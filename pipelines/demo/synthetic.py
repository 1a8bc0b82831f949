"""Synthetic KanCare claim extracts with planted Parent Peer Support (H0038) findings.

`generate` writes an input folder shaped like data-contract.md and a truth file listing every
finding a correct reading of rules.md must produce on it. `generate_followup` adds a second
delivery of voids, replacements and new lines, and rewrites the truth.

The world is built in three layers, each from its own seeded random stream, so that the size
of one layer never shifts another layer's identifiers:
- the network and the planted scenarios: peer providers, billing organisations, a pool of
  group regulars per MCO, and one small story per rule boundary. A planted line declares the
  findings it must produce; every other fact about it is clean.
- the background: `members_per_mco` clean members per MCO with ordinary claims, most of them
  other behavioural-health codes, so that only planted lines carry findings.
- the follow-up delivery.

Policy packs add their own scenarios (`policies/<policy_id>/scenarios.py`, a `plant(world)`
function) through `PackWorld`: members, providers, claims and the findings they must
produce, written into the same files and truth, each pack from its own random stream after
the Parent Peer Support world is built, so that adding a pack leaves that world unchanged.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import project_path
from pipelines.ingest.datasets import CLAIM_COLUMNS, REFERENCE_DATASETS

__all__ = ["MCOS", "GenerationStats", "PackWorld", "generate", "generate_followup"]

MCOS = ("AETNA", "SUNFLOWER", "UHC", "HEALTHYBLUE")
POLICY_EFFECTIVE = date(2023, 1, 1)
AETNA_LAST_DOS = date(2024, 12, 31)  # Aetna left KanCare; its claims run out after
HEALTHYBLUE_FIRST_DOS = date(2025, 1, 1)
LAST_DOS = date(2025, 4, 30)  # last date of service in the first delivery
FIRST_DELIVERY = date(2025, 6, 30)  # extract date of the first delivery: nothing paid later
FOLLOWUP_FIRST_PAID = date(2025, 7, 7)
FOLLOWUP_DELIVERY = date(2025, 9, 30)
LICENSED = ("LMHP", "LSCSW", "LCP", "LCPC", "LMFT", "LCMFT", "LP", "MD", "DO", "APRN", "PA")
REGULARS_PER_MCO = 10  # enough distinct members for the planted sessions of 9 and 10
VIOLATION, DOCUMENTATION = "violation", "documentation"

ISO, US, X12 = "%Y-%m-%d", "%m/%d/%Y", "%Y%m%d"

REFERENCE_COLUMNS = {d.name: d.columns for d in REFERENCE_DATASETS}
TRUTH_COLUMNS = (
    "payer",
    "claim_id",
    "claim_line_number",
    "rule_id",
    "severity",
    "scenario",
    "policy_id",
)
PARENT_PEER_SUPPORT = "h0038_parent_peer_support"  # the policy of the lines planted here

# Per-unit rates; a group (HQ) unit pays about a quarter of an individual one.
_H0038_RATE = {
    "AETNA": Decimal("12.60"),
    "SUNFLOWER": Decimal("12.48"),
    "UHC": Decimal("12.52"),
    "HEALTHYBLUE": Decimal("12.75"),
}
_GROUP_RATE = {
    "AETNA": Decimal("3.15"),
    "SUNFLOWER": Decimal("3.12"),
    "UHC": Decimal("3.13"),
    "HEALTHYBLUE": Decimal("3.19"),
}
# Other behavioural-health services: (code, rate, most units, modifier choices).
_OTHER_CODES: tuple[tuple[str, Decimal, int, tuple[str, ...]], ...] = (
    ("H0036", Decimal("20.12"), 8, ("HA", "U1")),
    ("H2017", Decimal("13.50"), 16, ("HQ", "HA")),
    ("90837", Decimal("118.76"), 1, ("95", "HA")),
    ("90834", Decimal("89.30"), 1, ("95", "GT")),
    ("90832", Decimal("61.50"), 1, ("95",)),
    ("H0004", Decimal("22.00"), 4, ("HF", "HQ")),
    ("90791", Decimal("145.00"), 1, ("HA",)),
    ("T1017", Decimal("16.50"), 6, ("U1",)),
    ("H2011", Decimal("31.00"), 8, ("HA",)),
    ("H0039", Decimal("28.10"), 8, ("U1",)),  # a near neighbour of H0038, out of scope
)
_DIAGNOSES = ("F43.10", "F90.2", "F32.1", "F91.3", "F84.0", "F41.1", "F31.81", "F33.1", "F43.25")
_H0038_SPELLINGS = ("H0038",) * 7 + (" h0038 ", "h0038", "H0038 ")
_ORG_NAMES = (
    "High Plains Community Mental Health Center",
    "Kaw River Family Services, Inc.",
    "Smoky Hill Behavioral Health",
    "Cimarron Family Support Network",
    "Neosho Valley Counseling, LLC",
)
_FIRST_NAMES = ("Dana", "Marisol", "Terri", "Angela", "Keisha", "Rhonda", "Luis", "Brenda", "Joy")
_LAST_NAMES = ("Whitfield", "Ortega", "Hansen", "Pruitt", "Okafor", "Lindqvist", "Romero")

Modifiers = tuple[str, str, str, str]


@dataclass(frozen=True)
class GenerationStats:
    """Counts for what one call wrote.

    claim_lines: rows in the claim files this call wrote; in_scope_lines: current H0038
    lines once every delivery so far is loaded; planted_findings: rows in the truth file;
    files: files this call wrote under the input folder.
    """

    claim_lines: int
    in_scope_lines: int
    planted_findings: int
    files: int


@dataclass(frozen=True)
class _Dialect:
    """How one MCO writes its extract; the contract accepts every one of these."""

    stem: str
    suffix: str
    delimiter: str
    bom: bool
    newline: str
    date_style: str
    units_style: str
    columns: tuple[str, ...]


_DIALECTS = {
    "AETNA": _Dialect(
        stem="aetna_kancare_encounters_",
        suffix=".csv",
        delimiter=",",
        bom=True,
        newline="\r\n",
        date_style=ISO,
        units_style="{:d}",
        columns=("payer", *CLAIM_COLUMNS, "diagnosis_code_1"),
    ),
    # Sunflower's extract has no session_id and only three modifier columns.
    "SUNFLOWER": _Dialect(
        stem="SHP_BH_CLAIMLINES_",
        suffix=".txt",
        delimiter="|",
        bom=False,
        newline="\n",
        date_style=US,
        units_style="{:d}",
        columns=(
            *(c for c in CLAIM_COLUMNS if c not in ("session_id", "hcpcs_modifier_4")),
            "diagnosis_code_1",
        ),
    ),
    "UHC": _Dialect(
        stem="uhc_ks_claims_",
        suffix=".parquet",
        delimiter="",
        bom=False,
        newline="",
        date_style=X12,
        units_style="{:d}",
        columns=CLAIM_COLUMNS,
    ),
    # Healthy Blue sends X12-style decimal quantities ("4.0").
    "HEALTHYBLUE": _Dialect(
        stem="HBKS_837P_LINES_",
        suffix=".csv",
        delimiter=",",
        bom=False,
        newline="\n",
        date_style=US,
        units_style="{:.1f}",
        columns=(*CLAIM_COLUMNS, "diagnosis_code_1"),
    ),
}


def _mods(codes: Sequence[str] = ()) -> Modifiers:
    padded = [*codes, "", "", "", ""]
    return (padded[0], padded[1], padded[2], padded[3])


def _npi_check_digit(first9: str) -> str:
    """Luhn check digit of an NPI, computed over the "80840" card-issuer prefix."""
    total = 0
    for i, ch in enumerate(reversed("80840" + first9)):
        d = int(ch) * (2 if i % 2 == 0 else 1)  # doubling starts next to the check digit
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return date(day.year + years, 3, 1)


def _fmt(day: date | None, style: str) -> str:
    return "" if day is None else day.strftime(style)


def _payer_window(payer: str) -> tuple[date, date]:
    """Dates of service an MCO pays: Aetna up to 2024, Healthy Blue from 2025."""
    if payer == "AETNA":
        return POLICY_EFFECTIVE, AETNA_LAST_DOS
    if payer == "HEALTHYBLUE":
        return HEALTHYBLUE_FIRST_DOS, LAST_DOS
    return POLICY_EFFECTIVE, LAST_DOS


@dataclass
class _Caregiver:
    caregiver_id: str
    relationship: str
    dob: date | None
    medicaid_id: str
    start: date | None
    end: date | None


@dataclass
class _Plan:
    plan_id: str
    start: date
    end: date | None
    includes_pps: str
    signed: date | None
    practitioner_npi: str
    license_type: str


@dataclass
class _Consent:
    consent_type: str
    signed: date | None
    revoked: date | None


@dataclass
class _LocSpan:
    category: str
    loc_type: str
    start: date | None
    end: date | None


@dataclass
class _Provider:
    npi: str
    name: str
    enroll_start: date | None
    enroll_end: date | None
    pps_start: date | None
    attested: str
    attested_date: date | None
    dob: date | None
    billing_npi: str  # whom this peer's lines are billed under (an organisation or itself)
    on_file: bool = True
    provider_type: str = ""  # blank: unknown (Parent Peer Support does not read it)

    def valid_on(self, day: date) -> bool:
        """Clean for PPS004 and PPS005 on `day`: used to place clean lines."""
        return (
            self.on_file
            and self.attested.upper() == "Y"
            and (self.attested_date is None or self.attested_date <= day)
            and (self.enroll_start is None or self.enroll_start <= day)
            and (self.enroll_end is None or day <= self.enroll_end)
            and self.pps_start is not None
            and self.pps_start <= day
        )


@dataclass
class _Member:
    member_id: str
    dob: date | None
    enrollment: list[tuple[str, date, date | None]]
    caregivers: list[_Caregiver]
    plans: list[_Plan] = field(default_factory=list)
    consents: list[_Consent] = field(default_factory=list)
    loc_spans: list[_LocSpan] = field(default_factory=list)
    on_member_file: bool = True

    def payers_on(self, day: date) -> list[str]:
        return [p for p, lo, hi in self.enrollment if lo <= day and (hi is None or day <= hi)]


@dataclass
class _Line:
    line_number: int
    member_id: str
    rendering_npi: str
    billing_npi: str
    hcpcs: str
    modifiers: Modifiers
    start: date
    end: date | None  # None is written blank, which the contract reads as the start date
    pos: str
    units: int
    paid_amount: Decimal
    session_id: str
    diagnosis: str
    findings: dict[str, tuple[str, str]] = field(default_factory=dict)  # rule: (severity, why)
    policy_id: str = PARENT_PEER_SUPPORT  # whose rules the findings are

    @property
    def in_scope(self) -> bool:
        return self.hcpcs.strip().upper() == "H0038"


@dataclass
class _Chain:
    """A claim and its corrections; `current` is None while the chain is voided."""

    current: _Claim | None = None


@dataclass
class _Claim:
    payer: str
    claim_id: str
    frequency: str  # as written: "1", "7", "8", or blank for an original
    original_claim_id: str
    paid_date: date
    lines: list[_Line]
    delivery: int
    chain: _Chain = field(default_factory=_Chain, repr=False)

    @property
    def scoped(self) -> _Line:
        """The claim's first H0038 line."""
        return next(ln for ln in self.lines if ln.in_scope)


@dataclass
class _Participant:
    claim: _Claim
    line_number: int
    caregiver_id: str
    non_medicaid: str
    direct_benefit: str


class _World:
    """Everything written to the input folder, and the findings each line must produce."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(f"{seed}:scenarios")
        self.members: list[_Member] = []
        self.providers: list[_Provider] = []
        self.clinicians: list[tuple[str, str]] = []  # (npi, license type) of plan signers
        self.orgs: list[_Provider] = []
        self.peers: list[_Provider] = []  # clean peers working for the organisations
        self.solos: list[_Provider] = []  # clean peers billing under their own NPI
        self.regulars: dict[str, list[_Member]] = {}
        self.roles: dict[str, _Provider] = {}  # planted providers the follow-up reuses
        self.handles: dict[str, _Claim] = {}  # planted claims the follow-up corrects
        self.cross_mco_session: list[_Claim] = []
        self.rn_member: _Member | None = None
        self.chains: list[_Chain] = []
        self.claims: list[_Claim] = []
        self.background_claims: list[_Claim] = []
        self.participants: list[_Participant] = []
        self.redelivered: list[tuple[_Claim, _Line]] = []  # lines sent again unchanged
        self._ids: set[str] = set()
        self._claim_ids: dict[str, set[str]] = {p: set() for p in MCOS}
        self._busy: dict[str, set[date]] = {}  # member: dates with an H0038 line
        self._session_keys: set[tuple[str, date, str, str]] = set()

    # identifiers and dates ------------------------------------------------------------

    def fresh(self, kind: str) -> str:
        while True:
            if kind == "member":  # KMAP IDs: 11 digits, leading zeros kept
                value = f"{self.rng.randrange(10**11):011d}"
            elif kind == "npi":
                body = self.rng.choice("12") + f"{self.rng.randrange(10**8):08d}"
                value = body + _npi_check_digit(body)
            elif kind == "caregiver":
                value = f"CG{self.rng.randrange(10**7):07d}"
            elif kind == "plan":
                value = f"TP-{self.rng.randrange(10**6):06d}"
            else:
                value = f"GS{self.rng.randrange(10**6):06d}"
            if value not in self._ids:
                self._ids.add(value)
                return value

    def claim_id(self, payer: str, paid: date, *, legacy: bool = False) -> str:
        """An ICN in the MCO's format: year and Julian day paid, then a sequence."""
        prefix = {"AETNA": "A", "HEALTHYBLUE": "HB"}.get(payer, "")
        while True:
            if legacy:  # a pre-conversion 10-digit ICN, sorting after newer ones as text
                value = f"9{self.rng.randrange(10**9):09d}"
            else:
                julian = paid.timetuple().tm_yday
                value = f"{prefix}{paid:%y}{julian:03d}{self.rng.randrange(10**6):06d}"
            if value not in self._claim_ids[payer]:
                self._claim_ids[payer].add(value)
                return value

    def day(self, lo: date, hi: date) -> date:
        return lo + timedelta(days=self.rng.randint(0, (hi - lo).days))

    def free_day(self, members: Sequence[_Member], peer: _Provider, lo: date, hi: date) -> date:
        """A date with no H0038 line yet for any of `members`, on which `peer` is valid."""
        for _ in range(10_000):
            day = self.day(lo, hi)
            if peer.valid_on(day) and all(
                day not in self._busy.get(m.member_id, set()) for m in members
            ):
                return day
        raise RuntimeError("no free date for a planted line")

    # reference data -------------------------------------------------------------------

    def provider(
        self,
        *,
        billing_npi: str = "",
        enroll_start: date | None = None,
        enroll_end: date | None = None,
        pps_start: date | None = date(2022, 12, 15),
        attested: str = "Y",
        attested_date: date | None = None,
        dated: bool = True,
        dob: date | None = None,
        younger: bool = False,
        on_file: bool = True,
    ) -> _Provider:
        """A peer provider, clean unless told otherwise. Birth dates stay clear of the
        years caregivers are born in (1979-1992), so any pairing is 3+ years apart."""
        if dob is None:
            dob = (
                self.day(date(1996, 1, 1), date(2000, 12, 31))
                if younger
                else self.day(date(1955, 1, 1), date(1975, 12, 31))
            )
        if attested.upper() == "Y" and attested_date is None and dated and self.rng.random() < 0.8:
            attested_date = self.day(date(2022, 9, 1), date(2022, 11, 30))
        npi = self.fresh("npi")
        peer = _Provider(
            npi=npi,
            name=f"{self.rng.choice(_FIRST_NAMES)} {self.rng.choice(_LAST_NAMES)}",
            enroll_start=enroll_start or self.day(date(2012, 1, 1), date(2021, 12, 31)),
            enroll_end=enroll_end,
            pps_start=pps_start,
            attested=attested,
            attested_date=attested_date,
            dob=dob,
            billing_npi=billing_npi or npi,
            on_file=on_file,
        )
        self.providers.append(peer)
        return peer

    def caregiver(
        self,
        member_dob: date | None,
        *,
        dob: date | None = None,
        blank_dob: bool = False,
        medicaid: bool | None = None,
        start: date | None = None,
        end: date | None = None,
        relationship: str = "",
    ) -> _Caregiver:
        rng = self.rng
        if dob is None and not blank_dob:
            anchor = member_dob or date(2012, 6, 1)
            lo = max(date(1979, 1, 1), _years_later(anchor, -34))
            hi = min(date(1992, 12, 31), _years_later(anchor, -18))
            dob = self.day(lo, max(lo, hi))
        if medicaid is None:
            medicaid = rng.random() < 0.6
        relationship = relationship or rng.choice(
            ("MOTHER", "MOTHER", "FATHER", "GRANDMOTHER", "GUARDIAN", "FOSTER_PARENT")
        )
        if start is None and rng.random() < 0.8:
            start = member_dob  # otherwise blank: no lower bound
        return _Caregiver(
            caregiver_id=self.fresh("caregiver"),
            relationship=relationship,
            dob=dob,
            medicaid_id=self.fresh("member") if medicaid else "",
            start=start,
            end=end,
        )

    def plan(self, start: date, **changes: Any) -> _Plan:
        npi, license_type = self.rng.choice(self.clinicians)
        plan = _Plan(self.fresh("plan"), start, None, "Y", start, npi, license_type)
        return replace(plan, **changes)

    def yearly_plans(self) -> list[_Plan]:
        """Back-to-back yearly plans from 2022, each signed on or before its start date."""
        plans: list[_Plan] = []
        start = self.day(date(2022, 3, 1), date(2022, 9, 30))
        while start <= date(2026, 6, 30):
            open_ended = start > date(2025, 10, 1) and self.rng.random() < 0.5
            plans.append(
                self.plan(
                    start,
                    end=None if open_ended else start + timedelta(364),
                    includes_pps="y" if self.rng.random() < 0.05 else "Y",
                    signed=start - timedelta(days=self.rng.randint(0, 14)),
                )
            )
            start += timedelta(365)
        return plans

    def member(
        self,
        payer: str,
        *,
        dob: date | None = None,
        blank_dob: bool = False,
        adult: bool = False,
        enrollment: list[tuple[str, date, date | None]] | None = None,
        caregivers: list[_Caregiver] | None = None,
        on_member_file: bool = True,
    ) -> _Member:
        """A member clean for every rule on any date enrolled with `payer`, 2023 to 2025:
        a child (or an adult with written consent), a caregiver 3+ years from every peer,
        yearly plans including Parent Peer Support, no acute or residential stay."""
        if dob is None and not blank_dob:
            dob = (
                self.day(date(1999, 1, 1), date(2004, 12, 31))
                if adult
                else self.day(date(2008, 1, 1), date(2019, 12, 31))
            )
        if enrollment is None:
            since = self.day(date(2019, 1, 1), date(2021, 12, 31))
            if payer in ("AETNA", "HEALTHYBLUE"):  # Aetna's members moved to Healthy Blue
                enrollment = [
                    ("AETNA", since, AETNA_LAST_DOS),
                    ("HEALTHYBLUE", HEALTHYBLUE_FIRST_DOS, None),
                ]
            else:
                enrollment = [(payer, since, None)]
        member = _Member(
            member_id=self.fresh("member"),
            dob=dob,
            enrollment=enrollment,
            caregivers=caregivers if caregivers is not None else [self.caregiver(dob)],
            on_member_file=on_member_file,
        )
        member.plans = self.yearly_plans()
        if dob is not None and _years_later(dob, 18) <= FOLLOWUP_DELIVERY:
            signed = self.day(date(2021, 6, 1), date(2022, 11, 30))
            member.consents.append(_Consent("PPS", signed, None))
        self.members.append(member)
        return member

    # claims ---------------------------------------------------------------------------

    def modifiers(self, payer: str, *, group: bool) -> Modifiers:
        rng = self.rng
        if group:  # HQ in any position the extract has, the positions before it filled
            last = 4 if "hcpcs_modifier_4" in _DIALECTS[payer].columns else 3
            position = rng.randint(1, last)
            return _mods([*rng.sample(("UK", "U1", "HA"), position - 1), "HQ"])
        return _mods(rng.choice(((), (), (), ("UK",), ("U1",), ("UK", "U1"), ("HA",))))

    def h0038(
        self,
        member_id: str,
        payer: str,
        peer: _Provider,
        dos: date,
        *,
        end: date | None = None,
        units: int | None = None,
        modifiers: Modifiers | None = None,
        group: bool = False,
        pos: str | None = None,
        session_id: str = "",
        rendering_npi: str | None = None,
        billing_npi: str | None = None,
        paid_amount: Decimal | None = None,
    ) -> _Line:
        rng = self.rng
        if modifiers is None:
            modifiers = self.modifiers(payer, group=group)
        group = "HQ" in modifiers
        units = units if units is not None else rng.randint(1, 8)
        if paid_amount is None:
            paid_amount = (_GROUP_RATE if group else _H0038_RATE)[payer] * units
        if end is None and rng.random() < 0.6:
            end = dos  # written out; otherwise left blank, which means the same day
        self._busy.setdefault(member_id, set()).add(dos)
        return _Line(
            line_number=1,
            member_id=member_id,
            rendering_npi=peer.npi if rendering_npi is None else rendering_npi,
            billing_npi=billing_npi or peer.billing_npi,
            hcpcs=rng.choice(_H0038_SPELLINGS),
            modifiers=modifiers,
            start=dos,
            end=end,
            pos=pos or rng.choice(("11", "53", "99") if group else ("11", "12", "12", "53", "99")),
            units=units,
            paid_amount=paid_amount,
            session_id=session_id,
            diagnosis=rng.choice(_DIAGNOSES),
        )

    def other_line(self, member_id: str, billing_npi: str, dos: date) -> _Line:
        """A line of another behavioural-health service: never in scope."""
        rng = self.rng
        code, rate, most_units, modifier_choices = rng.choice(_OTHER_CODES)
        units = rng.randint(1, most_units)
        modifiers = rng.sample(modifier_choices, rng.randint(0, len(modifier_choices)))
        end = dos + timedelta(days=rng.randint(1, 6)) if rng.random() < 0.05 else dos
        adjustment = Decimal("0.37") if rng.random() < 0.1 else Decimal(0)
        return _Line(
            line_number=1,
            member_id=member_id,
            rendering_npi=rng.choice(self.clinicians)[0],
            billing_npi=billing_npi,
            hcpcs=code,
            modifiers=_mods(modifiers),
            start=dos,
            end=None if rng.random() < 0.3 else end,
            pos=rng.choice(("11", "11", "12", "53", "99", "")),
            units=units,
            paid_amount=rate * units - adjustment,
            session_id="",
            diagnosis=rng.choice(_DIAGNOSES),
        )

    def claim(
        self,
        payer: str,
        lines: list[_Line],
        *,
        paid: date | None = None,
        delivery: int = 1,
        claim_id: str = "",
        extra_lines: bool = True,
    ) -> _Claim:
        """An original claim; a one-line H0038 claim sometimes carries another service."""
        if extra_lines and len(lines) == 1 and self.rng.random() < 0.3:
            other = self.other_line(lines[0].member_id, lines[0].billing_npi, lines[0].start)
            lines = [lines[0], other] if self.rng.random() < 0.5 else [other, lines[0]]
        for number, line in enumerate(lines, start=1):
            line.line_number = number
        if paid is None:
            paid = max(line.start for line in lines) + timedelta(days=self.rng.randint(7, 45))
            paid = min(paid, FIRST_DELIVERY)
        if claim_id:
            self._claim_ids[payer].add(claim_id)
        new = _Claim(
            payer=payer,
            claim_id=claim_id or self.claim_id(payer, paid),
            frequency="" if payer == "UHC" else "1",  # UHC leaves originals blank (= 1)
            original_claim_id="",
            paid_date=paid,
            lines=lines,
            delivery=delivery,
        )
        new.chain.current = new
        self.chains.append(new.chain)
        self.claims.append(new)
        return new

    def single(
        self, member: _Member | str, payer: str, peer: _Provider, dos: date, **kw: Any
    ) -> _Claim:
        """A claim with one H0038 line (and sometimes another service)."""
        member_id = member if isinstance(member, str) else member.member_id
        return self.claim(payer, [self.h0038(member_id, payer, peer, dos, **kw)])

    @staticmethod
    def revise(claim: _Claim, **changes: Any) -> list[_Line]:
        """Copies of a claim's lines with `changes` on its H0038 lines and no findings."""
        return [replace(ln, findings={}, **(changes if ln.in_scope else {})) for ln in claim.lines]

    def replace(
        self,
        old: _Claim,
        lines: list[_Line],
        *,
        paid: date,
        names: _Claim | None = None,
        delivery: int = 1,
    ) -> _Claim:
        """A replacement (frequency 7) in `old`'s chain, naming `names` (default `old`),
        which may be an already-superseded version."""
        for number, line in enumerate(lines, start=1):
            line.line_number = number
        new = _Claim(
            payer=old.payer,
            claim_id=self.claim_id(old.payer, paid),
            frequency="7",
            original_claim_id=(names or old).claim_id,
            paid_date=paid,
            lines=lines,
            delivery=delivery,
            chain=old.chain,
        )
        old.chain.current = new
        self.claims.append(new)
        return new

    def void(
        self, old: _Claim, *, paid: date, names: _Claim | None = None, delivery: int = 1
    ) -> _Claim:
        """A void (frequency 8) repeating the current lines with negative amounts."""
        source = old.chain.current or old
        lines = [replace(ln, paid_amount=-ln.paid_amount, findings={}) for ln in source.lines]
        new = _Claim(
            payer=old.payer,
            claim_id=self.claim_id(old.payer, paid),
            frequency="8",
            original_claim_id=(names or source).claim_id,
            paid_date=paid,
            lines=lines,
            delivery=delivery,
            chain=old.chain,
        )
        old.chain.current = None
        self.claims.append(new)
        return new

    def session(
        self,
        attendees: Sequence[tuple[str, _Member | str]],
        peer: _Provider,
        dos: date,
        pos: str,
        session_id: str,
    ) -> list[_Claim]:
        """One group session: a claim per attendee, HQ on every line."""
        key = (peer.npi, dos, pos, session_id)
        if key in self._session_keys:
            raise RuntimeError("planted group sessions must not merge by accident")
        self._session_keys.add(key)
        return [
            self.single(who, payer, peer, dos, group=True, pos=pos, session_id=session_id)
            for payer, who in attendees
        ]

    def flag(self, claim: _Claim, rule: str, why: str, severity: str = VIOLATION) -> None:
        claim.scoped.findings[rule] = (severity, why)

    def participant(
        self, claim: _Claim, caregiver_id: str, non_medicaid: str, direct_benefit: str
    ) -> None:
        number = claim.scoped.line_number
        self.participants.append(
            _Participant(claim, number, caregiver_id, non_medicaid, direct_benefit)
        )

    # what the audit must find -------------------------------------------------------

    def current_lines(self) -> list[tuple[_Claim, _Line]]:
        return [
            (chain.current, line)
            for chain in self.chains
            if chain.current is not None
            for line in chain.current.lines
            if line.in_scope
        ]

    def truth(self) -> list[tuple[str, str, int, str, str, str, str]]:
        """Every finding of every policy on the current lines (only planted lines have any)."""
        return sorted(
            (claim.payer, claim.claim_id, line.line_number, rule, severity, why, line.policy_id)
            for chain in self.chains
            if chain.current is not None
            for claim in (chain.current,)
            for line in claim.lines
            for rule, (severity, why) in line.findings.items()
        )


# ------------------------------------------------------------------------------------------
# The network and the planted scenarios


def _plant_network(w: _World) -> None:
    w.clinicians = [(w.fresh("npi"), w.rng.choice(LICENSED)) for _ in range(12)]
    for name in _ORG_NAMES:
        org = w.provider(
            enroll_start=w.day(date(2005, 1, 1), date(2015, 12, 31)),
            pps_start=w.day(date(2022, 12, 1), date(2022, 12, 31)),
            attested=w.rng.choice(("", "N")),  # an organisation has no lived experience
        )
        org.name, org.dob = name, None
        w.orgs.append(org)
    w.peers = [w.provider(billing_npi=w.orgs[i % 5].npi) for i in range(8)]
    w.peers.append(w.provider(billing_npi=w.orgs[0].npi, younger=True))
    # Clean variations every rule must accept.
    w.peers.append(w.provider(billing_npi=w.orgs[1].npi, attested="y"))
    w.peers.append(w.provider(billing_npi=w.orgs[2].npi, attested_date=date(2023, 4, 20)))
    w.peers.append(w.provider(billing_npi=w.orgs[3].npi, pps_start=date(2023, 5, 1)))
    w.peers.append(w.provider(billing_npi=w.orgs[4].npi, enroll_end=date(2024, 9, 30)))
    w.solos = [w.provider(), w.provider(younger=True)]
    w.regulars = {payer: [w.member(payer) for _ in range(REGULARS_PER_MCO)] for payer in MCOS}


def _plant_pps001(w: _World) -> None:
    early = w.provider(
        billing_npi=w.orgs[0].npi, pps_start=date(2022, 12, 1), attested_date=date(2022, 11, 15)
    )
    member = w.member("AETNA")
    c = w.single(member, "AETNA", early, date(2022, 12, 31))
    w.flag(c, "PPS001", "DOS 2022-12-31, the day before the policy effective date")
    w.handles["pps001_before"] = c
    w.handles["pps001_first_day"] = w.single(member, "AETNA", early, POLICY_EFFECTIVE)
    member = w.member("AETNA")
    c = w.single(member, "AETNA", early, date(2022, 12, 30), end=date(2023, 1, 2))
    w.flag(c, "PPS001", "line 2022-12-30 to 2023-01-02: the DOS is its start date")

    january = w.provider(billing_npi=w.orgs[1].npi, pps_start=POLICY_EFFECTIVE)
    member = w.member("SUNFLOWER")
    c = w.single(member, "SUNFLOWER", january, date(2022, 12, 20))
    w.flag(c, "PPS001", "DOS 2022-12-20, before the policy effective date")
    w.flag(c, "PPS005", "provider added Parent Peer Support on 2023-01-01, after the DOS")
    w.single(member, "SUNFLOWER", january, date(2023, 1, 3))


def _plant_pps002(w: _World) -> None:
    regs, leads = w.regulars, w.peers[:5]

    def when(payer: str, members: Sequence[_Member], lead: _Provider) -> date:
        return w.free_day(members, lead, *_payer_window(payer))

    def at(payer: str, members: Sequence[_Member]) -> list[tuple[str, _Member | str]]:
        return [(payer, m) for m in members]

    # 9 distinct members at POS 11: every line of the session is flagged.
    day = when("AETNA", regs["AETNA"][:9], leads[0])
    for c in w.session(at("AETNA", regs["AETNA"][:9]), leads[0], day, "11", w.fresh("s")):
        w.flag(c, "PPS002", "group of 9 members at POS 11")
    # 8 distinct members: the limit itself is allowed.
    day = when("SUNFLOWER", regs["SUNFLOWER"][:8], leads[1])
    w.session(at("SUNFLOWER", regs["SUNFLOWER"][:8]), leads[1], day, "53", "")
    # 10 members, one session ID, two places of service: two groups of 5.
    day = when("UHC", regs["UHC"], leads[2])
    sid = w.fresh("s")
    w.session(at("UHC", regs["UHC"][:5]), leads[2], day, "11", sid)
    w.session(at("UHC", regs["UHC"][5:]), leads[2], day, "99", sid)
    # 10 members, one place, two session IDs: groups of 6 and 4.
    day = when("HEALTHYBLUE", regs["HEALTHYBLUE"], leads[3])
    w.session(at("HEALTHYBLUE", regs["HEALTHYBLUE"][:6]), leads[3], day, "53", w.fresh("s"))
    w.session(at("HEALTHYBLUE", regs["HEALTHYBLUE"][6:]), leads[3], day, "53", w.fresh("s"))
    # One provider's session billed to two MCOs, 5 + 4 members: one group of 9. Early in
    # 2023, so Sunflower paid its lines before its implementation date.
    attendees = at("SUNFLOWER", regs["SUNFLOWER"][:5]) + at("UHC", regs["UHC"][:4])
    everyone = regs["SUNFLOWER"][:5] + regs["UHC"][:4]
    day = w.free_day(everyone, leads[4], date(2023, 3, 1), date(2023, 4, 28))
    w.cross_mco_session = w.session(attendees, leads[4], day, "53", "")
    for c in w.cross_mco_session:
        w.flag(c, "PPS002", "group of 9 across SUNFLOWER (5) and UHC (4), one provider")
    # 9 lines but 8 distinct members: one member has two lines on one claim.
    day = when("UHC", regs["UHC"][:8], leads[0])
    sid = w.fresh("s")
    w.session(at("UHC", regs["UHC"][1:8]), leads[0], day, "53", sid)
    twice = [
        w.h0038(regs["UHC"][0].member_id, "UHC", leads[0], day, units=units, group=True)
        for units in (2, 3)
    ]
    for line in twice:
        line.pos, line.session_id = "53", sid
    w.claim("UHC", twice, extra_lines=False)
    # 9 distinct members, one claim voided in the same delivery: 8 remain.
    day = when("AETNA", regs["AETNA"][:9], leads[1])
    claims = w.session(at("AETNA", regs["AETNA"][:9]), leads[1], day, "11", w.fresh("s"))
    w.void(claims[-1], paid=claims[-1].paid_date + timedelta(days=20))
    # 8 H0038 group lines and a ninth member billed H2017 HQ: not H0038, not counted.
    day = when("SUNFLOWER", regs["SUNFLOWER"][:9], leads[2])
    w.session(at("SUNFLOWER", regs["SUNFLOWER"][:8]), leads[2], day, "11", "")
    psr = w.other_line(regs["SUNFLOWER"][8].member_id, leads[2].billing_npi, day)
    psr.hcpcs, psr.modifiers, psr.pos = "H2017", _mods(["HQ"]), "11"
    psr.rendering_npi = leads[2].npi
    w.claim("SUNFLOWER", [psr], extra_lines=False)
    # 8 members in a group and a ninth the same day without HQ: an individual service.
    day = when("AETNA", regs["AETNA"][:9], leads[4])
    sid = w.fresh("s")
    w.session(at("AETNA", regs["AETNA"][:8]), leads[4], day, "99", sid)
    w.single(
        regs["AETNA"][8], "AETNA", leads[4], day, pos="99", session_id=sid, modifiers=_mods(["UK"])
    )
    # 8 members and an ID on no file: still 9 distinct billed IDs.
    day = when("UHC", regs["UHC"][:8], leads[3])
    attendees = [*at("UHC", regs["UHC"][:8]), ("UHC", w.fresh("member"))]
    claims = w.session(attendees, leads[3], day, "11", w.fresh("s"))
    for c in claims:
        w.flag(c, "PPS002", "group of 9 billed IDs at POS 11, one of them on no file")
    w.flag(claims[-1], "PPS007", "billed member ID is on no file")
    w.flag(claims[-1], "PPS006", "no caregiver on file for the billed ID", DOCUMENTATION)
    w.flag(claims[-1], "PPS008", "no treatment plan for the billed ID")


def _plant_pps003(w: _World) -> None:
    peer = w.peers[5]
    d = w.day(date(2023, 4, 1), date(2024, 6, 30))

    def stay(payer: str, *spans: _LocSpan) -> _Member:
        member = w.member(payer)
        member.loc_spans.extend(spans)
        return member

    member = stay("UHC", _LocSpan("ACUTE", "INPATIENT_PSYCH", d, d + timedelta(6)))
    w.single(member, "UHC", peer, d - timedelta(1))
    c = w.single(member, "UHC", peer, d)
    w.flag(c, "PPS003", "DOS on the admission day of an INPATIENT_PSYCH stay")
    w.single(member, "UHC", peer, d + timedelta(6))  # the discharge day is a community day

    member = stay(
        "SUNFLOWER",
        _LocSpan("COMMUNITY", "HCBS_SED", date(2022, 1, 1), d - timedelta(20)),
        _LocSpan("RESIDENTIAL", "PRTF", d - timedelta(20), None),
    )
    w.single(member, "SUNFLOWER", peer, d - timedelta(21))
    c = w.single(member, "SUNFLOWER", peer, d)
    w.flag(c, "PPS003", "ongoing PRTF stay (no end date) on the DOS")

    member = stay("UHC", _LocSpan("COMMUNITY", "HCBS_SED", d - timedelta(100), d + timedelta(100)))
    w.single(member, "UHC", peer, d)

    span = _LocSpan("RESIDENTIAL", "RESIDENTIAL_SUD", d + timedelta(2), d + timedelta(30))
    c = w.single(stay("AETNA", span), "AETNA", peer, d, end=d + timedelta(4))
    w.flag(c, "PPS003", "line range overlaps a RESIDENTIAL_SUD stay starting 2 days after DOS")
    span = _LocSpan("RESIDENTIAL", "PRTF", d + timedelta(3), d + timedelta(40))
    w.single(stay("AETNA", span), "AETNA", peer, d, end=d + timedelta(2))  # ends the day before

    earlier = d - timedelta(30)
    member = stay(
        "SUNFLOWER",
        _LocSpan("ACUTE", "INPATIENT_HOSPITAL", d, d),
        _LocSpan("ACUTE", "INPATIENT_PSYCH", earlier, earlier),
    )
    c = w.single(member, "SUNFLOWER", peer, d)
    w.flag(c, "PPS003", "one-day INPATIENT_HOSPITAL stay (end date = start date) on the DOS")
    w.single(member, "SUNFLOWER", peer, d + timedelta(1))
    w.single(member, "SUNFLOWER", peer, earlier + timedelta(1))


def _flag_unknown_peer(w: _World, c: _Claim, why: str, line: _Line | None = None) -> None:
    target = line or c.scoped
    target.findings["PPS004"] = (VIOLATION, why)
    target.findings["PPS005"] = (VIOLATION, why)
    target.findings["PPS006"] = (DOCUMENTATION, why + ": no provider birth date")


def _plant_pps004(w: _World) -> None:
    orgs = w.orgs
    d = w.day(date(2023, 5, 1), date(2024, 6, 30))
    late = w.provider(billing_npi=orgs[1].npi, attested_date=d)
    member = w.member("UHC")
    w.single(member, "UHC", late, d)
    c = w.single(member, "UHC", late, d - timedelta(1))
    w.flag(c, "PPS004", "lived experience attested the day after the DOS")

    unattested = w.provider(billing_npi=orgs[2].npi, attested="N")
    w.roles["unattested"] = unattested
    c = w.single(
        w.member("AETNA"), "AETNA", unattested, w.day(date(2023, 2, 1), date(2024, 10, 31))
    )
    w.flag(c, "PPS004", "lived experience not attested (N)")
    w.handles["pps004_unattested"] = c
    c = w.single(w.member("AETNA"), "AETNA", unattested, w.day(date(2023, 2, 1), date(2024, 6, 30)))
    w.void(c, paid=c.paid_date + timedelta(days=30))  # voided in the same delivery

    blank_flag = w.provider(billing_npi=orgs[3].npi, attested="", attested_date=date(2022, 10, 3))
    c = w.single(w.member("SUNFLOWER"), "SUNFLOWER", blank_flag, d)
    w.flag(c, "PPS004", "lived-experience flag blank (counts as N)")

    undated = w.provider(billing_npi=orgs[3].npi, dated=False)
    w.handles["pps004_blank_date"] = w.single(w.member("AETNA"), "AETNA", undated, d)

    unknown = w.provider(billing_npi=orgs[4].npi, on_file=False)
    w.roles["unknown"] = unknown
    day = w.day(date(2025, 1, 2), LAST_DOS)
    c = w.single(w.member("HEALTHYBLUE"), "HEALTHYBLUE", unknown, day)
    _flag_unknown_peer(w, c, "rendering NPI not on the provider file")

    # A blank rendering NPI makes the billing NPI the peer provider.
    c = w.single(w.member("UHC"), "UHC", orgs[0], d, rendering_npi="")
    w.flag(c, "PPS004", "rendering NPI blank: billing organisation has no lived experience")
    w.flag(
        c, "PPS006", "rendering NPI blank: billing organisation has no birth date", DOCUMENTATION
    )
    w.single(w.member("SUNFLOWER"), "SUNFLOWER", w.solos[0], d, rendering_npi="")


def _plant_pps005(w: _World) -> None:
    orgs = w.orgs
    p = w.day(date(2023, 6, 1), date(2024, 3, 31))
    joined = w.provider(billing_npi=orgs[0].npi, pps_start=p)
    member = w.member("SUNFLOWER")
    w.single(member, "SUNFLOWER", joined, p)
    c = w.single(member, "SUNFLOWER", joined, p - timedelta(1))
    w.flag(c, "PPS005", "provider added Parent Peer Support to its array the day after the DOS")

    e = w.day(date(2024, 2, 1), date(2024, 9, 30))
    leaving = w.provider(billing_npi=orgs[1].npi, enroll_end=e)
    w.roles["leaving"] = leaving
    member = w.member("UHC")
    w.single(member, "UHC", leaving, e)
    c = w.single(member, "UHC", leaving, e + timedelta(1))
    w.flag(c, "PPS005", "provider enrollment ended the day before the DOS")

    s = w.day(date(2023, 3, 1), date(2023, 9, 30))
    joining = w.provider(billing_npi=orgs[2].npi, enroll_start=s, pps_start=s - timedelta(10))
    member = w.member("AETNA")
    w.single(member, "AETNA", joining, s)
    c = w.single(member, "AETNA", joining, s - timedelta(1))
    w.flag(c, "PPS005", "provider enrollment starts the day after the DOS")

    never = w.provider(billing_npi=orgs[3].npi, pps_start=None)
    w.roles["never"] = never
    c = w.single(w.member("UHC"), "UHC", never, w.day(date(2023, 2, 1), LAST_DOS))
    w.flag(c, "PPS005", "provider never added Parent Peer Support (no pps_start_date)")


def _plant_pps006(w: _World) -> None:
    # Birthdays away from month ends and February, so one day off never crosses a year.
    x = date(w.rng.randint(1968, 1972), w.rng.randint(3, 11), w.rng.randint(2, 27))
    older = w.provider(billing_npi=w.orgs[2].npi, dob=x)
    exact, far = _years_later(x, 3), _years_later(x, 10)
    short = exact - timedelta(1)

    def cg(dob: date | None, **kw: Any) -> _Caregiver:
        return w.caregiver(None, dob=dob, blank_dob=dob is None, **kw)

    def line(payer: str, caregivers: list[_Caregiver], peer: _Provider = older) -> _Claim:
        member = w.member(payer, caregivers=caregivers)
        return w.single(member, payer, peer, w.free_day([member], peer, *_payer_window(payer)))

    line("UHC", [cg(exact)])  # exactly 3 years younger than the provider
    c = line("AETNA", [cg(short)])
    w.flag(c, "PPS006", "caregiver born one day short of 3 years after the provider")
    line("SUNFLOWER", [cg(short), cg(far)])  # one of two caregivers passes

    passing, failing = cg(far, medicaid=True), cg(short, medicaid=True)
    c = line("UHC", [passing, failing])
    w.participant(c, failing.caregiver_id, "N", "")
    w.flag(c, "PPS006", "service-participant row names the caregiver under 3 years apart")
    failing = cg(short, medicaid=True)
    gone = cg(far, medicaid=True, start=date(2015, 1, 1), end=date(2022, 6, 30))
    c = line("SUNFLOWER", [failing, gone])
    w.participant(c, gone.caregiver_id, "N", "")  # named: a candidate though not active
    c = line("HEALTHYBLUE", [cg(far)])
    w.participant(c, w.fresh("caregiver"), "N", "")
    w.flag(c, "PPS006", "participant caregiver ID not on the caregiver file", DOCUMENTATION)
    c = line("UHC", [cg(None)])
    w.flag(c, "PPS006", "the only caregiver has no birth date", DOCUMENTATION)
    c = line("AETNA", [cg(short), cg(None)])
    w.flag(c, "PPS006", "one caregiver under 3 years apart, one with no birth date", DOCUMENTATION)

    end = w.day(date(2023, 6, 1), date(2024, 6, 30))
    member = w.member("SUNFLOWER", caregivers=[cg(far, start=date(2010, 1, 1), end=end)])
    w.single(member, "SUNFLOWER", older, end)  # a caregiver span includes its end date
    c = w.single(member, "SUNFLOWER", older, end + timedelta(1))
    w.flag(c, "PPS006", "no caregiver active on the DOS", DOCUMENTATION)

    y = date(w.rng.randint(1993, 1995), w.rng.randint(3, 11), w.rng.randint(2, 27))
    younger = w.provider(billing_npi=w.orgs[3].npi, dob=y)
    line("UHC", [cg(_years_later(y, -3))], younger)
    c = line("SUNFLOWER", [cg(_years_later(y, -3) + timedelta(1))], younger)
    w.flag(c, "PPS006", "provider born one day short of 3 years after the caregiver")

    no_dob = w.provider(billing_npi=w.orgs[4].npi)
    no_dob.dob = None
    c = w.single(w.member("AETNA"), "AETNA", no_dob, w.day(date(2023, 3, 1), date(2024, 9, 30)))
    w.flag(c, "PPS006", "provider has no birth date on file", DOCUMENTATION)


def _with_medicaid_parent(w: _World, payer: str) -> tuple[_Member, str]:
    member = w.member(payer)
    parent = member.caregivers[0]
    parent.medicaid_id = parent.medicaid_id or w.fresh("member")
    return member, parent.medicaid_id


def _plant_pps007(w: _World) -> None:
    peer = w.peers[6]
    _, parent_id = _with_medicaid_parent(w, "SUNFLOWER")
    c = w.single(parent_id, "SUNFLOWER", peer, w.day(date(2023, 2, 1), date(2024, 12, 31)))
    w.flag(c, "PPS007", "billed the caregiver's Medicaid ID instead of the member's")
    w.flag(c, "PPS006", "no caregiver on file for the billed (caregiver's) ID", DOCUMENTATION)
    w.flag(c, "PPS008", "no treatment plan for the billed (caregiver's) ID")

    missing = w.member("UHC", on_member_file=False)
    c = w.single(missing, "UHC", peer, w.day(date(2023, 2, 1), LAST_DOS))
    w.flag(c, "PPS007", "member ID not on the member file (enrolled, with plan and caregiver)")

    gap = w.day(date(2023, 6, 1), date(2024, 6, 30))
    spans: list[tuple[str, date, date | None]] = [
        ("UHC", date(2020, 3, 1), gap - timedelta(1)),
        ("UHC", gap + timedelta(61), None),
    ]
    lapsed = w.member("UHC", enrollment=spans)
    w.single(lapsed, "UHC", peer, gap - timedelta(1))  # the last day of eligibility
    c = w.single(lapsed, "UHC", peer, gap + timedelta(20))
    w.flag(c, "PPS007", "member enrolled with no MCO on the DOS (eligibility gap)")

    # Billed under the parent's ID, then corrected by a replacement in the same delivery.
    member, parent_id = _with_medicaid_parent(w, "AETNA")
    c = w.single(parent_id, "AETNA", peer, w.day(date(2023, 2, 1), date(2024, 6, 30)))
    corrected = [replace(ln, member_id=member.member_id, findings={}) for ln in c.lines]
    w.replace(c, corrected, paid=c.paid_date + timedelta(days=25))
    w._busy.setdefault(member.member_id, set()).add(c.scoped.start)


def _only_plans(member: _Member, *plans: _Plan) -> None:
    """Keep the member's earlier yearly plans up to the day before the first given plan."""
    first = plans[0].start
    member.plans = [p for p in member.plans if p.start < first]
    if member.plans:
        member.plans[-1].end = first - timedelta(1)
    member.plans.extend(plans)


def _plant_pps008(w: _World) -> None:
    peer = w.peers[7]
    s = w.day(date(2023, 9, 1), date(2024, 8, 31))
    member = w.member("AETNA")
    _only_plans(member, w.plan(s, signed=s + timedelta(5), end=s + timedelta(364)))
    w.single(member, "AETNA", peer, s + timedelta(5))  # signed on the DOS
    c = w.single(member, "AETNA", peer, s + timedelta(4))
    w.flag(c, "PPS008", "treatment plan signed the day after the DOS")
    w.handles["pps008_signed_late"] = c

    member = w.member("UHC")
    _only_plans(member, w.plan(date(2022, 6, 1), includes_pps="N", signed=date(2022, 5, 20)))
    day = w.day(date(2023, 2, 1), LAST_DOS)
    c = w.single(member, "UHC", peer, day, paid_amount=Decimal("0.00"))
    w.flag(c, "PPS008", "treatment plan does not include Parent Peer Support; line paid 0.00")

    member = w.member("SUNFLOWER")
    _only_plans(member, w.plan(date(2022, 7, 1), license_type="RN", signed=date(2022, 6, 28)))
    w.rn_member = member
    c = w.single(member, "SUNFLOWER", peer, w.day(date(2023, 2, 1), date(2024, 12, 31)))
    w.flag(c, "PPS008", "treatment plan signed by an RN, not a licensed clinical practitioner")
    # A UHC claim with the same claim ID is voided: Sunflower's claim stands.
    day = w.day(date(2023, 2, 1), LAST_DOS)
    if c.claim_id in w._claim_ids["UHC"]:
        raise RuntimeError("the reused claim ID is already taken at UHC")
    reused = w.claim(
        "UHC", [w.h0038(w.member("UHC").member_id, "UHC", peer, day)], claim_id=c.claim_id
    )
    w.void(reused, paid=reused.paid_date + timedelta(days=12))

    member = w.member("UHC")
    _only_plans(member, w.plan(date(2022, 7, 1), license_type="CPRS"))
    day = w.day(date(2023, 2, 1), LAST_DOS)
    c = w.single(member, "UHC", peer, day, units=2, paid_amount=Decimal("-12.52"))
    w.flag(c, "PPS008", "treatment plan signed by a CPRS; line paid a negative amount")

    e = w.day(date(2023, 6, 1), date(2024, 6, 30))
    member = w.member("SUNFLOWER")
    before = [p for p in member.plans if p.start <= e]
    before[-1].end = e
    member.plans = [*before, w.plan(e + timedelta(31))]
    w.single(member, "SUNFLOWER", peer, e)
    c = w.single(member, "SUNFLOWER", peer, e + timedelta(1))
    w.flag(c, "PPS008", "treatment plan ended the day before the DOS")

    member = w.member("HEALTHYBLUE")
    without = w.plan(date(2024, 7, 1), includes_pps="N")
    _only_plans(member, without, w.plan(date(2024, 10, 1), signed=date(2024, 9, 30)))
    w.single(member, "HEALTHYBLUE", peer, w.day(date(2025, 1, 2), LAST_DOS))  # one of two plans


def _birthday(w: _World) -> date:
    """A DOS that is someone's 18th birthday: never 29 February, which 2006 lacks."""
    while True:
        d = w.day(date(2023, 3, 1), date(2024, 11, 30))
        if (d.month, d.day) != (2, 29):
            return d


def _plant_pps009(w: _World) -> None:
    peer = w.peers[8]
    d = _birthday(w)
    member = w.member("SUNFLOWER", dob=_years_later(d, -18))
    member.consents.clear()
    w.single(member, "SUNFLOWER", peer, d - timedelta(1))  # still 17
    c = w.single(member, "SUNFLOWER", peer, d)
    w.flag(c, "PPS009", "18th birthday on the DOS, no written consent")
    w.handles["pps009_birthday"] = c

    d = _birthday(w)
    member = w.member("UHC", dob=_years_later(d, -18))
    member.consents[:] = [_Consent("PPS", d - timedelta(20), None)]
    w.single(member, "UHC", peer, d)

    d = w.day(date(2023, 3, 1), date(2024, 11, 30))
    member = w.member("AETNA", adult=True)
    member.consents[:] = [_Consent("PPS", d, None)]
    w.single(member, "AETNA", peer, d)
    c = w.single(member, "AETNA", peer, d - timedelta(1))
    w.flag(c, "PPS009", "adult member's consent signed the day after the DOS")

    r = w.day(date(2025, 1, 10), LAST_DOS)
    member = w.member("HEALTHYBLUE", adult=True)
    member.consents[:] = [_Consent("PPS", date(2022, 4, 1), r), _Consent("ROI", None, None)]
    w.single(member, "HEALTHYBLUE", peer, r - timedelta(1))  # revoked the day after
    c = w.single(member, "HEALTHYBLUE", peer, r)
    w.flag(c, "PPS009", "consent revoked on the DOS")

    member = w.member("UHC", blank_dob=True)
    w.single(member, "UHC", peer, w.day(date(2023, 2, 1), LAST_DOS))  # no birth date: no flag

    member = w.member("SUNFLOWER", adult=True)
    member.consents[:] = [_Consent("ROI", date(2022, 3, 1), None)]
    c = w.single(member, "SUNFLOWER", peer, w.day(date(2023, 2, 1), LAST_DOS))
    w.flag(c, "PPS009", "adult member with a release-of-information consent only")


def _plant_pps010(w: _World) -> None:
    peer = w.peers[1]
    member, _ = _with_medicaid_parent(w, "UHC")
    medicaid_parent = member.caregivers[0]
    grandmother = w.caregiver(member.dob, medicaid=False, relationship="GRANDMOTHER")
    member.caregivers.append(grandmother)

    def line() -> _Claim:
        return w.single(member, "UHC", peer, w.free_day([member], peer, *_payer_window("UHC")))

    cases = (
        ("Y", "N", "non-Medicaid participant without direct-benefit documentation"),
        ("Y", "Y", ""),
        ("Y", "", "non-Medicaid participant, direct-benefit flag blank (counts as N)"),
        ("y", "y", ""),
        ("N", "", ""),
    )
    for non_medicaid, documented, why in cases:
        c = line()
        w.participant(c, grandmother.caregiver_id, non_medicaid, documented)
        if why:
            w.flag(c, "PPS010", why, DOCUMENTATION)
    c = line()
    w.participant(c, medicaid_parent.caregiver_id, "N", "")
    w.participant(c, grandmother.caregiver_id, "Y", "Y")
    c = line()
    w.participant(c, grandmother.caregiver_id, "Y", "N")
    w.void(c, paid=c.paid_date + timedelta(days=15))  # voided: no finding


def _plant_gen001(w: _World) -> None:
    peer = w.peers[2]

    def same(member: _Member, payer: str, day: date, units: int, *codes: str) -> _Line:
        return w.h0038(member.member_id, payer, peer, day, units=units, modifiers=_mods(codes))

    # The code is compared as the scope reads it: trimmed and case-insensitive.
    member = w.member("AETNA")
    d = w.day(date(2023, 2, 1), date(2024, 10, 31))
    kept, copy = same(member, "AETNA", d, 4, "UK", "U1"), same(member, "AETNA", d, 4, "U1", "UK")
    kept.hcpcs, copy.hcpcs = "H0038", "h0038 "
    first = w.claim("AETNA", [kept])
    second = w.claim("AETNA", [copy], paid=first.paid_date + timedelta(days=14))
    w.flag(second, "GEN001", "later-paid duplicate: modifiers in another order, code in lower case")
    w.handles["gen001_kept"], w.handles["gen001_copy"] = first, second

    member = w.member("SUNFLOWER")
    d = w.day(date(2023, 2, 1), date(2024, 10, 31))
    first = w.claim("SUNFLOWER", [same(member, "SUNFLOWER", d, 4, "UK")])
    w.claim(
        "SUNFLOWER",
        [same(member, "SUNFLOWER", d, 3, "UK")],
        paid=first.paid_date + timedelta(days=9),
    )

    member = w.member("HEALTHYBLUE")
    twin = same(member, "HEALTHYBLUE", w.day(date(2025, 1, 2), LAST_DOS), 2, "UK")
    w.claim("HEALTHYBLUE", [twin, replace(twin, findings={})], extra_lines=False)  # one claim

    member = w.member("UHC")
    d = w.day(date(2023, 2, 1), date(2024, 10, 31))
    for k in (0, 10, 20):
        c = w.claim("UHC", [same(member, "UHC", d, 3)], paid=d + timedelta(days=12 + k))
        if k:
            w.flag(c, "GEN001", "paid three times: a later-paid copy of the same service")


def _plant_enrollment(w: _World) -> None:
    """GEN002 and duplicates across MCOs around members moving between MCOs."""
    peer = w.peers[3]

    def same(member: _Member, payer: str, day: date, units: int) -> _Line:
        return w.h0038(member.member_id, payer, peer, day, units=units, modifiers=_mods(["UK"]))

    move = date(2024, 7, 1)
    spans: list[tuple[str, date, date | None]] = [
        ("SUNFLOWER", date(2020, 1, 1), move - timedelta(1)),
        ("UHC", move, None),
    ]
    member = w.member("SUNFLOWER", enrollment=spans)
    d = move - timedelta(10)
    kept = w.claim("SUNFLOWER", [same(member, "SUNFLOWER", d, 4)])
    c = w.claim("UHC", [same(member, "UHC", d, 4)], paid=kept.paid_date + timedelta(days=30))
    w.flag(c, "GEN001", "same service paid earlier by SUNFLOWER")
    w.flag(c, "GEN002", "member enrolled with SUNFLOWER, not UHC, on the DOS")
    w.single(member, "SUNFLOWER", peer, move - timedelta(1))  # the last day with Sunflower
    w.single(member, "UHC", peer, move)  # the first day of the new assignment
    c = w.single(member, "SUNFLOWER", peer, move + timedelta(3))
    w.flag(c, "GEN002", "member moved to UHC before the DOS; billed to SUNFLOWER")

    # Paid the same day by two MCOs: the claim ID smaller as text is kept.
    member = w.member("SUNFLOWER")
    d = w.day(date(2023, 6, 1), date(2024, 5, 31))
    paid = d + timedelta(days=21)
    kept = w.claim("SUNFLOWER", [same(member, "SUNFLOWER", d, 5)], paid=paid)
    legacy_id = w.claim_id("UHC", paid, legacy=True)
    c = w.claim("UHC", [same(member, "UHC", d, 5)], paid=paid, claim_id=legacy_id)
    if not (legacy_id > kept.claim_id and int(legacy_id) < int(kept.claim_id)):
        raise RuntimeError("the tie must compare differently as text and as numbers")
    w.flag(c, "GEN001", "duplicate paid the same day; the other claim ID is smaller as text")
    w.flag(c, "GEN002", "member enrolled with SUNFLOWER, not UHC, on the DOS")

    c = w.single(w.member("SUNFLOWER"), "UHC", peer, w.day(date(2023, 2, 1), LAST_DOS))
    w.flag(c, "GEN002", "member enrolled with SUNFLOWER, not UHC, on the DOS")

    member = w.member("HEALTHYBLUE")
    w.single(member, "HEALTHYBLUE", peer, HEALTHYBLUE_FIRST_DOS)  # first day with Healthy Blue
    w.single(member, "AETNA", peer, AETNA_LAST_DOS)

    spans = [("SUNFLOWER", date(2020, 1, 1), date(2024, 3, 31)), ("UHC", date(2024, 3, 15), None)]
    both = w.member("UHC", enrollment=spans)
    w.single(both, "UHC", peer, date(2024, 3, 20))  # enrolled with both MCOs on the DOS
    w.single(both, "SUNFLOWER", peer, date(2024, 3, 25))


def _plant_versions(w: _World) -> None:
    """Voids and replacements inside the first delivery, and chains the follow-up ends."""
    peer = w.peers[4]

    def later(c: _Claim, days: int) -> date:
        return c.paid_date + timedelta(days=days)

    # A two-deep chain in one file: only the last version is current.
    member = w.member("SUNFLOWER", adult=True)
    member.consents.clear()
    a = w.single(member, "SUNFLOWER", peer, w.day(date(2023, 3, 1), date(2024, 6, 30)), units=4)
    b = w.replace(a, w.revise(a, units=3), paid=later(a, 20))
    c = w.replace(b, w.revise(a, units=2), paid=later(b, 20))
    w.flag(c, "PPS009", "adult without consent; last version of a two-deep replacement chain")

    # A void, then a later replacement naming the original: the replacement is current.
    never = w.roles["never"]
    a = w.single(w.member("UHC"), "UHC", peer, w.day(date(2023, 3, 1), date(2024, 6, 30)))
    w.void(a, paid=later(a, 10))
    revived = w.revise(a, rendering_npi=never.npi, billing_npi=never.billing_npi)
    c = w.replace(a, revived, paid=later(a, 30))
    w.flag(c, "PPS005", "replacement paid after a void: provider never added Parent Peer Support")

    # A replacement naming an already-replaced original applies to the current version.
    leaving = w.roles["leaving"]
    assert leaving.enroll_end is not None
    a = w.single(w.member("AETNA"), "AETNA", peer, leaving.enroll_end + timedelta(5))
    b = w.replace(a, w.revise(a, rendering_npi=w.roles["unattested"].npi), paid=later(a, 8))
    c = w.replace(b, w.revise(a, rendering_npi=leaving.npi), paid=later(b, 8), names=a)
    w.flag(c, "PPS005", "replacement naming the replaced original: enrollment ended before DOS")

    # Chains the follow-up delivery continues.
    member = w.member("UHC", adult=True)
    member.consents.clear()
    e = w.single(member, "UHC", peer, w.day(date(2023, 3, 1), date(2024, 6, 30)), units=6)
    e2 = w.replace(e, w.revise(e, units=5), paid=later(e, 15))
    w.flag(e2, "PPS009", "adult without consent (replaced once)")
    w.handles["chain_e"] = e2

    member = w.member("SUNFLOWER")
    _only_plans(member, w.plan(date(2022, 7, 1), license_type="CPRS", signed=date(2022, 6, 1)))
    g = w.single(member, "SUNFLOWER", peer, w.day(date(2023, 3, 1), date(2024, 6, 30)))
    w.flag(g, "PPS008", "treatment plan signed by a CPRS")
    w.handles["chain_g"] = g

    # Two unknown-NPI lines on one claim; the follow-up replaces it with one corrected line.
    member = w.member("AETNA")
    unknown = w.roles["unknown"]
    d = w.day(date(2023, 3, 1), date(2024, 6, 30))
    lines = [w.h0038(member.member_id, "AETNA", unknown, d + timedelta(7 * k)) for k in (0, 1)]
    k = w.claim("AETNA", lines, extra_lines=False)
    for line in k.lines:
        _flag_unknown_peer(w, k, "rendering NPI not on the provider file (two-line claim)", line)
    w.handles["two_lines"] = k

    # Billed to the wrong MCO and replaced; the follow-up voids it by the original's ID.
    base = w.single(w.member("SUNFLOWER"), "UHC", peer, w.day(date(2023, 3, 1), date(2024, 6, 30)))
    replaced = w.replace(
        base, w.revise(base, units=base.scoped.units % 8 + 1), paid=later(base, 11)
    )
    w.flag(replaced, "GEN002", "member enrolled with SUNFLOWER, not UHC (replaced once)")
    w.handles["void_by_original"] = base


_PLANTS: tuple[Callable[[_World], None], ...] = (
    _plant_network,
    _plant_pps001,
    _plant_pps002,
    _plant_pps003,
    _plant_pps004,
    _plant_pps005,
    _plant_pps006,
    _plant_pps007,
    _plant_pps008,
    _plant_pps009,
    _plant_pps010,
    _plant_gen001,
    _plant_enrollment,
    _plant_versions,
)


# ------------------------------------------------------------------------------------------
# Background: clean members, their claims, and ordinary corrections


def _background_member(w: _World, payer: str, sibling_of: _Member | None) -> _Member:
    rng = w.rng
    since = w.day(date(2019, 1, 1), date(2022, 10, 31))
    roll = rng.random()
    enrollment: list[tuple[str, date, date | None]]
    if payer == "AETNA":
        after = "HEALTHYBLUE" if roll < 0.7 else rng.choice(("SUNFLOWER", "UHC"))
        enrollment = [("AETNA", since, AETNA_LAST_DOS), (after, HEALTHYBLUE_FIRST_DOS, None)]
    elif payer == "HEALTHYBLUE":
        enrollment = [("HEALTHYBLUE", w.day(date(2025, 1, 1), date(2025, 2, 28)), None)]
        if roll < 0.5:
            enrollment.insert(0, ("AETNA", since, AETNA_LAST_DOS))
    elif roll < 0.7:
        enrollment = [(payer, since, None)]
    elif roll < 0.85:
        move = date(rng.randint(2023, 2024), rng.randint(1, 12), 1)
        other = "UHC" if payer == "SUNFLOWER" else "SUNFLOWER"
        enrollment = [(payer, since, move - timedelta(1)), (other, move, None)]
    else:  # eligibility lapsed for a while
        lapse = w.day(date(2023, 3, 1), date(2024, 10, 31))
        enrollment = [(payer, since, lapse), (payer, lapse + timedelta(rng.randint(45, 90)), None)]
    if sibling_of is not None and sibling_of.dob is not None:
        born = sibling_of.dob + timedelta(days=rng.randint(-1400, 1400))
        born = max(date(2008, 1, 1), min(date(2019, 12, 31), born))
        return w.member(
            payer,
            dob=born,
            enrollment=list(sibling_of.enrollment),
            caregivers=sibling_of.caregivers,
        )
    member = w.member(payer, enrollment=enrollment, adult=rng.random() < 0.15)
    if rng.random() < 0.4:  # a second caregiver: the first one always passes the age rule
        second = w.caregiver(member.dob, blank_dob=rng.random() < 0.25)
        if rng.random() < 0.3:
            second.end = w.day(date(2023, 1, 1), date(2025, 3, 31))  # custody changed
        member.caregivers.append(second)
    if rng.random() < 0.15:
        member.loc_spans.append(_LocSpan("COMMUNITY", "HCBS_SED", since, None))
    if rng.random() < 0.08:  # a stay that ended before any audited date of service
        start = w.day(date(2021, 6, 1), date(2022, 9, 30))
        end = start + timedelta(days=rng.randint(0, 20))
        member.loc_spans.append(_LocSpan("ACUTE", "INPATIENT_PSYCH", start, end))
    if rng.random() < 0.2 and not member.consents:
        member.consents.append(_Consent("ROI", w.day(date(2021, 1, 1), date(2024, 12, 31)), None))
    return member


def _background(w: _World, members_per_mco: int) -> None:
    w.rng = rng = random.Random(f"{w.seed}:background")
    everyone = w.peers + w.solos
    population = [m for payer in MCOS for m in w.regulars[payer]]
    for payer in MCOS:
        previous: _Member | None = None
        for _ in range(members_per_mco):
            sibling = previous if previous is not None and rng.random() < 0.1 else None
            previous = _background_member(w, payer, sibling)
            population.append(previous)
    usual = {m.member_id: rng.choice(everyone) for m in population}
    caregiver_of = {m.member_id: m.caregivers[0] for m in population}

    claims: list[_Claim] = []
    for member in population:
        for _ in range(rng.randint(5, 10)):
            day = w.day(POLICY_EFFECTIVE, LAST_DOS)
            payers = member.payers_on(day)
            if not payers:
                continue
            peer = usual[member.member_id]
            if not peer.valid_on(day):
                peer = rng.choice([p for p in everyone if p.valid_on(day)])
            lines: list[_Line] = []
            if rng.random() < 0.35 and day not in w._busy.get(member.member_id, set()):
                end = day + timedelta(days=rng.randint(1, 5)) if rng.random() < 0.05 else None
                blank = peer.billing_npi == peer.npi and rng.random() < 0.3
                lines.append(
                    w.h0038(
                        member.member_id,
                        payers[0],
                        peer,
                        day,
                        end=end,
                        rendering_npi="" if blank else None,
                    )
                )
            for _ in range(rng.randint(0 if lines else 1, 2)):
                lines.append(w.other_line(member.member_id, peer.billing_npi, day))
            rng.shuffle(lines)
            claims.append(w.claim(payers[0], lines, extra_lines=False))

    # Group sessions of 3 to 6 members.
    for payer in MCOS:
        for _ in range(max(2, (members_per_mco + REGULARS_PER_MCO) // 4)):
            day = w.day(*_payer_window(payer))
            peer = rng.choice([p for p in w.peers if p.valid_on(day)])
            pos = rng.choice(("11", "53", "99"))
            has_sid = "session_id" in _DIALECTS[payer].columns and rng.random() < 0.75
            sid = w.fresh("s") if has_sid else ""
            size = rng.randint(3, 6)
            free = [
                m
                for m in population
                if payer in m.payers_on(day) and day not in w._busy.get(m.member_id, set())
            ]
            if (peer.npi, day, pos, sid) in w._session_keys or len(free) < size:
                continue
            w._session_keys.add((peer.npi, day, pos, sid))
            for m in rng.sample(free, size):
                line = w.h0038(m.member_id, payer, peer, day, group=True, pos=pos, session_id=sid)
                claims.append(w.claim(payer, [line]))

    # Record reviews name the member's first caregiver, who passes the age rule.
    for claim in claims:
        scoped = [ln for ln in claim.lines if ln.in_scope]
        if scoped and rng.random() < 0.08:
            named = caregiver_of[scoped[0].member_id]
            if named.medicaid_id:
                w.participant(claim, named.caregiver_id, "N", rng.choice(("", "N", "Y")))
            else:
                w.participant(claim, named.caregiver_id, "Y", "Y")

    # Ordinary corrections: replacements billing a unit less, and voids.
    for claim in claims:
        roll = rng.random()
        paid = claim.paid_date + timedelta(days=rng.randint(14, 60))
        if paid > FIRST_DELIVERY or roll >= 0.08:
            continue
        if roll < 0.05:
            lines = [replace(ln, findings={}) for ln in claim.lines]
            for line in lines:
                if line.units > 1:
                    per_unit = line.paid_amount / line.units
                    line.units -= 1
                    line.paid_amount = (per_unit * line.units).quantize(Decimal("0.01"))
            w.replace(claim, lines, paid=paid)
        else:
            w.void(claim, paid=paid)
    w.background_claims = claims


# ------------------------------------------------------------------------------------------
# The follow-up delivery


def _followup(w: _World) -> None:
    w.rng = random.Random(f"{w.seed}:followup")
    # Distinct paid dates: corrections of one chain must never tie.
    span = (FOLLOWUP_DELIVERY - FOLLOWUP_FIRST_PAID).days - 4
    offsets = sorted(w.rng.sample(range(span), 20))
    paid_days = iter(FOLLOWUP_FIRST_PAID + timedelta(days=k) for k in offsets)
    h = w.handles

    def paid() -> date:
        return next(paid_days)

    # A void fixing a finding, and a void of a clean claim.
    w.void(h["pps001_before"], paid=paid(), delivery=2)
    w.void(h["pps001_first_day"], paid=paid(), delivery=2)

    # A replacement fixing a finding: the attested peer who really delivered the service.
    old = h["pps004_unattested"]
    actual = next(p for p in w.peers if p.valid_on(old.scoped.start))
    w.replace(old, w.revise(old, rendering_npi=actual.npi), paid=paid(), delivery=2)

    # A replacement still breaking the same rule.
    old = h["pps008_signed_late"]
    units = old.scoped.units % 8 + 1
    new = w.replace(
        old,
        w.revise(old, units=units, paid_amount=_H0038_RATE["AETNA"] * units),
        paid=paid(),
        delivery=2,
    )
    w.flag(new, "PPS008", "replacement still dated the day before the plan was signed")

    # Completing a chain started in the first delivery: recoded to H2017, out of scope.
    old = h["chain_e"]
    w.replace(old, w.revise(old, hcpcs="H2017"), paid=paid(), delivery=2)

    # A two-deep chain inside this delivery; its second link names the first original.
    old = h["chain_g"]
    first = w.replace(old, w.revise(old), paid=paid(), delivery=2)
    units = old.scoped.units % 8 + 1
    new = w.replace(first, w.revise(old, units=units), paid=paid(), names=old, delivery=2)
    w.flag(new, "PPS008", "treatment plan signed by a CPRS (replaced twice)")

    # Voiding the kept copy of a duplicate: the other copy is no longer a duplicate.
    w.void(h["gen001_kept"], paid=paid(), delivery=2)
    h["gen001_copy"].scoped.findings.pop("GEN001")

    # Voiding one line of the cross-MCO group of 9 leaves 8: no longer oversized.
    dropped = next(c for c in w.cross_mco_session if c.payer == "UHC")
    w.void(dropped, paid=paid(), delivery=2)
    for c in w.cross_mco_session:
        c.scoped.findings.pop("PPS002")

    # One corrected line replaces a two-line claim: the second line is gone.
    old = h["two_lines"]
    fixed = w.peers[5]
    corrected = replace(
        old.lines[0], rendering_npi=fixed.npi, billing_npi=fixed.billing_npi, findings={}
    )
    w.replace(old, [corrected], paid=paid(), delivery=2)

    # A void naming the original of a chain replaced in the first delivery.
    old = h["void_by_original"]
    w.void(old, paid=paid(), names=old, delivery=2)

    # New lines with findings.
    assert w.rn_member is not None
    line = w.h0038(w.rn_member.member_id, "SUNFLOWER", w.peers[6], date(2025, 6, 12))
    c = w.claim("SUNFLOWER", [line], paid=paid(), delivery=2, extra_lines=False)
    w.flag(c, "PPS008", "new line: treatment plan signed by an RN")
    member = w.regulars["HEALTHYBLUE"][0]
    line = w.h0038(member.member_id, "HEALTHYBLUE", w.roles["unattested"], date(2025, 6, 3))
    c = w.claim("HEALTHYBLUE", [line], paid=paid(), delivery=2, extra_lines=False)
    w.flag(c, "PPS004", "new line: lived experience not attested (N)")
    again = replace(h["pps004_blank_date"].scoped, findings={})
    c = w.claim("AETNA", [again], paid=paid(), delivery=2, extra_lines=False)
    w.flag(c, "GEN001", "billed again in a later delivery; the first claim was paid earlier")

    # A line sent again unchanged replaces its own earlier copy: nothing changes.
    resent = h["pps009_birthday"]
    w.redelivered.append((resent, resent.scoped))

    # MCOs void clean claims too.
    clean = next(
        c
        for c in w.background_claims
        if c.chain.current is c and any(ln.in_scope and "HQ" not in ln.modifiers for ln in c.lines)
    )
    w.void(clean, paid=paid(), delivery=2)


# ------------------------------------------------------------------------------------------
# Policy packs' scenarios


class PackWorld:
    """What a policy pack's scenarios may add to the demo world.

    Members, providers and claims land in the same files as the Parent Peer Support world;
    a flagged line's finding is written to the truth under the pack's policy_id. The pack
    draws from its own random stream (`rng`), so its size never shifts another layer.
    """

    def __init__(self, world: _World, policy_id: str) -> None:
        self._world = world
        self.policy_id = policy_id
        self.rng = world.rng = random.Random(f"{world.seed}:{policy_id}")

    def member(self, enrollment: Sequence[tuple[str, date, date | None]], dob: date) -> str:
        """A member on the member file, enrolled as given (payer, start, end or None)."""
        member = _Member(self._world.fresh("member"), dob, list(enrollment), caregivers=[])
        self._world.members.append(member)
        return member.member_id

    def provider(
        self,
        name: str,
        provider_type: str = "",
        *,
        enroll_start: date = date(2015, 1, 1),
        enroll_end: date | None = None,
    ) -> str:
        """A provider on the provider file; its Parent Peer Support columns are blank."""
        npi = self._world.fresh("npi")
        self._world.providers.append(
            _Provider(
                npi=npi,
                name=name,
                enroll_start=enroll_start,
                enroll_end=enroll_end,
                pps_start=None,
                attested="",
                attested_date=None,
                dob=None,
                billing_npi=npi,
                provider_type=provider_type,
            )
        )
        return npi

    def line(
        self,
        member_id: str,
        code: str,
        dos: date,
        units: int,
        paid_amount: Decimal,
        *,
        rendering_npi: str,
        billing_npi: str,
        modifiers: Sequence[str] = (),
        pos: str = "11",
    ) -> _Line:
        return _Line(
            line_number=1,
            member_id=member_id,
            rendering_npi=rendering_npi,
            billing_npi=billing_npi,
            hcpcs=code,
            modifiers=_mods(modifiers),
            start=dos,
            end=dos,
            pos=pos,
            units=units,
            paid_amount=paid_amount,
            session_id="",
            diagnosis=self.rng.choice(_DIAGNOSES),
            policy_id=self.policy_id,
        )

    def claim(self, payer: str, lines: list[_Line], paid: date) -> _Claim:
        """An original claim of these lines, numbered in order, paid on `paid`."""
        if "hcpcs_modifier_4" not in _DIALECTS[payer].columns and any(
            ln.modifiers[3] for ln in lines
        ):
            raise ValueError(f"{payer}'s extract has no fourth modifier column")
        if paid > FIRST_DELIVERY or any(paid < ln.start for ln in lines):
            raise ValueError("a claim is paid after its dates of service, by the delivery")
        return self._world.claim(payer, lines, paid=paid, extra_lines=False)

    def void(self, claim: _Claim, paid: date) -> None:
        """A void of the claim in the same delivery: its lines count nothing any more."""
        self._world.void(claim, paid=paid)

    def expect(
        self, claim: _Claim, line_number: int, rule_id: str, why: str, severity: str = VIOLATION
    ) -> None:
        """The finding the pack's rules must produce on that line of the claim."""
        line = next(ln for ln in claim.lines if ln.line_number == line_number)
        line.findings[rule_id] = (severity, why)


def pack_scenarios() -> list[tuple[str, Callable[[PackWorld], None]]]:
    """Each pack folder's `plant` from its scenarios.py, in folder-name order."""
    found: list[tuple[str, Callable[[PackWorld], None]]] = []
    policies = project_path("policies")
    if not policies.is_dir():
        return found
    for scenarios in sorted(policies.glob("*/scenarios.py")):
        policy_id = scenarios.parent.name
        spec = importlib.util.spec_from_file_location(f"_pack_scenarios_{policy_id}", scenarios)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {scenarios}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.append((policy_id, module.plant))
    return found


# ------------------------------------------------------------------------------------------
# Writing


def _build(seed: int, members_per_mco: int | None) -> _World:
    w = _World(seed)
    for plant in _PLANTS:
        plant(w)
    if members_per_mco is not None:
        _background(w, members_per_mco)
    for policy_id, plant_pack in pack_scenarios():
        plant_pack(PackWorld(w, policy_id))
    return w


def _csv_bytes(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    delimiter: str = ",",
    bom: bool = False,
    newline: str = "\n",
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig" if bom else "utf-8")


def _claim_row(claim: _Claim, line: _Line, dialect: _Dialect) -> dict[str, str]:
    style = dialect.date_style
    row = {
        "payer": claim.payer,
        "claim_id": claim.claim_id,
        "claim_line_number": str(line.line_number),
        "claim_frequency_code": claim.frequency,
        "original_claim_id": claim.original_claim_id,
        "member_id": line.member_id,
        "rendering_npi": line.rendering_npi,
        "billing_npi": line.billing_npi,
        "hcpcs_code": line.hcpcs,
        "claim_line_start_date": _fmt(line.start, style),
        "claim_line_end_date": _fmt(line.end, style),
        "place_of_service_code": line.pos,
        "service_unit_quantity": dialect.units_style.format(line.units),
        "paid_amount": f"{line.paid_amount:.2f}",
        "paid_date": _fmt(claim.paid_date, style),
        "session_id": line.session_id,
        "diagnosis_code_1": line.diagnosis,
    }
    for position, modifier in enumerate(line.modifiers, start=1):
        row[f"hcpcs_modifier_{position}"] = modifier
    return row


def _claim_files(w: _World, delivery: int) -> dict[str, bytes]:
    stamp = (FIRST_DELIVERY if delivery == 1 else FOLLOWUP_DELIVERY).strftime("%Y%m%d")
    files: dict[str, bytes] = {}
    for payer in MCOS:
        dialect = _DIALECTS[payer]
        pairs = [
            (c, ln)
            for c in w.claims
            if c.payer == payer and c.delivery == delivery
            for ln in c.lines
        ]
        if delivery == 2:
            pairs += [(c, ln) for c, ln in w.redelivered if c.payer == payer]
        pairs.sort(key=lambda p: (p[0].paid_date, p[0].claim_id, p[1].line_number))
        rows = [_claim_row(c, ln, dialect) for c, ln in pairs]
        name = f"claims/{payer}/{dialect.stem}{stamp}{dialect.suffix}"
        if dialect.suffix == ".parquet":
            columns = {
                c: pa.array([r[c] or None for r in rows], pa.string()) for c in dialect.columns
            }
            sink = io.BytesIO()
            pq.write_table(pa.table(columns), sink)
            files[name] = sink.getvalue()
        else:
            files[name] = _csv_bytes(
                dialect.columns,
                [[r[c] for c in dialect.columns] for r in rows],
                delimiter=dialect.delimiter,
                bom=dialect.bom,
                newline=dialect.newline,
            )
    return files


def _reference_files(w: _World) -> dict[str, bytes]:
    def d(day: date | None, style: str = ISO) -> str:
        return _fmt(day, style)

    members = sorted(w.members, key=lambda m: m.member_id)
    enrollment = [[m.member_id, p, d(lo), d(hi)] for m in members for p, lo, hi in m.enrollment]
    seen: set[str] = set()
    for m in members:  # parents with Medicaid share their child's eligibility and MCO
        for cg in m.caregivers:
            if cg.medicaid_id and cg.medicaid_id not in seen:
                seen.add(cg.medicaid_id)
                enrollment += [[cg.medicaid_id, p, d(lo), d(hi)] for p, lo, hi in m.enrollment]
    providers = sorted((p for p in w.providers if p.on_file), key=lambda p: p.npi)
    participants = sorted(
        [
            p.claim.payer,
            p.claim.claim_id,
            str(p.line_number),
            p.caregiver_id,
            p.non_medicaid,
            p.direct_benefit,
        ]
        for p in w.participants
    )
    files = {
        "members.csv": _csv_bytes(
            REFERENCE_COLUMNS["members"],
            [[m.member_id, d(m.dob)] for m in members if m.on_member_file],
        ),
        "enrollment.csv": _csv_bytes(REFERENCE_COLUMNS["enrollment"], sorted(enrollment)),
        "providers.csv": _csv_bytes(
            REFERENCE_COLUMNS["providers"],
            [
                [
                    p.npi,
                    p.name,
                    d(p.enroll_start),
                    d(p.enroll_end),
                    d(p.pps_start),
                    p.attested,
                    d(p.attested_date),
                    d(p.dob),
                    p.provider_type,
                ]
                for p in providers
            ],
        ),
        # Level of care comes pipe-delimited with X12 dates from the utilisation system.
        "level_of_care.csv": _csv_bytes(
            REFERENCE_COLUMNS["level_of_care"],
            [
                [m.member_id, s.category, s.loc_type, d(s.start, X12), d(s.end, X12)]
                for m in members
                for s in m.loc_spans
            ],
            delimiter="|",
        ),
        "treatment_plans.csv": _csv_bytes(
            REFERENCE_COLUMNS["treatment_plans"],
            [
                [
                    p.plan_id,
                    m.member_id,
                    d(p.start),
                    d(p.end),
                    p.includes_pps,
                    d(p.signed),
                    p.practitioner_npi,
                    p.license_type,
                ]
                for m in members
                for p in m.plans
            ],
        ),
        "consents.csv": _csv_bytes(
            REFERENCE_COLUMNS["consents"],
            [
                [m.member_id, c.consent_type, d(c.signed, US), d(c.revoked, US)]
                for m in members
                for c in m.consents
            ],
        ),
        "caregivers.csv": _csv_bytes(
            REFERENCE_COLUMNS["caregivers"],
            [
                [
                    cg.caregiver_id,
                    m.member_id,
                    cg.relationship,
                    d(cg.dob),
                    cg.medicaid_id,
                    d(cg.start),
                    d(cg.end),
                ]
                for m in members
                for cg in m.caregivers
            ],
        ),
        "service_participants.csv": _csv_bytes(
            REFERENCE_COLUMNS["service_participants"],
            participants,
        ),
        # Healthy Blue has not implemented yet; Sunflower implemented after paying some lines.
        "mco_implementation.csv": _csv_bytes(
            REFERENCE_COLUMNS["mco_implementation"],
            [
                # a blank policy: the row applies to every policy
                ["AETNA", "2023-03-01", "2023-10-31", ""],
                ["SUNFLOWER", "2023-07-01", "", ""],
                ["UHC", "2023-02-15", "2023-08-31", ""],
                ["HEALTHYBLUE", "", "", ""],
            ],
        ),
    }
    return {f"reference/{name}": data for name, data in files.items()}


def _write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _write_truth(w: _World, truth_path: Path) -> int:
    rows = w.truth()
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    body = [[payer, cid, str(n), *rest] for payer, cid, n, *rest in rows]
    truth_path.write_bytes(_csv_bytes(TRUTH_COLUMNS, body))
    return len(rows)


def generate(
    input_dir: Path, truth_path: Path, *, seed: int = 2023, members_per_mco: int = 40
) -> GenerationStats:
    """Write a first delivery (claim extracts and reference files) and its truth file.

    `members_per_mco` clean background members are added per MCO on top of the fixed
    planted scenarios and group regulars. The same arguments always give the same bytes.
    """
    if members_per_mco < 0:
        raise ValueError("members_per_mco must not be negative")
    w = _build(seed, members_per_mco)
    files = _claim_files(w, 1) | _reference_files(w)
    _write(Path(input_dir), files)
    return GenerationStats(
        claim_lines=sum(len(c.lines) for c in w.claims),
        in_scope_lines=len(w.current_lines()),
        planted_findings=_write_truth(w, Path(truth_path)),
        files=len(files),
    )


def generate_followup(input_dir: Path, truth_path: Path, *, seed: int = 2023) -> GenerationStats:
    """Add a second delivery to a folder written by `generate` with the same seed.

    The first delivery is rebuilt from the seed (its size read back from members.csv) and
    checked byte for byte against the folder; then a new, later file per MCO is written with
    voids, replacements and new lines, and the truth file is rewritten with the findings
    expected once both deliveries are loaded.
    """
    input_dir = Path(input_dir)
    with (input_dir / "reference" / "members.csv").open(encoding="utf-8") as handle:
        on_file = sum(1 for _ in handle) - 1
    planted = sum(m.on_member_file for m in _build(seed, None).members)
    members_per_mco, remainder = divmod(on_file - planted, len(MCOS))
    if remainder or members_per_mco < 0:
        raise ValueError(f"{input_dir} was not written by generate(seed={seed})")
    w = _build(seed, members_per_mco)
    for name, data in (_claim_files(w, 1) | _reference_files(w)).items():
        path = input_dir / name
        if not path.is_file() or path.read_bytes() != data:
            raise ValueError(f"{input_dir} was not written by generate(seed={seed}): {name}")
    _followup(w)
    files = _claim_files(w, 2)
    _write(input_dir, files)
    return GenerationStats(
        claim_lines=sum(len(c.lines) for c in w.claims if c.delivery == 2) + len(w.redelivered),
        in_scope_lines=len(w.current_lines()),
        planted_findings=_write_truth(w, Path(truth_path)),
        files=len(files),
    )
