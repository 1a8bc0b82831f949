"""The analyst report: one self-contained HTML page on the reprocessing log, for state analysts.

Everything the page needs is inside the file: inline CSS, charts drawn here as inline SVG, no
scripts, fonts or images, and a Content-Security-Policy that forbids the browser every fetch,
so the page opens the same on a workstation without network access and reveals nothing to
anyone when opened. Every value from the data is HTML-escaped: payer names, claim IDs and
details come from MCO files and are hostile until proven otherwise.

The charts are aggregates (counts and amounts by MCO, rule, run and age); the table of the
newest findings shows member IDs, so the file is restricted data like findings.csv.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from pipelines.config import read_sql
from pipelines.metering import Stopwatch
from pipelines.reports.outputs import audited_policies, reprocessing_log
from pipelines.reports.policy_text import PolicyText, RuleText, rule_texts
from pipelines.reports.providers import PROVIDER_SUMMARY_FILE, provider_summary

log = logging.getLogger(__name__)

NEWEST_FINDINGS = 50
RUNS_LISTED = 24  # the trend chart shows every run; its table the latest ones
PROVIDERS_LISTED = 20  # provider_summary.csv has them all
# the workflow's counts of each MCO (reprocessing_log.sql), in the order the table shows them
WORKFLOW_COUNTS = [
    "lines_due",
    "amount_due",
    "lines_overdue",
    "amount_overdue",
    "overdue_0_30_days",
    "overdue_31_60_days",
    "overdue_61_90_days",
    "overdue_over_90_days",
    "lines_disputed",
    "lines_held",
    "lines_outside_lookback",
]
# (first day, last day or None for no end, label): days since first found, as of the report
AGE_BUCKETS: list[tuple[int, int | None, str]] = [
    (0, 30, "0-30 days"),
    (31, 90, "31-90 days"),
    (91, 180, "91-180 days"),
    (181, None, "181+ days"),
]
STATUS_WORDS = {
    "open": "open",
    "resolved_reprocessed": "resolved by reprocessing",
    "superseded": "superseded by a replacement claim",
    "resolved_data_corrected": "resolved, data corrected",
    "waived": "waived by an analyst",
}
# one colour per rule in catalog order: distinguishable on screen and on a colour printer;
# a policy with more rules than these gets hues spread by the golden angle for the rest
RULE_COLOURS = [
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#17becf",
    "#1f3a5f",
    "#8c8c3a",
]
OTHER_COLOUR = "#9a9a9a"  # a rule of the log that no pack describes any more
BAR_COLOUR = "#4e79a7"
# the browser may fetch nothing at all: styles are inline, there is nothing else
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

NEWEST_FINDINGS_SQL = """
select payer, claim_id, claim_line_number, member_id, rule_id, severity, detail,
    paid_amount, service_date, first_found_date, pre_implementation
