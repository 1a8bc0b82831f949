"""A nightly run audits again only what a delivery can change, and ends where a full audit
of the same deliveries ends: claims it did not touch change through a session or a duplicate.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.audit.packs import LOCATIONS_SETTING
from pipelines.audit.run import RunSummary, run_audit
from tests.world import CHW, PPS, World, pack_copy

DAY_ONE = dt.date(2025, 6, 30)
DAY_TWO = dt.date(2025, 7, 1)
MEMBERS = [f"3000000{i:04d}" for i in range(9)]
ADULT = "10000000002"
FINDING = ["payer", "claim_id", "claim_line_number", "rule_id", "severity", "detail"]
# a line of group session S1 (its place of service is the world's default)
SESSION = {"hcpcs_modifier_1": "HQ", "session_id": "S1"}


def _day_one() -> World:
    world = World()
    for member_id in MEMBERS:
        world.member(member_id)
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"] = [c for c in world.ref["consents"] if c["member_id"] != ADULT]
    # a group session at its limit: eight members on eight claims
    for i, member_id in enumerate(MEMBERS[:8]):
        world.line("AETNA", f"G{i}", member_id, hcpcs_modifier_1="HQ", session_id="S1")
    # the same service paid twice: the later copy is the duplicate
    world.line(
        "AETNA", "D1", MEMBERS[0], claim_line_start_date="2023-06-01", paid_date="2023-06-10"
    )
    world.line(
        "AETNA", "D2", MEMBERS[0], claim_line_start_date="2023-06-01", paid_date="2023-06-12"
    )
    # an adult without written consent, on a claim nothing else touches
    world.line("UHC", "U1", ADULT, claim_line_start_date="2023-08-01")
    return world


def _day_two(world: World) -> None:
    world.claims = {}
    # a ninth member joins the session on a new claim; the first duplicate copy is voided
    world.line("AETNA", "G8", MEMBERS[8], hcpcs_modifier_1="HQ", session_id="S1")
    world.line(
        "AETNA",
        "V1",
        MEMBERS[0],
        claim_frequency_code="8",
        original_claim_id="D1",
        claim_line_start_date="2023-06-01",
        paid_date="2023-06-20",
        paid_amount="-52.40",
    )


def _run(input_dir: Path, db: Path, out: Path, as_of: dt.date) -> RunSummary:
    return run_audit(input_dir, db, out, as_of=as_of)


def _open(out: Path) -> pl.DataFrame:
    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    return findings.filter(pl.col("status") == "open").select(FINDING).sort(FINDING)


def test_a_nightly_run_ends_where_a_full_audit_of_the_same_deliveries_ends(
    tmp_path: Path,
) -> None:
    world = _day_one()
    input_dir = world.write(tmp_path / "input", claim_file="day1.csv")
    first = _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out1", DAY_ONE)
    assert first.lines_audited == first.in_scope_lines == 11
    _day_two(world)
    world.write(input_dir, claim_file="day2.csv")
    nightly = _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out2", DAY_TWO)
    full = _run(input_dir, tmp_path / "full.duckdb", tmp_path / "full", DAY_TWO)

    # the nightly run looked again at the session and the duplicates, not at UHC's claim
    assert full.lines_audited == full.in_scope_lines == 11
    assert nightly.in_scope_lines == 11
    assert nightly.lines_audited == 10
    assert nightly.findings_produced == full.findings_produced
    assert _open(tmp_path / "out2").equals(_open(tmp_path / "full"))

    log = pl.read_csv(tmp_path / "out2" / "findings.csv", infer_schema=False)
    session = log.filter(pl.col("rule_id") == "PPS002")
    assert session.height == 9  # eight untouched claims flagged through the new one
    duplicate = log.filter(pl.col("rule_id") == "GEN001")
    assert duplicate.select("claim_id", "status").rows() == [("D2", "resolved_data_corrected")]
    untouched = log.filter((pl.col("claim_id") == "U1") & (pl.col("rule_id") == "PPS009"))
    assert untouched.select("status", "first_found_date", "last_found_date").rows() == [
        ("open", "2025-06-30", "2025-07-01")
    ]


def test_new_reference_data_re_audits_the_claim_it_reaches_beside_the_delivered_ones(
    tmp_path: Path,
) -> None:
    world = _day_one()
    input_dir = world.write(tmp_path / "input", claim_file="day1.csv")
    _run(input_dir, tmp_path / "a.duckdb", tmp_path / "out1", DAY_ONE)
    _day_two(world)
    world.ref["consents"].append(
        {"member_id": ADULT, "consent_type": "PPS", "signed_date": "2023-01-01", "revoked_date": ""}
    )
    world.write(input_dir, claim_file="day2.csv")
    second = _run(input_dir, tmp_path / "a.duckdb", tmp_path / "out2", DAY_TWO)
    # the delivery's ten lines, and UHC's claim through the adult's new consent
    assert second.lines_audited == second.in_scope_lines == 11
    log = pl.read_csv(tmp_path / "out2" / "findings.csv", infer_schema=False)
    consent = log.filter((pl.col("claim_id") == "U1") & (pl.col("rule_id") == "PPS009"))
    assert consent["status"].to_list() == ["resolved_data_corrected"]
    con = duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True)
    try:
        kept = con.execute("select count(*) from audit.audited_lines").fetchone()
    finally:
        con.close()
    assert kept == (11,)


def test_a_delivery_without_h0038_lines_audits_nothing_again(tmp_path: Path) -> None:
    world = _day_one()
    input_dir = world.write(tmp_path / "input", claim_file="day1.csv")
    _run(input_dir, tmp_path / "a.duckdb", tmp_path / "out1", DAY_ONE)
    world.claims = {}
    world.line("HEALTHYBLUE", "OTHER1", ADULT, hcpcs_code="90837")
    world.write(input_dir, claim_file="day2.csv")
    second = _run(input_dir, tmp_path / "a.duckdb", tmp_path / "out2", DAY_TWO)
    assert (second.lines_audited, second.in_scope_lines) == (0, 11)
    assert _open(tmp_path / "out2").equals(_open(tmp_path / "out1"))
    log = pl.read_csv(tmp_path / "out2" / "findings.csv", infer_schema=False)
    assert set(log.filter(pl.col("status") == "open")["last_found_date"]) == {"2025-07-01"}


def test_a_nightly_run_reads_the_other_claims_lines_of_an_audited_lines_month(
    tmp_path: Path,
) -> None:
    """Community Health Worker's monthly cap: a new August claim re-audits X, which bills 30
    August and 2 September. X's September line is over the cap only with claim Y's 24 units
    of 3 to 8 September, paid before it, so Y's lines are read though they share no day."""
    world = World()
    world.member(MEMBERS[0])

    def chw(claim_id: str, number: int, day: str, units: str, paid: str) -> None:
        world.line(
            "AETNA",
            claim_id,
            MEMBERS[0],
            claim_line_number=str(number),
            claim_line_start_date=day,
            hcpcs_code="98960",
            hcpcs_modifier_1="U7",
            service_unit_quantity=units,
            paid_date=paid,
        )

    for number, day in enumerate(range(3, 9), start=1):
        chw("Y", number, f"2023-09-{day:02d}", "4", "2023-09-15")
    chw("X", 1, "2023-08-30", "1", "2023-09-20")
    chw("X", 2, "2023-09-02", "1", "2023-09-20")
    input_dir = world.write(tmp_path / "input", claim_file="day1.csv")
    _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out1", DAY_ONE)
    world.claims = {}
    chw("N", 1, "2023-08-10", "1", "2023-08-25")
    world.write(input_dir, claim_file="day2.csv")

    nightly = _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out2", DAY_TWO)
    full = _run(input_dir, tmp_path / "full.duckdb", tmp_path / "full", DAY_TWO)

    chw_run = {p.policy_id: p for p in nightly.policies}[CHW]
    assert (chw_run.lines_audited, chw_run.lines_read) == (3, 9)  # N, X's two; and Y's six
    over_the_month = _open(tmp_path / "out2").filter(pl.col("rule_id") == "CHW004")
    assert over_the_month.select("claim_id", "claim_line_number").rows() == [("X", "2")]
    assert nightly.findings_produced == full.findings_produced
    assert _open(tmp_path / "out2").equals(_open(tmp_path / "full"))


