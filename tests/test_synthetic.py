"""Tests of the synthetic input generator itself.

The core check is an independent reading of rules.md: `expected_findings` reads only the
files the generator wrote (every dialect the contract accepts), resolves claim versions and
applies each rule literally. The generator's truth must equal it exactly, row for row, after
the first delivery and after the follow-up.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.audit.packs import discover
from pipelines.demo.synthetic import generate, generate_followup

MCOS = ("AETNA", "SUNFLOWER", "UHC", "HEALTHYBLUE")
RULES = {f"PPS{n:03d}" for n in range(1, 11)} | {"GEN001", "GEN002"}
LICENSED = {"LMHP", "LSCSW", "LCP", "LCPC", "LMFT", "LCMFT", "LP", "MD", "DO", "APRN", "PA"}
POLICY_EFFECTIVE = dt.date(2023, 1, 1)
FAR = dt.date(9999, 12, 31)
NEVER = dt.date(1, 1, 1)

Row = dict[str, str]
Finding = tuple[str, str, int, str, str]  # payer, claim_id, line, rule, severity


# ------------------------------------------------------------------------------------------
# Reading what was written


def read_rows(path: Path) -> list[Row]:
    if path.suffix == ".parquet":
        return [
            {k: "" if v is None else str(v) for k, v in row.items()}
            for row in pq.read_table(path).to_pylist()
        ]
    text = path.read_text(encoding="utf-8-sig")
    header = text.splitlines()[0]
    delimiter = "|" if header.count("|") > header.count(",") else ","
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter))


def required_date(value: str | None) -> dt.date:
    day = parse_date(value)
    assert day is not None, "a required date is blank"
    return day


def parse_date(value: str | None) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    if "-" in value:
        return dt.date.fromisoformat(value)
    if "/" in value:
        return dt.datetime.strptime(value, "%m/%d/%Y").date()
    return dt.datetime.strptime(value, "%Y%m%d").date()


def on_or_before(value: str | None, day: dt.date) -> bool:
    """A date is given and is not after `day` (a blank date never is)."""
    given = parse_date(value)
    return given is not None and given <= day


def flag(value: str | None) -> bool:
    return (value or "").strip().upper() == "Y"


def covers(start: dt.date | None, end: dt.date | None, day: dt.date) -> bool:
    """Inclusive span; blank start has no lower bound, blank end is open."""
    return (start or NEVER) <= day <= (end or FAR)


def three_years_apart(a: dt.date, b: dt.date) -> bool:
    earlier, later = sorted((a, b))
    years = later.year - earlier.year
    return years > 3 or (years == 3 and (later.month, later.day) >= (earlier.month, earlier.day))


def age_on(dob: dt.date, day: dt.date) -> int:
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def claim_files(input_dir: Path) -> list[Path]:
    """Claim files in load order: payer folder, then file name."""
    return sorted(
        (p for p in (input_dir / "claims").glob("*/*") if p.is_file()),
        key=lambda p: (p.parent.name, p.name),
    )


@dataclass
class Line:
    payer: str
    claim_id: str
    number: int
    row: Row
    paid: dt.date = NEVER  # the claim's paid date, read from its lowest line number

    def get(self, column: str) -> str:
        return (self.row.get(column) or "").strip()

    @property
    def dos(self) -> dt.date:
        return required_date(self.get("claim_line_start_date"))

    @property
    def last_day(self) -> dt.date:
        return parse_date(self.get("claim_line_end_date")) or self.dos

    @property
    def peer(self) -> str:
        return self.get("rendering_npi") or self.get("billing_npi")

    @property
    def modifiers(self) -> frozenset[str]:
        return frozenset(self.get(f"hcpcs_modifier_{i}").upper() for i in range(1, 5)) - {""}

    @property
    def in_scope(self) -> bool:
        return self.get("hcpcs_code").upper() == "H0038"


@dataclass
class Version:
    """Claim-level values of one claim version."""

    frequency: str
    original: str
    paid: dt.date
    delivery: int
    lines: list[Line]


def current_lines(input_dir: Path) -> list[Line]:
    """Lines of the current version of every claim, following rules.md's version rules."""
    latest: dict[tuple[str, str, int], tuple[Line, int]] = {}
    for order, path in enumerate(claim_files(input_dir)):
        payer = path.parent.name
        for row in read_rows(path):
            line = Line(payer, row["claim_id"].strip(), int(row["claim_line_number"]), row)
            latest[(payer, line.claim_id, line.number)] = (line, order)  # a resent line wins
    grouped: dict[tuple[str, str], list[tuple[Line, int]]] = defaultdict(list)
    for line, order in latest.values():
        grouped[(line.payer, line.claim_id)].append((line, order))
    versions: dict[tuple[str, str], Version] = {}
    for claim, entries in grouped.items():
        entries.sort(key=lambda e: e[0].number)
        head, order = entries[0]
        paid = required_date(head.get("paid_date"))
        lines = [line for line, _ in entries]
        for line in lines:
            line.paid = paid
        frequency = head.get("claim_frequency_code") or "1"
        versions[claim] = Version(frequency, head.get("original_claim_id"), paid, order, lines)

    def root(claim: tuple[str, str]) -> tuple[str, str]:
        seen = set()
        while claim not in seen and versions[claim].frequency in ("7", "8"):
            seen.add(claim)
            named = (claim[0], versions[claim].original)
            if named not in versions:
                break
            claim = named
        return claim

    chains: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for claim in versions:
        chains[root(claim)].append(claim)
    current: list[Line] = []
    for start, claims in chains.items():
        corrections = sorted(
            (c for c in claims if versions[c].frequency in ("7", "8")),
            key=lambda c: (versions[c].paid, versions[c].delivery),
        )
        if not corrections:  # the newest correction decides: a void removes the chain
            current += versions[start].lines
        elif versions[corrections[-1]].frequency == "7":
            current += versions[corrections[-1]].lines
    return current


