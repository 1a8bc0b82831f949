"""X12 837P details that must never turn into a wrong claim line: the unit basis of SV104
(minutes are not units) and the paid amount of the paying MCO's own 2430 loop."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.airflow.tasks import task_ingest
from pipelines.audit.packs import LOCATIONS_SETTING, PackError, discover, unit_minutes_by_code
from pipelines.audit.run import run_audit
from pipelines.ingest.x12 import NO_PAYING_MCO, OTHER_PAYERS_ONLY, REASON, SUBMISSION, read_837p
from tests.test_x12 import interchange, write
from tests.world import AS_OF, World, pack_copy

UNIT_MINUTES = unit_minutes_by_code(discover())
MCO = "SUNFLWR01"  # the submitter: the MCO that paid the encounters
OTHER_PAYER = "BCBSKS"  # commercial insurance, adjudicated before the MCO
MCO_PAID = "20240520"
OTHER_PAID = "20240510"


def header(submitter: str | None = MCO) -> list[str]:
    """The transaction up to the first claim: submitter, receiver, provider, subscriber."""
    submitter_name = "NM1*41*2*SUNFLOWER HEALTH PLAN*****46" + (
        f"*{submitter}" if submitter else ""
    )
    return [
        "BHT*0019*00*SHP20240515001*20240515*0930*RP",
        submitter_name,
        "PER*IC*ENCOUNTER DATA UNIT*TE*8778776767",
        "NM1*40*2*KANSAS MEDICAL ASSISTANCE PROGRAM*****46*KSKMAPENC",
        "HL*1**20*1",
        "NM1*85*2*PRAIRIE FAMILY PEER SUPPORT*****XX*1548729635",
        "N3*210 N MAIN ST",
        "N4*WICHITA*KS*672021400",
        "REF*EI*481234567",
        "HL*2*1*22*0",
        "SBR*T*18*******MC",
        "NM1*IL*1*JOHNSON*ELI****MI*10045678901",
        "N3*402 LEAVENWORTH ST",
        "N4*MANHATTAN*KS*665024000",
        "DMG*D8*20130117*M",
        "NM1*PR*2*KANSAS MEDICAL ASSISTANCE PROGRAM*****PI*KSKMAP",
    ]


def claim(claim_id: str, *lines: list[str]) -> list[str]:
    """A claim adjudicated by commercial insurance (2320 P) and then the MCO (2320 S)."""
    return [
        f"CLM*{claim_id}*84***53:B:1*Y*A*Y*Y",
        "HI*ABK:F902",
        "SBR*P*18*GRP4471******CI",
        "OI***Y*P**Y",
        "NM1*IL*1*JOHNSON*MARIA****MI*XKB902114731",
        f"NM1*PR*2*BLUE CROSS AND BLUE SHIELD OF KANSAS*****PI*{OTHER_PAYER}",
        "SBR*S*18*******HM",
        "OI***Y*P**Y",
        "NM1*IL*1*JOHNSON*ELI****MI*10045678901",
        f"NM1*PR*2*SUNFLOWER HEALTH PLAN*****PI*{MCO}",
        *itertools.chain.from_iterable(lines),
    ]


def adjudication(payer: str, amount: str, paid: str) -> list[str]:
    """One 2430 loop: what `payer` paid for the line, and when."""
    return [f"SVD*{payer}*{amount}*HC:H0038**4", "CAS*CO*45*12", f"DTP*573*D8*{paid}"]


def by_mco(amount: str = "36") -> list[str]:
    return adjudication(MCO, amount, MCO_PAID)


def by_other_payer(amount: str = "0") -> list[str]:
    return adjudication(OTHER_PAYER, amount, OTHER_PAID)


def service_line(
    number: int, *adjudications: list[str], basis: str = "UN", quantity: str = "4"
) -> list[str]:
    return [
        f"LX*{number}",
        f"SV1*HC:H0038*48*{basis}*{quantity}***1",
        "DTP*472*D8*20240506",
        *itertools.chain.from_iterable(adjudications),
    ]


def encounters(folder: Path, *claims: list[str], submitter: str | None = MCO) -> Path:
    """An 837P in `folder` holding the claims, in one transaction of this submitter."""
    folder.mkdir(parents=True, exist_ok=True)
    body = [*header(submitter), *itertools.chain.from_iterable(claims)]
    return write(folder, "encounters.837", interchange(body))


def read(path: Path) -> list[dict[str, object]]:
    return read_837p(path, unit_minutes=UNIT_MINUTES).to_dicts()


def sv1_segment_numbers(path: Path) -> list[int]:
    """The test files hold one segment a line, so segment numbers are line numbers."""
    lines = path.read_text().splitlines()
    return [number for number, text in enumerate(lines, start=1) if text.startswith("SV1*")]


# --- Through the ingest: what lands in DuckDB and in quarantine.csv ------------------------


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame, Path]:
    """One real run over an 837P whose lines each carry one of the defect's cases."""
    root = tmp_path_factory.mktemp("x12_audit")
    input_dir = World().write(root / "input")
    x12 = encounters(
        input_dir / "claims" / "SUNFLOWER",
        claim(
            "MINUTES",
            service_line(1, by_mco(), basis="MJ", quantity="60"),
            service_line(2, by_mco(), basis="MJ", quantity="20"),
        ),
        claim("OTHERLAST", service_line(1, by_mco("36"), by_other_payer("0"))),
        claim("OTHERONLY", service_line(1, by_other_payer("42"))),
        claim("DAYS", service_line(1, by_mco(), basis="DA", quantity="1")),
        claim("REPEATED", service_line(1, by_mco("36"), by_mco("18"))),
    )
    run_audit(input_dir, root / "audit.duckdb", root / "out", as_of=AS_OF)
    with duckdb.connect(str(root / "audit.duckdb"), read_only=True) as con:
        loaded = con.sql(
            "select claim_id, claim_line_number, service_unit_quantity, paid_amount, paid_date "
            "from raw.claim_lines order by claim_id, claim_line_number"
        ).pl()
    quarantine = pl.read_csv(root / "out" / "quarantine.csv", infer_schema=False)
    return loaded, quarantine, x12


