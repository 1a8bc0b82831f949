"""The benchmark: generate an input, run the audit and the baseline, check they agree, time both.

    .venv/bin/python bench/run_bench.py [--lines N] [--keep DIR] [--skip-baseline] [--json FILE]

Steps: generate N claim lines (bench/generate.py); run `claims-audit run` on them in a child
process (wall time, peak memory, and the stages of its run_summary.json); run the baseline
(bench/baseline.py, the same rules as one DuckDB script) the same way; check that the
pipeline's open findings equal the baseline's findings; then add one day's delivery and run
the audit again on the same database (the nightly case), and check agreement again.
Prints a table, then the numbers as one JSON line. Output never carries a member ID.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
AUDIT = str(Path(sys.executable).with_name("claims-audit"))
FINDING_KEY = ["payer", "claim_id", "claim_line_number", "rule_id", "severity"]
RULES = [f"PPS{i:03d}" for i in range(1, 11)] + ["GEN001", "GEN002"]


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
    lines: int
    h0038_lines: int
    generate_seconds: float
    full: AuditRun
    incremental: AuditRun
    day_lines: int
    baseline_seconds: float | None = None
    baseline_peak_mb: float | None = None
    baseline_in_scope_lines: int | None = None
    baseline_by_rule: dict[str, int] = field(default_factory=dict)
    agreements: list[Agreement] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return all(a.equal for a in self.agreements)


def run_measured(command: list[str], log: Path) -> Measured:
    """Run a child process; its wall time and peak resident memory.

    The peak is the larger of the child's own (wait4) and the sum over the child and its
    own children (the audit's Great Expectations process), sampled every 50 ms.
    """
    with log.open("w", encoding="utf-8") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        tree_peak_kb = 0
        while (waited := os.wait4(child.pid, os.WNOHANG))[0] == 0:
            tree_peak_kb = max(tree_peak_kb, process_tree_rss_kb(child.pid))
            time.sleep(0.05)
        _, status, usage = waited
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{Path(command[1]).name} exited {child.returncode}; see {log}")
    peak_mb = max(usage.ru_maxrss, tree_peak_kb) / 1024
    return Measured(seconds, peak_mb, log.read_text(encoding="utf-8"))


def process_tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (0 where gone)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(
                (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")),
                0,
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # the process ended while it was read
    return total


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def generate(
    input_dir: Path, lines: int, log: Path, *, one_day: bool = False
) -> tuple[dict, float]:
    command = [PYTHON, str(BENCH / "generate.py"), "--input", str(input_dir)]
    command += ["--one-day"] if one_day else ["--lines", str(lines)]
    measured = run_measured(command, log)
    return last_json(measured.output), measured.seconds


def run_audit(input_dir: Path, db: Path, out: Path, as_of: str, log: Path) -> AuditRun:
    measured = run_measured(
        [AUDIT, "run", "--input", str(input_dir), "--db", str(db), "--out", str(out),
         "--as-of", as_of],
        log,
    )  # fmt: skip
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    opened = open_findings(out)
    # the audit resets the kernel's high-water mark at each stage, so the child's own peak
    # covers only its last stage: the run's peak is the largest of the sampled peak over all
    # its processes and the stage peaks
    peak = max([measured.peak_mb, *(s["peak_rss_mb"] for s in summary["stages"])])
    return AuditRun(
        seconds=measured.seconds,
        peak_mb=peak,
        in_scope_lines=summary["in_scope_lines"],
        claim_rows_loaded=summary["claim_rows_loaded"],
        stages=summary["stages"],
        open_by_rule={
            f"{rule} {severity}": count
            for rule, severity, count in opened.group_by("rule_id", "severity").len().iter_rows()
        },
    )


def open_findings(out: Path) -> pl.DataFrame:
    findings = pl.read_csv(out / "findings.csv", infer_schema=False)
    return (
        findings.filter(pl.col("status") == "open")
        .select(FINDING_KEY)
        .with_columns(pl.col("claim_line_number").cast(pl.Int64))
    )


def run_baseline(input_dir: Path, findings_csv: Path, log: Path) -> tuple[Measured, dict]:
    measured = run_measured(
        [PYTHON, str(BENCH / "baseline.py"), "--input", str(input_dir), "--out", str(findings_csv)],
        log,
    )
    return measured, last_json(measured.output)


def compare(label: str, out: Path, baseline_csv: Path, *, sample: int = 5) -> Agreement:
    """Pipeline open findings against the baseline's; print a sample per rule when they differ."""
    pipeline = open_findings(out)
    baseline = pl.read_csv(baseline_csv, infer_schema=False).with_columns(
        pl.col("claim_line_number").cast(pl.Int64)
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


def run_benchmark(lines: int, work: Path, *, skip_baseline: bool = False) -> Result:
    """Everything the benchmark does, in `work`; returns the numbers and the agreements."""
    work.mkdir(parents=True, exist_ok=True)
    input_dir, db = work / "input", work / "audit.duckdb"
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    stats, generate_seconds = generate(input_dir, lines, logs / "generate.log")
    as_of = dt.date.fromisoformat(stats["delivery_date"]) + dt.timedelta(days=1)
    full = run_audit(input_dir, db, work / "out_full", as_of.isoformat(), logs / "audit_full.log")
    result = Result(
        lines=stats["lines"],
        h0038_lines=stats["h0038_lines"],
        generate_seconds=generate_seconds,
        full=full,
        incremental=full,
        day_lines=0,
    )
    if not skip_baseline:
        measured, summary = run_baseline(input_dir, work / "baseline_full.csv", logs / "base.log")
        result.baseline_seconds, result.baseline_peak_mb = measured.seconds, measured.peak_mb
        result.baseline_in_scope_lines = summary["in_scope_lines"]
        result.baseline_by_rule = summary["findings"]
        result.agreements.append(compare("full run", work / "out_full", work / "baseline_full.csv"))
    # the nightly case: one more day's delivery into the same input and database
    day, _ = generate(input_dir, lines, logs / "generate_day.log", one_day=True)
    result.day_lines = day["lines"]
    day_as_of = (dt.date.fromisoformat(day["delivery_date"]) + dt.timedelta(days=1)).isoformat()
    result.incremental = run_audit(
        input_dir, db, work / "out_day", day_as_of, logs / "audit_day.log"
    )
    if not skip_baseline:
        run_baseline(input_dir, work / "baseline_day.csv", logs / "base_day.log")
        result.agreements.append(
            compare("after one more day", work / "out_day", work / "baseline_day.csv")
        )
    return result


# the report ---------------------------------------------------------------------------------


def _stage_rows(run: AuditRun) -> list[tuple[str, float, float]]:
    return [(f"    {s['stage']}", s["seconds"], s["peak_rss_mb"]) for s in run.stages]


def rule_keys(*counts: dict[str, int]) -> list[str]:
    """ "RULE severity" keys in catalog order."""
    keys = {key for count in counts for key in count}
    return sorted(keys, key=lambda k: (RULES.index(k.split()[0]), k))


def format_table(result: Result) -> str:
    full, day = result.full, result.incremental
    out = [
        f"claims-audit benchmark on {os.cpu_count()} CPUs",
        f"  claim lines        {result.lines:>12,}   (H0038 {result.h0038_lines:,}; "
        f"generated in {result.generate_seconds:.1f} s)",
        f"  in-scope lines     {full.in_scope_lines:>12,}   (current H0038 lines audited)",
        "",
        f"  {'open findings':<22}{'pipeline':>10}{'baseline':>10}",
    ]
    for key in rule_keys(full.open_by_rule, result.baseline_by_rule):
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
    for label, seconds, peak in rows:
        out.append(f"  {label:<26}{seconds:>9.1f}{peak:>10,.0f}")
    out.append("")
    if result.baseline_seconds:
        out.append(f"  pipeline / baseline       {full.seconds / result.baseline_seconds:>8.1f}x")
    out.append(
        f"  incremental / full        {day.seconds / full.seconds:>8.2f}x"
        f"   (one day: {result.day_lines:,} lines)"
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
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000, help="claim lines to generate")
    parser.add_argument("--keep", type=Path, help="work here and keep everything (else a temp dir)")
    parser.add_argument("--skip-baseline", action="store_true", help="time the pipeline only")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: the folder is not empty (a kept run would mix in)")
    if args.keep:
        result = run_benchmark(args.lines, args.keep, skip_baseline=args.skip_baseline)
    else:
        with tempfile.TemporaryDirectory(prefix="claims-audit-bench-") as work:
            result = run_benchmark(args.lines, Path(work), skip_baseline=args.skip_baseline)
    print(format_table(result))
    record = as_json(result)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record))
    return 0 if result.agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
