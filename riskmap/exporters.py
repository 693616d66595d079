"""Per-township risk lists (风险点位清单 / 一览表) as XLSX, CSV, GeoJSON and ZIP. Pure.

Every function here returns bytes, frames or dicts; writing files is `riskmap.io`'s job
(`riskmap.io.write_bytes_atomic` from the CLI; the app hands the bytes to a download button).

Spreadsheet safety (OWASP "CSV injection"): in XLSX every text cell is written as a string
cell (``data_type == "s"``, number format ``"@"``), never a formula, and in XLSX and CSV a text
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (also after leading
spaces, and their full-width forms) gets a leading ``'`` (`neutralise_cell`). Numeric columns
(declared ``int``/``float``) are never touched: ``-3.5`` stays the number -3.5. Codes
(``001``, ``500229001000``) are text and stay text in every format. GeoJSON is data, not a
spreadsheet: its values are exported unchanged.

The list frames (`township_list_frames`) hold the raw values (not neutralised) so the app can
show them; the writers neutralise.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import unicodedata
import zipfile
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from riskmap.aggregate import UNCLASSED, UNKNOWN_STATUS, county_totals, summarize_townships
from riskmap.catalog import STATUS_ORDER
from riskmap.errors import SchemaError, TownshipNotFoundError
from riskmap.io import geojson_text
from riskmap.layers import LayerData, active
from riskmap.schema import is_blank

if TYPE_CHECKING:
    from collections.abc import Mapping

    from openpyxl.cell.cell import Cell
    from openpyxl.worksheet.worksheet import Worksheet

    import geopandas as gpd

    from riskmap.catalog import FieldSpec, LayerSpec

SEQ_HEADER = "序号"
"""First column of every list: 1..n within the layer."""
LAYER_HEADER = "图层"
"""First column of the CSV list: the layer's Chinese name."""
AREA_HEADER = "本乡镇面积(ha)"
"""Polygon layers: area of the feature inside this township, hectares, 2 decimals."""
SHARE_HEADER = "本乡镇占比(%)"
"""Polygon layers: that area as a percentage of the feature's whole area, 1 decimal."""
SUMMARY_SHEET = "汇总"
"""Name of the first sheet of a township workbook."""
NOTE_APPROXIMATE = "乡镇界线为示意边界（非官方），归属仅供参考"
NOTE_DEMO = "演示数据（非真实点位）"
NOTE_NO_CLEARED = "不含已销号点位"
NOTE_ZONES = "跨乡镇的区域列入所涉每个乡镇，本乡镇面积为其落在本乡镇内的部分"
FORMATS = ("xlsx", "csv", "geojson")
"""Values of `all_townships_zip`'s `fmt`."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_LEADING_SPACE = " \u3000"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
_FILE_BAD = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
_CODE9 = re.compile(r"^\d{9}$")
_MAX_WIDTH = 48
_BOLD = Font(bold=True)
_TITLE_FONT = Font(bold=True, size=14)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")


def neutralise_cell(value: Any) -> Any:  # noqa: ANN401 - any cell value passes through
    """
    Neutralise a spreadsheet formula in a text cell (OWASP CSV-injection guidance).

    Parameters
    ----------
    value
        A cell value of any type.

    Returns
    -------
    value
        ``"'" + value`` when `value` is a ``str`` whose first character after leading
        (half- or full-width) spaces is ``= + - @``, a tab, a carriage return, or one of the
        full-width ``＝ ＋ － ＠``; otherwise `value` unchanged (numbers, None, other text).
        Idempotent: a neutralised text starts with ``'`` and is returned as is.
    """
    if isinstance(value, str) and value.lstrip(_LEADING_SPACE).startswith(_FORMULA_START):
        return "'" + value
    return value


# --- frames ---------------------------------------------------------------------------------


def _check_code(township_code: str) -> str:
    code = str(township_code).strip()
    if not _CODE9.match(code):
        msg = f"乡镇代码应为9位数字，如 500229001 (township_code: 9 digits): {township_code!r}"
        raise TownshipNotFoundError(msg)
    return code


def listed_features(
    layers: Mapping[str, LayerData], township_code: str, *, include_cleared: bool = False
) -> dict[str, gpd.GeoDataFrame]:
    """
    Select the features a township's list shows, per layer.

    Parameters
    ----------
    layers
        Prepared layers by id (`riskmap.layers.prepare_layer`).
    township_code
        9-digit township code, e.g. ``"500229001"``.
    include_cleared
        Also list cleared (已销号) features.

    Returns
    -------
    features
        ``{layer_id: gdf}`` for every layer (possibly empty), layer order; each a subset of
        ``layer.gdf`` (EPSG:4326, same order). A polygon with any share in the township is in.

    Raises
    ------
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    code = _check_code(township_code)
    return {
        lid: active(layer.in_township(code), include_cleared=include_cleared)
        for lid, layer in layers.items()
    }


