"""What the Parent Peer Support pack plants in the demo world (KMAP 22321, HCPCS H0038).

The network and the planted scenarios come first: peer providers, billing organisations, a
pool of group regulars per MCO, and one small story per rule boundary. A planted line
declares the findings it must produce; every other fact about it is clean. Then the
background: `members_per_mco` clean members per MCO with ordinary claims, most of them other
behavioural-health codes, so that only planted lines carry findings. Each layer draws from its
own seeded stream, so that the size of one never shifts another's identifiers.
`plant_followup` then writes the second delivery's voids, replacements and new lines.

Every threshold the scenarios stand on (the code, the effective date, the age of adulthood,
the age gap, the consent type, the group modifier, the licensed practitioner types) is read
from this pack's policy.toml, so a scenario's boundary is always the rule's own.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines.demo.synthetic import (
    AETNA_LAST_DOS,
    DOCUMENTATION,
    FIRST_DELIVERY,
    FOLLOWUP_DELIVERY,
    FOLLOWUP_FIRST_PAID,
    HEALTHYBLUE_FIRST_DOS,
    LAST_DOS,
    MCOS,
    VIOLATION,
    Caregiver,
    Claim,
    Consent,
    Line,
    LocSpan,
    Member,
    Modifiers,
    PackWorld,
    Plan,
    Provider,
    mods,
)

_POLICY = tomllib.loads(Path(__file__).with_name("policy.toml").read_text(encoding="utf-8"))
_PARAMETERS = _POLICY["parameters"]
CODE = str(_POLICY["pack"]["codes"][0]).strip().upper()
POLICY_EFFECTIVE: date = _PARAMETERS["effective_date"]
ADULT_AGE: int = _PARAMETERS["adult_age"]
AGE_GAP_YEARS: int = _PARAMETERS["age_gap_years"]
CONSENT_TYPE: str = _PARAMETERS["consent_type"]
GROUP: str = _PARAMETERS["group_modifier"]
LICENSED = tuple(_PARAMETERS["licensed_practitioner_types"])
REGULARS_PER_MCO = 10  # enough distinct members for the planted sessions of 9 and 10

# Per-unit rates; a group unit pays about a quarter of an individual one.
_RATE = {
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
# the code as MCOs write it: mostly clean, sometimes padded or in lower case
_SPELLINGS = (CODE,) * 7 + (f" {CODE.lower()} ", CODE.lower(), f"{CODE} ")
_ORG_NAMES = (
    "High Plains Community Mental Health Center",
    "Kaw River Family Services, Inc.",
    "Smoky Hill Behavioral Health",
    "Cimarron Family Support Network",
    "Neosho Valley Counseling, LLC",
)
_FIRST_NAMES = ("Dana", "Marisol", "Terri", "Angela", "Keisha", "Rhonda", "Luis", "Brenda", "Joy")
_LAST_NAMES = ("Whitfield", "Ortega", "Hansen", "Pruitt", "Okafor", "Lindqvist", "Romero")


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return date(day.year + years, 3, 1)


def _payer_window(payer: str) -> tuple[date, date]:
    """Dates of service an MCO pays: Aetna up to 2024, Healthy Blue from 2025."""
    if payer == "AETNA":
        return POLICY_EFFECTIVE, AETNA_LAST_DOS
    if payer == "HEALTHYBLUE":
        return HEALTHYBLUE_FIRST_DOS, LAST_DOS
    return POLICY_EFFECTIVE, LAST_DOS


def _in_scope(line: Line) -> bool:
    return line.hcpcs.strip().upper() == CODE


def _scoped(claim: Claim) -> Line:
    """The claim's first line in scope."""
    return next(ln for ln in claim.lines if _in_scope(ln))