from audit.findings
where status = 'open'
order by first_found_date desc, payer, claim_id, claim_line_number, rule_id
limit $limit
"""
MCOS_SQL = """
select payer, min(implemented_date), max(reprocessing_completed_date)
from ref.mco_implementation
group by payer
"""


# the report's numbers ---------------------------------------------------------------------


@dataclass(frozen=True)
class McoSummary:
    payer: str
    implemented_date: dt.date | None
    reprocessing_completed_date: dt.date | None
    open_findings: int
    open_lines: int
    amount_at_stake: Decimal
    pre_implementation_amount: Decimal
    findings_by_rule: dict[str, int]


@dataclass(frozen=True)
class PolicySummary:
    policy: PolicyText
    open_findings: int
    open_lines: int
    amount_at_stake: Decimal
    pre_implementation_amount: Decimal
    mcos: list[McoSummary]


@dataclass(frozen=True)
class RunCounts:
    run_id: int
    as_of: dt.date
    in_scope_lines: int
    findings_produced: int
    opened: int
    closed: int
    open_findings: int


@dataclass(frozen=True)
class ReportData:
    as_of: dt.date
    # open findings counted by policy, payer, rule and first found date (`findings`)
    open_findings: pl.DataFrame
    newest: pl.DataFrame  # the NEWEST_FINDINGS most recently first found, every column
    open_lines: int
    amount_at_stake: Decimal
    pre_implementation_amount: Decimal
    mcos: list[McoSummary]
    policies: list[PolicySummary]
    runs: list[RunCounts]
    ages: list[tuple[str, int]]
    rules: list[RuleText]
    status_counts: dict[str, int]
    workflow: pl.DataFrame  # one row per MCO: WORKFLOW_COUNTS
    providers: pl.DataFrame  # the PROVIDERS_LISTED first rows of the provider summary


def gather(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    providers: pl.DataFrame | None = None,
    log_rows: pl.DataFrame | None = None,
) -> ReportData:
    """Everything the page shows, from the reprocessing log, its history and the runs;
    `providers` is the provider summary, `log_rows` the reprocessing log as of `as_of`, when
    the caller has them already."""
    # counted in DuckDB: the page's memory does not grow with the log
    open_findings = con.sql(read_sql("reports/analyst_report_open_findings.sql")).pl()
    lines = con.sql(read_sql("reports/analyst_report_open_lines.sql")).pl()
    statuses = con.execute("select status, count(*) from audit.findings group by status")
    status_counts = {str(s): int(n) for s, n in statuses.fetchall()}
    return ReportData(
        as_of=as_of,
        open_findings=open_findings,
        newest=con.sql(NEWEST_FINDINGS_SQL, params={"limit": NEWEST_FINDINGS}).pl(),
        open_lines=_count(lines, "lines"),
        amount_at_stake=_amount(lines),
        pre_implementation_amount=_amount(lines.filter(pl.col("pre_implementation"))),
        mcos=_mco_summaries(con, open_findings, lines),
        policies=_policy_summaries(con, open_findings, lines),
        runs=_run_counts(con),
        ages=_ages(open_findings, as_of),
        rules=_rules(con, open_findings),
        status_counts=status_counts,
        workflow=(reprocessing_log(con, as_of) if log_rows is None else log_rows)
        .group_by("payer")
        .agg(pl.col(WORKFLOW_COUNTS).sum())
        .sort("payer"),
        providers=(provider_summary(con) if providers is None else providers).head(
            PROVIDERS_LISTED
        ),
    )


def _count(counted: pl.DataFrame, column: str = "findings") -> int:
    """The total of a count column: findings of open_findings, lines of the open lines."""
    return int(counted[column].sum())


def _policy_summaries(
    con: duckdb.DuckDBPyConnection, open_findings: pl.DataFrame, lines: pl.DataFrame
) -> list[PolicySummary]:
    summaries = []
    for policy in audited_policies(con):
        own = open_findings.filter(pl.col("policy_id") == policy.policy_id)
        own_lines = lines.filter(pl.col("policy_id") == policy.policy_id)
        summaries.append(
            PolicySummary(
                policy=policy,
                open_findings=_count(own),
                open_lines=_count(own_lines, "lines"),
                amount_at_stake=_amount(own_lines),
                pre_implementation_amount=_amount(own_lines.filter(pl.col("pre_implementation"))),
                mcos=[m for m in _mco_summaries(con, own, own_lines) if m.open_findings],
            )
        )
    return summaries


def _amount(lines: pl.DataFrame) -> Decimal:
    total = lines["amount_at_stake"].sum()  # decimal(18, 2) adds up exactly
    return Decimal(str(total)) if total is not None else Decimal(0)


def _mco_summaries(
    con: duckdb.DuckDBPyConnection, open_findings: pl.DataFrame, lines: pl.DataFrame
) -> list[McoSummary]:
    rows = con.execute(MCOS_SQL).fetchall()
    on_file = {str(p): (impl, done) for p, impl, done in rows if p is not None}
    # an MCO with findings but no implementation row still shows, and vice versa
    payers = sorted(set(on_file) | set(open_findings["payer"].to_list()))
    summaries = []
    for payer in payers:
        own = open_findings.filter(pl.col("payer") == payer)
        own_lines = lines.filter(pl.col("payer") == payer)
        by_rule = own.group_by("rule_id").agg(pl.col("findings").sum())
        implemented, completed = on_file.get(payer, (None, None))
        summaries.append(
            McoSummary(
                payer=payer,
                implemented_date=implemented,
                reprocessing_completed_date=completed,
                open_findings=_count(own),
                open_lines=_count(own_lines, "lines"),
                amount_at_stake=_amount(own_lines),
                pre_implementation_amount=_amount(own_lines.filter(pl.col("pre_implementation"))),
                findings_by_rule={str(r): int(n) for r, n in by_rule.iter_rows() if r is not None},
            )
        )
    # the MCOs with the most open findings first: that is where the work is
    return sorted(summaries, key=lambda m: (-m.open_findings, m.payer))


def _run_counts(con: duckdb.DuckDBPyConnection) -> list[RunCounts]:
    rows = con.execute(read_sql("reports/analyst_report_trend.sql")).fetchall()
    return [
        RunCounts(
            run_id=int(run_id),
            as_of=as_of,
            in_scope_lines=int(lines),
            findings_produced=int(produced),
            opened=int(opened),
            closed=int(closed),
            open_findings=int(open_after),
        )
        for run_id, as_of, lines, produced, opened, closed, open_after in rows
    ]


def _ages(open_findings: pl.DataFrame, as_of: dt.date) -> list[tuple[str, int]]:
    """Open findings by days since first found; a date after the report's counts as 0 days."""
    counts = dict.fromkeys((label for _, _, label in AGE_BUCKETS), 0)
    by_date = open_findings.group_by("first_found_date").agg(pl.col("findings").sum())
    for first_found, n in by_date.iter_rows():
        days = max((as_of - first_found).days, 0)
        for low, high, label in AGE_BUCKETS:
            if days >= low and (high is None or days <= high):
                counts[label] += int(n)
                break
    return list(counts.items())


