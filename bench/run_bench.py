"""The benchmark: generate an input, run the audit and the baseline, check they agree, time both.

    .venv/bin/python bench/run_bench.py [--lines N] [--pack ID] [--in-scope-share F]
                                        [--keep DIR] [--skip-baseline] [--json FILE]

Steps: generate N claim lines (bench/generate.py), the pack's lines being the given share of
them; run `claims-audit run` on them in a child process (wall time, peak memory, and the
stages of its run_summary.json); run the baseline (bench/baseline.py, the same rules as one
DuckDB script) the same way; check that the pipeline's open findings of the pack (its rules,
and GEN001/GEN002 over its lines) equal the baseline's; then add one day's delivery and run
the audit again on the same database (the nightly case), and check agreement again; then a
night that also resends every reference file with about 0.5% of its rows changed, timed and
checked the same way. Prints a table, then the numbers as one JSON line. Output never
carries a member ID.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

BENCH = Path(__file__).resolve().parent
EXPECTATIONS = BENCH.parent / "expectations"
PYTHON = sys.executable
AUDIT = str(Path(sys.executable).with_name("claims-audit"))
FINDING_KEY = ["policy_id", "payer", "claim_id", "claim_line_number", "rule_id", "severity"]
PACKS = ("h0038_parent_peer_support", "chw_community_health_worker")
MIXED_SHARE = 0.10
NIGHTS = ("day", "resend")


def pack_rules(pack: str) -> list[str]:
    """The pack's rule IDs in catalog order, from its expectation suite, then the general
    rules that run over its lines."""
    rules: list[str] = []
    for suite in (pack, "general_claims_integrity"):
        expectations = json.loads((EXPECTATIONS / f"{suite}.json").read_text(encoding="utf-8"))
        for expectation in expectations["expectations"]:
            rule = expectation["meta"]["rule_id"]
            if rule not in rules:
                rules.append(rule)
    return rules


@dataclass
class Measured:
    seconds: float
    peak_mb: float
    output: str


@dataclass
class Agreement:
    label: str
    pipeline: int
    baseline: int
    only_pipeline: int
    only_baseline: int

    @property
    def equal(self) -> bool:
        return self.only_pipeline == 0 and self.only_baseline == 0


@dataclass
class AuditRun:
    seconds: float
    peak_mb: float
    in_scope_lines: int
    claim_rows_loaded: int
    stages: list[dict]
    open_by_rule: dict[str, int]


@dataclass
class Result:
    pack: str
    in_scope_share: float
    lines: int
    pack_lines: int
    generate_seconds: float
    full: AuditRun
    incremental: AuditRun
    day_lines: int
    # the next night: one more day, and every reference file sent again with changes
    resend: AuditRun | None = None
    resend_day_lines: int = 0
    reference_rows_changed: int = 0
    baseline_seconds: float | None = None
    baseline_peak_mb: float | None = None
    baseline_in_scope_lines: int | None = None
    baseline_by_rule: dict[str, int] = field(default_factory=dict)
    resend_baseline_seconds: float | None = None
    resend_baseline_peak_mb: float | None = None
    agreements: list[Agreement] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return all(a.equal for a in self.agreements)

    @property
    def profile(self) -> str:
        kind = "mixed" if self.in_scope_share == MIXED_SHARE else "policy-only"
        return f"{kind} (in-scope share {self.in_scope_share:g})"


def run_measured(command: list[str], log: Path) -> Measured:
    """Run a child process; its wall time and peak resident memory.

    The peak is the larger of the child's own high-water mark and the sum over the child and
    its own children (the audit's Great Expectations process), both sampled every 50 ms. Not
    wait4's ru_maxrss: Linux carries the parent's high-water mark into a child it starts, so
    after this process has read millions of findings every child would seem to use as much.
    """
    with log.open("w", encoding="utf-8") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        peak_kb = 0
        while (waited := os.wait4(child.pid, os.WNOHANG))[0] == 0:
            own_peak_kb = _status_kb(child.pid, "VmHWM:")
            peak_kb = max(peak_kb, own_peak_kb, process_tree_rss_kb(child.pid))
            time.sleep(0.05)
        _, status, _ = waited
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{Path(command[1]).name} exited {child.returncode}; see {log}")
    return Measured(seconds, peak_kb / 1024, log.read_text(encoding="utf-8"))


def process_tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (0 where gone)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        total += _status_kb(current, "VmRSS:")
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # the process ended while it was read
    return total


def _status_kb(pid: int, field: str) -> int:
    """A kB figure of /proc/<pid>/status (0 once the process has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith(field)), 0)


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def generate(input_dir: Path, lines: int, pack: str, share: float, log: Path) -> tuple[dict, float]:
    command = [PYTHON, str(BENCH / "generate.py"), "--input", str(input_dir)]
    command += ["--lines", str(lines), "--pack", pack, "--in-scope-share", str(share)]
    measured = run_measured(command, log)
    return last_json(measured.output), measured.seconds


