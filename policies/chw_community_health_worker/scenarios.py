"""What the Community Health Worker pack plants in the demo world (KMAP 23175).

Every rule fires at least once, each near miss of the rule catalog is there and must stay
clean, and clean background members see ordinary CHW services. Every member is enrolled on
each DOS with the MCO that pays the line (no GEN002), and lines of one member's day differ in
code, units or provider unless a duplicate is meant (GEN001).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

POLICY_START = date(2023, 7, 1)
AETNA_LAST_DOS = date(2024, 12, 31)
HEALTHYBLUE_FIRST_DOS = date(2025, 1, 1)
LAST_DOS = date(2025, 4, 30)
DOCUMENTATION = "documentation"
# per 30-minute unit: individual, 2-4 patients, 5-8 patients
RATE = {"98960": Decimal("21.50"), "98961": Decimal("10.25"), "98962": Decimal("7.75")}
BACKGROUND_MEMBERS_PER_MCO = 6


class _Plant:
    """The pack's providers and a shorthand for its lines and claims."""

    def __init__(self, world: Any) -> None:
        self.w = world
        self.group = world.provider("Prairie Family Medicine, P.A.", "PHYSICIAN")
        self.cmhc = world.provider("Flint Hills Community Mental Health Center", "CMHC")
        self.untyped = world.provider("Wakarusa Community Health Partners")  # type blank
        self.fqhc = world.provider("Heartland Community Health Center", "FQHC")
        self.closed_rhc = world.provider(
            "Big Bend Rural Health Clinic", "RHC", enroll_end=date(2023, 6, 30)
        )
        self.chws = [
            world.provider(name) for name in ("Rosa Delgado", "Tamika Burns", "Ellen Voss")
        ]

    def member(self, *payers: str, dob: date = date(1984, 5, 17)) -> str:
        return self.w.member([(p, date(2020, 1, 1), None) for p in payers], dob)

    def line(
        self,
        member: str,
        code: str,
        dos: date,
        units: int,
        *,
        chw: int = 0,
        billing: str = "",
        modifiers: tuple[str, ...] = ("U7",),
        pos: str = "11",
        paid_amount: Decimal | None = None,
    ) -> Any:
        return self.w.line(
            member,
            code,
            dos,
            units,
            RATE[code] * units if paid_amount is None else paid_amount,
            rendering_npi=self.chws[chw],
            billing_npi=billing or self.group,
            modifiers=modifiers,
            pos=pos,
        )

    def claim(self, payer: str, line: Any, paid: date) -> Any:
        return self.w.claim(payer, [line], paid)


def plant(world: Any) -> None:
    p = _Plant(world)
    _effective_date(p)
    _modifier(p)
    _daily_cap(p)
    _monthly_cap(p)
    _provider_type(p)
    _telehealth(p)
    _paying_mco(p)
    _background(p)


def _effective_date(p: _Plant) -> None:
    member = p.member("SUNFLOWER")
    c = p.claim("SUNFLOWER", p.line(member, "98960", date(2023, 6, 28), 2), date(2023, 7, 20))
    p.w.expect(c, 1, "CHW001", "DOS 2023-06-28, before the effective date 2023-07-01")
    p.claim("SUNFLOWER", p.line(member, "98960", POLICY_START, 2), date(2023, 7, 21))


def _modifier(p: _Plant) -> None:
    member = p.member("UHC")
    no_u7 = p.line(member, "98961", date(2023, 8, 14), 1, modifiers=("HA",))
    c = p.claim("UHC", no_u7, date(2023, 8, 30))
    p.w.expect(c, 1, "CHW002", "98961 billed with HA but without U7")
    # U7 in the fourth position counts (UHC's extract has four modifier columns)
    fourth = p.line(member, "98960", date(2023, 8, 15), 1, modifiers=("U1", "UK", "HA", "U7"))
    p.claim("UHC", fourth, date(2023, 8, 30))
    later = p.w.member([("HEALTHYBLUE", HEALTHYBLUE_FIRST_DOS, None)], date(1991, 2, 3))
    c = p.claim(
        "HEALTHYBLUE", p.line(later, "98962", date(2025, 2, 11), 2, modifiers=()), date(2025, 3, 1)
    )
    p.w.expect(c, 1, "CHW002", "98962 billed with no modifier at all")


