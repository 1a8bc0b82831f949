"""X12 837P reader: the public samples, the paid-encounter fixture against its CSV twin, and
the files it must refuse."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pipelines.audit.packs import discover, unit_minutes_by_code
from pipelines.ingest.datasets import CLAIM_COLUMNS
from pipelines.ingest.x12 import REASON, SUBMISSION, read_837p

FIXTURES = Path(__file__).parent / "fixtures" / "x12"
PAID_ENCOUNTERS = FIXTURES / "paid_encounters.837"
PAID_ENCOUNTERS_CSV = FIXTURES / "paid_encounters.csv"
SHARED_SAMPLES = Path(os.environ.get("CLAIMS_AUDIT_X12_SAMPLES", "/work/shared/samples/x12"))
BEHAVIORAL_HEALTH_SAMPLE = SHARED_SAMPLES / "medicaid_behavioral_health_837P.txt"
MULTI_CLAIM_SAMPLE = SHARED_SAMPLES / "multi_claim_837P.txt"
needs_shared_samples = pytest.mark.skipif(
    not SHARED_SAMPLES.is_dir(), reason=f"public 837P samples not found in {SHARED_SAMPLES}"
)

UNIT_MINUTES = unit_minutes_by_code(discover())
DATE_COLUMNS = ("claim_line_start_date", "claim_line_end_date", "paid_date")
FIXTURE_MEMBER_IDS = ("10012345678", "10023456789", "10034567890", "10045678901")

# The fixture's envelope, to wrap small hand-made claim bodies.
ISA = (
    "ISA*00*          *00*          *ZZ*SUNFLOWER      *ZZ*KSKMAPENC      "
    "*240415*0930*^*00501*000000201*0*T*:~"
)
SUBMITTER_AND_RECEIVER = [
    "BHT*0019*00*SHP20240515001*20240515*0930*RP",
    "NM1*41*2*SUNFLOWER HEALTH PLAN*****46*SUNFLWR01",
    "PER*IC*ENCOUNTER DATA UNIT*TE*8778776767",
    "NM1*40*2*KANSAS MEDICAL ASSISTANCE PROGRAM*****46*KSKMAPENC",
]


def interchange(
    body: list[str],
    *,
    functional_id: str = "HC",
    version: str = "005010X222A1",
    transaction: str = "837",
) -> str:
    """One interchange holding one transaction set around ``body`` (segments, no ``~``)."""
    transaction_set = [
        f"ST*{transaction}*0001*{version}",
        *body,
        f"SE*{len(body) + 2}*0001",
    ]
    return "".join(
        segment + "~\n"
        for segment in [
            ISA.removesuffix("~"),
            f"GS*{functional_id}*SUNFLOWER*KSKMAPENC*20240515*0930*201*X*{version}",
            *transaction_set,
            "GE*1*201",
            "IEA*1*000000201",
        ]
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.fixture(scope="module")
def paid_encounters() -> pl.DataFrame:
    return read_837p(PAID_ENCOUNTERS, unit_minutes=UNIT_MINUTES)


def line(frame: pl.DataFrame, claim_id: str, claim_line_number: str) -> dict[str, object]:
    rows = frame.filter(
        (pl.col("claim_id") == claim_id) & (pl.col("claim_line_number") == claim_line_number)
    ).to_dicts()
    assert len(rows) == 1, (claim_id, claim_line_number, rows)
    return rows[0]


def test_claim_columns_are_the_contract_columns_in_order() -> None:
    assert CLAIM_COLUMNS == (
        "claim_id",
        "claim_line_number",
        "claim_frequency_code",
        "original_claim_id",
        "member_id",
        "rendering_npi",
        "billing_npi",
        "hcpcs_code",
        "hcpcs_modifier_1",
        "hcpcs_modifier_2",
        "hcpcs_modifier_3",
        "hcpcs_modifier_4",
        "claim_line_start_date",
        "claim_line_end_date",
        "place_of_service_code",
        "service_unit_quantity",
        "paid_amount",
        "paid_date",
        "session_id",
    )


def test_every_value_is_text_and_source_row_an_integer(paid_encounters: pl.DataFrame) -> None:
    assert paid_encounters.columns == [*CLAIM_COLUMNS, "source_row", REASON]
    assert paid_encounters.schema == pl.Schema(
        {
            **{column: pl.String for column in CLAIM_COLUMNS},
            "source_row": pl.Int64,
            REASON: pl.String,
        }
    )


@needs_shared_samples
def test_behavioral_health_sample_is_a_submission_without_payment() -> None:
    frame = read_837p(BEHAVIORAL_HEALTH_SAMPLE, unit_minutes=UNIT_MINUTES)

    assert frame.select(
        "claim_id",
        "claim_line_number",
        "hcpcs_code",
        "hcpcs_modifier_1",
        "hcpcs_modifier_2",
        "hcpcs_modifier_3",
        "claim_line_start_date",
        "claim_line_end_date",
        "service_unit_quantity",
        "place_of_service_code",
    ).rows() == [
        ("TD-R192ICE00094", "1", "H0004", "HO", "HQ", None, "20180625", "20180625", "12", "11"),
        ("TD-R192ICE00094", "2", "H0004", "HO", "HQ", None, "20180629", "20180629", "12", "11"),
    ]
    first = frame.row(0, named=True)
    assert first["member_id"] == "U0000000001"
    assert first["billing_npi"] == "9999999999"
    assert first["claim_frequency_code"] == "1"
    assert first["rendering_npi"] is None
    assert frame["source_row"].to_list() == [27, 30]
    # A provider's submission carries no adjudication: nothing is made up.
    assert frame["paid_amount"].is_null().all()
    assert frame["paid_date"].is_null().all()
    assert frame["session_id"].is_null().all()
    assert frame[REASON].to_list() == [SUBMISSION] * 2


@needs_shared_samples
def test_multi_claim_sample_reads_every_billing_provider_and_subscriber() -> None:
    frame = read_837p(MULTI_CLAIM_SAMPLE, unit_minutes=UNIT_MINUTES)

    assert frame.select(
        "claim_id",
        "claim_line_number",
        "member_id",
        "billing_npi",
        "rendering_npi",
        "hcpcs_code",
        "hcpcs_modifier_1",
        "hcpcs_modifier_2",
        "service_unit_quantity",
    ).rows() == [
        # SV103 MJ: 88, 24, 62 and 65 minutes of anesthesia codes no policy gives a unit
        # length: kept as minutes and set aside; the last line is in units
        ("ABC11111", "1", "111111100", "1222222220", "1234567891", "01710", "QZ", None, "88"),
        ("ABC111112", "1", "11111117", "1222222223", "1122334461", "00731", "AA", "P3", "24"),
        ("ABC111113", "1", "111111111", "1477527786", "1122334457", "00840", "AA", None, "62"),
        ("ABC111114", "1", "111111112", "1477527786", "1122334456", "00902", "AA", None, "65"),
        ("ABC111114", "2", "111111112", "1477527786", "1122334456", "62322", "59", None, "1"),
    ]
    # Modifier slots left empty (HC:01710:QZ::::64718) stay empty; the description is ignored.
    assert frame["hcpcs_modifier_3"].is_null().all()
    assert frame["hcpcs_modifier_4"].is_null().all()
    # No SV105 on these lines: the place of service comes from CLM05-1.
    assert frame["place_of_service_code"].to_list() == ["22"] * 5
    assert frame["claim_line_start_date"].to_list() == ["20180123"] + ["20180713"] * 4
    assert frame["claim_line_end_date"].to_list() == frame["claim_line_start_date"].to_list()
    assert frame["paid_amount"].is_null().all()
    assert frame["paid_date"].is_null().all()
    minutes = "SV104 is in minutes (SV103 MJ) and no policy gives {} a unit length"
    assert frame[REASON].to_list() == [
        *(f"{minutes.format(code)}; {SUBMISSION}" for code in ("01710", "00731", "00840", "00902")),
        SUBMISSION,
    ]


def test_paid_encounters_match_their_csv_twin(paid_encounters: pl.DataFrame) -> None:
    from_csv = pl.read_csv(PAID_ENCOUNTERS_CSV, infer_schema=False)
    assert paid_encounters[REASON].is_null().all()
    from_x12 = paid_encounters.drop("source_row", REASON).with_columns(
        pl.col(column).str.strptime(pl.Date, "%Y%m%d").dt.to_string("%Y-%m-%d")
        for column in DATE_COLUMNS
    )

    assert from_csv.columns == list(CLAIM_COLUMNS)
    assert from_x12.to_dicts() == from_csv.to_dicts()


def test_paid_encounter_mapping(paid_encounters: pl.DataFrame) -> None:
    individual = line(paid_encounters, "SHP24030001", "1")
    assert individual["claim_frequency_code"] == "1"
    # The claim's 2330B REF*F8 is the MCO's own control number, not a claim it replaces.
    assert individual["original_claim_id"] is None
    assert individual["rendering_npi"] == "1321098760"  # claim level, 2310B
    assert individual["place_of_service_code"] == "53"  # CLM05-1
    assert (individual["paid_amount"], individual["paid_date"]) == ("36", "20240320")

    non_peer_line = line(paid_encounters, "SHP24030001", "3")
    assert non_peer_line["hcpcs_code"] == "H2017"
    assert non_peer_line["rendering_npi"] == "1987654328"  # line level, 2420A

    replacement = line(paid_encounters, "SHP24030002", "1")
    assert replacement["claim_frequency_code"] == "7"
    assert replacement["original_claim_id"] == "SHP24020017"
    assert (replacement["claim_line_start_date"], replacement["claim_line_end_date"]) == (
        "20240311",
        "20240312",
    )
    assert line(paid_encounters, "SHP24030002", "2")["rendering_npi"] is None

    void = line(paid_encounters, "SHP24030003", "1")
    assert (void["claim_frequency_code"], void["original_claim_id"]) == ("8", "SHP24020044")
    assert void["billing_npi"] == "1765432103"

    # Commercial insurance denied the line first; the MCO's adjudication comes last.
    after_other_payer = line(paid_encounters, "SHP24030004", "1")
    assert (after_other_payer["paid_amount"], after_other_payer["paid_date"]) == (
        "31.5",
        "20240408",
    )

    group_positions = [
        [i for i in range(1, 5) if row[f"hcpcs_modifier_{i}"] == "HQ"]
        for row in paid_encounters.iter_rows(named=True)
    ]
    assert group_positions == [[], [1], [], [2], [], [], [3], []]


def test_source_row_is_the_sv1_segment_number(paid_encounters: pl.DataFrame) -> None:
    # The fixture writes one segment a line, so segment numbers are line numbers.
    segments = PAID_ENCOUNTERS.read_text().splitlines()
    assert all(segments[row - 1].startswith("SV1*") for row in paid_encounters["source_row"])
    assert paid_encounters["source_row"].to_list() == [33, 39, 45, 68, 75, 105, 134, 144]


@pytest.mark.parametrize(
    ("layout", "rewrite"),
    [
        ("no line breaks", lambda text: text.replace("~\n", "~")),
        ("CR LF line breaks", lambda text: text.replace("~\n", "~\r\n")),
        (
            "pipe, greater-than and apostrophe separators",
            lambda text: text.replace("*", "|").replace(":", ">").replace("~\n", "'"),
        ),
        ("byte-order mark and a blank line first", lambda text: "\ufeff\r\n" + text),
    ],
)
def test_separators_come_from_the_isa_header(
    tmp_path: Path, paid_encounters: pl.DataFrame, layout: str, rewrite: Callable[[str], str]
) -> None:
    path = write(tmp_path, "rewritten.837", rewrite(PAID_ENCOUNTERS.read_text()))

    assert read_837p(path, unit_minutes=UNIT_MINUTES).equals(paid_encounters), layout


def test_several_interchanges_in_one_file(tmp_path: Path, paid_encounters: pl.DataFrame) -> None:
    text = PAID_ENCOUNTERS.read_text()
    second = text.replace("000000101", "000000102").replace("*101*", "*102*")
    frame = read_837p(write(tmp_path, "two.837", text + second), unit_minutes=UNIT_MINUTES)

    segments_per_interchange = len(text.splitlines())
    assert frame.height == 2 * paid_encounters.height
    assert frame["source_row"].to_list() == [
        *paid_encounters["source_row"],
        *(row + segments_per_interchange for row in paid_encounters["source_row"]),
    ]


def test_patient_loop_still_bills_the_subscriber_member_id(tmp_path: Path) -> None:
    body = [
        *SUBMITTER_AND_RECEIVER,
        "HL*1**20*1",
        "NM1*85*2*PRAIRIE FAMILY PEER SUPPORT*****XX*1548729635",
        "N3*210 N MAIN ST",
        "N4*WICHITA*KS*672021400",
        "REF*EI*481234567",
        "HL*2*1*22*1",
        "SBR*P********MC",
        "NM1*IL*1*BAKER*ANNA****MI*10023456789",
        "NM1*PR*2*KANSAS MEDICAL ASSISTANCE PROGRAM*****PI*KSKMAP",
        "HL*3*2*23*0",
        "PAT*19",
        "NM1*QC*1*BAKER*LIAM",
        "N3*1200 OAK AVE",
        "N4*DERBY*KS*670370000",
        "DMG*D8*20150302*M",
        "CLM*SHP24050001*48***12:B:1*Y*A*Y*Y",
        "HI*ABK:F4310",
        "LX*1",
        "SV1*HC:H0038*48*UN*4***1",
        "DTP*472*D8*20240506",
    ]
    frame = read_837p(write(tmp_path, "patient.837", interchange(body)), unit_minutes=UNIT_MINUTES)

    assert frame.select("claim_id", "member_id", "hcpcs_code", "place_of_service_code").rows() == [
        ("SHP24050001", "10023456789", "H0038", "12")
    ]
    # No 2430 loop: a submission, not a paid encounter.
    assert frame.row(0, named=True)["paid_amount"] is None
    assert frame.row(0, named=True)["paid_date"] is None
    assert frame.row(0, named=True)[REASON] == SUBMISSION


def test_a_file_that_is_not_x12_is_refused() -> None:
    with pytest.raises(ValueError, match=r"paid_encounters\.csv.*ISA"):
        read_837p(PAID_ENCOUNTERS_CSV, unit_minutes=UNIT_MINUTES)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.837", "")
    with pytest.raises(ValueError, match=r"empty\.837.*ISA"):
        read_837p(path, unit_minutes=UNIT_MINUTES)


def test_a_remittance_file_is_not_an_837p(tmp_path: Path) -> None:
    remittance = interchange(
        ["BPR*I*36*C*ACH*CCP*01*999999999*DA*123456*1234567890**01*999988880*DA*98765*20240320"],
        functional_id="HP",
        version="005010X221A1",
        transaction="835",
    )
    path = write(tmp_path, "remittance.835", remittance)
    with pytest.raises(ValueError, match=r"remittance\.835: not an 837P"):
        read_837p(path, unit_minutes=UNIT_MINUTES)


@pytest.mark.parametrize(
    ("cut_before", "missing_trailer"),
    [("SE*", "SE"), ("GE*", "GE"), ("IEA*", "IEA"), ("LX*2~\nSV1*HC:H0038*42", "SE")],
)
def test_a_truncated_file_is_refused(tmp_path: Path, cut_before: str, missing_trailer: str) -> None:
    text = PAID_ENCOUNTERS.read_text()
    path = write(tmp_path, "truncated.837", text[: text.index(cut_before)])

    with pytest.raises(ValueError, match=rf"truncated\.837: truncated.*{missing_trailer}") as error:
        read_837p(path, unit_minutes=UNIT_MINUTES)
    assert not any(member_id in str(error.value) for member_id in FIXTURE_MEMBER_IDS)


def test_a_misplaced_segment_makes_the_loops_unreadable(tmp_path: Path) -> None:
    # REF*F8 belongs before HI in loop 2300; after it, no loop of the guide takes it.
    text = PAID_ENCOUNTERS.read_text().replace(
        "REF*F8*SHP24020017~\nHI*ABK:F4310~\n", "HI*ABK:F4310~\nREF*F8*SHP24020017~\n"
    )
    path = write(tmp_path, "misplaced.837", text)

    with pytest.raises(ValueError, match=r"misplaced\.837: segment 60 \(REF\)") as error:
        read_837p(path, unit_minutes=UNIT_MINUTES)
    assert not any(member_id in str(error.value) for member_id in FIXTURE_MEMBER_IDS)


def test_a_damaged_segment_is_not_quoted_in_the_message(tmp_path: Path) -> None:
    # A lost terminator can leave data where a segment ID belongs.
    text = PAID_ENCOUNTERS.read_text().replace("DMG*D8*20120614*M~\n", "10012345678*D8~\n")
    path = write(tmp_path, "damaged.837", text)

    with pytest.raises(ValueError, match=r"damaged\.837: segment 19 \(unrecognised\)") as error:
        read_837p(path, unit_minutes=UNIT_MINUTES)
    assert "10012345678" not in str(error.value)


def test_fixture_npis_carry_valid_check_digits(paid_encounters: pl.DataFrame) -> None:
    def luhn_valid(npi: str) -> bool:
        total = 0
        for i, digit in enumerate(reversed("80840" + npi)):
            value = int(digit) * (2 if i % 2 else 1)
            total += value - 9 if value > 9 else value
        return total % 10 == 0

    npis = pl.concat([paid_encounters["billing_npi"], paid_encounters["rendering_npi"]])
    assert all(luhn_valid(npi) for npi in npis.drop_nulls().unique())
    assert not luhn_valid("1234567891")  # the multi-claim sample's rendering NPI is not