def _typed_column(values: pd.Series, fspec: FieldSpec | None, n: int) -> pd.Series:
    """One list column: ints ``Int64``, floats float64, bools 是/否, everything else text."""
    raw = values.to_numpy(dtype=object) if values is not None else np.full(n, None, dtype=object)
    ftype = fspec.type if fspec is not None else "str"
    if ftype == "int":
        return pd.Series(pd.to_numeric(pd.Series(raw), errors="coerce"), dtype="Float64").astype(
            "Int64"
        )
    if ftype == "float":
        return pd.to_numeric(pd.Series(raw), errors="coerce").astype("float64")
    if ftype == "bool":
        return pd.Series(
            [None if is_blank(v) else ("是" if bool(v) else "否") for v in raw], dtype=object
        )
    return pd.Series([None if is_blank(v) else str(v) for v in raw], dtype=object)


def _headers(spec: LayerSpec) -> dict[str, str]:
    """``{field key: unique Chinese header}`` for the layer's list fields."""
    out: dict[str, str] = {}
    for key in spec.list_fields:
        header = spec.header(key)
        if header in out.values() or header in {SEQ_HEADER, AREA_HEADER, SHARE_HEADER}:
            header = f"{header}[{key}]"
        out[key] = header
    return out


def list_frame(layer: LayerData, gdf: gpd.GeoDataFrame, township_code: str) -> pd.DataFrame:
    """
    Build the list table of one layer from already selected features.

    Parameters
    ----------
    layer
        The prepared layer (its spec and shares).
    gdf
        Rows of ``layer.gdf`` to list, in list order.
    township_code
        9-digit code; used for the polygon area share columns.

    Returns
    -------
    df
        RangeIndex; columns `SEQ_HEADER` (``Int64`` 1..n), then ``spec.header(key)`` for each
        of ``spec.list_fields`` (``int`` fields ``Int64``, ``float`` fields float64, ``bool``
        fields ``"是"``/``"否"``, others text; blanks None/NA, never ``"nan"``); polygon
        layers add `AREA_HEADER` (ha, 2 decimals) and `SHARE_HEADER` (%, 1 decimal).
    """
    spec = layer.spec
    n = len(gdf)
    data: dict[str, pd.Series] = {SEQ_HEADER: pd.Series(np.arange(1, n + 1), dtype="Int64")}
    for key, header in _headers(spec).items():
        values = gdf[key] if key in gdf.columns else None
        data[header] = _typed_column(values, spec.fields.get(key), n)
    if spec.geometry == "Polygon":
        shares = layer.shares[layer.shares["township_code"] == township_code]
        mine = shares.drop_duplicates("key").set_index("key")
        keys = pd.Series(gdf[spec.key].to_numpy(dtype=object))
        data[AREA_HEADER] = keys.map(mine["area_ha"]).astype("float64").round(2)
        data[SHARE_HEADER] = (keys.map(mine["share"]).astype("float64") * 100).round(1)
    return pd.DataFrame(data)


