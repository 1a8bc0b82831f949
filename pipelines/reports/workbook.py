"""XLSX workbooks that hold every row: a table longer than a sheet continues on more sheets.

xlsxwriter lays out each workbook (titles, headers, formats, column widths, frozen panes,
filters) and writes it; the table bodies, which run to hundreds of thousands of rows at state
scale, are then written into the sheets' XML in bulk, as xlsxwriter's own constant-memory mode
writes them: one `<row>` of cells per table row, text as inline strings, dates as Excel serial
numbers, amounts as numbers. Writing each cell through xlsxwriter's API costs about 5 µs, so a
national package would take minutes; built column by column in polars it takes a fraction of
a second.

Text is written as text, never as a formula; the caller makes it spreadsheet-safe first.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from isal import isal_zlib
from xlsxwriter.utility import xl_rowcol_to_cell

# Excel's rows on one sheet, the header and any title lines included
EXCEL_MAX_ROWS = 1_048_576
# an Excel sheet name: at most 31 characters
SHEET_NAME_MAX = 31
# Excel's longest cell text, in UTF-16 units; xlsxwriter cuts longer text the same way
CELL_TEXT_MAX = 32_767
# table rows turned into XML at a time: bounds the memory of a body, whatever its length
BODY_CHUNK_ROWS = 50_000
# a sheet body longer than this may pass zip's 2 GiB member size without ZIP64
ZIP64_ROWS = 100_000
# ISA-L's deflate at its level 1 for the sheet bodies: measured on a 134 MB findings sheet,
# 0.16 s and 10.8 MB against zlib's fastest level, 0.78 s and 11.5 MB. Same deflate format.
BODY_DEFLATE_LEVEL = 1
# Excel's day 0 for dates after February 1900
EXCEL_EPOCH = pl.date(1899, 12, 30)
# XML 1.0 forbids these characters; Excel writes them as _xHHHH_ (ECMA-376 ST_Xstring)
XML_FORBIDDEN_CHARACTERS = [
    *(chr(c) for c in [*range(0x00, 0x09), *range(0x0B, 0x20)]),
    "\ufffe",
    "\uffff",
]
XML_FORBIDDEN = r"[\x00-\x08\x0B-\x1F\x{FFFE}\x{FFFF}]"
# text that Excel would read as one of those escapes: its underscore is escaped in turn
EXCEL_ESCAPE_LOOKALIKE = r"(_x[0-9a-fA-F]{4}_)"
FORMATS = {
    "header": {"bold": True, "bg_color": "#DDE5F0", "border": 1},
    "date": {"num_format": "yyyy-mm-dd"},
    "money": {"num_format": "$#,##0.00"},
    "title": {"bold": True, "font_size": 14},
    "wrap": {"text_wrap": True, "valign": "top"},
}


@dataclass(frozen=True)
class SheetPart:
    """One sheet of a table: its name and which of the table's rows it holds."""

    name: str
    offset: int
    rows: int


def sheet_names(base: str, count: int) -> list[str]:
    """`base`, then `base (2)`, `base (3)`...: each cut to fit Excel's 31 characters."""
    names = [base[:SHEET_NAME_MAX]]
    for number in range(2, count + 1):
        suffix = f" ({number})"
        names.append(base[: SHEET_NAME_MAX - len(suffix)] + suffix)
    return names


