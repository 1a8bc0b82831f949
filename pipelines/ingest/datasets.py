"""The data contract's input files: their columns, keys and value types."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A payer code names an MCO and its folder under --out/mco/, so it is only what a folder name
# can safely be: letters, digits, `_` and `-` (compared trimmed and upper-cased).
PAYER_CODE_PATTERN = r"^[A-Z0-9_-]{1,40}$"
PAYER_CODE_FORM = "1 to 40 of A-Z, 0-9, _ and -"


def is_payer_code(value: str) -> bool:
    return re.fullmatch(PAYER_CODE_PATTERN, value) is not None


CLAIM_COLUMNS: tuple[str, ...] = (
    "claim_id",
    "claim_line_number",
    "claim_frequency_code",
    "original_claim_id",
    "member_id",
    "rendering_npi",
    "billing_npi",
    "hcpcs_code",
    "hcpcs_modifier_1",
    "hcpcs_modifier_2",
    "hcpcs_modifier_3",
    "hcpcs_modifier_4",
    "claim_line_start_date",
    "claim_line_end_date",
    "place_of_service_code",
    "service_unit_quantity",
    "paid_amount",
    "paid_date",
    "session_id",
)

REQUIRED_CLAIM_COLUMNS: tuple[str, ...] = (
    "claim_id",
    "claim_line_number",
    "member_id",
    "billing_npi",
    "hcpcs_code",
    "claim_line_start_date",
    "service_unit_quantity",
    "paid_amount",
    "paid_date",
)


@dataclass(frozen=True)
class Dataset:
    """One input file kind: which columns it has and how each value is read."""

    name: str
    table: str
    columns: tuple[str, ...]
    # columns that must be present in the header; a file without one is rejected
    required_columns: tuple[str, ...]
    # values that must be non-blank; a row with a blank one is quarantined
    key_columns: tuple[str, ...]
    date_columns: tuple[str, ...] = ()
    integer_columns: tuple[str, ...] = ()
    amount_columns: tuple[str, ...] = ()
    quantity_columns: tuple[str, ...] = ()
    required_file: bool = True
    upper_columns: tuple[str, ...] = ()
    # date columns bounded by settings.toml [dates]: a service or paid date, a birth date
    service_date_columns: tuple[str, ...] = ()
    birth_date_columns: tuple[str, ...] = ()
    # span end dates: a far-future marker (9999-12-31) means open, as a blank does
    open_end_columns: tuple[str, ...] = ()
    # payer codes (PAYER_CODE_PATTERN): any other value quarantines the row
    payer_columns: tuple[str, ...] = ()


CLAIMS = Dataset(
    name="claims",
    table="raw.claim_lines",
    columns=CLAIM_COLUMNS,
    # the contract's required claim columns must be in the header and non-blank on every row
    required_columns=REQUIRED_CLAIM_COLUMNS,
    key_columns=REQUIRED_CLAIM_COLUMNS,
    date_columns=("claim_line_start_date", "claim_line_end_date", "paid_date"),
    service_date_columns=("claim_line_start_date", "claim_line_end_date", "paid_date"),
    integer_columns=("claim_line_number",),
    amount_columns=("paid_amount",),
    quantity_columns=("service_unit_quantity",),
)

REFERENCE_DATASETS: tuple[Dataset, ...] = (
    Dataset(
        name="members",
        table="ref.members",
        columns=("member_id", "date_of_birth"),
        required_columns=("member_id", "date_of_birth"),
        key_columns=("member_id",),
        date_columns=("date_of_birth",),
        birth_date_columns=("date_of_birth",),
    ),
    Dataset(
        name="enrollment",
        table="ref.enrollment",
        columns=("member_id", "payer", "start_date", "end_date"),
        required_columns=("member_id", "payer", "start_date", "end_date"),
        key_columns=("member_id", "payer"),
        date_columns=("start_date", "end_date"),
        open_end_columns=("end_date",),
        upper_columns=("payer",),
        payer_columns=("payer",),
    ),
    Dataset(
        name="providers",
        table="ref.providers",
        columns=(
            "npi",
            "provider_name",
            "enrollment_start_date",
            "enrollment_end_date",
            "pps_start_date",
            "lived_experience_attested",
            "lived_experience_attested_date",
            "date_of_birth",
            "provider_type",
        ),
        required_columns=(
            "npi",
            "enrollment_start_date",
            "enrollment_end_date",
            "pps_start_date",
            "lived_experience_attested",
            "lived_experience_attested_date",
            "date_of_birth",
        ),
        key_columns=("npi",),
        date_columns=(
            "enrollment_start_date",
            "enrollment_end_date",
            "pps_start_date",
            "lived_experience_attested_date",
            "date_of_birth",
        ),
        birth_date_columns=("date_of_birth",),
        open_end_columns=("enrollment_end_date",),
        upper_columns=("lived_experience_attested", "provider_type"),
    ),
    Dataset(
        name="level_of_care",
        table="ref.level_of_care",
        columns=("member_id", "loc_category", "loc_type", "start_date", "end_date"),
        required_columns=("member_id", "loc_category", "start_date", "end_date"),
        key_columns=("member_id", "loc_category"),
        date_columns=("start_date", "end_date"),
        open_end_columns=("end_date",),
        upper_columns=("loc_category",),
    ),
    Dataset(
        name="treatment_plans",
        table="ref.treatment_plans",
        columns=(
            "plan_id",
            "member_id",
            "start_date",
            "end_date",
            "includes_pps",
            "signed_date",
            "practitioner_npi",
            "practitioner_license_type",
        ),
        required_columns=(
            "member_id",
            "start_date",
            "end_date",
            "includes_pps",
            "signed_date",
            "practitioner_license_type",
        ),
        key_columns=("member_id",),
        date_columns=("start_date", "end_date", "signed_date"),
        open_end_columns=("end_date",),
        upper_columns=("includes_pps", "practitioner_license_type"),
    ),
    Dataset(
        name="consents",
        table="ref.consents",
        columns=("member_id", "consent_type", "signed_date", "revoked_date"),
        required_columns=("member_id", "consent_type", "signed_date", "revoked_date"),
        key_columns=("member_id", "consent_type"),
        date_columns=("signed_date", "revoked_date"),
        upper_columns=("consent_type",),
    ),
    Dataset(
        name="caregivers",
        table="ref.caregivers",
        columns=(
            "caregiver_id",
            "member_id",
            "relationship",
            "date_of_birth",
            "medicaid_id",
            "start_date",
            "end_date",
        ),
        required_columns=(
            "caregiver_id",
            "member_id",
            "date_of_birth",
            "medicaid_id",
            "start_date",
            "end_date",
        ),
        key_columns=("caregiver_id", "member_id"),
        date_columns=("date_of_birth", "start_date", "end_date"),
        birth_date_columns=("date_of_birth",),
        open_end_columns=("end_date",),
    ),
    Dataset(
        name="service_participants",
        table="ref.service_participants",
        columns=(
            "payer",
            "claim_id",
            "claim_line_number",
            "caregiver_id",
            "non_medicaid_participant",
            "direct_benefit_documented",
        ),
        required_columns=(
            "payer",
            "claim_id",
            "claim_line_number",
            "caregiver_id",
            "non_medicaid_participant",
            "direct_benefit_documented",
        ),
        key_columns=("payer", "claim_id", "claim_line_number"),
        integer_columns=("claim_line_number",),
        upper_columns=("payer", "non_medicaid_participant", "direct_benefit_documented"),
        payer_columns=("payer",),
        required_file=False,
    ),
    Dataset(
        name="mco_implementation",
        table="ref.mco_implementation",
        # `policy` (a bulletin number) limits a row to one policy; blank: every policy
        columns=("payer", "implemented_date", "reprocessing_completed_date", "policy"),
        required_columns=("payer", "implemented_date", "reprocessing_completed_date"),
        key_columns=("payer",),
        date_columns=("implemented_date", "reprocessing_completed_date"),
        upper_columns=("payer",),
        payer_columns=("payer",),
    ),
)
