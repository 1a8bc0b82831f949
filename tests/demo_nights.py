"""The demo's two nights, audited once for every test that only reads them (see conftest.py)."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines.audit.run import run_audit
from pipelines.demo.synthetic import generate, generate_followup

FIRST_NIGHT = dt.date(2025, 6, 30)
SECOND_NIGHT = dt.date(2025, 10, 1)


@dataclass(frozen=True)
class DemoNights:
    """Where the two nights' files are. Tests read them and never write there."""

    first: Path  # truth.csv and out/ as the first night left them
    second: Path  # input/, audit.duckdb, truth.csv and out/ after the follow-up night

    @property
    def db_file(self) -> Path:
        return self.second / "audit.duckdb"


def audit_demo_nights(root: Path) -> DemoNights:
    """The synthetic input audited as of the first night, then its follow-up the second."""
    args = (root / "input", root / "audit.duckdb", root / "out")
    generate(root / "input", root / "truth.csv")
    run_audit(*args, as_of=FIRST_NIGHT)
    first = root / "first_night"
    shutil.copytree(root / "out", first / "out")
    shutil.copy(root / "truth.csv", first / "truth.csv")
    generate_followup(root / "input", root / "truth.csv")
    run_audit(*args, as_of=SECOND_NIGHT)
    return DemoNights(first, root)