def _daily_cap(p: _Plant) -> None:
    # 2 + 2 + 2 on one day in payment order: only the third went over, all its units
    member = p.member("SUNFLOWER")
    day = date(2023, 8, 2)
    lines = [
        p.line(member, "98960", day, 2, chw=0, billing=p.group),
        p.line(member, "98961", day, 2, chw=1, billing=p.cmhc),
        p.line(member, "98962", day, 2, chw=2, billing=p.untyped),
    ]
    claims = [
        p.claim("SUNFLOWER", ln, day + timedelta(days=8 + 2 * k)) for k, ln in enumerate(lines)
    ]
    p.w.expect(claims[2], 1, "CHW003", "6 units in one day as 2+2+2: the third line, 2 over")

    # 4 units from two providers and two MCOs (enrolled with both): at the limit
    member = p.member("SUNFLOWER", "UHC")
    day = date(2023, 9, 12)
    p.claim("SUNFLOWER", p.line(member, "98960", day, 2, chw=0), date(2023, 9, 25))
    p.claim("UHC", p.line(member, "98961", day, 2, chw=1, billing=p.cmhc), date(2023, 9, 22))

    # 3 + 3 paid the same day by two MCOs: the payer breaks the tie
    member = p.member("SUNFLOWER", "UHC")
    day, paid = date(2023, 10, 5), date(2023, 10, 20)
    p.claim("SUNFLOWER", p.line(member, "98960", day, 3, chw=0), paid)
    c = p.claim("UHC", p.line(member, "98961", day, 3, chw=1, billing=p.cmhc), paid)
    p.w.expect(c, 1, "CHW003", "3+3 paid the same day: UHC after SUNFLOWER, 2 of 3 over")

    # 3 + 3 paid the same day by one MCO: the claim ID (as text) breaks the tie
    member = p.member("UHC")
    day, paid = date(2023, 10, 17), date(2023, 11, 2)
    pair = [
        p.claim("UHC", p.line(member, "98960", day, 3, chw=0), paid),
        p.claim("UHC", p.line(member, "98962", day, 3, chw=2), paid),
    ]
    later = max(pair, key=lambda c: c.claim_id)
    p.w.expect(later, 1, "CHW003", "3+3 paid the same day by one MCO: the larger claim ID")

    # a voided line that would have gone over: the void removes it
    member = p.member("UHC")
    day = date(2023, 11, 7)
    voided = p.claim("UHC", p.line(member, "98961", day, 2, chw=1), date(2023, 11, 15))
    p.claim("UHC", p.line(member, "98960", day, 4, chw=0), date(2023, 11, 20))
    p.w.void(voided, date(2023, 11, 30))

    # a line paid 0.00 still counts its units
    member = p.member("SUNFLOWER")
    day = date(2023, 12, 5)
    zero = p.line(member, "98960", day, 2, paid_amount=Decimal("0.00"))
    p.claim("SUNFLOWER", zero, date(2023, 12, 15))
    c = p.claim("SUNFLOWER", p.line(member, "98961", day, 3, chw=1), date(2023, 12, 20))
    p.w.expect(c, 1, "CHW003", "2 units paid 0.00 then 3: 1 of 3 over")

    # a duplicate is flagged as one and still counts toward the cap
    member = p.member("UHC")
    day = date(2024, 1, 9)
    p.claim("UHC", p.line(member, "98960", day, 3), date(2024, 1, 20))
    c = p.claim("UHC", p.line(member, "98960", day, 3), date(2024, 2, 3))
    p.w.expect(c, 1, "GEN001", "the same 98960 service paid again two weeks later")
    p.w.expect(c, 1, "CHW003", "the duplicate makes 6 units on the day: 2 of 3 over")


def _monthly_cap(p: _Plant) -> None:
    # 24 units in August and 1 on 1 September: at the limit, and a new month
    member = p.member("UHC")
    for k, day in enumerate((1, 2, 3, 4, 7, 8)):
        dos = date(2023, 8, day)
        p.claim("UHC", p.line(member, "98960", dos, 4, chw=k % 3), dos + timedelta(days=14))
    p.claim("UHC", p.line(member, "98960", date(2023, 9, 1), 1), date(2023, 9, 14))

    # 20 units, then a day of 3 + 2 (over the daily limit too), then 1: 26 in August
    member = p.member("SUNFLOWER")
    for k, day in enumerate(range(14, 19)):
        dos = date(2023, 8, day)
        p.claim("SUNFLOWER", p.line(member, "98960", dos, 4, chw=k % 3), dos + timedelta(days=10))
    busy = date(2023, 8, 21)
    p.claim("SUNFLOWER", p.line(member, "98960", busy, 3, chw=0), date(2023, 8, 30))
    c = p.claim("SUNFLOWER", p.line(member, "98961", busy, 2, chw=1), date(2023, 9, 2))
    p.w.expect(c, 1, "CHW003", "3+2 on one day: 1 of 2 over the daily limit")
    p.w.expect(c, 1, "CHW004", "25 units in August after it: 1 of 2 over the monthly limit")
    c = p.claim("SUNFLOWER", p.line(member, "98962", date(2023, 8, 28), 1), date(2023, 9, 5))
    p.w.expect(c, 1, "CHW004", "26 units in August after it: its 1 unit is over")


