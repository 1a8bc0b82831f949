"""Policy parameters and the locations of the project's data files (SQL, suites)."""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_POLICY_FILE = PACKAGE_DIR / "h0038_policy.toml"


def project_path(*parts: str) -> Path:
    """A file shipped beside the package: inside the wheel under `_data`, else in the checkout."""
    bundled = PACKAGE_DIR.joinpath("_data", *parts)
    return bundled if bundled.exists() else PACKAGE_DIR.parent.joinpath(*parts)


def read_sql(name: str) -> str:
    """The text of `sql/<name>`; SQL lives in files so reviewers read it as SQL."""
    return project_path("sql", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Policy:
    hcpcs_code: str
    group_modifier: str
    effective_date: dt.date
    group_size_max: int
    adult_age: int
    age_gap_years: int
    consent_type: str
    licensed_practitioner_types: tuple[str, ...]
    source_sha256: str

    def as_parameters(self) -> dict[str, object]:
        """The values an expectation suite may reference as `$PARAMETER`."""
        return {
            "effective_date": self.effective_date.isoformat(),
            "group_size_max": self.group_size_max,
            "adult_age": self.adult_age,
            "age_gap_years": self.age_gap_years,
        }


def load_policy(path: Path | None = None) -> Policy:
    source = (path or DEFAULT_POLICY_FILE).read_bytes()
    values = tomllib.loads(source.decode("utf-8"))["policy"]
    return Policy(
        hcpcs_code=str(values["hcpcs_code"]).strip().upper(),
        group_modifier=str(values["group_modifier"]).strip().upper(),
        effective_date=values["effective_date"],
        group_size_max=int(values["group_size_max"]),
        adult_age=int(values["adult_age"]),
        age_gap_years=int(values["age_gap_years"]),
        consent_type=str(values["consent_type"]).strip().upper(),
        licensed_practitioner_types=tuple(
            str(t).strip().upper() for t in values["licensed_practitioner_types"]
        ),
        source_sha256=hashlib.sha256(source).hexdigest(),
    )
