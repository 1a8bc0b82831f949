"""Every rule of rules.md: lines where it fires and near misses where it must not.

Each test has a scenario: a function, next to the test, that adds lines on both sides of the
rule's boundaries to a clean world. The scenarios share one world, audited once for the module
(DuckDB file, polars facts, Great Expectations: a few CPU seconds an audit, whatever its size),
and each test compares the exact set of its own claims flagged for its rule, near misses
included.

Sharing is sound because a rule decides a line from that line's claim, member, peer provider and
group session (rules.md), and no two scenarios share any of these: each scenario bills members
of its own under claim IDs of its own, changes providers only of NPIs of its own, and meets no
other scenario in a group session; none changes the MCO implementation dates, PEER's or
BILLING's provider rows, or the as-of date. test_no_two_scenarios_meet checks this on the world.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, count

import polars as pl
import pytest

from tests.world import BILLING, PEER, World, audit, flagged, luhn_npi


@dataclass(frozen=True)
class Case:
    """One scenario's part of the shared world: claim IDs and member IDs of its own."""

    world: World
    name: str
    number: int

    def claim(self, claim_id: str) -> str:
        return f"{self.name}.{claim_id}"

    def member_id(self, n: int) -> str:
        # unique in its last four digits too: World names a member's caregiver (CG-) and
        # treatment plan (TP-) by them, and a caregiver ID is one person across the file
        return f"1000000{self.number:02d}{n:02d}"

    def member(self, n: int, **details: str) -> str:
        member_id = self.member_id(n)
        self.world.member(member_id, **details)
        return member_id

    def line(self, payer: str, claim_id: str, member_id: str, **overrides: str) -> None:
        self.world.line(payer, self.claim(claim_id), member_id, **overrides)


Scenario = Callable[[Case], None]
SCENARIOS: list[Scenario] = []


def scenario(build: Scenario) -> Scenario:
    SCENARIOS.append(build)
    return build


@pytest.fixture(scope="module")
def shared_world() -> World:
    world = World()
    for number, build in enumerate(SCENARIOS, start=1):
        build(Case(world, build.__name__, number))
    return world


