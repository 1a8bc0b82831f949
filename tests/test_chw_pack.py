"""The Community Health Worker pack (KMAP 23175) on its own: facts, suite, scenarios.

The facts are built from hand-made in-scope lines (the engine's shape) and a provider file,
then validated by Great Expectations itself with the pack's suite, through the engine's
evaluate. The line columns are joined back to the facts as the engine does, and the pack's
parameters are handed to GX with dates as datetimes at midnight (GX 1.24 compares nothing
else with a date column) and to the details as written.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import random
import tomllib
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from pipelines.audit.rules import RuleSet, evaluate, load_suite_definition
from pipelines.demo.synthetic import generate, generate_followup

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "policies" / "chw_community_health_worker"
SUITE = ROOT / "expectations" / "chw_community_health_worker.json"
GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "h0038_demo_findings.csv"
POLICY_ID = "chw_community_health_worker"
KEY = ["payer", "claim_id", "claim_line_number"]
CHW_RULES = {f"CHW{n:03d}" for n in range(1, 7)}
GROUP, CMHC, FQHC, CHW = "1000000001", "1000000002", "1000000003", "1000000004"

LINE_SCHEMA = pl.Schema(
    {
        "payer": pl.String(),
        "claim_id": pl.String(),
        "claim_line_number": pl.Int32(),
        "chain_root_id": pl.String(),
        "member_id": pl.String(),
        "peer_npi": pl.String(),
        "rendering_npi": pl.String(),
        "billing_npi": pl.String(),
        "hcpcs_code": pl.String(),
        "hcpcs_modifier_1": pl.String(),
        "hcpcs_modifier_2": pl.String(),
        "hcpcs_modifier_3": pl.String(),
        "hcpcs_modifier_4": pl.String(),
        "service_date": pl.Date(),
        "service_end_date": pl.Date(),
        "place_of_service_code": pl.String(),
        "service_unit_quantity": pl.Decimal(18, 4),
        "paid_amount": pl.Decimal(18, 2),
        "paid_date": pl.Date(),
        "session_id": pl.String(),
        "delivery_id": pl.Int64(),
        "source_row": pl.Int64(),
    }
)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"chw_{name}", PACK / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FACTS = _load("facts")
with (PACK / "policy.toml").open("rb") as handle:
    POLICY = tomllib.load(handle)
PARAMETERS: dict[str, Any] = POLICY["parameters"]


def line(
    claim_id: str,
    dos: str,
    units: str | int,
    *,
    paid: str = "2023-09-01",
    payer: str = "UHC",
    number: int = 1,
    member: str | None = "00000000001",
    amount: str = "20.00",
    modifiers: tuple[str, ...] = ("U7",),
    pos: str = "11",
    billing: str = GROUP,
    rendering: str | None = CHW,
    code: str = "98960",
) -> dict[str, Any]:
    padded = [*modifiers, None, None, None, None]
    return {
        "payer": payer,
        "claim_id": claim_id,
        "claim_line_number": number,
        "chain_root_id": claim_id,
        "member_id": member,
        "peer_npi": rendering or billing,
        "rendering_npi": rendering,
        "billing_npi": billing,
        "hcpcs_code": code,
        **{f"hcpcs_modifier_{i}": padded[i - 1] for i in range(1, 5)},
        "service_date": dt.date.fromisoformat(dos),
        "service_end_date": dt.date.fromisoformat(dos),
        "place_of_service_code": pos,
        "service_unit_quantity": Decimal(str(units)),
        "paid_amount": Decimal(amount),
        "paid_date": dt.date.fromisoformat(paid),
        "session_id": None,
        "delivery_id": 1,
        "source_row": 0,
    }


def lines_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=LINE_SCHEMA)
    return frame.with_row_index("line_key").with_columns(pl.col("line_key").cast(pl.UInt32))


def providers_frame(rows: list[tuple[str, str, str | None, str | None]]) -> pl.DataFrame:
    """(npi, provider_type, enrollment start, enrollment end) rows, in delivery order."""
    return pl.DataFrame(
        [
            {
                "npi": npi,
                "provider_type": kind,
                "enrollment_start_date": dt.date.fromisoformat(s) if s else None,
                "enrollment_end_date": dt.date.fromisoformat(e) if e else None,
                "delivery_id": 1,
                "source_row": i,
            }
            for i, (npi, kind, s, e) in enumerate(rows)
        ],
        schema={
            "npi": pl.String,
            "provider_type": pl.String,
            "enrollment_start_date": pl.Date,
            "enrollment_end_date": pl.Date,
            "delivery_id": pl.Int64,
            "source_row": pl.Int64,
        },
    )


PROVIDERS = providers_frame(
    [
        (GROUP, "PHYSICIAN", "2015-01-01", None),
        (CMHC, "CMHC", "2015-01-01", None),
        (FQHC, "FQHC", "2015-01-01", None),
        (CHW, "", "2015-01-01", None),
    ]
)


def audit(rows: list[dict[str, Any]], providers: pl.DataFrame = PROVIDERS) -> pl.DataFrame:
    """The pack's findings on these lines: key, rule, severity, detail, amount at risk."""
    lines = lines_frame(rows)
    facts = FACTS.build_facts(lines, {"providers": providers}, PARAMETERS)
    assert facts.height == lines.height
    assert not set(facts.columns) & (set(LINE_SCHEMA) - {"line_key"}), "no line column repeated"
    joined = facts.join(lines, on="line_key")
    return evaluate(joined, RuleSet(POLICY_ID, load_suite_definition(SUITE), dict(PARAMETERS)))


