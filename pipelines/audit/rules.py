"""Validate a pack's facts with its Great Expectations suite; failing rows become findings.

A pack's suite under `expectations/` is its rule catalog as data: one expectation per rule
(a rule with two severities has one per severity), each carrying its rule ID, severity,
bulletin sentence and
the template of the `detail` sentence; where that sentence can name another MCO's claims or
enrollment, an `mco_detail` template beside it says the same for the paying MCO's package.
An exception inside Great Expectations stops the run: it must never read as clean data.
Great Expectations skips a missing value (an in-set check passes a null), so every column
the suite reads runs under a not-null guard the engine adds to the suite: a null there stops
the run too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.audit.packs import Pack

KEY = ["payer", "claim_id", "claim_line_number"]
LINE = "line_key"  # the facts' row key: one integer per in-scope line
# the names GX gives the validated facts (its batch ID is "facts-in_scope_lines"), also in the
# Data Docs
DATA_SOURCE, ASSET, BATCH = "facts", "in_scope_lines", "nightly"
FINDING_SCHEMA = pl.Schema(
    {
        "payer": pl.String(),
        "claim_id": pl.String(),
        "claim_line_number": pl.Int32(),
        "rule_id": pl.String(),
        "severity": pl.String(),
        "detail": pl.String(),
        "mco_detail": pl.String(),  # what the paying MCO's package shows
        # less than the line's paid amount where only part of it breaks the rule (a unit
        # cap); null: the whole paid amount
        "amount_at_risk": pl.Decimal(18, 2),
    }
)


GUARD = "not_null"  # meta["guard"] of the expectations the engine adds: guards, not rules


class ValidationError(RuntimeError):
    """Great Expectations could not evaluate an expectation, or a column the suite reads has
    a missing value: the audit result is unknown."""


@dataclass(frozen=True)
class RuleCheck:
    rule_id: str
    severity: str
    detail_template: str
    mco_detail_template: str
    column: str
    amount_at_risk: str | None  # the fact column holding it, where the rule names one


@dataclass(frozen=True)
class RuleSet:
    """What one audit of a pack validates: the pack's suite, and the general pack's when the
    pack asks for it, as one suite with the parameters of both."""

    policy_id: str
    definition: dict[str, Any]
    parameters: dict[str, Any]  # as the packs' policy.toml give them

    def as_parameters(self) -> dict[str, Any]:
        """The values the suite references as `$PARAMETER`. A date goes to GX as midnight of
        its day: GX compares a datetime column with a datetime, never with a date or text."""
        return {
            name: dt.datetime.combine(value, dt.time()) if _is_date(value) else value
            for name, value in self.parameters.items()
        }

    def parameter_text(self, name: str) -> str:
        """A parameter as a finding's detail names it: a date as YYYY-MM-DD, a list joined."""
        value = self.parameters[name]
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value.isoformat() if _is_date(value) else str(value)


