"""From finding to reprocessed claim: notices and deadlines, the analyst's decision on a
dispute, and holds on providers (docs/workflow.md). MCO responses are in responses.py.

Every change is a row of audit.finding_history with its date and who made it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.config import WorkflowSettings, load_settings
from pipelines.db import execute, registered, run_sql_file, scalar, transaction

# who changes the log on a run: the audit itself
AUDIT_RUN = "claims-audit run"
NPI_FORM = re.compile(r"\d{10}")
DECISIONS = ("uphold", "waive")
FINDING_ID_FORM = re.compile(r"F-[0-9A-F]{16}")


class NotFound(LookupError):
    """The claim, line, finding or provider named on the command line is not in the database."""


class ActionRefused(ValueError):
    """An analyst's action that cannot be recorded, and why."""


@dataclass(frozen=True)
class WorkflowChanges:
    notified: int
    overdue: int
    outside_lookback: int


def refresh_workflow(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: dt.date,
    run_id: int | None,
    settings: WorkflowSettings | None = None,
) -> WorkflowChanges:
    """Move the workflow's clock to `as_of` (sql/log/refresh_workflow.sql): lookback, notices
    of what goes out tonight, due dates, overdue findings. Run on every run, audited or not,
    just before the MCO packages are written: what they show tonight is what is notified."""
    settings = settings or load_settings().workflow
    mcos = [str(p) for (p,) in execute(con, "select distinct payer from audit.findings")]
    allowance = pl.DataFrame(
        {"mco": mcos, "days": [settings.allowance(p) for p in mcos]},
        schema={"mco": pl.String, "days": pl.Int32},
    )
    with registered(con, reprocessing_allowance=allowance):
        run_sql_file(
            con,
            "log/refresh_workflow.sql",
            as_of=as_of,
            run_id=run_id,
            lookback_start=settings.lookback_start(as_of),
        )
    counts = dict(execute(con, "select event, count(*) from workflow_changes group by all"))
    return WorkflowChanges(
        notified=int(counts.get("notified", 0)),
        overdue=int(counts.get("overdue", 0)),
        outside_lookback=int(counts.get("outside_lookback", 0)),
    )


# a finding by its ID -------------------------------------------------------------------------


@dataclass(frozen=True)
class FindingKey:
    policy_id: str
    payer: str
    claim_id: str
    claim_line_number: int
    rule_id: str

    def params(self) -> dict[str, object]:
        return {
            "policy_id": self.policy_id,
            "payer": self.payer,
            "claim": self.claim_id,
            "line": self.claim_line_number,
            "rule": self.rule_id,
        }

    def __str__(self) -> str:
        return f"{self.rule_id} on {self.payer} claim {self.claim_id} line {self.claim_line_number}"


KEY_MATCH = (
    "policy_id = $policy_id and payer = $payer and claim_id = $claim "
    "and claim_line_number = $line and rule_id = $rule"
)


def finding_key(con: duckdb.DuckDBPyConnection, finding_id: str) -> FindingKey:
    """The finding an ID names; an ID of the wrong form or of no finding is refused."""
    wanted = finding_id.strip().upper()
    if not FINDING_ID_FORM.fullmatch(wanted):
        raise NotFound(
            f"'{finding_id}' is not a finding ID (F- and 16 of 0-9, A-F, as findings.csv shows)"
        )
    rows = execute(
        con,
        "select policy_id, payer, claim_id, claim_line_number, rule_id from audit.findings "
        "where finding_id = $id",
        {"id": wanted},
    )
    if not rows:
        raise NotFound(f"no finding {wanted} in the database")
    policy_id, payer, claim_id, line, rule_id = rows[0]
    return FindingKey(str(policy_id), str(payer), str(claim_id), int(line), str(rule_id))


def add_history(
    con: duckdb.DuckDBPyConnection,
    key: FindingKey,
    *,
    on: dt.date,
    from_status: str,
    to_status: str,
    event: str,
    by: str,
    note: str,
) -> None:
    """One history row of an action taken between runs (no run ID)."""
    execute(
        con,
        "insert into audit.finding_history (policy_id, payer, claim_id, claim_line_number, "
        "rule_id, run_id, changed_on, from_status, to_status, note, event, changed_by) values "
        "($policy_id, $payer, $claim, $line, $rule, null, $on, $from_status, $to_status, $note, "
        "$event, $by)",
        {
            **key.params(),
            "on": on,
            "from_status": from_status,
            "to_status": to_status,
            "note": note,
            "event": event,
            "by": by,
        },
    )


def required(value: str, what: str) -> str:
    """An analyst's reason or name, which may not be blank."""
    value = value.strip()
    if not value:
        raise ActionRefused(f"{what} may not be blank")
    return value


# the analyst's decision on a dispute ----------------------------------------------------------