def rows_of(found: pl.DataFrame, rule: str) -> list[tuple[str, str, Decimal | None]]:
    return [
        (r["claim_id"], r["detail"], r["amount_at_risk"])
        for r in found.filter(pl.col("rule_id") == rule).sort(KEY).iter_rows(named=True)
    ]


# CHW003: the daily cap ------------------------------------------------------------------


def test_two_plus_two_plus_two_flags_only_the_third_line_with_its_whole_paid_amount() -> None:
    found = audit(
        [
            line("C1", "2023-08-02", 2, paid="2023-08-10", code="98960"),
            line("C2", "2023-08-02", 2, paid="2023-08-12", code="98961", billing=CMHC),
            line("C3", "2023-08-02", 2, paid="2023-08-14", code="98962", amount="15.50"),
        ]
    )
    assert rows_of(found, "CHW003") == [
        (
            "C3",
            "member had 6 units on 2023-08-02 (limit 4); 2 of this line's 2 units are over",
            Decimal("15.50"),
        )
    ]


def test_three_plus_three_flags_the_second_line_with_two_thirds_of_its_amount() -> None:
    found = audit(
        [
            line("C1", "2023-08-02", 3, paid="2023-08-10"),
            line("C2", "2023-08-02", 3, paid="2023-08-11", code="98961", amount="100.00"),
        ]
    )
    assert rows_of(found, "CHW003") == [
        (
            "C2",
            "member had 6 units on 2023-08-02 (limit 4); 2 of this line's 3 units are over",
            Decimal("66.67"),
        )
    ]


def test_four_units_from_two_providers_and_two_mcos_are_at_the_limit() -> None:
    found = audit(
        [
            line("S1", "2023-09-12", 2, payer="SUNFLOWER", billing=GROUP),
            line("U1", "2023-09-12", 2, payer="UHC", billing=CMHC, code="98961"),
        ]
    )
    assert found.filter(pl.col("rule_id").is_in(["CHW003", "CHW004"])).height == 0


def test_the_cap_is_the_members_across_mcos_and_providers_in_payment_order() -> None:
    # paid first by UHC, then SUNFLOWER: the later-paid SUNFLOWER line goes over
    found = audit(
        [
            line("S1", "2023-09-12", 3, payer="SUNFLOWER", paid="2023-09-30", billing=CMHC),
            line("U1", "2023-09-12", 3, payer="UHC", paid="2023-09-20", code="98961"),
        ]
    )
    assert [(r[0]) for r in rows_of(found, "CHW003")] == ["S1"]