def by(rows: list[Row], column: str) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row[column].strip()].append(row)
    return grouped


@dataclass
class Reference:
    """The reference files, indexed the way the rules look them up."""

    members: dict[str, dt.date | None]
    enrollment: dict[str, list[Row]]
    providers: dict[str, Row]
    stays: dict[str, list[Row]]
    plans: dict[str, list[Row]]
    consents: dict[str, list[Row]]
    caregivers: dict[str, list[Row]]
    caregiver_dob: dict[str, dt.date | None]
    participants: dict[tuple[str, str, int], list[Row]]

    @classmethod
    def load(cls, input_dir: Path) -> Reference:
        ref = {p.stem: read_rows(p) for p in (input_dir / "reference").glob("*.csv")}
        participants: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
        for r in ref.get("service_participants", []):
            key = (r["payer"].strip(), r["claim_id"].strip(), int(r["claim_line_number"]))
            participants[key].append(r)
        return cls(
            members={
                r["member_id"].strip(): parse_date(r["date_of_birth"]) for r in ref["members"]
            },
            enrollment=by(ref["enrollment"], "member_id"),
            providers={r["npi"].strip(): r for r in ref["providers"]},
            stays=by(ref["level_of_care"], "member_id"),
            plans=by(ref["treatment_plans"], "member_id"),
            consents=by(ref["consents"], "member_id"),
            caregivers=by(ref["caregivers"], "member_id"),
            caregiver_dob={
                r["caregiver_id"].strip(): parse_date(r["date_of_birth"]) for r in ref["caregivers"]
            },
            participants=participants,
        )


