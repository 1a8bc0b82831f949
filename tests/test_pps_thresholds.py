"""The Parent Peer Support thresholds are the pack's: a copy of the pack with one parameter
changed moves exactly the finding that parameter decides, with no change to any code.

One world holds a line on each side of each threshold; the project's pack audits it once,
and each case audits it again with a copy of the pack (CLAIMS_AUDIT_POLICIES) whose
policy.toml changes one value.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.audit.packs import LOCATIONS_SETTING
from tests.world import World, audit, flagged, luhn_npi, pack_copy

CHILD = "82000000001"
UNDATED_PEER = luhn_npi(700000007)
GAP_NOT_SHOWN = {("AETNA", "NO_PARENT_BIRTH_DATE"), ("AETNA", "NO_PEER_BIRTH_DATE")}


def _world() -> World:
    world = World()
    world.member(CHILD)  # born 2012, caregiver 1985: clean for every rule
    # PPS001: a line on the effective date itself
    world.line("AETNA", "ON_EFFECTIVE_DATE", CHILD, claim_line_start_date="2023-01-01")
    # PPS009: on DOS 2023-05-02 one member is 19 and one is 21, neither with consent
    for member_id, dob, claim_id in (
        ("82000000019", "2004-01-01", "AGED_19"),
        ("82000000021", "2002-05-02", "AGED_21"),
    ):
        world.member(member_id, dob=dob)
        world.ref["consents"].pop()
        world.line("AETNA", claim_id, member_id)
    # PPS006: the peer provider is born 1970-01-01; parents 3 and 5 whole years older
    for member_id, caregiver_dob, claim_id in (
        ("82000000003", "1966-06-01", "PARENT_3_YEARS_APART"),
        ("82000000005", "1965-01-01", "PARENT_5_YEARS_APART"),
    ):
        world.member(member_id, caregiver_dob=caregiver_dob)
        world.line("AETNA", claim_id, member_id)
    # PPS006: gaps that cannot be computed, a parent's or the provider's birth date missing
    world.member("82000000007", caregiver_dob="")
    world.line("AETNA", "NO_PARENT_BIRTH_DATE", "82000000007")
    world.provider(UNDATED_PEER, date_of_birth="")
    world.line("AETNA", "NO_PEER_BIRTH_DATE", CHILD, rendering_npi=UNDATED_PEER)
    # PPS002: a group session of 8 members
    for i in range(8):
        member_id = f"8200000010{i}"
        world.member(member_id)
        world.line("UHC", f"GROUP_OF_8_{i}", member_id, hcpcs_modifier_1="HQ", session_id="S8")
    return world


GROUP = {("UHC", f"GROUP_OF_8_{i}") for i in range(8)}


def _audit_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> pl.DataFrame:
    def edit(policy: str) -> str:
        assert policy.count(old) == 1, f"{old!r} is not a line of policy.toml"
        return policy.replace(old, new)

    monkeypatch.setenv(LOCATIONS_SETTING, str(pack_copy(tmp_path / "packs", edit=edit)))
    return audit(_world(), tmp_path / "run")


@pytest.fixture(scope="module")
def as_shipped(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    return audit(_world(), tmp_path_factory.mktemp("as_shipped"))


def test_the_shipped_thresholds_decide_each_side(as_shipped: pl.DataFrame) -> None:
    assert flagged(as_shipped, "PPS001") == set()
    assert flagged(as_shipped, "PPS009") == {("AETNA", "AGED_19"), ("AETNA", "AGED_21")}
    assert flagged(as_shipped, "PPS006") == GAP_NOT_SHOWN
    assert flagged(as_shipped, "PPS002") == set()


def test_an_effective_date_one_day_later_flags_a_line_on_the_old_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings = _audit_with(
        tmp_path, monkeypatch, "effective_date = 2023-01-01", "effective_date = 2023-01-02"
    )
    assert flagged(findings, "PPS001") == {("AETNA", "ON_EFFECTIVE_DATE")}
    detail = findings.filter(pl.col("rule_id") == "PPS001")["detail"][0]
    assert detail == "DOS 2023-01-01 is before the policy effective date 2023-01-02"


def test_an_adult_age_of_21_stops_flagging_a_19_year_old_without_consent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings = _audit_with(tmp_path, monkeypatch, "adult_age = 18", "adult_age = 21")
    # the near miss: 21 on the DOS is an adult at 21 too
    assert flagged(findings, "PPS009") == {("AETNA", "AGED_21")}


def test_an_age_gap_of_4_years_flags_a_parent_3_years_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings = _audit_with(tmp_path, monkeypatch, "age_gap_years = 3", "age_gap_years = 4")
    pps006 = findings.filter((pl.col("rule_id") == "PPS006") & (pl.col("severity") == "violation"))
    assert flagged(findings, "PPS006") == {("AETNA", "PARENT_3_YEARS_APART"), *GAP_NOT_SHOWN}
    assert pps006["claim_id"].to_list() == ["PARENT_3_YEARS_APART"]
    assert pps006["detail"][0] == (
        f"peer provider NPI {luhn_npi(123456789)} is less than 4 years apart in age from "
        "caregiver(s) CG-0003"
    )


def test_a_group_size_limit_of_7_flags_every_line_of_a_group_of_8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings = _audit_with(tmp_path, monkeypatch, "group_size_max = 8", "group_size_max = 7")
    assert flagged(findings, "PPS002") == GROUP
    assert set(findings.filter(pl.col("rule_id") == "PPS002")["detail"].str.slice(-23)) == {
        "had 8 members (limit 7)"
    }


def test_a_gap_that_cannot_be_computed_is_never_apart_even_with_a_minimum_of_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a missing birth date is no gap at all, not a gap of 0 years
    findings = _audit_with(tmp_path, monkeypatch, "age_gap_years = 3", "age_gap_years = 0")
    assert flagged(findings, "PPS006") == GAP_NOT_SHOWN
    pps006 = findings.filter(pl.col("rule_id") == "PPS006")
    assert set(pps006["severity"]) == {"documentation"}
