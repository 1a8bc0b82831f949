"""A third policy, added as docs/adding-a-policy.md says: a pack folder and a suite, nothing else.

The toy pack lives in a temporary folder outside the project (one parameter, one rule, one
expectation). The command line finds it with --policies, audits it beside the project's packs,
and its findings reach every output; no file of the project changes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import polars as pl

from tests.world import AS_OF, World

COMMAND = Path(sys.executable).with_name("claims-audit")
PROJECT = Path(__file__).resolve().parents[1]
TOY = "toy_units_cap"
MEMBER = "10000000001"

POLICY_TOML = """\
[pack]
id = "toy_units_cap"
title = "Toy units cap"
bulletin = "99001"
source = "a toy bulletin for the test"
codes = ["T1016"]

[parameters]
# "No more than 4 units a line."
max_units = 4
"""

FACTS_PY = '''\
"""Toy facts: the units billed on each line, for the one rule."""

import polars as pl

REFERENCES = ()


def build_facts(lines, reference, parameters):
    return lines.select(
        "line_key", pl.col("service_unit_quantity").cast(pl.Float64).alias("units_billed")
    )
'''

SUITE = {
    "name": TOY,
    "meta": {"policy": "toy bulletin 99001"},
    "expectations": [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "units_billed", "max_value": {"$PARAMETER": "max_units"}},
            "meta": {
                "rule_id": "TOY001",
                "title": "More units on a line than the toy bulletin allows",
                "severity": "violation",
                "bulletin_text": "No more than 4 units a line.",
                "flagged_when": "the line bills more than max_units units",
                "detail": "billed {units_billed} units, more than {max_units}",
            },
        }
    ],
}


def write_toy_pack(location: Path) -> Path:
    """The steps of docs/adding-a-policy.md: the pack's folder, then its suite."""
    folder = location / "policies" / TOY
    folder.mkdir(parents=True)
    (folder / "policy.toml").write_text(POLICY_TOML, encoding="utf-8")
    (folder / "facts.py").write_text(FACTS_PY, encoding="utf-8")
    (folder / "README.md").write_text("# Toy units cap\n\nTOY001: more than 4 units.\n")
    (location / "expectations").mkdir()
    (location / "expectations" / f"{TOY}.json").write_text(json.dumps(SUITE), encoding="utf-8")
    return location


def _project_files() -> dict[str, str]:
    roots = ("pipelines", "sql", "expectations", "policies", "dags")
    return {
        str(path.relative_to(PROJECT)): hashlib.sha256(path.read_bytes()).hexdigest()
        for root in roots
        for path in sorted((PROJECT / root).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_a_toy_pack_outside_the_project_reaches_every_output(tmp_path: Path) -> None:
    before = _project_files()
    packs = write_toy_pack(tmp_path / "packs")
    world = World()
    world.member(MEMBER)
    world.line("AETNA", "PPS1", MEMBER)  # a clean Parent Peer Support line beside them
    world.line("AETNA", "TOY1", MEMBER, hcpcs_code="T1016", service_unit_quantity="6")
    # the near miss: exactly at the limit
    world.line(
        "AETNA",
        "TOY2",
        MEMBER,
        hcpcs_code="T1016",
        service_unit_quantity="4",
        claim_line_start_date="2023-05-09",
    )
    input_dir = world.write(tmp_path / "input")
    out = tmp_path / "out"

    listed = _cli("policies", "--policies", packs)
    assert listed.returncode == 0, listed.stderr
    assert f"{TOY}  Toy units cap" in listed.stdout and "rules: 1 (TOY001)" in listed.stdout

    args = ("--input", input_dir, "--db", tmp_path / "a.duckdb", "--out", out)
    result = _cli("run", *args, "--as-of", AS_OF.isoformat(), "--policies", packs)
    assert result.returncode == 0, result.stderr
    assert f"Toy units cap ({TOY}): audited 2 current lines: 1 findings" in result.stdout

    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    toy = findings.filter(pl.col("policy_id") == TOY)
    assert toy.select("claim_id", "rule_id", "detail").rows() == [
        ("TOY1", "TOY001", "billed 6.0 units, more than 4")
    ]
    log = pl.read_csv(out / "reprocessing_log.csv", infer_schema=False)
    assert log.filter(pl.col("policy_id") == TOY).select("rule_id", "issue_description").rows() == [
        ("TOY001", "More units on a line than the toy bulletin allows")
    ]
    own = pl.read_csv(out / "mco" / "AETNA" / "findings.csv", infer_schema=False)
    assert ("TOY1", "TOY001") in own.select("claim_id", "rule_id").rows()
    book = openpyxl.load_workbook(out / "mco" / "AETNA" / "AETNA_claims_audit.xlsx")
    sheet_cells = {c for row in book["Findings 99001"].iter_rows(values_only=True) for c in row}
    assert {"TOY1", "TOY001"} <= sheet_cells
    assert "TOY001" in (out / f"analyst_report_{AS_OF.isoformat()}.html").read_text()
    assert (out / "data_docs" / TOY / "README-RESTRICTED.txt").exists()

    explained = _cli("explain", "--db", tmp_path / "a.duckdb", "--policies", packs, "AETNA", "TOY1")
    assert explained.returncode == 0, explained.stderr
    assert "TOY001" in explained.stdout and "BREAKS" in explained.stdout

    assert _project_files() == before, "adding a policy changes no file outside its pack"
