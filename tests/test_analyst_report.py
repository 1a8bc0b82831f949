"""The analyst report and the Data Docs, on the real two-delivery audit of the synthetic input."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.audit.data_docs import EXAMPLES, RESTRICTED_NOTE
from pipelines.audit.facts import build_facts, read_reference, references_of
from pipelines.audit.rules import LINE as LINE_KEY
from pipelines.audit.rules import columns_checked
from pipelines.audit.run import run_audit, stage_data_docs, validate_partition
from pipelines.claims.versions import current_in_scope_lines
from pipelines.db import connect
from pipelines.demo.synthetic import MCOS
from pipelines.reports.analyst_report import gather, write_analyst_report
from tests.demo_nights import FIRST_NIGHT, SECOND_NIGHT, DemoNights
from tests.world import World, pack_audit

LINE = ["payer", "claim_id", "claim_line_number"]
HOSTILE_CLAIM = '<script>alert("claim")</script>'
# a fetch in markup or CSS: src=, href=, url(), to a web address or a protocol-relative one
FETCH = re.compile(r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?)\s*(?:https?:)?//""", re.I)


@dataclass(frozen=True)
class TwoRuns:
    db_file: Path
    findings_after_first: pl.DataFrame
    findings_after_second: pl.DataFrame


@pytest.fixture(scope="module")
def two_runs(demo_nights: DemoNights) -> TwoRuns:
    first = pl.read_csv(demo_nights.first / "out" / "findings.csv", infer_schema=False)
    second = pl.read_csv(demo_nights.second / "out" / "findings.csv", infer_schema=False)
    return TwoRuns(demo_nights.db_file, first, second)


@pytest.fixture
def con(two_runs: TwoRuns) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(two_runs.db_file)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="module")
def report(two_runs: TwoRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    connection = connect(two_runs.db_file)
    try:
        return write_analyst_report(
            connection, tmp_path_factory.mktemp("report"), as_of=SECOND_NIGHT
        )
    finally:
        connection.close()


def _open(findings: pl.DataFrame) -> pl.DataFrame:
    return findings.filter(pl.col("status") == "open")


def _amount_at_stake(findings: pl.DataFrame) -> Decimal:
    """What the open findings put at risk, each line once at its largest amount (a line can
    break many rules; a unit cap puts only part of a line at risk)."""
    at_risk: dict[tuple[str, ...], Decimal] = {}
    for row in _open(findings).iter_rows(named=True):
        line = tuple(row[c] for c in LINE)
        amount = Decimal(row["amount_at_risk"] or row["paid_amount"])
        at_risk[line] = max(amount, at_risk.get(line, amount))
    return sum(at_risk.values(), Decimal(0))


def _figure(page: str, key: str) -> str:
    found = re.search(rf'id="{key}">([^<]*)<', page)
    assert found, key
    return found.group(1)


def test_report_is_one_file_that_fetches_nothing(report: Path) -> None:
    assert report.name == f"analyst_report_{SECOND_NIGHT.isoformat()}.html"
    page = report.read_text(encoding="utf-8")
    assert not FETCH.search(page)
    assert "http://" not in page and "https://" not in page
    lowered = page.lower()
    for tag in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "@import"):
        assert tag not in lowered, tag
    assert "<svg" in page
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert policy and "default-src 'none'" in html.unescape(policy.group(1))