def _is_date(value: object) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def load_suite_definition(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        definition: dict[str, Any] = json.load(handle)
    return definition


def rule_set(pack: Pack, general: Pack | None) -> RuleSet:
    definition = load_suite_definition(pack.suite_file)
    parameters = dict(pack.parameters)
    if general is not None:
        shared = set(parameters) & set(general.parameters)
        if shared:
            raise ValueError(
                f"policy {pack.id} and {general.id} both name the parameter(s) {sorted(shared)}"
            )
        definition = {
            **definition,
            "expectations": [
                *definition["expectations"],
                *load_suite_definition(general.suite_file)["expectations"],
            ],
        }
        parameters = {**parameters, **general.parameters}
    return RuleSet(pack.id, definition, parameters)


def rule_checks(definition: dict[str, Any]) -> list[RuleCheck]:
    return [
        RuleCheck(
            rule_id=e["meta"]["rule_id"],
            severity=e["meta"]["severity"],
            detail_template=e["meta"]["detail"],
            mco_detail_template=mco_detail_template(e["meta"]),
            column=e["kwargs"]["column"],
            amount_at_risk=e["meta"].get("amount_at_risk"),
        )
        for e in definition["expectations"]
    ]


def mco_detail_template(meta: dict[str, Any]) -> str:
    """The detail an MCO's package shows: the full detail unless the rule has its own."""
    return str(meta.get("mco_detail", meta["detail"]))


def columns_checked(definition: dict[str, Any]) -> list[str]:
    """Every fact column a rule expectation reads, in suite order: checked columns and the
    columns of row conditions."""
    read: dict[str, None] = {}
    for expectation in definition["expectations"]:
        kwargs = expectation["kwargs"]
        read[kwargs["column"]] = None
        condition = kwargs.get("row_condition")
        if condition:
            read[condition["column"]["name"]] = None
    return list(read)


def columns_read(definition: dict[str, Any], columns: Sequence[str]) -> list[str]:
    """Of `columns`, those the suite reads: the line key, checked columns, row conditions."""
    read = {LINE, *columns_checked(definition)}
    return [c for c in columns if c in read]


def with_null_guards(definition: dict[str, Any]) -> dict[str, Any]:
    """The suite plus a not-null expectation on every column its rules read.

    Great Expectations skips nulls (an in-set or between check passes them, a row condition
    drops them), so a missing value would read as a pass; the facts fill every one, and these
    guards make sure of it. They are added here, not written in the suite file, so that a new
    rule cannot go unguarded.
    """
    guards = [
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": column},
            "meta": {
                "guard": GUARD,
                "column": column,
                "title": f"{column} has a value on every line (rules read it)",
            },
        }
        for column in columns_checked(definition)
    ]
    return {**definition, "expectations": [*definition["expectations"], *guards]}


def columns_for_findings(definition: dict[str, Any], columns: Sequence[str]) -> list[str]:
    """Of `columns`, those that validation turns into findings: what the suite reads, the
    line's claim key, the columns the details name and the amounts at risk (a fact file has
    about twice as many).
    """
    named = {
        field
        for expectation in definition["expectations"]
        for template in (expectation["meta"]["detail"], mco_detail_template(expectation["meta"]))
        for _, field, _, _ in string.Formatter().parse(template)
        if field
    }
    at_risk = {e["meta"].get("amount_at_risk") for e in definition["expectations"]} - {None}
    wanted = {*columns_read(definition, columns), *KEY, *named, *at_risk}
    return [c for c in columns if c in wanted]


def quiet_gx() -> None:
    """GX logs at INFO, one module with its own level: keep task logs to what matters."""
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Validation:
    """One validation of the facts: the findings, and GX's result of the whole suite (None
    when there was no line to validate)."""

    findings: pl.DataFrame
    result: Any


def validate(facts: pl.DataFrame, rules: RuleSet) -> Validation:
    """Run the suite and its null guards over the facts, in one validation, and turn the rows
    that fail a rule into findings.

    Raises ValidationError when an expectation could not be evaluated or a guard found nulls.
    """
    if facts.height == 0:
        return Validation(pl.DataFrame(schema=FINDING_SCHEMA), None)
    result = _run_suite(facts, rules)
    by_key = {
        _expectation_key(r.expectation_config.meta): r
        for r in result.results
        if r.expectation_config
    }
    definition = rules.definition
    checks = rule_checks(definition)
    rule_results = [by_key[_expectation_key(e["meta"])] for e in definition["expectations"]]
    for check, rule_result in zip(checks, rule_results, strict=True):
        _raise_on_exception(f"rule {check.rule_id} ({check.column})", rule_result)
    for column in columns_checked(definition):
        _stop_on_nulls(column, by_key[(GUARD, column)])
    return Validation(findings_from_results(facts, checks, rule_results, rules), result)