@pytest.fixture(scope="module")
def shared_findings(shared_world: World, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    return audit(shared_world, tmp_path_factory.mktemp("rules"))


def findings_of(findings: pl.DataFrame, build: Scenario) -> pl.DataFrame:
    """The findings on one scenario's claims, under the claim IDs the scenario gave them."""
    prefix = f"{build.__name__}."
    return findings.filter(pl.col("claim_id").str.starts_with(prefix)).with_columns(
        pl.col("claim_id").str.strip_prefix(prefix)
    )


def test_no_two_scenarios_meet(shared_world: World) -> None:
    """What makes the one audit sound: each member, peer provider other than the world's own
    and group session is one scenario's, and each provider, caregiver and plan is on file once."""
    owners: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for row in chain.from_iterable(shared_world.claims.values()):
        owner = row["claim_id"].split(".")[0]
        peer = row["rendering_npi"] or row["billing_npi"]
        owners["member", row["member_id"]].add(owner)
        if peer not in (PEER, BILLING):
            owners["peer", peer].add(owner)
        if "HQ" in {row[f"hcpcs_modifier_{i}"] for i in range(1, 5)}:
            session = (row["claim_line_start_date"], row["place_of_service_code"])
            owners["group session", peer, *session, row["session_id"]].add(owner)
    assert {key: names for key, names in owners.items() if len(names) > 1} == {}
    for dataset, key in (
        ("members", "member_id"),
        ("providers", "npi"),
        ("caregivers", "caregiver_id"),
        ("treatment_plans", "plan_id"),
    ):
        ids = [row[key] for row in shared_world.ref[dataset]]
        assert len(ids) == len(set(ids)), f"a {key} twice in {dataset}"
    clean = World().ref
    assert shared_world.ref["mco_implementation"] == clean["mco_implementation"]
    assert shared_world.ref["providers"][:2] == clean["providers"]  # PEER and BILLING


@scenario
def pps001_effective_date(case: Case) -> None:
    child = case.member(0)
    case.line("AETNA", "BEFORE", child, claim_line_start_date="2022-12-31")
    case.line("AETNA", "ON", child, claim_line_start_date="2023-01-01")
    # a multi-day line counts from its first date of service
    case.line(
        "AETNA", "SPAN", child, claim_line_start_date="2022-12-30", claim_line_end_date="2023-01-02"
    )


def test_pps001_effective_date(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps001_effective_date)
    assert flagged(findings, "PPS001") == {("AETNA", "BEFORE"), ("AETNA", "SPAN")}
    detail = findings.filter(pl.col("claim_id") == "BEFORE")["detail"][0]
    assert detail == "DOS 2022-12-31 is before the policy effective date 2023-01-01"


@scenario
def pps001_line_is_still_checked_against_other_rules(case: Case) -> None:
    case.line(
        "AETNA",
        "BEFORE",
        case.member(0),
        claim_line_start_date="2022-12-31",
        rendering_npi=luhn_npi(1),
    )


def test_pps001_line_is_still_checked_against_other_rules(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps001_line_is_still_checked_against_other_rules)
    rules = set(findings.filter(pl.col("claim_id") == "BEFORE")["rule_id"])
    assert {"PPS001", "PPS004", "PPS005", "PPS006"} <= rules


@scenario
def pps002_group_size(case: Case) -> None:
    world = case.world
    nine = [case.member(i) for i in range(9)]
    # nine members in one session at POS 11: every line flagged
    for i, member_id in enumerate(nine):
        case.line("AETNA", f"BIG{i}", member_id, hcpcs_modifier_2="HQ", session_id="S1")
    # eight members: the limit itself is allowed
    for i, member_id in enumerate(nine[:8]):
        case.line(
            "AETNA",
            f"EIGHT{i}",
            member_id,
            hcpcs_modifier_1="HQ",
            claim_line_start_date="2023-06-01",
        )
    # nine lines split by place of service: two sessions of 8 and 1
    for i, member_id in enumerate(nine):
        case.line(
            "AETNA",
            f"POS{i}",
            member_id,
            hcpcs_modifier_1="HQ",
            claim_line_start_date="2023-07-01",
            place_of_service_code="12" if i == 8 else "11",
        )
    # nine lines split by session_id: not one group
    for i, member_id in enumerate(nine):
        case.line(
            "AETNA",
            f"SID{i}",
            member_id,
            hcpcs_modifier_4="HQ",
            claim_line_start_date="2023-08-01",
            session_id="A" if i < 5 else "B",
        )
    # one provider's group billed to two MCOs is one group of nine
    for i, member_id in enumerate(nine):
        case.line(
            "UHC" if i < 4 else "SUNFLOWER",
            f"X{i}",
            member_id,
            hcpcs_modifier_1="HQ",
            claim_line_start_date="2023-09-01",
        )
        world.ref["enrollment"].append(
            {
                "member_id": member_id,
                "payer": "UHC" if i < 4 else "SUNFLOWER",
                "start_date": "2023-09-01",
                "end_date": "2023-09-01",
            }
        )
    # nine individual lines (no HQ) on one day are not a group
    for i, member_id in enumerate(nine):
        case.line("AETNA", f"IND{i}", member_id, claim_line_start_date="2023-10-01")


def test_pps002_group_size(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps002_group_size)
    expected = {("AETNA", f"BIG{i}") for i in range(9)}
    expected |= {("UHC" if i < 4 else "SUNFLOWER", f"X{i}") for i in range(9)}
    assert flagged(findings, "PPS002") == expected
    detail = findings.filter((pl.col("claim_id") == "BIG0") & (pl.col("rule_id") == "PPS002"))
    assert detail["detail"][0] == (
        f"group session 2023-05-02 at POS 11 (session S1) with NPI {PEER} had 9 members (limit 8)"
    )


@scenario
def pps002_counts_distinct_members_even_off_file(case: Case) -> None:
    members = [case.member(i) for i in range(8)]

    def group(prefix: str, **when: str) -> None:
        for i, member_id in enumerate(members):
            case.line("AETNA", f"{prefix}G{i}", member_id, hcpcs_modifier_1="HQ", **when)
        # a second line for a member already counted does not grow the group
        case.line(
            "AETNA",
            f"{prefix}REPEAT",
            members[0],
            hcpcs_modifier_1="HQ",
            claim_line_number="2",
            **when,
        )

    # sessions without a session ID, told apart by their days (no other scenario bills a group
    # on them)
    group("", claim_line_start_date="2023-08-15")
    # the same group again: a ninth member who is not on the member file still counts
    next_day = {"claim_line_start_date": "2023-08-16"}
    group("NEXT_", **next_day)
    case.line("AETNA", "STRANGER", case.member_id(99), hcpcs_modifier_1="HQ", **next_day)


def test_pps002_counts_distinct_members_even_off_file(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps002_counts_distinct_members_even_off_file)
    # the group of eight: none of its lines; with the stranger: every one of its 10 lines
    nine = {("AETNA", f"NEXT_G{i}") for i in range(8)}
    nine |= {("AETNA", "NEXT_REPEAT"), ("AETNA", "STRANGER")}
    assert flagged(findings, "PPS002") == nine


def _loc(
    world: World, member_id: str, category: str, start: str, end: str, kind: str = "PRTF"
) -> None:
    world.ref["level_of_care"].append(
        {
            "member_id": member_id,
            "loc_category": category,
            "loc_type": kind,
            "start_date": start,
            "end_date": end,
        }
    )


@scenario
def pps003_level_of_care(case: Case) -> None:
    cases = {
        # member: (category, span start, span end, line start, line end)
        1: ("RESIDENTIAL", "2023-03-02", "2023-03-20", "2023-03-02", "2023-03-02"),
        2: ("RESIDENTIAL", "2023-03-02", "2023-03-20", "2023-03-20", "2023-03-20"),
        3: ("ACUTE", "2023-03-02", "", "2023-04-15", "2023-04-15"),
        4: ("COMMUNITY", "2023-03-02", "", "2023-03-05", "2023-03-05"),
        5: ("ACUTE", "2023-03-10", "2023-03-12", "2023-03-08", "2023-03-10"),
        6: ("acute", "2023-03-10", "2023-03-10", "2023-03-10", "2023-03-10"),
        7: ("RESIDENTIAL", "2023-03-02", "2023-03-20", "2023-03-01", "2023-03-01"),
    }
    for n, (category, start, end, dos, dos_end) in cases.items():
        member_id = case.member(n)
        _loc(case.world, member_id, category, start, end)
        case.line(
            "AETNA", f"C{n}", member_id, claim_line_start_date=dos, claim_line_end_date=dos_end
        )


def test_pps003_level_of_care(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps003_level_of_care)
    # admission day, open stay, a range reaching a later stay, a one-day span: flagged;
    # discharge day, community care, the day before admission: not
    assert flagged(findings, "PPS003") == {
        ("AETNA", "C1"),
        ("AETNA", "C3"),
        ("AETNA", "C5"),
        ("AETNA", "C6"),
    }
    detail = findings.filter((pl.col("claim_id") == "C1") & (pl.col("rule_id") == "PPS003"))
    assert (
        detail["detail"][0]
        == "member in RESIDENTIAL (PRTF) 2023-03-02 to 2023-03-20 on DOS 2023-03-02"
    )


@scenario
def pps004_lived_experience(case: Case) -> None:
    child = case.member(0)
    cases = {
        "ON_DOS": {"lived_experience_attested_date": "2023-05-02"},
        "DAY_AFTER": {"lived_experience_attested_date": "2023-05-03"},
        "NOT_Y": {"lived_experience_attested": "N"},
        "BLANK_FLAG": {"lived_experience_attested": ""},
        "Y_NO_DATE": {"lived_experience_attested_date": ""},
        "LOWER_Y": {"lived_experience_attested": "y"},
    }
    for i, (claim_id, overrides) in enumerate(cases.items()):
        npi = luhn_npi(200000000 + i)
        case.world.provider(npi, **overrides)
        case.line("AETNA", claim_id, child, rendering_npi=npi)
    case.line("AETNA", "UNKNOWN", child, rendering_npi=luhn_npi(299999999))


def test_pps004_lived_experience(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps004_lived_experience)
    assert flagged(findings, "PPS004") == {
        ("AETNA", "DAY_AFTER"),
        ("AETNA", "NOT_Y"),
        ("AETNA", "BLANK_FLAG"),
        ("AETNA", "UNKNOWN"),
    }


UNKNOWN_BILLING = luhn_npi(398888888)


@scenario
def pps005_service_array(case: Case) -> None:
    child = case.member(0)
    cases = {
        "PPS_ON_DOS": {"pps_start_date": "2023-05-02"},
        "PPS_DAY_AFTER": {"pps_start_date": "2023-05-03"},
        "PPS_NEVER": {"pps_start_date": ""},
        "ENROLL_ENDED": {"enrollment_end_date": "2023-05-01"},
        "ENROLL_ENDS_ON_DOS": {"enrollment_end_date": "2023-05-02"},
        "ENROLL_LATER": {"enrollment_start_date": "2023-05-03"},
    }
    for i, (claim_id, overrides) in enumerate(cases.items()):
        npi = luhn_npi(300000000 + i)
        case.world.provider(npi, **overrides)
        case.line("AETNA", claim_id, child, rendering_npi=npi)
    case.line("AETNA", "UNKNOWN", child, rendering_npi=luhn_npi(399999999))
    # a blank rendering NPI falls back to the billing NPI, which is on file and clean
    case.line("AETNA", "FALLBACK", child, rendering_npi="")
    case.line("AETNA", "FALLBACK_UNKNOWN", child, rendering_npi="", billing_npi=UNKNOWN_BILLING)


def test_pps005_service_array(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps005_service_array)
    assert flagged(findings, "PPS005") == {
        ("AETNA", "PPS_DAY_AFTER"),
        ("AETNA", "PPS_NEVER"),
        ("AETNA", "ENROLL_ENDED"),
        ("AETNA", "ENROLL_LATER"),
        ("AETNA", "UNKNOWN"),
        ("AETNA", "FALLBACK_UNKNOWN"),
    }
    peer = findings.filter(pl.col("claim_id") == "FALLBACK_UNKNOWN")["peer_npi"][0]
    assert peer == UNKNOWN_BILLING


@scenario
def pps006_age_gap(case: Case) -> None:
    world = case.world
    provider_1990 = luhn_npi(400000001)
    world.provider(provider_1990, date_of_birth="1990-06-15")
    provider_no_dob = luhn_npi(400000002)
    world.provider(provider_no_dob, date_of_birth="")
    members = count()

    def line(claim_id: str, caregiver_dob: str, npi: str = provider_1990) -> str:
        member_id = case.member(next(members), caregiver_dob=caregiver_dob)
        case.line("AETNA", claim_id, member_id, rendering_npi=npi)
        return member_id

    line("OLDER_EXACT", "1987-06-15")  # parent exactly 3 years older: clean
    line("OLDER_SHORT", "1987-06-16")  # one day short: violation
    line("YOUNGER_EXACT", "1993-06-15")  # parent 3 years younger: clean
    line("YOUNGER_SHORT", "1993-06-14")  # one day short: violation
    line("NO_PROVIDER_DOB", "1960-01-01", provider_no_dob)  # documentation
    line("NO_CAREGIVER_DOB", "")  # documentation
    two = line("TWO_ONE_PASSES", "1990-01-01")
    world.ref["caregivers"].append(
        {
            "caregiver_id": "CG-SECOND",
            "member_id": two,
            "relationship": "FATHER",
            "date_of_birth": "1960-01-01",
            "medicaid_id": "",
            "start_date": "",
            "end_date": "",
        }
    )
    inactive = line("CAREGIVER_INACTIVE", "1990-01-01")
    caregiver = world.ref["caregivers"][-1]
    assert caregiver["member_id"] == inactive  # the caregiver ended is that member's
    caregiver["end_date"] = "2023-05-01"
    # the service-participant row names a caregiver: it overrides the active caregivers
    named = line("NAMED_OVERRIDES", "1960-01-01")
    world.ref["caregivers"].append(
        {
            "caregiver_id": "CG-NAMED",
            "member_id": named,
            "relationship": "AUNT",
            "date_of_birth": "1991-01-01",
            "medicaid_id": "",
            "start_date": "",
            "end_date": "2020-01-01",
        }
    )
    world.ref["service_participants"].append(
        {
            "payer": "AETNA",
            "claim_id": case.claim("NAMED_OVERRIDES"),
            "claim_line_number": "1",
            "caregiver_id": "CG-NAMED",
            "non_medicaid_participant": "N",
            "direct_benefit_documented": "",
        }
    )
    line("NAMED_MISSING", "1960-01-01")
    world.ref["service_participants"].append(
        {
            "payer": "AETNA",
            "claim_id": case.claim("NAMED_MISSING"),
            "claim_line_number": "1",
            "caregiver_id": "CG-NOWHERE",
            "non_medicaid_participant": "N",
            "direct_benefit_documented": "",
        }
    )


def test_pps006_age_gap(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps006_age_gap)
    pps006 = findings.filter(pl.col("rule_id") == "PPS006")
    by_claim = dict(zip(pps006["claim_id"], pps006["severity"], strict=True))
    assert by_claim == {
        "OLDER_SHORT": "violation",
        "YOUNGER_SHORT": "violation",
        "NO_PROVIDER_DOB": "documentation",
        "NO_CAREGIVER_DOB": "documentation",
        "CAREGIVER_INACTIVE": "documentation",
        "NAMED_OVERRIDES": "violation",
        "NAMED_MISSING": "documentation",
    }
    assert not any(re.search(r"\d{4}-\d{2}-\d{2}", d) for d in pps006["detail"]), "no dates"


@scenario
def pps007_identified_member_billed(case: Case) -> None:
    world = case.world
    child = case.member(0)
    parent = case.member_id(1)  # a caregiver's Medicaid ID, not on the member file
    world.ref["caregivers"].append(
        {
            "caregiver_id": "CG-PARENT",
            "member_id": child,
            "relationship": "MOTHER",
            "date_of_birth": "1980-01-01",
            "medicaid_id": parent,
            "start_date": "",
            "end_date": "",
        }
    )
    case.line("AETNA", "CHILD_BILLED", child)
    case.line("AETNA", "PARENT_BILLED", parent)
    case.line("AETNA", "NOT_ON_FILE", case.member_id(2))
    lapsed = case.member(3)
    world.ref["enrollment"][-1]["end_date"] = "2023-05-01"
    case.line("AETNA", "NOT_ELIGIBLE", lapsed)
    last_day = case.member(4)
    world.ref["enrollment"][-1]["end_date"] = "2023-05-02"
    case.line("AETNA", "LAST_DAY", last_day)


def test_pps007_identified_member_billed(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps007_identified_member_billed)
    assert flagged(findings, "PPS007") == {
        ("AETNA", "PARENT_BILLED"),
        ("AETNA", "NOT_ON_FILE"),
        ("AETNA", "NOT_ELIGIBLE"),
    }
    parent = findings.filter(
        (pl.col("claim_id") == "PARENT_BILLED") & (pl.col("rule_id") == "PPS007")
    )
    assert "caregiver CG-PARENT" in parent["detail"][0]
    # enrolled nowhere on the DOS is PPS007 alone, never GEN002
    assert flagged(findings, "GEN002") == set()


@scenario
def pps008_treatment_plan(case: Case) -> None:
    world = case.world
    cases = {
        "SIGNED_ON_DOS": {"signed_date": "2023-05-02"},
        "SIGNED_AFTER": {"signed_date": "2023-05-03"},
        "NO_PPS": {"includes_pps": "N"},
        "UNLICENSED": {"practitioner_license_type": "CPRS"},
        "ENDED": {"end_date": "2023-05-01"},
        "ENDS_ON_DOS": {"end_date": "2023-05-02"},
        "UNSIGNED": {"signed_date": ""},
    }
    for i, (claim_id, overrides) in enumerate(cases.items()):
        member_id = case.member(i)
        world.ref["treatment_plans"][-1].update(overrides)
        case.line("AETNA", claim_id, member_id)
    no_plan = case.member(99)
    world.ref["treatment_plans"].pop()
    case.line("AETNA", "NO_PLAN", no_plan)


def test_pps008_treatment_plan(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps008_treatment_plan)
    assert flagged(findings, "PPS008") == {
        ("AETNA", c)
        for c in ("SIGNED_AFTER", "NO_PPS", "UNLICENSED", "ENDED", "UNSIGNED", "NO_PLAN")
    }
    after = findings.filter(
        (pl.col("claim_id") == "SIGNED_AFTER") & (pl.col("rule_id") == "PPS008")
    )
    assert "signed 2023-05-03, after DOS 2023-05-02" in after["detail"][0]


@scenario
def pps009_adult_consent(case: Case) -> None:
    world = case.world
    cases = {
        # claim: (member birth date, consent signed, consent revoked)
        "TURNS_18_NO_CONSENT": ("2005-05-02", None, None),
        "DAY_BEFORE_18": ("2005-05-03", None, None),
        "ADULT_SIGNED_ON_DOS": ("1990-01-01", "2023-05-02", ""),
        "ADULT_SIGNED_AFTER": ("1990-01-01", "2023-05-03", ""),
        "REVOKED_BEFORE": ("1990-01-01", "2022-01-01", "2023-04-01"),
        "REVOKED_ON_DOS": ("1990-01-01", "2022-01-01", "2023-05-02"),
        "REVOKED_DAY_AFTER": ("1990-01-01", "2022-01-01", "2023-05-03"),
        "NO_BIRTH_DATE": ("", None, None),
    }
    for i, (claim_id, (dob, signed, revoked)) in enumerate(cases.items()):
        member_id = case.member(i, dob=dob)
        consent = world.ref["consents"][-1]
        if signed is None:
            world.ref["consents"].pop()
        else:
            consent.update(signed_date=signed, revoked_date=revoked)
        case.line("AETNA", claim_id, member_id)
    other_type = case.member(99, dob="1990-01-01")
    world.ref["consents"][-1]["consent_type"] = "HIPAA"
    case.line("AETNA", "OTHER_CONSENT_TYPE", other_type)


def test_pps009_adult_consent(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps009_adult_consent)
    assert flagged(findings, "PPS009") == {
        ("AETNA", c)
        for c in (
            "TURNS_18_NO_CONSENT",
            "ADULT_SIGNED_AFTER",
            "REVOKED_BEFORE",
            "REVOKED_ON_DOS",
            "OTHER_CONSENT_TYPE",
        )
    }
    revoked = findings.filter(
        (pl.col("claim_id") == "REVOKED_BEFORE") & (pl.col("rule_id") == "PPS009")
    )
    assert "revoked 2023-04-01, on or before DOS 2023-05-02" in revoked["detail"][0]


@scenario
def pps009_leap_day_birthday(case: Case) -> None:
    leapling = case.member(1, dob="2004-02-29")
    case.world.ref["consents"].pop()
    # born 2004-02-29: 18 on 2022-03-01 in a common year, not on 2022-02-28 (both before policy)
    case.line("AETNA", "FEB28", leapling, claim_line_start_date="2022-02-28")
    case.line("AETNA", "MAR01", leapling, claim_line_start_date="2022-03-01")


def test_pps009_leap_day_birthday(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps009_leap_day_birthday)
    assert flagged(findings, "PPS009") == {("AETNA", "MAR01")}


@scenario
def pps010_non_medicaid_participant(case: Case) -> None:
    child = case.member(0)
    for claim_id, non_medicaid, documented in (
        ("UNDOCUMENTED", "Y", "N"),
        ("BLANK_DOC", "Y", ""),
        ("DOCUMENTED", "Y", "Y"),
        ("MEDICAID_PARTICIPANT", "N", "N"),
    ):
        case.line("AETNA", claim_id, child)
        case.world.ref["service_participants"].append(
            {
                "payer": "AETNA",
                "claim_id": case.claim(claim_id),
                "claim_line_number": "1",
                "caregiver_id": f"CG-{child[-4:]}",
                "non_medicaid_participant": non_medicaid,
                "direct_benefit_documented": documented,
            }
        )
    case.line("AETNA", "NO_PARTICIPANT_ROW", child)


def test_pps010_non_medicaid_participant(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, pps010_non_medicaid_participant)
    pps010 = findings.filter(pl.col("rule_id") == "PPS010")
    assert set(pps010["claim_id"]) == {"UNDOCUMENTED", "BLANK_DOC"}
    assert set(pps010["severity"]) == {"documentation"}


@scenario
def gen001_duplicates(case: Case) -> None:
    child = case.member(0)
    case.line(
        "AETNA",
        "FIRST",
        child,
        hcpcs_modifier_1="HQ",
        hcpcs_modifier_2="U1",
        paid_date="2023-05-10",
    )
    case.line(
        "AETNA",
        "SECOND",
        child,
        hcpcs_modifier_1="U1",
        hcpcs_modifier_3="HQ",
        paid_date="2023-05-11",
    )
    case.line(
        "AETNA",
        "OTHER_UNITS",
        child,
        hcpcs_modifier_1="HQ",
        hcpcs_modifier_2="U1",
        service_unit_quantity="5",
        paid_date="2023-05-12",
    )
    # two identical lines on one claim are not duplicates
    case.line("AETNA", "SAME_CLAIM", child, claim_line_start_date="2023-06-01")
    case.line(
        "AETNA", "SAME_CLAIM", child, claim_line_start_date="2023-06-01", claim_line_number="2"
    )
    # across MCOs; same paid date: the smallest claim_id is kept
    case.line("AETNA", "B200", child, claim_line_start_date="2023-07-01", paid_date="2023-07-10")
    case.line("UHC", "A100", child, claim_line_start_date="2023-07-01", paid_date="2023-07-10")


def test_gen001_duplicates(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, gen001_duplicates)
    assert flagged(findings, "GEN001") == {("AETNA", "SECOND"), ("AETNA", "B200")}
    second = findings.filter((pl.col("claim_id") == "SECOND") & (pl.col("rule_id") == "GEN001"))
    assert (
        "duplicate of AETNA claim gen001_duplicates.FIRST line 1 (paid 2023-05-10)"
        in second["detail"][0]
    )


@scenario
def gen002_wrong_mco(case: Case) -> None:
    world = case.world
    moved = case.member(1, payer="SUNFLOWER")
    world.ref["enrollment"][-1]["end_date"] = "2023-05-01"
    world.ref["enrollment"].append(
        {"member_id": moved, "payer": "UHC", "start_date": "2023-05-02", "end_date": ""}
    )
    case.line("UHC", "NEW_ASSIGNMENT_FIRST_DAY", moved)
    case.line("SUNFLOWER", "OLD_MCO_AFTER_MOVE", moved)
    case.line("SUNFLOWER", "OLD_MCO_BEFORE_MOVE", moved, claim_line_start_date="2023-05-01")
    both = case.member(2, payer="AETNA")
    world.ref["enrollment"].append(
        {"member_id": both, "payer": "UHC", "start_date": "2023-01-01", "end_date": ""}
    )
    case.line("UHC", "ENROLLED_WITH_BOTH", both)


def test_gen002_wrong_mco(shared_findings: pl.DataFrame) -> None:
    findings = findings_of(shared_findings, gen002_wrong_mco)
    assert flagged(findings, "GEN002") == {("SUNFLOWER", "OLD_MCO_AFTER_MOVE")}
    detail = findings.filter(pl.col("rule_id") == "GEN002")["detail"][0]
    assert detail == "member enrolled with UHC, not SUNFLOWER, on DOS 2023-05-02"


@scenario
def member_absence_is_never_flagged(case: Case) -> None:
    case.line("AETNA", "CLEAN", case.member(0), place_of_service_code="12")


def test_member_absence_is_never_flagged(shared_findings: pl.DataFrame) -> None:
    """'the member may not be present': a clean line with no attendance data has no finding."""
    assert findings_of(shared_findings, member_absence_is_never_flagged).height == 0
