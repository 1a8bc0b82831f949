"""Current claim versions: voids, replacements and chains, in one delivery or across several."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests.world import World, audit, flagged

ADULT = "10000000002"

Scenario = Callable[[World, str], None]  # adds one adult's lines to a world

# scenario -> its own adult: the single-delivery scenarios, audited together once
ONE_DELIVERY: dict[Scenario, str] = {}


def _adult(world: World, member_id: str = ADULT) -> None:
    """Every line of the adult breaks PPS009 (no written consent), so findings show currency."""
    world.member(member_id, dob="1990-01-01")
    world.ref["consents"].pop()


def _world() -> World:
    world = World()
    _adult(world)
    return world


def _replace(
    world: World,
    payer: str,
    claim_id: str,
    original: str,
    paid: str,
    member: str = ADULT,
    **kw: str,
) -> None:
    world.line(
        payer,
        claim_id,
        member,
        claim_frequency_code="7",
        original_claim_id=original,
        paid_date=paid,
        **kw,
    )


def _void(
    world: World, payer: str, claim_id: str, original: str, paid: str, member: str = ADULT
) -> None:
    world.line(
        payer,
        claim_id,
        member,
        claim_frequency_code="8",
        original_claim_id=original,
        paid_date=paid,
        paid_amount="-52.40",
    )


def _in_one_delivery(scenario: Scenario) -> Scenario:
    """Audit the scenario in the shared delivery, on an adult of its own."""
    ONE_DELIVERY[scenario] = str(10000000011 + len(ONE_DELIVERY))
    return scenario


@pytest.fixture(scope="module")
def one_delivery(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The findings of one audit of every single-delivery scenario. They cannot interact:
    each has an adult and claim IDs of its own (a chain only names claims of its MCO), and
    no line is a group line, the only kind whose rule (PPS002) looks at other members."""
    world = World()
    for scenario, member in ONE_DELIVERY.items():
        _adult(world, member)
        scenario(world, member)
    return audit(world, tmp_path_factory.mktemp("one_delivery"))


def _findings_of(findings: pl.DataFrame, scenario: Scenario) -> pl.DataFrame:
    """Every finding on the scenario's adult: all a scenario audited alone would have."""
    return findings.filter(pl.col("member_id") == ONE_DELIVERY[scenario])


@_in_one_delivery
def _replacement_and_void(world: World, member: str) -> None:
    world.line("AETNA", "A1", member, paid_date="2023-05-10")
    _replace(world, "AETNA", "A2", "A1", "2023-06-10", member)
    world.line("AETNA", "B1", member, paid_date="2023-05-10")
    _void(world, "AETNA", "B2", "B1", "2023-06-10", member)


def test_replacement_supersedes_and_void_removes(one_delivery: pl.DataFrame) -> None:
    findings = _findings_of(one_delivery, _replacement_and_void)
    assert flagged(findings, "PPS009") == {("AETNA", "A2")}


@_in_one_delivery
def _chain_three_deep(world: World, member: str) -> None:
    world.line("AETNA", "C1", member, paid_date="2023-05-10")
    _replace(world, "AETNA", "C2", "C1", "2023-06-10", member)
    _replace(world, "AETNA", "C3", "C2", "2023-07-10", member)
    # names the already-superseded C1: applies to the chain, and is the newest
    _replace(world, "AETNA", "C4", "C1", "2023-08-10", member)


def test_chain_three_deep_and_correction_of_a_superseded_version(
    one_delivery: pl.DataFrame,
) -> None:
    findings = _findings_of(one_delivery, _chain_three_deep)
    assert flagged(findings, "PPS009") == {("AETNA", "C4")}


@_in_one_delivery
def _corrections_out_of_file_order(world: World, member: str) -> None:
    world.line("AETNA", "D1", member, paid_date="2023-05-10")
    # the void was paid after the replacement although it comes first in the file
    _void(world, "AETNA", "D3", "D1", "2023-08-10", member)
    _replace(world, "AETNA", "D2", "D1", "2023-07-10", member)
    # a void then a later replacement: the chain is back
    world.line("AETNA", "E1", member, paid_date="2023-05-10")
    _void(world, "AETNA", "E2", "E1", "2023-06-10", member)
    _replace(world, "AETNA", "E3", "E2", "2023-07-10", member)


def test_newest_correction_by_paid_date_not_file_order(one_delivery: pl.DataFrame) -> None:
    findings = _findings_of(one_delivery, _corrections_out_of_file_order)
    assert flagged(findings, "PPS009") == {("AETNA", "E3")}