def add_day(input_dir: Path, log: Path, *, resend_references: bool = False) -> dict:
    """One more day's delivery, the folder's pack and profile (and the reference files)."""
    command = [PYTHON, str(BENCH / "generate.py"), "--input", str(input_dir), "--one-day"]
    command += ["--resend-references"] if resend_references else []
    return last_json(run_measured(command, log).output)


def run_audit(input_dir: Path, db: Path, out: Path, as_of: str, log: Path, pack: str) -> AuditRun:
    measured = run_measured(
        [AUDIT, "run", "--input", str(input_dir), "--db", str(db), "--out", str(out),
         "--as-of", as_of],
        log,
    )  # fmt: skip
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    opened = open_findings(out, pack)
    policy = next(p for p in summary["policies"] if p["policy_id"] == pack)
    # the audit resets the kernel's high-water mark at each stage, so a sample can miss a
    # stage's short peak: the run's peak is the largest of the sampled peaks and the stage
    # peaks
    peak = max([measured.peak_mb, *(s["peak_rss_mb"] for s in summary["stages"])])
    return AuditRun(
        seconds=measured.seconds,
        peak_mb=peak,
        in_scope_lines=policy["in_scope_lines"],
        claim_rows_loaded=summary["claim_rows_loaded"],
        stages=summary["stages"],
        open_by_rule={
            f"{rule} {severity}": count
            for rule, severity, count in opened.group_by("rule_id", "severity").len().iter_rows()
        },
    )


def open_findings(out: Path, pack: str) -> pl.DataFrame:
    """The pack's open findings: its rules, and the general rules over its lines."""
    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    return (
        findings.filter((pl.col("status") == "open") & (pl.col("policy_id") == pack))
        .select(FINDING_KEY)
        .with_columns(pl.col("claim_line_number").cast(pl.Int64))
    )


def run_baseline(input_dir: Path, findings_csv: Path, log: Path) -> tuple[Measured, dict]:
    measured = run_measured(
        [PYTHON, str(BENCH / "baseline.py"), "--input", str(input_dir), "--out", str(findings_csv)],
        log,
    )
    return measured, last_json(measured.output)


def compare(label: str, out: Path, baseline_csv: Path, pack: str, *, sample: int = 5) -> Agreement:
    """The pack's open findings in the pipeline against the baseline's; print a sample of keys
    (never a member ID) per rule when they differ."""
    pipeline = open_findings(out, pack)
    baseline = (
        pl.read_csv(baseline_csv, infer_schema=False)
        .filter(pl.col("policy_id") == pack)
        .with_columns(pl.col("claim_line_number").cast(pl.Int64))
    )
    only_pipeline = pipeline.join(baseline, on=FINDING_KEY, how="anti")
    only_baseline = baseline.join(pipeline, on=FINDING_KEY, how="anti")
    agreement = Agreement(
        label,
        pipeline.unique().height,
        baseline.unique().height,
        only_pipeline.height,
        only_baseline.height,
    )
    if not agreement.equal:
        print(f"DISAGREEMENT ({label}): {only_pipeline.height} findings only in the pipeline, "
              f"{only_baseline.height} only in the baseline")  # fmt: skip
        for side, rows in (("pipeline only", only_pipeline), ("baseline only", only_baseline)):
            for rule, group in rows.sort(FINDING_KEY).group_by("rule_id", maintain_order=True):
                print(f"  {side} {rule[0]}: {group.height} e.g.")
                for row in group.head(sample).iter_rows():
                    print("    " + " ".join(str(v) for v in row))
    return agreement


