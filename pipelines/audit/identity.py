"""A pack's audit identity: one hash of everything that decides its findings.

A nightly run builds on a pack's last audit (only the claims its deliveries touched are
audited again) only when that audit had the same identity; any other run audits every line
of the pack. Each pack has its own: a change to one pack re-audits that pack alone. The
identity covers:

- the pack (its policy.toml, facts.py and suite) and the general pack when it uses it;
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

from pipelines.audit.packs import Pack
from pipelines.config import PACKAGE_DIR, SETTINGS_FILE, project_path

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
        "audit/docs_views.py",
        "audit/gx_process.py",
        "ingest/landing.py",
        "log/analyst.py",
        "metering.py",
    }
)
REPORT_SQL = "reports"  # sql/reports/: what the outputs show, not what is found


def audit_identity(pack: Pack, general: Pack | None) -> str:
    """The SHA-256 of everything that decides the pack's findings (the module docstring)."""
    digest = hashlib.sha256()
    for name in (PACKAGE, *FINDING_LIBRARIES):
        digest.update(f"{name} {_version(name)}\n".encode())
    for source in (pack, general):
        if source is not None:
            digest.update(f"pack {source.id} {source.content_sha256()}\n".encode())
    for label, path in _engine_files():
        digest.update(f"{label} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:  # run from a checkout: the source hash still covers the code
        return "not installed"


def _engine_files() -> Iterator[tuple[str, Path]]:
    """The engine's files whose content decides findings, each labelled, in a fixed order."""
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
