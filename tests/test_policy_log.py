"""The log knows its policy: two policies' findings in one database never touch each other.

The second policy here is simulated by folding its findings into the log the way a pack's
run does (update_log with its policy ID), beside a real Parent Peer Support audit.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from pipelines.audit.run import run_audit
from pipelines.cli import main as cli
from pipelines.db import connect, execute, load_temp_table, transaction
from pipelines.log.reprocessing_log import current_findings, update_log
from pipelines.log.workflow import refresh_workflow
from pipelines.reports.analyst_report import write_analyst_report
from pipelines.reports.outputs import reprocessing_log, write_reports
from tests.world import World, audit

PPS = "h0038_parent_peer_support"
SECOND = "second_policy"
ADULT = "10000000002"
NIGHT_1, NIGHT_2, NIGHT_3 = dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 7, 2)
LINE = {"payer": "AETNA", "claim_id": "ADULT1", "claim_line_number": 1}
PAID = Decimal("52.40")  # World's paid amount
LINES = pl.DataFrame({"payer": ["AETNA"], "claim_id": ["ADULT1"]})


def _world() -> World:
    world = World()
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"].pop()  # every adult line breaks PPS009
    world.line("AETNA", "ADULT1", ADULT)
    return world


@pytest.fixture(scope="module")
def night_1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The world audited on night 1, once: input/, audit.duckdb and out/ for tests to copy."""
    root = tmp_path_factory.mktemp("night_1")
    audit(_world(), root, as_of=NIGHT_1)
    return root


def _after_night_1(night_1: Path, tmp_path: Path) -> Path:
    """A copy of night 1's folder in tmp_path, as `audit(_world(), tmp_path)` leaves it."""
    shutil.copytree(night_1, tmp_path, dirs_exist_ok=True)
    return tmp_path / "audit.duckdb"


def _second_policy_findings(*, amount_at_risk: Decimal | None) -> pl.DataFrame:
    """One finding of the second policy on the same line and under the same rule ID as a
    Parent Peer Support finding: a different finding all the same."""
    return pl.DataFrame(
        {
            **{k: [v] for k, v in LINE.items()},
            "rule_id": ["PPS009"],
            "severity": ["violation"],
            "detail": ["4 units over the daily limit"],
            "mco_detail": ["4 units over the daily limit"],
            "amount_at_risk": [amount_at_risk],
        },
        schema_overrides={"claim_line_number": pl.Int32, "amount_at_risk": pl.Decimal(18, 2)},
    )


def _facts() -> pl.DataFrame:
    return pl.DataFrame(
        {
            **{k: [v] for k, v in LINE.items()},
            "chain_root_id": ["ADULT1"],
            "member_id": [ADULT],
            "peer_npi": ["1234567893"],
            "billing_npi": ["1234567893"],
            "service_date": [dt.date(2023, 5, 2)],
            "paid_amount": [PAID],
            "paid_date": [dt.date(2023, 5, 20)],
            "pre_implementation": [False],
        },
        schema_overrides={"claim_line_number": pl.Int32, "paid_amount": pl.Decimal(18, 2)},
    )


def _log_second_policy(db: Path, findings: pl.DataFrame, *, run_id: int, as_of: dt.date) -> None:
    con = connect(db)
    try:
        with transaction(con):
            part = db.with_name(f"findings-{run_id}.parquet")
            current_findings(findings, _facts()).write_parquet(part)
            load_temp_table(con, "current_findings", [part])
            update_log(con, policy_id=SECOND, run_id=run_id, as_of=as_of)
            refresh_workflow(con, as_of=as_of, run_id=run_id)  # as every run does
            execute(
                con,
                "insert into audit.runs values ($run, $policy, $as_of, 0, 'x', 1, $n, 'id')",
                {"run": run_id, "policy": SECOND, "as_of": as_of, "n": findings.height},
            )
    finally:
        con.close()


def _select(db: Path, query: str, policy_id: str) -> list[tuple[object, ...]]:
    # through connect: a file named audit.duckdb would shadow the audit schema
    con = connect(db)
    try:
        return execute(con, query, {"p": policy_id})
    finally:
        con.close()


def _log(db: Path, policy_id: str) -> list[tuple[object, ...]]:
    """What a policy's audit wrote of its findings. The workflow's clock (notices, due dates:
    docs/workflow.md) runs over every policy's findings on every run, as the packages do."""
    return _select(
        db,
        "select * exclude (policy_id, notified_date, due_date, overdue_since, outside_lookback) "
        "from audit.findings where policy_id = $p order by all",
        policy_id,
    )


