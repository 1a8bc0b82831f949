"""The analyst's tools over the audit database: list findings, explain a line, waive."""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from pipelines.audit.facts import facts_from_db
from pipelines.audit.rules import evaluate
from pipelines.audit.run import PackAudit
from pipelines.claims.versions import claim_version
from pipelines.db import execute, scalar, transaction
from pipelines.log.workflow import NotFound, finding_key
from pipelines.reports.outputs import all_findings

# what the console shows of a finding: no member ID (the CSV export carries it)
CONSOLE_COLUMNS = [
    "finding_id",
    "policy_id",
    "payer",
    "claim_id",
    "claim_line_number",
    "rule_id",
    "severity",
    "status",
    "service_date",
    "paid_amount",
    "first_found_date",
    "due_date",
    "detail",
]
# what each state of the workflow (pipelines/log/states.py) selects
STATE_FILTERS = {
    "disputed": (pl.col("status") == "open") & (pl.col("review") == "disputed"),
    "overdue": pl.col("overdue"),
    "held": (pl.col("status") == "open") & pl.col("held"),
    "outside_lookback": pl.col("outside_lookback"),
}


class WaiverRefused(ValueError):
    """A waiver that cannot be recorded: no reason, no analyst, or a finding that is not open."""


@dataclass(frozen=True)
class FindingFilter:
    policy_id: str | None = None
    payer: str | None = None
    rule_id: str | None = None
    status: str | None = None
    found_since: dt.date | None = None
    found_until: dt.date | None = None
    provider: str | None = None  # an NPI: the findings it billed or rendered


def select_findings(con: duckdb.DuckDBPyConnection, wanted: FindingFilter) -> pl.DataFrame:
    findings = all_findings(con)
    conditions = []
    if wanted.policy_id:
        conditions.append(pl.col("policy_id") == wanted.policy_id)
    if wanted.payer:
        conditions.append(pl.col("payer") == wanted.payer.upper())
    if wanted.rule_id:
        conditions.append(pl.col("rule_id") == wanted.rule_id.upper())
    if wanted.status in STATE_FILTERS:
        conditions.append(STATE_FILTERS[wanted.status])
    elif wanted.status:
        conditions.append(pl.col("status") == wanted.status)
    if wanted.provider:
        npi = wanted.provider.strip()
        conditions.append((pl.col("peer_npi") == npi) | (pl.col("billing_npi") == npi))
    if wanted.found_since:
        conditions.append(pl.col("first_found_date") >= wanted.found_since)
    if wanted.found_until:
        conditions.append(pl.col("first_found_date") <= wanted.found_until)
    return findings.filter(*conditions) if conditions else findings


def waive(
    con: duckdb.DuckDBPyConnection,
    key: tuple[str, str, int, str],
    *,
    reason: str,
    analyst: str,
    on: dt.date,
    policy_id: str | None = None,
) -> str:
    """Waive one open finding, keeping the reason and the analyst's name in its history.

    Without `policy_id`, the key must name a finding of one policy only: the same line and
    rule ID under two policies are two findings, and a waiver never guesses which.
    """
    reason, analyst = reason.strip(), analyst.strip()
    if not reason:
        raise WaiverRefused(
            "a waiver needs a reason: say with --reason why the line need not be reprocessed"
        )
    if not analyst:
        raise WaiverRefused("a waiver needs the analyst's name: say with --analyst who decided")
    payer, claim_id, line, rule_id = key
    payer, rule_id = payer.upper(), rule_id.upper()
    params = {"payer": payer, "claim": claim_id, "line": line, "rule": rule_id}
    key_match = (
        "payer = $payer and claim_id = $claim and claim_line_number = $line and rule_id = $rule"
    )
    finding = f"{rule_id} on {payer} claim {claim_id} line {line}"
    with transaction(con):
        policies = [
            str(p)
            for (p,) in execute(
                con,
                f"select policy_id from audit.findings where {key_match} order by policy_id",
                params,
            )
        ]
        policy_id = _one_policy(finding, policies, policy_id)
        params["policy_id"] = policy_id
        match = f"policy_id = $policy_id and {key_match}"
        previous = scalar(con, f"select status from audit.findings where {match}", **params)
        if previous != "open":
            raise WaiverRefused(_not_open(finding, str(previous), payer, rule_id))
        execute(
            con,
            "update audit.findings set status = 'waived', waived_reason = $reason, "
            f"waived_by = $analyst, resolved_date = $on where {match}",
            {**params, "reason": reason, "analyst": analyst, "on": on},
        )
        execute(
            con,
            "insert into audit.finding_history (policy_id, payer, claim_id, claim_line_number, "
            "rule_id, run_id, changed_on, from_status, to_status, note, event, changed_by) "
            "values ($policy_id, $payer, $claim, $line, $rule, null, $on, $previous, 'waived', "
            "$note, 'waived', $analyst)",
            {
                **params,
                "on": on,
                "previous": previous,
                "note": f"waived by {analyst}: {reason}",
                "analyst": analyst,
            },
        )
    return str(previous)


