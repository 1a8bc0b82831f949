"""The synthetic demo world: KanCare claim extracts in every payer dialect, and their truth.

`generate` writes an input folder shaped like data-contract.md and a truth file listing every
finding a correct reading of the policy packs' rules must produce on it. `generate_followup`
adds a second delivery of voids, replacements and new lines, and rewrites the truth.

The world itself knows no policy: it holds the MCOs and their extract dialects, the members,
providers and reference rows, the claims and their versions, the two deliveries and the truth
file. What is in it comes from the policy packs: each pack's `policies/<policy_id>/scenarios.py`
has a `plant(world)` function, and may have a `plant_followup(world)` for the second
delivery, both given a `PackWorld`. A planted line declares the findings it must produce, and
its finding is written to the truth under the pack's policy_id.

Packs plant in the order of their bulletins, each from its own seeded random streams, so that
a newer bulletin's pack never shifts an older pack's identifiers. `members_per_mco` asks each
pack for that many clean background members per MCO (packs may plant a fixed background of
their own instead).
"""

from __future__ import annotations

import csv
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

from pipelines.audit.packs import Pack, discover
from pipelines.ingest.datasets import CLAIM_COLUMNS, REFERENCE_DATASETS

__all__ = ["MCOS", "GenerationStats", "PackWorld", "generate", "generate_followup"]

MCOS = ("AETNA", "SUNFLOWER", "UHC", "HEALTHYBLUE")
AETNA_LAST_DOS = date(2024, 12, 31)  # Aetna left KanCare; its claims run out after
HEALTHYBLUE_FIRST_DOS = date(2025, 1, 1)
LAST_DOS = date(2025, 4, 30)  # last date of service in the first delivery
FIRST_DELIVERY = date(2025, 6, 30)  # extract date of the first delivery: nothing paid later
FOLLOWUP_FIRST_PAID = date(2025, 7, 7)
FOLLOWUP_DELIVERY = date(2025, 9, 30)
EXTRACT_DATES = {1: FIRST_DELIVERY, 2: FOLLOWUP_DELIVERY}  # by delivery
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
_DIAGNOSES = ("F43.10", "F90.2", "F32.1", "F91.3", "F84.0", "F41.1", "F31.81", "F33.1", "F43.25")

Modifiers = tuple[str, str, str, str]


