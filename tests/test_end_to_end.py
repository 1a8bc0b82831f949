"""The whole audit on the synthetic demo input: every planted finding, and nothing else."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pytest

from pipelines.audit.packs import discover
from pipelines.audit.rules import rule_checks
from pipelines.audit.run import pack_audits
from tests.demo_nights import DemoNights

KEY = ["policy_id", "payer", "claim_id", "claim_line_number", "rule_id", "severity"]
# what the release before policy packs found on the demo's two nights (tests/fixtures/README.md)
GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "h0038_demo_findings.csv"
# every rule of every pack, as the packs' own suites list them
RULES = sorted(
    {
        (audit.policy_id, rule.rule_id)
        for audit in pack_audits(discover())
        for rule in rule_checks(audit.rules.definition)
    }
)


def _open_findings(out: Path) -> pl.DataFrame:
    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    return findings.filter(pl.col("status") == "open").select(KEY)


def _truth(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False).select(KEY)


def _precision_recall(
    found: pl.DataFrame, truth: pl.DataFrame, rule: tuple[str, str]
) -> tuple[float, float]:
    policy_id, rule_id = rule
    of_rule = (pl.col("policy_id") == policy_id) & (pl.col("rule_id") == rule_id)
    found_rule = {tuple(r) for r in found.filter(of_rule).iter_rows()}
    truth_rule = {tuple(r) for r in truth.filter(of_rule).iter_rows()}
    hits = len(found_rule & truth_rule)
    precision = hits / len(found_rule) if found_rule else 1.0
    recall = hits / len(truth_rule) if truth_rule else 1.0
    return precision, recall


@pytest.fixture(scope="module")
def demo(demo_nights: DemoNights) -> Path:
    """The demo's first night: its truth.csv and out/."""
    return demo_nights.first


@pytest.mark.parametrize("rule", RULES, ids=[f"{p}-{r}" for p, r in RULES])
def test_every_rule_has_precision_and_recall_one(demo: Path, rule: tuple[str, str]) -> None:
    truth = _truth(demo / "truth.csv")
    policy_id, rule_id = rule
    planted = truth.filter((pl.col("policy_id") == policy_id) & (pl.col("rule_id") == rule_id))
    assert planted.height > 0, "the generator plants every rule of every pack"
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
        # one Findings sheet per policy, named by its bulletin
        findings_sheets = [name for name in book.sheetnames if name.startswith("Findings ")]
        assert book.sheetnames == ["Summary", *findings_sheets, "Rules"]
        assert "Findings 22321" in findings_sheets  # Parent Peer Support's bulletin
        table_rows = {}
        for sheet in ("Summary", *findings_sheets):
            rows = list(book[sheet].iter_rows(values_only=True))
            header_at = next(i for i, row in enumerate(rows) if row and row[0] == "policy_id")
            payers = {row[1] for row in rows[header_at + 1 :]}
            assert payers <= {folder.name}, sheet
            table_rows[sheet] = len(rows) - header_at - 1
        assert table_rows.pop("Summary") == log_rows.height
        assert sum(table_rows.values()) == own.height


def test_second_delivery_moves_findings_through_the_log(demo_nights: DemoNights) -> None:
    first = pl.read_csv(demo_nights.first / "out" / "findings.csv", infer_schema=False)
    second = pl.read_csv(demo_nights.second / "out" / "findings.csv", infer_schema=False)
    truth = _truth(demo_nights.second / "truth.csv")
    for rule in RULES:
        found = _open_findings(demo_nights.second / "out")
        assert _precision_recall(found, truth, rule) == (1.0, 1.0), rule
    # nothing is ever deleted
    first_keys = {tuple(r) for r in first.select(KEY[:5]).iter_rows()}
    second_keys = {tuple(r) for r in second.select(KEY[:5]).iter_rows()}
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
    # Parent Peer Support: the same findings, statuses and dates as the release before packs
    golden = pl.read_csv(GOLDEN, infer_schema=False)
    parent_peer_support = second.filter(pl.col("policy_id") == "h0038_parent_peer_support")
    assert parent_peer_support.select(golden.columns).sort(golden.columns[:4]).equals(golden)
