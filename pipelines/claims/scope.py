"""Which in-scope lines tonight's audit looks at: all of them, or only what can have changed.

A full audit reads every current in-scope line of a pack. When the pack's last audit had the
same identity (pipelines/audit/identity.py: pack, suite, code), a nightly run audits again
just the claims tonight's claim deliveries touched and the claims tied to those through the
pack's related lines (a group session, a peer's day, a member's day or month: its facts
depend on nothing else), and the claims a changed reference row reaches (REFERENCE_KEYS: the
reference snapshot in use at the last audit against the one in use now), with the claims
tied to those when the pack's related lines read reference rows. Every other claim's facts,
and so its findings, are as the last audit left them (docs/decisions.md, "A nightly run
audits again only what its deliveries can change").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import duckdb
import polars as pl

from pipelines.audit.evidence import MODIFIERS
from pipelines.claims.versions import stage_in_scope_lines
from pipelines.config import load_settings
from pipelines.db import execute, registered, run_sql_file, scalar

CLAIM = ["payer", "claim_id"]
GROUP_SESSION = "group_session"


@dataclass(frozen=True)
class Tie:
    """How a rule can tie one line's facts to other lines': within which period of the DOS,
    and whether across members."""

    period: str  # "day" or "month": the lines tied share it
    across_members: bool


# what can tie one line's facts to other lines' (a pack names those of its rules)
RELATED_LINES = {
    "peer_day": Tie("day", across_members=True),
    # the lines billed with the pack's group modifier by one peer on one day, at one place of
    # service, with one session ID (a blank is a value): one group session, many members
    GROUP_SESSION: Tie("day", across_members=True),
    "member_day": Tie("day", across_members=False),
    "member_month": Tie("month", across_members=False),
}
# the parameter that names a group session's modifier, for a pack whose lines it ties
GROUP_MODIFIER = "group_modifier"
AUDITED_LINE_COLUMNS = [
    "payer",
    "claim_id",
    "peer_npi",
    "billing_npi",
    "member_id",
    "service_date",
    # what puts a line in a group session
    "place_of_service_code",
    "session_id",
    *MODIFIERS,
]
# the MCO implementation dates decide every pack's pre_implementation (pipelines/audit/facts.py)
IMPLEMENTATION = "mco_implementation"


@dataclass(frozen=True)
class ReferenceKey:
    """A column of a reference file through which its rows reach claim lines: a changed row
    can change the facts of the lines its keys reach, and of no other line."""

    dataset: str
    column: str
    # member, provider, claim, payer or caregiver: the lines each reaches are in
    # sql/versions/reference_touched_claims.sql
    reaches: str
    qualifier: str | None = None  # read with the key: a claim's payer, a row's policy


# every way a reference row reaches a line, for the engine and every pack: a pack's facts read
# a reference file only through these keys (docs/adding-a-policy.md)
REFERENCE_KEYS = (
    ReferenceKey("members", "member_id", "member"),
    ReferenceKey("enrollment", "member_id", "member"),
    ReferenceKey("providers", "npi", "provider"),
    ReferenceKey("level_of_care", "member_id", "member"),
    ReferenceKey("treatment_plans", "member_id", "member"),
    ReferenceKey("consents", "member_id", "member"),
    ReferenceKey("caregivers", "member_id", "member"),
    # a caregiver's own Medicaid ID billed in place of the member's (PPS007)
    ReferenceKey("caregivers", "medicaid_id", "member"),
    # one birth date per caregiver ID across the file (PPS006)
    ReferenceKey("caregivers", "caregiver_id", "caregiver"),
    ReferenceKey("service_participants", "claim_id", "claim", qualifier="payer"),
    ReferenceKey("mco_implementation", "payer", "payer", qualifier="policy"),
)


@dataclass(frozen=True)
class LastAudit:
    as_of: dt.date
    last_delivery_id: int


def last_audit(con: duckdb.DuckDBPyConnection, identity: str, policy_id: str) -> LastAudit | None:
    """The policy's last audit, when tonight's can build on it: same identity, and audited
    lines kept."""
    runs = execute(
        con,
        "select as_of, last_delivery_id, audit_identity from audit.runs "
        "where policy_id = $policy_id order by run_id desc limit 1",
        {"policy_id": policy_id},
    )
    if not runs or runs[0][2] != identity:
        return None
    as_of, last_delivery_id, _ = runs[0]
    # a database from before audited lines were kept has none: audit it all once
    if not audited_line_count(con, policy_id):
        return None
    return LastAudit(as_of=as_of, last_delivery_id=int(last_delivery_id))


@dataclass(frozen=True)
class PackScope:
    """What a pack audits: the codes of its lines, and what ties a line's facts to others."""

    policy_id: str
    codes: tuple[str, ...]
    related_lines: frozenset[str]  # of RELATED_LINES
    # whether a line's facts read reference rows through its related lines: a changed row
    # then re-audits the lines tied to those it reaches too
    related_lines_read_reference: bool
    bulletin: str | None  # the mco_implementation rows for it (`policy`) apply to it
    references: frozenset[str]  # the reference files its facts read (IMPLEMENTATION besides)
    group_modifier: str | None = None  # the modifier of its group sessions (GROUP_SESSION)

    def ties(self) -> dict[str, object]:
        """The SQL parameters of its related lines: each tie, on or off, and the group
        modifier."""
        return {
            **{tie: tie in self.related_lines for tie in RELATED_LINES},
            GROUP_MODIFIER: self.group_modifier,
        }