def _rules(con: duckdb.DuckDBPyConnection, open_findings: pl.DataFrame) -> list[RuleText]:
    """Every audited policy's catalog (a rule shared by policies once), plus any rule ID in the
    log that no catalog has any more."""
    by_id: dict[str, RuleText] = {}
    for policy in audited_policies(con):
        for rule in rule_texts(policy.policy_id):
            by_id.setdefault(rule.rule_id, rule)
    catalog = list(by_id.values())
    known = set(by_id)
    unknown = sorted(set(open_findings["rule_id"].to_list()) - known)
    return catalog + [RuleText(r, "(not in the current rule catalog)", "", "") for r in unknown]


# formatting -------------------------------------------------------------------------------


class Markup(str):
    """HTML built here from escaped parts: inserted as it is."""


def esc(value: object) -> str:
    """Every value from the data goes through here before it reaches the page."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return ""
    return html.escape(str(value), quote=True)


def count_text(n: int) -> str:
    return f"{n:,}"


def money_text(amount: Decimal | float) -> str:
    value = Decimal(str(amount))
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def date_text(day: dt.date | None) -> str:
    return day.isoformat() if day else ""


def _short(label: str, width: int = 22) -> str:
    """Chart labels are cut to fit; the full text is in the tooltip and the tables."""
    return label if len(label) <= width else label[: width - 1] + "…"


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Iterable[int] = (),
    prose: Iterable[int] = (),
    whole: Iterable[int] = (),
    caption: str | None = None,
) -> str:
    """A table of values, escaped here: numeric columns align right, prose columns get room,
    whole columns (dates) never wrap."""
    kinds = (
        dict.fromkeys(whole, ' class="whole"')
        | dict.fromkeys(numeric, ' class="num"')
        | dict.fromkeys(prose, ' class="prose"')
    )

    def cell(tag: str, index: int, value: object) -> str:
        return f"<{tag}{kinds.get(index, '')}>{esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "\n".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    caption_html = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{caption_html}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


# charts: inline SVG, drawn from aggregates only -------------------------------------------

CHART_WIDTH = 760
LABEL_WIDTH = 170
VALUE_WIDTH = 90
ROW_HEIGHT = 26
BAR_HEIGHT = 17
AXIS_HEIGHT = 22


@dataclass(frozen=True)
class Segment:
    value: float
    colour: str
    tooltip: str


@dataclass(frozen=True)
class BarRow:
    label: str
    segments: list[Segment]
    total_text: str


def axis_ticks(top: float, *, whole: bool, count: int = 5) -> list[float]:
    """Tick values from 0 past `top`, in steps of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(step, 1)
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>'
    )


