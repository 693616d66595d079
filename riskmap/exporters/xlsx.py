"""The township list as an Excel workbook (``.xlsx``). Pure."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from riskmap.exporters.listing import (
    DECIMALS_ATTR,
    NOTE_ZONES,
    _any_demo,
    _check_code,
    _notes,
    _subtotal_headers,
    _sum,
    _township_summary_frame,
    data_as_of,
    list_frame,
    listed_features,
    selection_note,
)
from riskmap.exporters.public import public_note
from riskmap.exporters.sheet import (
    _BOLD,
    _TOTAL_FILL,
    _fit_columns,
    _number_format,
    _print_setup,
    _put_number,
    _put_text,
    _sheet_name,
    _title_rows,
    _workbook_bytes,
    _write_table,
)
from riskmap.layers import LayerData
from riskmap.settings import COUNTY_NAME

if TYPE_CHECKING:
    from collections.abc import Mapping

    from openpyxl.worksheet.worksheet import Worksheet

    from riskmap.catalog import LayerSpec
    from riskmap.filters import FeatureFilter

SUMMARY_SHEET = "汇总"
"""Name of the first sheet of a township workbook."""


def _write_list_sheet(
    ws: Worksheet, df: pd.DataFrame, spec: LayerSpec, title: str, notes: list[str]
) -> None:
    """One layer's sheet: title, notes, header (row 3), rows, 合计 row."""
    if spec.geometry == "Polygon":
        notes = [*notes, NOTE_ZONES]
    ncols = len(df.columns)
    _title_rows(ws, title, notes, ncols)
    header_row = 3
    widths = _write_table(ws, df, header_row)
    total_row = header_row + 1 + len(df)
    _put_text(ws, total_row, 1, "合计").font = _BOLD
    if ncols > 1:
        _put_text(ws, total_row, 2, f"共{len(df)}处").font = _BOLD
    for header in _subtotal_headers(spec, df):
        j = list(df.columns).index(header)
        fmt = _number_format(header, df[header], df.attrs.get(DECIMALS_ATTR, {}).get(header))
        _put_number(ws, total_row, j + 1, _sum(df[header]), fmt).font = _BOLD
    for col in range(1, ncols + 1):
        ws.cell(row=total_row, column=col).fill = _TOTAL_FILL
    _fit_columns(ws, widths)
    name_col = next((i + 2 for i, h in enumerate(df.columns[1:4]) if h == spec.header("name")), 1)
    ws.freeze_panes = ws.cell(row=header_row + 1, column=name_col + 1).coordinate
    last = get_column_letter(max(ncols, 1))
    ws.auto_filter.ref = f"A{header_row}:{last}{header_row + max(len(df), 1)}"
    _print_setup(ws, header_row)


def xlsx_township(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    *,
    include_cleared: bool = False,
    approximate: bool = True,
    as_of: dt.date | None = None,
    generated: dt.date | None = None,
    county_name: str = COUNTY_NAME,
    selection: FeatureFilter | None = None,
) -> bytes:
    """
    Write the township's risk list as an Excel workbook (``.xlsx``).

    Sheets: `SUMMARY_SHEET` (汇总: per layer, counts by class and status and the subtotals),
    then one sheet per layer (named after the layer, e.g. ``地质灾害隐患点``), every layer
    even when empty. Each sheet: row 1 merged title ``<county><township>安全风险点位清单``;
    row 2 merged notes (``截至 yyyy-mm-dd（数据更新时间）``, `NOTE_APPROXIMATE` when
    `approximate`, `NOTE_DEMO` when a listed feature is demo data, `NOTE_NO_CLEARED`); row 3
    bold header, frozen with the 序号/编号/名称 columns, auto-filter; data rows; a bold
    合计 row (``共n处`` and the sums of ``spec.sums`` and `AREA_HEADER`). Text cells are
    string cells with format ``"@"``, neutralised (`neutralise_cell`); numbers are numbers.
    Prints landscape, one page wide, header row repeated.

    Parameters
    ----------
    layers
        Prepared layers by id.
    township_code
        9-digit code.
    township_name
        Township name used in the title.
    include_cleared
        Also list cleared (已销号) features.
    approximate
        The township partition is approximate (the bundled one); default True, because
        claiming official boundaries wrongly is worse than an unneeded caveat.
    as_of
        Data currency date; default `data_as_of` (latest ``updated_at``).
    generated
        Date stamped in the workbook properties; default today.
    county_name
        County name in the title.
    selection
        What the app's screen shows (`riskmap.filters.FeatureFilter`): only those layers and
        features are listed, and the notes say which conditions were applied
        (`FeatureFilter.describe`). None = every layer, every feature.

    Returns
    -------
    data
        The ``.xlsx`` file.

    Raises
    ------
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    code = _check_code(township_code)
    listed = listed_features(layers, code, include_cleared=include_cleared, selection=selection)
    frames = {lid: list_frame(layers[lid], gdf, code) for lid, gdf in listed.items()}
    notes = _notes(
        as_of or data_as_of(layers),
        approximate=approximate,
        demo=_any_demo(listed),
        include_cleared=include_cleared,
        public=public_note(layers),
        selection=selection_note(layers, selection),
    )
    wb = Workbook()
    ws = wb.active
    ws.title = SUMMARY_SHEET
    summary = _township_summary_frame(layers, frames, listed)
    _title_rows(ws, f"{county_name}{township_name}安全风险点位汇总", notes, len(summary.columns))
    _fit_columns(ws, _write_table(ws, summary, 3))
    ws.freeze_panes = "A4"
    _print_setup(ws, 3)
    used = {SUMMARY_SHEET}
    title = f"{county_name}{township_name}安全风险点位清单"
    for lid, df in frames.items():
        spec = layers[lid].spec
        _write_list_sheet(wb.create_sheet(_sheet_name(spec.name, used)), df, spec, title, notes)
    return _workbook_bytes(wb, generated)
