"""A night that resends every reference file, each a little changed, audits again only the
lines a changed row reaches (their member, caregiver, provider, claim or MCO) and ends where a
full audit of the same data ends; reference files sent again with the same rows audit nothing.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.audit.facts import REFERENCE_TABLES
from pipelines.audit.packs import LOCATIONS_SETTING, PackError, discover
from pipelines.audit.run import RunSummary, run_audit
from pipelines.claims.scope import REFERENCE_KEYS
from pipelines.ingest.datasets import REFERENCE_DATASETS
from tests.world import World, luhn_npi, pack_copy

DAY_ONE = dt.date(2025, 6, 30)
DAY_TWO = dt.date(2025, 7, 1)
DAY_THREE = dt.date(2025, 7, 2)
PPS = "h0038_parent_peer_support"
CHW = "chw_community_health_worker"
CHW_BILLING = luhn_npi(222333444)
OTHER_CHW_BILLING = luhn_npi(222333555)


def member_id(n: int) -> str:
    return f"4000000{n:04d}"


# Parent Peer Support members, one line each, each on its own day (no session or duplicate
# ties them together): the changed rows reach ORDER..UHC_ADULT, never UNTOUCHED or FILLERS
ORDER = member_id(1)  # two member rows: swapped, the other birth date wins
BIRTH_DATE = member_id(2)  # an adult without consent becomes a child
ENROLLMENT = member_id(3)  # enrollment ends before the DOS
LEVEL_OF_CARE = member_id(4)  # an acute span begins over the DOS
CAREGIVER = member_id(5)  # the caregiver's birth date moves within 3 years of the peer's
UHC_ADULT = member_id(6)  # paid by UHC, whose implementation date moves past the paid date
UNTOUCHED = member_id(7)  # paid by HEALTHYBLUE: a row for the CHW bulletin changes for it
NO_LINES = member_id(8)  # a birth date changes; only a line of another code is billed
FILLERS = [member_id(20 + i) for i in range(12)]
# Community Health Worker members, billed by two CHW providers
CHW_MEMBER = member_id(40)  # billed by CHW_BILLING, whose provider type becomes FQHC
CHW_OTHER = member_id(41)  # a birth date changes: the CHW pack reads no member file

FINDING_COLUMNS = [
    "policy_id",
    "payer",
    "claim_id",
    "claim_line_number",
    "rule_id",
    "status",
    "severity",
    "detail",
    "first_found_date",
    "last_found_date",
    "resolved_date",
    "pre_implementation",
]


def _day_one() -> World:
    world = World()
    world.provider(CHW_BILLING, provider_type="CMHC")
    world.provider(OTHER_CHW_BILLING, provider_type="CMHC")
    for n, member in enumerate(
        [ORDER, BIRTH_DATE, ENROLLMENT, LEVEL_OF_CARE, CAREGIVER, UNTOUCHED, *FILLERS]
    ):
        payer = "HEALTHYBLUE" if member == UNTOUCHED else "AETNA"
        world.member(member, payer=payer)
        world.line(payer, f"P{n:02d}", member, **_on_day(n))
    world.member(UHC_ADULT, payer="UHC", dob="1990-01-01")
    world.line("UHC", "U1", UHC_ADULT, **_on_day(30))
    # an adult with no consent: the second of two member rows (a child's) wins
    world.ref["members"].append({"member_id": ORDER, "date_of_birth": "1990-01-01"})
    _swap_last_member_rows(world, ORDER)
    _without_consent(world, ORDER, BIRTH_DATE, UHC_ADULT)
    _birth_date(world, BIRTH_DATE, "1990-01-01")
    world.member(NO_LINES)
    world.line("AETNA", "X1", NO_LINES, hcpcs_code="90837", **_on_day(31))
    for n, (member, billing) in enumerate(
        [(CHW_MEMBER, CHW_BILLING), (CHW_OTHER, OTHER_CHW_BILLING)]
    ):
        world.member(member)
        world.line(
            "AETNA",
            f"C{n}",
            member,
            hcpcs_code="98960",
            hcpcs_modifier_1="U7",
            rendering_npi="",
            billing_npi=billing,
            service_unit_quantity="1",
            claim_line_start_date="2023-08-01",
            paid_date="2023-08-20",
        )
    return world


def _on_day(n: int) -> dict[str, str]:
    day = dt.date(2023, 3, 1) + dt.timedelta(days=n)
    return {
        "claim_line_start_date": day.isoformat(),
        "paid_date": (day + dt.timedelta(days=20)).isoformat(),
    }


def _rows_of(world: World, dataset: str, member: str) -> list[dict[str, str]]:
    return [row for row in world.ref[dataset] if row["member_id"] == member]


def _swap_last_member_rows(world: World, member: str) -> None:
    rows = world.ref["members"]
    first, second = (i for i, row in enumerate(rows) if row["member_id"] == member)
    rows[first], rows[second] = rows[second], rows[first]


def _without_consent(world: World, *members: str) -> None:
    world.ref["consents"] = [c for c in world.ref["consents"] if c["member_id"] not in members]


def _birth_date(world: World, member: str, dob: str) -> None:
    (row,) = _rows_of(world, "members", member)
    row["date_of_birth"] = dob


def _change_reference_rows(world: World) -> None:
    """A few rows of the reference files changed in ways that move findings; the rest as
    they were."""
    _swap_last_member_rows(world, ORDER)  # now the adult's birth date is the last row's
    _birth_date(world, BIRTH_DATE, "2012-05-01")
    _birth_date(world, NO_LINES, "2001-02-03")
    _birth_date(world, CHW_OTHER, "1999-09-09")
    (enrollment,) = _rows_of(world, "enrollment", ENROLLMENT)
    enrollment["end_date"] = "2023-01-31"
    world.ref["level_of_care"].append(
        {
            "member_id": LEVEL_OF_CARE,
            "loc_category": "ACUTE",
            "loc_type": "INPATIENT",
            "start_date": "2023-02-01",
            "end_date": "",
        }
    )
    (caregiver,) = _rows_of(world, "caregivers", CAREGIVER)
    caregiver["date_of_birth"] = "1969-06-01"
    for provider in world.ref["providers"]:
        if provider["npi"] == CHW_BILLING:
            provider["provider_type"] = "FQHC"
    for mco in world.ref["mco_implementation"]:
        if mco["payer"] == "UHC":
            mco["implemented_date"] = "2023-12-01"
    # an implementation row for the CHW bulletin alone: Parent Peer Support does not read it
    world.ref["mco_implementation"].append(
        {
            "payer": "HEALTHYBLUE",
            "implemented_date": "2023-12-01",
            "reprocessing_completed_date": "",
            "policy": "23175",
        }
    )


def _same_rows_in_another_order(world: World) -> None:
    """Every file's rows in another order, rows of one key keeping theirs (where one value is
    needed the last row of a key wins): the same snapshots, in other files."""
    for dataset in REFERENCE_DATASETS:
        key = dataset.key_columns[0]
        # sorted() is stable also in reverse: rows of one key keep their order
        world.ref[dataset.name] = sorted(
            world.ref[dataset.name], key=lambda r: r[key], reverse=True
        )


def _run(input_dir: Path, db: Path, out: Path, as_of: dt.date, *, full: bool = False) -> RunSummary:
    return run_audit(input_dir, db, out, as_of=as_of, full=full)


def _lines_audited(summary: RunSummary) -> dict[str, int]:
    return {p.policy_id: p.lines_audited for p in summary.policies}


def _findings(out: Path, *, open_only: bool = False) -> pl.DataFrame:
    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    if open_only:
        findings = findings.filter(pl.col("status") == "open")
        columns = [c for c in FINDING_COLUMNS if c not in ("first_found_date", "last_found_date")]
    else:
        columns = FINDING_COLUMNS
    return findings.select(columns).sort(columns, nulls_last=True)


def _history(db: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "select * exclude (note) from audit.finding_history order by all"
        ).fetchall()
    finally:
        con.close()


def _open_rule(findings: pl.DataFrame, claim_id: str, rule_id: str) -> bool:
    return (
        findings.filter(
            (pl.col("claim_id") == claim_id)
            & (pl.col("rule_id") == rule_id)
            & (pl.col("status") == "open")
        ).height
        == 1
    )


def _pre_implementation(findings: pl.DataFrame, claim_id: str) -> list[str]:
    rows = findings.filter((pl.col("claim_id") == claim_id) & (pl.col("status") == "open"))
    return rows["pre_implementation"].to_list()


@dataclass(frozen=True)
class DayOne:
    folder: Path  # input/, night.duckdb and out1/ of day one's audit
    summary: RunSummary


DayOneCopy = tuple[World, Path, Path]  # the world, input folder and database of a copy


@pytest.fixture(scope="module")
def day_one(tmp_path_factory: pytest.TempPathFactory) -> DayOne:
    """Day one's audit, run once in this module; the tests that go on from it each take a
    copy (audited_day_one)."""
    folder = tmp_path_factory.mktemp("day_one")
    input_dir = _day_one().write(folder / "input")
    return DayOne(folder, _run(input_dir, folder / "night.duckdb", folder / "out1", DAY_ONE))


@pytest.fixture
def audited_day_one(day_one: DayOne, tmp_path: Path) -> DayOneCopy:
    """Day one's world, its input folder, and the database of its audit (out1), copied into
    tmp_path for one test to change."""
    shutil.copytree(day_one.folder, tmp_path, dirs_exist_ok=True)
    return _day_one(), tmp_path / "input", tmp_path / "night.duckdb"


def test_a_night_of_changed_reference_rows_audits_what_they_reach_and_ends_as_a_full_audit(
    day_one: DayOne, audited_day_one: DayOneCopy, tmp_path: Path
) -> None:
    world, input_dir, nightly_db = audited_day_one
    full_db = tmp_path / "full.duckdb"
    assert _lines_audited(day_one.summary) == {PPS: 19, CHW: 2}
    before = _findings(tmp_path / "out1")
    assert _open_rule(before, "P01", "PPS009") and not _open_rule(before, "P00", "PPS009")
    shutil.copy(nightly_db, full_db)  # the same first night, for a full audit of night two

    _change_reference_rows(world)
    world.write(input_dir)
    nightly = _run(input_dir, nightly_db, tmp_path / "nightly", DAY_TWO)
    full = _run(input_dir, full_db, tmp_path / "full", DAY_TWO, full=True)
    fresh = _run(input_dir, tmp_path / "fresh.duckdb", tmp_path / "fresh", DAY_TWO, full=True)

    # the six Parent Peer Support lines the rows reach, and the CHW line of the changed
    # provider; not the other thirteen, nor the CHW line of a member whose birth date changed
    assert _lines_audited(nightly) == {PPS: 6, CHW: 1}
    assert _lines_audited(full) == _lines_audited(fresh) == {PPS: 19, CHW: 2}
    assert nightly.in_scope_lines == full.in_scope_lines == 21
    after = _findings(tmp_path / "nightly")
    assert after.equals(_findings(tmp_path / "full"))
    assert _history(nightly_db) == _history(full_db)
    assert _findings(tmp_path / "nightly", open_only=True).equals(
        _findings(tmp_path / "fresh", open_only=True)
    )
    # every change moved a finding
    assert _open_rule(after, "P00", "PPS009")  # the other row's birth date: an adult
    assert not _open_rule(after, "P01", "PPS009")  # now a child
    assert _open_rule(after, "P02", "PPS007")  # no enrollment on the DOS
    assert _open_rule(after, "P03", "PPS003")  # in acute care on the DOS
    assert _open_rule(after, "P04", "PPS006")  # caregiver within 3 years of the peer
    assert _open_rule(after, "C0", "CHW005")  # billed by an FQHC
    assert _pre_implementation(before, "U1") == ["false"]
    assert _pre_implementation(after, "U1") == ["true"]  # paid before UHC's new date


def test_reference_files_sent_again_with_the_same_rows_audit_nothing_again(
    audited_day_one: DayOneCopy, tmp_path: Path
) -> None:
    world, input_dir, db = audited_day_one

    # new files (other bytes, so new snapshots) holding the same rows
    _same_rows_in_another_order(world)
    world.write(input_dir)
    again = _run(input_dir, db, tmp_path / "out2", DAY_TWO)
    assert again.audited
    loaded = {f.dataset for f in again.ingest.files if f.status == "loaded"}
    assert {"members", "enrollment", "providers", "caregivers", "mco_implementation"} <= loaded
    assert _lines_audited(again) == {PPS: 0, CHW: 0}
    assert _findings(tmp_path / "out2", open_only=True).equals(
        _findings(tmp_path / "out1", open_only=True)
    )

    # the same files again: nothing new at all
    unchanged = _run(input_dir, db, tmp_path / "out3", DAY_THREE)
    assert not unchanged.audited


def _end_enrollment(world: World, members: list[str]) -> None:
    for member in members:
        (enrollment,) = _rows_of(world, "enrollment", member)
        enrollment["end_date"] = "2023-01-31"


def test_changed_rows_reaching_more_than_half_the_lines_make_a_full_audit(
    audited_day_one: DayOneCopy, tmp_path: Path
) -> None:
    world, input_dir, db = audited_day_one

    # the near miss: 9 of the 19 lines, not more than half (settings.toml, [nightly])
    _end_enrollment(world, FILLERS[:9])
    world.write(input_dir)
    assert _lines_audited(_run(input_dir, db, tmp_path / "out2", DAY_TWO))[PPS] == 9

    _end_enrollment(world, FILLERS[9:])
    _birth_date(world, FILLERS[0], "2011-01-01")
    world.write(input_dir)
    # 3 more fillers changed, and one changed again: 4 of 19 lines; then 10 at once
    assert _lines_audited(_run(input_dir, db, tmp_path / "out3", DAY_THREE))[PPS] == 4
    for member in FILLERS[:10]:
        _birth_date(world, member, "2010-10-10")
    world.write(input_dir)
    summary = _run(input_dir, db, tmp_path / "out4", DAY_THREE + dt.timedelta(days=1))
    assert _lines_audited(summary)[PPS] == 19


def test_a_database_without_the_keys_of_the_snapshot_in_use_audits_in_full_once(
    audited_day_one: DayOneCopy, tmp_path: Path
) -> None:
    world, input_dir, db = audited_day_one
    con = duckdb.connect(str(db))
    try:  # as a database from before the keys were recorded leaves it
        con.execute("delete from audit.reference_keys")
        con.execute("delete from audit.keyed_snapshots")
    finally:
        con.close()

    _birth_date(world, BIRTH_DATE, "2012-05-01")
    world.write(input_dir)
    full = _run(input_dir, db, tmp_path / "out2", DAY_TWO)
    # the CHW pack reads no member file: nothing it compares has changed
    assert _lines_audited(full) == {PPS: 19, CHW: 0}
    assert not _open_rule(_findings(tmp_path / "out2"), "P01", "PPS009")

    # its keys are recorded now: the next night is nightly again
    _birth_date(world, BIRTH_DATE, "1990-01-01")
    world.write(input_dir)
    nightly = _run(input_dir, db, tmp_path / "out3", DAY_THREE)
    assert _lines_audited(nightly) == {PPS: 1, CHW: 0}
    assert _open_rule(_findings(tmp_path / "out3"), "P01", "PPS009")


def test_every_reference_file_a_pack_may_read_has_a_key_that_reaches_lines() -> None:
    keyed = {key.dataset for key in REFERENCE_KEYS}
    assert keyed == set(REFERENCE_TABLES) == {d.name for d in REFERENCE_DATASETS}
    columns = {d.name: set(d.columns) for d in REFERENCE_DATASETS}
    for key in REFERENCE_KEYS:
        assert {key.column, key.qualifier or key.column} <= columns[key.dataset], key


def _session_world(in_the_session: int) -> tuple[World, list[str]]:
    """Nine members, a line each: the first `in_the_session` in one group session of the
    (one) peer, the rest a day each."""
    world = World()
    members = [member_id(60 + n) for n in range(9)]
    for n, member in enumerate(members):
        world.member(member)
        session = {"hcpcs_modifier_1": "HQ", "session_id": "S1"} if n < in_the_session else {}
        world.line("AETNA", f"D{n}", member, **_on_day(0 if n < in_the_session else n), **session)
    return world, members


def test_a_changed_row_re_audits_only_the_line_it_reaches_when_no_tie_reads_reference_rows(
    tmp_path: Path,
) -> None:
    """The project's packs tie lines by the claim lines' own values (a session's members, a
    member's units): one birth date changes, and only its member's line is audited again,
    not the four other lines of its group session. The findings are a full audit's."""
    world, members = _session_world(5)
    input_dir = world.write(tmp_path / "input")
    db, full_db = tmp_path / "night.duckdb", tmp_path / "full.duckdb"
    assert _lines_audited(_run(input_dir, db, tmp_path / "out1", DAY_ONE))[PPS] == 9
    assert not _open_rule(_findings(tmp_path / "out1"), "D0", "PPS009")
    shutil.copy(db, full_db)
    _birth_date(world, members[0], "2001-02-03")
    _without_consent(world, members[0])  # an adult now, without consent: PPS009
    world.write(input_dir)

    nightly = _run(input_dir, db, tmp_path / "nightly", DAY_TWO)
    full = _run(input_dir, full_db, tmp_path / "full", DAY_TWO, full=True)
    assert _lines_audited(nightly)[PPS] == 1
    assert _lines_audited(full)[PPS] == 9
    assert _open_rule(_findings(tmp_path / "nightly"), "D0", "PPS009")
    assert _findings(tmp_path / "nightly").equals(_findings(tmp_path / "full"))
    assert _history(db) == _history(full_db)


@pytest.mark.parametrize(("in_the_session", "audited"), [(5, 9), (4, 4)])
def test_changed_rows_reaching_more_than_half_the_lines_through_a_session_make_a_full_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_the_session: int, audited: int
) -> None:
    """A pack whose related lines read reference rows: one birth date changes; it reaches one
    line, and through the group session that line is in, every line of the session. 5 of 9
    lines is more than half: a full audit; the near miss, 4 of 9, is audited in part."""
    reading = pack_copy(
        tmp_path / "packs",
        edit=lambda text: text.replace(
            "related_lines_read_reference = false", "related_lines_read_reference = true"
        ),
    )
    monkeypatch.setenv(LOCATIONS_SETTING, str(reading))
    world, members = _session_world(in_the_session)
    input_dir = world.write(tmp_path / "input")
    db = tmp_path / "audit.duckdb"
    assert _lines_audited(_run(input_dir, db, tmp_path / "out1", DAY_ONE))[PPS] == 9
    _birth_date(world, members[0], "2001-02-03")
    world.write(input_dir)
    assert _lines_audited(_run(input_dir, db, tmp_path / "out2", DAY_TWO))[PPS] == audited