def run_benchmark(
    lines: int,
    work: Path,
    *,
    pack: str = PACKS[0],
    in_scope_share: float = MIXED_SHARE,
    skip_baseline: bool = False,
    nights: Sequence[str] = NIGHTS,
) -> Result:
    """Everything the benchmark does, in `work`; returns the numbers and the agreements.
    `nights`: the nightly runs after the full one, in this order: "day" (one more day's
    claims), "resend" (one more day's claims and every reference file resent, changed)."""
    work.mkdir(parents=True, exist_ok=True)
    input_dir, db = work / "input", work / "audit.duckdb"
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    stats, generate_seconds = generate(
        input_dir, lines, pack, in_scope_share, logs / "generate.log"
    )
    as_of = dt.date.fromisoformat(stats["delivery_date"]) + dt.timedelta(days=1)
    full = run_audit(
        input_dir, db, work / "out_full", as_of.isoformat(), logs / "audit_full.log", pack
    )
    result = Result(
        pack=pack,
        in_scope_share=in_scope_share,
        lines=stats["lines"],
        pack_lines=stats["pack_lines"],
        generate_seconds=generate_seconds,
        full=full,
        incremental=full,
        day_lines=0,
    )

    def check(label: str, out: str) -> tuple[Measured, dict]:
        measured, summary = run_baseline(
            input_dir, work / f"baseline_{out}.csv", logs / f"base_{out}.log"
        )
        result.agreements.append(
            compare(label, work / f"out_{out}", work / f"baseline_{out}.csv", pack)
        )
        return measured, summary["policies"][pack]

    if not skip_baseline:
        measured, summary = check("full run", "full")
        result.baseline_seconds, result.baseline_peak_mb = measured.seconds, measured.peak_mb
        result.baseline_in_scope_lines = summary["in_scope_lines"]
        result.baseline_by_rule = summary["findings"]
    # the nightly case: one more day's delivery into the same input and database
    if "day" in nights:
        day = add_day(input_dir, logs / "generate_day.log")
        result.day_lines = day["lines"]
        result.incremental = run_audit(
            input_dir, db, work / "out_day", next_day(day), logs / "audit_day.log", pack
        )
        if not skip_baseline:
            check("after one more day", "day")
    # the next night resends every reference file, each a little changed
    if "resend" in nights:
        night = add_day(input_dir, logs / "generate_resend.log", resend_references=True)
        result.resend_day_lines = night["lines"]
        result.reference_rows_changed = night["reference_rows_changed"]
        result.resend = run_audit(
            input_dir, db, work / "out_resend", next_day(night), logs / "audit_resend.log", pack
        )
        if not skip_baseline:
            measured, _ = check("after references resent", "resend")
            result.resend_baseline_seconds = measured.seconds
            result.resend_baseline_peak_mb = measured.peak_mb
    return result


def next_day(delivery: dict) -> str:
    """The as-of date of the run after a delivery: the day after its paid date."""
    return (dt.date.fromisoformat(delivery["delivery_date"]) + dt.timedelta(days=1)).isoformat()


# the report ---------------------------------------------------------------------------------


def _stage_rows(run: AuditRun) -> list[tuple[str, float, float]]:
    return [(f"    {s['stage']}", s["seconds"], s["peak_rss_mb"]) for s in run.stages]


def rule_keys(pack: str, *counts: dict[str, int]) -> list[str]:
    """ "RULE severity" keys in catalog order."""
    rules = pack_rules(pack)
    keys = {key for count in counts for key in count}
    return sorted(keys, key=lambda k: (rules.index(k.split()[0]), k))


