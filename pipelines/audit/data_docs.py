"""Great Expectations Data Docs for a run's validation: the suite's verdict, rule by rule.

The nightly audit validates each partition of its facts once (rules.validate), keeping every
failing line key for the findings. Beside the findings it writes GX's result as the Data Docs
keep it (`write_docs_result`): the SUMMARY result format's shape, counts and at most 20
example failing rows per rule, never the full list. The docs stage stores those results in a
file-mode context rooted in the docs folder, one per partition (pipelines/claims/partitions.py),
and builds the site there. Results accumulate run after run in that folder; the site's index
lists the latest ones.

Cost, measured with GX already imported, on the demo's 870 Parent Peer Support lines: 0.6 s
for a new folder, 0.3 to 0.4 s a night after that (the validation itself: 0.6 to 1.0 s). The
folder holds about 4.6 MB of site assets plus about 30 KB per stored result.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import polars as pl

from pipelines.audit.rules import (
    ASSET,
    DATA_SOURCE,
    LINE,
    RuleSet,
    line_keys,
    quiet_gx,
    with_null_guards,
)

log = logging.getLogger(__name__)

SITE_NAME = "local_site"
EXAMPLES = 20  # failing rows a stored result shows of each rule (GX's SUMMARY format keeps 20)
RESTRICTED_NOTE = "README-RESTRICTED.txt"
VIEWS = "pipelines.audit.docs_views"
INDEXED_RESULTS = 90  # the latest validation results (one per partition a night) on the index
RESTRICTED_TEXT = """\
RESTRICTED: PROTECTED HEALTH INFORMATION (PHI)

This folder holds Great Expectations Data Docs and the validation results behind them for
one policy of the claims audit (the folder's name is the policy's ID). They are
member-level data: for each rule and night, the number of failing claim lines and up to 20
failing lines, each by its row number in that night's facts with the value that failed (a
member's group size, care status, age check...). Handle this folder as PHI: keep it on the
restricted share with the audit database and the --out folder; do not e-mail or publish it.

The pages load their stylesheets, scripts and logo from public CDNs (jsDelivr, cdnjs,
unpkg, Bootstrap CDN, code.jquery.com, an Amazon S3 bucket of Great Expectations) when
opened in a browser; the logo request carries this folder's random data context ID, and no
audit data. Without internet access the pages still open, with plain styling. The analyst
report (analyst_report_<date>.html in --out) loads nothing from the network.

The validation results are under gx/uncommitted/validations/; the site is under
gx/uncommitted/data_docs/local_site/ (open index.html).
"""


@dataclass(frozen=True)
class ValidatedPartition:
    """A partition's result as write_docs_result stored it, and its dates of service."""

    result_file: Path
    dates_of_service: str


