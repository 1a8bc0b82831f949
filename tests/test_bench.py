"""The benchmark's machinery on a small input: the audit and the independent baseline agree.

The baseline (bench/baseline.sql) implements rules.md separately from the pipeline, so any
finding that only one of them produces points at a bug in one of the two. Nothing is timed.
"""

from __future__ import annotations

from pathlib import Path

from bench.run_bench import RULES, run_benchmark


def test_audit_and_baseline_agree_before_and_after_a_nightly_delivery(tmp_path: Path) -> None:
    result = run_benchmark(20_000, tmp_path)
    assert [a.label for a in result.agreements] == ["full run", "after one more day"]
    for agreement in result.agreements:
        assert agreement.equal, agreement
    assert result.full.in_scope_lines == result.baseline_in_scope_lines
    assert result.day_lines > 0 and result.incremental.claim_rows_loaded == result.day_lines
    # the generated input breaks every rule, so the comparison covers the whole catalog
    assert {key.split()[0] for key in result.full.open_by_rule} == set(RULES)
