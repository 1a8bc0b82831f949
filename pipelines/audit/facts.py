"""Facts: one row per in-scope line of a pack, with the evidence its suite reads.

The engine numbers the lines (`line_key`), hands them with the reference tables the pack
declares to the pack's facts.py, and, when the pack asks for them, to the general pack's;
it adds what every policy shares: whether the paying MCO had implemented the policy. On a
nightly run only the audited claims' lines get facts (build_facts).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import duckdb
import polars as pl

from pipelines.audit.evidence import DELIVERY_ORDER, KEY, LINE, attach
from pipelines.audit.packs import Pack
from pipelines.claims.partitions import partitioning, partitions, plan_partitions
from pipelines.claims.scope import CLAIM, IMPLEMENTATION
from pipelines.claims.versions import stage_in_scope_lines
from pipelines.config import load_settings
from pipelines.ingest.datasets import REFERENCE_DATASETS
from pipelines.ingest.values import EXTRA_COLUMNS

# a pack's facts.py may define it beside build_facts: the facts that read other lines
RELATED_FACTS = "related_facts"
# the reference tables of the contract (the ingest catalog): a pack names those it reads
REFERENCE_TABLES = tuple(dataset.name for dataset in REFERENCE_DATASETS)


def references_of(packs: Iterable[Pack]) -> list[str]:
    """The reference tables the packs read, and the MCO implementation dates every pack uses."""
    wanted = {IMPLEMENTATION, *(t for p in packs for t in p.facts().REFERENCES)}
    unknown = wanted - set(REFERENCE_TABLES)
    if unknown:
        raise ValueError(f"no reference table {', '.join(sorted(unknown))}")
    return [t for t in REFERENCE_TABLES if t in wanted]


def read_reference(
    con: duckdb.DuckDBPyConnection, tables: Iterable[str]
) -> dict[str, pl.DataFrame]:
    """The snapshots in use, each in delivery order (file row order): DuckDB keeps no order
    of its own here, and every choice among several rows must come out the same each night.
    Without their extra columns, which no rule reads (docs/decisions.md).

    The facts stage carries these frames through every partition, so they are read to take
    little memory (bench/README.md, at 30M claim lines and 1.5M members): through a Parquet
    file rather than DuckDB's result (about 200 MB less), and without the extra columns (about
    90 MB less).
    """
    with tempfile.TemporaryDirectory(prefix="claims-audit-reference-") as folder:
        return {
            name: _reference_table(con, name, Path(folder) / f"{name}.parquet")
            for name in tables
            if name in REFERENCE_TABLES
        }


def _reference_table(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> pl.DataFrame:
    # the table name comes from the fixed list above; preserve_order: the file keeps the
    # query's order whatever the connection's preserve_insertion_order says
    order = ", ".join(DELIVERY_ORDER)
    con.execute(
        f"copy (select * exclude ({EXTRA_COLUMNS}) from ref.{name} order by {order}) to $path "
        "(format parquet, compression uncompressed, preserve_order)",
        {"path": str(path)},
    )
    return pl.read_parquet(path)


def facts_from_db(
    con: duckdb.DuckDBPyConnection, pack: Pack, general: Pack | None, claim: tuple[str, str]
) -> pl.DataFrame:
    """The pack's facts of one claim's current in-scope lines (payer, claim ID), from the
    database as it is: the partitions holding its lines are built whole, as the audit does."""
    used = [p for p in (pack, general) if p is not None]
    reference = read_reference(con, references_of(used))
    scope = pack.scope(general)
    stage_in_scope_lines(con, scope.codes)
    units = partitioning(scope.related_lines)
    plan_partitions(con, units, load_settings().lines_per_partition)
    payer, claim_id = claim
    built, first_key = [], 0
    for lines in partitions(con, units):
        if lines.filter((pl.col("payer") == payer) & (pl.col("claim_id") == claim_id)).height:
            built.append(build_facts(lines, reference, pack, general, first_key=first_key))
        first_key += lines.height
    if not built:
        return build_facts(lines_of_no_claim(con), reference, pack, general)
    return pl.concat(built, how="diagonal_relaxed")


def lines_of_no_claim(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The columns of in-scope lines (temp table in_scope_line), without a line."""
    return con.sql("from in_scope_line limit 0").pl()


def build_facts(
    lines: pl.DataFrame,
    reference: Mapping[str, pl.DataFrame],
    pack: Pack,
    general: Pack | None,
    *,
    first_key: int = 0,
    audited_claims: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The pack's facts of `lines` (its current in-scope lines: whole partitions), with the
    general pack's evidence beside them when `general` is given. Line keys start at
    `first_key`, so that the partitions of one audit never share one.

    With `audited_claims` (payer, claim_id), only those claims' lines get facts: the other
    lines are there to complete the groups they are in (a session, a member's day or month).
    A pack's `related_facts`, the facts that read other lines, sees every line; its
    `build_facts` then sees the audited lines alone. A pack without `related_facts` sees
    every line in `build_facts`, since any of its facts may read other lines."""
    numbered = lines.sort(KEY).with_row_index(LINE, offset=first_key)
    audited = numbered
    if audited_claims is not None:
        audited = numbered.join(audited_claims, on=CLAIM, how="semi", maintain_order="left")
    facts = audited
    for source in (pack, general):
        if source is None:
            continue
        module = source.facts()
        if hasattr(module, RELATED_FACTS):
            related = module.related_facts(numbered, reference, source.parameters)
            facts = _beside(facts, _own(related, numbered))
            evidence = module.build_facts(audited, reference, source.parameters)
        else:
            evidence = module.build_facts(numbered, reference, source.parameters)
        facts = _beside(facts, _own(evidence, numbered))
    return _implementation(facts, reference[IMPLEMENTATION], pack).with_columns(
        pl.col("service_date").dt.to_string("%Y-%m-%d").alias("service_date_text")
    )


def _own(evidence: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """A pack may return the lines with its columns added: only its own are kept."""
    return evidence.drop([c for c in lines.columns if c != LINE], strict=False)


def _beside(facts: pl.DataFrame, evidence: pl.DataFrame) -> pl.DataFrame:
    """The evidence's columns beside the facts, row for row: as they are when the pack kept
    the lines' order (no copy; at 1M lines a join would hold the evidence twice), else
    lined up by line key (evidence of more lines than the facts has only theirs taken)."""
    if evidence[LINE].equals(facts[LINE]):
        return facts.hstack(evidence.drop(LINE))
    return attach(facts, evidence)


def _implementation(
    facts: pl.DataFrame, mco_implementation: pl.DataFrame, pack: Pack
) -> pl.DataFrame:
    """Lines paid before their MCO implemented the policy, or by an MCO with no date yet.

    An MCO's row for this policy's bulletin wins over its rows for every policy (blank).
    """
    rows = mco_implementation.filter(
        pl.col("policy").is_null() | (pl.col("policy") == (pack.bulletin or ""))
    ).with_columns(pl.col("policy").is_not_null().alias("_for_this_policy"))
    dates = (
        rows.filter(pl.col("_for_this_policy") == pl.col("_for_this_policy").max().over("payer"))
        .group_by("payer")
        .agg(pl.col("implemented_date").min())
    )
    facts = facts.join(dates, on="payer", how="left")
    return facts.with_columns(
        (
            pl.col("implemented_date").is_null()
            | (pl.col("paid_date") < pl.col("implemented_date"))
        ).alias("pre_implementation")
    ).drop("implemented_date")