def lines_to_audit(
    con: duckdb.DuckDBPyConnection, pack: PackScope, previous: LastAudit | None
) -> pl.DataFrame | None:
    """Tonight's in-scope lines of the pack into temp table in_scope_line, and the claims
    audited (payer, claim_id; None: every claim). Every line without a `previous` audit to
    build on, or when changed reference rows reach too many of them, directly or through the
    lines tied to those; else the claims whose facts can have changed, with the other
    claims' lines that share a group with one of theirs (a session, a peer's day, a member's
    day or month): those complete each group and are read, not audited."""
    record_reference_keys(con)
    if previous is None or not reference_touched_claims(con, pack, previous):
        stage_in_scope_lines(con, pack.codes)
        return None
    run_sql_file(con, "versions/touched_claims.sql", last_delivery_id=previous.last_delivery_id)
    if pack.related_lines_read_reference:
        _add_reference_touched(con, "touched_claim")
    run_sql_file(con, "versions/touched_lines.sql", codes=list(pack.codes))
    execute(con, "create or replace temp table scope_claim as from touched_claim")
    ties = pack.ties()
    # once: the claims whose facts can have changed; twice: their groups' other claims
    run_sql_file(con, "versions/claims_tied_by_day.sql", policy_id=pack.policy_id, **ties)
    if not pack.related_lines_read_reference:
        # a changed row changes the facts of the lines it reaches, not of those tied to them
        _add_reference_touched(con, "scope_claim")
    if _reaches_too_many(con, pack.policy_id):
        stage_in_scope_lines(con, pack.codes)
        return None
    execute(con, "create or replace temp table claim_to_audit as from scope_claim")
    run_sql_file(con, "versions/claims_tied_by_day.sql", policy_id=pack.policy_id, **ties)
    stage_in_scope_lines(con, pack.codes, every_claim=False)
    run_sql_file(con, "versions/lines_of_audited_groups.sql", **ties)
    return con.sql("select payer, claim_id from claim_to_audit").pl()


def record_reference_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Record the keys of every reference snapshot in use not recorded yet, for the nights to
    come; forget those of snapshots no audit still to come compares with."""
    unrecorded = execute(
        con,
        "select dataset, max(delivery_id) from audit.deliveries "
        "where kind = 'reference' and status = 'loaded' group by dataset "
        "having max(delivery_id) not in (select delivery_id from audit.keyed_snapshots)",
    )
    for dataset, delivery_id in unrecorded:
        for key in (k for k in REFERENCE_KEYS if k.dataset == dataset):
            run_sql_file(
                con,
                "versions/reference_keys.sql",
                # a table of the fixed dataset catalog, never a name from input
                dataset_table=f"ref.{dataset}",
                delivery_id=delivery_id,
                key_column=key.column,
                qualified=key.qualifier is not None,
                qualifier=key.qualifier or key.column,
            )
        execute(
            con,
            "insert into audit.keyed_snapshots values ($delivery_id, $dataset)",
            {"delivery_id": delivery_id, "dataset": dataset},
        )
    run_sql_file(con, "versions/keep_reference_keys.sql")


def reference_touched_claims(
    con: duckdb.DuckDBPyConnection, pack: PackScope, previous: LastAudit
) -> bool:
    """Put in temp table reference_touched_claim the claims whose facts the reference rows
    changed since the `previous` audit can change. False, for a full audit instead, when a
    changed file has no REFERENCE_KEYS, when a snapshot in use then has no keys recorded (a
    database from before they were), or when the claims hold more than settings.toml's share
    of the pack's lines."""
    compared = _compared_snapshots(con, pack, previous)
    if not compared:  # a night of claim files alone
        execute(
            con,
            "create or replace temp table reference_touched_claim "
            "(payer varchar, claim_id varchar)",
        )
        return True
    if not {dataset for dataset, _, _ in compared} <= {k.dataset for k in REFERENCE_KEYS}:
        return False  # a file no key leads from: what it changes is not known
    snapshots_then = [then for _, then, _ in compared if then is not None]
    recorded = scalar(
        con,
        "select count(*) from audit.keyed_snapshots where list_contains($ids, delivery_id)",
        ids=snapshots_then,
    )
    if recorded != len(snapshots_then):
        return False
    _changed_reference_keys(con, compared)
    run_sql_file(
        con,
        "versions/reference_touched_claims.sql",
        policy_id=pack.policy_id,
        codes=list(pack.codes),
        bulletin=pack.bulletin,
    )
    return not _beyond_full_audit_share(con, "reference_touched_claim", pack.policy_id)


