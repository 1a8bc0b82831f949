"""General claims-integrity facts (GEN001, GEN002), over any pack's in-scope lines.

Duplicates are looked for among the lines of one pack (the same service twice), and the
paying MCO is checked against the member's enrollment on the DOS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from pipelines.audit.evidence import (
    LINE,
    MODIFIERS,
    attach,
    covers,
    date_text,
    evidence_only_where_broken,
)

Reference = Mapping[str, pl.DataFrame]
Parameters = Mapping[str, Any]

REFERENCES = ("enrollment",)

# the condition under which each evidence column's rule passes (it is kept only where not)
EVIDENCE_OF_FAILURE = {
    "mco_assignment_evidence": pl.col("enrolled_with_paying_mco"),
    "mco_assignment_evidence_for_mco": pl.col("enrolled_with_paying_mco"),
}


def related_facts(
    lines: pl.DataFrame, reference: Reference, parameters: Parameters
) -> pl.DataFrame:
    """The facts that read other lines: a line's copies (GEN001), among the member's day."""
    return _duplicates(lines, reference, parameters)


def build_facts(lines: pl.DataFrame, reference: Reference, parameters: Parameters) -> pl.DataFrame:
    facts = _mco_assignment(lines, reference, parameters)
    return evidence_only_where_broken(facts, EVIDENCE_OF_FAILURE)


# GEN001 ---------------------------------------------------------------------------------

SAME_SERVICE = "same member, provider, DOS, code, modifiers and units"


def _duplicates(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    modifier_set = (
        pl.concat_list(MODIFIERS).list.drop_nulls().list.unique().list.sort().list.join(":")
    )
    same_service = [
        "member_id",
        "peer_npi",
        "service_date",
        "hcpcs_code",
        "_modifier_set",
        "service_unit_quantity",
    ]
    # only lines that share all but the modifiers can be copies: the set is built for those
    coarse = [c for c in same_service if c != "_modifier_set"]
    maybe_copies = facts.filter(pl.struct(coarse).is_duplicated())
    copies = maybe_copies.with_columns(modifier_set.alias("_modifier_set")).select(
        LINE, *same_service, "payer", "claim_id", "claim_line_number", "paid_date"
    )
    # the earliest-paid claim (ties: smallest claim_id) keeps its copy; the others are flagged
    kept = (
        copies.sort("paid_date", "claim_id", "payer", "claim_line_number", nulls_last=True)
        .group_by(same_service)
        .first()
        .select(
            *same_service,
            pl.col("payer").alias("_kept_payer"),
            pl.col("claim_id").alias("_kept_claim"),
            pl.col("claim_line_number").alias("_kept_line"),
            pl.col("paid_date").alias("_kept_paid"),
        )
    )
    flagged = (
        copies.join(kept, on=same_service, nulls_equal=True)
        .filter(
            (pl.col("payer") != pl.col("_kept_payer"))
            | (pl.col("claim_id") != pl.col("_kept_claim"))
        )
        .with_columns(
            pl.format(
                "duplicate of {} claim {} line {} (paid {}): " + SAME_SERVICE,
                "_kept_payer",
                "_kept_claim",
                "_kept_line",
                date_text("_kept_paid"),
            ).alias("duplicate_evidence")
        )
        .select(
            LINE,
            "duplicate_evidence",
            # an MCO is told that another MCO paid the copy, and when, never whose claim it is
            pl.when(pl.col("payer") == pl.col("_kept_payer"))
            .then(pl.col("duplicate_evidence"))
            .otherwise(
                pl.format(
                    "duplicate of a line paid by another MCO on {}: " + SAME_SERVICE,
                    date_text("_kept_paid"),
                )
            )
            .alias("duplicate_evidence_for_mco"),
        )
    )
    facts = attach(facts, flagged)
    return facts.with_columns(pl.col("duplicate_evidence").is_null().alias("first_paid_copy"))


# GEN002 ---------------------------------------------------------------------------------


def _mco_assignment(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    enrolled = (
        facts.select(LINE, "member_id", "service_date", "payer")
        .join(ref["enrollment"].rename({"payer": "enrolled_payer"}), on="member_id")
        .filter(covers("start_date", "end_date", pl.col("service_date")))
        .with_columns((pl.col("enrolled_payer") == pl.col("payer")).alias("_with_payer"))
    )
    # the list of MCOs is evidence: spelled out only for the lines enrolled elsewhere
    elsewhere = (
        enrolled.filter(~pl.col("_with_payer").any().over(LINE))
        .sort(LINE, "enrolled_payer")
        .group_by(LINE)
        .agg(pl.col("enrolled_payer").unique(maintain_order=True).str.join(", "))
        .select(
            LINE,
            pl.lit(False).alias("enrolled_with_paying_mco"),
            pl.col("enrolled_payer").alias("_enrolled_with"),
        )
    )
    facts = attach(facts, elsewhere)
    dos = date_text("service_date")
    return facts.with_columns(
        # enrolled nowhere on the DOS is PPS007's business alone
        pl.col("enrolled_with_paying_mco").fill_null(True),
        pl.format(
            "member enrolled with {}, not {}, on DOS {}", "_enrolled_with", "payer", dos
        ).alias("mco_assignment_evidence"),
        # the paying MCO is not told which other MCO the member is enrolled with
        pl.format("member enrolled with another MCO, not {}, on DOS {}", "payer", dos).alias(
            "mco_assignment_evidence_for_mco"
        ),
    ).drop("_enrolled_with")