def test_a_nightly_run_reads_of_the_other_claims_only_the_lines_that_share_a_group(
    tmp_path: Path,
) -> None:
    """A new claim in the group session of claim C re-audits C; claim E shares C's session of
    another day, so its line on that day is read to complete the group, and its line on a
    third day is not."""
    world = World()
    for member_id in MEMBERS[:4]:
        world.member(member_id)
    days = {"C": ["2023-05-02", "2023-05-09"], "E": ["2023-05-09", "2023-05-16"]}
    for member_id, (claim_id, dates) in zip(MEMBERS, days.items(), strict=False):
        for number, day in enumerate(dates, start=1):
            world.line(
                "AETNA",
                claim_id,
                member_id,
                claim_line_number=str(number),
                claim_line_start_date=day,
                **SESSION,
            )
    world.line("AETNA", "F", MEMBERS[2], claim_line_start_date="2023-05-16", **SESSION)
    input_dir = world.write(tmp_path / "input", claim_file="day1.csv")
    _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out1", DAY_ONE)
    world.claims = {}
    world.line("AETNA", "T", MEMBERS[3], claim_line_start_date="2023-05-02", **SESSION)
    world.write(input_dir, claim_file="day2.csv")

    nightly = _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out2", DAY_TWO)
    full = _run(input_dir, tmp_path / "full.duckdb", tmp_path / "full", DAY_TWO)

    pps = {p.policy_id: p for p in nightly.policies}[PPS]
    assert (pps.lines_audited, pps.lines_read) == (3, 4)  # T, C's two; and E's on the 9th
    assert (full.lines_audited, full.in_scope_lines) == (6, 6)
    assert nightly.findings_produced == full.findings_produced
    assert _open(tmp_path / "out2").equals(_open(tmp_path / "full"))