def _statuses(db: Path, policy_id: str) -> list[tuple[object, ...]]:
    return _select(
        db,
        "select claim_id, rule_id, status, last_found_date from audit.findings "
        "where policy_id = $p order by all",
        policy_id,
    )


def _history(db: Path, policy_id: str) -> list[tuple[object, ...]]:
    return _select(
        db,
        "select rule_id, changed_on, from_status, to_status from audit.finding_history "
        "where policy_id = $p and from_status is distinct from to_status order by all",
        policy_id,
    )


def test_two_policies_findings_on_one_line_never_touch_each_other(
    night_1: Path, tmp_path: Path
) -> None:
    world = _world()
    db = _after_night_1(night_1, tmp_path)
    pps_after_night_1 = _log(db, PPS)
    assert _statuses(db, PPS) == [("ADULT1", "PPS009", "open", NIGHT_1)]

    # the second policy finds the same line under the same rule ID: its own finding
    _log_second_policy(db, _second_policy_findings(amount_at_risk=None), run_id=90, as_of=NIGHT_2)
    assert _log(db, PPS) == pps_after_night_1
    assert _statuses(db, SECOND) == [("ADULT1", "PPS009", "open", NIGHT_2)]

    # the second policy no longer finds it: only its own finding closes
    _log_second_policy(
        db, _second_policy_findings(amount_at_risk=None).clear(), run_id=91, as_of=NIGHT_3
    )
    assert _log(db, PPS) == pps_after_night_1
    assert _statuses(db, SECOND) == [("ADULT1", "PPS009", "resolved_data_corrected", NIGHT_2)]
    assert _history(db, PPS) == [("PPS009", NIGHT_1, None, "open")]

    # a Parent Peer Support nightly run (a new line) neither reopens nor refreshes the other
    second_before = _log(db, SECOND)
    world.line("AETNA", "ADULT2", ADULT, claim_line_start_date="2023-06-01")
    findings = audit(world, tmp_path, as_of=NIGHT_3 + dt.timedelta(days=1))
    assert _log(db, SECOND) == second_before
    assert set(findings.filter(pl.col("policy_id") == PPS)["claim_id"]) == {"ADULT1", "ADULT2"}
    assert len(_history(db, SECOND)) == 2


def test_a_nightly_run_of_one_policy_does_not_refresh_or_close_another_policys_findings(
    night_1: Path,
    tmp_path: Path,
) -> None:
    world = _world()
    db = _after_night_1(night_1, tmp_path)
    _log_second_policy(db, _second_policy_findings(amount_at_risk=None), run_id=90, as_of=NIGHT_1)
    second_before = _log(db, SECOND)
    # a delivery touching the line: Parent Peer Support audits that claim again, and its
    # finding stands; the second policy's finding keeps its own last-found date
    world.claims = {}
    world.line("AETNA", "OTHER1", ADULT, claim_line_start_date="2023-06-02")
    world.write(tmp_path / "input", claim_file="day2.csv")
    summary = run_audit(tmp_path / "input", db, tmp_path / "out", as_of=NIGHT_2)
    assert summary.lines_audited < summary.in_scope_lines, "a nightly, partial audit"
    assert _log(db, SECOND) == second_before
    assert [s[3] for s in _statuses(db, PPS)] == [NIGHT_2, NIGHT_2], "its own are refreshed"


def test_totals_use_the_amount_at_risk_and_the_whole_paid_amount_when_none(
    night_1: Path,
    tmp_path: Path,
) -> None:
    db = _after_night_1(night_1, tmp_path)
    _log_second_policy(
        db, _second_policy_findings(amount_at_risk=Decimal("12.35")), run_id=90, as_of=NIGHT_2
    )
    con = connect(db)
    try:
        rows = reprocessing_log(con).select("policy_id", "rule_id", "amount_open").rows()
    finally:
        con.close()
    assert rows == [(PPS, "PPS009", PAID), (SECOND, "PPS009", Decimal("12.35"))]