def test_report_shows_the_restricted_note_first(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    body = page[page.index("<body>") :]
    assert body.index("Restricted data") < body.index("<h1>")
    assert "member IDs" in body[: body.index("<h1>")]


def test_headline_numbers_match_findings_csv(report: Path, two_runs: TwoRuns) -> None:
    page = report.read_text(encoding="utf-8")
    expected_open = _open(two_runs.findings_after_second).height
    assert expected_open > 0
    assert _figure(page, "open-findings") == f"{expected_open:,}"
    assert (
        _figure(page, "amount-at-stake")
        == f"${_amount_at_stake(two_runs.findings_after_second):,.2f}"
    )
    assert _figure(page, "runs") == "2"
    with_findings = _open(two_runs.findings_after_second)["payer"].n_unique()
    assert _figure(page, "mcos") == str(with_findings)


def test_report_names_every_mco_and_rule(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    for payer in MCOS:
        assert payer in page
    rule_ids = {e["meta"]["rule_id"] for e in pack_audit().rules.definition["expectations"]}
    assert len(rule_ids) == 12
    for rule_id in rule_ids:
        assert rule_id in page


def test_trend_replays_the_history_run_by_run(
    con: duckdb.DuckDBPyConnection, two_runs: TwoRuns
) -> None:
    data = gather(con, SECOND_NIGHT)
    assert [r.as_of for r in data.runs] == [FIRST_NIGHT, SECOND_NIGHT]
    assert [r.open_findings for r in data.runs] == [
        _open(two_runs.findings_after_first).height,
        _open(two_runs.findings_after_second).height,
    ]
    closed = two_runs.findings_after_second.filter(pl.col("resolved_date") == "2025-10-01")
    assert data.runs[1].closed == closed.height
    # a finding's notice the night it is found is a history row, not a second opening
    assert data.runs[0].opened == two_runs.findings_after_first.height


def test_ages_and_amounts_by_mco_match_findings_csv(
    con: duckdb.DuckDBPyConnection, two_runs: TwoRuns
) -> None:
    data = gather(con, SECOND_NIGHT)
    open_findings = _open(two_runs.findings_after_second)
    days = [
        (SECOND_NIGHT - dt.date.fromisoformat(d)).days for d in open_findings["first_found_date"]
    ]
    expected_ages = [
        sum(d <= 30 for d in days),
        sum(31 <= d <= 90 for d in days),
        sum(91 <= d <= 180 for d in days),
        sum(d >= 181 for d in days),
    ]
    assert [n for _, n in data.ages] == expected_ages
    for mco in data.mcos:
        own = two_runs.findings_after_second.filter(pl.col("payer") == mco.payer)
        assert mco.open_findings == _open(own).height
        assert mco.amount_at_stake == _amount_at_stake(own)


def test_newest_findings_table_is_most_recent_first(report: Path, two_runs: TwoRuns) -> None:
    page = report.read_text(encoding="utf-8")
    table = page[page.index("Newest open findings") :]
    newest_date = max(_open(two_runs.findings_after_second)["first_found_date"])
    first_row = table[table.index("<tbody>") : table.index("</tr>", table.index("<tbody>"))]
    assert newest_date in first_row


def test_hostile_values_are_escaped(tmp_path: Path) -> None:
    world = World()
    world.member("10000000002", dob="1990-01-01")
    world.ref["consents"].pop()  # an adult without written consent: PPS009
    world.line("AETNA", HOSTILE_CLAIM, "10000000002")
    input_dir = world.write(tmp_path / "input")
    db_file = tmp_path / "audit.duckdb"
    run_audit(input_dir, db_file, tmp_path / "out", as_of=FIRST_NIGHT)
    connection = connect(db_file)
    try:
        assert connection.execute("select count(*) from audit.findings").fetchone() == (1,)
        # payer names and details reach the charts' labels and tooltips too
        hostile_payer = "<img src=x onerror=alert(1)>"
        connection.execute(
            "update audit.findings set payer = $payer, detail = $detail",
            {"payer": hostile_payer, "detail": "</td><script>alert('detail')</script>"},
        )
        connection.execute(
            "insert into ref.mco_implementation (payer) values ($payer)", {"payer": hostile_payer}
        )
        page = write_analyst_report(connection, tmp_path / "report", as_of=FIRST_NIGHT).read_text(
            encoding="utf-8"
        )
    finally:
        connection.close()
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(&quot;claim&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/td&gt;&lt;script&gt;alert(&#x27;detail&#x27;)" in page


def test_report_on_an_empty_database(tmp_path: Path) -> None:
    connection = connect(tmp_path / "empty.duckdb")
    try:
        page = write_analyst_report(connection, tmp_path, as_of=FIRST_NIGHT).read_text(
            encoding="utf-8"
        )
    finally:
        connection.close()
    assert _figure(page, "open-findings") == "0"
    assert "No audit has run yet" in page and "No open findings" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_renders_in_a_browser_without_network(report: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "report.png"
    result = subprocess.run(
        [
            str(shutil.which("chromium")),
            "--headless",
            "--no-sandbox",  # tests may run as root
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            # no name resolves and every request goes to a closed port: nothing can load
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=http://127.0.0.1:9",
            "--window-size=1280,2400",
            f"--screenshot={screenshot}",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000


def test_data_docs_show_the_suites_validation_of_the_facts(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    from pipelines.audit import docs_views  # imports GX: only the tests that build docs

    audit = pack_audit()
    reference = read_reference(con, references_of([audit.pack, audit.general]))
    lines = current_in_scope_lines(con, audit.pack.codes)
    facts = build_facts(lines, reference, audit.pack, audit.general)
    facts_file = tmp_path / "work" / "facts" / "part-00001.parquet"
    facts_file.parent.mkdir(parents=True)
    facts.write_parquet(facts_file)
    validate_partition(facts_file, audit.rules)
    out = tmp_path / "out"
    index = stage_data_docs(facts_file.parent, audit.rules, out, as_of=SECOND_NIGHT)
    docs_dir = out / "data_docs" / audit.policy_id
    assert index.is_file() and index.name == "index.html"
    assert docs_dir in index.parents
    suite_name = audit.rules.definition["name"]
    assert suite_name in index.read_text(encoding="utf-8")
    note = (docs_dir / RESTRICTED_NOTE).read_text(encoding="utf-8")
    assert "PHI" in note and "member-level" in note and "CDN" in note
    # the stored result is the audit's verdict: one failing row per finding the run produced
    (stored,) = docs_dir.glob("gx/uncommitted/validations/**/*.json")
    result = json.loads(stored.read_text(encoding="utf-8"))
    dates = pl.col("service_date")
    first, last = facts.select(first=dates.min(), last=dates.max()).row(0)
    assert result["meta"]["run_id"]["run_name"] == f"{SECOND_NIGHT}, DOS {first} to {last}"
    produced = con.execute(
        "select findings_produced from audit.runs where policy_id = $policy order by run_id desc",
        {"policy": audit.policy_id},
    ).fetchone()
    assert produced is not None
    assert sum(r["result"]["unexpected_count"] for r in result["results"]) == produced[0]
    # each rule keeps GX's SUMMARY examples, never its full list of failing rows
    values = {
        column: dict(zip(facts[LINE_KEY], facts[column], strict=True))
        for column in columns_checked(audit.rules.definition)
    }
    examples = 0
    for rule in result["results"]:
        found, column = rule["result"], rule["expectation_config"]["kwargs"]["column"]
        assert "unexpected_index_list" not in found
        keys = found["partial_unexpected_index_list"]
        assert len(keys) == min(found["unexpected_count"], EXAMPLES)
        shown = [values[column][key] for key in keys]
        # as GX writes them: a date of service as an ISO datetime
        as_stored = json.loads(json.dumps(shown, default=lambda value: value.isoformat()))
        assert found["partial_unexpected_list"] == as_stored
        counts = found["partial_unexpected_counts"]
        assert sum(c["count"] for c in counts) <= found["unexpected_count"]
        assert [c["count"] for c in counts] == sorted((c["count"] for c in counts), reverse=True)
        examples += len(keys)
    assert examples
    # GX's pages, with the site's own stylesheet (GX scaffolds it with the folder)
    assert ".ge-index-page-site-name-title {}" in index.read_text(encoding="utf-8")
    compiled = len(docs_views.COMPILED)
    assert compiled
    # a second night in the same folder adds its page and keeps the first
    stage_data_docs(facts_file.parent, audit.rules, out, as_of=SECOND_NIGHT + dt.timedelta(days=1))
    pages = list(docs_dir.glob("gx/uncommitted/data_docs/local_site/validations/**/*.html"))
    assert len(pages) == 2
    assert len(docs_views.COMPILED) == compiled, "the templates were compiled once"
    # a night that validated none of the pack's lines leaves its Data Docs as they were
    site = {path: path.stat().st_mtime_ns for path in docs_dir.rglob("*")}
    nothing_validated = tmp_path / "quiet_night" / "facts"
    nothing_validated.mkdir(parents=True)
    facts.head(0).write_parquet(nothing_validated / facts_file.name)
    night = SECOND_NIGHT + dt.timedelta(days=2)
    assert stage_data_docs(nothing_validated, audit.rules, out, as_of=night) is None
    assert {path: path.stat().st_mtime_ns for path in docs_dir.rglob("*")} == site


def test_trend_counts_waivers_from_their_date_and_reopened_findings_again(tmp_path: Path) -> None:
    """The trend from a history written by hand: a waiver between runs holds from the next
    run, one after the last run from none yet; a resolved finding that breaks again is open
    again; a notice (open to open) changes no count."""
    runs = {1: dt.date(2025, 1, 1), 2: dt.date(2025, 2, 1), 3: dt.date(2025, 3, 1)}
    history = [  # claim, run (None: a waiver, by its date), date, from, to
        ("A", 1, runs[1], None, "open"),
        ("A", None, dt.date(2025, 1, 15), "open", "waived"),
        ("B", 1, runs[1], None, "open"),
        ("B", 2, runs[2], "open", "resolved_data_corrected"),
        ("B", 3, runs[3], "resolved_data_corrected", "open"),
        ("C", 1, runs[1], None, "open"),
        ("C", 1, runs[1], "open", "open"),
        ("D", 2, runs[2], None, "open"),
        ("D", None, dt.date(2025, 4, 1), "open", "waived"),
    ]
    con = connect(tmp_path / "audit.duckdb")
    try:
        for run_id, as_of in runs.items():
            con.execute(
                "insert into audit.runs values ($run, 'p', $as_of, 0, 'x', 1, 0, 'id')",
                {"run": run_id, "as_of": as_of},
            )
        for claim_id, run_id, changed_on, from_status, to_status in history:
            con.execute(
                "insert into audit.finding_history (policy_id, payer, claim_id, "
                "claim_line_number, rule_id, run_id, changed_on, from_status, to_status) "
                "values ('p', 'AETNA', $claim, 1, 'PPS001', $run, $on, $from, $to)",
                {
                    "claim": claim_id,
                    "run": run_id,
                    "on": changed_on,
                    "from": from_status,
                    "to": to_status,
                },
            )
        trend = gather(con, runs[3]).runs
    finally:
        con.close()
    assert [(r.opened, r.closed, r.open_findings) for r in trend] == [
        (3, 0, 3),
        (1, 1, 2),
        (1, 0, 3),
    ]
