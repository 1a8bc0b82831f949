"""The log's updates at state scale: millions of findings found again, notified, or with new
evidence in one night. DuckDB holds every row of an update joined to another table in memory
(14.5 million notices stopped a first audit at 30M lines), so the log tests each finding by
its own columns or its key, and writes findings whose evidence moved again whole. Each test
here does under a small DuckDB memory cap what those joined updates could not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipelines.db import connect, execute, memory_lowered, transaction
from pipelines.log.reprocessing_log import update_log
from pipelines.log.workflow import refresh_workflow
from tests.world import PEER

NIGHT_1, NIGHT_2 = dt.date(2025, 6, 30), dt.date(2025, 7, 1)
DUE = NIGHT_1 + dt.timedelta(days=90)  # the default allowance
POLICY = "policy"


def _log_findings(con: duckdb.DuckDBPyConnection, findings: int) -> None:
    """Open findings of one policy, found on NIGHT_1, in the log."""
    execute(
        con,
        "insert into audit.findings (policy_id, payer, claim_id, claim_line_number, rule_id, "
        "chain_root_id, member_id, peer_npi, billing_npi, service_date, paid_amount, "
        "paid_date, severity, detail, status, first_found_date, last_found_date, "
        "pre_implementation) "
        "select $policy, 'MCO' || i % 4, 'CLAIM-' || i // 3, i % 3 + 1, 'RULE' || i % 7, "
        "'CLAIM-' || i // 3, 'MEMBER' || i % 5000, $npi, $npi, $day - (i % 300)::integer, "
        "10, $day, 'error', 'the evidence of finding ' || i, 'open', $day, $day, false "
        "from range($findings) as numbers(i)",
        {"policy": POLICY, "findings": findings, "npi": PEER, "day": NIGHT_1},
    )


def test_the_clock_notifies_a_first_audits_findings_within_a_small_memory_cap(
    tmp_path: Path,
) -> None:
    findings = 300_000
    with connect(tmp_path / "audit.duckdb") as con, transaction(con):
        _log_findings(con, findings)
        with memory_lowered(con, "40MB"):
            changes = refresh_workflow(con, as_of=NIGHT_1, run_id=1)
        assert changes.notified == findings
        assert execute(
            con,
            "select count(*) from audit.findings where notified_date = $day and due_date = $due",
            {"day": NIGHT_1, "due": DUE},
        ) == [(findings,)]
        assert execute(
            con, "select count(*) from audit.finding_history where event = 'notified'"
        ) == [(findings,)]


def test_every_finding_found_again_with_new_evidence_within_a_small_memory_cap(
    tmp_path: Path,
) -> None:
    findings = 1_000_000
    with connect(tmp_path / "audit.duckdb") as con:
        _log_findings(con, findings)
        with transaction(con):
            # tonight every finding again, each with a new detail
            execute(
                con,
                "create temp table current_findings as "
                "select payer, claim_id, claim_line_number, rule_id, chain_root_id, member_id, "
                "peer_npi, billing_npi, service_date, paid_amount, amount_at_risk, paid_date, "
                "severity, detail || ', seen again' as detail, mco_detail, pre_implementation "
                "from audit.findings",
            )
            with memory_lowered(con, "300MB"):
                changes = update_log(con, policy_id=POLICY, run_id=2, as_of=NIGHT_2)
        assert (changes.opened, changes.reopened, changes.produced) == (0, 0, findings)
        assert execute(
            con,
            "select count(*), count(distinct (payer, claim_id, claim_line_number, rule_id)), "
            "count(*) filter (where last_found_date = $night and detail like '%, seen again' "
            "and first_found_date = $first) from audit.findings",
            {"night": NIGHT_2, "first": NIGHT_1},
        ) == [(findings, findings, findings)]