def evaluate(facts: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """The findings on the current facts: one row per (line, rule) with severity and detail."""
    return validate(facts, rules).findings


def _run_suite(facts: pl.DataFrame, rules: RuleSet) -> Any:
    quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    quiet_gx()  # again: importing GX configures its own loggers

    definition = rules.definition
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # the line key is the frame's index, so GX reports failing rows by key, in one column
    frame = facts.select(columns_read(definition, facts.columns)).to_pandas().set_index(LINE)
    batch = (
        context.data_sources.add_pandas(DATA_SOURCE)
        .add_dataframe_asset(ASSET)
        .add_batch_definition_whole_dataframe(BATCH)
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(**with_null_guards(definition))
    # every failing row's key and no value: the findings take the values from the facts
    return batch.validate(
        suite,
        expectation_parameters=rules.as_parameters(),
        result_format={
            "result_format": "COMPLETE",
            "exclude_unexpected_values": True,
            "partial_unexpected_count": 0,
            "return_unexpected_index_query": False,
        },
    )


def _expectation_key(meta: dict[str, Any] | None) -> tuple[str, str]:
    """An expectation's identity in the suite: its rule and severity (a rule may have one
    expectation per severity), or for a guard, its column."""
    meta = meta or {}
    if meta.get("guard") == GUARD:
        return GUARD, str(meta["column"])
    return str(meta.get("rule_id")), str(meta.get("severity"))


def _raise_on_exception(what: str, result: Any) -> None:
    info = result.exception_info or {}
    # flat ({"raised_exception": ...}) or nested per metric ({metric: {...}})
    flat = [info] if "raised_exception" in info else list(info.values())
    raised = [i for i in flat if isinstance(i, dict) and i.get("raised_exception")]
    if raised or result.success is None:
        message = raised[0].get("exception_message") if raised else "no result"
        raise ValidationError(f"Great Expectations failed on {what}: {message}")


def _stop_on_nulls(column: str, result: Any) -> None:
    """A null in a column a rule reads would pass that rule unseen: the run stops instead.
    The message gives the column and the count of lines, never a value."""
    _raise_on_exception(f"the not-null guard of {column}", result)
    if not result.success:
        missing = result.result.get("unexpected_count")
        raise ValidationError(
            f"{missing} line(s) of the facts have no value in {column}, which the rules read: "
            "a missing value cannot be audited (Great Expectations would pass it)"
        )


def failing_line_keys(check: RuleCheck, result: Any) -> list[int]:
    """The line keys GX reports as failing."""
    reported = result.result.get("unexpected_index_list")
    if reported is None:
        raise ValidationError(f"rule {check.rule_id}: no failing-row keys were returned")
    return line_keys(reported)


def line_keys(unexpected_index_list: list[Any]) -> list[int]:
    """The line keys of a result's unexpected_index_list, in either of the shapes GX returns
    them (one entry per row, or one entry listing them all)."""
    keys: list[int] = []
    for entry in unexpected_index_list:
        value = entry[LINE]
        keys.extend(value if isinstance(value, list) else [value])
    return [int(k) for k in keys]


def findings_from_results(
    facts: pl.DataFrame, checks: list[RuleCheck], results: list[Any], rules: RuleSet
) -> pl.DataFrame:
    frames = []
    for check, result in zip(checks, results, strict=True):
        if result.success:
            continue
        failing = failing_line_keys(check, result)
        flagged = facts.filter(pl.col(LINE).is_in(failing))
        if flagged.height != result.result.get("unexpected_count"):
            raise ValidationError(f"rule {check.rule_id}: failing rows and their count disagree")
        frames.append(
            flagged.select(
                *KEY,
                pl.lit(check.rule_id).alias("rule_id"),
                pl.lit(check.severity).alias("severity"),
                render_detail(check.detail_template, rules).alias("detail"),
                render_detail(check.mco_detail_template, rules).alias("mco_detail"),
                (pl.col(check.amount_at_risk) if check.amount_at_risk else pl.lit(None))
                .cast(pl.Decimal(18, 2))
                .alias("amount_at_risk"),
            )
        )
    if not frames:
        return pl.DataFrame(schema=FINDING_SCHEMA)
    return pl.concat(frames).cast(FINDING_SCHEMA).sort(*KEY, "rule_id")


def render_detail(template: str, rules: RuleSet) -> pl.Expr:
    """A `{column}` template as a polars expression; the pack's parameters fill their names."""
    parts: list[pl.Expr] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(pl.lit(literal))
        if field is None:
            continue
        if field in rules.parameters:
            parts.append(pl.lit(rules.parameter_text(field)))
        else:
            parts.append(pl.col(field).cast(pl.String).fill_null("(blank)"))
    return pl.concat_str(parts)
