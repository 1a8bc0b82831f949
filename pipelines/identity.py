"""The audit's identity: one hash of everything that decides a finding.

A nightly run builds on the last audit (only the claims its deliveries touched are audited
again) only when that audit had the same identity; any other run audits every line. The
identity covers:

- the policy parameters (the policy file's SHA-256);
- the expectation suite, the rule catalog as data;
- the code: the package's version and the SHA-256 of the source that computes facts,
  versions, scope and findings: every module of `pipelines/` except those that only present
  results or run the process (PRESENTATION_MODULES; a new module counts until listed there),
  every SQL file except the reports', and the engine settings;
- the versions of the libraries that compute findings (DuckDB, polars, Great Expectations).

So a changed rule, threshold or line of code re-audits everything on the next run, with or
without a version bump. It costs a few milliseconds: about 40 small files are read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pipelines.config import PACKAGE_DIR, SETTINGS_FILE, Policy, project_path
from pipelines.rules import suite_path

PACKAGE = "claims-audit"
FINDING_LIBRARIES = ("duckdb", "polars", "great-expectations")
# modules that cannot change a finding: they write outputs, talk to people or run processes
PRESENTATION_MODULES = frozenset(
    {
        "alerts.py",
        "analyst.py",
        "analyst_report.py",
        "cli.py",
        "commands.py",
        "data_docs.py",
        "gx_process.py",
        "landing.py",
        "metering.py",
        "reports.py",
        "synthetic.py",
    }
)
REPORT_SQL = "reports"  # sql/reports/: what the outputs show, not what is found


def audit_identity(policy: Policy, suite_file: Path | None = None) -> str:
    """The SHA-256 of everything that decides a finding (the module docstring lists it)."""
    digest = hashlib.sha256()
    for name in (PACKAGE, *FINDING_LIBRARIES):
        digest.update(f"{name} {_version(name)}\n".encode())
    digest.update(f"policy {policy.source_sha256}\n".encode())
    for label, path in _deciding_files(suite_file or suite_path()):
        digest.update(f"{label} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:  # run from a checkout: the source hash still covers the code
        return "not installed"


def _deciding_files(suite_file: Path) -> Iterator[tuple[str, Path]]:
    """The files whose content decides findings, each with a stable label, in a fixed order."""
    yield "suite", suite_file
    yield "settings", SETTINGS_FILE
    for module in sorted(PACKAGE_DIR.glob("*.py")):
        if module.name not in PRESENTATION_MODULES:
            yield f"pipelines/{module.name}", module
    sql_dir = project_path("sql")
    for query in sorted(sql_dir.rglob("*.sql")):
        relative = query.relative_to(sql_dir)
        if relative.parts[0] != REPORT_SQL:
            yield f"sql/{relative.as_posix()}", query
