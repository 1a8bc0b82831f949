"""The audit's identity: one hash of everything that decides a finding.

A nightly run builds on the last audit (only the claims its deliveries touched are audited
again) only when that audit had the same identity; any other run audits every line. The
identity covers:

- the policy parameters (the policy file's SHA-256);
- the expectation suite, the rule catalog as data;
- the code: the package's version and the SHA-256 of the source that computes facts,
  versions, scope and findings: every module of `pipelines/` except those that only present
  results or run the process (PRESENTATION_CODE; a new module counts until listed there),
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

from pipelines.audit.rules import suite_path
from pipelines.config import PACKAGE_DIR, SETTINGS_FILE, Policy, project_path

PACKAGE = "claims-audit"
FINDING_LIBRARIES = ("duckdb", "polars", "great-expectations")
# code that cannot change a finding: it writes outputs, talks to people or runs processes
# (a folder of pipelines/, or one module by its path there)
PRESENTATION_CODE = frozenset(
    {
        "airflow",
        "cli",
        "demo",
        "reports",
        "audit/data_docs.py",
        "audit/gx_process.py",
        "ingest/landing.py",
        "log/analyst.py",
        "metering.py",
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
    for module in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = module.relative_to(PACKAGE_DIR)
        if not {relative.parts[0], relative.as_posix()} & PRESENTATION_CODE:
            yield f"pipelines/{relative.as_posix()}", module
    sql_dir = project_path("sql")
    for query in sorted(sql_dir.rglob("*.sql")):
        relative = query.relative_to(sql_dir)
        if relative.parts[0] != REPORT_SQL:
            yield f"sql/{relative.as_posix()}", query