def bar_chart(
    rows: Sequence[BarRow], *, title: str, tick_text: Callable[[float], str], whole: bool
) -> str:
    """Horizontal bars, one per row, each a stack of segments, with a value axis on top.

    `whole`: the values are counts, so the axis steps by whole numbers."""
    top = max((sum(max(s.value, 0) for s in r.segments) for r in rows), default=0)
    ticks = axis_ticks(top, whole=whole)
    plot_width = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    scale = plot_width / ticks[-1]
    height = AXIS_HEIGHT + len(rows) * ROW_HEIGHT + 6
    parts = [_svg_open(CHART_WIDTH, height, title)]
    for tick in ticks:
        x = LABEL_WIDTH + tick * scale
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{AXIS_HEIGHT - 4}" x2="{x:.1f}" '
            f'y2="{height - 4}"/>'
            f'<text class="tick" x="{x:.1f}" y="{AXIS_HEIGHT - 8}" text-anchor="middle">'
            f"{esc(tick_text(tick))}</text>"
        )
    for i, row in enumerate(rows):
        y = AXIS_HEIGHT + i * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2
        text_y = y + BAR_HEIGHT - 4
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{text_y:.1f}" text-anchor="end">'
            f"<title>{esc(row.label)}</title>{esc(_short(row.label))}</text>"
        )
        x = float(LABEL_WIDTH)
        for segment in row.segments:
            if segment.value <= 0:
                continue
            width = segment.value * scale
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                f'fill="{esc(segment.colour)}"><title>{esc(segment.tooltip)}</title></rect>'
            )
            x += width
        parts.append(f'<text x="{x + 6:.1f}" y="{text_y:.1f}">{esc(row.total_text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(columns: Sequence[tuple[str, int]], *, title: str) -> str:
    """Vertical bars with their count on top: few categories in a fixed order."""
    height, left, bottom, top_margin = 220, 50, 28, 18
    plot_height = height - bottom - top_margin
    plot_width = CHART_WIDTH - left - 20
    ticks = axis_ticks(max((n for _, n in columns), default=0), whole=True)
    scale = plot_height / ticks[-1]
    slot = plot_width / max(len(columns), 1)
    parts = [_svg_open(CHART_WIDTH, height, title)]
    for tick in ticks:
        y = top_margin + plot_height - tick * scale
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{CHART_WIDTH - 20}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(_tick_count(tick))}</text>"
        )
    for i, (label, n) in enumerate(columns):
        bar_height = n * scale
        x = left + i * slot + slot * 0.2
        y = top_margin + plot_height - bar_height
        middle = x + slot * 0.3
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.6:.1f}" height="{bar_height:.1f}" '
            f'fill="{BAR_COLOUR}"><title>{esc(label)}: {esc(count_text(n))}</title></rect>'
            f'<text x="{middle:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
            f"{esc(count_text(n))}</text>"
            f'<text x="{middle:.1f}" y="{height - 8}" text-anchor="middle">{esc(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def trend_chart(runs: Sequence[RunCounts], *, title: str) -> str:
    """Open findings after each run, on a date axis: runs need not be evenly spaced."""
    points = sorted(runs, key=lambda r: (r.as_of, r.run_id))
    height, left, right, bottom, top_margin = 240, 50, 30, 30, 18
    plot_height = height - bottom - top_margin
    plot_width = CHART_WIDTH - left - right
    ticks = axis_ticks(max((r.open_findings for r in points), default=0), whole=True)
    first, last = points[0].as_of, points[-1].as_of
    span = (last - first).days

    def x_of(day: dt.date) -> float:
        return left + (plot_width * (day - first).days / span if span else plot_width / 2)

    def y_of(value: int) -> float:
        return top_margin + plot_height - value * plot_height / ticks[-1]

    parts = [_svg_open(CHART_WIDTH, height, title)]
    for tick in ticks:
        y = top_margin + plot_height - tick * plot_height / ticks[-1]
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{CHART_WIDTH - right}" '
            f'y2="{y:.1f}"/><text class="tick" x="{left - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{esc(_tick_count(tick))}</text>'
        )
    # date labels spread over the span; a single run is labelled once
    label_days = sorted({first + dt.timedelta(days=round(span * k / 4)) for k in range(5)})
    for day in label_days:
        anchor = "start" if day == first and span else "end" if day == last and span else "middle"
        parts.append(
            f'<text class="tick" x="{x_of(day):.1f}" y="{height - 8}" text-anchor="{anchor}">'
            f"{esc(date_text(day))}</text>"
        )
    coordinates = " ".join(f"{x_of(r.as_of):.1f},{y_of(r.open_findings):.1f}" for r in points)
    parts.append(f'<polyline class="trend" points="{coordinates}"/>')
    radius = 3.5 if len(points) <= 60 else 2
    for r in points:
        parts.append(
            f'<circle cx="{x_of(r.as_of):.1f}" cy="{y_of(r.open_findings):.1f}" r="{radius}">'
            f"<title>run {esc(r.run_id)} on {esc(date_text(r.as_of))}: "
            f"{esc(count_text(r.open_findings))} open findings</title></circle>"
        )
    latest = points[-1]
    parts.append(
        f'<text x="{x_of(latest.as_of):.1f}" y="{y_of(latest.open_findings) - 8:.1f}" '
        f'text-anchor="end">{esc(count_text(latest.open_findings))}</text></svg>'
    )
    return "".join(parts)


