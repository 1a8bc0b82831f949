"""Run baseline.sql over an input folder: both policies' rules as one hand-tuned DuckDB script.

    python bench/baseline.py --input DIR [--out findings.csv]

The policies' codes and parameters come from their packs' policy.toml, as the audit reads
them. Prints one JSON line: wall seconds, and per policy its in-scope lines and findings per
"rule severity" (counts only).
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

SCRIPT = Path(__file__).with_name("baseline.sql")
POLICIES = Path(__file__).resolve().parent.parent / "policies"
# the script's variable prefix for each pack's codes and parameters
PACK_PREFIX = {"h0038_parent_peer_support": "pps", "chw_community_health_worker": "chw"}
FINDING_KEY = ["policy_id", "payer", "claim_id", "claim_line_number", "rule_id", "severity"]


def policy_variables() -> dict[str, Any]:
    """`<prefix>_codes` and `<prefix>_<parameter>` for each pack, from its policy.toml."""
    variables: dict[str, Any] = {}
    for pack, prefix in PACK_PREFIX.items():
        policy = tomllib.loads((POLICIES / pack / "policy.toml").read_text(encoding="utf-8"))
        variables[f"{prefix}_codes"] = list(policy["pack"]["codes"])
        for name, value in policy["parameters"].items():
            variables[f"{prefix}_{name}"] = value
    return variables


def run_baseline(input_dir: Path) -> tuple[pl.DataFrame, dict[str, int]]:
    """The baseline's findings (policy_id, payer, claim_id, claim_line_number, rule_id,
    severity) and the number of in-scope lines of each policy."""
    con = duckdb.connect()
    try:
        con.execute("set variable input_dir = $value", {"value": str(input_dir.resolve())})
        for name, value in policy_variables().items():
            # the name is a pack's parameter name from its policy.toml, never input data
            con.execute(f"set variable {name} = $value", {"value": value})
        con.execute(SCRIPT.read_text(encoding="utf-8")).fetchall()
        findings = con.sql("from findings order by all").pl()
        counts = con.execute("select policy_id, count(*) from in_scope group by all").fetchall()
    finally:
        con.close()
    in_scope = dict.fromkeys(PACK_PREFIX, 0) | {policy: int(n) for policy, n in counts}
    return findings.select(FINDING_KEY), in_scope


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
    policies = {
        policy: {
            "in_scope_lines": lines,
            "findings": {
                f"{rule} {severity}": count
                for rule, severity, count in findings.filter(pl.col("policy_id") == policy)
                .group_by("rule_id", "severity")
                .len()
                .iter_rows()
            },
        }
        for policy, lines in in_scope.items()
    }
    print(json.dumps({"seconds": round(seconds, 3), "policies": policies}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