def test_outputs_name_the_policy_of_every_finding(night_1: Path, tmp_path: Path) -> None:
    db = _after_night_1(night_1, tmp_path)
    _log_second_policy(
        db, _second_policy_findings(amount_at_risk=Decimal("12.35")), run_id=90, as_of=NIGHT_2
    )
    out = tmp_path / "out2"
    con = connect(db)
    try:
        write_reports(con, out, as_of=NIGHT_2)
        report = write_analyst_report(con, out, as_of=NIGHT_2).read_text(encoding="utf-8")
    finally:
        con.close()

    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    assert findings.columns[0] == "policy_id"
    assert findings.select("policy_id", "amount_at_risk").rows() == [
        (PPS, None),
        (SECOND, "12.35"),
    ]
    package = pl.read_csv(out / "mco" / "AETNA" / "findings.csv", infer_schema=False)
    assert package.columns[0] == "policy_id" and set(package["policy_id"]) == {PPS, SECOND}
    log_rows = pl.read_csv(out / "reprocessing_log.csv", infer_schema=False)
    assert log_rows.select("policy_id", "amount_open").rows() == [
        (PPS, "52.40"),
        (SECOND, "12.35"),
    ]

    book = openpyxl.load_workbook(out / "mco" / "AETNA" / "AETNA_claims_audit.xlsx")
    assert book.sheetnames == [
        "Summary",
        "Findings 22321",
        "Findings 23175",  # audited too, with nothing found
        f"Findings {SECOND}",
        "Rules",
    ]
    assert book["Findings 22321"]["A1"].value == (
        "Parent Peer Support (KMAP General Bulletin 22321)"
    )
    own = list(book[f"Findings {SECOND}"].iter_rows(min_row=4, values_only=True))
    assert [(row[0], row[2]) for row in own] == [(SECOND, "ADULT1")]

    assert "Parent Peer Support (KMAP General Bulletin 22321)" in report
    assert f"<h2>{SECOND}</h2>" in report
    assert "<strong>Total</strong>" in report
    assert "$64.75" in report, "the total: 52.40 paid and 12.35 at risk"


def test_implementation_dates_come_from_the_policys_bulletin_row_else_the_blank_one(
    night_1: Path,
    tmp_path: Path,
) -> None:
    db = _after_night_1(night_1, tmp_path)
    _log_second_policy(db, _second_policy_findings(amount_at_risk=None), run_id=90, as_of=NIGHT_2)
    con = connect(db)
    try:
        # the World's blank-policy row says 2023-01-01; AETNA sends one for bulletin 22321
        execute(
            con,
            "insert into ref.mco_implementation (payer, implemented_date, policy) "
            "values ('AETNA', '2023-03-01', ' 22321 '), ('AETNA', '2024-01-01', '23175')",
        )
        rows = reprocessing_log(con).select("policy_id", "mco_implemented_date").rows()
    finally:
        con.close()
    assert rows == [(PPS, dt.date(2023, 3, 1)), (SECOND, dt.date(2023, 1, 1))]


def test_waive_asks_which_policy_when_the_key_names_two(
    night_1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _after_night_1(night_1, tmp_path)
    key = ["AETNA", "ADULT1", "1", "PPS009"]
    waive = ["waive", "--db", str(db), *key, "--reason", "paper record", "--analyst", "J. R."]
    # one policy: the positional form is enough
    assert cli.main(["findings", "--db", str(db), "--policy", PPS]) == 0
    _log_second_policy(db, _second_policy_findings(amount_at_risk=None), run_id=90, as_of=NIGHT_2)

    assert cli.main(waive) == 2
    assert "--policy" in capsys.readouterr().err
    assert _statuses(db, PPS)[0][2] == _statuses(db, SECOND)[0][2] == "open"
    assert cli.main([*waive, "--policy", SECOND]) == 0
    assert _statuses(db, PPS)[0][2] == "open"
    assert _statuses(db, SECOND)[0][2] == "waived"
    capsys.readouterr()
    assert cli.main(["findings", "--db", str(db), "--policy", SECOND]) == 0
    listed = capsys.readouterr().out
    assert "1 findings" in listed and PPS not in listed


def test_an_error_inside_duckdb_reaches_the_operator_as_itself(
    night_1: Path, tmp_path: Path
) -> None:
    """Once DuckDB aborts the transaction, cleaning up fails too: the first error (what to
    fix) must be the one raised, never the "transaction is aborted" of the cleanup."""
    con = connect(_after_night_1(night_1, tmp_path))
    try:
        with pytest.raises(duckdb.CatalogException), transaction(con):
            # no current_findings table: the log's SQL fails inside DuckDB
            update_log(con, policy_id=SECOND, run_id=90, as_of=NIGHT_2, audited_claims=LINES)
    finally:
        con.close()