def _tick_count(value: float) -> str:
    return count_text(int(value))


def _tick_money(value: float) -> str:
    return f"${value:,.0f}" if value >= 10 or value == 0 else f"${value:,.2f}"


# the page ---------------------------------------------------------------------------------


def _section(title: str, body: str, note: str | None = None) -> str:
    note_html = f'<p class="muted">{esc(note)}</p>' if note else ""
    return f"<section>\n<h2>{esc(title)}</h2>\n{body}\n{note_html}</section>"


def _rule_colours(rules: Sequence[RuleText]) -> dict[str, str]:
    return {rule.rule_id: _colour(i) for i, rule in enumerate(rules)}


def _colour(index: int) -> str:
    if index < len(RULE_COLOURS):
        return RULE_COLOURS[index]
    return f"hsl({index * 137.5 % 360:.0f}, 55%, 42%)"


def _swatch(colour: str) -> Markup:
    return Markup(f'<span class="swatch" style="background:{esc(colour)}"></span>')


def _headline(data: ReportData) -> str:
    with_findings = sum(1 for m in data.mcos if m.open_findings)
    runs = data.runs
    run_note = (
        f"from {date_text(runs[0].as_of)} to {date_text(runs[-1].as_of)}"
        if runs
        else "no audit has run yet"
    )
    figures = [
        (
            "open-findings",
            count_text(_count(data.open_findings)),
            "open findings",
            f"on {count_text(data.open_lines)} claim lines",
        ),
        (
            "amount-at-stake",
            money_text(data.amount_at_stake),
            "amount at stake",
            f"paid on those lines, each counted once; {money_text(data.pre_implementation_amount)}"
            " paid before the MCO implemented the policy",
        ),
        (
            "mcos",
            count_text(with_findings),
            "MCOs with open findings",
            f"of {count_text(len(data.mcos))} MCOs on file",
        ),
        ("runs", count_text(len(runs)), "audit runs", run_note),
    ]
    cards = "\n".join(
        f'<div class="figure"><span class="value" id="{key}">{esc(value)}</span>'
        f'<span class="label">{esc(label)}</span><span class="note">{esc(note)}</span></div>'
        for key, value, label, note in figures
    )
    total = sum(data.status_counts.values())
    by_status = "; ".join(
        f"{count_text(data.status_counts[s])} {STATUS_WORDS.get(s, s)}"
        for s in [*STATUS_WORDS, *sorted(set(data.status_counts) - set(STATUS_WORDS))]
        if data.status_counts.get(s)
    )
    return (
        f'<section class="figures">{cards}</section>\n'
        f'<p class="muted">The reprocessing log holds {esc(count_text(total))} findings '
        f"across all runs{esc(': ' + by_status if by_status else '')}.</p>"
    )


def _by_policy(data: ReportData) -> str:
    """Every policy's open findings and amount at stake, and their total."""
    headers = ["Policy", "Open findings", "Lines", "Amount at stake", "Paid before implementation"]
    rows: list[list[object]] = [
        [
            p.policy.heading,
            count_text(p.open_findings),
            count_text(p.open_lines),
            money_text(p.amount_at_stake),
            money_text(p.pre_implementation_amount),
        ]
        for p in data.policies
    ]
    rows.append(
        [
            Markup("<strong>Total</strong>"),
            count_text(_count(data.open_findings)),
            count_text(data.open_lines),
            money_text(data.amount_at_stake),
            money_text(data.pre_implementation_amount),
        ]
    )
    note = (
        "A finding puts at stake the part of the paid amount it names (a unit cap: the units "
        "over the limit), else the whole paid amount; a line counts once, at its largest."
    )
    return _section("Open findings by policy", _table(headers, rows, numeric=range(1, 5)), note)


def _policy_section(summary: PolicySummary) -> str:
    """One policy: its open findings and amount at stake by MCO."""
    title = summary.policy.heading
    if not summary.mcos:
        return _section(title, "<p>No open findings.</p>")
    table = _table(
        ["MCO", "Open findings", "Lines", "Amount at stake", "Paid before implementation"],
        (
            [
                m.payer,
                count_text(m.open_findings),
                count_text(m.open_lines),
                money_text(m.amount_at_stake),
                money_text(m.pre_implementation_amount),
            ]
            for m in summary.mcos
        ),
        numeric=range(1, 5),
    )
    return _section(title, table)