def test_minutes_are_converted_to_units_not_read_as_units(
    audited: tuple[pl.DataFrame, pl.DataFrame, Path],
) -> None:
    loaded, _, _ = audited
    minutes = loaded.filter(pl.col("claim_id") == "MINUTES")
    # 60 minutes are 4 units of 15 minutes, not 60 units; 20 minutes are 1.3333 units
    assert [str(q) for q in minutes["service_unit_quantity"]] == ["4.0000", "1.3333"]


def test_paid_amount_is_not_taken_from_another_payers_2430_loop(
    audited: tuple[pl.DataFrame, pl.DataFrame, Path],
) -> None:
    loaded, _, _ = audited
    [line] = loaded.filter(pl.col("claim_id") == "OTHERLAST").to_dicts()
    # the commercial denial (0, on 2024-05-10) comes last; the MCO paid 36 on 2024-05-20
    assert (str(line["paid_amount"]), line["paid_date"]) == ("36.00", dt.date(2024, 5, 20))


def test_x12_lines_set_aside_are_quarantined_with_reason_and_segment(
    audited: tuple[pl.DataFrame, pl.DataFrame, Path],
) -> None:
    loaded, quarantine, x12 = audited
    assert set(loaded["claim_id"]) == {"MINUTES", "OTHERLAST"}
    sv1 = dict(
        zip(
            ["M1", "M2", "OTHERLAST", "OTHERONLY", "DAYS", "REPEATED"],
            sv1_segment_numbers(x12),
            strict=True,
        )
    )
    rows = {
        int(row["row_number"]): row
        for row in quarantine.filter(
            pl.col("source_file") == "claims/SUNFLOWER/encounters.837"
        ).iter_rows(named=True)
    }
    assert sorted(rows) == [sv1["OTHERONLY"], sv1["DAYS"], sv1["REPEATED"]]
    assert rows[sv1["OTHERONLY"]]["reason"] == OTHER_PAYERS_ONLY
    assert "SV103 unit basis is neither UN (units) nor MJ (minutes)" in rows[sv1["DAYS"]]["reason"]
    repeated_svd = sv1["REPEATED"] + 2, sv1["REPEATED"] + 5
    assert rows[sv1["REPEATED"]]["reason"] == (
        f"the paying MCO's 2430 line adjudications (SVD segments {repeated_svd[0]}, "
        f"{repeated_svd[1]}) disagree on the paid amount or date"
    )
    # raw_row: the mapped values joined with *, another payer's amount not among them
    assert rows[sv1["OTHERONLY"]]["raw_row"].startswith("OTHERONLY*1*1**10045678901*")
    assert "*42*" not in rows[sv1["OTHERONLY"]]["raw_row"]


