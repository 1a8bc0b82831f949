"""Current claim versions: voids, replacements and chains, in one delivery or across several."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tests.world import World, audit, flagged

ADULT = "10000000002"


def _world() -> World:
    """Every line of the adult breaks PPS009 (no written consent), so findings show currency."""
    world = World()
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"].pop()
    return world


def _replace(world: World, payer: str, claim_id: str, original: str, paid: str, **kw: str) -> None:
    world.line(
        payer,
        claim_id,
        ADULT,
        claim_frequency_code="7",
        original_claim_id=original,
        paid_date=paid,
        **kw,
    )


def _void(world: World, payer: str, claim_id: str, original: str, paid: str) -> None:
    world.line(
        payer,
        claim_id,
        ADULT,
        claim_frequency_code="8",
        original_claim_id=original,
        paid_date=paid,
        paid_amount="-52.40",
    )


def test_replacement_supersedes_and_void_removes(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "A1", ADULT, paid_date="2023-05-10")
    _replace(world, "AETNA", "A2", "A1", "2023-06-10")
    world.line("AETNA", "B1", ADULT, paid_date="2023-05-10")
    _void(world, "AETNA", "B2", "B1", "2023-06-10")
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS009") == {("AETNA", "A2")}


def test_chain_three_deep_and_correction_of_a_superseded_version(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "C1", ADULT, paid_date="2023-05-10")
    _replace(world, "AETNA", "C2", "C1", "2023-06-10")
    _replace(world, "AETNA", "C3", "C2", "2023-07-10")
    # names the already-superseded C1: applies to the chain, and is the newest
    _replace(world, "AETNA", "C4", "C1", "2023-08-10")
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS009") == {("AETNA", "C4")}


def test_newest_correction_by_paid_date_not_file_order(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "D1", ADULT, paid_date="2023-05-10")
    # the void was paid after the replacement although it comes first in the file
    _void(world, "AETNA", "D3", "D1", "2023-08-10")
    _replace(world, "AETNA", "D2", "D1", "2023-07-10")
    # a void then a later replacement: the chain is back
    world.line("AETNA", "E1", ADULT, paid_date="2023-05-10")
    _void(world, "AETNA", "E2", "E1", "2023-06-10")
    _replace(world, "AETNA", "E3", "E2", "2023-07-10")
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS009") == {("AETNA", "E3")}


def test_claim_ids_are_unique_only_within_an_mco(tmp_path: Path) -> None:
    world = _world()
    world.ref["enrollment"].append(
        {"member_id": ADULT, "payer": "UHC", "start_date": "2020-01-01", "end_date": ""}
    )
    world.line("AETNA", "SAME", ADULT, paid_date="2023-05-10")
    world.line("UHC", "SAME", ADULT, paid_date="2023-05-10", claim_line_start_date="2023-05-03")
    _void(world, "UHC", "V1", "SAME", "2023-06-10")
    findings = audit(world, tmp_path)
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


def test_claim_paid_date_comes_from_the_lowest_line_even_another_service(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "P1", ADULT, paid_date="2023-04-01", hcpcs_code="90837")
    world.line("AETNA", "P1", ADULT, paid_date="2023-05-10", claim_line_number="2")
    world.line("AETNA", "P2", ADULT, paid_date="2023-05-10")
    findings = audit(world, tmp_path).filter(pl.col("rule_id") == "PPS009")
    paid = dict(zip(findings["claim_id"], findings["paid_date"], strict=True))
    assert paid == {"P1": "2023-04-01", "P2": "2023-05-10"}