def sheet_parts(base: str, table_rows: int, header_row: int) -> list[SheetPart]:
    """Split a table's rows over as many sheets as Excel's row limit needs; every sheet
    repeats the lines above the table and its header (`header_row` is its 0-based row)."""
    per_sheet = EXCEL_MAX_ROWS - header_row - 1
    if per_sheet < 1:
        raise ValueError(f"a table whose header is on row {header_row + 1} leaves no room")
    count = max(1, -(-table_rows // per_sheet))
    return [
        SheetPart(name, offset=i * per_sheet, rows=min(per_sheet, table_rows - i * per_sheet))
        for i, name in enumerate(sheet_names(base, count))
    ]


@dataclass(frozen=True)
class TableRows:
    """A table's shape and a way to read any run of its rows: from a frame in memory, or
    from a query read a chunk at a time, so that a table need not fit in memory.

    `read(offset, count)` yields frames of `schema` holding rows offset to offset + count - 1,
    in order."""

    schema: pl.Schema
    height: int
    read: Callable[[int, int], Iterator[pl.DataFrame]]

    @classmethod
    def of(cls, frame: pl.DataFrame) -> TableRows:
        def read(offset: int, count: int) -> Iterator[pl.DataFrame]:
            yield frame.slice(offset, count)

        return cls(frame.schema, frame.height, read)

    @property
    def columns(self) -> list[str]:
        return list(self.schema)


@dataclass
class _Body:
    """Rows of a table still to be written into a sheet's XML once xlsxwriter closes."""

    sheet_index: int
    table: TableRows
    part: SheetPart
    first_row: int  # 0-based row of the first table row
    column_formats: list[Any]  # an xlsxwriter Format or None, one per column

    def chunks(self) -> Iterator[pl.DataFrame]:
        """The sheet's rows, at most BODY_CHUNK_ROWS at a time."""
        for frame in self.table.read(self.part.offset, self.part.rows):
            for offset in range(0, frame.height, BODY_CHUNK_ROWS):
                yield frame.slice(offset, BODY_CHUNK_ROWS)


@dataclass
class TableBook:
    """A workbook of titled tables: `table` lays one out over as many sheets as it needs,
    `close` writes the file with every table row in it."""

    path: Path
    _book: Any = field(init=False)
    formats: dict[str, Any] = field(init=False)
    _bodies: list[_Body] = field(init=False, default_factory=list)
    continued: list[tuple[str, list[SheetPart]]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        # input text is never turned into a formula, a number or a link; the skeleton holds
        # no table row (close() streams them), so it is built in memory, without temp files
        options = {
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
            "in_memory": True,
        }
        self._skeleton = io.BytesIO()
        self._book = xlsxwriter.Workbook(self._skeleton, options)
        self.formats = {key: self._book.add_format(spec) for key, spec in FORMATS.items()}

    def table(
        self,
        base_name: str,
        rows: pl.DataFrame | TableRows,
        *,
        titles: list[tuple[str, str | None]],
        header_row: int,
        wide_text: bool = False,
    ) -> list[Any]:
        """Lay out `rows` under `titles` (text, format key) with its header on `header_row`,
        on as many sheets as it needs; returns the sheets. A continuation sheet says which
        part of the table it holds after its first title. Rows read from a TableRows are
        read when the book is closed."""
        table = rows if isinstance(rows, TableRows) else TableRows.of(rows)
        parts = sheet_parts(base_name, table.height, header_row)
        if len(parts) > 1:
            self.continued.append((base_name, parts))
        sheets = []
        for number, part in enumerate(parts, start=1):
            sheet = self._book.add_worksheet(part.name)
            for row, (text, format_key) in enumerate(titles):
                if row == 0 and number > 1:
                    text = f"{text} (continued: part {number} of {len(parts)})"
                sheet.write_string(row, 0, text, self.formats.get(format_key or ""))
            self._lay_out(sheet, table, part, header_row, wide_text)
            sheets.append(sheet)
        return sheets

    def _lay_out(
        self, sheet: Any, table: TableRows, part: SheetPart, header_row: int, wide_text: bool
    ) -> None:
        column_formats = []
        for col, name in enumerate(table.columns):
            sheet.write_string(header_row, col, name, self.formats["header"])
            dtype = table.schema[name]
            cell_format = None
            if dtype == pl.Date:
                cell_format = self.formats["date"]
            elif name.endswith("amount") or name.startswith("amount"):
                cell_format = self.formats["money"]
            elif wide_text and dtype == pl.String:
                cell_format = self.formats["wrap"]
            width = 60 if wide_text and dtype == pl.String else max(12, min(48, len(name) + 4))
            sheet.set_column(col, col, width, cell_format)
            column_formats.append(cell_format)
        sheet.freeze_panes(header_row + 1, 0)
        sheet.autofilter(header_row, 0, header_row + part.rows, max(len(table.columns) - 1, 0))
        if part.rows:
            self._bodies.append(_Body(sheet.index, table, part, header_row + 1, column_formats))

    def continuation_note(self) -> str | None:
        """What a reader must know to find every row: the tables that continue on further
        sheets, with each sheet's rows. None when every table fits on one sheet."""
        if not self.continued:
            return None
        tables = "; ".join(
            f"{base}: {sum(p.rows for p in parts):,} rows on {len(parts)} sheets, "
            + ", ".join(f"{p.name} ({p.rows:,} rows)" for p in parts)
            for base, parts in self.continued
        )
        return (
            f"A sheet holds at most {EXCEL_MAX_ROWS:,} rows, its header and title included; "
            f"these tables continue on further sheets: {tables}."
        )

    def close(self) -> Path:
        self._book.close()
        bodies = {f"xl/worksheets/sheet{b.sheet_index + 1}.xml": b for b in self._bodies}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (
            zipfile.ZipFile(self._skeleton) as skeleton,
            zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book,
        ):
            for member in skeleton.infolist():
                body = bodies.pop(member.filename, None)
                xml = skeleton.read(member)
                if body is None:
                    book.writestr(member, xml)
                else:
                    _write_sheet_with_body(book, member, xml.decode("utf-8"), body)
        if bodies:
            raise RuntimeError(f"sheets missing from the workbook: {sorted(bodies)}")
        return self.path


def _write_sheet_with_body(
    book: zipfile.ZipFile, member: zipfile.ZipInfo, xml: str, body: _Body
) -> None:
    head, close_tag, tail = xml.partition("</sheetData>")
    if not close_tag or tail.count("</sheetData>"):
        raise RuntimeError(f"{member.filename}: no single sheetData to fill")
    last_row = body.first_row + body.part.rows - 1
    last_col = len(body.table.columns) - 1
    head, found = re.subn(
        r'<dimension ref="[^"]*"/>',
        f'<dimension ref="A1:{xl_rowcol_to_cell(last_row, last_col)}"/>',
        head,
        count=1,
    )
    if not found:
        raise RuntimeError(f"{member.filename}: no dimension to widen")
    styles = [None if f is None else f.xf_index for f in body.column_formats]
    written = 0
    with book.open(member.filename, "w", force_zip64=body.part.rows > ZIP64_ROWS) as sheet:
        _deflate_with_isal(sheet)
        sheet.write(head.encode("utf-8"))
        for chunk in body.chunks():
            # one text column, written as is: no quotes, no separator, no line break
            _row_xml(chunk, body.first_row + written, styles).write_csv(
                sheet, include_header=False, quote_style="never", line_terminator=""
            )
            written += chunk.height
        sheet.write((close_tag + tail).encode("utf-8"))
    if written != body.part.rows:
        raise RuntimeError(f"{member.filename}: {written} rows read, {body.part.rows} laid out")


def _deflate_with_isal(member: Any) -> None:
    """Have a zip member opened for writing, not yet written, deflate with ISA-L instead of
    zlib. zipfile (Python 3.11) calls its writer's `_compressor` for each write and at close;
    the member stays a raw deflate stream that any reader inflates."""
    if getattr(member, "_compressor", None) is not None:
        member._compressor = isal_zlib.compressobj(BODY_DEFLATE_LEVEL, isal_zlib.DEFLATED, -15)


ROW_NUMBER = "__workbook_row"  # a name no table column has: the row number as text
EMPTY_CELL = "<c/>"  # a cell without a value: it only keeps its place in the row
EDGE_SPACE = r"^\s|\s$"  # text Excel would trim unless told to keep its spaces
PRESERVED = ' xml:space="preserve">'
# text that needs any of the care above: one pass tells whether a column needs any
NEEDS_CARE = f"{XML_FORBIDDEN}|[&<>]|{EXCEL_ESCAPE_LOOKALIKE}|{EDGE_SPACE}"


def _row_xml(chunk: pl.DataFrame, first_row: int, styles: list[int | None]) -> pl.DataFrame:
    """The `<row>` elements of `chunk`, one a row, whose first row is the sheet's `first_row`
    (0-based)."""
    start = first_row + 1  # Excel counts rows from 1
    numbered = chunk.with_columns(
        pl.int_range(start, start + chunk.height, eager=False).cast(pl.String).alias(ROW_NUMBER)
    )
    # a cell without its reference is the one after the cell before it (ECMA-376 CT_Cell),
    # so a null value is written as an empty cell, keeping the cells after it in place
    cells = [
        _cell_xml(chunk, name, styles[col]).fill_null(pl.lit(EMPTY_CELL))
        for col, name in enumerate(chunk.columns)
    ]
    row = pl.col(ROW_NUMBER)
    return numbered.select(
        pl.concat_str([pl.lit('<row r="'), row, pl.lit('">'), *cells, pl.lit("</row>")])
    )


def _cell_xml(chunk: pl.DataFrame, name: str, style: int | None) -> pl.Expr:
    """One column's cells as XML text, null where the value is null. The cells carry no
    reference: they are a row's cells in order, which is where Excel puts them."""
    value, dtype = pl.col(name), chunk.schema[name]
    opening = "<c" + (f' s="{style}"' if style is not None else "")
    if dtype == pl.String:
        # each escape runs only where the chunk's own text needs it: most columns are codes
        # and IDs that need none, and every pass over a column costs as much as writing it
        values = chunk[name]
        text, space = value, pl.lit(">")
        if (values.str.len_bytes() > CELL_TEXT_MAX).any():  # bytes: at least the chars
            text = text.str.slice(0, CELL_TEXT_MAX)
        if values.str.contains(NEEDS_CARE).any():
            text = _xml_text(text, values)
            if values.str.contains(EDGE_SPACE).any():
                space = (
                    pl.when(value.str.contains(EDGE_SPACE)).then(pl.lit(PRESERVED)).otherwise(space)
                )
        inline = pl.lit(f'{opening} t="inlineStr"><is><t')
        parts = [inline, space, text, pl.lit("</t></is></c>")]
    elif dtype == pl.Boolean:
        flag = value.cast(pl.UInt8).cast(pl.String)  # null stays null: an empty cell
        parts = [pl.lit(f'{opening} t="b"><v>'), flag, pl.lit("</v></c>")]
    elif dtype == pl.Date:
        serial = (value - EXCEL_EPOCH).dt.total_days().cast(pl.String)
        parts = [pl.lit(f"{opening}><v>"), serial, pl.lit("</v></c>")]
    elif dtype.is_integer() or dtype.is_decimal():
        number = value.cast(pl.String)
        parts = [pl.lit(f"{opening}><v>"), number, pl.lit("</v></c>")]
    else:
        raise TypeError(f"column {name}: no workbook cell for {dtype}")
    return pl.concat_str(parts)


def _xml_text(text: pl.Expr, values: pl.Series) -> pl.Expr:
    """Text as XML character data, as Excel writes it: `&`, `<`, `>` escaped, characters XML
    forbids as _xHHHH_, and text that already looks like such an escape kept literal.

    Each escape runs only when `values` (the column's own text) needs it."""
    if values.str.contains(EXCEL_ESCAPE_LOOKALIKE).any():
        text = text.str.replace_all(EXCEL_ESCAPE_LOOKALIKE, "_x005F$1")
    if values.str.contains("[&<>]").any():
        text = (
            text.str.replace_all("&", "&amp;", literal=True)
            .str.replace_all("<", "&lt;", literal=True)
            .str.replace_all(">", "&gt;", literal=True)
        )
    if values.str.contains(XML_FORBIDDEN).any():
        for character in XML_FORBIDDEN_CHARACTERS:
            text = text.str.replace_all(character, f"_x{ord(character):04X}_", literal=True)
    return text
