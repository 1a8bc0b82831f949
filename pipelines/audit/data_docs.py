"""Great Expectations Data Docs for a run's validation: the suite's verdict, rule by rule.

The nightly audit validates with an in-memory context and keeps only the failing line keys.
Data Docs need the validation stored, so this validates the same suite over the same fact
columns once more in a file-mode context rooted in the docs folder, with the SUMMARY result
format (counts and at most 20 example failing rows per rule), and builds the site there.
A night stores one result per partition of its facts (pipelines/claims/partitions.py).
Results accumulate run after run in that folder; the site's index lists the latest ones.

Cost, measured with GX already imported (as it is after the audit's validation stage): about
1.2 s a run on the demo input (870 lines); 2 to 3 s on 1M fact lines, where the audit's own
validation of the same facts takes about 1.7 s. The folder holds about 4.6 MB of site assets
plus about 30 KB per stored result.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import polars as pl

from pipelines.audit.rules import (
    LINE,
    RuleSet,
    columns_read,
    quiet_gx,
    with_null_guards,
)

log = logging.getLogger(__name__)

SITE_NAME = "local_site"
# the names under which the validation shows in the docs: the nightly run's own words
DATA_SOURCE = "facts"
ASSET = "in_scope_lines"
BATCH = "nightly"
VALIDATION = "nightly_validation"
CHECKPOINT = "nightly"
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


def build_data_docs(
    partitions: Iterable[pl.DataFrame],
    rules: RuleSet,
    docs_dir: Path,
    *,
    as_of: dt.date | None = None,
) -> Path:
    """Validate each partition's facts with the suite in a file-mode context in `docs_dir`,
    then build the docs: one validation result per partition, named by the night and the
    partition's dates of service.

    Returns the site's index.html. `as_of` names the validation runs in the docs (default:
    the time they ran). The suite runs once more, with its null guards: on 1M lines that is
    2 to 3 s.
    """
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / RESTRICTED_NOTE).write_text(RESTRICTED_TEXT, encoding="utf-8")

    quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
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

    batch_definition = (
        context.data_sources.add_or_update_pandas(DATA_SOURCE)
        .add_dataframe_asset(ASSET)
        .add_batch_definition_whole_dataframe(BATCH)
    )
    suite = gx.ExpectationSuite(**with_null_guards(rules.definition))
    validation = gx.ValidationDefinition(name=VALIDATION, data=batch_definition, suite=suite)
    # stores the validation definition and its suite too (each once: storing one costs as
    # much as validating a small night); no actions: the validation definition stores its
    # result; the docs are built once below
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=CHECKPOINT,
            validation_definitions=[validation],
            actions=[],
            result_format="SUMMARY",
        )
    )
    new_pages: list[Any] = [ExpectationSuiteIdentifier(name=suite.name)]
    lines = failing = 0
    for facts in partitions:
        result = _validate(checkpoint, facts, rules, as_of)
        new_pages += result.run_results
        lines += facts.height
        failing += not result.success
    # render only tonight's pages once the site exists: a full build re-renders every result
    # ever stored, which grows with each nightly run
    site_exists = _path_from_file_url(_site_index_url(context)).is_file()
    urls = context.build_data_docs(
        site_names=[SITE_NAME], resource_identifiers=new_pages if site_exists else None
    )
    index = _path_from_file_url(urls[SITE_NAME])
    log.info(
        "Data Docs for %d lines (%s) at %s",
        lines,
        f"some rules fail in {failing} partition(s)" if failing else "all rules pass",
        index,
    )
    return index


def _validate(checkpoint: Any, facts: pl.DataFrame, rules: RuleSet, as_of: dt.date | None) -> Any:
    """One partition's validation result, stored, under the night's and its DOS's name."""
    from great_expectations.core.run_identifier import RunIdentifier

    # the same columns, row keys and parameters as the audit's own validation
    # (rules.run_suite); the index stays unnamed: for a named index GX looks up every failing
    # row one by one (seconds more per 100k failing rows), for an unnamed one it lists the
    # keys in one pass
    frame = facts.select(columns_read(rules.definition, facts.columns)).to_pandas().set_index(LINE)
    frame.index.name = None
    night = as_of.isoformat() if as_of else dt.date.today().isoformat()
    run_id = RunIdentifier(
        run_name=f"{night}, DOS {_dates_of_service(facts)}", run_time=dt.datetime.now(dt.UTC)
    )
    return checkpoint.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters=rules.as_parameters(),
        run_id=run_id,
    )


def _dates_of_service(facts: pl.DataFrame) -> str:
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