def decide(
    con: duckdb.DuckDBPyConnection,
    finding_id: str,
    decision: str,
    *,
    reason: str,
    analyst: str,
    on: dt.date,
) -> FindingKey:
    """Uphold a disputed finding (it stays open, its due date unchanged) or waive it."""
    if decision not in DECISIONS:
        raise ActionRefused(f"a decision is one of {', '.join(DECISIONS)}")
    reason = required(reason, "the reason (--reason)")
    analyst = required(analyst, "the analyst's name (--analyst)")
    with transaction(con):
        key = finding_key(con, finding_id)
        status, review = execute(
            con, f"select status, review from audit.findings where {KEY_MATCH}", key.params()
        )[0]
        if status != "open" or review != "disputed":
            raise ActionRefused(
                f"{finding_id} is not disputed (status {status}, review {review or 'none'}): "
                "only a finding its MCO disputed awaits a decision; list them with "
                "`claims-audit findings --status disputed`"
            )
        if decision == "uphold":
            execute(
                con, f"update audit.findings set review = 'upheld' where {KEY_MATCH}", key.params()
            )
            add_history(
                con,
                key,
                on=on,
                from_status="open",
                to_status="open",
                event="upheld",
                by=analyst,
                note=f"dispute not accepted by {analyst}: {reason}",
            )
        else:
            execute(
                con,
                "update audit.findings set status = 'waived', review = 'waived', "
                f"waived_reason = $reason, waived_by = $analyst, resolved_date = $on "
                f"where {KEY_MATCH}",
                {**key.params(), "reason": reason, "analyst": analyst, "on": on},
            )
            add_history(
                con,
                key,
                on=on,
                from_status="open",
                to_status="waived",
                event="waived",
                by=analyst,
                note=f"dispute accepted, waived by {analyst}: {reason}",
            )
    return key


# holds ----------------------------------------------------------------------------------------


def hold(
    con: duckdb.DuckDBPyConnection, npi: str, *, reason: str, analyst: str, on: dt.date
) -> int:
    """Keep a provider's findings out of every MCO package until released; returns how many
    of its findings are open now (each gets a history row)."""
    npi = _npi(npi)
    reason = required(reason, "the reason (--reason)")
    analyst = required(analyst, "the analyst's name (--analyst)")
    with transaction(con):
        if _active_hold(con, npi) is not None:
            raise ActionRefused(
                f"provider {npi} is already held; `claims-audit release` ends the hold"
            )
        hold_id = int(scalar(con, "select coalesce(max(hold_id), 0) + 1 from audit.holds"))
        execute(
            con,
            "insert into audit.holds (hold_id, npi, reason, held_by, held_on) "
            "values ($id, $npi, $reason, $analyst, $on)",
            {"id": hold_id, "npi": npi, "reason": reason, "analyst": analyst, "on": on},
        )
        return _provider_history(
            con, npi, on=on, event="held", by=analyst, note=f"hold {hold_id}: {reason}"
        )


def release(
    con: duckdb.DuckDBPyConnection, npi: str, *, analyst: str, on: dt.date, note: str = ""
) -> int:
    """End a provider's hold: its findings go out with the next run's packages, those never
    notified with a due date from that run. Returns how many of its findings are open."""
    npi = _npi(npi)
    analyst = required(analyst, "the analyst's name (--analyst)")
    with transaction(con):
        hold_id = _active_hold(con, npi)
        if hold_id is None:
            raise ActionRefused(f"provider {npi} is not held: nothing to release")
        execute(
            con,
            "update audit.holds set released_by = $analyst, released_on = $on, "
            "release_note = $note where hold_id = $id",
            {"analyst": analyst, "on": on, "note": note.strip() or None, "id": hold_id},
        )
        text = f"hold {hold_id} released" + (f": {note.strip()}" if note.strip() else "")
        return _provider_history(con, npi, on=on, event="released", by=analyst, note=text)


def _npi(npi: str) -> str:
    npi = npi.strip()
    if not NPI_FORM.fullmatch(npi):
        raise ActionRefused("a provider is named by its NPI: 10 digits")
    return npi


def _active_hold(con: duckdb.DuckDBPyConnection, npi: str) -> int | None:
    found = scalar(
        con, "select hold_id from audit.holds where npi = $npi and released_on is null", npi=npi
    )
    return None if found is None else int(found)


def _provider_history(
    con: duckdb.DuckDBPyConnection, npi: str, *, on: dt.date, event: str, by: str, note: str
) -> int:
    """A history row for each open finding of the provider (billing or rendering)."""
    rows = execute(
        con,
        "insert into audit.finding_history (policy_id, payer, claim_id, claim_line_number, "
        "rule_id, run_id, changed_on, from_status, to_status, note, event, changed_by) "
        "select policy_id, payer, claim_id, claim_line_number, rule_id, null, $on, status, "
        "status, $note, $event, $by from audit.findings "
        "where status = 'open' and $npi in (peer_npi, billing_npi)",
        {"on": on, "note": note, "event": event, "by": by, "npi": npi},
    )
    return int(rows[0][0]) if rows else 0
