"""The county overview workbook (乡镇汇总表): one row per township, 全县合计. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment

from riskmap.aggregate import UNCLASSED, UNKNOWN_STATUS, county_totals
from riskmap.catalog import STATUS_ORDER
from riskmap.errors import SchemaError
from riskmap.exporters.listing import (
    _any_demo,
    _notes,
    data_as_of,
)
from riskmap.exporters.public import public_note
from riskmap.exporters.sheet import (
    _BOLD,
    _HEADER_FILL,
    _TOTAL_FILL,
    _fit_columns,
    _print_setup,
    _put_number,
    _put_text,
    _title_rows,
    _workbook_bytes,
)
from riskmap.exporters.values import (
    _display_width,
)
from riskmap.exporters.xlsx import SUMMARY_SHEET
from riskmap.layers import LayerData
from riskmap.settings import COUNTY_NAME

if TYPE_CHECKING:
    from collections.abc import Mapping

    from openpyxl.worksheet.worksheet import Worksheet


@dataclass(frozen=True)
class _Col:
    header: str
    key: str
    numeric: bool = True
    fmt: str = "0"


def _summary_columns(
    df_summary: pd.DataFrame, layers: Mapping[str, LayerData], totals: Mapping[str, Any]
) -> list[tuple[str, list[_Col]]]:
    """Column groups: ("", code/name/level) then per layer (name, [合计, classes, status, sums])."""
    groups: list[tuple[str, list[_Col]]] = [
        (
            "",
            [
                _Col("乡镇代码", "adcode", numeric=False),
                _Col("乡镇名称", "name", numeric=False),
                _Col("级别", "level", numeric=False),
            ],
        )
    ]
    for lid, layer in layers.items():
        spec = layer.spec
        cols = [_Col("合计", lid)]
        for cls in [*spec.classes, UNCLASSED]:
            key = f"{lid}|{cls}"
            optional = cls == UNCLASSED
            if optional and not (df_summary[key].any() or totals[lid]["by_class"][cls]):
                continue
            cols.append(_Col(cls, key))
        for status in [*STATUS_ORDER, UNKNOWN_STATUS]:
            key = f"{lid}|status|{status}"
            optional = status == UNKNOWN_STATUS
            if optional and not (df_summary[key].any() or totals[lid]["by_status"][status]):
                continue
            cols.append(_Col(status, key))
        cols.extend(_Col(spec.header(f), f"{lid}|{f}", fmt="General") for f in spec.sums)
        groups.append((spec.name, cols))
    return groups


def _summary_headers(ws: Worksheet, groups: list[tuple[str, list[_Col]]]) -> list[int]:
    """Rows 3-4 of the overview: layer names merged over their columns, then sub-headers."""
    widths: list[int] = []
    col = 1
    for name, cols in groups:
        if name:
            cell = _put_text(ws, 3, col, name)
            cell.font, cell.fill = _BOLD, _HEADER_FILL
            cell.alignment = Alignment(horizontal="center")
            if len(cols) > 1:
                last = col + len(cols) - 1
                ws.merge_cells(start_row=3, start_column=col, end_row=3, end_column=last)
        for c in cols:
            cell = _put_text(ws, 4, col, c.header)
            cell.font, cell.fill = _BOLD, _HEADER_FILL
            cell.alignment = Alignment(horizontal="center", wrap_text=True)
            widths.append(max(_display_width(c.header), 4))
            col += 1
    return widths


def summary_xlsx(
    df_summary: pd.DataFrame,
    layers: Mapping[str, LayerData],
    *,
    approximate: bool = True,
    as_of: dt.date | None = None,
    generated: dt.date | None = None,
    county_name: str = COUNTY_NAME,
    include_cleared: bool = False,
    selection_text: str | None = None,
) -> bytes:
    """
    Write the county overview (乡镇汇总表): one row per township, a 全县合计 row.

    One sheet 汇总: row 1 title ``<county>安全风险点位汇总（按乡镇）``; row 2 notes; row 3
    layer names merged over their columns; row 4 sub-headers (合计, each class, each status,
    each summed field with unit); one row per township in `df_summary` order (codes as
    text); then 全县合计, where each feature counts once (`riskmap.aggregate.county_totals`:
    a zone across townships counts once, features outside every township count, sums of an
    area field are whole areas), so it need not equal the column sum; a note row says so.

    Parameters
    ----------
    df_summary
        `riskmap.aggregate.summarize_townships` of `layers`.
    layers
        The same prepared layers (use `listed_layers` to leave cleared features out).
    approximate, as_of, generated, county_name
        As in `xlsx_township`.
    include_cleared
        Only changes the notes (whether "不含已销号点位" is stated); filter `layers` yourself.
    selection_text
        Note saying which screen selection `layers` were restricted to
        (`riskmap.exporters.listing.selection_note`), or None.

    Returns
    -------
    data
        The ``.xlsx`` file.

    Raises
    ------
    SchemaError
        When `df_summary` lacks a column `layers` needs (it was built from other layers).
    """
    needed = {"adcode", "name", "level", *layers}
    if missing := sorted(needed - set(df_summary.columns)):
        msg = f"df_summary lacks columns {missing}; build it with summarize_townships(layers, …)"
        raise SchemaError(msg)
    totals = county_totals(layers)
    groups = _summary_columns(df_summary, layers, totals)
    ncols = sum(len(cols) for _, cols in groups)
    notes = _notes(
        as_of or data_as_of(layers),
        approximate=approximate,
        demo=_any_demo({lid: layer.gdf for lid, layer in layers.items()}),
        include_cleared=include_cleared,
        public=public_note(layers),
        selection=selection_text,
    )
    wb = Workbook()
    ws = wb.active
    ws.title = SUMMARY_SHEET
    _title_rows(ws, f"{county_name}安全风险点位汇总（按乡镇）", notes, ncols)
    widths = _summary_headers(ws, groups)
    flat = [c for _, cols in groups for c in cols]
    row = 5
    for record in df_summary.to_dict("records"):
        for j, c in enumerate(flat, start=1):
            if c.numeric:
                value = record[c.key]
                value = round(float(value), 2) if c.fmt == "General" else value
                cell = _put_number(ws, row, j, value, c.fmt)
            else:
                cell = _put_text(ws, row, j, record[c.key])
            widths[j - 1] = max(widths[j - 1], _display_width(str(cell.value or "")))
        row += 1
    _put_text(ws, row, 1, "全县合计").font = _BOLD
    for j, c in enumerate(flat, start=1):
        if not c.numeric:
            ws.cell(row=row, column=j).fill = _TOTAL_FILL
            continue
        lid, _, rest = c.key.partition("|")
        t = totals[lid]
        if not rest:
            value: float = t["count"]
        elif rest.startswith("status|"):
            value = t["by_status"][rest.removeprefix("status|")]
        elif rest in t["by_class"]:
            value = t["by_class"][rest]
        else:
            value = round(t["sums"][rest], 2)
        cell = _put_number(ws, row, j, value, c.fmt)
        cell.font, cell.fill = _BOLD, _TOTAL_FILL
    _put_text(
        ws,
        row + 1,
        1,
        "注：全县合计中每个点位/区域只计一次（跨乡镇区域只计一次，含未落入任何乡镇的点位），"
        "面积为区域全部面积；各乡镇行中的面积为落在该乡镇内的部分。",
    )
    _fit_columns(ws, widths)
    ws.freeze_panes = "D5"
    _print_setup(ws, 4)
    ws.print_title_rows = "3:4"
    return _workbook_bytes(wb, generated)