@_in_one_delivery
def _same_claim_id_at_two_mcos(world: World, member: str) -> None:
    world.ref["enrollment"].append(
        {"member_id": member, "payer": "UHC", "start_date": "2020-01-01", "end_date": ""}
    )
    world.line("AETNA", "SAME", member, paid_date="2023-05-10")
    world.line("UHC", "SAME", member, paid_date="2023-05-10", claim_line_start_date="2023-05-03")
    _void(world, "UHC", "V1", "SAME", "2023-06-10", member)


def test_claim_ids_are_unique_only_within_an_mco(one_delivery: pl.DataFrame) -> None:
    findings = _findings_of(one_delivery, _same_claim_id_at_two_mcos)
    assert flagged(findings, "PPS009") == {("AETNA", "SAME")}


def test_chain_completed_in_a_later_delivery(tmp_path: Path) -> None:
    world = _world()
    world.line("SUNFLOWER", "F1", ADULT, paid_date="2023-05-10")
    world.ref["enrollment"][-1]["payer"] = "SUNFLOWER"
    first = audit(world, tmp_path)
    assert flagged(first, "PPS009") == {("SUNFLOWER", "F1")}
    # the next night's file: a replacement of F1, then a replacement of that replacement
    world.claims["SUNFLOWER"] = []
    _replace(world, "SUNFLOWER", "F2", "F1", "2023-06-10")
    _replace(world, "SUNFLOWER", "F3", "F2", "2023-07-10")
    second = audit(world, tmp_path)
    assert flagged(second, "PPS009") == {("SUNFLOWER", "F3")}
    statuses = dict(zip(second["claim_id"], second["status"], strict=True))
    assert statuses == {"F1": "superseded", "F3": "open"}
    assert set(second["first_found_date"]) == {"2025-06-30"}


def test_lines_correspond_by_line_number_and_a_redelivered_line_replaces_its_copy(
    tmp_path: Path,
) -> None:
    world = _world()
    world.line("AETNA", "G1", ADULT, paid_date="2023-05-10", claim_line_start_date="2022-12-30")
    world.line("AETNA", "G1", ADULT, paid_date="2023-05-10", claim_line_number="2")
    first = audit(world, tmp_path)
    assert set(first.filter(pl.col("rule_id") == "PPS001")["claim_line_number"]) == {"1"}
    # the same line key sent again with a corrected date replaces the earlier copy
    world.claims["AETNA"] = []
    world.line("AETNA", "G1", ADULT, paid_date="2023-05-10", claim_line_start_date="2023-01-02")
    second = audit(world, tmp_path)
    pps001 = second.filter(pl.col("rule_id") == "PPS001")
    assert pps001["status"].to_list() == ["resolved_data_corrected"]


def test_a_line_sent_again_under_another_code_leaves_scope(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "K1", ADULT, paid_date="2023-05-10")
    world.line("AETNA", "K1", ADULT, paid_date="2023-05-10", claim_line_number="2")
    first = audit(world, tmp_path)
    assert flagged(first, "PPS009") == {("AETNA", "K1")}
    # the MCO corrects line 2's code in a later file: that copy is no longer H0038
    world.claims["AETNA"] = []
    world.line("AETNA", "K1", ADULT, paid_date="2023-05-10", claim_line_number="2")
    world.claims["AETNA"][-1]["hcpcs_code"] = "90837"
    second = audit(world, tmp_path).filter(pl.col("rule_id") == "PPS009")
    statuses = dict(zip(second["claim_line_number"], second["status"], strict=True))
    assert statuses == {"1": "open", "2": "resolved_data_corrected"}


@_in_one_delivery
def _claim_paid_date_from_another_service(world: World, member: str) -> None:
    world.line("AETNA", "P1", member, paid_date="2023-04-01", hcpcs_code="90837")
    world.line("AETNA", "P1", member, paid_date="2023-05-10", claim_line_number="2")
    world.line("AETNA", "P2", member, paid_date="2023-05-10")


def test_claim_paid_date_comes_from_the_lowest_line_even_another_service(
    one_delivery: pl.DataFrame,
) -> None:
    findings = _findings_of(one_delivery, _claim_paid_date_from_another_service)
    pps009 = findings.filter(pl.col("rule_id") == "PPS009")
    paid = dict(zip(pps009["claim_id"], pps009["paid_date"], strict=True))
    assert paid == {"P1": "2023-04-01", "P2": "2023-05-10"}