def test_unit_length_comes_from_the_policy_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    thirty = pack_copy(
        tmp_path / "packs", edit=lambda t: t.replace("unit_minutes = 15", "unit_minutes = 30")
    )
    monkeypatch.setenv(LOCATIONS_SETTING, str(thirty))
    input_dir = World().write(tmp_path / "input")
    encounters(
        input_dir / "claims" / "SUNFLOWER",
        claim("HALFHOURS", service_line(1, by_mco(), basis="MJ", quantity="60")),
    )
    db_file = tmp_path / "audit.duckdb"
    counts = task_ingest(str(input_dir), str(db_file), "2025-06-30")

    assert counts["rows_quarantined"] == 0
    with duckdb.connect(str(db_file), read_only=True) as con:
        units = con.sql("select service_unit_quantity from raw.claim_lines").fetchall()
    assert [str(u) for (u,) in units] == ["2.0000"]


@pytest.mark.parametrize("unit_minutes", ["0", "-15", "7.5", "true"])
def test_a_unit_length_that_is_not_a_whole_number_of_minutes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unit_minutes: str
) -> None:
    location = pack_copy(
        tmp_path, edit=lambda t: t.replace("unit_minutes = 15", f"unit_minutes = {unit_minutes}")
    )
    with pytest.raises(PackError, match="unit_minutes must be a whole number of at least 1"):
        monkeypatch.setenv(LOCATIONS_SETTING, str(location))
        discover()


# --- The reader: units -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("basis", "quantity", "units"),
    [
        ("UN", "4", "4"),  # units stay as they are
        ("UN", "2.5", "2.5"),
        ("un", "3", "3"),  # codes compare upper-cased
        ("MJ", "15", "1"),
        ("MJ", "20", "1.3333"),  # exact decimals with four places
        ("MJ", "10", "0.6667"),
        ("MJ", "60", "4"),
        ("MJ", "52.5", "3.5"),
        ("MJ", "0", "0"),  # no minutes are no units, as 0 UN is 0
        ("MJ", "-30", "-2"),  # an adjustment in minutes is one in units
    ],
)
def test_sv104_is_read_in_units(tmp_path: Path, basis: str, quantity: str, units: str) -> None:
    path = encounters(
        tmp_path, claim("C1", service_line(1, by_mco(), basis=basis, quantity=quantity))
    )
    [line] = read(path)
    assert (line["service_unit_quantity"], line[REASON]) == (units, None)


@pytest.mark.parametrize(
    ("basis", "quantity", "reason"),
    [
        ("DA", "1", "SV103 unit basis is neither UN (units) nor MJ (minutes)"),
        ("F2", "4", "SV103 unit basis is neither UN (units) nor MJ (minutes)"),
        ("", "4", "SV103 unit basis is blank"),
        ("MJ", "1e3", "SV104 is not a number of minutes (SV103 is MJ)"),
        ("MJ", "sixty", "SV104 is not a number of minutes (SV103 is MJ)"),
        ("MJ", "9" * 80, "SV104 is not a number of minutes (SV103 is MJ)"),
    ],
)
def test_a_quantity_that_cannot_be_read_as_units_sets_the_line_aside(
    tmp_path: Path, basis: str, quantity: str, reason: str
) -> None:
    path = encounters(
        tmp_path, claim("C1", service_line(1, by_mco(), basis=basis, quantity=quantity))
    )
    [line] = read(path)
    assert line[REASON] is not None and line[REASON].startswith(reason)
    assert line["service_unit_quantity"] == quantity  # shown as delivered in raw_row
    assert line["source_row"] == sv1_segment_numbers(path)[0]


