"""Township sheet (乡镇风险点位图表): map page, lists with coordinates, 清零 figures, signing line.

The rows and columns of the lists are the XLSX lists' own (`riskmap.exporters.listed_features`
and `riskmap.exporters.list_frame`), so paper and spreadsheet never disagree; the sheet adds
the coordinates (经度/纬度, EPSG:4326 ≈ CGCS2000 geographic: the two frames differ by
centimetres, far below the points' own accuracy) after the name.

``--all`` gives a ZIP (`all_township_sheets_zip`): one PDF per township plus the county map,
not one bound PDF. Why: each sheet is a document on its own, signed (制表单位 / 审核 / 日期)
and sent to its township government like the XLSX lists (`riskmap.exporters.all_townships_zip`
gives the same form for the same reason), and its page numbers (第 n 页 / 共 N 页) must count
that township's pages only, so a township can check that its copy is complete.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import unicodedata
import zipfile
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from riskmap import exporters
from riskmap.aggregate import UNKNOWN_STATUS, summarize_townships
from riskmap.catalog import STATUS_CLEARED, STATUS_ORDER
from riskmap.report import maps
from riskmap.report.render import (
    MARGIN_MM,
    document,
    esc,
    page_size,
    pdf_from_html,
    svg_img,
)
from riskmap.schema import blank_mask, is_blank

if TYPE_CHECKING:
    from collections.abc import Mapping

    import geopandas as gpd

    from riskmap.catalog import LayerSpec
    from riskmap.layers import LayerData
    from riskmap.project import Project

LON_HEADER = "经度(°)"
"""Column of point longitude (EPSG:4326, 6 decimals ≈ 0.1 m)."""
LAT_HEADER = "纬度(°)"
"""Column of point latitude."""
NOTE_COORDS_POLYGON = "区域的经纬度为其内部代表点（representative point）"
NOTE_COVERED = "本乡镇在示意边界中没有单独的范围，图中为包含它的单元"
RESP_FIELDS = ("resp_unit", "resp_name", "resp_phone", "two_cards", "has_plan")
"""Fields counted in 责任落实 (filled / true), when the layer declares them."""
MAX_COLUMN_UNITS = 24
"""Cap of a list column's width, half-width character units (longer text wraps)."""
MIN_COLUMN_UNITS = 5
_TOKEN = re.compile(r"^[\x21-\x7e]+$")
"""Least width of a list column, half-width character units."""
MAX_LABELS = 80
"""Above this many points a township map shows symbols only (labels would cover the map)."""
HEADER_MM = 30.0
"""Height kept above the map on the first page for title and notes."""


def risk_layers(project: Project) -> dict[str, LayerData]:
    """Layers that are risk points (catalog ``role`` absent or ``"risk"``), catalog order."""
    return {
        lid: layer
        for lid, layer in project.layers.items()
        if getattr(layer.spec, "role", "risk") == "risk"
    }


def township_polygons(project: Project, code: str) -> tuple[gpd.GeoDataFrame, bool]:
    """
    Find the polygon(s) to draw for a township.

    Returns
    -------
    gdf, covered
        Its own polygon, or (when it has none, like 复兴街道 in the approximate partition) the
        cell whose ``also_covers`` lists it, with ``covered = True``.
    """
    towns = project.gdf_townships
    own = towns[towns["adcode"].astype(str) == code]
    if not own.empty or "also_covers" not in towns.columns:
        return own, False
    cover = towns["also_covers"].fillna("").astype(str).str.contains(code, regex=False)
    return towns[cover], True


def _cell(value: object, *, digits: int | None = None) -> str:
    if is_blank(value):
        return ""
    if isinstance(value, float):
        if digits is not None:
            return f"{value:.{digits}f}"
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return esc(value)