def test_a_pack_that_does_not_say_is_taken_to_read_reference_rows_through_its_ties(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unsaid = pack_copy(
        tmp_path,
        edit=lambda text: "\n".join(
            line for line in text.splitlines() if "related_lines_read_reference" not in line
        ),
    )
    monkeypatch.setenv(LOCATIONS_SETTING, str(unsaid))
    packs = discover()
    assert packs[PPS].related_lines_read_reference
    assert packs[PPS].scope(packs["general_claims_integrity"]).related_lines_read_reference
    assert not packs[CHW].scope(packs["general_claims_integrity"]).related_lines_read_reference


@pytest.mark.parametrize("value", ['"false"', "0"])
def test_a_related_lines_reference_setting_other_than_true_or_false_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    location = pack_copy(
        tmp_path,
        edit=lambda text: text.replace(
            "related_lines_read_reference = false", f"related_lines_read_reference = {value}"
        ),
    )
    monkeypatch.setenv(LOCATIONS_SETTING, str(location))
    with pytest.raises(PackError, match="related_lines_read_reference takes true or false"):
        discover()


def test_a_group_session_tie_without_its_modifier_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = pack_copy(tmp_path, edit=lambda text: text.replace('group_modifier = "HQ"', ""))
    monkeypatch.setenv(LOCATIONS_SETTING, str(location))
    with pytest.raises(PackError, match="group_session needs the parameter group_modifier"):
        discover()