def waive_by_id(
    con: duckdb.DuckDBPyConnection, finding_id: str, *, reason: str, analyst: str, on: dt.date
) -> str:
    """Waive the open finding an ID names (findings.csv, any MCO package)."""
    key = finding_key(con, finding_id)
    return waive(
        con,
        (key.payer, key.claim_id, key.claim_line_number, key.rule_id),
        reason=reason,
        analyst=analyst,
        on=on,
        policy_id=key.policy_id,
    )


def _one_policy(finding: str, policies: list[str], wanted: str | None) -> str:
    """The policy whose finding the key names: the one asked for, or the only one there is."""
    if wanted is not None:
        if wanted not in policies:
            raise NotFound(f"no finding {finding} under policy {wanted}")
        return wanted
    if not policies:
        raise NotFound(f"no finding {finding}")
    if len(policies) > 1:
        raise WaiverRefused(
            f"{finding} is a finding of {len(policies)} policies ({', '.join(policies)}): "
            "say which with --policy"
        )
    return policies[0]


def _not_open(finding: str, status: str, payer: str, rule_id: str) -> str:
    """Why a finding that is not open cannot be waived, and where to look instead."""
    if status == "waived":
        return f"{finding} is already waived; nothing was changed"
    carried = (
        " (a superseded line's problem carries on in the finding of its replacing claim)"
        if status == "superseded"
        else ""
    )
    return (
        f"{finding} is {status}, not open: only an open finding can be waived{carried}. "
        f"List the open ones with `claims-audit findings --payer {payer} --rule {rule_id} "
        "--status open`"
    )


# explain ------------------------------------------------------------------------------------


# evidence shown for each rule beside the value its expectation checks
def explain(
    con: duckdb.DuckDBPyConnection,
    audits: Sequence[PackAudit],
    payer: str,
    claim_id: str,
    line: int | None = None,
) -> str:
    """Each rule of each policy the line breaks or passes, with the evidence the audit used."""
    payer = payer.upper()
    version = claim_version(con, payer, claim_id)
    if version is None:
        raise NotFound(f"no claim {claim_id} from {payer} in the database")
    root, is_current, frequency, paid = version
    lines = [f"{payer} claim {claim_id}: frequency {frequency}, paid {paid}, chain {root}"]
    if not is_current:
        lines.append("  not the current version of its chain (voided or replaced): no rule applies")
        for audit in audits:
            lines += _history_lines(con, audit.policy_id, payer, claim_id, line)
        return "\n".join(lines)
    explained = [_explain_policy(con, audit, payer, claim_id, line) for audit in audits]
    if not any(explained):
        lines.append("  no current line of any policy's codes matches: nothing to audit")
    return "\n".join([*lines, *(text for section in explained for text in section)])