def expected_findings(input_dir: Path) -> set[Finding]:
    """Every finding rules.md asks for on this input, computed from the files alone."""
    ref = Reference.load(input_dir)
    members, enrollment, providers = ref.members, ref.enrollment, ref.providers
    stays, plans, consents, caregivers = ref.stays, ref.plans, ref.consents, ref.caregivers
    caregiver_dob, participants = ref.caregiver_dob, ref.participants

    lines = [ln for ln in current_lines(input_dir) if ln.in_scope]
    found: set[Finding] = set()

    def add(ln: Line, rule: str, severity: str = "violation") -> None:
        found.add((ln.payer, ln.claim_id, ln.number, rule, severity))

    sessions: dict[tuple[str, dt.date, str, str], set[str]] = defaultdict(set)
    for ln in lines:
        if "HQ" in ln.modifiers:
            key = (ln.peer, ln.dos, ln.get("place_of_service_code"), ln.get("session_id"))
            sessions[key].add(ln.get("member_id"))
    copies: dict[tuple[object, ...], list[Line]] = defaultdict(list)
    for ln in lines:
        member_id, dos, peer = ln.get("member_id"), ln.dos, ln.peer
        provider = providers.get(peer)
        if dos < POLICY_EFFECTIVE:
            add(ln, "PPS001")
        if "HQ" in ln.modifiers:
            key = (peer, dos, ln.get("place_of_service_code"), ln.get("session_id"))
            if len(sessions[key]) > 8:
                add(ln, "PPS002")
        for stay in stays.get(member_id, []):
            if stay["loc_category"].strip().upper() not in ("ACUTE", "RESIDENTIAL"):
                continue
            start, end = parse_date(stay["start_date"]), parse_date(stay["end_date"])
            last = FAR if end is None else end if end == start else end - dt.timedelta(days=1)
            if (start or NEVER) <= ln.last_day and last >= dos:
                add(ln, "PPS003")
                break
        attested_on = parse_date(provider["lived_experience_attested_date"]) if provider else None
        if (
            provider is None
            or not flag(provider["lived_experience_attested"])
            or (attested_on is not None and attested_on > dos)
        ):
            add(ln, "PPS004")
        if (
            provider is None
            or not covers(
                parse_date(provider["enrollment_start_date"]),
                parse_date(provider["enrollment_end_date"]),
                dos,
            )
            or not on_or_before(provider["pps_start_date"], dos)
        ):
            add(ln, "PPS005")
        # PPS006: the named caregivers, or else every caregiver active on the DOS.
        named = [
            r["caregiver_id"].strip()
            for r in participants.get((ln.payer, ln.claim_id, ln.number), [])
            if r["caregiver_id"].strip()
        ]
        if named:
            candidates = [caregiver_dob.get(c) for c in named]
        else:
            candidates = [
                parse_date(r["date_of_birth"])
                for r in caregivers.get(member_id, [])
                if covers(parse_date(r["start_date"]), parse_date(r["end_date"]), dos)
            ]
        provider_dob = parse_date(provider["date_of_birth"]) if provider else None
        passes = provider_dob is not None and any(
            c is not None and three_years_apart(c, provider_dob) for c in candidates
        )
        if not passes:
            complete = provider_dob is not None and candidates and all(candidates)
            add(ln, "PPS006", "violation" if complete else "documentation")
        eligible_with = [
            r["payer"].strip()
            for r in enrollment.get(member_id, [])
            if covers(parse_date(r["start_date"]), parse_date(r["end_date"]), dos)
        ]
        if member_id not in members or not eligible_with:
            add(ln, "PPS007")
        if not any(
            covers(parse_date(p["start_date"]), parse_date(p["end_date"]), dos)
            and flag(p["includes_pps"])
            and on_or_before(p["signed_date"], dos)
            and p["practitioner_license_type"].strip().upper() in LICENSED
            for p in plans.get(member_id, [])
        ):
            add(ln, "PPS008")
        dob = members.get(member_id)
        if dob is not None and age_on(dob, dos) >= 18:
            consented = any(
                c["consent_type"].strip().upper() == "PPS"
                and on_or_before(c["signed_date"], dos)
                and not on_or_before(c["revoked_date"], dos)  # revoked on the DOS: not in force
                for c in consents.get(member_id, [])
            )
            if not consented:
                add(ln, "PPS009")
        if any(
            flag(r["non_medicaid_participant"]) and not flag(r["direct_benefit_documented"])
            for r in participants.get((ln.payer, ln.claim_id, ln.number), [])
        ):
            add(ln, "PPS010", "documentation")
        if eligible_with and ln.payer not in eligible_with:
            add(ln, "GEN002")
        units = Decimal(ln.get("service_unit_quantity"))
        copies[(member_id, peer, dos, "H0038", ln.modifiers, units)].append(ln)

    for group in copies.values():
        claims = {(ln.payer, ln.claim_id) for ln in group}
        if len(claims) > 1:
            kept = min(group, key=lambda ln: (ln.paid, ln.claim_id))
            kept_claim = (kept.payer, kept.claim_id)
            for ln in group:
                if (ln.payer, ln.claim_id) != kept_claim:
                    add(ln, "GEN001")
    return found


def read_truth(path: Path) -> list[Row]:
    """The Parent Peer Support rows of the truth (each pack's scenarios are tested with it)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["policy_id"] == "h0038_parent_peer_support"]


def truth_row_count(path: Path) -> int:
    """Rows of the truth file, every policy's."""
    with path.open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def truth_keys(rows: list[Row]) -> set[Finding]:
    return {
        (r["payer"], r["claim_id"], int(r["claim_line_number"]), r["rule_id"], r["severity"])
        for r in rows
    }


def luhn_valid_npi(npi: str) -> bool:
    if len(npi) != 10 or not npi.isdigit():
        return False
    digits = [int(c) for c in "80840" + npi]
    total = sum(
        d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
        for i, d in enumerate(reversed(digits))
    )
    return total % 10 == 0


