"""Trust boundary at ingest: dates, file names and payer codes as a hostile export sends them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.audit.run import run_audit
from pipelines.config import load_settings
from pipelines.ingest.datasets import CLAIM_COLUMNS, CLAIMS, REFERENCE_DATASETS, Dataset
from pipelines.ingest.readers import ROW_COLUMN
from pipelines.ingest.values import plausible_dates, type_rows
from pipelines.reports.output_paths import UnsafeOutputPath, mco_folder
from tests.world import AS_OF, MCOS, World, audit, write_rows

X12_FIXTURE = Path(__file__).parent / "fixtures" / "x12" / "paid_encounters.837"
CHILD = "10000000001"  # every document on file: a clean line of theirs has no finding
ADULT = "10000000002"  # no written consent: every line of theirs is a PPS009 finding
DATES = plausible_dates(load_settings().dates, AS_OF)
DATASETS = {d.name: d for d in (CLAIMS, *REFERENCE_DATASETS)}

TWO_DIGIT_YEARS = [
    "11/20/23",
    "23-11-20",
    "2/3/23",
    "23/11/20",
    "0023-11-20",
    "11/20/0023",
    "231120",
    "+2023-11-20",
    "2023112",
]
FOUR_DIGIT_YEARS = {
    "2023-11-20": dt.date(2023, 11, 20),
    "2023-2-3": dt.date(2023, 2, 3),
    "11/20/2023": dt.date(2023, 11, 20),
    "2/3/2023": dt.date(2023, 2, 3),
    "20231120": dt.date(2023, 11, 20),
}


def _world() -> World:
    world = World()
    world.member(CHILD)
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"].pop()
    return world


def _run(input_dir: Path, tmp_path: Path) -> None:
    run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)


def _quarantine(out: Path) -> dict[tuple[str, str], str]:
    """(source file, first field of the raw row) -> reason."""
    rows = pl.read_csv(out / "quarantine.csv", infer_schema=False)
    return {
        (file, raw.split(",")[0]): reason
        for file, raw, reason in rows.select("source_file", "raw_row", "reason").iter_rows()
    }


def _query(db_file: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def _valid_row(dataset: Dataset) -> dict[str, str | None]:
    """One row of the dataset that loads: each value of the kind its column holds."""
    row: dict[str, str | None] = {}
    for column in dataset.columns:
        if column in dataset.date_columns:
            row[column] = "2020-01-01"
        elif column in (*dataset.integer_columns, *dataset.amount_columns):
            row[column] = "1"
        elif column in dataset.quantity_columns:
            row[column] = "4"
        elif column in dataset.payer_columns:
            row[column] = "AETNA"
        else:
            row[column] = "X"
    if dataset is CLAIMS:
        row |= {"claim_frequency_code": "1", "claim_line_end_date": None}
    return row


def _typed(
    dataset: Dataset, column: str, values: list[str], *, also: tuple[str, ...] = ()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """type_rows over one row per value of `column` (and of the columns `also`), the other
    values valid."""
    rows = [_valid_row(dataset) | dict.fromkeys((column, *also), value) for value in values]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(dataset.columns, pl.String)).with_row_index(
        ROW_COLUMN, offset=2
    )
    typed = type_rows(frame.cast({ROW_COLUMN: pl.Int64}), dataset, ",", DATES)
    return typed.loaded, typed.quarantined


# 1. dates ---------------------------------------------------------------------------------


def test_two_digit_years_are_quarantined_not_read_as_year_23(tmp_path: Path) -> None:
    world = _world()
    world.line("AETNA", "GOOD", CHILD)
    hostile = {
        f"START_{i}": {"claim_line_start_date": value} for i, value in enumerate(TWO_DIGIT_YEARS)
    } | {
        "END_23": {"claim_line_end_date": "5/2/23"},
        "PAID_23": {"paid_date": "23-05-20"},
        "TOO_EARLY": {"claim_line_start_date": "1989-12-31"},
        "TOO_LATE": {"claim_line_start_date": (AS_OF + dt.timedelta(days=367)).isoformat()},
    }
    for claim_id, dates in hostile.items():
        world.line("AETNA", claim_id, CHILD, **dates)
    world.ref["members"].append({"member_id": "10000000009", "date_of_birth": "5/1/12"})
    world.ref["members"].append({"member_id": "10000000008", "date_of_birth": "1899-12-31"})
    findings = audit(world, tmp_path)
    # read as the year 23, these lines broke PPS001, PPS004, PPS005, PPS006 and PPS007 at once
    assert findings.height == 0
    quarantine = _quarantine(tmp_path / "out")
    claims = {
        key: reason for (file, key), reason in quarantine.items() if file.startswith("claims")
    }
    assert set(claims) == set(hostile)
    for claim_id, dates in hostile.items():
        (column,) = dates
        assert claims[claim_id].startswith(f"{column} is "), claim_id
    assert "is before 1990-01-01" in claims["TOO_EARLY"]
    assert "is after 2026-07-01" in claims["TOO_LATE"]
    members = {k: r for (f, k), r in quarantine.items() if f == "reference/members.csv"}
    assert members == {
        "10000000009": "date_of_birth is not a date (YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD)",
        "10000000008": "date_of_birth is before 1900-01-01, the earliest plausible birth date",
    }


def test_an_x12_date_with_a_padded_two_digit_year_is_quarantined(tmp_path: Path) -> None:
    input_dir = World().write(tmp_path / "input")
    folder = input_dir / "claims" / "SUNFLOWER"
    folder.mkdir(parents=True)
    text = X12_FIXTURE.read_text(encoding="utf-8")
    assert "DTP*472*D8*20240304~" in text
    (folder / "padded.837").write_text(
        text.replace("DTP*472*D8*20240304~", "DTP*472*D8*00240304~", 1)
    )
    _run(input_dir, tmp_path)
    quarantine = pl.read_csv(tmp_path / "out" / "quarantine.csv", infer_schema=False)
    assert quarantine.select("source_file", "reason").rows() == [
        (
            "claims/SUNFLOWER/padded.837",
            "; ".join(  # D8 is one day: the line's start and end
                f"{c} is not a date (YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD)"
                for c in ("claim_line_start_date", "claim_line_end_date")
            ),
        )
    ]
    years = _query(
        tmp_path / "a.duckdb", "select min(year(claim_line_start_date)) from raw.claim_lines"
    )
    assert years == [(2024,)]


@pytest.mark.parametrize(
    ("dataset", "column"),
    [(d.name, c) for d in (CLAIMS, *REFERENCE_DATASETS) for c in d.date_columns],
)
def test_every_date_column_takes_only_four_digit_years(dataset: str, column: str) -> None:
    loaded, quarantined = _typed(DATASETS[dataset], column, [*TWO_DIGIT_YEARS, *FOUR_DIGIT_YEARS])
    assert quarantined.height == len(TWO_DIGIT_YEARS)
    assert set(quarantined["reason"]) == {
        f"{column} is not a date (YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD)"
    }
    assert loaded[column].to_list() == list(FOUR_DIGIT_YEARS.values())


def _bounds_cases() -> list[tuple[str, str, str, bool]]:
    """(dataset, column, value, loads): each bound and its near miss, for every bounded column."""
    settings = load_settings().dates
    service_from = settings.earliest_service_date
    service_to = AS_OF + dt.timedelta(days=settings.service_days_after_as_of)
    birth_from = settings.earliest_birth_date
    day = dt.timedelta(days=1)
    cases: list[tuple[str, str, str, bool]] = []
    for dataset in (CLAIMS, *REFERENCE_DATASETS):
        for column in dataset.service_date_columns:
            cases += [
                (dataset.name, column, (service_from - day).isoformat(), False),
                (dataset.name, column, service_from.isoformat(), True),
                (dataset.name, column, service_to.isoformat(), True),
                (dataset.name, column, (service_to + day).isoformat(), False),
            ]
        for column in dataset.birth_date_columns:
            cases += [
                (dataset.name, column, (birth_from - day).isoformat(), False),
                (dataset.name, column, birth_from.isoformat(), True),
                (dataset.name, column, AS_OF.isoformat(), True),
                (dataset.name, column, (AS_OF + day).isoformat(), False),
            ]
    return cases


def test_the_shipped_date_bounds_are_the_documented_ones() -> None:
    assert (DATES.service_from, DATES.service_to) == (dt.date(1990, 1, 1), dt.date(2026, 7, 1))
    assert (DATES.birth_from, DATES.birth_to) == (dt.date(1900, 1, 1), AS_OF)
    assert DATES.open_end_from == dt.date(2100, 1, 1)


@pytest.mark.parametrize(("dataset", "column", "value", "loads"), _bounds_cases())
def test_implausible_service_and_birth_dates_are_quarantined_near_misses_load(
    dataset: str, column: str, value: str, loads: bool
) -> None:
    # a claim's end date may not come before its start: a plausible one starts with it
    also = ("claim_line_start_date",) if column == "claim_line_end_date" and loads else ()
    loaded, quarantined = _typed(DATASETS[dataset], column, [value], also=also)
    assert loaded.height == int(loads)
    if not loads:
        reasons = quarantined["reason"].item().split("; ")
        assert any(r.startswith(f"{column} is ") and "plausible" in r for r in reasons)


@pytest.mark.parametrize(
    ("dataset", "column"), [(d.name, c) for d in REFERENCE_DATASETS for c in d.open_end_columns]
)
def test_far_future_span_ends_mean_open(dataset: str, column: str) -> None:
    markers = ["9999-12-31", "12/31/9999", "29991231", "2100-01-01"]
    loaded, quarantined = _typed(DATASETS[dataset], column, [*markers, "2099-12-31", ""])
    assert quarantined.height == 0
    assert loaded[column].to_list() == [None] * len(markers) + [dt.date(2099, 12, 31), None]


def test_a_member_enrolled_to_9999_12_31_is_enrolled_on_every_dos(tmp_path: Path) -> None:
    world = World()
    world.member(CHILD)
    world.ref["enrollment"][-1]["end_date"] = "9999-12-31"
    world.ref["caregivers"][-1]["end_date"] = "12/31/2999"
    world.ref["treatment_plans"][-1]["end_date"] = "99991231"
    world.ref["providers"][0]["enrollment_end_date"] = "9999-12-31"
    world.line("AETNA", "OPEN_ENDED", CHILD, claim_line_start_date="2025-06-02")
    findings = audit(world, tmp_path)
    assert findings.height == 0  # neither PPS007 nor GEN002, nor any other rule
    db = tmp_path / "audit.duckdb"
    assert _query(db, "select end_date from ref.enrollment") == [(None,)]
    assert _query(db, "select end_date from ref.caregivers") == [(None,)]
    assert _query(db, "select end_date from ref.treatment_plans") == [(None,)]


# 2. file names ----------------------------------------------------------------------------

GLOB_NAMES = ["x*.csv", "x?.csv", "x[1].csv", "{a,b}.csv", "[!x]*.csv"]
NEIGHBOURS = ["x1.csv", "xa.csv", "a.csv", "b.csv", "y.csv"]
ODD_NAMES = [
    "with space.csv",
    "quote'and\"double.csv",
    "-leading-dash.csv",
    "naïve ✓.csv",
    "back\\slash.csv",
]


def test_file_names_are_read_literally_not_as_glob_patterns(tmp_path: Path) -> None:
    world = _world()
    input_dir = world.write(tmp_path / "input")
    folder = input_dir / "claims" / "AETNA"
    columns = list(CLAIM_COLUMNS)
    own: dict[str, str] = {}
    for number, name in enumerate(GLOB_NAMES + NEIGHBOURS + ODD_NAMES):
        claim_id = f"C{number:02d}"
        own[f"claims/AETNA/{name}"] = claim_id
        row = world.line(
            "AETNA", claim_id, ADULT, claim_line_start_date=f"2023-05-{number + 1:02d}"
        )
        # a neighbour lists its columns in another order: read by position, it would be garbage
        write_rows(folder / name, columns[::-1] if name in NEIGHBOURS else columns, [row])
    # a row the fast reader cannot split sends the file to the careful reader
    with (folder / "x[1].csv").open("a", encoding="utf-8") as handle:
        handle.write("SPLIT,1,1,,10000000002,,,H0038,,,,,2023-05-02,,11,4,1,2023-05-20,,extra\n")
    frame = pl.DataFrame([world.line("AETNA", "P_GLOB", ADULT, claim_line_start_date="2023-06-01")])
    frame.write_parquet(folder / "p*.parquet")
    frame.with_columns(claim_id=pl.lit("P_NEIGHBOUR")).write_parquet(folder / "p1.parquet")
    own |= {"claims/AETNA/p*.parquet": "P_GLOB", "claims/AETNA/p1.parquet": "P_NEIGHBOUR"}
    _run(input_dir, tmp_path)
    loaded = _query(
        tmp_path / "a.duckdb",
        "select d.source_file, c.claim_id, c.member_id from raw.claim_lines c "
        "join audit.deliveries d using (delivery_id)",
    )
    assert sorted(loaded) == sorted((file, claim_id, ADULT) for file, claim_id in own.items())
    assert _quarantine(tmp_path / "out") == {("claims/AETNA/x[1].csv", "SPLIT"): "too many fields"}


# 3. payer codes ---------------------------------------------------------------------------

NOT_PAYER_CODES = ["../../ESCAPED", "..", "A/B", "A\\B", "A.B", "ÄETNA", "X" * 41, "", "/abs"]


def test_payer_codes_that_are_not_codes_are_quarantined_and_never_become_paths(
    tmp_path: Path,
) -> None:
    world = _world()
    world.line("AETNA", "NO_CONSENT", ADULT)  # a PPS009 finding that must reach findings.csv
    longest = "Y" * 40
    implementation = world.ref["mco_implementation"]
    for row in implementation:
        if row["payer"] == "HEALTHYBLUE":
            row["payer"] = " healthyblue "  # a code after trimming and upper-casing
    for payer in ["../../ESCAPED", "..", "A/B", "X" * 41, longest]:
        implementation.append(implementation[0] | {"payer": payer})
    world.ref["enrollment"].append(
        {"member_id": "10000000007", "payer": "../UP", "start_date": "2020-01-01", "end_date": ""}
    )
    world.ref["service_participants"].append(
        {
            "payer": "A/B",
            "claim_id": "NO_CONSENT",
            "claim_line_number": "1",
            "caregiver_id": "CG-0002",
            "non_medicaid_participant": "N",
            "direct_benefit_documented": "Y",
        }
    )
    input_dir = world.write(tmp_path / "input")
    for folder in ("a.b", "ÄETNA", "with space"):
        write_rows(
            input_dir / "claims" / folder / "c.csv",
            list(CLAIM_COLUMNS),
            world.claims["AETNA"],
        )
    summary = run_audit(input_dir, tmp_path / "a.duckdb", tmp_path / "out", as_of=AS_OF)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.duckdb", "input", "out"]
    mco = tmp_path / "out" / "mco"
    assert sorted(p.name for p in mco.iterdir()) == sorted([*MCOS, longest])
    assert all(p.is_dir() and not any(q.is_dir() for q in p.iterdir()) for p in mco.iterdir())
    findings = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    assert findings.select("payer", "claim_id", "rule_id").rows() == [
        ("AETNA", "NO_CONSENT", "PPS009")
    ]
    reasons = _quarantine(tmp_path / "out")
    code_form = "is not a payer code (1 to 40 of A-Z, 0-9, _ and -)"
    assert {k: r for k, r in reasons.items() if k[0] == "reference/mco_implementation.csv"} == {
        ("reference/mco_implementation.csv", p): f"payer {code_form}"
        for p in ["../../ESCAPED", "..", "A/B", "X" * 41]
    }
    assert reasons[("reference/enrollment.csv", "10000000007")] == f"payer {code_form}"
    assert reasons[("reference/service_participants.csv", "A/B")] == f"payer {code_form}"
    rejected = {f.source_file: f for f in summary.ingest.with_status("rejected")}
    assert set(rejected) == {f"claims/{name}/c.csv" for name in ("a.b", "ÄETNA", "with space")}
    for outcome in rejected.values():
        assert outcome.payer is None
        assert (outcome.reason or "").endswith(f"the payer folder's name {code_form}")


@pytest.mark.parametrize("payer", NOT_PAYER_CODES)
def test_a_value_that_is_not_a_payer_code_is_quarantined_in_every_payer_column(
    payer: str,
) -> None:
    for dataset in (d for d in REFERENCE_DATASETS if d.payer_columns):
        (column,) = dataset.payer_columns
        loaded, quarantined = _typed(dataset, column, [payer, " aetna "])
        assert loaded[column].to_list() == ["AETNA"]
        expected = f"{column} is blank" if not payer else f"{column} is not a payer code"
        assert quarantined["reason"].item().startswith(expected)


@pytest.mark.parametrize("payer", [*NOT_PAYER_CODES, "aetna", " AETNA"])
def test_mco_folder_names_only_payer_codes(tmp_path: Path, payer: str) -> None:
    with pytest.raises(UnsafeOutputPath):
        mco_folder(tmp_path / "out", payer)
    assert mco_folder(tmp_path / "out", "AETNA") == tmp_path / "out" / "mco" / "AETNA"


def test_mco_folder_stays_inside_out_when_mco_is_a_link_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "mco").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeOutputPath):
        mco_folder(tmp_path / "out", "AETNA")
