"""Parent Peer Support (H0038) facts: the evidence each PPS rule of the suite reads.

Each rule gets the columns its expectation checks and the evidence an analyst needs in the
finding's detail. Where the bulletin names a threshold (a date, a group size, an age, an age
gap), the facts carry the evidence (the DOS, the count, the age, the gap) and the suite
compares it with the policy's parameter; a true/false column is left only where Great
Expectations has no comparison for the rule (a span over many rows, a set of documents). Where
that evidence can name another MCO's claim, member or caregiver, an `<evidence>_for_mco`
column says it for the paying MCO's package without them. The rules' meaning is in this
pack's README.md; the column names say which part of it they hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

from pipelines.audit.evidence import (
    DELIVERY_ORDER,
    KEY,
    LINE,
    MODIFIERS,
    age_on,
    attach,
    covers,
    date_text,
    evidence_only_where_broken,
    joined_per_line,
    last_in_file,
    look_up,
)

Reference = Mapping[str, pl.DataFrame]
Parameters = Mapping[str, Any]

REFERENCES = (
    "members",
    "enrollment",
    "providers",
    "level_of_care",
    "treatment_plans",
    "consents",
    "caregivers",
    "service_participants",
)


def related_facts(
    lines: pl.DataFrame, reference: Reference, parameters: Parameters
) -> pl.DataFrame:
    """The facts that read other lines: a group session's size (PPS002), counted over every
    line of the session (_session_sizes)."""
    return _session_sizes(lines, parameters)


def build_facts(lines: pl.DataFrame, reference: Reference, parameters: Parameters) -> pl.DataFrame:
    facts = lines.with_columns(
        _is_group(parameters).alias("is_group"),
        # Great Expectations compares a date only as a datetime64[ns] column against a
        # datetime parameter (PPS001 against effective_date)
        pl.col("service_date").cast(pl.Datetime("ns")).alias("dos_timestamp"),
    )
    for step in (
        _session_named,
        _level_of_care,
        _provider,
        _age_gap,
        _member_billed,
        _treatment_plan,
        _consent,
        _participants,
    ):
        facts = step(facts, reference, parameters)
    return evidence_only_where_broken(facts, evidence_of_failure(parameters))


# where a comparison has no value to compare (no birth date on file): below every threshold
# it is compared with, so an unknown age is never an adult's and an unknown gap never shows
# the parents apart (the suite's meta says so)
NOT_KNOWN = -1


def evidence_of_failure(parameters: Parameters) -> dict[str, pl.Expr]:
    """The condition under which each evidence column's rule passes (it is kept only where
    not): the suite's own comparisons, with the same thresholds."""
    return {
        "lived_experience_evidence": pl.col("lived_experience_on_file"),
        "service_array_evidence": pl.col("pps_in_service_array"),
        "age_gap_evidence": pl.col("largest_age_gap_years") >= parameters["age_gap_years"],
        "member_billed_evidence": pl.col("billed_identified_member"),
        "member_billed_evidence_for_mco": pl.col("billed_identified_member"),
        "treatment_plan_evidence": pl.col("treatment_plan_in_force"),
        "consent_evidence": pl.col("consent_in_force")
        | (pl.col("age_on_dos") < parameters["adult_age"]),
        "participant_evidence": pl.col("non_medicaid_participation_documented"),
    }


# PPS002 ---------------------------------------------------------------------------------


def _is_group(parameters: Parameters) -> pl.Expr:
    return pl.any_horizontal(
        [pl.col(m) == parameters["group_modifier"] for m in MODIFIERS]
    ).fill_null(False)


def _session_sizes(lines: pl.DataFrame, parameters: Parameters) -> pl.DataFrame:
    """Sessions span MCOs; a blank POS or session_id is one value (polars groups nulls)."""
    session = ["peer_npi", "service_date", "place_of_service_code", "session_id"]
    sessions = lines.select(LINE, *session, "member_id", _is_group(parameters).alias("is_group"))
    sizes = (
        sessions.filter(pl.col("is_group"))
        .group_by(session)
        .agg(pl.col("member_id").n_unique().alias("group_session_members"))
    )
    return sessions.join(
        sizes, on=session, how="left", nulls_equal=True, maintain_order="left"
    ).select(
        LINE,
        pl.when(pl.col("is_group"))
        .then(pl.col("group_session_members"))
        .otherwise(0)
        .cast(pl.Int64)
        .alias("group_session_members"),
    )


