"""A nightly run builds facts for the audited claims' lines alone. The other lines it reads
complete the groups the audited lines are in: a pack's related_facts (the facts that read
other lines) sees them all, its build_facts only the audited lines. A pack without
related_facts sees every line read, since any of its facts may read other lines. Either way
the audited lines' facts are those of a full build."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.audit.facts import RELATED_FACTS, build_facts, read_reference, references_of
from pipelines.audit.packs import discover, unit_minutes_by_code
from pipelines.audit.run import PackAudit, stage_versions
from pipelines.claims.versions import stage_in_scope_lines
from pipelines.db import connect
from pipelines.ingest.load import ingest
from tests.world import AS_OF, CHW, PPS, World, pack_audit

MEMBERS = [f"3000000{i:04d}" for i in range(3)]


def _facts(
    world: World, tmp_path: Path, policy_id: str, audited: list[str]
) -> tuple[PackAudit, pl.DataFrame, pl.DataFrame]:
    """The pack's facts of the audited AETNA claims, and of every line (a full build)."""
    input_dir = world.write(tmp_path / "input")
    audit = pack_audit(policy_id)
    used = [p for p in (audit.pack, audit.general) if p is not None]
    con = connect(tmp_path / "audit.duckdb")
    try:
        units = unit_minutes_by_code(discover())
        ingest(con, input_dir, loaded_on=AS_OF, run_id=1, unit_minutes=units)
        stage_versions(con, [None])
        stage_in_scope_lines(con, audit.pack.scope(audit.general).codes)
        lines = con.sql("from in_scope_line").pl()
        reference = read_reference(con, references_of(used))
    finally:
        con.close()
    claims = pl.DataFrame({"payer": ["AETNA"] * len(audited), "claim_id": audited})
    partial = build_facts(lines, reference, audit.pack, audit.general, audited_claims=claims)
    full = build_facts(lines, reference, audit.pack, audit.general)
    return audit, partial, full


def test_a_session_and_a_copy_are_counted_over_lines_that_are_not_audited(
    tmp_path: Path,
) -> None:
    world = World()
    for member_id in MEMBERS:
        world.member(member_id)
    for i, member_id in enumerate(MEMBERS):  # one group session of three members
        world.line("AETNA", f"G{i}", member_id, hcpcs_modifier_1="HQ", session_id="S1")
    for claim_id, paid in (("D0", "2023-06-10"), ("D1", "2023-06-12")):  # paid twice
        world.line(
            "AETNA", claim_id, MEMBERS[0], claim_line_start_date="2023-06-01", paid_date=paid
        )

    audit, partial, full = _facts(world, tmp_path, PPS, audited=["G1", "D1"])

    assert hasattr(audit.pack.facts(), RELATED_FACTS)
    assert partial["claim_id"].to_list() == ["D1", "G1"]
    assert partial["group_session_members"].to_list() == [0, 3]
    assert partial["duplicate_evidence"][0].startswith("duplicate of AETNA claim D0 line 1")
    assert partial.equals(full.filter(pl.col("claim_id").is_in(["G1", "D1"])))


def test_a_pack_without_related_facts_builds_them_over_every_line_read(tmp_path: Path) -> None:
    """Community Health Worker's daily cap counts the member's units of the day in payment
    order: the audited second line is over the cap only with the first line's units."""
    world = World()
    world.member(MEMBERS[0])
    for claim_id, paid, units in (("C1", "2023-05-20", "3"), ("C2", "2023-05-21", "4")):
        world.line(
            "AETNA",
            claim_id,
            MEMBERS[0],
            hcpcs_code="98960",
            hcpcs_modifier_1="U7",
            service_unit_quantity=units,
            paid_date=paid,
        )

    audit, partial, full = _facts(world, tmp_path, CHW, audited=["C2"])

    assert not hasattr(audit.pack.facts(), RELATED_FACTS)
    assert partial["claim_id"].to_list() == ["C2"]
    assert partial["daily_units_over_limit"].cast(pl.Float64).to_list() == [3.0]
    assert partial.equals(full.filter(pl.col("claim_id") == "C2"))