def township_list_frames(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    *,
    include_cleared: bool = False,
) -> dict[str, pd.DataFrame]:
    """
    Build the township's risk list (风险点位清单) as one table per layer.

    Parameters
    ----------
    layers
        Prepared layers by id.
    township_code
        9-digit code, e.g. ``"500229001"``.
    township_name
        Township name (kept for a uniform signature with the writers; not a column).
    include_cleared
        Also list cleared (已销号) features.

    Returns
    -------
    frames
        ``{layer_id: df}`` for every layer, layer order, see `list_frame` (raw values, not
        neutralised). A fire zone across townships is in each township's frame, with its
        area inside that township.

    Raises
    ------
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    del township_name
    code = _check_code(township_code)
    listed = listed_features(layers, code, include_cleared=include_cleared)
    return {lid: list_frame(layers[lid], gdf, code) for lid, gdf in listed.items()}


# --- shared bits ------------------------------------------------------------------------------


def data_as_of(layers: Mapping[str, LayerData]) -> dt.date | None:
    """
    Latest ``updated_at`` (更新时间) over all features of all layers: the data's currency.

    Returns
    -------
    date
        The latest valid ISO date, or None when no feature has one.
    """
    latest = pd.NaT
    for layer in layers.values():
        if "updated_at" in layer.gdf.columns and len(layer.gdf):
            days = pd.to_datetime(layer.gdf["updated_at"], errors="coerce", format="ISO8601")
            if days.notna().any() and (pd.isna(latest) or days.max() > latest):
                latest = days.max()
    return None if pd.isna(latest) else latest.date()


def _any_demo(frames: Mapping[str, pd.DataFrame]) -> bool:
    return any(
        "demo" in gdf.columns and bool(gdf["demo"].astype("boolean").fillna(value=False).any())
        for gdf in frames.values()
    )


def _as_of_text(as_of: dt.date | None) -> str:
    if as_of is None:
        return "数据更新时间未填"
    return f"截至 {as_of.isoformat()}（数据更新时间）"


PUBLIC_ATTR = "public_precision_deg"
"""``gdf.attrs`` key `public_layers` sets: the grid step in degrees (0 = exact coordinates)."""


def public_note(layers: Mapping[str, LayerData]) -> str | None:
    """
    Return the 公开版 note for layers made by `public_layers`, or None for ordinary layers.

    Returns
    -------
    note
        E.g. ``"公开版：已去除个人姓名和电话号码；点位坐标已粗化至 0.01°
        （约 946×1109 米）"`` (one line).
    """
    steps = [
        layer.gdf.attrs[PUBLIC_ATTR] for layer in layers.values() if PUBLIC_ATTR in layer.gdf.attrs
    ]
    if not steps:
        return None
    note = "公开版：已去除个人姓名和电话号码"
    if step := max(steps):
        ew, ns = grid_metres(step)
        note += f"；点位坐标已粗化至 {step:g}°（约 {ew:.0f}×{ns:.0f} 米）"
    return note


def _notes(
    as_of: dt.date | None,
    *,
    approximate: bool,
    demo: bool,
    include_cleared: bool,
    public: str | None = None,
) -> list[str]:
    notes = [_as_of_text(as_of)]
    if public:
        notes.append(public)
    if approximate:
        notes.append(NOTE_APPROXIMATE)
    if demo:
        notes.append(NOTE_DEMO)
    if not include_cleared:
        notes.append(NOTE_NO_CLEARED)
    return notes


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _number(value: Any) -> int | float | None:  # noqa: ANN401 - numpy/pandas scalars
    """Return a finite Python number, or None for NA/NaN/inf."""
    if is_blank(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def _number_text(value: Any) -> str:  # noqa: ANN401 - numpy/pandas scalars
    number = _number(value)
    if number is None:
        return ""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:  # noqa: PLR2004
        return str(int(number))
    return repr(number) if isinstance(number, float) else str(number)


def _text(value: Any) -> str:  # noqa: ANN401 - any cell value
    return "" if is_blank(value) else str(value)


# --- XLSX -------------------------------------------------------------------------------------


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


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


def _number_format(header: str, series: pd.Series) -> str:
    if header == SHARE_HEADER:
        return "0.0"
    if header == AREA_HEADER:
        return "0.00"
    if pd.api.types.is_integer_dtype(series):
        return "0"
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
    for j, header in enumerate(headers):
        series = df.iloc[:, j]
        numeric = _is_numeric(series)
        fmt = _number_format(header, series)
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


def _subtotal_headers(spec: LayerSpec, df: pd.DataFrame) -> list[str]:
    headers = _headers(spec)
    out = [headers[k] for k in spec.sums if k in headers]
    if AREA_HEADER in df.columns:
        out.append(AREA_HEADER)
    return out


def _sum(series: pd.Series) -> int | float:
    total = pd.to_numeric(series, errors="coerce").sum(skipna=True)
    if pd.api.types.is_integer_dtype(series):
        return int(total)
    return round(float(total), 2)


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
        fmt = _number_format(header, df[header])
        _put_number(ws, total_row, j + 1, _sum(df[header]), fmt).font = _BOLD
    for col in range(1, ncols + 1):
        ws.cell(row=total_row, column=col).fill = _TOTAL_FILL
    _fit_columns(ws, widths)
    name_col = next((i + 2 for i, h in enumerate(df.columns[1:4]) if h == spec.header("name")), 1)
    ws.freeze_panes = ws.cell(row=header_row + 1, column=name_col + 1).coordinate
    last = get_column_letter(max(ncols, 1))
    ws.auto_filter.ref = f"A{header_row}:{last}{header_row + max(len(df), 1)}"
    _print_setup(ws, header_row)


def _sheet_name(name: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub("_", name).strip("'")[:31] or "图层"
    candidate, i = base, 2
    while candidate in used:
        suffix = f"({i})"
        candidate, i = base[: 31 - len(suffix)] + suffix, i + 1
    used.add(candidate)
    return candidate


def _township_summary_frame(
    layers: Mapping[str, LayerData], frames: Mapping[str, pd.DataFrame], listed: Mapping[str, Any]
) -> pd.DataFrame:
    """Long table 图层 | 统计项 | 分类 | 数值 for the 汇总 sheet of one township."""
    rows: list[tuple[str, str, str, float]] = []
    for lid, df in frames.items():
        spec = layers[lid].spec
        gdf = listed[lid]
        rows.append((spec.name, "点位数", "合计", len(df)))
        cls = gdf[spec.class_field].fillna(UNCLASSED) if len(gdf) else pd.Series(dtype=object)
        class_label = spec.label(spec.class_field)
        rows.extend((spec.name, class_label, v, int((cls == v).sum())) for v in spec.classes)
        if (n := int((cls == UNCLASSED).sum())) > 0:
            rows.append((spec.name, class_label, UNCLASSED, n))
        status = gdf["status"].fillna(UNKNOWN_STATUS) if len(gdf) else pd.Series(dtype=object)
        rows.extend((spec.name, "状态", v, int((status == v).sum())) for v in STATUS_ORDER)
        if (n := int((status == UNKNOWN_STATUS).sum())) > 0:
            rows.append((spec.name, "状态", UNKNOWN_STATUS, n))
        for header in _subtotal_headers(spec, df):
            if header == spec.header(spec.area_field):
                continue  # whole-zone area; the township's part is AREA_HEADER
            rows.append((spec.name, header, "合计", _sum(df[header])))
    out = pd.DataFrame(rows, columns=[LAYER_HEADER, "统计项", "分类", "数值"])
    out["数值"] = pd.to_numeric(out["数值"])
    return out


def _workbook_bytes(wb: Workbook, generated: dt.date | None) -> bytes:
    stamp = dt.datetime.combine(generated or dt.date.today(), dt.time())
    wb.properties.creator = "riskmap"
    wb.properties.created = stamp
    wb.properties.modified = stamp
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_township(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    *,
    include_cleared: bool = False,
    approximate: bool = True,
    as_of: dt.date | None = None,
    generated: dt.date | None = None,
    county_name: str = "城口县",
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
    listed = listed_features(layers, code, include_cleared=include_cleared)
    frames = {lid: list_frame(layers[lid], gdf, code) for lid, gdf in listed.items()}
    notes = _notes(
        as_of or data_as_of(layers),
        approximate=approximate,
        demo=_any_demo(listed),
        include_cleared=include_cleared,
        public=public_note(layers),
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


# --- CSV --------------------------------------------------------------------------------------


def csv_township(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    *,
    include_cleared: bool = False,
) -> bytes:
    """
    Write the township's risk list as one CSV table (UTF-8 with BOM, CRLF line ends).

    Columns: `LAYER_HEADER` (layer's Chinese name), `SEQ_HEADER` (1..n within the layer),
    then the union of the layers' list headers in first-seen order (cells of a column a
    layer lacks are empty). No title, notes or subtotal rows: the CSV is a data table (for
    re-import or other tools); the XLSX is the document. Blanks are empty cells (never
    ``nan``); numbers are plain (``35``, ``12.5``, ``-3.5``); text cells are neutralised
    (`neutralise_cell`); codes keep their leading zeros.

    Parameters
    ----------
    layers
        Prepared layers by id.
    township_code
        9-digit code.
    township_name
        Township name (not a column).
    include_cleared
        Also list cleared (已销号) features.

    Returns
    -------
    data
        The UTF-8 byte order mark (EF BB BF) followed by the UTF-8 CSV.

    Raises
    ------
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    frames = township_list_frames(
        layers, township_code, township_name, include_cleared=include_cleared
    )
    columns: list[str] = [LAYER_HEADER]
    for df in frames.values():
        columns.extend(c for c in df.columns if c not in columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([neutralise_cell(c) for c in columns])
    for lid, df in frames.items():
        cells: dict[str, list[str]] = {LAYER_HEADER: [layers[lid].spec.name] * len(df)}
        for col in df.columns:
            series = df[col]
            if _is_numeric(series):
                cells[col] = [_number_text(v) for v in series.tolist()]
            else:
                cells[col] = [neutralise_cell(_text(v)) for v in series.tolist()]
        blank = [""] * len(df)
        for i in range(len(df)):
            writer.writerow([cells.get(c, blank)[i] for c in columns])
    return buf.getvalue().encode("utf-8-sig")


# --- GeoJSON ----------------------------------------------------------------------------------


def geojson_township(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    *,
    include_cleared: bool = False,
    approximate: bool = True,
    as_of: dt.date | None = None,
    generated: dt.date | None = None,
    county_name: str = "城口县",
) -> bytes:
    """
    Write the township's features as one RFC 7946 FeatureCollection (UTF-8, no BOM).

    Each feature keeps its stored properties (see `riskmap.io.geojson_text`: WGS84, ``null``
    for blanks, never ``NaN``) plus ``layer`` (id) and ``layer_name``; polygons add
    ``township_area_ha`` and ``township_share`` (0–1) for this township. Top-level foreign
    members (RFC 7946 §6.1): ``title``, ``township`` (``{"code", "name"}``),
    ``approximate_boundaries``, ``demo`` (any listed feature is demo data), ``as_of`` (ISO
    date or null) and ``generated`` (ISO date). Values are not neutralised (data, not a
    spreadsheet).

    Parameters
    ----------
    layers, township_code, township_name, include_cleared, approximate, as_of, generated,
    county_name
        As in `xlsx_township`.

    Returns
    -------
    data
        The GeoJSON text, encoded UTF-8; strict JSON (no ``NaN``/``Infinity``).

    Raises
    ------
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    code = _check_code(township_code)
    listed = listed_features(layers, code, include_cleared=include_cleared)
    features: list[dict[str, Any]] = []
    for lid, gdf in listed.items():
        if gdf.empty:
            continue
        spec = layers[lid].spec
        out = gdf.assign(layer=lid, layer_name=spec.name)
        if spec.geometry == "Polygon":
            frame = list_frame(layers[lid], gdf, code)
            out = out.assign(
                township_area_ha=frame[AREA_HEADER].to_numpy(),
                township_share=(frame[SHARE_HEADER] / 100).round(3).to_numpy(),
            )
        features.extend(json.loads(geojson_text(out, drop_columns=("join_flag",)))["features"])
    as_of = as_of or data_as_of(layers)
    collection = {
        "type": "FeatureCollection",
        "title": f"{county_name}{township_name}安全风险点位清单",
        "township": {"code": code, "name": township_name},
        "approximate_boundaries": bool(approximate),
        "demo": _any_demo(listed),
        "public_release": public_note(layers),
        "as_of": None if as_of is None else as_of.isoformat(),
        "generated": (generated or dt.date.today()).isoformat(),
        "features": features,
    }
    text = json.dumps(collection, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


# --- public release (公开版) --------------------------------------------------------------------

PERSONAL_LABEL_RE = re.compile(r"电话|手机|责任人|联系人|姓名|上报人|填报人|监测员|巡查员|身份证")
"""Field labels that name personal data; such fields are dropped even if not declared."""
PERSONAL_KEY_RE = re.compile(r"phone|mobile|tel(ephone)?$|contact|person|id_?card", re.IGNORECASE)
"""Field keys that name personal data; such fields are dropped even if not declared."""
PHONE_RE = re.compile(
    r"(?<!\d)(?:\+?86[\s-]?)?(?:1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}|0\d{2,3}[\s-]?\d{7,8})(?!\d)"
)
"""Chinese mobile (1xx xxxx xxxx) and landline (0xx(x)-xxxxxxx(x)) numbers inside free text."""
PHONE_MASK = "[电话已隐去]"
"""What a phone number found in free text becomes in a public release."""
METRES_PER_DEGREE_LAT = 110_885.0
"""Length of one degree of latitude at Chengkou (≈ 31.9°N), metres (WGS84 ellipsoid)."""
METRES_PER_DEGREE_LON = 94_596.0
"""Length of one degree of longitude at Chengkou (≈ 31.9°N), metres (WGS84 ellipsoid)."""


def personal_fields(spec: LayerSpec) -> tuple[str, ...]:
    """
    Keys of the layer's fields that hold personal data.

    A field is personal when the catalog declares it (``personal = true``, e.g. ``resp_name``
    责任人, ``resp_phone`` 联系电话) or, as a safety net for a layer that forgot to, when its
    label matches `PERSONAL_LABEL_RE` or its key matches `PERSONAL_KEY_RE`.
    """
    return tuple(
        k
        for k, f in spec.fields.items()
        if f.personal or PERSONAL_LABEL_RE.search(f.label) or PERSONAL_KEY_RE.search(k)
    )


def grid_metres(precision_deg: float) -> tuple[float, float]:
    """
    Size in metres of a `precision_deg` grid cell at Chengkou: (east-west, north-south).

    0.01° ≈ 946 m × 1109 m; a snapped point moves at most half a cell each way (≈ 730 m).
    """
    return precision_deg * METRES_PER_DEGREE_LON, precision_deg * METRES_PER_DEGREE_LAT


def _scrub_phones(value: Any) -> Any:  # noqa: ANN401 - any cell value
    return PHONE_RE.sub(PHONE_MASK, value) if isinstance(value, str) else value


def _snap_points(gdf: gpd.GeoDataFrame, precision_deg: float) -> gpd.GeoDataFrame:
    import geopandas as gpd  # noqa: PLC0415
    import shapely  # noqa: PLC0415

    geoms = gdf.geometry.to_numpy()
    points = shapely.get_type_id(geoms) == 0  # Point
    if not points.any():
        return gdf
    xy = shapely.get_coordinates(geoms[points])
    snapped = np.round(xy / precision_deg) * precision_deg
    digits = max(0, -math.floor(math.log10(precision_deg)) + 1)
    new = geoms.copy()
    new[points] = shapely.points(np.round(snapped, digits))
    return gdf.set_geometry(gpd.GeoSeries(new, index=gdf.index, crs=gdf.crs))


def public_layers(
    layers: Mapping[str, LayerData],
    *,
    precision_deg: float | None = 0.01,
) -> dict[str, LayerData]:
    """
    Prepare layers for a public release (公开版): no personal data, coarse point locations.

    * Keeps only the layer's declared fields that are not personal (`personal_fields`):
      ``resp_name`` (责任人), ``resp_phone`` (联系电话) and any field declared
      ``personal = true`` are dropped, and so is every undeclared extra property (e.g. a
      ``联系电话(原表)`` column kept from an imported survey table): an allow-list, not a
      block-list.
    * Phone numbers written inside the remaining free text (备注: "联系 13812345678") become
      `PHONE_MASK`.
    * Point coordinates are snapped to a grid of `precision_deg` degrees (see `grid_metres`:
      0.01° ≈ 946 m E-W × 1109 m N-S at Chengkou, a point moves ≤ ≈ 730 m); None keeps them.
      Township membership stays that of the exact location (joined before snapping).
    * Polygons (森林火险区) are left as they are: they are planning zones drawn by the
      forestry office, not anyone's home, and their areas are computed from them.

    Feed the result to any writer (`xlsx_township`, `csv_township`, `geojson_township`,
    `all_townships_zip`): their columns and popups follow the reduced specs.

    Parameters
    ----------
    layers
        Prepared layers by id.
    precision_deg
        Grid step in degrees (> 0), or None for exact coordinates.

    Returns
    -------
    layers
        New `LayerData` per id: spec without the personal fields (also out of ``popup``,
        ``list_fields``), gdf with only the kept columns.

    Raises
    ------
    ValueError
        When `precision_deg` is not a positive finite number.
    """
    if precision_deg is not None and not (
        isinstance(precision_deg, (int, float))
        and math.isfinite(precision_deg)
        and precision_deg > 0
    ):
        msg = f"precision_deg 应为正数（度），如 0.01: {precision_deg!r}"
        raise ValueError(msg)
    out: dict[str, LayerData] = {}
    for lid, layer in layers.items():
        spec = layer.spec
        drop = set(personal_fields(spec))
        fields = {k: f for k, f in spec.fields.items() if k not in drop}
        public_spec = replace(
            spec,
            fields=fields,
            popup=tuple(k for k in spec.popup if k not in drop),
            list_fields=tuple(k for k in spec.list_fields if k not in drop),
        )
        gdf = layer.gdf
        keep = [c for c in gdf.columns if c in fields or c == gdf.geometry.name]
        gdf = gdf[keep].copy()
        for col in gdf.columns:
            if col != gdf.geometry.name and gdf[col].dtype == object:
                gdf[col] = gdf[col].map(_scrub_phones)
        if precision_deg is not None and len(gdf):
            gdf = _snap_points(gdf, float(precision_deg))
        gdf.attrs[PUBLIC_ATTR] = float(precision_deg or 0)
        out[lid] = LayerData(spec=public_spec, gdf=gdf, shares=layer.shares)
    return out


# --- county overview and the all-townships ZIP -----------------------------------------------


def listed_layers(
    layers: Mapping[str, LayerData], *, include_cleared: bool = False
) -> dict[str, LayerData]:
    """
    Restrict layers to what the lists show (cleared features dropped unless asked).

    Returns
    -------
    layers
        New `LayerData` per id: ``gdf`` = `riskmap.layers.active` features, ``shares`` only
        for those features. Feed these to `riskmap.aggregate.summarize_townships` and
        `summary_xlsx` so the overview counts what the township lists list.
    """
    return {
        lid: layer.subset(active(layer.gdf, include_cleared=include_cleared))
        for lid, layer in layers.items()
    }


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
    county_name: str = "城口县",
    include_cleared: bool = False,
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


def _file_part(text: str) -> str:
    return _FILE_BAD.sub("_", str(text)).strip() or "_"


def township_file_name(code: str, name: str, fmt: str) -> str:
    """``"500229001_葛城街道.xlsx"``: 9-digit code, underscore, name, extension."""
    return f"{_file_part(code)}_{_file_part(name)}.{fmt}"


def all_townships_zip(
    layers: Mapping[str, LayerData],
    township_codes: pd.DataFrame,
    *,
    fmt: str = "xlsx",
    include_cleared: bool = False,
    approximate: bool = True,
    as_of: dt.date | None = None,
    generated: dt.date | None = None,
    county_name: str = "城口县",
) -> bytes:
    """
    Every township's list in one ZIP, plus the county overview.

    Why this form: a county office (应急局/规自局) sends each township government its own
    list to act on (核查, 巡查, 转移): one file per township, named by code and name, can be
    forwarded as is, and a township never sees (or mis-reads) another's points. The county
    keeps the overview ``<county>_汇总.xlsx`` (one row per township, 全县合计) to follow up.
    One workbook with 25 sheets would have to be split by hand before sending.

    Members (UTF-8 names, ZIP flag bit 11): ``<code>_<name>.<fmt>`` for every row of
    `township_codes`, in its order (a township with no features still gets its file: an
    empty list is an answer), then ``<county>_汇总.xlsx``.

    Parameters
    ----------
    layers
        Prepared layers by id.
    township_codes
        The code table: columns ``adcode`` (9-digit text), ``name``, ``level``.
    fmt
        ``"xlsx"``, ``"csv"`` or ``"geojson"`` (`FORMATS`) for the township files.
    include_cleared, approximate, as_of, generated, county_name
        As in `xlsx_township`.

    Returns
    -------
    data
        The ZIP file (deflated; member times = `generated`, so equal inputs give equal bytes
        apart from the XLSX internals).

    Raises
    ------
    ValueError
        When `fmt` is not one of `FORMATS`.
    SchemaError
        When `township_codes` lacks ``adcode``, ``name`` or ``level``.
    TownshipNotFoundError
        When a code is not 9 digits.
    """
    if fmt not in FORMATS:
        msg = f"fmt must be one of {FORMATS}, got {fmt!r}"
        raise ValueError(msg)
    if missing := sorted({"adcode", "name", "level"} - set(township_codes.columns)):
        msg = f"township_codes lacks columns {missing} (expected adcode, name, level)"
        raise SchemaError(msg)
    generated = generated or dt.date.today()
    as_of = as_of or data_as_of(layers)
    stamp = (generated.year, generated.month, generated.day, 0, 0, 0)
    common = {"include_cleared": include_cleared}
    doc = {
        "approximate": approximate,
        "as_of": as_of,
        "generated": generated,
        "county_name": county_name,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for code, name in zip(township_codes["adcode"], township_codes["name"], strict=True):
            if fmt == "xlsx":
                data = xlsx_township(layers, str(code), str(name), **common, **doc)
            elif fmt == "csv":
                data = csv_township(layers, str(code), str(name), **common)
            else:
                data = geojson_township(layers, str(code), str(name), **common, **doc)
            info = zipfile.ZipInfo(township_file_name(str(code), str(name), fmt), stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
        shown = listed_layers(layers, include_cleared=include_cleared)
        df_summary = summarize_townships(shown, None, township_codes)  # type: ignore[arg-type]
        overview = summary_xlsx(df_summary, shown, include_cleared=include_cleared, **doc)
        info = zipfile.ZipInfo(f"{_file_part(county_name)}_汇总.xlsx", stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, overview)
    return buf.getvalue()
