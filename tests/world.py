"""A small hand-built input folder for rule tests: a clean world plus the case under test.

Every line starts clean for every rule (provider attested and enrolled, plan signed by a
licensed practitioner, consent on file, caregiver 3+ years apart, enrolled with the paying
MCO), so a test changes one fact and expects exactly the findings that fact causes.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines.audit.packs import discover
from pipelines.audit.run import PackAudit, pack_audits, run_audit
from pipelines.ingest.datasets import CLAIM_COLUMNS, REFERENCE_DATASETS

MCOS = ("AETNA", "HEALTHYBLUE", "SUNFLOWER", "UHC")
AS_OF = dt.date(2025, 6, 30)


def luhn_npi(base9: int) -> str:
    """A 10-digit NPI whose check digit is valid over the 80840 prefix."""
    digits = f"80840{base9:09d}"
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return f"{base9:09d}{(10 - total % 10) % 10}"


PEER = luhn_npi(123456789)
BILLING = luhn_npi(987654321)


@dataclass
class World:
    claims: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    ref: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {d.name: [] for d in REFERENCE_DATASETS}
    )

    def __post_init__(self) -> None:
        for payer in MCOS:
            self.ref["mco_implementation"].append(
                {
                    "payer": payer,
                    "implemented_date": "2023-01-01",
                    "reprocessing_completed_date": "",
                }
            )
        self.provider(PEER)
        self.provider(BILLING)

    def provider(self, npi: str, **overrides: str) -> None:
        row = {
            "npi": npi,
            "provider_name": "Peer Support Partners",
            "enrollment_start_date": "2020-01-01",
            "enrollment_end_date": "",
            "pps_start_date": "2022-06-01",
            "lived_experience_attested": "Y",
            "lived_experience_attested_date": "2022-06-01",
            "date_of_birth": "1970-01-01",
        }
        self.ref["providers"].append(row | overrides)

    def member(
        self,
        member_id: str,
        *,
        payer: str = "AETNA",
        dob: str = "2012-05-01",
        caregiver_dob: str = "1985-01-01",
    ) -> None:
        """A member with everything the policy asks for on file."""
        self.ref["members"].append({"member_id": member_id, "date_of_birth": dob})
        self.ref["enrollment"].append(
            {"member_id": member_id, "payer": payer, "start_date": "2020-01-01", "end_date": ""}
        )
        self.ref["treatment_plans"].append(
            {
                "plan_id": f"TP-{member_id[-4:]}",
                "member_id": member_id,
                "start_date": "2022-01-01",
                "end_date": "2026-12-31",
                "includes_pps": "Y",
                "signed_date": "2022-01-01",
                "practitioner_npi": luhn_npi(555000111),
                "practitioner_license_type": "LMHP",
            }
        )
        self.ref["consents"].append(
            {
                "member_id": member_id,
                "consent_type": "PPS",
                "signed_date": "2022-01-01",
                "revoked_date": "",
            }
        )
        self.ref["caregivers"].append(
            {
                "caregiver_id": f"CG-{member_id[-4:]}",
                "member_id": member_id,
                "relationship": "MOTHER",
                "date_of_birth": caregiver_dob,
                "medicaid_id": "",
                "start_date": "2010-01-01",
                "end_date": "",
            }
        )

    def line(self, payer: str, claim_id: str, member_id: str, **overrides: str) -> dict[str, str]:
        row = {
            "claim_id": claim_id,
            "claim_line_number": "1",
            "claim_frequency_code": "1",
            "original_claim_id": "",
            "member_id": member_id,
            "rendering_npi": PEER,
            "billing_npi": BILLING,
            "hcpcs_code": "H0038",
            "hcpcs_modifier_1": "",
            "hcpcs_modifier_2": "",
            "hcpcs_modifier_3": "",
            "hcpcs_modifier_4": "",
            "claim_line_start_date": "2023-05-02",
            "claim_line_end_date": "",
            "place_of_service_code": "11",
            "service_unit_quantity": "4",
            "paid_amount": "52.40",
            "paid_date": "2023-05-20",
            "session_id": "",
        } | overrides
        self.claims.setdefault(payer, []).append(row)
        return row

    def write(self, root: Path, claim_file: str = "claims.csv") -> Path:
        for payer, rows in self.claims.items():
            write_rows(root / "claims" / payer / claim_file, list(CLAIM_COLUMNS), rows)
        for dataset in REFERENCE_DATASETS:
            write_rows(
                root / "reference" / f"{dataset.name}.csv",
                list(dataset.columns),
                self.ref[dataset.name],
            )
        return root


def write_rows(
    path: Path, columns: list[str], rows: list[dict[str, str]], delimiter: str = ","
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=columns, delimiter=delimiter, extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)


def audit(world: World, tmp: Path, *, as_of: dt.date = AS_OF) -> pl.DataFrame:
    """Run the real audit (DuckDB file, Great Expectations) and return findings.csv."""
    input_dir = world.write(tmp / "input")
    run_audit(input_dir, tmp / "audit.duckdb", tmp / "out", as_of=as_of)
    return pl.read_csv(tmp / "out" / "findings.csv", infer_schema=False)


def flagged(findings: pl.DataFrame, rule_id: str) -> set[tuple[str, str]]:
    """(payer, claim_id) of the open findings of one rule."""
    rows = findings.filter((pl.col("rule_id") == rule_id) & (pl.col("status") == "open"))
    return set(zip(rows["payer"], rows["claim_id"], strict=True))


PPS = "h0038_parent_peer_support"  # the Parent Peer Support pack
CHW = "chw_community_health_worker"  # the Community Health Worker pack


def pack_audit(policy_id: str = PPS) -> PackAudit:
    """One pack as the audit runs it, from the project's own packs."""
    return pack_audits(discover(), [policy_id])[0]


def pack_copy(location: Path, policy_id: str = PPS, edit: Callable[[str], str] = str) -> Path:
    """A packs location holding a copy of one of the project's packs, its policy.toml passed
    through `edit`; point CLAIMS_AUDIT_POLICIES (or --policies) at it to use the copy."""
    pack = discover()[policy_id]
    folder = location / "policies" / policy_id
    shutil.copytree(pack.folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
    policy = folder / "policy.toml"
    policy.write_text(edit(policy.read_text(encoding="utf-8")), encoding="utf-8")
    (location / "expectations").mkdir(parents=True, exist_ok=True)
    shutil.copy(pack.suite_file, location / "expectations" / pack.suite_file.name)
    return location