def coordinate_columns(gdf: gpd.GeoDataFrame) -> tuple[pd.Series, pd.Series]:
    """
    Longitude and latitude of each feature (points: the point; polygons: representative point).

    Returns
    -------
    lon, lat
        float64 Series (RangeIndex, same order as `gdf`), NaN where there is no geometry.
    """
    geoms = gdf.geometry
    ok = (geoms.notna() & ~geoms.is_empty).to_numpy()
    pts = geoms.copy()
    pts[ok] = geoms[ok].representative_point()
    lon = pd.Series([p.x if k else float("nan") for p, k in zip(pts, ok, strict=True)])
    lat = pd.Series([p.y if k else float("nan") for p, k in zip(pts, ok, strict=True)])
    return lon.astype("float64"), lat.astype("float64")


def with_coordinates(df: pd.DataFrame, gdf: gpd.GeoDataFrame, spec: LayerSpec) -> pd.DataFrame:
    """Insert `LON_HEADER` / `LAT_HEADER` after the name column (or at the end)."""
    lon, lat = coordinate_columns(gdf)
    out = df.copy()
    name = spec.header("name")
    pos = list(out.columns).index(name) + 1 if name in out.columns else len(out.columns)
    out.insert(pos, LON_HEADER, lon.round(6).to_numpy())
    out.insert(pos + 1, LAT_HEADER, lat.round(6).to_numpy())
    return out


def subtotals(spec: LayerSpec, df: pd.DataFrame) -> dict[str, int | float]:
    """
    Sum the 合计 row as the XLSX lists do: each of ``spec.sums`` and the area.

    Returns
    -------
    sums
        ``{column header: sum}`` (int for integer columns, float rounded to 2 otherwise).
    """
    heads = [spec.header(k) for k in spec.sums]
    heads += [f"{spec.header(k)}[{k}]" for k in spec.sums]
    heads.append(exporters.AREA_HEADER)
    out: dict[str, int | float] = {}
    for head in heads:
        if head in df.columns:
            total = pd.to_numeric(df[head], errors="coerce").sum(skipna=True)
            is_int = pd.api.types.is_integer_dtype(df[head])
            out[head] = int(total) if is_int else round(float(total), 2)
    return out


