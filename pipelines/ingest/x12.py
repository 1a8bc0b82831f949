"""Read X12 837P professional claim files (005010X222A1) as claim lines.

One row per service line (loop 2400), in the data contract's claim columns, every value a
string, plus ``source_row``: the number of the line's SV1 segment in the file, so an analyst
can find it, and ``reason``: why the line cannot load as a paid line (blank when it can).

Units: SV104 counts what SV103 names, units (UN) or minutes (MJ); minutes are converted to
units with the policy's unit length. Paid amount and date: an encounter is submitted by the
MCO that paid it (1000A NM1*41), which reports its own line adjudication in a 2430 loop
whose SVD01 is its identifier; 2430 loops of other payers (commercial insurance paid or
denied first) say nothing about what the MCO paid.

Parser: pyx12 (``X12ContextReader`` over its 005010X222A1 map). It takes the element,
component and segment separators from the ISA header and places every segment in its
implementation-guide loop, which is what tells the payer claim number (2300 REF*F8) from
another payer's (2330B REF*F8), the claim's adjudication date (2330B DTP*573) from the
line's (2430 DTP*573), and the claim's rendering provider (2310B) from the line's (2420A).
A segment that pyx12 cannot place in the guide makes the whole file unreadable here
(``ValueError``): the loops around it, and so the line it belongs to, can no longer be
trusted. Missing SE/GE/IEA trailers are refused too; their counts and control numbers
are not checked (published samples get them wrong without losing data). pyx12 validates
as it reads, at a few thousand segments a second.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any, TextIO

import polars as pl
import pyx12.error_handler
import pyx12.errors
import pyx12.params
import pyx12.x12context

from pipelines.ingest.datasets import CLAIM_COLUMNS

REASON = "reason"  # why a line is set aside; blank on a line that loads
_SCHEMA: dict[str, pl.DataType] = {
    **{column: pl.String() for column in CLAIM_COLUMNS},
    "source_row": pl.Int64(),
    REASON: pl.String(),
}

# SV103, the basis of the SV104 quantity: the only two codes the 837P guide allows
_UNITS = "UN"
_MINUTES = "MJ"
_UNIT_PLACES = Decimal("0.0001")  # units are exact decimals with four places
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)")  # an X12 decimal (R): optional minus, no exponent
_SUBMITTER = "41"  # NM101 of the submitter's name (1000A)

# Why a line's paid amount is not taken (the ingest quarantines the line with the reason)
SUBMISSION = "no 2430 line adjudication: a submission, not a paid encounter"
NO_PAYING_MCO = "the transaction names no submitter (1000A NM1*41 NM109), so no paying MCO"
OTHER_PAYERS_ONLY = (
    "no 2430 line adjudication by the paying MCO (no SVD01 is the 1000A submitter): "
    "only other payers adjudicated the line"
)

# The ISA header is fixed-length: its 4th character is the element separator, the 105th
# the component separator and the 106th the segment terminator.
_ISA_LENGTH = 106
_ISA_ELEMENT_COUNT = 16
_PROFESSIONAL_CLAIM_VERSION = "005010X222"
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")

# Envelopes: the header each trailer closes, and the header each header must sit in.
_HEADER_CLOSED_BY = {"SE": "ST", "GE": "GS", "IEA": "ISA"}
_TRAILER_OF = {header: trailer for trailer, header in _HEADER_CLOSED_BY.items()}
_ENCLOSING_HEADER = {"GS": "ISA", "ST": "GS"}

# pyx12 node types are untyped; these aliases only say which kind of node is expected.
_Loop = Any
_SegmentNode = Any
_Segment = Any

ClaimLine = dict[str, Any]


def read_837p(path: Path, *, unit_minutes: Mapping[str, int]) -> pl.DataFrame:
    """Return one row per 837P service line, in CLAIM_COLUMNS plus ``source_row`` and ``reason``.

    ``unit_minutes`` gives each code's unit length (its policy's), for lines billed in
    minutes; a line in minutes of a code no policy gives one is set aside. A line whose
    units or paid amount cannot be read for sure keeps its row, with the reason set.

    Raises ValueError, naming the file, when it is not an 005010X222A1 837P, when it is
    truncated (an ISA, GS or ST without its IEA, GE or SE trailer), or when a segment is not
    where the implementation guide allows it.
    """
    path = Path(path)
    lines: list[ClaimLine] = []
    envelope = _Envelope(path)
    placement = _SegmentPlacement()
    paying_mco: str | None = None
    # Names and addresses may carry characters outside X12's character set; replacing them
    # keeps the file readable, and no code or identifier read here can contain them.
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        start = _skip_leading_whitespace(handle)
        _check_interchange_header(path, handle.read(_ISA_LENGTH))
        handle.seek(start)
        reader: pyx12.x12context.X12ContextReader | None = None
        try:
            # ParamsBase: pyx12's defaults, without the user's or the site's config files.
            reader = pyx12.x12context.X12ContextReader(pyx12.params.ParamsBase(), placement, handle)
            for node in reader.iter_segments("2000A"):
                placement.raise_if_misplaced(path)
                if node.type == "loop":
                    lines.extend(
                        _billing_provider_lines(
                            node, paying_mco=paying_mco, unit_minutes=unit_minutes
                        )
                    )
                else:
                    envelope.track(node)
                    paying_mco = _submitter(node.seg_data, paying_mco)
        except (pyx12.errors.X12Error, pyx12.errors.EngineError):
            # pyx12's messages may quote segment data, member IDs among it: say where instead.
            where = f" at segment {reader.get_cur_line}" if reader is not None else ""
            raise ValueError(
                f"{path}: not a readable 005010X222A1 837P: the X12 reader stopped{where}"
            ) from None
    placement.raise_if_misplaced(path)
    envelope.check_complete()
    lines.sort(key=lambda line: line["source_row"])
    return pl.DataFrame(lines, schema=_SCHEMA)


def _skip_leading_whitespace(handle: TextIO) -> int:
    """Step over blank lines a transfer may have put before the ISA; return where it starts."""
    while True:
        position = handle.tell()
        character = handle.read(1)
        if not character.isspace():
            handle.seek(position)
            return position


def _check_interchange_header(path: Path, header: str) -> None:
    """Refuse a file whose fixed-length ISA header cannot give the separators."""
    if not header.startswith("ISA"):
        raise ValueError(
            f"{path}: not an X12 837P file: it does not begin with an ISA interchange header"
        )
    if len(header) < _ISA_LENGTH:
        raise ValueError(f"{path}: truncated: the ISA interchange header is incomplete")
    element_separator = header[3]
    segment_terminator = header[_ISA_LENGTH - 1]
    if (
        header.count(element_separator) != _ISA_ELEMENT_COUNT
        or header[_ISA_LENGTH - 3] != element_separator
        or segment_terminator.isalnum()
        or segment_terminator == element_separator
    ):
        raise ValueError(
            f"{path}: the ISA interchange header is not the fixed 106 characters, "
            "so its separators cannot be read"
        )


class _SegmentPlacement(pyx12.error_handler.errh_null):
    """Remembers the first segment pyx12 could not place in the 837P guide's loops.

    pyx12 keeps reading past such a segment and files it beside the previous one, so a
    line could silently take a value from the wrong loop; this makes the reader refuse.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last_segment_id: str | None = None
        self.misplaced: tuple[int | None, str | None] | None = None

    def add_seg(
        self, map_node: Any, seg: Any, seg_count: int, cur_line: int, ls_id: str | None
    ) -> None:
        segment_id = seg.get_seg_id() if seg is not None else None
        # A damaged segment's "ID" can be any data (a member ID even): name only real IDs.
        self._last_segment_id = (
            segment_id if segment_id and _SEGMENT_ID.fullmatch(segment_id) else "unrecognised"
        )

    def seg_error(
        self,
        err_cde: str,
        err_str: str,
        err_value: str | None = None,
        src_line: int | None = None,
    ) -> None:
        # Code 1 is pyx12's "segment not found": no loop of the guide takes it there.
        # Other codes (counts, missing optional data) leave the loops intact.
        if err_cde == "1" and self.misplaced is None:
            self.misplaced = (src_line, self._last_segment_id)

    def raise_if_misplaced(self, path: Path) -> None:
        if self.misplaced is not None:
            segment_number, segment_id = self.misplaced
            raise ValueError(
                f"{path}: segment {segment_number} ({segment_id}) is not where the "
                "005010X222A1 837P guide allows it, so the claim loops around it cannot be read"
            )


