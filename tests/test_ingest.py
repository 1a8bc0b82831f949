"""Ingest per the data contract: dialects, rejection, quarantine, idempotency, atomicity."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.audit.packs import discover, unit_minutes_by_code
from pipelines.audit.run import next_run_id, run_audit
from pipelines.db import connect, transaction
from pipelines.ingest import readers
from pipelines.ingest.datasets import CLAIM_COLUMNS
from pipelines.ingest.load import IngestReport, ingest
from tests.world import AS_OF, PEER, World, audit, flagged, write_rows

CHILD = "10000000001"
ADULT = "10000000002"


def _world() -> World:
    world = World()
    world.member(CHILD)
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"].pop()  # the adult has no written consent: PPS009 on every DOS
    return world


def table_counts(db_file: Path) -> dict[str, int]:
    con = duckdb.connect()
    con.execute("attach $p as db (read_only)", {"p": str(db_file)}).fetchall()
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = 'db'"
    ).fetchall()
    counts = {
        f"{schema}.{table}": con.sql(f'select count(*) from db."{schema}"."{table}"').fetchall()[0][
            0
        ]
        for schema, table in tables
    }
    con.close()
    return counts


def _reformat_date(value: str, style: str) -> str:
    if not value:
        return value
    day = dt.date.fromisoformat(value)
    return {"iso": value, "us": day.strftime("%m/%d/%Y"), "x12": day.strftime("%Y%m%d")}[style]


def _dialect_rows(world: World, style: str) -> list[dict[str, str]]:
    date_columns = ("claim_line_start_date", "claim_line_end_date", "paid_date")
    return [
        {k: _reformat_date(v, style) if k in date_columns else v for k, v in row.items()}
        for row in world.claims["AETNA"]
    ]


def _three_lines(world: World) -> None:
    world.line("AETNA", "EARLY", CHILD, claim_line_start_date="2022-12-31")
    world.line("AETNA", "ADULT", ADULT, claim_line_start_date="2023-03-03")
    world.line("AETNA", "CLEAN", CHILD, hcpcs_code=" h0038 ")


def _ingest(input_dir: Path, db_file: Path) -> IngestReport:
    """Only the audit's first step, ingest, as run_audit runs it: for the tests that look at
    nothing but what ingest loads or rejects."""
    con = connect(db_file)
    try:
        with transaction(con):
            return ingest(
                con,
                input_dir,
                loaded_on=AS_OF,
                run_id=next_run_id(con),
                unit_minutes=unit_minutes_by_code(discover()),
            )
    finally:
        con.close()


@pytest.fixture(scope="module")
def audited_three_lines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    """The three lines audited once for the module, as `audit` leaves them (input/,
    audit.duckdb, out/), and their findings."""
    root = tmp_path_factory.mktemp("three_lines")
    world = _world()
    _three_lines(world)
    return root, audit(world, root)


@pytest.fixture
def three_lines(audited_three_lines: tuple[Path, pl.DataFrame], tmp_path: Path) -> pl.DataFrame:
    """A copy of the audited three lines in tmp_path, for the test to run again on; their
    findings."""
    root, findings = audited_three_lines
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    return findings


@pytest.mark.parametrize(
    ("suffix", "delimiter", "bom", "style"),
    [
        (".csv", ",", True, "iso"),
        (".txt", "|", False, "us"),
        (".csv", ",", False, "x12"),
        (".parquet", None, False, "iso"),
    ],
)
def test_every_dialect_gives_the_same_findings(
    tmp_path: Path, suffix: str, delimiter: str | None, bom: bool, style: str
) -> None:
    world = _world()
    _three_lines(world)
    rows = _dialect_rows(world, style)
    world.claims.clear()
    input_dir = world.write(tmp_path / "input")
    # optional columns absent altogether
    columns = [
        c
        for c in CLAIM_COLUMNS
        if c not in ("session_id", "hcpcs_modifier_4", "claim_line_end_date")
    ]
    target = input_dir / "claims" / "AETNA" / f"extract{suffix}"
    target.parent.mkdir(parents=True)
    if delimiter is None:
        pl.DataFrame([{c: r[c] for c in columns} for r in rows]).write_parquet(target)
    else:
        write_rows(target, columns, rows, delimiter)
        if bom:
            target.write_bytes(b"\xef\xbb\xbf" + target.read_bytes())
    run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)
    findings = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    assert set(zip(findings["claim_id"], findings["rule_id"], strict=True)) == {
        ("EARLY", "PPS001"),
        ("ADULT", "PPS009"),
    }
    assert set(findings["service_date"]) == {"2022-12-31", "2023-03-03"}
    assert set(findings["peer_npi"]) == {PEER}


def test_codes_keep_leading_zeros(tmp_path: Path) -> None:
    world = World()
    member = "00012345678"
    world.member(member, dob="1990-01-01")
    world.ref["consents"].pop()
    world.line("AETNA", "0042", member)
    findings = audit(world, tmp_path)
    assert findings["member_id"].to_list() == [member]
    assert findings["claim_id"].to_list() == ["0042"]


def test_missing_required_column_rejects_only_that_file(tmp_path: Path) -> None:
    world = _world()
    _three_lines(world)
    world.line("UHC", "OTHER", ADULT)
    input_dir = world.write(tmp_path / "input")
    columns = [c for c in CLAIM_COLUMNS if c != "paid_date"]
    write_rows(input_dir / "claims" / "UHC" / "claims.csv", columns, world.claims["UHC"])
    summary = run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)
    rejected = summary.ingest.with_status("rejected")
    assert [f.source_file for f in rejected] == ["claims/UHC/claims.csv"]
    assert rejected[0].reason is not None
    assert "claims/UHC/claims.csv" in rejected[0].reason and "paid_date" in rejected[0].reason
    findings = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    assert set(findings["payer"]) == {"AETNA"}


def test_rerun_on_the_same_input_changes_nothing(tmp_path: Path, three_lines: pl.DataFrame) -> None:
    first = three_lines
    before = table_counts(tmp_path / "audit.duckdb")
    summary = run_audit(
        tmp_path / "input",
        tmp_path / "audit.duckdb",
        tmp_path / "out",
        as_of=AS_OF + dt.timedelta(days=1),
    )
    assert not summary.audited
    assert table_counts(tmp_path / "audit.duckdb") == before
    again = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    assert again.equals(first)


@pytest.mark.usefixtures("three_lines")
def test_same_content_under_another_name_is_skipped(tmp_path: Path) -> None:
    before = table_counts(tmp_path / "audit.duckdb")
    source = tmp_path / "input" / "claims" / "AETNA" / "claims.csv"
    (source.parent / "claims_resent.csv").write_bytes(source.read_bytes())
    summary = run_audit(
        tmp_path / "input",
        tmp_path / "audit.duckdb",
        tmp_path / "out",
        as_of=AS_OF,
    )
    assert [
        f.source_file for f in summary.ingest.with_status("already_loaded") if f.kind == "claims"
    ] == [
        "claims/AETNA/claims.csv",
        "claims/AETNA/claims_resent.csv",
    ]
    assert table_counts(tmp_path / "audit.duckdb") == before


@pytest.mark.usefixtures("three_lines")
def test_known_name_with_new_content_is_a_new_delivery(tmp_path: Path) -> None:
    world = _world()
    _three_lines(world)  # the world audited already, to deliver once more
    world.line("AETNA", "LATE", ADULT, claim_line_start_date="2023-04-04")
    findings = audit(world, tmp_path)
    assert ("AETNA", "LATE") in flagged(findings, "PPS009")


# a batch of 2 rows puts the rejected lines in later batches than the rows around them
@pytest.mark.parametrize("batch_rows", [readers.BATCH_ROWS, 2])
def test_bad_rows_are_quarantined_with_reasons_and_good_rows_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    monkeypatch.setattr(readers, "BATCH_ROWS", batch_rows)
    world = _world()
    world.line("AETNA", "GOOD", ADULT)
    world.line("AETNA", "BAD_DATE", ADULT, claim_line_start_date="2023-02-30")
    world.line("AETNA", "BAD_UNITS", ADULT, service_unit_quantity="four")
    world.line("AETNA", "BLANK_MEMBER", "")
    world.line("AETNA", "BAD_AMOUNT", ADULT, paid_amount="$12")
    world.line("AETNA", "VOID_NO_ORIGINAL", ADULT, claim_frequency_code="8")
    input_dir = world.write(tmp_path / "input")
    extract = input_dir / "claims" / "AETNA" / "claims.csv"
    raw = extract.read_bytes()
    # a row with one field too many, a row cut short, and a Latin-1 byte
    extract.write_bytes(
        raw
        + b"EXTRA,1,1,,10000000002,,,H0038,,,,,2023-05-02,,11,4,1.00,2023-05-20,,surplus\n"
        + b"SHORT,1,1\n"
        + b"LATIN,1,1,,10000000002,,1234567893,H0038,,,,,2023-05-02,,caf\xe9,4,1.00,2023-05-20,\n"
    )
    summary = run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)
    quarantine = pl.read_csv(tmp_path / "out" / "quarantine.csv", infer_schema=False)
    reasons = dict(zip(quarantine["row_number"], quarantine["reason"], strict=True))
    assert reasons == {
        "3": "claim_line_start_date is not a date (YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD)",
        "4": "service_unit_quantity is not a number",
        "5": "member_id is blank",
        "6": "paid_amount is not a number",
        "7": "original_claim_id is blank on a replacement or void",
        "8": "too many fields",
        "9": "too few fields",
        "10": "undecodable bytes (the row is not UTF-8)",
    }
    assert set(quarantine["source_file"]) == {"claims/AETNA/claims.csv"}
    claims = next(f for f in summary.ingest.files if f.kind == "claims")
    assert (claims.rows_read, claims.rows_loaded, claims.rows_quarantined) == (9, 1, 8)
    findings = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    assert set(findings["claim_id"]) == {"GOOD"}


def test_unknown_payer_folder_is_rejected_and_gets_no_output(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "GOOD", ADULT)
    world.line("BLUECROSS", "ELSEWHERE", ADULT)
    summary = run_audit(
        world.write(tmp_path / "input"),
        tmp_path / "a.duckdb",
        tmp_path / "out",
        as_of=AS_OF,
    )
    rejected = summary.ingest.with_status("rejected")
    assert len(rejected) == 1 and "BLUECROSS" in (rejected[0].reason or "")
    assert not (tmp_path / "out" / "mco" / "BLUECROSS").exists()
    assert sorted(p.name for p in (tmp_path / "out" / "mco").iterdir()) == [
        "AETNA",
        "HEALTHYBLUE",
        "SUNFLOWER",
        "UHC",
    ]


def test_payer_column_that_disagrees_is_reported_and_the_folder_wins(tmp_path: Path) -> None:
    world = _world()
    input_dir = world.write(tmp_path / "input")
    row = world.line("AETNA", "MISFILED", ADULT) | {"payer": "UHC"}
    write_rows(input_dir / "claims" / "AETNA" / "c.csv", [*CLAIM_COLUMNS, "payer"], [row])
    summary = run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)
    claims = next(f for f in summary.ingest.files if f.kind == "claims")
    assert claims.payer_mismatches == 1
    findings = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    assert set(findings["payer"]) == {"AETNA"}


def test_a_failed_run_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _world()
    world.line("AETNA", "FIRST", ADULT)
    audit(world, tmp_path)
    before = table_counts(tmp_path / "audit.duckdb")
    world.line("AETNA", "SECOND", ADULT)
    world.write(tmp_path / "input")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    # a real failure inside the run, after the new delivery was loaded
    monkeypatch.setattr("pipelines.audit.run.update_log", crash)
    with pytest.raises(RuntimeError):
        run_audit(
            tmp_path / "input",
            tmp_path / "audit.duckdb",
            tmp_path / "out",
            as_of=AS_OF,
        )
    assert table_counts(tmp_path / "audit.duckdb") == before
    monkeypatch.undo()
    findings = audit(world, tmp_path)
    assert ("AETNA", "SECOND") in flagged(findings, "PPS009")


def test_rejected_file_loads_once_its_payer_is_configured(tmp_path: Path) -> None:
    world = _world()
    world.ref["mco_implementation"] = [
        r for r in world.ref["mco_implementation"] if r["payer"] != "UHC"
    ]
    world.ref["enrollment"].append(
        {"member_id": ADULT, "payer": "UHC", "start_date": "", "end_date": ""}
    )
    world.line("UHC", "EARLY_BIRD", ADULT)
    findings = audit(world, tmp_path)
    assert findings.height == 0
    again = run_audit(
        tmp_path / "input",
        tmp_path / "audit.duckdb",
        tmp_path / "out",
        as_of=AS_OF,
    )
    assert [f.status for f in again.ingest.files if f.kind == "claims"] == ["already_rejected"]
    world.ref["mco_implementation"].append(
        {"payer": "UHC", "implemented_date": "2023-01-01", "reprocessing_completed_date": ""}
    )
    findings = audit(world, tmp_path)
    assert flagged(findings, "PPS009") == {("UHC", "EARLY_BIRD")}


def test_parquet_with_colliding_column_names_is_rejected(tmp_path: Path) -> None:
    world = _world()
    input_dir = world.write(tmp_path / "input")
    row = world.line("AETNA", "P1", ADULT)
    frame = pl.DataFrame([row]).with_columns(pl.col("claim_id").alias("CLAIM_ID"))
    (input_dir / "claims" / "AETNA").mkdir(parents=True)
    frame.write_parquet(input_dir / "claims" / "AETNA" / "twice.parquet")
    report = _ingest(input_dir, tmp_path / "a.duckdb")
    [rejected] = report.with_status("rejected")
    assert "claim_id appear twice" in (rejected.reason or "")


def test_extra_reference_columns_are_kept_in_the_raw_layer(tmp_path: Path) -> None:
    world = _world()
    input_dir = world.write(tmp_path / "input")
    rows = [r | {"county": "Shawnee"} for r in world.ref["members"]]
    write_rows(
        input_dir / "reference" / "members.csv", ["member_id", "date_of_birth", "county"], rows
    )
    _ingest(input_dir, tmp_path / "a.duckdb")
    con = duckdb.connect()
    con.execute("attach $p as db (read_only)", {"p": str(tmp_path / "a.duckdb")}).fetchall()
    extras = con.sql("select distinct extra_columns from db.ref.members").fetchall()
    assert extras == [('{"county":"Shawnee"}',)]


def test_input_without_reference_files_creates_no_database(tmp_path: Path) -> None:
    from pipelines.ingest.load import InputError

    (tmp_path / "input" / "claims").mkdir(parents=True)
    with pytest.raises(InputError, match=r"reference/members\.csv"):
        run_audit(
            tmp_path / "input",
            tmp_path / "a.duckdb",
            tmp_path / "out",
            as_of=AS_OF,
        )
    assert not (tmp_path / "a.duckdb").exists()


def test_reference_row_with_too_many_fields_is_quarantined_by_its_line(tmp_path: Path) -> None:
    world = _world()
    input_dir = world.write(tmp_path / "input")
    members = input_dir / "reference" / "members.csv"
    # line 4 cannot be split; the rows around it load, numbered by their own lines
    lines = members.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "10000000009,2001-01-01,surplus")
    lines.append("10000000008,2002-02-02")
    members.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)
    quarantine = pl.read_csv(tmp_path / "out" / "quarantine.csv", infer_schema=False)
    assert quarantine.select("source_file", "row_number", "reason").rows() == [
        ("reference/members.csv", "4", "too many fields")
    ]
    loaded = next(f for f in summary.ingest.files if f.dataset == "members")
    assert (loaded.rows_read, loaded.rows_loaded, loaded.rows_quarantined) == (
        len(lines) - 1,
        len(lines) - 2,
        1,
    )