@dataclass(frozen=True)
class GenerationStats:
    """Counts for what one call wrote.

    claim_lines: rows in the claim files this call wrote; in_scope_lines: current lines in
    some pack's scope once every delivery so far is loaded; planted_findings: rows in the
    truth file; files: files this call wrote under the input folder.
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


def mods(codes: Sequence[str] = ()) -> Modifiers:
    padded = [*codes, "", "", "", ""]
    return (padded[0], padded[1], padded[2], padded[3])


def _npi_check_digit(first9: str) -> str:
    """Luhn check digit of an NPI, computed over the "80840" card-issuer prefix."""
    total = 0
    for i, ch in enumerate(reversed("80840" + first9)):
        d = int(ch) * (2 if i % 2 == 0 else 1)  # doubling starts next to the check digit
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _fmt(day: date | None, style: str) -> str:
    return "" if day is None else day.strftime(style)


@dataclass
class Caregiver:
    caregiver_id: str
    relationship: str
    dob: date | None
    medicaid_id: str
    start: date | None
    end: date | None


@dataclass
class Plan:
    plan_id: str
    start: date
    end: date | None
    includes_pps: str
    signed: date | None
    practitioner_npi: str
    license_type: str


@dataclass
class Consent:
    consent_type: str
    signed: date | None
    revoked: date | None


@dataclass
class LocSpan:
    category: str
    loc_type: str
    start: date | None
    end: date | None


@dataclass
class Provider:
    npi: str
    name: str
    enroll_start: date | None
    enroll_end: date | None
    pps_start: date | None
    attested: str
    attested_date: date | None
    dob: date | None
    billing_npi: str  # whom this provider's lines are billed under (an organisation or itself)
    on_file: bool = True
    provider_type: str = ""  # blank: unknown


@dataclass
class Member:
    member_id: str
    dob: date | None
    enrollment: list[tuple[str, date, date | None]]
    caregivers: list[Caregiver]
    plans: list[Plan] = field(default_factory=list)
    consents: list[Consent] = field(default_factory=list)
    loc_spans: list[LocSpan] = field(default_factory=list)
    on_member_file: bool = True

    def payers_on(self, day: date) -> list[str]:
        return [p for p, lo, hi in self.enrollment if lo <= day and (hi is None or day <= hi)]


@dataclass
class Line:
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
    policy_id: str = ""  # whose rules the findings are: the pack that planted the line


@dataclass
class Chain:
    """A claim and its corrections; `current` is None while the chain is voided."""

    current: Claim | None = None


@dataclass
class Claim:
    payer: str
    claim_id: str
    frequency: str  # as written: "1", "7", "8", or blank for an original
    original_claim_id: str
    paid_date: date
    lines: list[Line]
    delivery: int
    chain: Chain = field(default_factory=Chain, repr=False)


@dataclass
class Participant:
    claim: Claim
    line_number: int
    caregiver_id: str
    non_medicaid: str
    direct_benefit: str


class _World:
    """Everything written to the input folder, and the findings each line must produce."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # each pack replaces it with streams of its own
        self.members: list[Member] = []
        self.providers: list[Provider] = []
        self.chains: list[Chain] = []
        self.claims: list[Claim] = []
        self.participants: list[Participant] = []
        self.redelivered: list[tuple[Claim, Line]] = []  # lines sent again unchanged
        self._ids: set[str] = set()
        self._claim_ids: dict[str, set[str]] = {p: set() for p in MCOS}

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

    # claims and their versions ----------------------------------------------------------

    def claim(
        self,
        payer: str,
        lines: list[Line],
        *,
        paid: date | None = None,
        delivery: int = 1,
        claim_id: str = "",
    ) -> Claim:
        """An original claim of `lines`, numbered in order; paid 7 to 45 days after its last
        date of service (by the first delivery) unless `paid` is given."""
        for number, line in enumerate(lines, start=1):
            line.line_number = number
        if paid is None:
            paid = max(line.start for line in lines) + timedelta(days=self.rng.randint(7, 45))
            paid = min(paid, FIRST_DELIVERY)
        if claim_id:
            self._claim_ids[payer].add(claim_id)
        new = Claim(
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

    def replace(
        self,
        old: Claim,
        lines: list[Line],
        *,
        paid: date,
        names: Claim | None = None,
        delivery: int = 1,
    ) -> Claim:
        """A replacement (frequency 7) in `old`'s chain, naming `names` (default `old`),
        which may be an already-superseded version."""
        for number, line in enumerate(lines, start=1):
            line.line_number = number
        new = Claim(
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
        self, old: Claim, *, paid: date, names: Claim | None = None, delivery: int = 1
    ) -> Claim:
        """A void (frequency 8) repeating the current lines with negative amounts."""
        source = old.chain.current or old
        lines = [replace(ln, paid_amount=-ln.paid_amount, findings={}) for ln in source.lines]
        new = Claim(
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

    # what the audit must find -------------------------------------------------------

    def current_lines(self, codes: set[str]) -> list[tuple[Claim, Line]]:
        """The current lines whose code is in `codes`, as the scope reads it."""
        return [
            (chain.current, line)
            for chain in self.chains
            if chain.current is not None
            for line in chain.current.lines
            if line.hcpcs.strip().upper() in codes
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
# Policy packs' scenarios


class PackWorld:
    """What a policy pack's scenarios may add to the demo world.

    Members, providers and claims land in the same files as every other pack's; a flagged
    line's finding is written to the truth under the pack's policy_id. The pack draws from
    its own random streams (`rng`, `stream`), so its size never shifts another pack's world.
    `kept` carries what the first delivery's scenarios leave for the pack's follow-up.
    """

    def __init__(self, world: _World, pack: Pack, members_per_mco: int | None) -> None:
        self._world = world
        self.policy_id = pack.id
        self.parameters = pack.parameters
        self.codes = pack.codes
        self.members_per_mco = members_per_mco  # clean background members asked per MCO
        self.delivery = 1
        self.kept: dict[str, Any] = {}
        self.stream(pack.id)

    @property
    def rng(self) -> random.Random:
        return self._world.rng

    def stream(self, name: str) -> random.Random:
        """Draw from here on from the seeded stream `name` (the pack chooses its names)."""
        self._world.rng = random.Random(f"{self._world.seed}:{name}")
        return self._world.rng

    # identifiers, dates and the extracts ------------------------------------------------

    def fresh(self, kind: str) -> str:
        """A new identifier: member, npi, caregiver, plan, or otherwise a session ID."""
        return self._world.fresh(kind)

    def claim_id(self, payer: str, paid: date, *, legacy: bool = False) -> str:
        return self._world.claim_id(payer, paid, legacy=legacy)

    def claim_id_taken(self, payer: str, claim_id: str) -> bool:
        return claim_id in self._world._claim_ids[payer]

    def day(self, lo: date, hi: date) -> date:
        return self._world.day(lo, hi)

    def diagnosis(self) -> str:
        return self.rng.choice(_DIAGNOSES)

    @staticmethod
    def has_column(payer: str, column: str) -> bool:
        """Whether the MCO's extract has the column (Sunflower's has no session_id, say)."""
        return column in _DIALECTS[payer].columns

    # reference data ---------------------------------------------------------------------

    def member(self, enrollment: Sequence[tuple[str, date, date | None]], dob: date) -> str:
        """A member on the member file, enrolled as given (payer, start, end or None)."""
        member = Member(self._world.fresh("member"), dob, list(enrollment), caregivers=[])
        self._world.members.append(member)
        return member.member_id

    def add_member(self, member: Member) -> None:
        """A member with every reference row the pack gives it (caregivers, plans, ...)."""
        self._world.members.append(member)

    def provider(
        self,
        name: str,
        provider_type: str = "",
        *,
        enroll_start: date = date(2015, 1, 1),
        enroll_end: date | None = None,
    ) -> str:
        """A provider on the provider file; the columns it is not given are blank."""
        npi = self._world.fresh("npi")
        self._world.providers.append(
            Provider(
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

    def add_provider(self, provider: Provider) -> None:
        self._world.providers.append(provider)

    def participant(
        self,
        claim: Claim,
        line_number: int,
        caregiver_id: str,
        non_medicaid: str,
        direct_benefit: str,
    ) -> None:
        """A service-participant row naming a caregiver on that line of the claim."""
        self._world.participants.append(
            Participant(claim, line_number, caregiver_id, non_medicaid, direct_benefit)
        )

    # claims -----------------------------------------------------------------------------

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
    ) -> Line:
        return Line(
            line_number=1,
            member_id=member_id,
            rendering_npi=rendering_npi,
            billing_npi=billing_npi,
            hcpcs=code,
            modifiers=mods(modifiers),
            start=dos,
            end=dos,
            pos=pos,
            units=units,
            paid_amount=paid_amount,
            session_id="",
            diagnosis=self.diagnosis(),
            policy_id=self.policy_id,
        )

    def claim(
        self, payer: str, lines: list[Line], paid: date | None = None, *, claim_id: str = ""
    ) -> Claim:
        """An original claim of these lines in this delivery, numbered in order, paid on
        `paid` (or 7 to 45 days after its last date of service), under `claim_id` if given."""
        if not self.has_column(payer, "hcpcs_modifier_4") and any(ln.modifiers[3] for ln in lines):
            raise ValueError(f"{payer}'s extract has no fourth modifier column")
        if paid is not None and (
            paid > EXTRACT_DATES[self.delivery] or any(paid < ln.start for ln in lines)
        ):
            raise ValueError("a claim is paid after its dates of service, by the delivery")
        return self._world.claim(payer, lines, paid=paid, delivery=self.delivery, claim_id=claim_id)

    def replace(
        self, old: Claim, lines: list[Line], paid: date, *, names: Claim | None = None
    ) -> Claim:
        """A replacement (frequency 7) in `old`'s chain, naming `names` (default `old`)."""
        return self._world.replace(old, lines, paid=paid, names=names, delivery=self.delivery)

    def void(self, claim: Claim, paid: date, *, names: Claim | None = None) -> Claim:
        """A void (frequency 8) of the claim's chain: its lines count nothing any more."""
        return self._world.void(claim, paid=paid, names=names, delivery=self.delivery)

    def redeliver(self, claim: Claim, line: Line) -> None:
        """The line sent again unchanged in this (later) delivery."""
        self._world.redelivered.append((claim, line))

    def expect(
        self, claim: Claim, line_number: int, rule_id: str, why: str, severity: str = VIOLATION
    ) -> None:
        """The finding the pack's rules must produce on that line of the claim."""
        line = next(ln for ln in claim.lines if ln.line_number == line_number)
        line.findings[rule_id] = (severity, why)


@dataclass(frozen=True)
class _Scenarios:
    pack: Pack
    plant: Callable[[PackWorld], None]
    plant_followup: Callable[[PackWorld], None] | None


def _bulletin_order(pack: Pack) -> tuple[date, str]:
    return (pack.bulletin_date or date.max, pack.id)


def pack_scenarios() -> list[_Scenarios]:
    """Each pack's scenarios.py hooks, in the order of the packs' bulletins."""
    found: list[_Scenarios] = []
    for pack in sorted(discover().values(), key=_bulletin_order):
        if (pack.folder / "scenarios.py").is_file():
            module = pack.module("scenarios")
            found.append(_Scenarios(pack, module.plant, getattr(module, "plant_followup", None)))
    return found


# ------------------------------------------------------------------------------------------
# Writing


def _build(
    seed: int, members_per_mco: int | None
) -> tuple[_World, list[tuple[_Scenarios, PackWorld]]]:
    """The first delivery: every pack's scenarios in bulletin order. `members_per_mco` None
    asks the packs for their planted scenarios alone (how generate_followup sizes a folder)."""
    w = _World(seed)
    planted: list[tuple[_Scenarios, PackWorld]] = []
    for scenarios in pack_scenarios():
        world = PackWorld(w, scenarios.pack, members_per_mco)
        scenarios.plant(world)
        planted.append((scenarios, world))
    return w, planted


def _followup(planted: list[tuple[_Scenarios, PackWorld]]) -> None:
    """The second delivery: each pack's follow-up, if it has one, in the same order."""
    for scenarios, world in planted:
        if scenarios.plant_followup is not None:
            world.delivery = 2
            world.stream(f"{world.policy_id}:followup")
            scenarios.plant_followup(world)


def _in_scope_codes() -> set[str]:
    return {code for pack in discover().values() for code in pack.codes}


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


def _claim_row(claim: Claim, line: Line, dialect: _Dialect) -> dict[str, str]:
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

    Each pack is asked for `members_per_mco` clean background members per MCO on top of its
    fixed planted scenarios. The same arguments always give the same bytes.
    """
    if members_per_mco < 0:
        raise ValueError("members_per_mco must not be negative")
    w, _ = _build(seed, members_per_mco)
    files = _claim_files(w, 1) | _reference_files(w)
    _write(Path(input_dir), files)
    return GenerationStats(
        claim_lines=sum(len(c.lines) for c in w.claims),
        in_scope_lines=len(w.current_lines(_in_scope_codes())),
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
    planted = sum(m.on_member_file for m in _build(seed, None)[0].members)
    members_per_mco, remainder = divmod(on_file - planted, len(MCOS))
    if remainder or members_per_mco < 0:
        raise ValueError(f"{input_dir} was not written by generate(seed={seed})")
    w, planted_packs = _build(seed, members_per_mco)
    for name, data in (_claim_files(w, 1) | _reference_files(w)).items():
        path = input_dir / name
        if not path.is_file() or path.read_bytes() != data:
            raise ValueError(f"{input_dir} was not written by generate(seed={seed}): {name}")
    _followup(planted_packs)
    files = _claim_files(w, 2)
    _write(input_dir, files)
    return GenerationStats(
        claim_lines=sum(len(c.lines) for c in w.claims if c.delivery == 2) + len(w.redelivered),
        in_scope_lines=len(w.current_lines(_in_scope_codes())),
        planted_findings=_write_truth(w, Path(truth_path)),
        files=len(files),
    )