class _Envelope:
    """Checks the ISA/GS/ST envelopes: an 837P, and every one closed by its trailer."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._open: list[tuple[str, int]] = []
        self._claim_transactions = 0

    def track(self, node: _SegmentNode) -> None:
        segment = node.seg_data
        segment_id = segment.get_seg_id()
        number = node.cur_line_number
        if segment_id == "ISA":
            self._open.append(("ISA", number))
        elif segment_id in _ENCLOSING_HEADER:
            if not self._open or self._open[-1][0] != _ENCLOSING_HEADER[segment_id]:
                raise ValueError(
                    f"{self._path}: segment {number} ({segment_id}) is outside "
                    f"an open {_ENCLOSING_HEADER[segment_id]} envelope"
                )
            if segment_id == "GS":
                self._check_functional_group(segment, number)
            else:
                self._check_transaction_set(segment, number)
            self._open.append((segment_id, number))
        elif segment_id in _HEADER_CLOSED_BY:
            header = _HEADER_CLOSED_BY[segment_id]
            if not self._open:
                raise ValueError(
                    f"{self._path}: segment {number} ({segment_id}) closes no open {header}"
                )
            open_header, begun_at = self._open[-1]
            if open_header != header:
                raise ValueError(
                    f"{self._path}: the {open_header} begun at segment {begun_at} has no "
                    f"{_TRAILER_OF[open_header]} trailer before segment {number} ({segment_id})"
                )
            self._open.pop()

    def check_complete(self) -> None:
        if self._open:
            header, number = self._open[-1]
            raise ValueError(
                f"{self._path}: truncated: the {header} begun at segment {number} has no "
                f"{_TRAILER_OF[header]} trailer"
            )
        if self._claim_transactions == 0:
            raise ValueError(f"{self._path}: not an 837P file: it holds no ST*837 transaction")

    def _check_functional_group(self, segment: _Segment, number: int) -> None:
        version = _element(segment, "GS08") or ""
        if _element(segment, "GS01") != "HC" or not version.startswith(_PROFESSIONAL_CLAIM_VERSION):
            raise ValueError(
                f"{self._path}: not an 837P file: the functional group at segment {number} "
                f"is {_element(segment, 'GS01')}/{version}, not HC/005010X222A1"
            )

    def _check_transaction_set(self, segment: _Segment, number: int) -> None:
        version = _element(segment, "ST03")
        if _element(segment, "ST01") != "837" or (
            version is not None and not version.startswith(_PROFESSIONAL_CLAIM_VERSION)
        ):
            raise ValueError(
                f"{self._path}: not an 837P file: the transaction at segment {number} "
                f"is {_element(segment, 'ST01')}/{version}, not 837/005010X222A1"
            )
        self._claim_transactions += 1


def _submitter(segment: _Segment, current: str | None) -> str | None:
    """The transaction's submitter ID (1000A NM1*41 NM109), the MCO that paid its claims.

    Each transaction set (ST) names its own submitter.
    """
    segment_id = segment.get_seg_id()
    if segment_id == "ST":
        return None
    if segment_id == "NM1" and _element(segment, "NM101") == _SUBMITTER:
        return _element(segment, "NM109")
    return current


def _billing_provider_lines(
    billing_provider: _Loop, *, paying_mco: str | None, unit_minutes: Mapping[str, int]
) -> Iterator[ClaimLine]:
    """Lines of every claim under one billing provider (loop 2000A)."""
    billing_npi = _npi(_name(billing_provider, "2010AA", "85"))
    for subscriber in _loops(billing_provider, "2000B"):
        # Medicaid bills the member's own ID, which is the subscriber's, even when a
        # patient loop (2000C) names someone else as the patient.
        member_id = _element(_name(subscriber, "2010BA", "IL"), "NM109")
        claims = list(_loops(subscriber, "2300"))
        for patient in _loops(subscriber, "2000C"):
            claims.extend(_loops(patient, "2300"))
        for claim in claims:
            yield from _claim_lines(
                claim,
                billing_npi=billing_npi,
                member_id=member_id,
                paying_mco=paying_mco,
                unit_minutes=unit_minutes,
            )


def _claim_lines(
    claim: _Loop,
    *,
    billing_npi: str | None,
    member_id: str | None,
    paying_mco: str | None,
    unit_minutes: Mapping[str, int],
) -> Iterator[ClaimLine]:
    clm = _segment(claim, "CLM")
    claim_rendering_npi = _npi(_name(claim, "2310B", "82"))
    for service_line in _loops(claim, "2400"):
        lx_node = service_line.children[0]  # LX opens every 2400 loop
        sv1_node = _segment_node(service_line, "SV1")
        sv1 = sv1_node.seg_data if sv1_node is not None else None
        start_date, end_date = _service_dates(_segment(service_line, "DTP", "472"))
        units, units_problem = _service_units(sv1, unit_minutes)
        paid_amount, paid_date, payment_problem = _paying_mco_adjudication(service_line, paying_mco)
        # The line's own rendering provider (2420A) wins, even without an NPI: that person
        # delivered the line, whoever the claim names.
        line_rendering = list(_loops(service_line, "2420A"))
        rendering_npi = (
            _npi(_segment(line_rendering[0], "NM1", "82"))
            if line_rendering
            else claim_rendering_npi
        )
        # A line without SV1 still gets a row, pointing at its LX, so the ingest quarantines
        # it with a reason instead of losing it.
        position = sv1_node if sv1_node is not None else lx_node
        yield {
            "claim_id": _element(clm, "CLM01"),
            "claim_line_number": _element(lx_node.seg_data, "LX01"),
            "claim_frequency_code": _element(clm, "CLM05-3"),
            "original_claim_id": _element(_segment(claim, "REF", "F8"), "REF02"),
            "member_id": member_id,
            "rendering_npi": rendering_npi,
            "billing_npi": billing_npi,
            "hcpcs_code": _element(sv1, "SV101-2"),
            "hcpcs_modifier_1": _element(sv1, "SV101-3"),
            "hcpcs_modifier_2": _element(sv1, "SV101-4"),
            "hcpcs_modifier_3": _element(sv1, "SV101-5"),
            "hcpcs_modifier_4": _element(sv1, "SV101-6"),
            "claim_line_start_date": start_date,
            "claim_line_end_date": end_date,
            "place_of_service_code": _element(sv1, "SV105") or _element(clm, "CLM05-1"),
            "service_unit_quantity": units,
            "paid_amount": paid_amount,
            "paid_date": paid_date,
            "session_id": None,
            "source_row": position.cur_line_number,
            REASON: "; ".join(p for p in (units_problem, payment_problem) if p) or None,
        }


def _service_units(
    sv1: _Segment | None, unit_minutes: Mapping[str, int]
) -> tuple[str | None, str | None]:
    """SV104 in units, and why it cannot be read as units (None when it can).

    Minutes become units of the code's length exactly, rounded to four places (20 minutes of
    15 are 1.3333).
    A line without SV1 has no units; the ingest quarantines it for its blank code.
    """
    quantity = _element(sv1, "SV104")
    if quantity is None:
        return None, None
    basis = (_element(sv1, "SV103") or "").upper()
    if basis == _UNITS:
        return quantity, None
    if basis != _MINUTES:
        problem = "is blank" if not basis else "is neither UN (units) nor MJ (minutes)"
        return quantity, f"SV103 unit basis {problem}, so SV104 cannot be read as units"
    code = (_element(sv1, "SV101-2") or "").strip().upper()
    if code not in unit_minutes:
        return quantity, f"SV104 is in minutes (SV103 MJ) and no policy gives {code} a unit length"
    units = _minutes_as_units(quantity, unit_minutes[code])
    if units is None:
        return quantity, "SV104 is not a number of minutes (SV103 is MJ)"
    return units, None


def _minutes_as_units(minutes: str, unit_minutes: int) -> str | None:
    if not _NUMBER.fullmatch(minutes):
        return None
    with localcontext() as context:
        context.prec = 60  # room for any minutes the units column can hold, and more
        try:
            units = (Decimal(minutes) / unit_minutes).quantize(
                _UNIT_PLACES, rounding=ROUND_HALF_EVEN
            )
        except InvalidOperation:  # too many digits to hold
            return None
        return format(units.normalize(), "f")


def _paying_mco_adjudication(
    service_line: _Loop, paying_mco: str | None
) -> tuple[str | None, str | None, str | None]:
    """Paid amount and date from the paying MCO's 2430 loop, and why not (None when found).

    Only the loop whose SVD01 is the paying MCO counts: another payer's loop may come last
    and carry its own amount (a commercial denial pays 0). The paying MCO's loop repeated
    with the same amount and date is one adjudication; repeats that disagree cannot tell a
    correction from a split payment, so the line is set aside.
    """
    adjudications = list(_loops(service_line, "2430"))
    if not adjudications:
        return None, None, SUBMISSION
    if paying_mco is None:
        return None, None, NO_PAYING_MCO
    paid = [
        (svd_node, _segment(loop, "DTP", "573"))
        for loop in adjudications
        if (svd_node := _segment_node(loop, "SVD")) is not None
        and _element(svd_node.seg_data, "SVD01") == paying_mco
    ]
    if not paid:
        return None, None, OTHER_PAYERS_ONLY
    outcomes = {
        (_amount_key(_element(svd.seg_data, "SVD02")), _element(dtp, "DTP03")) for svd, dtp in paid
    }
    if len(outcomes) > 1:
        segments = ", ".join(str(svd.cur_line_number) for svd, _ in paid)
        disagree = f"the paying MCO's 2430 line adjudications (SVD segments {segments}) disagree"
        return None, None, f"{disagree} on the paid amount or date"
    svd, dtp = paid[0]
    return _element(svd.seg_data, "SVD02"), _element(dtp, "DTP03"), None


def _amount_key(amount: str | None) -> Decimal | str | None:
    """An amount as compared between repeated loops: 36 and 36.00 are the same payment."""
    if amount is not None and _NUMBER.fullmatch(amount):
        return Decimal(amount)
    return amount


def _service_dates(dtp: _Segment | None) -> tuple[str | None, str | None]:
    """DTP*472 as (start, end) YYYYMMDD strings: D8 is one day, RD8 a range."""
    value = _element(dtp, "DTP03")
    if value is None:
        return None, None
    date_format = _element(dtp, "DTP02")
    if date_format == "D8":
        return value, value
    if date_format == "RD8" and "-" in value:
        start, end = value.split("-", 1)
        return start or None, end or None
    # Anything else goes through as it is, for the ingest to quarantine as unparseable.
    return value, None


def _loops(parent: _Loop, loop_id: str) -> Iterator[_Loop]:
    """The parent's direct child loops with this ID (2300, 2400, ...), in file order."""
    for child in parent.children:
        if child.type == "loop" and child.id == loop_id:
            yield child


