"""The audit works in partitions that no rule crosses: the findings never depend on their size.

A partition is a set of whole units (days, or months split by member) packed up to about
`lines_per_partition` (pipelines/settings.toml). Here that is set to a few dozen lines, so
that the demo's nights run in dozens of partitions, and they must come out as they do with
the default size, which holds each night in one.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines import config
from pipelines.audit.packs import discover
from pipelines.audit.run import (
    FINDINGS_DIR,
    pack_audits,
    run_audit,
    stage_facts,
    stage_log,
    stage_versions,
)
from pipelines.claims.partitions import partitioning, partitions, plan_partitions
from pipelines.claims.versions import stage_in_scope_lines
from pipelines.db import connect, memory_lowered, scalar, transaction
from pipelines.demo.synthetic import generate, generate_followup
from pipelines.ingest.load import ingest
from tests.demo_nights import FIRST_NIGHT, SECOND_NIGHT, DemoNights
from tests.world import AS_OF, World, pack_audit

NIGHTS = (FIRST_NIGHT, SECOND_NIGHT)  # the demo's, as tests/demo_nights.py audits them
SMALL_PARTITION = 45  # lines: the demo's packs then run in 2 to 20 partitions a night


def _settings_with_partitions_of(lines: int, folder: Path) -> Path:
    text = config.SETTINGS_FILE.read_text(encoding="utf-8")
    default = f"lines_per_partition = {config.load_settings().lines_per_partition}"
    assert default in text
    path = folder / "settings.toml"
    path.write_text(text.replace(default, f"lines_per_partition = {lines}"), encoding="utf-8")
    return path


def _two_nights(root: Path) -> pl.DataFrame:
    """The demo's two nights (the second one incremental); the log's findings after each."""
    generate(root / "input", root / "truth.csv")
    logs = []
    for night, as_of in enumerate(NIGHTS):
        if night:
            generate_followup(root / "input", root / "truth.csv")
        run_audit(root / "input", root / "audit.duckdb", root / "out", as_of=as_of)
        logs.append(pl.read_csv(root / "out" / "findings.csv", infer_schema=False))
    return pl.concat(logs)


@pytest.fixture(scope="module")
def small_partitions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small_partitions")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "SETTINGS_FILE", _settings_with_partitions_of(SMALL_PARTITION, root))
        assert config.load_settings().lines_per_partition == SMALL_PARTITION
        _two_nights(root).write_parquet(root / "findings.parquet")
    return root


def test_partitions_follow_what_ties_a_packs_lines() -> None:
    group_sessions = partitioning(frozenset({"peer_day", "member_day"}))
    assert (group_sessions.period, group_sessions.member_buckets) == ("day", 1)
    unit_caps = partitioning(frozenset({"member_day", "member_month"}))
    assert (unit_caps.period, unit_caps.member_buckets) == ("month", 64)
    both = partitioning(frozenset({"peer_day", "member_month"}))
    assert (both.period, both.member_buckets) == ("month", 1)
    untied = partitioning(frozenset())
    assert (untied.period, untied.member_buckets) == ("day", 64)


def test_findings_are_the_same_whatever_the_partition_size(
    small_partitions: Path, demo_nights: DemoNights
) -> None:
    # the same two nights at the default size, which holds each night in one partition
    default = pl.concat(
        pl.read_csv(night / "out" / "findings.csv", infer_schema=False)
        for night in (demo_nights.first, demo_nights.second)
    )
    tiny = pl.read_parquet(small_partitions / "findings.parquet")
    assert tiny.height > 100
    assert tiny.sort(tiny.columns).equals(default.sort(default.columns))


def test_small_partitions_really_ran_as_many_partitions(small_partitions: Path) -> None:
    # Data Docs keep one validation result per partition and night
    for audit in pack_audits(discover()):
        docs = small_partitions / "out" / "data_docs" / audit.policy_id
        results = list(docs.glob("gx/uncommitted/validations/**/*.json"))
        assert len(results) >= 2 * len(NIGHTS), audit.policy_id


def test_no_partition_splits_a_group_a_rule_reads(small_partitions: Path) -> None:
    con = connect(small_partitions / "audit.duckdb")
    try:
        for audit in pack_audits(discover()):
            scope = audit.pack.scope(audit.general)
            stage_in_scope_lines(con, scope.codes)
            units = partitioning(scope.related_lines)
            planned = plan_partitions(con, units, SMALL_PARTITION)
            parts = [
                part.with_columns(pl.lit(number).alias("part"))
                for number, part in enumerate(partitions(con, units))
            ]
            assert len(parts) == planned > 1
            lines = pl.concat(parts)
            assert lines.select("payer", "claim_id", "claim_line_number").is_unique().all()
            in_scope = con.execute("select count(*) from in_scope_line").fetchone()
            assert in_scope == (lines.height,)
            month = pl.col("service_date").dt.truncate("1mo").alias("month")
            ties = {
                "peer_day": ["peer_npi", "service_date"],
                "group_session": [
                    "peer_npi",
                    "service_date",
                    "place_of_service_code",
                    "session_id",
                ],
                "member_day": ["member_id", "service_date"],
                "member_month": ["member_id", month],
            }
            for tie in scope.related_lines:
                groups = lines.group_by(ties[tie]).agg(pl.col("part").n_unique())
                assert groups["part"].max() == 1, (audit.policy_id, tie)
    finally:
        con.close()


def test_findings_of_an_earlier_attempt_never_reach_the_log(tmp_path: Path) -> None:
    """A DAG task run again in the same work folder: the new facts clear the old findings,
    and the log takes a partition's findings only from its own file."""
    world = World()
    world.member("10000000002")
    world.line("AETNA", "C1", "10000000002")
    input_dir = world.write(tmp_path / "input")
    audit = pack_audit()
    work = tmp_path / "work"
    stale = work / FINDINGS_DIR / "part-00099.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier attempt's findings")
    con = connect(tmp_path / "audit.duckdb")
    try:
        with transaction(con):
            ingest(con, input_dir, loaded_on=AS_OF, run_id=1, unit_minutes={})
            stage_versions(con, [None])
            staged = stage_facts(con, audit, None, work)
            assert staged.lines_audited == staged.lines_read == 1 and not stale.exists()
            with pytest.raises(FileNotFoundError):  # tonight's partition was never validated
                stage_log(con, staged.folder, work / FINDINGS_DIR, audit, run_id=1, as_of=AS_OF)
    finally:
        con.close()


