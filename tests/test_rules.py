"""Every rule of rules.md: lines where it fires and near misses where it must not.

Each test builds a clean world, adds lines on both sides of the rule's boundaries, runs the
real audit (DuckDB file, polars facts, Great Expectations) and compares the exact set of
claims flagged for that rule.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from tests.world import PEER, World, audit, flagged, luhn_npi

CHILD = "10000000001"


def _world_with_child() -> World:
    world = World()
    world.member(CHILD)
    return world


def test_pps001_effective_date(tmp_path: Path) -> None:
    world = _world_with_child()
    world.line("AETNA", "BEFORE", CHILD, claim_line_start_date="2022-12-31")
    world.line("AETNA", "ON", CHILD, claim_line_start_date="2023-01-01")
    # a multi-day line counts from its first date of service
    world.line(
        "AETNA", "SPAN", CHILD, claim_line_start_date="2022-12-30", claim_line_end_date="2023-01-02"
    )
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS001") == {("AETNA", "BEFORE"), ("AETNA", "SPAN")}
    detail = findings.filter(pl.col("claim_id") == "BEFORE")["detail"][0]
    assert detail == "DOS 2022-12-31 is before the policy effective date 2023-01-01"


def test_pps001_line_is_still_checked_against_other_rules(tmp_path: Path) -> None:
    world = _world_with_child()
    world.line(
        "AETNA", "BEFORE", CHILD, claim_line_start_date="2022-12-31", rendering_npi=luhn_npi(1)
    )
    findings = audit(world, tmp_path)
    rules = set(findings.filter(pl.col("claim_id") == "BEFORE")["rule_id"])
    assert {"PPS001", "PPS004", "PPS005", "PPS006"} <= rules


def test_pps002_group_size(tmp_path: Path) -> None:
    world = World()
    nine = [f"2000000{i:04d}" for i in range(9)]
    for member_id in nine:
        world.member(member_id)
    # nine members in one session at POS 11: every line flagged
    for i, member_id in enumerate(nine):
        world.line("AETNA", f"BIG{i}", member_id, hcpcs_modifier_2="HQ", session_id="S1")
    # eight members: the limit itself is allowed
    for i, member_id in enumerate(nine[:8]):
        world.line(
            "AETNA",
            f"EIGHT{i}",
            member_id,
            hcpcs_modifier_1="HQ",
            claim_line_start_date="2023-06-01",
        )
    # nine lines split by place of service: two sessions of 8 and 1
    for i, member_id in enumerate(nine):
        world.line(
            "AETNA",
            f"POS{i}",
            member_id,
            hcpcs_modifier_1="HQ",
            claim_line_start_date="2023-07-01",
            place_of_service_code="12" if i == 8 else "11",
        )
    # nine lines split by session_id: not one group
    for i, member_id in enumerate(nine):
        world.line(
            "AETNA",
            f"SID{i}",
            member_id,
            hcpcs_modifier_4="HQ",
            claim_line_start_date="2023-08-01",
            session_id="A" if i < 5 else "B",
        )
    # one provider's group billed to two MCOs is one group of nine
    for i, member_id in enumerate(nine):
        world.line(
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
        world.line("AETNA", f"IND{i}", member_id, claim_line_start_date="2023-10-01")
    findings = audit(world, tmp_path)
    expected = {("AETNA", f"BIG{i}") for i in range(9)}
    expected |= {("UHC" if i < 4 else "SUNFLOWER", f"X{i}") for i in range(9)}
    assert flagged(findings, "PPS002") == expected
    detail = findings.filter((pl.col("claim_id") == "BIG0") & (pl.col("rule_id") == "PPS002"))
    assert detail["detail"][0] == (
        f"group session 2023-05-02 at POS 11 (session S1) with NPI {PEER} had 9 members (limit 8)"
    )


def test_pps002_counts_distinct_members_even_off_file(tmp_path: Path) -> None:
    world = World()
    members = [f"3000000{i:04d}" for i in range(8)]
    for member_id in members:
        world.member(member_id)
    for i, member_id in enumerate(members):
        world.line("AETNA", f"G{i}", member_id, hcpcs_modifier_1="HQ")
    # a second line for a member already counted does not grow the group
    world.line("AETNA", "REPEAT", members[0], hcpcs_modifier_1="HQ", claim_line_number="2")
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS002") == set()
    # a ninth member who is not on the member file still counts
    world.line("AETNA", "STRANGER", "39999999999", hcpcs_modifier_1="HQ")
    findings = audit(world, tmp_path / "second")
    assert len(flagged(findings, "PPS002")) == 10


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


def test_pps003_level_of_care(tmp_path: Path) -> None:
    world = World()
    cases = {
        # member: (category, span start, span end, line start, line end)
        "40000000001": ("RESIDENTIAL", "2023-03-02", "2023-03-20", "2023-03-02", "2023-03-02"),
        "40000000002": ("RESIDENTIAL", "2023-03-02", "2023-03-20", "2023-03-20", "2023-03-20"),
        "40000000003": ("ACUTE", "2023-03-02", "", "2023-04-15", "2023-04-15"),
        "40000000004": ("COMMUNITY", "2023-03-02", "", "2023-03-05", "2023-03-05"),
        "40000000005": ("ACUTE", "2023-03-10", "2023-03-12", "2023-03-08", "2023-03-10"),
        "40000000006": ("acute", "2023-03-10", "2023-03-10", "2023-03-10", "2023-03-10"),
        "40000000007": ("RESIDENTIAL", "2023-03-02", "2023-03-20", "2023-03-01", "2023-03-01"),
    }
    for member_id, (category, start, end, dos, dos_end) in cases.items():
        world.member(member_id)
        _loc(world, member_id, category, start, end)
        world.line(
            "AETNA",
            f"C{member_id[-1]}",
            member_id,
            claim_line_start_date=dos,
            claim_line_end_date=dos_end,
        )
    findings = audit(world, tmp_path)
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


def test_pps004_lived_experience(tmp_path: Path) -> None:
    world = _world_with_child()
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
        world.provider(npi, **overrides)
        world.line("AETNA", claim_id, CHILD, rendering_npi=npi)
    world.line("AETNA", "UNKNOWN", CHILD, rendering_npi=luhn_npi(299999999))
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS004") == {
        ("AETNA", "DAY_AFTER"),
        ("AETNA", "NOT_Y"),
        ("AETNA", "BLANK_FLAG"),
        ("AETNA", "UNKNOWN"),
    }


def test_pps005_service_array(tmp_path: Path) -> None:
    world = _world_with_child()
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
        world.provider(npi, **overrides)
        world.line("AETNA", claim_id, CHILD, rendering_npi=npi)
    world.line("AETNA", "UNKNOWN", CHILD, rendering_npi=luhn_npi(399999999))
    # a blank rendering NPI falls back to the billing NPI, which is on file and clean
    world.line("AETNA", "FALLBACK", CHILD, rendering_npi="")
    unknown_billing = luhn_npi(398888888)
    world.line("AETNA", "FALLBACK_UNKNOWN", CHILD, rendering_npi="", billing_npi=unknown_billing)
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS005") == {
        ("AETNA", "PPS_DAY_AFTER"),
        ("AETNA", "PPS_NEVER"),
        ("AETNA", "ENROLL_ENDED"),
        ("AETNA", "ENROLL_LATER"),
        ("AETNA", "UNKNOWN"),
        ("AETNA", "FALLBACK_UNKNOWN"),
    }
    peer = findings.filter(pl.col("claim_id") == "FALLBACK_UNKNOWN")["peer_npi"][0]
    assert peer == unknown_billing


def test_pps006_age_gap(tmp_path: Path) -> None:
    world = World()
    provider_1990 = luhn_npi(400000001)
    world.provider(provider_1990, date_of_birth="1990-06-15")
    provider_no_dob = luhn_npi(400000002)
    world.provider(provider_no_dob, date_of_birth="")

    def case(claim_id: str, caregiver_dob: str, npi: str = provider_1990) -> str:
        member_id = f"5{abs(hash(claim_id)) % 10**10:010d}"
        world.member(member_id, caregiver_dob=caregiver_dob)
        world.line("AETNA", claim_id, member_id, rendering_npi=npi)
        return member_id

    case("OLDER_EXACT", "1987-06-15")  # parent exactly 3 years older: clean
    case("OLDER_SHORT", "1987-06-16")  # one day short: violation
    case("YOUNGER_EXACT", "1993-06-15")  # parent 3 years younger: clean
    case("YOUNGER_SHORT", "1993-06-14")  # one day short: violation
    case("NO_PROVIDER_DOB", "1960-01-01", provider_no_dob)  # documentation
    case("NO_CAREGIVER_DOB", "")  # documentation
    two = case("TWO_ONE_PASSES", "1990-01-01")
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
    inactive = case("CAREGIVER_INACTIVE", "1990-01-01")
    world.ref["caregivers"][-1]["end_date"] = "2023-05-01"
    # the service-participant row names a caregiver: it overrides the active caregivers
    named = case("NAMED_OVERRIDES", "1960-01-01")
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
            "claim_id": "NAMED_OVERRIDES",
            "claim_line_number": "1",
            "caregiver_id": "CG-NAMED",
            "non_medicaid_participant": "N",
            "direct_benefit_documented": "",
        }
    )
    case("NAMED_MISSING", "1960-01-01")
    world.ref["service_participants"].append(
        {
            "payer": "AETNA",
            "claim_id": "NAMED_MISSING",
            "claim_line_number": "1",
            "caregiver_id": "CG-NOWHERE",
            "non_medicaid_participant": "N",
            "direct_benefit_documented": "",
        }
    )
    findings = audit(world, tmp_path)
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
    assert inactive
    assert not any(re.search(r"\d{4}-\d{2}-\d{2}", d) for d in pps006["detail"]), "no dates"


def test_pps007_identified_member_billed(tmp_path: Path) -> None:
    world = _world_with_child()
    world.ref["caregivers"].append(
        {
            "caregiver_id": "CG-PARENT",
            "member_id": CHILD,
            "relationship": "MOTHER",
            "date_of_birth": "1980-01-01",
            "medicaid_id": "60000000001",
            "start_date": "",
            "end_date": "",
        }
    )
    world.line("AETNA", "CHILD_BILLED", CHILD)
    world.line("AETNA", "PARENT_BILLED", "60000000001")
    world.line("AETNA", "NOT_ON_FILE", "60000000002")
    lapsed = "60000000003"
    world.member(lapsed)
    world.ref["enrollment"][-1]["end_date"] = "2023-05-01"
    world.line("AETNA", "NOT_ELIGIBLE", lapsed)
    last_day = "60000000004"
    world.member(last_day)
    world.ref["enrollment"][-1]["end_date"] = "2023-05-02"
    world.line("AETNA", "LAST_DAY", last_day)
    findings = audit(world, tmp_path)
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


def test_pps008_treatment_plan(tmp_path: Path) -> None:
    world = World()
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
        member_id = f"7000000{i:04d}"
        world.member(member_id)
        world.ref["treatment_plans"][-1].update(overrides)
        world.line("AETNA", claim_id, member_id)
    no_plan = "70000009999"
    world.member(no_plan)
    world.ref["treatment_plans"].pop()
    world.line("AETNA", "NO_PLAN", no_plan)
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS008") == {
        ("AETNA", c)
        for c in ("SIGNED_AFTER", "NO_PPS", "UNLICENSED", "ENDED", "UNSIGNED", "NO_PLAN")
    }
    after = findings.filter(
        (pl.col("claim_id") == "SIGNED_AFTER") & (pl.col("rule_id") == "PPS008")
    )
    assert "signed 2023-05-03, after DOS 2023-05-02" in after["detail"][0]


def test_pps009_adult_consent(tmp_path: Path) -> None:
    world = World()
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
        member_id = f"8000000{i:04d}"
        world.member(member_id, dob=dob)
        consent = world.ref["consents"][-1]
        if signed is None:
            world.ref["consents"].pop()
        else:
            consent.update(signed_date=signed, revoked_date=revoked)
        world.line("AETNA", claim_id, member_id)
    other_type = "80000009999"
    world.member(other_type, dob="1990-01-01")
    world.ref["consents"][-1]["consent_type"] = "HIPAA"
    world.line("AETNA", "OTHER_CONSENT_TYPE", other_type)
    findings = audit(world, tmp_path)
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


def test_pps009_leap_day_birthday(tmp_path: Path) -> None:
    world = World()
    leapling = "81000000001"
    world.member(leapling, dob="2005-02-29".replace("2005", "2004"))
    world.ref["consents"].pop()
    # born 2004-02-29: 18 on 2022-03-01 in a common year, not on 2022-02-28 (both before policy)
    world.line("AETNA", "FEB28", leapling, claim_line_start_date="2022-02-28")
    world.line("AETNA", "MAR01", leapling, claim_line_start_date="2022-03-01")
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS009") == {("AETNA", "MAR01")}


def test_pps010_non_medicaid_participant(tmp_path: Path) -> None:
    world = _world_with_child()
    for claim_id, non_medicaid, documented in (
        ("UNDOCUMENTED", "Y", "N"),
        ("BLANK_DOC", "Y", ""),
        ("DOCUMENTED", "Y", "Y"),
        ("MEDICAID_PARTICIPANT", "N", "N"),
    ):
        world.line("AETNA", claim_id, CHILD)
        world.ref["service_participants"].append(
            {
                "payer": "AETNA",
                "claim_id": claim_id,
                "claim_line_number": "1",
                "caregiver_id": f"CG-{CHILD[-4:]}",
                "non_medicaid_participant": non_medicaid,
                "direct_benefit_documented": documented,
            }
        )
    world.line("AETNA", "NO_PARTICIPANT_ROW", CHILD)
    findings = audit(world, tmp_path)
    pps010 = findings.filter(pl.col("rule_id") == "PPS010")
    assert set(pps010["claim_id"]) == {"UNDOCUMENTED", "BLANK_DOC"}
    assert set(pps010["severity"]) == {"documentation"}


def test_gen001_duplicates(tmp_path: Path) -> None:
    world = _world_with_child()
    world.line(
        "AETNA",
        "FIRST",
        CHILD,
        hcpcs_modifier_1="HQ",
        hcpcs_modifier_2="U1",
        paid_date="2023-05-10",
    )
    world.line(
        "AETNA",
        "SECOND",
        CHILD,
        hcpcs_modifier_1="U1",
        hcpcs_modifier_3="HQ",
        paid_date="2023-05-11",
    )
    world.line(
        "AETNA",
        "OTHER_UNITS",
        CHILD,
        hcpcs_modifier_1="HQ",
        hcpcs_modifier_2="U1",
        service_unit_quantity="5",
        paid_date="2023-05-12",
    )
    # two identical lines on one claim are not duplicates
    world.line("AETNA", "SAME_CLAIM", CHILD, claim_line_start_date="2023-06-01")
    world.line(
        "AETNA", "SAME_CLAIM", CHILD, claim_line_start_date="2023-06-01", claim_line_number="2"
    )
    # across MCOs; same paid date: the smallest claim_id is kept
    world.line("AETNA", "B200", CHILD, claim_line_start_date="2023-07-01", paid_date="2023-07-10")
    world.line("UHC", "A100", CHILD, claim_line_start_date="2023-07-01", paid_date="2023-07-10")
    findings = audit(world, tmp_path)
    assert flagged(findings, "GEN001") == {("AETNA", "SECOND"), ("AETNA", "B200")}
    second = findings.filter((pl.col("claim_id") == "SECOND") & (pl.col("rule_id") == "GEN001"))
    assert "duplicate of AETNA claim FIRST line 1 (paid 2023-05-10)" in second["detail"][0]


def test_gen002_wrong_mco(tmp_path: Path) -> None:
    world = World()
    moved = "90000000001"
    world.member(moved, payer="SUNFLOWER")
    world.ref["enrollment"][-1]["end_date"] = "2023-05-01"
    world.ref["enrollment"].append(
        {"member_id": moved, "payer": "UHC", "start_date": "2023-05-02", "end_date": ""}
    )
    world.line("UHC", "NEW_ASSIGNMENT_FIRST_DAY", moved)
    world.line("SUNFLOWER", "OLD_MCO_AFTER_MOVE", moved)
    world.line("SUNFLOWER", "OLD_MCO_BEFORE_MOVE", moved, claim_line_start_date="2023-05-01")
    both = "90000000002"
    world.member(both, payer="AETNA")
    world.ref["enrollment"].append(
        {"member_id": both, "payer": "UHC", "start_date": "2023-01-01", "end_date": ""}
    )
    world.line("UHC", "ENROLLED_WITH_BOTH", both)
    findings = audit(world, tmp_path)
    assert flagged(findings, "GEN002") == {("SUNFLOWER", "OLD_MCO_AFTER_MOVE")}
    detail = findings.filter(pl.col("rule_id") == "GEN002")["detail"][0]
    assert detail == "member enrolled with UHC, not SUNFLOWER, on DOS 2023-05-02"


def test_member_absence_is_never_flagged(tmp_path: Path) -> None:
    """'the member may not be present': a clean line with no attendance data has no finding."""
    world = _world_with_child()
    world.line("AETNA", "CLEAN", CHILD, place_of_service_code="12")
    assert audit(world, tmp_path).height == 0