# --- The reader: the paying MCO's 2430 loop ----------------------------------------------


@pytest.mark.parametrize(
    "loops",
    [
        pytest.param((by_mco("36"), by_other_payer("0")), id="other payer last"),
        pytest.param((by_other_payer("0"), by_mco("36")), id="other payer first"),
        pytest.param((by_mco("36"),), id="the paying MCO alone"),
        pytest.param((by_mco("36"), by_other_payer("12"), by_mco("36.00")), id="repeated, equal"),
    ],
)
def test_the_paid_amount_is_the_paying_mcos_svd02(
    tmp_path: Path, loops: tuple[list[str], ...]
) -> None:
    path = encounters(tmp_path, claim("C1", service_line(1, *loops)))
    [line] = read(path)
    assert (line["paid_amount"], line["paid_date"], line[REASON]) == ("36", MCO_PAID, None)


def test_a_line_only_another_payer_adjudicated_is_set_aside(tmp_path: Path) -> None:
    path = encounters(tmp_path, claim("C1", service_line(1, by_other_payer("42"))))
    [line] = read(path)
    assert (line["paid_amount"], line["paid_date"], line[REASON]) == (None, None, OTHER_PAYERS_ONLY)
    assert line["source_row"] == sv1_segment_numbers(path)[0]


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(by_mco("18"), id="another amount"),
        pytest.param(adjudication(MCO, "36", "20240521"), id="another paid date"),
    ],
)
def test_repeated_mco_loops_that_disagree_set_the_line_aside(
    tmp_path: Path, second: list[str]
) -> None:
    path = encounters(tmp_path, claim("C1", service_line(1, by_mco("36"), second)))
    [line] = read(path)
    assert line["paid_amount"] is None
    assert isinstance(line[REASON], str) and "disagree on the paid amount or date" in line[REASON]


def test_a_line_without_any_2430_loop_is_a_submission(tmp_path: Path) -> None:
    path = encounters(tmp_path, claim("C1", service_line(1)))
    [line] = read(path)
    assert (line["paid_amount"], line[REASON]) == (None, SUBMISSION)


def test_without_a_submitter_no_2430_loop_is_the_paying_mcos(tmp_path: Path) -> None:
    path = encounters(tmp_path, claim("C1", service_line(1, by_mco())), submitter=None)
    [line] = read(path)
    assert (line["paid_amount"], line[REASON]) == (None, NO_PAYING_MCO)


def test_the_paying_mco_is_the_submitter_of_each_transaction(tmp_path: Path) -> None:
    # Two transactions in one interchange, submitted by two MCOs: each line is matched
    # against its own transaction's submitter, not the one read last.
    first = [*header(MCO), *claim("C1", service_line(1, by_mco(), by_other_payer()))]
    second = [
        *header("OTHERMCO"),
        *claim("C2", service_line(1, adjudication("OTHERMCO", "27", MCO_PAID), by_mco("99"))),
    ]
    # SE segment counts are not checked, so the first set's may be approximate
    body = [*first, f"SE*{len(first) + 2}*0001", "ST*837*0002*005010X222A1", *second]
    lines = {line["claim_id"]: line for line in read(write(tmp_path, "two.837", interchange(body)))}
    assert (lines["C1"]["paid_amount"], lines["C2"]["paid_amount"]) == ("36", "27")
    assert lines["C1"][REASON] is None and lines["C2"][REASON] is None