def test_a_payment_date_tie_breaks_by_payer_then_claim_id_as_text_then_line_number() -> None:
    paid = "2023-10-20"
    by_payer = audit(
        [
            line("1", "2023-10-05", 3, payer="UHC", paid=paid),
            line("9", "2023-10-05", 3, payer="SUNFLOWER", paid=paid, code="98961"),
        ]
    )
    assert [
        (r["payer"], r["claim_id"])
        for r in by_payer.filter(pl.col("rule_id") == "CHW003").iter_rows(named=True)
    ] == [("UHC", "1")]
    # "10" sorts before "9" as text (not as a number): the claim 9 line goes over
    by_claim = audit(
        [
            line("9", "2023-10-05", 3, paid=paid),
            line("10", "2023-10-05", 3, paid=paid, code="98961"),
        ]
    )
    assert [r[0] for r in rows_of(by_claim, "CHW003")] == ["9"]
    by_line = audit(
        [
            line("7", "2023-10-05", 3, paid=paid, number=2),
            line("7", "2023-10-05", 3, paid=paid, number=1, code="98961"),
        ]
    )
    flagged = by_line.filter(pl.col("rule_id") == "CHW003")
    assert flagged["claim_line_number"].to_list() == [2]


def test_other_members_and_other_days_do_not_share_a_cap() -> None:
    found = audit(
        [
            line("A", "2023-08-02", 4, member="00000000001"),
            line("B", "2023-08-02", 4, member="00000000002", code="98961"),
            line("C", "2023-08-03", 4, member="00000000001", code="98962"),
        ]
    )
    assert found.filter(pl.col("rule_id") == "CHW003").height == 0


def test_lines_without_a_member_id_are_never_pooled() -> None:
    found = audit(
        [
            line("A", "2023-08-02", 3, member=None),
            line("B", "2023-08-02", 3, member=None, code="98961"),
        ]
    )
    assert found.filter(pl.col("rule_id") == "CHW003").height == 0


def test_zero_unit_and_negative_paid_lines_count_their_units() -> None:
    found = audit(
        [
            # paid a negative amount: its 3 units still count
            line("N", "2023-08-02", 3, paid="2023-08-05", amount="-30.00"),
            line("P", "2023-08-02", 2, paid="2023-08-06", amount="20.00", code="98961"),
            # after the total went over, a line of 0 units adds nothing: not over
            line("Z", "2023-08-02", 0, paid="2023-08-07", amount="0.00", code="98962"),
        ]
    )
    assert rows_of(found, "CHW003") == [
        (
            "P",
            "member had 5 units on 2023-08-02 (limit 4); 1 of this line's 2 units are over",
            Decimal("10.00"),
        )
    ]
    # a negative-paid line that goes over puts its (negative) share at risk
    negative = audit(
        [
            line("A", "2023-08-02", 4, paid="2023-08-05"),
            line("B", "2023-08-02", 3, paid="2023-08-06", amount="-30.00", code="98961"),
        ]
    )
    assert rows_of(negative, "CHW003")[0][2] == Decimal("-30.00")


def test_fractional_units_are_exact_at_the_limit() -> None:
    # 1.1 + 1.2 + 1.7 is exactly 4 (as floats it is a hair above)
    found = audit(
        [
            line("A", "2023-08-02", "1.1", paid="2023-08-05"),
            line("B", "2023-08-02", "1.2", paid="2023-08-06", code="98961"),
            line("C", "2023-08-02", "1.7", paid="2023-08-07", code="98962"),
        ]
    )
    assert found.filter(pl.col("rule_id") == "CHW003").height == 0
    over = audit(
        [
            line("A", "2023-08-02", "3.5", paid="2023-08-05"),
            line("B", "2023-08-02", "1.5", paid="2023-08-06", code="98961", amount="10.00"),
        ]
    )
    assert rows_of(over, "CHW003") == [
        (
            "B",
            "member had 5 units on 2023-08-02 (limit 4); 1 of this line's 1.5 units are over",
            Decimal("6.67"),
        )
    ]


# CHW004: the monthly cap ----------------------------------------------------------------


def _august(units_by_day: list[tuple[int, int]], *, paid_from: int = 1) -> list[dict[str, Any]]:
    return [
        line(f"M{k:02d}", f"2023-08-{day:02d}", units, paid=f"2023-09-{paid_from + k:02d}")
        for k, (day, units) in enumerate(units_by_day)
    ]


def test_twenty_four_units_in_august_and_one_on_the_first_of_september_are_within() -> None:
    rows = _august([(d, 4) for d in (1, 2, 3, 4, 7, 8)])
    rows.append(line("S", "2023-09-01", 1, paid="2023-09-20"))
    assert audit(rows).filter(pl.col("rule_id") == "CHW004").height == 0