def _same_peers_day(world: World, claim_id: str, member_id: str, **values: str) -> None:
    world.line("AETNA", claim_id, member_id, claim_line_start_date="2023-05-02", **values)


@pytest.mark.parametrize(
    ("tonight", "audited"),
    [
        # joins the session without an ID: its two lines are audited again with it
        ({"hcpcs_modifier_1": "HQ"}, 3),
        # the near misses: the peer's individual service, a session with another ID, a
        # session at home (12, not the office, 11); none changes a session of the first night
        ({}, 1),
        ({"hcpcs_modifier_1": "HQ", "session_id": "S9"}, 1),
        ({"hcpcs_modifier_1": "HQ", "place_of_service_code": "12"}, 1),
    ],
)
def test_a_nightly_run_re_audits_the_group_session_a_line_joins_not_the_peers_whole_day(
    tmp_path: Path, tonight: dict[str, str], audited: int
) -> None:
    """A new line ties to the lines of its own session only: those whose size it can
    change."""
    assert _night_on_a_peers_day(tmp_path, tonight) == audited


def test_a_pack_that_ties_a_peers_day_re_audits_every_line_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wider tie a pack may name instead (a provider's daily cap would need it): the
    peer's individual service re-audits the day's four other lines."""
    location = pack_copy(
        tmp_path / "packs",
        edit=lambda text: text.replace(
            'related_lines = ["group_session"', 'related_lines = ["peer_day"'
        ),
    )
    monkeypatch.setenv(LOCATIONS_SETTING, str(location))
    assert _night_on_a_peers_day(tmp_path, {}) == 5


def _night_on_a_peers_day(tmp_path: Path, tonight: dict[str, str]) -> int:
    """One peer's day: a session without a session ID (A1, A2: a blank is one value), an
    individual service (B) and session S2 (C); the next night adds line T, billed with
    `tonight`'s values. Returns the lines the nightly run audited and read (the same count),
    having checked that it ends where a full audit ends."""
    world = World()
    for member_id in MEMBERS[:5]:
        world.member(member_id)
    _same_peers_day(world, "A1", MEMBERS[0], hcpcs_modifier_1="HQ")
    _same_peers_day(world, "A2", MEMBERS[1], hcpcs_modifier_1="HQ")
    _same_peers_day(world, "B", MEMBERS[2])
    _same_peers_day(world, "C", MEMBERS[3], hcpcs_modifier_1="HQ", session_id="S2")
    input_dir = world.write(tmp_path / "input", claim_file="day1.csv")
    _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out1", DAY_ONE)
    world.claims = {}
    _same_peers_day(world, "T", MEMBERS[4], **tonight)
    world.write(input_dir, claim_file="day2.csv")

    nightly = _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out2", DAY_TWO)
    full = _run(input_dir, tmp_path / "full.duckdb", tmp_path / "full", DAY_TWO)

    assert nightly.findings_produced == full.findings_produced
    assert _open(tmp_path / "out2").equals(_open(tmp_path / "full"))
    pps = {p.policy_id: p for p in nightly.policies}[PPS]
    assert pps.lines_audited == pps.lines_read
    return pps.lines_audited


def test_a_line_moved_to_another_session_re_audits_the_session_it_left(tmp_path: Path) -> None:
    """A replacement moves A8 out of session S1 (nine members, one over the limit) to S3: the
    eight lines left in S1 are within the limit, and their size findings must close. S1 is
    found through the replaced version's line."""
    world = World()
    for member_id in MEMBERS:
        world.member(member_id)
    for n, member_id in enumerate(MEMBERS):  # nine members: one over the limit of eight
        _same_peers_day(world, f"A{n}", member_id, **SESSION)
    input_dir = world.write(tmp_path / "input", claim_file="day1.csv")
    _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out1", DAY_ONE)
    assert _open_rule(tmp_path / "out1", "PPS002") == {f"A{n}" for n in range(9)}
    world.claims = {}
    moved = {**SESSION, "session_id": "S3"}
    _same_peers_day(
        world, "A8R", MEMBERS[8], claim_frequency_code="7", original_claim_id="A8", **moved
    )
    world.write(input_dir, claim_file="day2.csv")

    nightly = _run(input_dir, tmp_path / "nightly.duckdb", tmp_path / "out2", DAY_TWO)
    full = _run(input_dir, tmp_path / "full.duckdb", tmp_path / "full", DAY_TWO)

    assert _open_rule(tmp_path / "out2", "PPS002") == set()
    assert nightly.findings_produced == full.findings_produced
    assert _open(tmp_path / "out2").equals(_open(tmp_path / "full"))


def _open_rule(out: Path, rule_id: str) -> set[str]:
    return set(_open(out).filter(pl.col("rule_id") == rule_id)["claim_id"])
