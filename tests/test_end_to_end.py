"""The whole audit on the synthetic demo input: every planted finding, and nothing else."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from pipelines.audit.run import run_audit
from pipelines.demo.synthetic import generate, generate_followup

KEY = ["payer", "claim_id", "claim_line_number", "rule_id", "severity"]
# what the release before policy packs found on the demo's two nights (tests/fixtures/README.md)
GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "h0038_demo_findings.csv"
RULES = [
    "PPS001",
    "PPS002",
    "PPS003",
    "PPS004",
    "PPS005",
    "PPS006",
    "PPS007",
    "PPS008",
    "PPS009",
    "PPS010",
    "GEN001",
    "GEN002",
]


def _open_findings(out: Path) -> pl.DataFrame:
    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    return findings.filter(pl.col("status") == "open").select(KEY)


def _truth(path: Path) -> pl.DataFrame:
    """The Parent Peer Support rows: the only policy this engine audits yet."""
    truth = pl.read_csv(path, infer_schema=False)
    return truth.filter(pl.col("policy_id") == "h0038_parent_peer_support").select(KEY)


def _precision_recall(found: pl.DataFrame, truth: pl.DataFrame, rule: str) -> tuple[float, float]:
    found_rule = {tuple(r) for r in found.filter(pl.col("rule_id") == rule).iter_rows()}
    truth_rule = {tuple(r) for r in truth.filter(pl.col("rule_id") == rule).iter_rows()}
    hits = len(found_rule & truth_rule)
    precision = hits / len(found_rule) if found_rule else 1.0
    recall = hits / len(truth_rule) if truth_rule else 1.0
    return precision, recall


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    generate(root / "input", root / "truth.csv")
    run_audit(
        root / "input",
        root / "audit.duckdb",
        root / "out",
        as_of=dt.date(2025, 6, 30),
    )
    return root


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_has_precision_and_recall_one(demo: Path, rule: str) -> None:
    truth = _truth(demo / "truth.csv")
    assert truth.filter(pl.col("rule_id") == rule).height > 0, "the generator plants every rule"
    assert _precision_recall(_open_findings(demo / "out"), truth, rule) == (1.0, 1.0)


def test_mco_folders_hold_only_their_own_claims(demo: Path) -> None:
    all_findings = pl.read_csv(demo / "out" / "findings.csv", infer_schema=False)
    for folder in (demo / "out" / "mco").iterdir():
        own = pl.read_csv(folder / "findings.csv", infer_schema=False)
        assert set(own["payer"]) <= {folder.name}
        assert own.height == all_findings.filter(pl.col("payer") == folder.name).height
        log_rows = pl.read_csv(folder / "reprocessing_log.csv", infer_schema=False)
        assert set(log_rows["payer"]) <= {folder.name}
        book = openpyxl.load_workbook(folder / f"{folder.name}_claims_audit.xlsx", read_only=True)
        findings_sheet = "Findings 22321"  # Parent Peer Support's bulletin
        assert book.sheetnames == ["Summary", findings_sheet, "Rules"]
        for sheet in ("Summary", findings_sheet):
            rows = list(book[sheet].iter_rows(values_only=True))
            header_at = next(i for i, row in enumerate(rows) if row and row[0] == "policy_id")
            payers = {row[1] for row in rows[header_at + 1 :]}
            assert payers <= {folder.name}, sheet
            assert len(rows) - header_at - 1 == (
                own.height if sheet == findings_sheet else log_rows.height
            )


def test_second_delivery_moves_findings_through_the_log(tmp_path: Path) -> None:
    generate(tmp_path / "input", tmp_path / "truth.csv")
    args = (tmp_path / "input", tmp_path / "audit.duckdb", tmp_path / "out")
    run_audit(*args, as_of=dt.date(2025, 6, 30))
    first = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    generate_followup(tmp_path / "input", tmp_path / "truth.csv")
    run_audit(*args, as_of=dt.date(2025, 10, 1))
    second = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    truth = _truth(tmp_path / "truth.csv")
    for rule in RULES:
        assert _precision_recall(_open_findings(tmp_path / "out"), truth, rule) == (1.0, 1.0), rule
    # nothing is ever deleted
    first_keys = {tuple(r) for r in first.select(KEY[:4]).iter_rows()}
    second_keys = {tuple(r) for r in second.select(KEY[:4]).iter_rows()}
    assert first_keys <= second_keys
    statuses = set(second["status"])
    assert {"open", "resolved_reprocessed", "superseded", "resolved_data_corrected"} <= statuses
    # a replacement that still breaks the rule keeps the original first_found_date
    superseded = second.filter(pl.col("status") == "superseded")
    reopened_elsewhere = second.filter(
        (pl.col("status") == "open")
        & (pl.col("first_found_date") == "2025-06-30")
        & ~pl.col("claim_id").is_in(first["claim_id"].to_list())
    )
    assert superseded.height > 0 and reopened_elsewhere.height > 0
    resolved = second.filter(pl.col("status").str.starts_with("resolved"))
    assert set(resolved["resolved_date"]) == {"2025-10-01"}
    # the same findings, statuses and dates as the release before policy packs
    golden = pl.read_csv(GOLDEN, infer_schema=False)
    assert second.select(golden.columns).sort(golden.columns[:4]).equals(golden)
