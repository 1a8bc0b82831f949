"""Numbered schema migrations: a release-0.1 database upgrades in place, once, or not at all."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.cli import main as cli
from pipelines.config import project_path
from pipelines.db import DatabaseTooNew, MigrationFailed, connect, migrations
from tests.release_db import release_0_1_database
from tests.world import World

PARENT_PEER_SUPPORT = "h0038_parent_peer_support"
MIGRATION_0005 = "schema migration 0005"
LOG_TABLES = ["audit.findings", "audit.finding_history", "audit.runs", "audit.audited_lines"]
# the columns release 0.1 wrote, in its order: what the upgrade must carry over unchanged
FINDING_COLUMNS_0_1 = (
    "payer, claim_id, claim_line_number, rule_id, chain_root_id, member_id, peer_npi, "
    "service_date, paid_amount, paid_date, severity, detail, status, first_found_date, "
    "last_found_date, resolved_date, pre_implementation, waived_reason, waived_by, mco_detail"
)
HISTORY_COLUMNS_0_1 = (
    "payer, claim_id, claim_line_number, rule_id, run_id, changed_on, from_status, to_status, note"
)


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query).fetchall()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _everything(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the database, for comparing two states of it."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "where database_name = current_database() order by 1"
        ).fetchall()
        return {t: con.execute(f"select * from {t} order by all").fetchall() for (t,) in tables}


@pytest.fixture
def release_db(tmp_path: Path) -> Path:
    return release_0_1_database(tmp_path / "release-0.1.duckdb")


def test_the_release_database_keeps_every_finding_and_history_row_as_parent_peer_support(
    release_db: Path,
) -> None:
    findings = _rows(release_db, f"select {FINDING_COLUMNS_0_1} from audit.findings order by all")
    history = _rows(
        release_db, f"select {HISTORY_COLUMNS_0_1} from audit.finding_history order by all"
    )
    runs = _rows(release_db, "select * from audit.runs order by all")
    lines = _rows(release_db, "select * from audit.audited_lines order by all")
    assert len(findings) == 100 and len(history) == 123, "the fixture as committed"
    assert {row[12] for row in findings} >= {"open", "waived", "superseded"}

    connect(release_db).close()

    assert (
        _rows(release_db, f"select {FINDING_COLUMNS_0_1} from audit.findings order by all")
        == findings
    )
    assert (
        _rows(
            release_db,
            f"select {HISTORY_COLUMNS_0_1} from audit.finding_history "
            f"where changed_by is distinct from '{MIGRATION_0005}' order by all",
        )
        == history
    ), "every history row of the release, beside the notices migration 0005 adds"
    assert (
        _rows(
            release_db,
            "select run_id, as_of, last_delivery_id, policy_sha256, in_scope_lines, "
            "findings_produced, audit_identity from audit.runs order by all",
        )
        == runs
    )
    assert (
        _rows(
            release_db,
            "select payer, claim_id, claim_line_number, peer_npi, member_id, service_date "
            "from audit.audited_lines order by all",
        )
        == lines
    )
    for table in LOG_TABLES:
        assert _rows(release_db, f"select distinct policy_id from {table}") == [
            (PARENT_PEER_SUPPORT,)
        ], table
    assert _rows(
        release_db, "select count(*) from audit.findings where amount_at_risk is null"
    ) == [(100,)], "no finding of release 0.1 put less than its paid amount at risk"
    assert _rows(release_db, "select version, name from audit.schema_migrations order by 1") == [
        (1, "release_0_1"),
        (2, "optional_reference_columns"),
        (3, "policy_in_the_log"),
        (4, "reference_keys"),
        (5, "finding_workflow"),
        (6, "findings_without_index"),
        (7, "audited_lines_billing_npi"),
        (8, "finding_states_without_correlation"),
        (9, "finding_held_macro"),
        (10, "audited_lines_sessions"),
    ]


def test_the_upgrade_gives_every_finding_its_id_notice_and_history_authors(
    release_db: Path,
) -> None:
    connect(release_db).close()
    findings = _rows(
        release_db,
        "select finding_id, policy_id, payer, claim_id, claim_line_number, rule_id, "
        "first_found_date, notified_date, due_date, billing_npi from audit.findings",
    )
    for finding_id, *key, first_found, notified, due, billing_npi in findings:
        text = "\x1f".join(str(part) for part in key)
        assert finding_id == "F-" + hashlib.sha256(text.encode()).hexdigest()[:16].upper()
        # every finding of release 0.1 went out in its package the night it was first found
        assert notified is not None and notified >= first_found
        assert due is None, "the due date follows from the configured allowance on a run"
        assert billing_npi is not None
    assert len({row[0] for row in findings}) == len(findings)
    # a finding on a replacing claim names the superseded one of its chain, line and rule
    links = _rows(
        release_db,
        "select successor.chain_root_id = superseded.chain_root_id, superseded.status, "
        "successor.claim_id <> superseded.claim_id, successor.rule_id = superseded.rule_id "
        "from audit.findings as successor join audit.findings as superseded "
        "on superseded.finding_id = successor.supersedes_finding_id",
    )
    assert links and set(links) == {(True, "superseded", True, True)}
    superseded = _rows(
        release_db, "select count(*) from audit.findings where status = 'superseded'"
    )[0][0]
    assert len(links) <= superseded
    assert _rows(
        release_db, "select count(*) from audit.finding_history where changed_by is null"
    ) == [(0,)], "every history row says who made the change"
    assert _rows(
        release_db,
        "select changed_by from audit.finding_history where event = 'waived'",
    ) == [("Fixture Analyst",)]


def test_the_upgrade_gives_every_audited_line_its_latest_billing_npi(release_db: Path) -> None:
    connect(release_db).close()
    lines = _rows(
        release_db,
        "select line.billing_npi, latest.billing_npi from audit.audited_lines as line "
        "join raw.latest_claim_lines as latest using (payer, claim_id, claim_line_number)",
    )
    assert lines and all(ours == latest for ours, latest in lines)
    assert _rows(release_db, "select count(*) from audit.audited_lines") == [(len(lines),)]
    assert _rows(
        release_db, "select count(*) from audit.audited_lines where billing_npi is null"
    ) == [(0,)], "every line of the release fixture names its billing provider"


def test_the_log_keeps_its_key_without_an_index_after_the_upgrade(release_db: Path) -> None:
    findings = _rows(release_db, f"select {FINDING_COLUMNS_0_1} from audit.findings order by all")
    connect(release_db).close()
    # an index must fit in memory: at 15 million findings it did not (migration 0006)
    indexes = _rows(
        release_db,
        "select constraint_type from duckdb_constraints() "
        "where table_name = 'findings' and constraint_type in ('PRIMARY KEY', 'UNIQUE')",
    )
    assert indexes == []
    assert (
        _rows(release_db, f"select {FINDING_COLUMNS_0_1} from audit.findings order by all")
        == findings
    ), "every row copied as it was"
    keys = _rows(
        release_db,
        "select count(*), count(distinct (policy_id, payer, claim_id, claim_line_number, "
        "rule_id)) from audit.findings",
    )
    assert keys == [(100, 100)], "one row per (policy, payer, claim, line, rule)"


def test_opening_an_upgraded_database_again_changes_nothing(release_db: Path) -> None:
    connect(release_db).close()
    upgraded = _everything(release_db)
    connect(release_db).close()
    assert _everything(release_db) == upgraded


def test_a_new_database_gets_every_migration_and_release_0_1_gets_no_change_from_0001(
    tmp_path: Path,
) -> None:
    new = tmp_path / "new.duckdb"
    connect(new).close()
    known = [m.version for m in migrations(project_path("sql", "migrations"))]
    assert _rows(new, "select version from audit.schema_migrations order by 1") == [
        (v,) for v in known
    ]
    # the near miss: migration 0001 alone on the release file leaves every table as it was
    release = release_0_1_database(tmp_path / "release.duckdb")
    before = _everything(release)
    only_0001 = tmp_path / "only_0001"
    only_0001.mkdir()
    shutil.copy(project_path("sql", "migrations", "0001_release_0_1.sql"), only_0001)
    connect(release, only_0001).close()
    after = _everything(release)
    assert after.pop("audit.schema_migrations")[0][:2] == (1, "release_0_1")
    assert after == before


def test_a_database_newer_than_the_code_is_refused_with_exit_2(
    release_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    connect(release_db).close()
    with duckdb.connect(str(release_db)) as con:
        con.execute("insert into audit.schema_migrations values (9999, 'from_the_future', now())")
    before = _sha256(release_db)

    with pytest.raises(DatabaseTooNew, match="upgrade claims-audit"):
        connect(release_db)
    assert cli.main(["findings", "--db", str(release_db)]) == 2
    assert "upgrade claims-audit" in capsys.readouterr().err
    assert _sha256(release_db) == before


def test_a_failed_migration_leaves_the_database_file_as_it_was(
    release_db: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(project_path("sql", "migrations"), folder)
    # the new steps run, then one fails: all of it, 0001 to 0004 included, must roll back
    (folder / "0099_broken.sql").write_text(
        "alter table audit.findings add column reviewed boolean;\n"
        "update audit.findings set status = 'waived';\n"
        "insert into audit.findings_reviewed select * from audit.findings;\n",
        encoding="utf-8",
    )
    before = _sha256(release_db)

    with pytest.raises(MigrationFailed, match="0099_broken") as failure:
        connect(release_db, folder)
    assert isinstance(failure.value.__cause__, duckdb.CatalogException)
    assert _sha256(release_db) == before, "the file is byte for byte as it was"
    assert not release_db.with_name(release_db.name + ".wal").exists()

    # the near miss: the same steps without the broken one are applied
    (folder / "0099_broken.sql").write_text(
        "alter table audit.findings add column reviewed boolean;\n", encoding="utf-8"
    )
    connect(release_db, folder).close()
    assert _rows(release_db, "select max(version) from audit.schema_migrations") == [(99,)]


def test_a_misnumbered_migration_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(project_path("sql", "migrations"), folder)
    (folder / "4_no_number.sql").write_text("select 1;\n", encoding="utf-8")
    with pytest.raises(MigrationFailed, match="NNNN"):
        connect(tmp_path / "a.duckdb", folder)


def test_the_cli_audits_on_the_upgraded_release_database(release_db: Path, tmp_path: Path) -> None:
    waived = _rows(
        release_db,
        "select payer, claim_id, claim_line_number, rule_id from audit.findings "
        "where status = 'waived'",
    )
    world = World()
    world.line("AETNA", "A-AFTER-UPGRADE", "10000000001", claim_line_start_date="2023-05-03")
    input_dir = world.write(tmp_path / "input")
    out = tmp_path / "out"
    args = ["run", "--input", str(input_dir), "--db", str(release_db), "--out", str(out)]

    assert cli.main([*args, "--as-of", "2025-10-15"]) == 0

    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    assert findings.columns[0] == "policy_id"
    assert set(findings["policy_id"]) == {PARENT_PEER_SUPPORT}
    assert findings.height >= 100, "every finding of the release is still in the log"
    still_waived = findings.filter(pl.col("status") == "waived")
    assert [
        (r["payer"], r["claim_id"], int(r["claim_line_number"]), r["rule_id"])
        for r in still_waived.iter_rows(named=True)
    ] == waived
    assert _rows(
        release_db,
        "select count(*), max(policy_id) from audit.runs where run_id > 2 "
        f"and policy_id = '{PARENT_PEER_SUPPORT}'",
    ) == [(1, PARENT_PEER_SUPPORT)]
    # lines recorded before migration 0010 have no session columns: the new code's identity
    # makes this run a full audit, which records every line again with them
    recorded, without_place = _rows(
        release_db,
        "with latest as (select payer, claim_id, claim_line_number, "
        "arg_max(place_of_service_code, (delivery_id, source_row)) as place "
        "from raw.claim_lines group by all) "
        "select count(*), count(*) filter (where line.place_of_service_code is null "
        "and latest.place is not null) "
        "from audit.audited_lines as line join latest using (payer, claim_id, claim_line_number)",
    )[0]
    assert recorded > 300 and without_place == 0
    # the first run after the upgrade gives the open findings notified before it their due
    # date, from the notice and the configured allowance (90 days)
    due = _rows(
        release_db,
        "select count(*), count(*) filter (where due_date = notified_date + 90) "
        "from audit.findings where status = 'open' and claim_id <> 'A-AFTER-UPGRADE'",
    )
    assert due[0][0] > 0 and due[0][0] == due[0][1]
    assert _rows(
        release_db,
        "select count(*) from audit.finding_history where event = 'due_date' "
        "and changed_by = 'claims-audit run' and changed_on = date '2025-10-15'",
    ) == [(due[0][0],)]
