"""Run baseline.sql over an input folder: the twelve rules as one hand-tuned DuckDB script.

    python bench/baseline.py --input DIR [--out findings.csv]

Prints one JSON line: wall seconds, in-scope lines and findings per "rule severity" (counts
only).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb
import polars as pl

SCRIPT = Path(__file__).with_name("baseline.sql")
FINDING_KEY = ["payer", "claim_id", "claim_line_number", "rule_id", "severity"]


def run_baseline(input_dir: Path) -> tuple[pl.DataFrame, int]:
    """The baseline's findings (payer, claim_id, claim_line_number, rule_id, severity) and
    the number of in-scope lines."""
    con = duckdb.connect()
    try:
        con.execute("set variable input_dir = $dir", {"dir": str(input_dir.resolve())})
        con.execute(SCRIPT.read_text(encoding="utf-8")).fetchall()
        findings = con.sql("from findings order by all").pl()
        in_scope = con.execute("select count(*) from in_scope").fetchone()
    finally:
        con.close()
    return findings.select(FINDING_KEY), int(in_scope[0]) if in_scope else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="write the findings here (CSV)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    findings, in_scope = run_baseline(args.input)
    seconds = time.perf_counter() - started
    if args.out:
        findings.write_csv(args.out)
    by_rule = {
        f"{rule} {severity}": count
        for rule, severity, count in findings.group_by("rule_id", "severity").len().iter_rows()
    }
    print(
        json.dumps({"seconds": round(seconds, 3), "in_scope_lines": in_scope, "findings": by_rule})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
