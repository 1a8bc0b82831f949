"""The benchmark's machinery on a small input: the audit and the independent baseline agree.

The baseline (bench/baseline.sql) implements the rule catalogs separately from the pipeline,
so any finding that only one of them produces points at a bug in one of the two. Nothing is
timed. Each policy pack is checked in the mixed profile (one line in ten is the pack's) and
the policy-only one (most lines are), and after nights with and without resent references.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run_bench import Result, pack_rules, run_benchmark

CHW = "chw_community_health_worker"
H0038 = "h0038_parent_peer_support"


def assert_agreement(result: Result) -> None:
    for agreement in result.agreements:
        assert agreement.equal, agreement
    assert result.full.in_scope_lines == result.baseline_in_scope_lines
    assert result.full.in_scope_lines > 0
    # the generated input breaks every rule, so the comparison covers the pack's catalog
    assert {key.split()[0] for key in result.full.open_by_rule} == set(pack_rules(result.pack))


def test_audit_and_baseline_agree_before_and_after_a_nightly_delivery(tmp_path: Path) -> None:
    result = run_benchmark(20_000, tmp_path, nights=("day",))
    assert [a.label for a in result.agreements] == ["full run", "after one more day"]
    assert_agreement(result)
    assert result.day_lines > 0 and result.incremental.claim_rows_loaded == result.day_lines


def test_chw_policy_only_agrees_after_a_night_that_resends_every_reference_file(
    tmp_path: Path,
) -> None:
    result = run_benchmark(6_000, tmp_path, pack=CHW, in_scope_share=0.85, nights=("resend",))
    assert [a.label for a in result.agreements] == ["full run", "after references resent"]
    assert_agreement(result)
    assert result.pack_lines > 0.8 * result.lines
    assert result.reference_rows_changed > 0 and result.resend is not None


# the mixed profile needs more lines than the policy-only one for every rule to have findings
@pytest.mark.parametrize(("pack", "share", "lines"), [(CHW, 0.10, 15_000), (H0038, 0.85, 6_000)])
def test_audit_and_baseline_agree_on_each_pack_and_profile(
    tmp_path: Path, pack: str, share: float, lines: int
) -> None:
    result = run_benchmark(lines, tmp_path, pack=pack, in_scope_share=share, nights=())
    assert [a.label for a in result.agreements] == ["full run"]
    assert_agreement(result)
    assert result.pack_lines == pytest.approx(share * result.lines, rel=0.2)