def write_docs_result(result: Any, facts: pl.DataFrame, path: Path) -> None:
    """Write GX's result of a partition (rules.validate: every failing key, no value) as the
    Data Docs keep it, in GX's own JSON: per rule the SUMMARY format's examples, the first 20
    failing rows' keys and values and the 20 most frequent failing values with their counts,
    taken from the facts that were validated. `result` itself loses its full lists."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )

    for rule_result in result.results:
        found = rule_result.result
        failing = line_keys(found.pop("unexpected_index_list", None) or [])
        found.pop("unexpected_index_column_names", None)
        found.update(_examples(facts, rule_result.expectation_config.kwargs["column"], failing))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ExpectationSuiteValidationResultSchema().dumps(result), encoding="utf-8")


def _examples(facts: pl.DataFrame, column: str, failing: list[int]) -> dict[str, list[Any]]:
    rows = facts.filter(pl.col(LINE).is_in(failing)).select(LINE, column)
    counts = (
        rows[column].value_counts(name="count").sort(["count", column], descending=[True, False])
    )
    first = rows.head(EXAMPLES)
    return {
        "partial_unexpected_list": first[column].to_list(),
        "partial_unexpected_index_list": first[LINE].to_list(),
        "partial_unexpected_counts": [
            {"value": value, "count": count} for value, count in counts.head(EXAMPLES).iter_rows()
        ],
    }


def build_data_docs(
    partitions: Iterable[ValidatedPartition],
    rules: RuleSet,
    docs_dir: Path,
    *,
    as_of: dt.date | None = None,
) -> Path:
    """Store each partition's result in a file-mode context in `docs_dir`, named by the night
    and the partition's dates of service, then build the docs.

    Returns the site's index.html. `as_of` names the validation runs in the docs (default:
    the day they are stored).
    """
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / RESTRICTED_NOTE).write_text(RESTRICTED_TEXT, encoding="utf-8")

    quiet_gx()
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    quiet_gx()  # again: importing GX configures its own loggers

    context = gx.get_context(mode="file", project_root_dir=docs_dir)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    _configure_site(context)
    substitutes_variables = bool(context.variables.config_variables_file_path)
    # GX reads that file again on every lookup of a setting (a tenth of a small night's
    # build); nothing here names a variable, and a context reads the setting when it opens
    context.variables.config.config_variables_file_path = None
    context.variables.save()
    if substitutes_variables:  # a new folder: open it again, as later runs will
        context = gx.get_context(mode="file", project_root_dir=docs_dir)

    suite = context.suites.add_or_update(gx.ExpectationSuite(**with_null_guards(rules.definition)))
    suite_page = ExpectationSuiteIdentifier(name=suite.name)
    new_pages: list[Any] = [suite_page]
    night = (as_of or dt.date.today()).isoformat()
    stored = ExpectationSuiteValidationResultSchema()
    failing = 0
    for partition in partitions:
        result = stored.loads(partition.result_file.read_text(encoding="utf-8"))
        run_id = RunIdentifier(
            run_name=f"{night}, DOS {partition.dates_of_service}",
            run_time=dt.datetime.now(dt.UTC),
        )
        # as GX's own validation runs name a stored result
        result.meta["run_id"] = run_id
        result.meta["validation_time"] = run_id.run_time
        page = ValidationResultIdentifier(
            expectation_suite_identifier=suite_page,
            run_id=run_id,
            batch_identifier=f"{DATA_SOURCE}-{ASSET}",
        )
        context.validation_results_store.store_validation_results(result, page, suite_page)
        new_pages.append(page)
        failing += not result.success
    # render only tonight's pages once the site exists: a full build re-renders every result
    # ever stored, which grows with each nightly run
    site_exists = _path_from_file_url(_site_index_url(context)).is_file()
    urls = context.build_data_docs(
        site_names=[SITE_NAME], resource_identifiers=new_pages if site_exists else None
    )
    index = _path_from_file_url(urls[SITE_NAME])
    log.info(
        "Data Docs for %d partition(s) (%s) at %s",
        len(new_pages) - 1,
        f"some rules fail in {failing}" if failing else "all rules pass",
        index,
    )
    return index


def dates_of_service(facts: pl.DataFrame) -> str:
    """The first and last dates of service of a partition's facts, as its docs name it."""
    if facts.height == 0:
        return "none"
    dates = pl.col("service_date").dt.to_string("%Y-%m-%d")
    first, last = facts.select(dates.min().alias("first"), dates.max().alias("last")).row(0)
    return str(first) if first == last else f"{first} to {last}"


def _configure_site(context: Any) -> None:
    """No how-to buttons (links to GX tutorials, noise for the state's analysts), an index
    of the latest results only (it reads every result it lists, so an unbounded one would slow
    each night a little more), and GX's page views with their templates compiled once a
    process (docs_views.py)."""
    sites = context.variables.data_docs_sites or {}
    site = sites.get(SITE_NAME)
    if site is None:
        return
    site["show_how_to_buttons"] = False
    index_builder = site.setdefault("site_index_builder", {"class_name": "DefaultSiteIndexBuilder"})
    index_builder["validation_results_limit"] = INDEXED_RESULTS
    index_builder["view"] = {"module_name": VIEWS, "class_name": "IndexPageView"}
    sections = site.setdefault("site_section_builders", {})
    for section in ("expectations", "validations", "profiling"):  # GX's sections
        sections.setdefault(section, {})["view"] = {"module_name": VIEWS, "class_name": "PageView"}
    context.variables.data_docs_sites = sites


def _site_index_url(context: Any) -> str:
    urls = context.get_docs_sites_urls(site_name=SITE_NAME, only_if_exists=False)
    return str(urls[0]["site_url"])


def _path_from_file_url(url: str) -> Path:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url)
