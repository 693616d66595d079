"""openpyxl helpers shared by the township workbook and the county overview. Pure."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import TYPE_CHECKING, Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from riskmap.exporters.listing import (
    AREA_HEADER,
    COORD_DECIMALS,
    DECIMALS_ATTR,
    LAT_HEADER,
    LON_HEADER,
    SHARE_HEADER,
)
from riskmap.exporters.values import (
    _display_width,
    _is_numeric,
    _number,
    neutralise_cell,
)
from riskmap.schema import is_blank

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from openpyxl.worksheet.worksheet import Worksheet


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


_MAX_WIDTH = 48
_BOLD = Font(bold=True)
_TITLE_FONT = Font(bold=True, size=14)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")


def _put_text(ws: Worksheet, row: int, col: int, value: Any) -> Cell:  # noqa: ANN401
    """Write a string cell (never a formula): neutralised, illegal XML characters removed."""
    cell = ws.cell(row=row, column=col)
    cell.number_format = "@"
    if is_blank(value):
        return cell
    text = ILLEGAL_CHARACTERS_RE.sub("", neutralise_cell(str(value)))
    cell.value = text
    cell.data_type = "s"
    return cell


def _put_number(ws: Worksheet, row: int, col: int, value: Any, fmt: str = "General") -> Cell:  # noqa: ANN401
    cell = ws.cell(row=row, column=col)
    cell.value = _number(value)
    cell.number_format = fmt
    return cell


def _number_format(header: str, series: pd.Series, decimals: int | None = None) -> str:
    if header == SHARE_HEADER:
        return "0.0"
    if header == AREA_HEADER:
        return "0.00"
    if header in {LON_HEADER, LAT_HEADER}:
        return "0." + "0" * COORD_DECIMALS
    if pd.api.types.is_integer_dtype(series):
        return "0"
    if decimals is not None:  # the catalog's declared precision (FieldSpec.decimals)
        return "0." + "0" * decimals if decimals > 0 else "0"
    return "General"


def _title_rows(ws: Worksheet, title: str, notes: list[str], ncols: int) -> None:
    """Row 1: merged bold title; row 2: merged notes joined by ；."""
    last = max(ncols, 1)
    _put_text(ws, 1, 1, title).font = _TITLE_FONT
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    _put_text(ws, 2, 1, "；".join(notes)).alignment = Alignment(wrap_text=True, vertical="top")
    if last > 1:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last)
        ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=last)
    ws.row_dimensions[1].height = 24
    ws.row_dimensions[2].height = 30


def _header_row(ws: Worksheet, row: int, headers: list[str]) -> None:
    for col, header in enumerate(headers, start=1):
        cell = _put_text(ws, row, col, header)
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _fit_columns(ws: Worksheet, widths: list[int]) -> None:
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 6), _MAX_WIDTH)


def _print_setup(ws: Worksheet, header_row: int) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.print_title_rows = f"{header_row}:{header_row}"


def _write_table(ws: Worksheet, df: pd.DataFrame, first_row: int) -> list[int]:
    """Write `df` from `first_row` (header) down; return display widths per column."""
    headers = [str(c) for c in df.columns]
    _header_row(ws, first_row, headers)
    widths = [_display_width(h) for h in headers]
    declared = df.attrs.get(DECIMALS_ATTR, {})
    for j, header in enumerate(headers):
        series = df.iloc[:, j]
        numeric = _is_numeric(series)
        fmt = _number_format(header, series, declared.get(header))
        for i, value in enumerate(series.tolist()):
            row = first_row + 1 + i
            if numeric:
                cell = _put_number(ws, row, j + 1, value, fmt)
                shown = "" if cell.value is None else str(cell.value)
            else:
                cell = _put_text(ws, row, j + 1, value)
                shown = "" if cell.value is None else str(cell.value)
            widths[j] = max(widths[j], _display_width(shown))
    return widths


def _sheet_name(name: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub("_", name).strip("'")[:31] or "图层"
    candidate, i = base, 2
    while candidate in used:
        suffix = f"({i})"
        candidate, i = base[: 31 - len(suffix)] + suffix, i + 1
    used.add(candidate)
    return candidate


def _workbook_bytes(wb: Workbook, generated: dt.date | None) -> bytes:
    stamp = dt.datetime.combine(generated or dt.date.today(), dt.time())
    wb.properties.creator = "riskmap"
    wb.properties.created = stamp
    wb.properties.modified = stamp
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