def _by_mco_and_rule(data: ReportData, colours: dict[str, str]) -> str:
    title = "Open findings by MCO and rule"
    if _count(data.open_findings) == 0:
        return _section(title, "<p>No open findings.</p>")
    rule_ids = [r.rule_id for r in data.rules]
    rows = [
        BarRow(
            label=m.payer,
            segments=[
                Segment(
                    m.findings_by_rule.get(rule, 0),
                    colours.get(rule, OTHER_COLOUR),
                    f"{m.payer} · {rule}: {count_text(m.findings_by_rule.get(rule, 0))} open",
                )
                for rule in rule_ids
            ],
            total_text=count_text(m.open_findings),
        )
        for m in data.mcos
    ]
    chart = bar_chart(rows, title=title, tick_text=_tick_count, whole=True)
    used = [r for r in rule_ids if any(m.findings_by_rule.get(r) for m in data.mcos)]
    legend = "".join(f"<li>{_swatch(colours.get(r, OTHER_COLOUR))}{esc(r)}</li>" for r in used)
    matrix = _table(
        ["MCO", *used, "Total"],
        (
            [
                m.payer,
                *(
                    count_text(m.findings_by_rule[r]) if r in m.findings_by_rule else ""
                    for r in used
                ),
                count_text(m.open_findings),
            ]
            for m in data.mcos
        ),
        numeric=range(1, len(used) + 2),
    )
    figure = f'<figure>{chart}<figcaption><ul class="legend">{legend}</ul></figcaption></figure>'
    return _section(title, f"{figure}\n{matrix}")


def _amounts_by_mco(data: ReportData) -> str:
    title = "Amount at stake by MCO"
    rows = [
        BarRow(
            label=m.payer,
            segments=[
                Segment(
                    float(m.amount_at_stake),
                    BAR_COLOUR,
                    f"{m.payer}: {money_text(m.amount_at_stake)} on "
                    f"{count_text(m.open_lines)} lines",
                )
            ],
            total_text=money_text(m.amount_at_stake),
        )
        for m in sorted(data.mcos, key=lambda m: (-m.amount_at_stake, m.payer))
    ]
    chart = bar_chart(rows, title=title, tick_text=_tick_money, whole=False) if rows else ""
    table = _table(
        [
            "MCO",
            "Open findings",
            "Lines",
            "Amount at stake",
            "Paid before implementation",
            "Policy implemented",
            "Reprocessing completed",
        ],
        (
            [
                m.payer,
                count_text(m.open_findings),
                count_text(m.open_lines),
                money_text(m.amount_at_stake),
                money_text(m.pre_implementation_amount),
                date_text(m.implemented_date) or "not yet",
                date_text(m.reprocessing_completed_date),
            ]
            for m in data.mcos
        ),
        numeric=range(1, 5),
        whole=[5, 6],
    )
    note = (
        "Paid amounts of the lines with open findings; a line that breaks several rules "
        "counts once. Lines paid before the MCO implemented the policy (or by an MCO with no "
        "implementation date yet) are marked pre-implementation."
    )
    return _section(title, f"<figure>{chart}</figure>\n{table}", note)


def _workflow_section(data: ReportData) -> str:
    title = "Due, overdue, disputed and held"
    amounts = {"amount_due", "amount_overdue"}
    headers = [
        "MCO",
        "Due",
        "Amount due",
        "Overdue",
        "Amount overdue",
        "1 to 30 days",
        "31 to 60 days",
        "61 to 90 days",
        "Over 90 days",
        "Disputed",
        "Held",
        "Outside lookback",
    ]
    table = _table(
        headers,
        (
            [row["payer"]]
            + [
                money_text(row[c]) if c in amounts else count_text(int(row[c]))
                for c in WORKFLOW_COUNTS
            ]
            for row in data.workflow.iter_rows(named=True)
        ),
        numeric=range(1, len(headers)),
    )
    note = (
        "Open findings notified to their MCO: due (deadline not passed) and overdue, by days "
        "past the deadline (its due date, or the planned date of a corrected answer when that "
        "comes first). Disputed findings await a decision (claims-audit findings --status "
        "disputed). Held findings and those outside the lookback are in no MCO package and "
        "in no amount due."
    )
    return _section(title, table, note)