def _session_named(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    """What a session's finding names besides its size: the limit, the place and the ID."""
    return facts.with_columns(
        pl.lit(parameters["group_size_max"]).alias("group_size_max"),
        pl.col("place_of_service_code").fill_null("(blank)").alias("pos_text"),
        pl.col("session_id").fill_null("(blank)").alias("session_text"),
    )


# PPS003 ---------------------------------------------------------------------------------


def _level_of_care(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    spans = ref["level_of_care"].filter(pl.col("loc_category").is_in(["ACUTE", "RESIDENTIAL"]))
    # the discharge day is a community day; a same-day span covers its one day
    last_day = (
        pl.when(pl.col("end_date").is_null())
        .then(pl.lit(dt.date.max))
        .when(pl.col("end_date") <= pl.col("start_date"))
        .then(pl.col("end_date"))
        .otherwise(pl.col("end_date").dt.offset_by("-1d"))
    )
    blocking = (
        facts.select(LINE, "member_id", "service_date", "service_end_date")
        .join(spans, on="member_id")
        .filter(
            (pl.col("start_date").is_null() | (pl.col("start_date") <= pl.col("service_end_date")))
            & (last_day >= pl.col("service_date"))
        )
        # the earliest span is the evidence; of spans starting together, the first in the file
        .sort(LINE, "start_date", *DELIVERY_ORDER, nulls_last=False)
        .group_by(LINE)
        .first()
        .select(
            LINE,
            pl.lit(True).alias("in_acute_or_residential_care"),
            pl.format(
                "{} ({}) {} to {}",
                "loc_category",
                pl.col("loc_type").fill_null("type not given"),
                pl.col("start_date").dt.to_string("%Y-%m-%d").fill_null("(no start)"),
                pl.col("end_date").dt.to_string("%Y-%m-%d").fill_null("ongoing"),
            ).alias("level_of_care_evidence"),
        )
    )
    return attach(facts, blocking).with_columns(
        pl.col("in_acute_or_residential_care").fill_null(False)
    )


# PPS004 and PPS005 ------------------------------------------------------------------------


def _provider(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    dos = pl.col("service_date")
    attested = (pl.col("lived_experience_attested") == "Y") & (
        pl.col("lived_experience_attested_date").is_null()
        | (pl.col("lived_experience_attested_date") <= dos)
    )
    enrolled = covers("enrollment_start_date", "enrollment_end_date", dos)
    pps_added = pl.col("pps_start_date").is_not_null() & (pl.col("pps_start_date") <= dos)
    birth_dates = last_in_file(ref["providers"], "npi", "date_of_birth", "peer_date_of_birth")
    per_line = (
        facts.select(LINE, "peer_npi", "service_date")
        .join(ref["providers"], left_on="peer_npi", right_on="npi")
        .group_by(LINE)
        .agg(
            pl.lit(True).alias("peer_provider_known"),
            attested.fill_null(False).any().alias("lived_experience_on_file"),
            (enrolled & pps_added).fill_null(False).any().alias("pps_in_service_array"),
            enrolled.fill_null(False).any().alias("provider_enrolled_on_dos"),
            (pl.col("lived_experience_attested") == "Y").fill_null(False).any().alias("_attested"),
            pl.col("lived_experience_attested_date").max().alias("_attested_date"),
            pl.col("pps_start_date").min().alias("_pps_start"),
        )
    )
    facts = (
        attach(facts, per_line)
        .pipe(look_up, birth_dates.rename({"npi": "peer_npi"}), "peer_npi")
        .with_columns(
            pl.col(
                "peer_provider_known", "lived_experience_on_file", "pps_in_service_array"
            ).fill_null(False),
        )
    )
    npi = pl.col("peer_npi")
    lived = (
        pl.when(~pl.col("peer_provider_known"))
        .then(pl.format("peer provider NPI {} is not in the provider file", npi))
        .when(~pl.col("_attested"))
        .then(
            pl.format(
                "peer provider NPI {} has no lived-experience self-identification on file", npi
            )
        )
        .otherwise(
            pl.format(
                "peer provider NPI {} self-identified lived experience on {}, after DOS {}",
                npi,
                date_text("_attested_date"),
                date_text("service_date"),
            )
        )
    )
    array = (
        pl.when(~pl.col("peer_provider_known"))
        .then(pl.format("peer provider NPI {} is not in the provider file", npi))
        .when(~pl.col("provider_enrolled_on_dos").fill_null(False))
        .then(
            pl.format(
                "peer provider NPI {} was not enrolled on DOS {}", npi, date_text("service_date")
            )
        )
        .when(pl.col("_pps_start").is_null())
        .then(
            pl.format("peer provider NPI {} never added Parent Peer Support to its services", npi)
        )
        .otherwise(
            pl.format(
                "peer provider NPI {} added Parent Peer Support on {}, after DOS {}",
                npi,
                date_text("_pps_start"),
                date_text("service_date"),
            )
        )
    )
    return facts.with_columns(
        lived.alias("lived_experience_evidence"), array.alias("service_array_evidence")
    ).drop("_attested", "_attested_date", "_pps_start", "provider_enrolled_on_dos")


# PPS006 ---------------------------------------------------------------------------------


def whole_years_apart(one: pl.Expr, other: pl.Expr) -> pl.Expr:
    """The age gap of two birth dates in whole years, whichever is older: the older one's age
    on the younger one's birth date. At least N (a whole number) exactly when the rules page's
    "at least N years apart" holds: the later year minus the earlier, less one when the later
    date's (month, day) is before the earlier's (a 29 February birth date included). Null
    when either date is (min/max_horizontal skip a null: alone they would give a gap of 0)."""
    known = one.is_not_null() & other.is_not_null()
    return pl.when(known).then(age_on(pl.max_horizontal(one, other), pl.min_horizontal(one, other)))


def _age_gap(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    # a caregiver ID is one person across the file (decisions.md): one birth date per ID
    birth_dates = last_in_file(
        ref["caregivers"], "caregiver_id", "date_of_birth", "caregiver_date_of_birth"
    )
    named = (
        facts.select(LINE, *KEY)
        .join(
            ref["service_participants"].filter(pl.col("caregiver_id").is_not_null()),
            on=KEY,
        )
        .select(LINE, "caregiver_id")
        .unique()
    )
    # caregivers active on the DOS count only for lines whose participants name nobody
    active = (
        facts.select(LINE, "member_id", "service_date")
        .join(named.select(LINE).unique(), on=LINE, how="anti")
        .join(ref["caregivers"], on="member_id")
        .filter(covers("start_date", "end_date", pl.col("service_date")))
        .select(LINE, "caregiver_id")
        .unique()
    )
    candidates = (
        pl.concat([named, active])
        .join(birth_dates, on="caregiver_id", how="left")
        .join(facts.select(LINE, "peer_date_of_birth"), on=LINE)
        .with_columns(
            whole_years_apart(pl.col("caregiver_date_of_birth"), pl.col("peer_date_of_birth"))
            .cast(pl.Int64)
            .alias("_gap")
        )
        # sorted once, so that each line's IDs join in order without a sort per line
        .sort(LINE, "caregiver_id")
    )
    gaps = candidates.group_by(LINE).agg(
        pl.col("_gap").max().alias("largest_age_gap_years"),
        pl.col("caregiver_date_of_birth").is_null().any().alias("_candidate_without_dob"),
    )
    names = joined_per_line(candidates, "caregiver_id", ", ")
    without_dob = joined_per_line(
        candidates.filter(pl.col("caregiver_date_of_birth").is_null()), "caregiver_id", ", "
    )
    facts = (
        attach(facts, gaps)
        .pipe(attach, names.rename({"caregiver_id": "candidate_caregivers"}))
        .pipe(attach, without_dob.rename({"caregiver_id": "_without_dob"}))
    )
    facts = facts.with_columns(
        pl.col("largest_age_gap_years").fill_null(NOT_KNOWN),
        # the split between the violation and the documentation finding: whether the data
        # show every candidate's gap (a provider birth date, a candidate, each with a birth
        # date), so that a gap below the minimum is a fact and not a missing document
        (
            pl.col("peer_date_of_birth").is_not_null()
            & pl.col("candidate_caregivers").is_not_null()
            & ~pl.col("_candidate_without_dob").fill_null(True)
        ).alias("age_gap_known_for_every_candidate"),
    )
    npi = pl.col("peer_npi")
    evidence = (
        pl.when(pl.col("peer_date_of_birth").is_null())
        .then(pl.format("no birth date on file for peer provider NPI {}", npi))
        .when(pl.col("candidate_caregivers").is_null())
        .then(pl.lit("no caregiver is named for the line or active for the member on the DOS"))
        .when(pl.col("_candidate_without_dob").fill_null(False))
        .then(
            pl.format(
                "caregiver(s) {} have no birth date on file and none of {} is at least "
                "{} years apart in age from peer provider NPI {}",
                "_without_dob",
                "candidate_caregivers",
                pl.lit(parameters["age_gap_years"]),
                npi,
            )
        )
        .otherwise(
            pl.format(
                "peer provider NPI {} is less than {} years apart in age from caregiver(s) {}",
                npi,
                pl.lit(parameters["age_gap_years"]),
                "candidate_caregivers",
            )
        )
    )
    return facts.with_columns(evidence.alias("age_gap_evidence")).drop(
        "_candidate_without_dob", "_without_dob"
    )


# PPS007 ---------------------------------------------------------------------------------


def _member_billed(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    members = last_in_file(
        ref["members"], "member_id", "date_of_birth", "member_date_of_birth"
    ).with_columns(pl.lit(True).alias("member_on_file"))
    enrolled = (
        facts.select(LINE, "member_id", "service_date")
        .join(ref["enrollment"], on="member_id")
        .filter(covers("start_date", "end_date", pl.col("service_date")))
        .group_by(LINE)
        .agg(pl.lit(True).alias("member_eligible_on_dos"))
    )
    caregiver_ids = (
        ref["caregivers"]
        .filter(pl.col("medicaid_id").is_not_null())
        .group_by("medicaid_id")
        .agg(pl.col("caregiver_id").sort().first().alias("_caregiver_billed"))
        .rename({"medicaid_id": "member_id"})
    )
    facts = (
        look_up(facts, members, "member_id")
        .pipe(attach, enrolled)
        .pipe(look_up, caregiver_ids, "member_id")
        .with_columns(pl.col("member_on_file", "member_eligible_on_dos").fill_null(False))
    )
    dos = date_text("service_date")
    caregiver_billed = ~pl.col("member_on_file") & pl.col("_caregiver_billed").is_not_null()
    other_reasons = (
        pl.when(~pl.col("member_on_file"))
        .then(pl.lit("the billed member ID is not on the member file"))
        .otherwise(pl.format("the member has no Medicaid eligibility on DOS {}", dos))
    )
    evidence = (
        pl.when(caregiver_billed)
        .then(
            pl.format(
                "the billed ID is caregiver {}'s Medicaid ID, not the identified member's",
                "_caregiver_billed",
            )
        )
        .otherwise(other_reasons)
    )
    # the caregiver row may belong to a child enrolled with another MCO: the MCO is told
    # whose ID it billed, not the state's caregiver record
    evidence_for_mco = (
        pl.when(caregiver_billed)
        .then(pl.lit("the billed ID is a caregiver's Medicaid ID, not the identified member's"))
        .otherwise(other_reasons)
    )
    return facts.with_columns(
        (pl.col("member_on_file") & pl.col("member_eligible_on_dos")).alias(
            "billed_identified_member"
        ),
        evidence.alias("member_billed_evidence"),
        evidence_for_mco.alias("member_billed_evidence_for_mco"),
    ).drop("_caregiver_billed")


# PPS008 ---------------------------------------------------------------------------------


def _treatment_plan(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    dos = pl.col("service_date")
    licensed = pl.col("practitioner_license_type").is_in(
        list(parameters["licensed_practitioner_types"])
    )
    signed = pl.col("signed_date").is_not_null() & (pl.col("signed_date") <= dos)
    includes = pl.col("includes_pps") == "Y"
    # why each covering plan fails, the first reason in the order an analyst checks them
    why_not = (
        pl.when(~includes.fill_null(False))
        .then(pl.format("plan {} does not include Parent Peer Support", "plan_label"))
        .when(pl.col("signed_date").is_null())
        .then(pl.format("plan {} is not signed", "plan_label"))
        .when(~signed)
        .then(
            pl.format(
                "plan {} was signed {}, after DOS {}",
                "plan_label",
                date_text("signed_date"),
                date_text("service_date"),
            )
        )
        .when(~licensed.fill_null(False))
        .then(
            pl.format(
                "plan {} was signed by license type {}, not a licensed clinical practitioner",
                "plan_label",
                pl.col("practitioner_license_type").fill_null("(blank)"),
            )
        )
    )
    covering = (
        facts.select(LINE, "member_id", "service_date")
        .join(ref["treatment_plans"], on="member_id")
        .filter(covers("start_date", "end_date", dos))
        .with_columns((includes & signed & licensed).fill_null(False).alias("_ok"))
    )
    in_force = covering.group_by(LINE).agg(pl.col("_ok").any().alias("treatment_plan_in_force"))
    # reasons are evidence: written only for the lines no plan covers properly
    reasons = (
        covering.filter(~pl.col("_ok").any().over(LINE))
        .with_columns(pl.col("plan_id").fill_null("(no plan ID)").alias("plan_label"))
        .with_columns(why_not.alias("_why"))
        .sort(LINE, "plan_label", *DELIVERY_ORDER)
    )
    reasons = joined_per_line(reasons, "_why", "; ").rename({"_why": "_why_not"})
    facts = (
        attach(facts, in_force)
        .pipe(attach, reasons)
        .with_columns(pl.col("treatment_plan_in_force").fill_null(False))
    )
    evidence = (
        pl.when(pl.col("_why_not").is_null() | (pl.col("_why_not") == ""))
        .then(
            pl.format("no treatment plan for the member covers DOS {}", date_text("service_date"))
        )
        .otherwise(pl.col("_why_not"))
    )
    return facts.with_columns(evidence.alias("treatment_plan_evidence")).drop("_why_not")


# PPS009 ---------------------------------------------------------------------------------


def _consent(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    dos = pl.col("service_date")
    consents = (
        facts.select(LINE, "member_id", "service_date")
        .join(
            ref["consents"].filter(pl.col("consent_type") == parameters["consent_type"]),
            on="member_id",
        )
        .with_columns(
            (
                pl.col("signed_date").is_not_null()
                & (pl.col("signed_date") <= dos)
                & (pl.col("revoked_date").is_null() | (pl.col("revoked_date") > dos))
            ).alias("_in_force"),
            pl.when(pl.col("revoked_date") <= dos)
            .then(
                pl.format(
                    "written consent revoked {}, on or before DOS {}",
                    date_text("revoked_date"),
                    date_text("service_date"),
                )
            )
            .when(pl.col("signed_date") > dos)
            .then(
                pl.format(
                    "written consent signed {}, after DOS {}",
                    date_text("signed_date"),
                    date_text("service_date"),
                )
            )
            .alias("_why"),
        )
        .sort(LINE, "signed_date", *DELIVERY_ORDER)
    )
    in_force = consents.group_by(LINE).agg(pl.col("_in_force").any().alias("consent_in_force"))
    reasons = joined_per_line(consents, "_why", "; ").rename({"_why": "_why_not"})
    age = age_on(pl.col("service_date"), pl.col("member_date_of_birth"))
    facts = (
        attach(facts, in_force)
        .pipe(attach, reasons)
        .with_columns(
            pl.col("consent_in_force").fill_null(False),
            # a member without a birth date on file is not shown to be an adult (rules page)
            age.cast(pl.Int64).fill_null(NOT_KNOWN).alias("age_on_dos"),
        )
    )
    evidence = pl.format(
        "member aged {} on DOS {}: {}",
        "age_on_dos",
        date_text("service_date"),
        pl.when(pl.col("_why_not").is_null() | (pl.col("_why_not") == ""))
        .then(pl.lit("no written Parent Peer Support consent on file"))
        .otherwise(pl.col("_why_not")),
    )
    return facts.with_columns(evidence.alias("consent_evidence")).drop("_why_not")


# PPS010 ---------------------------------------------------------------------------------


def _participants(facts: pl.DataFrame, ref: Reference, parameters: Parameters) -> pl.DataFrame:
    undocumented = (
        facts.select(LINE, *KEY)
        .join(ref["service_participants"], on=KEY)
        .filter(
            (pl.col("non_medicaid_participant") == "Y")
            & (pl.col("direct_benefit_documented") != "Y").fill_null(True)
        )
        .group_by(LINE)
        .agg(pl.col("caregiver_id").fill_null("(unnamed)").sort().str.join(", ").alias("_who"))
    )
    facts = attach(facts, undocumented)
    return facts.with_columns(
        pl.col("_who").is_null().alias("non_medicaid_participation_documented"),
        pl.format(
            "non-Medicaid participant(s) {} took part without documented direct benefit "
            "to the member",
            "_who",
        ).alias("participant_evidence"),
    ).drop("_who")