def _valid_on(peer: Provider, day: date) -> bool:
    """Clean for PPS004 and PPS005 on `day`: used to place clean lines."""
    return (
        peer.on_file
        and peer.attested.upper() == "Y"
        and (peer.attested_date is None or peer.attested_date <= day)
        and (peer.enroll_start is None or peer.enroll_start <= day)
        and (peer.enroll_end is None or day <= peer.enroll_end)
        and peer.pps_start is not None
        and peer.pps_start <= day
    )


class _Plant:
    """The pack's network and planted claims, over the demo world it plants into."""

    def __init__(self, world: PackWorld) -> None:
        self.world = world
        self.clinicians: list[tuple[str, str]] = []  # (npi, license type) of plan signers
        self.orgs: list[Provider] = []
        self.peers: list[Provider] = []  # clean peers working for the organisations
        self.solos: list[Provider] = []  # clean peers billing under their own NPI
        self.regulars: dict[str, list[Member]] = {}
        self.roles: dict[str, Provider] = {}  # planted providers the follow-up reuses
        self.handles: dict[str, Claim] = {}  # planted claims the follow-up corrects
        self.cross_mco_session: list[Claim] = []
        self.rn_member: Member | None = None
        self.background_claims: list[Claim] = []
        self.busy: dict[str, set[date]] = {}  # member: dates with a line in scope
        self.session_keys: set[tuple[str, date, str, str]] = set()

    @property
    def rng(self) -> Any:
        return self.world.rng

    def fresh(self, kind: str) -> str:
        return self.world.fresh(kind)

    def day(self, lo: date, hi: date) -> date:
        return self.world.day(lo, hi)

    def free_day(self, members: Sequence[Member], peer: Provider, lo: date, hi: date) -> date:
        """A date with no H0038 line yet for any of `members`, on which `peer` is valid."""
        for _ in range(10_000):
            day = self.day(lo, hi)
            if _valid_on(peer, day) and all(
                day not in self.busy.get(m.member_id, set()) for m in members
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
    ) -> Provider:
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
        peer = Provider(
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
        self.world.add_provider(peer)
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
    ) -> Caregiver:
        rng = self.rng
        if dob is None and not blank_dob:
            anchor = member_dob or date(2012, 6, 1)
            lo = max(date(1979, 1, 1), _years_later(anchor, -34))
            hi = min(date(1992, 12, 31), _years_later(anchor, -ADULT_AGE))
            dob = self.day(lo, max(lo, hi))
        if medicaid is None:
            medicaid = rng.random() < 0.6
        relationship = relationship or rng.choice(
            ("MOTHER", "MOTHER", "FATHER", "GRANDMOTHER", "GUARDIAN", "FOSTER_PARENT")
        )
        if start is None and rng.random() < 0.8:
            start = member_dob  # otherwise blank: no lower bound
        return Caregiver(
            caregiver_id=self.fresh("caregiver"),
            relationship=relationship,
            dob=dob,
            medicaid_id=self.fresh("member") if medicaid else "",
            start=start,
            end=end,
        )

    def plan(self, start: date, **changes: Any) -> Plan:
        npi, license_type = self.rng.choice(self.clinicians)
        plan = Plan(self.fresh("plan"), start, None, "Y", start, npi, license_type)
        return replace(plan, **changes)

    def yearly_plans(self) -> list[Plan]:
        """Back-to-back yearly plans from 2022, each signed on or before its start date."""
        plans: list[Plan] = []
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
        caregivers: list[Caregiver] | None = None,
        on_member_file: bool = True,
    ) -> Member:
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
        member = Member(
            member_id=self.fresh("member"),
            dob=dob,
            enrollment=enrollment,
            caregivers=caregivers if caregivers is not None else [self.caregiver(dob)],
            on_member_file=on_member_file,
        )
        member.plans = self.yearly_plans()
        if dob is not None and _years_later(dob, ADULT_AGE) <= FOLLOWUP_DELIVERY:
            signed = self.day(date(2021, 6, 1), date(2022, 11, 30))
            member.consents.append(Consent(CONSENT_TYPE, signed, None))
        self.world.add_member(member)
        return member

    # claims ---------------------------------------------------------------------------

    def modifiers(self, payer: str, *, group: bool) -> Modifiers:
        rng = self.rng
        if (
            group
        ):  # the group modifier in any position the extract has, the positions before it filled
            last = 4 if self.world.has_column(payer, "hcpcs_modifier_4") else 3
            position = rng.randint(1, last)
            return mods([*rng.sample(("UK", "U1", "HA"), position - 1), GROUP])
        return mods(rng.choice(((), (), (), ("UK",), ("U1",), ("UK", "U1"), ("HA",))))

    def h0038(
        self,
        member_id: str,
        payer: str,
        peer: Provider,
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
    ) -> Line:
        rng = self.rng
        if modifiers is None:
            modifiers = self.modifiers(payer, group=group)
        group = GROUP in modifiers
        units = units if units is not None else rng.randint(1, 8)
        if paid_amount is None:
            paid_amount = (_GROUP_RATE if group else _RATE)[payer] * units
        if end is None and rng.random() < 0.6:
            end = dos  # written out; otherwise left blank, which means the same day
        self.busy.setdefault(member_id, set()).add(dos)
        return Line(
            line_number=1,
            member_id=member_id,
            rendering_npi=peer.npi if rendering_npi is None else rendering_npi,
            billing_npi=billing_npi or peer.billing_npi,
            hcpcs=rng.choice(_SPELLINGS),
            modifiers=modifiers,
            start=dos,
            end=end,
            pos=pos or rng.choice(("11", "53", "99") if group else ("11", "12", "12", "53", "99")),
            units=units,
            paid_amount=paid_amount,
            session_id=session_id,
            diagnosis=self.world.diagnosis(),
            policy_id=self.world.policy_id,
        )

    def other_line(self, member_id: str, billing_npi: str, dos: date) -> Line:
        """A line of another behavioural-health service: never in scope."""
        rng = self.rng
        code, rate, most_units, modifier_choices = rng.choice(_OTHER_CODES)
        units = rng.randint(1, most_units)
        modifiers = rng.sample(modifier_choices, rng.randint(0, len(modifier_choices)))
        end = dos + timedelta(days=rng.randint(1, 6)) if rng.random() < 0.05 else dos
        adjustment = Decimal("0.37") if rng.random() < 0.1 else Decimal(0)
        return Line(
            line_number=1,
            member_id=member_id,
            rendering_npi=rng.choice(self.clinicians)[0],
            billing_npi=billing_npi,
            hcpcs=code,
            modifiers=mods(modifiers),
            start=dos,
            end=None if rng.random() < 0.3 else end,
            pos=rng.choice(("11", "11", "12", "53", "99", "")),
            units=units,
            paid_amount=rate * units - adjustment,
            session_id="",
            diagnosis=self.world.diagnosis(),
        )

    def claim(
        self,
        payer: str,
        lines: list[Line],
        *,
        paid: date | None = None,
        claim_id: str = "",
        extra_lines: bool = True,
    ) -> Claim:
        """An original claim; a one-line claim sometimes carries another service."""
        if extra_lines and len(lines) == 1 and self.rng.random() < 0.3:
            other = self.other_line(lines[0].member_id, lines[0].billing_npi, lines[0].start)
            lines = [lines[0], other] if self.rng.random() < 0.5 else [other, lines[0]]
        return self.world.claim(payer, lines, paid, claim_id=claim_id)

    def single(
        self, member: Member | str, payer: str, peer: Provider, dos: date, **kw: Any
    ) -> Claim:
        """A claim with one H0038 line (and sometimes another service)."""
        member_id = member if isinstance(member, str) else member.member_id
        return self.claim(payer, [self.h0038(member_id, payer, peer, dos, **kw)])

    @staticmethod
    def revise(claim: Claim, **changes: Any) -> list[Line]:
        """Copies of a claim's lines with `changes` on its H0038 lines and no findings."""
        return [
            replace(ln, findings={}, **(changes if _in_scope(ln) else {})) for ln in claim.lines
        ]

    def replace(
        self, old: Claim, lines: list[Line], *, paid: date, names: Claim | None = None
    ) -> Claim:
        return self.world.replace(old, lines, paid, names=names)

    def void(self, old: Claim, *, paid: date, names: Claim | None = None) -> Claim:
        return self.world.void(old, paid, names=names)

    def session(
        self,
        attendees: Sequence[tuple[str, Member | str]],
        peer: Provider,
        dos: date,
        pos: str,
        session_id: str,
    ) -> list[Claim]:
        """One group session: a claim per attendee, HQ on every line."""
        key = (peer.npi, dos, pos, session_id)
        if key in self.session_keys:
            raise RuntimeError("planted group sessions must not merge by accident")
        self.session_keys.add(key)
        return [
            self.single(who, payer, peer, dos, group=True, pos=pos, session_id=session_id)
            for payer, who in attendees
        ]

    def flag(self, claim: Claim, rule: str, why: str, severity: str = VIOLATION) -> None:
        self.world.expect(claim, _scoped(claim).line_number, rule, why, severity)

    def participant(
        self, claim: Claim, caregiver_id: str, non_medicaid: str, direct_benefit: str
    ) -> None:
        self.world.participant(
            claim, _scoped(claim).line_number, caregiver_id, non_medicaid, direct_benefit
        )