def format_table(result: Result) -> str:
    full, day = result.full, result.incremental
    out = [
        f"claims-audit benchmark on {os.cpu_count()} CPUs: {result.pack}, {result.profile}",
        f"  claim lines        {result.lines:>12,}   (the pack's {result.pack_lines:,}; "
        f"generated in {result.generate_seconds:.1f} s)",
        f"  in-scope lines     {full.in_scope_lines:>12,}   (current lines of the pack audited)",
        "",
        f"  {'open findings':<22}{'pipeline':>10}{'baseline':>10}",
    ]
    for key in rule_keys(result.pack, full.open_by_rule, result.baseline_by_rule):
        base = result.baseline_by_rule.get(key, 0) if result.baseline_by_rule else None
        out.append(
            f"  {key:<22}{full.open_by_rule.get(key, 0):>10,}"
            f"{'-' if base is None else format(base, ','):>10}"
        )
    out += ["", f"  {'run':<26}{'wall s':>9}{'peak MB':>10}{'lines/s':>11}"]
    out.append(
        f"  {'full audit':<26}{full.seconds:>9.1f}{full.peak_mb:>10,.0f}"
        f"{result.lines / full.seconds:>11,.0f}"
    )
    rows = _stage_rows(full)
    if result.baseline_seconds is not None:
        rows.append(
            ("baseline (DuckDB SQL)", result.baseline_seconds, result.baseline_peak_mb or 0)
        )
    rows.append(("incremental (+1 day)", day.seconds, day.peak_mb))
    rows += _stage_rows(day)
    if result.resend:
        rows.append(("+1 day, references resent", result.resend.seconds, result.resend.peak_mb))
        rows += _stage_rows(result.resend)
        if result.resend_baseline_seconds is not None:
            rows.append(
                (
                    "baseline, references resent",
                    result.resend_baseline_seconds,
                    result.resend_baseline_peak_mb or 0,
                )
            )
    for label, seconds, peak in rows:
        out.append(f"  {label:<26}{seconds:>9.1f}{peak:>10,.0f}")
    out.append("")
    if result.baseline_seconds:
        out.append(f"  pipeline / baseline       {full.seconds / result.baseline_seconds:>8.1f}x")
    out.append(
        f"  incremental / full        {day.seconds / full.seconds:>8.2f}x"
        f"   (one day: {result.day_lines:,} lines)"
    )
    if result.resend:
        out.append(
            f"  resent night / full       {result.resend.seconds / full.seconds:>8.2f}x"
            f"   (one day: {result.resend_day_lines:,} lines; reference rows changed: "
            f"{result.reference_rows_changed:,})"
        )
    for a in result.agreements:
        verdict = "equal" if a.equal else "DIFFERENT"
        out.append(
            f"  agreement {a.label}: {verdict} (pipeline {a.pipeline:,}, baseline {a.baseline:,}, "
            f"only pipeline {a.only_pipeline:,}, only baseline {a.only_baseline:,})"
        )
    return "\n".join(out)


def as_json(result: Result) -> dict:
    record = asdict(result)
    record["agree"] = result.agree
    record["lines_per_second"] = round(result.lines / result.full.seconds)
    if result.baseline_seconds:
        record["pipeline_over_baseline"] = round(result.full.seconds / result.baseline_seconds, 2)
    record["incremental_over_full"] = round(result.incremental.seconds / result.full.seconds, 3)
    if result.resend:
        record["resend_over_full"] = round(result.resend.seconds / result.full.seconds, 3)
    record["profile"] = result.profile
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000, help="claim lines to generate")
    parser.add_argument("--pack", choices=PACKS, default=PACKS[0], help="whose lines to draw")
    parser.add_argument(
        "--in-scope-share",
        type=float,
        default=MIXED_SHARE,
        help="the pack's share of the claim lines (0.10 mixed, 0.85 policy-only)",
    )
    parser.add_argument("--keep", type=Path, help="work here and keep everything (else a temp dir)")
    parser.add_argument("--skip-baseline", action="store_true", help="time the pipeline only")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: the folder is not empty (a kept run would mix in)")
    options = {
        "pack": args.pack,
        "in_scope_share": args.in_scope_share,
        "skip_baseline": args.skip_baseline,
    }
    if args.keep:
        result = run_benchmark(args.lines, args.keep, **options)
    else:
        with tempfile.TemporaryDirectory(prefix="claims-audit-bench-") as work:
            result = run_benchmark(args.lines, Path(work), **options)
    print(format_table(result))
    record = as_json(result)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record))
    return 0 if result.agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