def test_units_over_the_daily_limit_count_toward_the_month() -> None:
    rows = _august([(d, 4) for d in (14, 15, 16, 17, 18)])
    rows += [
        line("D1", "2023-08-21", 3, paid="2023-09-10"),
        line("D2", "2023-08-21", 2, paid="2023-09-11", code="98961", amount="20.50"),
        line("L", "2023-08-28", 3, paid="2023-09-12", code="98962", amount="30.00"),
    ]
    found = audit(rows)
    assert rows_of(found, "CHW003") == [
        (
            "D2",
            "member had 5 units on 2023-08-21 (limit 4); 1 of this line's 2 units are over",
            Decimal("10.25"),
        )
    ]
    assert rows_of(found, "CHW004") == [
        (
            "D2",
            "member had 28 units in 2023-08 (limit 24); 1 of this line's 2 units are over",
            Decimal("10.25"),
        ),
        (
            "L",
            "member had 28 units in 2023-08 (limit 24); 3 of this line's 3 units are over",
            Decimal("30.00"),
        ),
    ]


# CHW001, CHW002, CHW005, CHW006 -----------------------------------------------------------


def test_a_dos_before_the_effective_date_is_flagged_and_the_first_day_is_not() -> None:
    found = audit([line("E0", "2023-06-30", 1), line("E1", "2023-07-01", 1, code="98961")])
    assert rows_of(found, "CHW001") == [
        ("E0", "DOS 2023-06-30 is before the policy effective date 2023-07-01", None)
    ]


def test_u7_is_required_in_any_modifier_position() -> None:
    found = audit(
        [
            line("M0", "2023-08-01", 1, modifiers=("HA",), code="98961"),
            line("M4", "2023-08-02", 1, modifiers=("U1", "UK", "HA", "U7")),
            line("MX", "2023-08-03", 1, modifiers=()),
        ]
    )
    assert rows_of(found, "CHW002") == [
        ("M0", "98961 billed without modifier U7 (trained CHW)", None),
        ("MX", "98960 billed without modifier U7 (trained CHW)", None),
    ]


def test_an_excluded_billing_provider_is_flagged_and_an_excluded_rendering_one_is_not() -> None:
    providers = providers_frame(
        [
            (GROUP, "PHYSICIAN", "2015-01-01", None),
            (FQHC, " fqhc ", "2015-01-01", None),
            ("1000000005", "RHC", "2010-01-01", "2023-06-30"),  # ended before the DOS
            ("1000000006", "", "2015-01-01", None),  # blank: unknown
            ("1000000007", "PHYSICIAN", "2015-01-01", None),  # two rows: any excluded one
            ("1000000007", "IHC", "2023-01-01", None),
        ]
    )
    found = audit(
        [
            line("F1", "2023-08-01", 1, billing=FQHC),
            line("F2", "2023-08-02", 1, billing=GROUP, rendering=FQHC),
            line("F3", "2023-08-03", 1, billing="1000000005"),
            line("F4", "2023-08-04", 1, billing="1000000006"),
            line("F5", "2023-08-05", 1, billing="1000000007"),
            line("F6", "2023-08-06", 1, billing="1999999999"),  # not on the file
        ],
        providers,
    )
    assert rows_of(found, "CHW005") == [
        ("F1", f"billing provider NPI {FQHC} is an FQHC", None),
        ("F5", "billing provider NPI 1000000007 is an IHC", None),
    ]


def test_a_provider_file_without_provider_type_excludes_nobody() -> None:
    found = audit([line("F1", "2023-08-01", 1, billing=FQHC)], PROVIDERS.drop("provider_type"))
    assert found.filter(pl.col("rule_id") == "CHW005").height == 0


def test_telehealth_markers_are_documentation_findings_and_hq_is_not_one() -> None:
    found = audit(
        [
            line("T1", "2023-08-01", 1, pos="10"),
            line("T2", "2023-08-02", 1, pos="02", modifiers=("U7", "95")),
            line("T3", "2023-08-03", 1, modifiers=("GT", "U7")),
            line("T4", "2023-08-04", 1, modifiers=("U7", "HQ"), code="98961"),
        ]
    )
    assert rows_of(found, "CHW006") == [
        ("T1", "billed as telehealth (POS 10) although the service is face-to-face", None),
        (
            "T2",
            "billed as telehealth (POS 02, modifier 95) although the service is face-to-face",
            None,
        ),
        ("T3", "billed as telehealth (modifier GT) although the service is face-to-face", None),
    ]
    assert set(found.filter(pl.col("rule_id") == "CHW006")["severity"]) == {"documentation"}