# ------------------------------------------------------------------------------------------
# The network and the planted scenarios


def _plant_network(w: _Plant) -> None:
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


def _plant_pps001(w: _Plant) -> None:
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


def _plant_pps002(w: _Plant) -> None:
    regs, leads = w.regulars, w.peers[:5]

    def when(payer: str, members: Sequence[Member], lead: Provider) -> date:
        return w.free_day(members, lead, *_payer_window(payer))

    def at(payer: str, members: Sequence[Member]) -> list[tuple[str, Member | str]]:
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
    psr.hcpcs, psr.modifiers, psr.pos = "H2017", mods([GROUP]), "11"
    psr.rendering_npi = leads[2].npi
    w.claim("SUNFLOWER", [psr], extra_lines=False)
    # 8 members in a group and a ninth the same day without HQ: an individual service.
    day = when("AETNA", regs["AETNA"][:9], leads[4])
    sid = w.fresh("s")
    w.session(at("AETNA", regs["AETNA"][:8]), leads[4], day, "99", sid)
    w.single(
        regs["AETNA"][8], "AETNA", leads[4], day, pos="99", session_id=sid, modifiers=mods(["UK"])
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


def _plant_pps003(w: _Plant) -> None:
    peer = w.peers[5]
    d = w.day(date(2023, 4, 1), date(2024, 6, 30))

    def stay(payer: str, *spans: LocSpan) -> Member:
        member = w.member(payer)
        member.loc_spans.extend(spans)
        return member

    member = stay("UHC", LocSpan("ACUTE", "INPATIENT_PSYCH", d, d + timedelta(6)))
    w.single(member, "UHC", peer, d - timedelta(1))
    c = w.single(member, "UHC", peer, d)
    w.flag(c, "PPS003", "DOS on the admission day of an INPATIENT_PSYCH stay")
    w.single(member, "UHC", peer, d + timedelta(6))  # the discharge day is a community day

    member = stay(
        "SUNFLOWER",
        LocSpan("COMMUNITY", "HCBS_SED", date(2022, 1, 1), d - timedelta(20)),
        LocSpan("RESIDENTIAL", "PRTF", d - timedelta(20), None),
    )
    w.single(member, "SUNFLOWER", peer, d - timedelta(21))
    c = w.single(member, "SUNFLOWER", peer, d)
    w.flag(c, "PPS003", "ongoing PRTF stay (no end date) on the DOS")

    member = stay("UHC", LocSpan("COMMUNITY", "HCBS_SED", d - timedelta(100), d + timedelta(100)))
    w.single(member, "UHC", peer, d)

    span = LocSpan("RESIDENTIAL", "RESIDENTIAL_SUD", d + timedelta(2), d + timedelta(30))
    c = w.single(stay("AETNA", span), "AETNA", peer, d, end=d + timedelta(4))
    w.flag(c, "PPS003", "line range overlaps a RESIDENTIAL_SUD stay starting 2 days after DOS")
    span = LocSpan("RESIDENTIAL", "PRTF", d + timedelta(3), d + timedelta(40))
    w.single(stay("AETNA", span), "AETNA", peer, d, end=d + timedelta(2))  # ends the day before

    earlier = d - timedelta(30)
    member = stay(
        "SUNFLOWER",
        LocSpan("ACUTE", "INPATIENT_HOSPITAL", d, d),
        LocSpan("ACUTE", "INPATIENT_PSYCH", earlier, earlier),
    )
    c = w.single(member, "SUNFLOWER", peer, d)
    w.flag(c, "PPS003", "one-day INPATIENT_HOSPITAL stay (end date = start date) on the DOS")
    w.single(member, "SUNFLOWER", peer, d + timedelta(1))
    w.single(member, "SUNFLOWER", peer, earlier + timedelta(1))


def _flag_unknown_peer(w: _Plant, c: Claim, why: str, line: Line | None = None) -> None:
    target = line or _scoped(c)
    target.findings["PPS004"] = (VIOLATION, why)
    target.findings["PPS005"] = (VIOLATION, why)
    target.findings["PPS006"] = (DOCUMENTATION, why + ": no provider birth date")


def _plant_pps004(w: _Plant) -> None:
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


def _plant_pps005(w: _Plant) -> None:
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


def _plant_pps006(w: _Plant) -> None:
    # Birthdays away from month ends and February, so one day off never crosses a year.
    x = date(w.rng.randint(1968, 1972), w.rng.randint(3, 11), w.rng.randint(2, 27))
    older = w.provider(billing_npi=w.orgs[2].npi, dob=x)
    exact, far = _years_later(x, AGE_GAP_YEARS), _years_later(x, 10)
    short = exact - timedelta(1)

    def cg(dob: date | None, **kw: Any) -> Caregiver:
        return w.caregiver(None, dob=dob, blank_dob=dob is None, **kw)

    def line(payer: str, caregivers: list[Caregiver], peer: Provider = older) -> Claim:
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
    line("UHC", [cg(_years_later(y, -AGE_GAP_YEARS))], younger)
    c = line("SUNFLOWER", [cg(_years_later(y, -AGE_GAP_YEARS) + timedelta(1))], younger)
    w.flag(c, "PPS006", "provider born one day short of 3 years after the caregiver")

    no_dob = w.provider(billing_npi=w.orgs[4].npi)
    no_dob.dob = None
    c = w.single(w.member("AETNA"), "AETNA", no_dob, w.day(date(2023, 3, 1), date(2024, 9, 30)))
    w.flag(c, "PPS006", "provider has no birth date on file", DOCUMENTATION)


def _with_medicaid_parent(w: _Plant, payer: str) -> tuple[Member, str]:
    member = w.member(payer)
    parent = member.caregivers[0]
    parent.medicaid_id = parent.medicaid_id or w.fresh("member")
    return member, parent.medicaid_id


def _plant_pps007(w: _Plant) -> None:
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
    w.busy.setdefault(member.member_id, set()).add(_scoped(c).start)


def _only_plans(member: Member, *plans: Plan) -> None:
    """Keep the member's earlier yearly plans up to the day before the first given plan."""
    first = plans[0].start
    member.plans = [p for p in member.plans if p.start < first]
    if member.plans:
        member.plans[-1].end = first - timedelta(1)
    member.plans.extend(plans)


def _plant_pps008(w: _Plant) -> None:
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
    if w.world.claim_id_taken("UHC", c.claim_id):
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


def _birthday(w: _Plant) -> date:
    """A DOS that is someone's 18th birthday: never 29 February, which 2006 lacks."""
    while True:
        d = w.day(date(2023, 3, 1), date(2024, 11, 30))
        if (d.month, d.day) != (2, 29):
            return d


def _plant_pps009(w: _Plant) -> None:
    peer = w.peers[8]
    d = _birthday(w)
    member = w.member("SUNFLOWER", dob=_years_later(d, -ADULT_AGE))
    member.consents.clear()
    w.single(member, "SUNFLOWER", peer, d - timedelta(1))  # still 17
    c = w.single(member, "SUNFLOWER", peer, d)
    w.flag(c, "PPS009", "18th birthday on the DOS, no written consent")
    w.handles["pps009_birthday"] = c

    d = _birthday(w)
    member = w.member("UHC", dob=_years_later(d, -ADULT_AGE))
    member.consents[:] = [Consent(CONSENT_TYPE, d - timedelta(20), None)]
    w.single(member, "UHC", peer, d)

    d = w.day(date(2023, 3, 1), date(2024, 11, 30))
    member = w.member("AETNA", adult=True)
    member.consents[:] = [Consent(CONSENT_TYPE, d, None)]
    w.single(member, "AETNA", peer, d)
    c = w.single(member, "AETNA", peer, d - timedelta(1))
    w.flag(c, "PPS009", "adult member's consent signed the day after the DOS")

    r = w.day(date(2025, 1, 10), LAST_DOS)
    member = w.member("HEALTHYBLUE", adult=True)
    member.consents[:] = [Consent(CONSENT_TYPE, date(2022, 4, 1), r), Consent("ROI", None, None)]
    w.single(member, "HEALTHYBLUE", peer, r - timedelta(1))  # revoked the day after
    c = w.single(member, "HEALTHYBLUE", peer, r)
    w.flag(c, "PPS009", "consent revoked on the DOS")

    member = w.member("UHC", blank_dob=True)
    w.single(member, "UHC", peer, w.day(date(2023, 2, 1), LAST_DOS))  # no birth date: no flag

    member = w.member("SUNFLOWER", adult=True)
    member.consents[:] = [Consent("ROI", date(2022, 3, 1), None)]
    c = w.single(member, "SUNFLOWER", peer, w.day(date(2023, 2, 1), LAST_DOS))
    w.flag(c, "PPS009", "adult member with a release-of-information consent only")


def _plant_pps010(w: _Plant) -> None:
    peer = w.peers[1]
    member, _ = _with_medicaid_parent(w, "UHC")
    medicaid_parent = member.caregivers[0]
    grandmother = w.caregiver(member.dob, medicaid=False, relationship="GRANDMOTHER")
    member.caregivers.append(grandmother)

    def line() -> Claim:
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


def _plant_gen001(w: _Plant) -> None:
    peer = w.peers[2]

    def same(member: Member, payer: str, day: date, units: int, *codes: str) -> Line:
        return w.h0038(member.member_id, payer, peer, day, units=units, modifiers=mods(codes))

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


def _plant_enrollment(w: _Plant) -> None:
    """GEN002 and duplicates across MCOs around members moving between MCOs."""
    peer = w.peers[3]

    def same(member: Member, payer: str, day: date, units: int) -> Line:
        return w.h0038(member.member_id, payer, peer, day, units=units, modifiers=mods(["UK"]))

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
    legacy_id = w.world.claim_id("UHC", paid, legacy=True)
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


def _plant_versions(w: _Plant) -> None:
    """Voids and replacements inside the first delivery, and chains the follow-up ends."""
    peer = w.peers[4]

    def later(c: Claim, days: int) -> date:
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
        base, w.revise(base, units=_scoped(base).units % 8 + 1), paid=later(base, 11)
    )
    w.flag(replaced, "GEN002", "member enrolled with SUNFLOWER, not UHC (replaced once)")
    w.handles["void_by_original"] = base