def _providers_section(data: ReportData) -> str:
    title = "Providers behind the findings"
    table = _table(
        [
            "NPI",
            "Role",
            "Provider",
            "Open findings",
            "Amount at stake",
            "Overdue",
            "Rules",
            "MCOs",
            "First found",
            "Last found",
            "Share of lines with findings",
            "Held",
        ],
        (
            [
                row["npi"],
                row["role"],
                row["provider_name"] or "",
                count_text(row["open_findings"]),
                money_text(row["amount_open"]),
                count_text(row["overdue_findings"]),
                row["rules"],
                row["mcos"],
                date_text(row["first_found_date"]),
                date_text(row["last_found_date"]),
                f"{row['share_of_lines_with_findings'] or 0:.0%}",
                "held" if row["held"] else "",
            ]
            for row in data.providers.iter_rows(named=True)
        ),
        numeric=[3, 4, 5, 10],
        whole=[8, 9],
    )
    note = (
        f"The {PROVIDERS_LISTED} billing and rendering providers with the most open findings "
        f"(then amount at stake); {PROVIDER_SUMMARY_FILE} lists every one. The share is of the "
        "provider's current in-scope lines (for Parent Peer Support, its paid H0038 lines)."
    )
    return _section(title, table, note)


def _trend(data: ReportData) -> str:
    title = "Open findings after each run"
    if not data.runs:
        return _section(title, "<p>No audit has run yet.</p>")
    chart = trend_chart(data.runs, title=title)
    listed = data.runs[-RUNS_LISTED:]
    table = _table(
        ["Run", "Run date", "Lines audited", "Findings produced", "Opened", "Closed", "Open after"],
        (
            [
                r.run_id,
                date_text(r.as_of),
                count_text(r.in_scope_lines),
                count_text(r.findings_produced),
                count_text(r.opened),
                count_text(r.closed),
                count_text(r.open_findings),
            ]
            for r in reversed(listed)
        ),
        numeric=[0, 2, 3, 4, 5, 6],
        whole=[1],
        caption=(
            f"The latest {len(listed)} of {len(data.runs)} runs"
            if len(listed) < len(data.runs)
            else None
        ),
    )
    note = (
        "Replayed from the log's history: opened counts first finds and reopenings, closed "
        "counts findings resolved or superseded by the run; waivers count from their date."
    )
    return _section(title, f"<figure>{chart}</figure>\n{table}", note)


def _ages_section(data: ReportData) -> str:
    title = f"Age of open findings on {date_text(data.as_of)}"
    chart = column_chart(data.ages, title=title)
    note = (
        "Days since the finding was first found; a finding on a replacement claim keeps the "
        "first-found date of the finding it superseded."
    )
    return _section(title, f"<figure>{chart}</figure>", note)


def _newest(data: ReportData) -> str:
    newest = data.newest
    title = "Newest open findings"
    if newest.height == 0:
        return _section(title, "<p>No open findings.</p>")
    table = _table(
        [
            "Payer",
            "Claim",
            "Line",
            "Member",
            "Rule",
            "Severity",
            "Detail",
            "Paid amount",
            "Pre-impl.",
            "Service date",
            "First found",
        ],
        (
            [
                row["payer"],
                row["claim_id"],
                row["claim_line_number"],
                row["member_id"],
                row["rule_id"],
                row["severity"],
                row["detail"],
                money_text(row["paid_amount"]),
                "yes" if row["pre_implementation"] else "",
                date_text(row["service_date"]),
                date_text(row["first_found_date"]),
            ]
            for row in newest.iter_rows(named=True)
        ),
        numeric=[2, 7],
        prose=[6],
        whole=[9, 10],
        caption=(
            f"The {count_text(newest.height)} most recently first found of "
            f"{count_text(_count(data.open_findings))} open findings; findings.csv has them all"
        ),
    )
    # long IDs from the data scroll sideways on screen rather than break mid-ID
    return _section(title, f'<div class="wide">{table}</div>')


def _rules_legend(data: ReportData, colours: dict[str, str]) -> str:
    by_rule = data.open_findings.group_by("rule_id").agg(pl.col("findings").sum())
    open_counts = {str(r): int(n) for r, n in by_rule.iter_rows()}
    table = _table(
        ["", "Rule", "Title", "Bulletin text", "Open findings"],
        (
            [
                _swatch(colours.get(r.rule_id, OTHER_COLOUR)),
                r.rule_id,
                r.title,
                r.bulletin_text,
                count_text(open_counts.get(r.rule_id, 0)),
            ]
            for r in data.rules
        ),
        numeric=[4],
        prose=[2, 3],
    )
    return _section("Rules", table)


STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; color: #1a1a1a; background: #fff; max-width: 1240px; margin: 0 auto;
  padding: 20px 28px 48px; }