# ------------------------------------------------------------------------------------------
# Fixtures


@dataclass
class Generated:
    input_dir: Path
    truth: Path
    followup_truth: Path
    first_files: dict[str, bytes]


def _generate(root: Path, seed: int, members_per_mco: int = 40) -> Generated:
    input_dir, truth = root / "input", root / "truth.csv"
    generate(input_dir, truth, seed=seed, members_per_mco=members_per_mco)
    first = {
        str(p.relative_to(input_dir)): p.read_bytes() for p in input_dir.rglob("*") if p.is_file()
    }
    first["truth"] = truth.read_bytes()
    followup_truth = root / "truth_after_followup.csv"
    generate_followup(input_dir, followup_truth, seed=seed)
    return Generated(input_dir, truth, followup_truth, first)


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("default"), 2023)


@pytest.fixture(scope="module")
def first_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the first delivery only, for checks that must not see the follow-up."""
    root = tmp_path_factory.mktemp("first")
    generate(root / "input", root / "truth.csv")
    return root


# ------------------------------------------------------------------------------------------
# Truth equals an independent reading of rules.md


def test_first_delivery_truth_is_exactly_what_the_rules_find(first_only: Path) -> None:
    truth = read_truth(first_only / "truth.csv")
    assert truth_keys(truth) == expected_findings(first_only / "input")
    assert len(truth_keys(truth)) == len(truth), "one row per (line, rule)"
    assert all(r["scenario"].strip() for r in truth)


def test_followup_truth_is_exactly_what_the_rules_find(default: Generated) -> None:
    truth = read_truth(default.followup_truth)
    assert truth_keys(truth) == expected_findings(default.input_dir)
    assert len(truth_keys(truth)) == len(truth)


# Seed 39 first draws 29 February 2024 for an 18th-birthday DOS (a birth year without one).
@pytest.mark.parametrize(("seed", "members_per_mco"), [(7, 12), (39, 0)])
def test_other_seeds_and_sizes_stay_exact(tmp_path: Path, seed: int, members_per_mco: int) -> None:
    input_dir, truth = tmp_path / "input", tmp_path / "truth.csv"
    stats = generate(input_dir, truth, seed=seed, members_per_mco=members_per_mco)
    assert truth_keys(read_truth(truth)) == expected_findings(input_dir)
    assert stats.planted_findings == truth_row_count(truth)
    generate_followup(input_dir, truth, seed=seed)
    assert truth_keys(read_truth(truth)) == expected_findings(input_dir)


# ------------------------------------------------------------------------------------------
# Determinism and the interface


def test_same_seed_gives_the_same_bytes(tmp_path: Path, default: Generated) -> None:
    again = _generate(tmp_path, 2023)
    assert again.first_files == default.first_files
    assert again.followup_truth.read_bytes() == default.followup_truth.read_bytes()
    for name in ("AETNA", "SUNFLOWER", "UHC", "HEALTHYBLUE"):
        for path in (default.input_dir / "claims" / name).iterdir():
            assert (again.input_dir / "claims" / name / path.name).read_bytes() == path.read_bytes()


def test_a_different_seed_gives_a_different_world(tmp_path: Path, first_only: Path) -> None:
    generate(tmp_path / "input", tmp_path / "truth.csv", seed=1)
    ours = (first_only / "input/reference/members.csv").read_bytes()
    assert (tmp_path / "input/reference/members.csv").read_bytes() != ours


def in_any_pack_scope(lines: list[Line]) -> int:
    """Lines whose code some pack puts in scope: the demo audits every pack."""
    codes = {code for pack in discover().values() for code in pack.codes}
    return sum(ln.get("hcpcs_code").upper() in codes for ln in lines)


def test_stats_describe_what_was_written(tmp_path: Path) -> None:
    input_dir, truth = tmp_path / "input", tmp_path / "truth.csv"
    stats = generate(input_dir, truth, members_per_mco=15)
    written = [p for p in input_dir.rglob("*") if p.is_file()]
    assert stats.files == len(written) == 13
    assert stats.claim_lines == sum(len(read_rows(p)) for p in claim_files(input_dir))
    assert stats.in_scope_lines == in_any_pack_scope(current_lines(input_dir))
    assert stats.planted_findings == truth_row_count(truth)
    before = set(written)
    follow = generate_followup(input_dir, truth, seed=2023)
    new = [p for p in input_dir.rglob("*") if p.is_file() and p not in before]
    assert follow.files == len(new) == 4
    assert follow.claim_lines == sum(len(read_rows(p)) for p in new)
    assert follow.in_scope_lines == in_any_pack_scope(current_lines(input_dir))
    assert follow.planted_findings == truth_row_count(truth)
    with pytest.raises(AttributeError):
        stats.files = 0  # type: ignore[misc]


def test_followup_refuses_a_folder_from_another_seed(tmp_path: Path) -> None:
    generate(tmp_path / "input", tmp_path / "truth.csv", seed=5, members_per_mco=10)
    with pytest.raises(ValueError, match="not written by generate"):
        generate_followup(tmp_path / "input", tmp_path / "truth.csv", seed=6)


# ------------------------------------------------------------------------------------------
# Coverage of the rules


def test_truth_names_every_rule_and_both_pps006_severities(first_only: Path) -> None:
    truth = read_truth(first_only / "truth.csv")
    assert {r["rule_id"] for r in truth} == RULES
    assert {r["severity"] for r in truth if r["rule_id"] == "PPS006"} == {
        "violation",
        "documentation",
    }
    assert {r["severity"] for r in truth if r["rule_id"] == "PPS010"} == {"documentation"}
    assert {r["payer"] for r in truth} == set(MCOS)


def test_lines_break_several_rules_at_once(first_only: Path) -> None:
    rules_per_line: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for r in read_truth(first_only / "truth.csv"):
        rules_per_line[(r["payer"], r["claim_id"], r["claim_line_number"])].add(r["rule_id"])
    combos = list(rules_per_line.values())
    assert {"PPS004", "PPS005", "PPS006"} in combos  # an unknown peer provider
    assert {"PPS001", "PPS005"} in combos
    assert {"GEN001", "GEN002"} in combos
    assert {"PPS002", "PPS006", "PPS007", "PPS008"} in combos


def test_near_misses_exist_on_the_clean_side_of_every_boundary(first_only: Path) -> None:
    """The truth test proves near misses are not flagged; this proves they are there."""
    input_dir = first_only / "input"
    ref = Reference.load(input_dir)
    truth = read_truth(first_only / "truth.csv")
    flagged = {(r["payer"], r["claim_id"], int(r["claim_line_number"])) for r in truth}
    lines = [ln for ln in current_lines(input_dir) if ln.in_scope]
    clean = [ln for ln in lines if (ln.payer, ln.claim_id, ln.number) not in flagged]
    assert len(clean) > 0.8 * len(lines)

    def provider_date(ln: Line, column: str) -> dt.date | None:
        provider = ref.providers.get(ln.peer)
        return parse_date(provider[column]) if provider else None

    def some(name: str, test: Callable[[Line], bool]) -> None:
        assert any(test(ln) for ln in clean), f"no clean line: {name}"

    some("first day of the policy", lambda ln: ln.dos == POLICY_EFFECTIVE)
    some(
        "discharge day of a stay",
        lambda ln: any(
            s["loc_category"] in ("ACUTE", "RESIDENTIAL")
            and parse_date(s["end_date"]) == ln.dos
            and parse_date(s["start_date"]) != ln.dos
            for s in ref.stays.get(ln.get("member_id"), [])
        ),
    )
    some(
        "a stay starting the day after the line range",
        lambda ln: any(
            s["loc_category"] == "RESIDENTIAL"
            and parse_date(s["start_date"]) == ln.last_day + dt.timedelta(days=1)
            for s in ref.stays.get(ln.get("member_id"), [])
        ),
    )
    some(
        "community stay on the DOS",
        lambda ln: any(
            s["loc_category"] == "COMMUNITY"
            and covers(parse_date(s["start_date"]), parse_date(s["end_date"]), ln.dos)
            for s in ref.stays.get(ln.get("member_id"), [])
        ),
    )
    some(
        "attested on the DOS",
        lambda ln: provider_date(ln, "lived_experience_attested_date") == ln.dos,
    )
    some(
        "attested Y with no date",
        lambda ln: (
            ln.peer in ref.providers
            and flag(ref.providers[ln.peer]["lived_experience_attested"])
            and provider_date(ln, "lived_experience_attested_date") is None
        ),
    )
    some("PPS added on the DOS", lambda ln: provider_date(ln, "pps_start_date") == ln.dos)
    some(
        "enrollment ends on the DOS", lambda ln: provider_date(ln, "enrollment_end_date") == ln.dos
    )
    some("blank rendering NPI", lambda ln: not ln.get("rendering_npi"))
    some(
        "caregiver exactly 3 years apart",
        lambda ln: any(
            (dob := provider_date(ln, "date_of_birth")) is not None
            and (c := parse_date(r["date_of_birth"])) is not None
            and abs(c.year - dob.year) == 3
            and (c.month, c.day) == (dob.month, dob.day)
            for r in ref.caregivers.get(ln.get("member_id"), [])
        ),
    )
    some(
        "18th birthday on the DOS with consent",
        lambda ln: (
            (dob := ref.members.get(ln.get("member_id"))) is not None
            and age_on(dob, ln.dos) == 18
            and (dob.month, dob.day) == (ln.dos.month, ln.dos.day)
        ),
    )
    some(
        "consent signed on the DOS",
        lambda ln: any(
            parse_date(c["signed_date"]) == ln.dos
            for c in ref.consents.get(ln.get("member_id"), [])
        ),
    )
    some(
        "consent revoked the day after the DOS",
        lambda ln: any(
            parse_date(c["revoked_date"]) == ln.dos + dt.timedelta(days=1)
            for c in ref.consents.get(ln.get("member_id"), [])
        ),
    )
    some(
        "plan signed on the DOS",
        lambda ln: any(
            parse_date(p["signed_date"]) == ln.dos for p in ref.plans.get(ln.get("member_id"), [])
        ),
    )
    some(
        "plan ends on the DOS",
        lambda ln: any(
            parse_date(p["end_date"]) == ln.dos for p in ref.plans.get(ln.get("member_id"), [])
        ),
    )
    some(
        "no birth date on the member file",
        lambda ln: ln.get("member_id") in ref.members and ref.members[ln.get("member_id")] is None,
    )
    some(
        "first day with a new MCO",
        lambda ln: any(
            r["payer"] == ln.payer
            and parse_date(r["start_date"]) == ln.dos
            and len(ref.enrollment[ln.get("member_id")]) > 1
            for r in ref.enrollment.get(ln.get("member_id"), [])
        ),
    )
    some(
        "enrolled with two MCOs on the DOS",
        lambda ln: (
            len(
                {
                    r["payer"]
                    for r in ref.enrollment.get(ln.get("member_id"), [])
                    if covers(parse_date(r["start_date"]), parse_date(r["end_date"]), ln.dos)
                }
            )
            > 1
        ),
    )
    some(
        "non-Medicaid participant with direct benefit",
        lambda ln: any(
            flag(r["non_medicaid_participant"]) and flag(r["direct_benefit_documented"])
            for r in ref.participants.get((ln.payer, ln.claim_id, ln.number), [])
        ),
    )

    # Group sessions: exactly 8, and sessions of one provider and day totalling more than 8.
    sessions: dict[tuple[str, dt.date, str, str], set[str]] = defaultdict(set)
    for ln in lines:
        if "HQ" in ln.modifiers:
            key = (ln.peer, ln.dos, ln.get("place_of_service_code"), ln.get("session_id"))
            sessions[key].add(ln.get("member_id"))
    assert any(len(m) == 8 for m in sessions.values())
    per_day: dict[tuple[str, dt.date], list[set[str]]] = defaultdict(list)
    for (peer, dos, _, _), members in sessions.items():
        per_day[(peer, dos)].append(members)
    split = [s for s in per_day.values() if len(s) > 1 and all(len(m) <= 8 for m in s)]
    assert any(len(set().union(*s)) > 8 for s in split)
    group_lines: dict[tuple[str, dt.date, str, str], int] = defaultdict(int)
    for ln in lines:
        if "HQ" in ln.modifiers:
            key = (ln.peer, ln.dos, ln.get("place_of_service_code"), ln.get("session_id"))
            group_lines[key] += 1
    assert any(n > 8 and len(sessions[key]) == 8 for key, n in group_lines.items())

    # Duplicates: identical lines on one claim, and the same service with other units.
    same_claim: dict[tuple[object, ...], int] = defaultdict(int)
    services: dict[tuple[object, ...], set[str]] = defaultdict(set)
    for ln in lines:
        service = (ln.get("member_id"), ln.peer, ln.dos, ln.modifiers)
        same_claim[(*service, ln.payer, ln.claim_id, ln.get("service_unit_quantity"))] += 1
        services[service].add(ln.get("service_unit_quantity") + "@" + ln.claim_id)
    assert any(n > 1 for n in same_claim.values())
    assert any(len({u.split("@")[0] for u in v}) > 1 for v in services.values())


# ------------------------------------------------------------------------------------------
# Realism of the input


def test_identifiers_look_real(default: Generated) -> None:
    ref = default.input_dir / "reference"
    npis = {r["npi"] for r in read_rows(ref / "providers.csv")}
    npis |= {r["practitioner_npi"] for r in read_rows(ref / "treatment_plans.csv")}
    member_ids = {r["member_id"] for r in read_rows(ref / "members.csv")}
    member_ids |= {r["medicaid_id"] for r in read_rows(ref / "caregivers.csv") if r["medicaid_id"]}
    for path in claim_files(default.input_dir):
        for row in read_rows(path):
            npis |= {row["rendering_npi"], row["billing_npi"]} - {""}
            member_ids.add(row["member_id"])
    assert all(luhn_valid_npi(n) for n in npis)
    assert all(len(m) == 11 and m.isdigit() for m in member_ids)
    assert any(m.startswith("0") for m in member_ids), "leading zeros must survive"


def test_every_dialect_the_contract_accepts_is_used(default: Generated) -> None:
    files = claim_files(default.input_dir)
    by_payer = {p.parent.name: p for p in files if "2025063" in p.name}
    assert set(by_payer) == set(MCOS)
    aetna, sunflower = by_payer["AETNA"].read_bytes(), by_payer["SUNFLOWER"].read_bytes()
    assert aetna.startswith(b"\xef\xbb\xbf") and b"\r\n" in aetna
    assert by_payer["SUNFLOWER"].suffix == ".txt" and sunflower.split(b"\n")[0].count(b"|") > 10
    assert by_payer["UHC"].suffix == ".parquet"
    header = sunflower.decode().split("\n")[0].split("|")
    assert "session_id" not in header and "hcpcs_modifier_4" not in header
    dates = {
        path.parent.name: read_rows(path)[0]["claim_line_start_date"] for path in by_payer.values()
    }
    assert dt.date.fromisoformat(dates["AETNA"])
    assert len(dates["SUNFLOWER"]) == 10 and dates["SUNFLOWER"][2] == "/"
    assert len(dates["UHC"]) == 8 and dates["UHC"].isdigit()
    assert all("." in r["service_unit_quantity"] for r in read_rows(by_payer["HEALTHYBLUE"]))
    loc = (default.input_dir / "reference/level_of_care.csv").read_text()
    assert "|" in loc.splitlines()[0]


def test_claims_look_like_kancare_extracts(first_only: Path) -> None:
    input_dir = first_only / "input"
    rows = [(p.parent.name, r) for p in claim_files(input_dir) for r in read_rows(p)]
    h0038 = [(payer, r) for payer, r in rows if r["hcpcs_code"].strip().upper() == "H0038"]
    assert len(h0038) < 0.4 * len(rows), "most lines are other services"
    assert {r["hcpcs_code"] for _, r in h0038} >= {"H0038", " h0038 "}
    assert {r["hcpcs_code"] for _, r in rows} >= {"H0036", "H2017", "90837", "H0004", "H0039"}
    hq_positions = {
        i for _, r in h0038 for i in range(1, 5) if r.get(f"hcpcs_modifier_{i}") == "HQ"
    }
    assert hq_positions == {1, 2, 3, 4}
    assert {r["place_of_service_code"] for _, r in h0038} >= {"11", "12", "53", "99"}
    assert {int(Decimal(r["service_unit_quantity"])) for _, r in h0038} == set(range(1, 9))
    assert any(r["claim_line_end_date"] == "" for _, r in h0038)
    assert any(r.get("session_id", "x") == "" for _, r in h0038)
    assert any(r.get("session_id") for _, r in h0038)
    assert any(r["rendering_npi"] == "" for _, r in h0038)
    assert all(Decimal(r["paid_amount"]).as_tuple().exponent == -2 for _, r in rows), (
        "amounts carry cents"
    )

    dos: dict[str, list[dt.date]] = defaultdict(list)
    for payer, r in rows:
        dos[payer].append(required_date(r["claim_line_start_date"]))
    assert max(dos["AETNA"]) <= dt.date(2024, 12, 31)
    assert min(dos["HEALTHYBLUE"]) >= dt.date(2025, 1, 1)
    for payer in ("SUNFLOWER", "UHC"):
        assert min(dos[payer]).year <= 2023 and max(dos[payer]).year == 2025
    assert min(d for ds in dos.values() for d in ds) == dt.date(2022, 12, 20)

    frequencies = {r["claim_frequency_code"] for _, r in rows}
    assert {"1", "7", "8", ""} <= frequencies
    ids = defaultdict(set)
    for payer, r in rows:
        ids[r["claim_id"]].add(payer)
    assert any(len(payers) > 1 for payers in ids.values()), "a claim ID reused at two MCOs"


def test_first_delivery_has_a_two_deep_chain_in_one_file(first_only: Path) -> None:
    for path in claim_files(first_only / "input"):
        rows = read_rows(path)
        originals = {r["claim_id"]: r["original_claim_id"] for r in rows if r["original_claim_id"]}
        if any(originals.get(original) for original in originals.values()):
            return
    pytest.fail("no replacement of a replacement within one file")


def test_reference_files_follow_the_contract(default: Generated) -> None:
    ref = default.input_dir / "reference"
    columns = {
        "members": "member_id date_of_birth",
        "enrollment": "member_id payer start_date end_date",
        "providers": "npi provider_name enrollment_start_date enrollment_end_date pps_start_date "
        "lived_experience_attested lived_experience_attested_date date_of_birth provider_type",
        "level_of_care": "member_id loc_category loc_type start_date end_date",
        "treatment_plans": "plan_id member_id start_date end_date includes_pps signed_date "
        "practitioner_npi practitioner_license_type",
        "consents": "member_id consent_type signed_date revoked_date",
        "caregivers": "caregiver_id member_id relationship date_of_birth medicaid_id "
        "start_date end_date",
        "service_participants": "payer claim_id claim_line_number caregiver_id "
        "non_medicaid_participant direct_benefit_documented",
        "mco_implementation": "payer implemented_date reprocessing_completed_date policy",
    }
    for name, expected in columns.items():
        rows = read_rows(ref / f"{name}.csv")
        assert rows and list(rows[0]) == expected.split(), name
    mco = {r["payer"]: r for r in read_rows(ref / "mco_implementation.csv")}
    assert set(mco) == set(MCOS)
    assert any(not r["implemented_date"] for r in mco.values())
    assert any(r["reprocessing_completed_date"] for r in mco.values())
    first_paid = {
        p.parent.name: min(required_date(r["paid_date"]) for r in read_rows(p))
        for p in claim_files(default.input_dir)
    }
    assert any(
        r["implemented_date"] and not on_or_before(r["implemented_date"], first_paid[payer])
        for payer, r in mco.items()
    ), "some lines were paid before their MCO implemented the policy"


# ------------------------------------------------------------------------------------------
# The follow-up delivery


def test_followup_adds_a_later_file_per_mco(default: Generated) -> None:
    files = claim_files(default.input_dir)
    for payer in MCOS:
        first, second = (p for p in files if p.parent.name == payer)
        assert first.name < second.name
        first_paid = max(required_date(r["paid_date"]) for r in read_rows(first))
        new = read_rows(second)
        assert new
        fresh = {r["claim_id"] for r in new} - {r["claim_id"] for r in read_rows(first)}
        assert all(
            required_date(r["paid_date"]) > first_paid for r in new if r["claim_id"] in fresh
        )
    second_rows = [r for p in files if "20250930" in p.name for r in read_rows(p)]
    assert {"7", "8"} <= {r["claim_frequency_code"] for r in second_rows}


def test_followup_fixes_keeps_and_adds_findings(default: Generated) -> None:
    before = {k[:4] for k in truth_keys(read_truth(default.input_dir.parent / "truth.csv"))}
    after = {k[:4] for k in truth_keys(read_truth(default.followup_truth))}
    resolved, opened = before - after, after - before
    assert {k[3] for k in resolved} >= {"PPS001", "PPS002", "PPS004", "GEN001", "GEN002"}
    # Findings carried by a replacement: the new claim names a claim that had the same rule.
    rows = [
        (p.parent.name, r)
        for p in claim_files(default.input_dir)
        if "20250930" in p.name
        for r in read_rows(p)
    ]
    replaced = {
        (payer, r["claim_id"]): r["original_claim_id"]
        for payer, r in rows
        if r["claim_frequency_code"] == "7"
    }
    carried = [k for k in opened if (k[0], k[1]) in replaced]
    assert carried, "a replacement still breaking its rule"
    brand_new = [k for k in opened if (k[0], k[1]) not in replaced]
    assert {k[3] for k in brand_new} >= {"PPS004", "PPS008", "GEN001"}
    originals = set(replaced.values())
    assert any(k[1] in originals for k in before), "a replacement of a replacement"
