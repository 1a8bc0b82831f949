"""The engine's settings, where the nightly audit reads and writes, and its data files (SQL)."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

PACKAGE_DIR = Path(__file__).resolve().parent
SETTINGS_FILE = PACKAGE_DIR / "settings.toml"

# Kansas's time: the nightly DAG runs on it, and an audit's as-of date is the date there
AUDIT_TIMEZONE = "America/Chicago"


def project_path(*parts: str) -> Path:
    """A file shipped beside the package: inside the wheel under `_data`, else in the checkout."""
    bundled = PACKAGE_DIR.joinpath("_data", *parts)
    return bundled if bundled.exists() else PACKAGE_DIR.parent.joinpath(*parts)


def read_sql(name: str) -> str:
    """The text of `sql/<name>`; SQL lives in files so reviewers read it as SQL."""
    return project_path("sql", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class DateBounds:
    """Plausible dates (settings.toml, [dates]): outside them a row is quarantined."""

    earliest_service_date: dt.date
    service_days_after_as_of: int
    earliest_birth_date: dt.date
    open_end_from: dt.date


@dataclass(frozen=True)
class SnapshotGuard:
    """When a new reference snapshot is held back (settings.toml, [reference_snapshots])."""

    max_quarantined_share: float
    min_rows_share_of_current: float


@dataclass(frozen=True)
class NightlyBounds:
    """When a nightly run audits a pack in full after all (settings.toml, [nightly])."""

    full_audit_share: float


@dataclass(frozen=True)
class WorkflowSettings:
    """Deadlines and lookback of the findings' workflow (settings.toml, [workflow])."""

    reprocessing_days: int  # an MCO's allowance unless it has its own
    reprocessing_days_by_mco: dict[str, int]
    lookback_years: int | None  # None: no lookback

    def allowance(self, payer: str) -> int:
        """The days `payer` has to reprocess a finding from its notice."""
        return self.reprocessing_days_by_mco.get(payer, self.reprocessing_days)

    def lookback_start(self, as_of: dt.date) -> dt.date | None:
        """The earliest date of service inside the lookback on `as_of`; None: no lookback."""
        if self.lookback_years is None:
            return None
        year = as_of.year - self.lookback_years
        try:
            return as_of.replace(year=year)
        except ValueError:  # 29 February, in a year without it
            return as_of.replace(year=year, day=28)


@dataclass(frozen=True)
class Settings:
    dates: DateBounds
    reference_snapshots: SnapshotGuard
    lines_per_partition: int  # [partitions]: in-scope lines audited at a time
    nightly: NightlyBounds
    workflow: WorkflowSettings


def load_settings(path: Path | None = None) -> Settings:
    values = tomllib.loads((path or SETTINGS_FILE).read_text(encoding="utf-8"))
    dates, guard = values["dates"], values["reference_snapshots"]
    return Settings(
        dates=DateBounds(
            earliest_service_date=dates["earliest_service_date"],
            service_days_after_as_of=int(dates["service_days_after_as_of"]),
            earliest_birth_date=dates["earliest_birth_date"],
            open_end_from=dates["open_end_from"],
        ),
        reference_snapshots=SnapshotGuard(
            max_quarantined_share=float(guard["max_quarantined_share"]),
            min_rows_share_of_current=float(guard["min_rows_share_of_current"]),
        ),
        lines_per_partition=int(values["partitions"]["lines_per_partition"]),
        nightly=NightlyBounds(full_audit_share=float(values["nightly"]["full_audit_share"])),
        workflow=_workflow(values.get("workflow", {})),
    )


def _workflow(values: dict[str, object]) -> WorkflowSettings:
    by_mco = values.get("reprocessing_days_by_mco", {})
    lookback = values.get("lookback_years")
    assert isinstance(by_mco, dict)
    return WorkflowSettings(
        reprocessing_days=int(str(values.get("reprocessing_days", 90))),
        reprocessing_days_by_mco={str(k).upper(): int(v) for k, v in by_mco.items()},
        lookback_years=None if lookback is None else int(str(lookback)),
    )


@dataclass(frozen=True)
class Locations:
    """Where the nightly audit reads and writes, from the environment (see .env.example)."""

    landing: str  # the MCO drop zone: claims only
    reference: str  # the state's reference files, never from a drop zone
    db_file: str
    out_dir: str
    work_dir: str
    # reference files taken even outside the snapshot limits (as --accept-reference)
    accept_references: tuple[str, ...] = ()


def locations_from_env(environ: dict[str, str] | None = None) -> Locations:
    import os

    env = os.environ if environ is None else environ
    root = env.get("CLAIMS_AUDIT_HOME", "/opt/claims-audit")
    out_dir = env.get("CLAIMS_AUDIT_OUT", f"{root}/out")
    return Locations(
        landing=env.get("CLAIMS_AUDIT_LANDING", f"{root}/landing"),
        reference=env.get("CLAIMS_AUDIT_REFERENCE", f"{root}/reference"),
        db_file=env.get("CLAIMS_AUDIT_DB", f"{root}/db/claims_audit.duckdb"),
        out_dir=out_dir,
        work_dir=env.get("CLAIMS_AUDIT_WORK", f"{root}/work"),
        accept_references=tuple(
            name.strip()
            for name in env.get("CLAIMS_AUDIT_ACCEPT_REFERENCE", "").split(",")
            if name.strip()
        ),
    )


def run_date(logical_date: dt.datetime | None, run_after: dt.datetime | None) -> str:
    """The audit's as-of date: the Kansas date of the run's logical date (manual runs have
    none: when they ran). 03:00 UTC is still the evening before in Kansas."""
    moment = logical_date or run_after or dt.datetime.now(dt.UTC)
    return moment.astimezone(ZoneInfo(AUDIT_TIMEZONE)).date().isoformat()


def dag_run_work_dir(work_dir: str, run_id: str) -> Path:
    """The folder of one DAG run's work files under CLAIMS_AUDIT_WORK (member data: removed
    when the run ends). A run ID is one folder name, never a path that leads elsewhere."""
    if run_id in ("", ".", "..") or "/" in run_id or "\\" in run_id:
        raise ValueError("the DAG run ID cannot name a work folder")
    return Path(work_dir) / run_id