def list_table(df: pd.DataFrame, spec: LayerSpec) -> str:
    """One layer's list as an HTML table with a 合计 row (``共n处`` and the subtotals)."""
    heads = "".join(f"<th>{esc(h)}</th>" for h in df.columns)
    numeric = {
        h for h in df.columns
        if pd.api.types.is_numeric_dtype(df[h]) and not pd.api.types.is_bool_dtype(df[h])
    }  # fmt: skip
    # Codes, uids and phone numbers print on one line: a broken number is misread.
    tokens = {spec.header(spec.key)} | {
        h for h in df.columns if h not in numeric and is_token(df[h])
    }
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for head, value in zip(df.columns, rec, strict=True):
            digits = 6 if head in {LON_HEADER, LAT_HEADER} else None
            cls = ' class="num"' if head in numeric else ""
            if head in tokens:
                cls = ' class="key"'
            cells.append(f"<td{cls}>{_cell(value, digits=digits)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    sums = subtotals(spec, df)
    total = []
    for j, head in enumerate(df.columns):
        if j == 0:
            total.append("<td>合计</td>")
        elif j == 1:
            total.append(f"<td>共{len(df)}处</td>")
        elif head in sums:
            total.append(f'<td class="num">{_cell(sums[head])}</td>')
        else:
            total.append("<td></td>")
    rows.append('<tr class="total">' + "".join(total) + "</tr>")
    cols = "".join(f'<col style="width:{w:.2f}%">' for w in column_widths(df, tokens))
    return (
        f'<table class="list"><colgroup>{cols}</colgroup><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _display_width(text: str) -> int:
    """Width in half-width units: CJK and other wide characters count 2 (UAX #11)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def is_token(values: pd.Series) -> bool:
    """Tell whether every filled cell is one printable-ASCII word (a code, uid, phone)."""
    texts = [str(v) for v in values if not is_blank(v)]
    return bool(texts) and all(_TOKEN.match(t) for t in texts)


def column_widths(df: pd.DataFrame, tokens: set[str] | frozenset[str] = frozenset()) -> list[float]:
    """
    Column widths of a list table in percent, from its content (``table-layout: fixed``).

    A fixed layout is laid out row by row, so a list of thousands of rows stays linear in
    time (an automatic layout measures every cell first). Each column gets a share in
    proportion to its widest cell (capped at `MAX_COLUMN_UNITS` half-width units, long text
    wraps) or half of its header (headers wrap onto two lines), at least
    `MIN_COLUMN_UNITS`; columns in `tokens` (codes, uids, phones: one line) get their widest
    cell whole.

    Returns
    -------
    widths
        One percentage per column of `df`, summing to 100.
    """
    units = []
    for head in df.columns:
        digits = 6 if head in {LON_HEADER, LAT_HEADER} else None
        cells = df[head].map(partial(_cell, digits=digits))
        widest = int(cells.map(lambda t: _display_width(html.unescape(t))).max()) if len(df) else 0
        cap = widest if head in tokens else MAX_COLUMN_UNITS  # tokens never wrap
        units.append(max(min(widest, cap), -(-_display_width(str(head)) // 2), MIN_COLUMN_UNITS))
    total = sum(units)
    return [100 * u / total for u in units]


def clearance_frame(layers: Mapping[str, LayerData], project: Project, code: str) -> pd.DataFrame:
    """
    清零 figures of one township, per layer, from `riskmap.aggregate.summarize_townships`.

    Returns
    -------
    df
        Rows: layers; columns 图层, each status of `STATUS_ORDER` (在册, 监测中, 治理中,
        已销号), 未填, 未销号 (all but 已销号), 合计, 销号率(%) (已销号 / 合计, 1 decimal;
        blank when 合计 is 0). Counts include cleared points (the list pages do not).
    """
    summary = summarize_townships(layers, project.gdf_townships, project.township_codes)
    row = summary[summary["adcode"] == code].iloc[0]
    records = []
    for lid, layer in layers.items():
        rec: dict[str, object] = {"图层": layer.spec.name}
        for status in [*STATUS_ORDER, UNKNOWN_STATUS]:
            rec[status] = int(row[f"{lid}|status|{status}"])
        total = int(row[lid])
        rec["未销号"] = total - int(rec[STATUS_CLEARED])  # type: ignore[call-overload]
        rec["合计"] = total
        rec["销号率(%)"] = round(100 * int(rec[STATUS_CLEARED]) / total, 1) if total else None  # type: ignore[call-overload]
        records.append(rec)
    return pd.DataFrame(records)


def responsibility_frame(
    layers: Mapping[str, LayerData], listed: Mapping[str, gpd.GeoDataFrame]
) -> pd.DataFrame:
    """
    责任落实 of the listed points: per layer, how many have each responsibility field filled.

    Parameters
    ----------
    layers
        Prepared layers by id (for their specs).
    listed
        The features on the list pages, by layer id.

    Returns
    -------
    df
        Rows: layers; columns 图层, 点位数, then for each of `RESP_FIELDS` the layer declares
        (责任单位, 责任人, 联系电话, 两卡发放, 应急预案) the text ``"n/N"`` (text fields:
        filled; bool fields: true); ``"—"`` where the layer does not declare the field.
    """
    labels: dict[str, str] = {}
    for layer in layers.values():
        for key in RESP_FIELDS:
            if key in layer.spec.fields:
                labels.setdefault(key, layer.spec.label(key))
    records = []
    for lid, layer in layers.items():
        gdf = listed[lid]
        n = len(gdf)
        rec: dict[str, object] = {"图层": layer.spec.name, "点位数": n}
        for key, label in labels.items():
            fspec = layer.spec.fields.get(key)
            if fspec is None or key not in gdf.columns:
                rec[label] = "—"
                continue
            if fspec.type == "bool":
                done = int(gdf[key].astype("boolean").fillna(value=False).sum())
            else:
                done = int((~blank_mask(gdf[key])).sum())
            rec[label] = f"{done}/{n}"
        records.append(rec)
    return pd.DataFrame(records)


def simple_table(df: pd.DataFrame) -> str:
    """Write a small HTML table (figures), numbers right-aligned."""
    heads = "".join(f"<th>{esc(h)}</th>" for h in df.columns)
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for value in rec:
            cls = ' class="num"' if isinstance(value, int | float) else ""
            cells.append(f"<td{cls}>{_cell(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


SIGN_LINE = (
    '<div class="sign"><span>制表单位（盖章）：<span class="blank"></span></span>'
    '<span>审核：<span class="blank"></span></span>'
    '<span>日期：<span class="blank"></span></span></div>'
)
"""The signing line (制表单位 / 审核 / 日期) closing a sheet."""


def notes_for(
    project: Project,
    listed: Mapping[str, gpd.GeoDataFrame],
    *,
    include_cleared: bool,
    covered: bool = False,
) -> list[str]:
    """
    List the data notes printed under the title: currency date, 示意边界, 演示数据, 不含已销号.

    Returns
    -------
    notes
        Chinese sentences, the same ones as the XLSX lists (`riskmap.exporters` constants).
    """
    as_of = exporters.data_as_of(project.layers)
    notes = [f"数据截至 {as_of.isoformat()}" if as_of else "数据更新时间未填"]
    if project.approximate:
        notes.append(exporters.NOTE_APPROXIMATE)
    if covered:
        notes.append(NOTE_COVERED)
    demo = any(
        "demo" in gdf.columns and bool(gdf["demo"].astype("boolean").fillna(value=False).any())
        for gdf in listed.values()
    )
    if demo:
        notes.append(exporters.NOTE_DEMO)
    if not include_cleared:
        notes.append(exporters.NOTE_NO_CLEARED)
    return notes


def notes_html(notes: list[str]) -> str:
    """Write the notes as one HTML paragraph; 示意/演示 notes in bold red."""
    spans = "".join(
        f'<span class="{"warn" if "示意" in n or "演示" in n else ""}">{esc(n)}</span>'
        for n in notes
    )
    return f'<p class="notes">{spans}</p>'


def township_sheet_pdf(
    project: Project,
    township: str,
    *,
    size: str = "A4",
    include_cleared: bool = False,
    generated: dt.date | None = None,
) -> bytes:
    """
    Make the printable township sheet (乡镇风险点位图表) as PDF.

    Pages (landscape): 1. the township map (its boundary, its risk points by layer and
    class in the catalog's colours, labelled with their 统一编号 up to `MAX_LABELS` points;
    legend, scale bar, north arrow; the notes 示意边界 / 演示数据 under the title); 2… one
    list per layer, the XLSX list's columns plus 经度/纬度, closed by a 合计 row; then the
    清零 figures (per layer by status, with 销号率), 责任落实 (filled responsibility fields)
    and the signing line 制表单位 / 审核 / 日期. Every page: header with title and dates,
    footer with the notes and ``第 n 页 / 共 N 页``.

    Parameters
    ----------
    project
        The loaded installation.
    township
        Township name (with or without 街道/镇/乡) or 9/12-digit code.
    size
        ``"A4"`` (default) or ``"A3"``, landscape.
    include_cleared
        Also list cleared (已销号) points.
    generated
        Date printed as 制表日期; default today.

    Returns
    -------
    pdf
        The PDF file.

    Raises
    ------
    TownshipNotFoundError
        When `township` matches no township.
    ReportError
        When `size` is unknown, or the CJK font / Pango is missing.
    """
    paper = page_size(size)
    code, name = project.township(township)
    generated = generated or dt.date.today()
    layers = risk_layers(project)
    listed = exporters.listed_features(layers, code, include_cleared=include_cleared)
    frames = {
        lid: with_coordinates(exporters.list_frame(layers[lid], gdf, code), gdf, layers[lid].spec)
        for lid, gdf in listed.items()
    }
    focus, covered = township_polygons(project, code)
    notes = notes_for(project, listed, include_cleared=include_cleared, covered=covered)
    county = project.settings.county_name
    title = f"{county}{name}安全风险点位图表"
    width, height = paper.oriented(landscape=True)
    map_w, map_h = width - 2 * MARGIN_MM, height - 2 * MARGIN_MM - HEADER_MM
    n_points = sum(len(gdf) for lid, gdf in listed.items() if layers[lid].spec.geometry == "Point")
    labelled = n_points <= MAX_LABELS
    svg = maps.map_svg(
        {lid: (layers[lid].spec, gdf) for lid, gdf in listed.items()},
        project.gdf_townships,
        project.gdf_county,
        metric_crs=project.settings.metric_crs,
        width_mm=map_w,
        height_mm=map_h,
        focus=focus,
        label_points=labelled,
    )
    counts = "，".join(f"{layers[lid].spec.name} {len(df)} 处" for lid, df in frames.items())
    counts += "（标注为统一编号）" if labelled else f"（超过 {MAX_LABELS} 处，图中不标注编号）"
    body = [
        f"<h1>{esc(title)}</h1>",
        notes_html(notes),
        f'<p class="notes">乡镇代码 {esc(code)}；图中点位：{esc(counts)}</p>',
        svg_img(svg, width_mm=map_w, height_mm=map_h, alt=f"{name}风险点位图"),
    ]
    for lid, df in frames.items():
        spec = layers[lid].spec
        brk = ' class="page-break"' if lid == next(iter(frames)) else ""
        body.append(f"<h2{brk}>{esc(spec.name)}清单（{len(df)} 处）</h2>")
        if spec.geometry == "Polygon":
            body.append(
                f'<p class="notes">{esc(exporters.NOTE_ZONES)}；{esc(NOTE_COORDS_POLYGON)}</p>'
            )
        body.append(list_table(df, spec))
    body.append("<h2>清零进度（含已销号点位）</h2>")
    body.append(simple_table(clearance_frame(layers, project, code)))
    body.append("<h2>责任落实（清单内点位，已填写/点位数）</h2>")
    body.append(simple_table(responsibility_frame(layers, listed)))
    body.append(SIGN_LINE)
    doc = document(
        "".join(body),
        title=title,
        right=f"制表日期 {generated.isoformat()}　{notes[0]}",
        left_foot="；".join(n for n in notes[1:] if n != exporters.NOTE_NO_CLEARED),
        size=paper,
        landscape=True,
        base_pt=6.5 if paper.name == "A4" else 8.0,
    )
    return pdf_from_html(doc, title=title)


def all_township_sheets_zip(
    project: Project,
    *,
    size: str = "A4",
    include_cleared: bool = False,
    generated: dt.date | None = None,
) -> bytes:
    """
    Every township's sheet in one ZIP, plus the county map (why a ZIP: module docstring).

    Members: ``<code>_<name>.pdf`` for every township of the code table, in its order (a
    township with no points still gets its sheet: an empty list is an answer), then
    ``<county>_风险点位总图.pdf`` (`riskmap.report.poster.county_poster_pdf`, same size).

    Returns
    -------
    data
        The ZIP file (deflated; member times = `generated`).

    Raises
    ------
    ReportError
        As `township_sheet_pdf`.
    """
    from riskmap.report.poster import county_poster_pdf  # noqa: PLC0415 - sibling, no cycle

    generated = generated or dt.date.today()
    stamp = (generated.year, generated.month, generated.day, 0, 0, 0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for code, name in zip(
            project.township_codes["adcode"], project.township_codes["name"], strict=True
        ):
            data = township_sheet_pdf(
                project, str(code), size=size, include_cleared=include_cleared,
                generated=generated,
            )  # fmt: skip
            info = zipfile.ZipInfo(exporters.township_file_name(str(code), str(name), "pdf"), stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
        poster = county_poster_pdf(
            project, size=size, include_cleared=include_cleared, generated=generated
        )
        info = zipfile.ZipInfo(f"{project.settings.county_name}_风险点位总图.pdf", stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, poster)
    return buf.getvalue()