h1 { font-size: 1.55rem; margin: .6rem 0 .1rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; padding-bottom: .2rem;
  border-bottom: 1px solid #c8c8c8; }
.restricted { border: 2px solid #9b1c1c; background: #fdf2f2; color: #6b1111;
  padding: .55rem .85rem; margin: 0 0 .8rem; }
.subtitle, .muted { color: #555; }
.muted { font-size: .85rem; }
.figures { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 1rem 0 .4rem; }
.figure { border: 1px solid #c8c8c8; border-radius: 4px; padding: .6rem .8rem; }
.figure .value { display: block; font-size: 1.65rem; font-weight: 700;
  font-variant-numeric: tabular-nums; }
.figure .label { display: block; font-weight: 600; }
.figure .note { display: block; color: #555; font-size: .8rem; }
figure { margin: 0 0 .5rem; }
svg.chart { display: block; width: 100%; max-width: 760px; height: auto; }
svg text { font-size: 12px; fill: #1a1a1a; }
svg text.tick { fill: #555; font-size: 11px; }
svg line.grid { stroke: #e2e2e2; stroke-width: 1; }
svg polyline.trend { fill: none; stroke: #4e79a7; stroke-width: 2; }
svg circle { fill: #4e79a7; }
.legend { list-style: none; margin: .3rem 0 0; padding: 0; display: flex; flex-wrap: wrap;
  gap: .2rem 1rem; font-size: .85rem; }
.swatch { display: inline-block; width: .85em; height: .85em; margin-right: .3em;
  border: 1px solid rgba(0, 0, 0, .25); vertical-align: -.1em; }
table { border-collapse: collapse; width: 100%; font-size: .82rem; margin: .4rem 0 .6rem; }
caption { text-align: left; color: #555; padding: .2rem 0; }
th, td { border-bottom: 1px solid #dcdcdc; padding: .25rem .45rem; text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
td.prose { min-width: 14em; }
.whole { white-space: nowrap; }
.wide { overflow-x: auto; }
th { background: #f1f1f1; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
footer { margin-top: 2.5rem; font-size: .8rem; color: #555; }
@media (max-width: 720px) { .figures { grid-template-columns: repeat(2, 1fr); } }
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  @page { size: landscape; margin: 12mm; }  /* the findings table has eleven columns */
  body { max-width: none; padding: 0; font-size: 10pt; }
  table { font-size: 7.5pt; }
  th, td { padding: .15rem .3rem; }
  .wide { overflow: visible; }
  figure, .figures, tr { break-inside: avoid; }
  h2 { break-after: avoid; }
  thead { display: table-header-group; }
}
"""


def render(data: ReportData) -> str:
    """The whole page as one string."""
    colours = _rule_colours(data.rules)
    latest = data.runs[-1].as_of if data.runs else None
    subtitle = (
        f"Reprocessing log as of {date_text(data.as_of)}"
        + (f" (latest run {date_text(latest)})" if latest else "")
        + (" · " + "; ".join(p.policy.heading for p in data.policies) if data.policies else "")
    )
    sections = [
        _headline(data),
        _by_policy(data),
        *(_policy_section(p) for p in data.policies),
        _by_mco_and_rule(data, colours),
        _amounts_by_mco(data),
        _workflow_section(data),
        _providers_section(data),
        _trend(data),
        _ages_section(data),
        _newest(data),
        _rules_legend(data, colours),
    ]
    title = f"Claims audit: analyst report {date_text(data.as_of)}"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(CONTENT_SECURITY_POLICY)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{esc(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<p class="restricted" role="note"><strong>Restricted data.</strong> This file contains Medicaid
member IDs (protected health information). Keep it, and any printout of it, with people cleared
for member data; do not e-mail or publish it.</p>
<header>
<h1>Claims audit: analyst report</h1>
<p class="subtitle">{esc(subtitle)}</p>
</header>
<main>
{chr(10).join(sections)}
</main>
<footer>Generated by claims-audit from the audit database. Charts show counts and amounts
only; member IDs appear only in the table of newest findings.</footer>
</body>
</html>
"""


def write_analyst_report(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    *,
    as_of: dt.date,
    providers: pl.DataFrame | None = None,
    log_rows: pl.DataFrame | None = None,
) -> Path:
    """Write `out_dir/analyst_report_<as_of>.html`: one page, no network, restricted data."""
    watch = Stopwatch()
    data = gather(con, as_of, providers, log_rows)
    path = out_dir / f"analyst_report_{as_of.isoformat()}.html"
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
    log.info(
        "analyst report: %d open findings, %d runs, written to %s in %.1f s",
        _count(data.open_findings),
        len(data.runs),
        path,
        watch.lap(),
    )
    return path