def _segment_node(
    loop: _Loop, segment_id: str, qualifier: str | None = None
) -> _SegmentNode | None:
    """The loop's own first segment node with this ID (and first element), if any."""
    for child in loop.children:
        if child.type != "seg" or child.seg_data is None:
            continue
        segment = child.seg_data
        if segment.get_seg_id() == segment_id and (
            qualifier is None or _element(segment, "01") == qualifier
        ):
            return child
    return None


def _segment(loop: _Loop, segment_id: str, qualifier: str | None = None) -> _Segment | None:
    node = _segment_node(loop, segment_id, qualifier)
    return node.seg_data if node is not None else None


def _name(parent: _Loop, loop_id: str, entity: str) -> _Segment | None:
    """The NM1 segment for this entity (85, IL, 82, ...) in the parent's child loop."""
    for loop in _loops(parent, loop_id):
        return _segment(loop, "NM1", entity)
    return None


def _npi(name: _Segment | None) -> str | None:
    """NM109 when NM108 says it is an NPI (XX); another kind of ID is not an NPI."""
    if _element(name, "NM108") != "XX":
        return None
    return _element(name, "NM109")


def _element(segment: _Segment | None, reference: str) -> str | None:
    """An element or component value, trimmed; None when absent or blank."""
    if segment is None:
        return None
    value = segment.get_value(reference)
    if value is None:
        return None
    value = value.strip()
    return value or None