# the whole pack --------------------------------------------------------------------------


def test_the_order_of_the_input_rows_does_not_change_the_findings() -> None:
    rows = [
        *_august([(d, 4) for d in (14, 15, 16, 17, 18)]),
        line("D1", "2023-08-21", 3, paid="2023-09-10", payer="SUNFLOWER"),
        line("D2", "2023-08-21", 3, paid="2023-09-10", code="98961", amount="33.33"),
        line("D3", "2023-08-21", 1, paid="2023-09-10", code="98962", number=2),
        line("X", "2023-06-30", 1, pos="10", modifiers=(), billing=FQHC),
    ]
    expected = audit(rows).sort([*KEY, "rule_id"])
    assert set(expected["rule_id"]) == CHW_RULES
    for seed in range(3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        assert audit(shuffled).sort([*KEY, "rule_id"]).equals(expected)


def test_every_threshold_is_a_parameter_the_suite_compares() -> None:
    definition = load_suite_definition(SUITE)
    by_rule = {e["meta"]["rule_id"]: e for e in definition["expectations"]}
    assert set(by_rule) == CHW_RULES
    assert by_rule["CHW001"]["kwargs"]["min_value"] == {"$PARAMETER": "effective_date"}
    assert by_rule["CHW003"]["kwargs"]["max_value"] == {"$PARAMETER": "daily_unit_limit"}
    assert by_rule["CHW004"]["kwargs"]["max_value"] == {"$PARAMETER": "monthly_unit_limit"}
    for e in definition["expectations"]:
        for name in ("title", "severity", "bulletin_text", "flagged_when", "detail"):
            assert e["meta"][name], (e["meta"]["rule_id"], name)


def test_a_changed_limit_in_the_parameters_moves_the_finding() -> None:
    lines = lines_frame(
        [
            line("A", "2023-08-02", 3, paid="2023-08-05"),
            line("B", "2023-08-02", 2, paid="2023-08-06", code="98961"),
        ]
    )
    definition = load_suite_definition(SUITE)
    for limit, within in ((4, False), (5, True)):
        limits = {**PARAMETERS, "daily_unit_limit": limit}
        facts = FACTS.build_facts(lines, {"providers": PROVIDERS}, limits)
        found = evaluate(facts.join(lines, on="line_key"), RuleSet(POLICY_ID, definition, limits))
        assert ("CHW003" not in found["rule_id"]) is within, limit


# the demo world ---------------------------------------------------------------------------


def _truth(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_demo_plants_every_chw_rule_and_keeps_the_parent_peer_support_truth(
    tmp_path: Path,
) -> None:
    generate(tmp_path / "input", tmp_path / "truth.csv")
    first = _truth(tmp_path / "truth.csv")
    chw = [r for r in first if r["policy_id"] == POLICY_ID]
    assert {r["rule_id"] for r in chw} == CHW_RULES | {"GEN001", "GEN002"}
    assert {r["severity"] for r in chw if r["rule_id"] == "CHW006"} == {"documentation"}
    generate_followup(tmp_path / "input", tmp_path / "truth.csv")
    after = _truth(tmp_path / "truth.csv")
    assert [r for r in after if r["policy_id"] == POLICY_ID] == chw
    # the Parent Peer Support truth after both deliveries is the golden run's open findings
    h0038 = {
        (r["payer"], r["claim_id"], r["claim_line_number"], r["rule_id"], r["severity"])
        for r in after
        if r["policy_id"] == "h0038_parent_peer_support"
    }
    golden = {
        (r["payer"], r["claim_id"], r["claim_line_number"], r["rule_id"], r["severity"])
        for r in _truth(GOLDEN)
        if r["status"] == "open"
    }
    assert h0038 == golden
    providers = pl.read_csv(tmp_path / "input" / "reference" / "providers.csv", infer_schema=False)
    assert {"FQHC", "RHC", "PHYSICIAN", "CMHC"} <= set(providers["provider_type"].drop_nulls())