_PLANTS: tuple[Callable[[_Plant], None], ...] = (
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


def _background_member(w: _Plant, payer: str, sibling_of: Member | None) -> Member:
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
        member.loc_spans.append(LocSpan("COMMUNITY", "HCBS_SED", since, None))
    if rng.random() < 0.08:  # a stay that ended before any audited date of service
        start = w.day(date(2021, 6, 1), date(2022, 9, 30))
        end = start + timedelta(days=rng.randint(0, 20))
        member.loc_spans.append(LocSpan("ACUTE", "INPATIENT_PSYCH", start, end))
    if rng.random() < 0.2 and not member.consents:
        member.consents.append(Consent("ROI", w.day(date(2021, 1, 1), date(2024, 12, 31)), None))
    return member


def _background(w: _Plant, members_per_mco: int) -> None:
    rng = w.world.stream("background")
    everyone = w.peers + w.solos
    population = [m for payer in MCOS for m in w.regulars[payer]]
    for payer in MCOS:
        previous: Member | None = None
        for _ in range(members_per_mco):
            sibling = previous if previous is not None and rng.random() < 0.1 else None
            previous = _background_member(w, payer, sibling)
            population.append(previous)
    usual = {m.member_id: rng.choice(everyone) for m in population}
    caregiver_of = {m.member_id: m.caregivers[0] for m in population}

    claims: list[Claim] = []
    for member in population:
        for _ in range(rng.randint(5, 10)):
            day = w.day(POLICY_EFFECTIVE, LAST_DOS)
            payers = member.payers_on(day)
            if not payers:
                continue
            peer = usual[member.member_id]
            if not _valid_on(peer, day):
                peer = rng.choice([p for p in everyone if _valid_on(p, day)])
            lines: list[Line] = []
            if rng.random() < 0.35 and day not in w.busy.get(member.member_id, set()):
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
            peer = rng.choice([p for p in w.peers if _valid_on(p, day)])
            pos = rng.choice(("11", "53", "99"))
            has_sid = w.world.has_column(payer, "session_id") and rng.random() < 0.75
            sid = w.fresh("s") if has_sid else ""
            size = rng.randint(3, 6)
            free = [
                m
                for m in population
                if payer in m.payers_on(day) and day not in w.busy.get(m.member_id, set())
            ]
            if (peer.npi, day, pos, sid) in w.session_keys or len(free) < size:
                continue
            w.session_keys.add((peer.npi, day, pos, sid))
            for m in rng.sample(free, size):
                line = w.h0038(m.member_id, payer, peer, day, group=True, pos=pos, session_id=sid)
                claims.append(w.claim(payer, [line]))

    # Record reviews name the member's first caregiver, who passes the age rule.
    for claim in claims:
        scoped = [ln for ln in claim.lines if _in_scope(ln)]
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


def _followup(w: _Plant) -> None:
    w.world.stream("followup")
    # Distinct paid dates: corrections of one chain must never tie.
    span = (FOLLOWUP_DELIVERY - FOLLOWUP_FIRST_PAID).days - 4
    offsets = sorted(w.rng.sample(range(span), 20))
    paid_days = iter(FOLLOWUP_FIRST_PAID + timedelta(days=k) for k in offsets)
    h = w.handles

    def paid() -> date:
        return next(paid_days)

    # A void fixing a finding, and a void of a clean claim.
    w.void(h["pps001_before"], paid=paid())
    w.void(h["pps001_first_day"], paid=paid())

    # A replacement fixing a finding: the attested peer who really delivered the service.
    old = h["pps004_unattested"]
    actual = next(p for p in w.peers if _valid_on(p, _scoped(old).start))
    w.replace(old, w.revise(old, rendering_npi=actual.npi), paid=paid())

    # A replacement still breaking the same rule.
    old = h["pps008_signed_late"]
    units = _scoped(old).units % 8 + 1
    new = w.replace(
        old,
        w.revise(old, units=units, paid_amount=_RATE["AETNA"] * units),
        paid=paid(),
    )
    w.flag(new, "PPS008", "replacement still dated the day before the plan was signed")

    # Completing a chain started in the first delivery: recoded to H2017, out of scope.
    old = h["chain_e"]
    w.replace(old, w.revise(old, hcpcs="H2017"), paid=paid())

    # A two-deep chain inside this delivery; its second link names the first original.
    old = h["chain_g"]
    first = w.replace(old, w.revise(old), paid=paid())
    units = _scoped(old).units % 8 + 1
    new = w.replace(first, w.revise(old, units=units), paid=paid(), names=old)
    w.flag(new, "PPS008", "treatment plan signed by a CPRS (replaced twice)")

    # Voiding the kept copy of a duplicate: the other copy is no longer a duplicate.
    w.void(h["gen001_kept"], paid=paid())
    _scoped(h["gen001_copy"]).findings.pop("GEN001")

    # Voiding one line of the cross-MCO group of 9 leaves 8: no longer oversized.
    dropped = next(c for c in w.cross_mco_session if c.payer == "UHC")
    w.void(dropped, paid=paid())
    for c in w.cross_mco_session:
        _scoped(c).findings.pop("PPS002")

    # One corrected line replaces a two-line claim: the second line is gone.
    old = h["two_lines"]
    fixed = w.peers[5]
    corrected = replace(
        old.lines[0], rendering_npi=fixed.npi, billing_npi=fixed.billing_npi, findings={}
    )
    w.replace(old, [corrected], paid=paid())

    # A void naming the original of a chain replaced in the first delivery.
    old = h["void_by_original"]
    w.void(old, paid=paid(), names=old)

    # New lines with findings.
    assert w.rn_member is not None
    line = w.h0038(w.rn_member.member_id, "SUNFLOWER", w.peers[6], date(2025, 6, 12))
    c = w.claim("SUNFLOWER", [line], paid=paid(), extra_lines=False)
    w.flag(c, "PPS008", "new line: treatment plan signed by an RN")
    member = w.regulars["HEALTHYBLUE"][0]
    line = w.h0038(member.member_id, "HEALTHYBLUE", w.roles["unattested"], date(2025, 6, 3))
    c = w.claim("HEALTHYBLUE", [line], paid=paid(), extra_lines=False)
    w.flag(c, "PPS004", "new line: lived experience not attested (N)")
    again = replace(_scoped(h["pps004_blank_date"]), findings={})
    c = w.claim("AETNA", [again], paid=paid(), extra_lines=False)
    w.flag(c, "GEN001", "billed again in a later delivery; the first claim was paid earlier")

    # A line sent again unchanged replaces its own earlier copy: nothing changes.
    resent = h["pps009_birthday"]
    w.world.redeliver(resent, _scoped(resent))

    # MCOs void clean claims too.
    clean = next(
        c
        for c in w.background_claims
        if c.chain.current is c
        and any(_in_scope(ln) and GROUP not in ln.modifiers for ln in c.lines)
    )
    w.void(clean, paid=paid())


# ------------------------------------------------------------------------------------------
# The hooks the demo world calls


def plant(world: PackWorld) -> None:
    """The network, one story per rule boundary, then the clean background."""
    # the stream names of the days the demo held this world alone: its input stays the same
    world.stream("scenarios")
    p = _Plant(world)
    for plant_scenario in _PLANTS:
        plant_scenario(p)
    if world.members_per_mco is not None:
        _background(p, world.members_per_mco)
    world.kept["plant"] = p


def plant_followup(world: PackWorld) -> None:
    """The second delivery: corrections of planted and clean claims, and new lines."""
    p = world.kept["plant"]
    _followup(p)