def _add_reference_touched(
    con: duckdb.DuckDBPyConnection, claims: Literal["touched_claim", "scope_claim"]
) -> None:
    """Add the claims changed reference rows reach (temp table reference_touched_claim) to
    temp table `claims`."""
    execute(
        con,
        f"create or replace temp table {claims} as from {claims} "
        "union from reference_touched_claim",
    )


def _reaches_too_many(con: duckdb.DuckDBPyConnection, policy_id: str) -> bool:
    """Whether changed reference rows reach more than settings.toml's `full_audit_share`,
    with the claims to audit beside them (temp table scope_claim, widened once): for a pack
    whose related lines read reference rows, through the lines tied to those they reach too.
    A wide tie reaches far: in the 10M benchmark, when Parent Peer Support tied a peer's whole
    day, reference rows reaching 2.7% of the lines reached 67% of the claims through it.
    Auditing that many in part costs more than a full audit, which copies no claim's lines."""
    if not scalar(con, "select count(*) from reference_touched_claim"):
        return False  # tonight's claims alone: audited nightly whatever they reach
    return _beyond_full_audit_share(con, "scope_claim", policy_id)


def _beyond_full_audit_share(
    con: duckdb.DuckDBPyConnection,
    claims: Literal["reference_touched_claim", "scope_claim"],
    policy_id: str,
) -> bool:
    """Whether the claims of temp table `claims` hold more than settings.toml's
    `full_audit_share` ([nightly]) of the policy's audited lines."""
    reached = scalar(
        con,
        f"select count(*) from audit.audited_lines semi join {claims} "
        "using (payer, claim_id) where policy_id = $policy_id",
        policy_id=policy_id,
    )
    share = load_settings().nightly.full_audit_share
    return bool(reached > share * audited_line_count(con, policy_id))


def _compared_snapshots(
    con: duckdb.DuckDBPyConnection, pack: PackScope, previous: LastAudit
) -> list[tuple[str, int | None, int]]:
    """Per reference file the pack reads whose snapshot in use changed since the `previous`
    audit: the file, its snapshot in use then (None: it had none) and now."""
    rows = execute(
        con,
        "select dataset, max(delivery_id) filter (delivery_id <= $last), max(delivery_id) "
        "from audit.deliveries where kind = 'reference' and status = 'loaded' "
        "and list_contains($datasets, dataset) group by dataset "
        "having max(delivery_id) filter (delivery_id <= $last) is distinct from max(delivery_id)",
        {"last": previous.last_delivery_id, "datasets": sorted({IMPLEMENTATION, *pack.references})},
    )
    return [(str(d), None if then is None else int(then), int(now)) for d, then, now in rows]


def _changed_reference_keys(
    con: duckdb.DuckDBPyConnection, compared: list[tuple[str, int | None, int]]
) -> None:
    """Temp table changed_reference_key: the keys whose rows differ between the snapshots."""
    snapshots = pl.DataFrame(
        compared,
        schema={"dataset": pl.String, "snapshot_then": pl.Int32, "snapshot_now": pl.Int32},
        orient="row",
    )
    reach = pl.DataFrame(
        [(k.dataset, k.column, k.reaches) for k in REFERENCE_KEYS],
        schema={"dataset": pl.String, "key_column": pl.String, "reaches": pl.String},
        orient="row",
    )
    with registered(con, compared_snapshot=snapshots, reference_key_reach=reach):
        run_sql_file(con, "versions/changed_reference_keys.sql")


def record_audited_lines(
    con: duckdb.DuckDBPyConnection, audited_claims: pl.DataFrame | None, policy_id: str
) -> int:
    """Keep the lines tonight's audit of the policy saw (temp table current_facts: the
    claim_line_number and AUDITED_LINE_COLUMNS of its facts), for the next night; returns all
    its in-scope lines."""
    with registered(con, audited_claims=claims_or_empty(audited_claims)):
        run_sql_file(
            con,
            "versions/record_audited_lines.sql",
            every_claim=audited_claims is None,
            policy_id=policy_id,
        )
    return audited_line_count(con, policy_id)


def audited_line_count(con: duckdb.DuckDBPyConnection, policy_id: str) -> int:
    return int(
        scalar(
            con,
            "select count(*) from audit.audited_lines where policy_id = $policy_id",
            policy_id=policy_id,
        )
    )


def claims_or_empty(claims: pl.DataFrame | None) -> pl.DataFrame:
    """The audited claims to register for SQL: an empty frame stands for "every claim"."""
    if claims is None:
        return pl.DataFrame(schema={"payer": pl.String, "claim_id": pl.String})
    return claims.select(CLAIM)