def _memory_limit(con: duckdb.DuckDBPyConnection) -> str:
    return str(scalar(con, "select current_setting('memory_limit')"))


def test_facts_are_built_with_duckdbs_cap_lowered_and_it_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While polars builds the facts, DuckDB only streams the partitions: its cap is lowered
    for that (what it holds of the lines waits on disk), never raised above the one the
    operator set, and back to that one after the stage, also when the stage fails."""
    monkeypatch.delenv("CLAIMS_AUDIT_DUCKDB_MEMORY", raising=False)  # the default cap
    world = World()
    world.member("10000000002")
    world.line("AETNA", "C1", "10000000002")
    input_dir = world.write(tmp_path / "input")
    audit = pack_audit()
    con = connect(tmp_path / "audit.duckdb")
    try:
        usual = _memory_limit(con)
        with memory_lowered(con):
            lowered = _memory_limit(con)
        assert _memory_limit(con) == usual
        # the sizes as DuckDB shows them: 2GB is 1.8 GiB, 512MB 488.2 MiB
        assert (usual, lowered) == ("1.8 GiB", "488.2 MiB")
        with pytest.raises(ZeroDivisionError), memory_lowered(con):
            scalar(con, "select 1")
            raise ZeroDivisionError
        assert _memory_limit(con) == usual
        with transaction(con):
            ingest(con, input_dir, loaded_on=AS_OF, run_id=1, unit_minutes={})
            stage_versions(con, [None])
            stage_facts(con, audit, None, tmp_path / "work")
            assert _memory_limit(con) == usual
    finally:
        con.close()
    monkeypatch.setenv("CLAIMS_AUDIT_DUCKDB_MEMORY", "256MB")
    con = connect(tmp_path / "audit.duckdb")
    try:
        with memory_lowered(con):  # below the lowered cap already: it stays as it is
            assert _memory_limit(con) == "244.1 MiB"
    finally:
        con.close()