def _explain_policy(
    con: duckdb.DuckDBPyConnection, audit: PackAudit, payer: str, claim_id: str, line: int | None
) -> list[str]:
    """The claim's in-scope lines of one policy, rule by rule; none when it has none."""
    facts = facts_from_db(con, audit.pack, audit.general, (payer, claim_id))
    own = facts.filter((pl.col("payer") == payer) & (pl.col("claim_id") == claim_id))
    if line is not None:
        own = own.filter(pl.col("claim_line_number") == line)
    if own.height == 0:
        return []
    broken = evaluate(
        facts.filter(pl.col("line_key").is_in(own["line_key"].to_list())), audit.rules
    )
    checks = audit.rules.definition["expectations"]
    rules_with_severities = [c["meta"]["rule_id"] for c in checks]
    lines = [f"  {audit.pack.title} ({audit.pack.source}):"]
    for row in own.iter_rows(named=True):
        lines.append(_line_heading(row))
        mine = broken.filter(pl.col("claim_line_number") == row["claim_line_number"])
        for check in checks:
            several = rules_with_severities.count(check["meta"]["rule_id"]) > 1
            lines.append(_rule_line(check, row, mine, with_severity=several))
        lines += _history_lines(con, audit.policy_id, payer, claim_id, row["claim_line_number"])
    return lines


def _line_heading(row: dict[str, object]) -> str:
    modifiers = " ".join(str(row[f"hcpcs_modifier_{i}"] or "") for i in range(1, 5)).split()
    return (
        f"  line {row['claim_line_number']}: {row['hcpcs_code']} {' '.join(modifiers)}".rstrip()
        + f", DOS {row['service_date']} to {row['service_end_date']}, "
        f"peer NPI {row['peer_npi']}, units {row['service_unit_quantity']}, "
        f"paid {row['paid_amount']}"
    )


def _rule_line(
    check: dict[str, object], row: dict[str, object], broken: pl.DataFrame, *, with_severity: bool
) -> str:
    meta = check["meta"]
    kwargs = check["kwargs"]
    assert isinstance(meta, dict) and isinstance(kwargs, dict)
    rule_id, severity = str(meta["rule_id"]), str(meta["severity"])
    hit = broken.filter((pl.col("rule_id") == rule_id) & (pl.col("severity") == severity))
    column = str(kwargs["column"])
    evidence = ", ".join(
        f"{c}={row[c]}" for c in _evidence_columns(check) if c != column and row.get(c) is not None
    )
    label = f"{rule_id} ({severity})" if with_severity else rule_id
    if hit.height:
        return f"    {label:<24} BREAKS  {hit['detail'][0]}"
    return f"    {label:<24} passes  {column}={row[column]}" + (f"; {evidence}" if evidence else "")


def _evidence_columns(check: dict[str, Any]) -> list[str]:
    """What a rule reads beside its checked column: its row condition, and what its detail
    names (the evidence an analyst is shown when it breaks)."""
    condition = check["kwargs"].get("row_condition")
    named = [field for _, field, _, _ in string.Formatter().parse(check["meta"]["detail"]) if field]
    return list(dict.fromkeys([*([condition["column"]["name"]] if condition else []), *named]))


def _history_lines(
    con: duckdb.DuckDBPyConnection, policy_id: str, payer: str, claim_id: str, line: int | None
) -> list[str]:
    rows = execute(
        con,
        "select history.claim_line_number, history.rule_id, findings.finding_id, "
        "history.changed_on, history.from_status, history.to_status, history.event, "
        "history.note, history.changed_by "
        "from audit.finding_history as history join audit.findings as findings "
        "using (policy_id, payer, claim_id, claim_line_number, rule_id) "
        "where history.policy_id = $policy_id and history.payer = $payer "
        "and history.claim_id = $claim and ($line is null or history.claim_line_number = $line) "
        "order by history.changed_on, history.rule_id, history.event nulls first",
        {"policy_id": policy_id, "payer": payer, "claim": claim_id, "line": line},
    )
    if not rows:
        return []
    return ["    history:"] + [
        f"      {on} line {ln} {rule} {finding_id}: "
        + (f"{event}" if event else f"{before or 'new'} -> {after}")
        + f" ({note}; by {by or 'unknown'})"
        for ln, rule, finding_id, on, before, after, event, note, by in rows
    ]