def _provider_type(p: _Plant) -> None:
    member = p.member("SUNFLOWER")
    c = p.claim(
        "SUNFLOWER",
        p.line(member, "98960", date(2024, 2, 13), 2, chw=2, billing=p.fqhc),
        date(2024, 2, 28),
    )
    p.w.expect(c, 1, "CHW005", "billed by an FQHC")
    # an FQHC rendering while a physician group bills: the billing provider decides
    rendered = p.w.line(
        member,
        "98960",
        date(2024, 2, 20),
        2,
        RATE["98960"] * 2,
        rendering_npi=p.fqhc,
        billing_npi=p.group,
        modifiers=("U7",),
    )
    p.claim("SUNFLOWER", rendered, date(2024, 3, 5))
    # an RHC whose only provider row ended before the DOS: no row covers the DOS
    p.claim(
        "SUNFLOWER",
        p.line(member, "98961", date(2024, 3, 6), 1, billing=p.closed_rhc),
        date(2024, 3, 20),
    )


def _telehealth(p: _Plant) -> None:
    member = p.member("UHC")
    c = p.claim("UHC", p.line(member, "98960", date(2024, 4, 2), 1, pos="10"), date(2024, 4, 16))
    p.w.expect(c, 1, "CHW006", "POS 10 (telehealth in the home)", DOCUMENTATION)
    remote = p.line(member, "98960", date(2024, 4, 9), 1, pos="02", modifiers=("U7", "95"))
    c = p.claim("UHC", remote, date(2024, 4, 23))
    p.w.expect(c, 1, "CHW006", "POS 02 and modifier 95", DOCUMENTATION)
    # POS 11 with HQ (a group modifier, not a telehealth marker)
    group = p.line(member, "98961", date(2024, 4, 16), 2, modifiers=("U7", "HQ"))
    p.claim("UHC", group, date(2024, 4, 30))

    member = p.w.member([("AETNA", date(2020, 1, 1), AETNA_LAST_DOS)], date(1962, 9, 30))
    gt = p.line(member, "98960", date(2024, 6, 4), 2, modifiers=("GT", "U7"))
    c = p.claim("AETNA", gt, date(2024, 6, 20))
    p.w.expect(c, 1, "CHW006", "modifier GT at POS 11", DOCUMENTATION)


def _paying_mco(p: _Plant) -> None:
    # the general rules run over this pack's lines too: a UHC member's service paid by Sunflower
    member = p.member("UHC")
    c = p.claim("SUNFLOWER", p.line(member, "98960", date(2024, 5, 7), 1), date(2024, 5, 21))
    p.w.expect(c, 1, "GEN002", "a UHC member's CHW service paid by Sunflower")


def _background(p: _Plant) -> None:
    """Members with ordinary CHW services: a line of 1 or 2 units on distinct days."""
    rng = p.w.rng
    windows = {
        "AETNA": (POLICY_START, AETNA_LAST_DOS),
        "SUNFLOWER": (POLICY_START, LAST_DOS),
        "UHC": (POLICY_START, LAST_DOS),
        "HEALTHYBLUE": (HEALTHYBLUE_FIRST_DOS, LAST_DOS),
    }
    for payer, (first, last) in windows.items():
        for _ in range(BACKGROUND_MEMBERS_PER_MCO):
            born = date(rng.randint(1950, 2012), rng.randint(1, 12), rng.randint(1, 28))
            member = p.w.member([(payer, date(2020, 1, 1), None)], born)
            days = rng.sample(range((last - first).days + 1), rng.randint(3, 8))
            for offset in sorted(days):
                dos = first + timedelta(days=offset)
                code = rng.choice(("98960", "98960", "98961", "98962"))
                modifiers = rng.choice((("U7",), ("U7",), ("U1", "U7"), ("U7", "HA")))
                line = p.line(
                    member,
                    code,
                    dos,
                    rng.randint(1, 2),
                    chw=rng.randrange(3),
                    billing=rng.choice((p.group, p.cmhc, p.untyped)),
                    modifiers=modifiers,
                    pos=rng.choice(("11", "11", "12", "99")),
                )
                p.claim(payer, line, dos + timedelta(days=rng.randint(7, 45)))
