"""County poster (全县风险点位总图): the whole county on one landscape page, A3 or A2."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from riskmap import exporters
from riskmap.layers import active
from riskmap.report import maps
from riskmap.report.render import MARGIN_MM, document, esc, page_size, pdf_from_html, svg_img
from riskmap.report.sheet import notes_for, notes_html, risk_layers

if TYPE_CHECKING:
    from riskmap.project import Project

POSTER_HEADER_MM = 34.0
"""Height kept for title, notes and sources above the map."""


def source_notes(project: Project) -> list[str]:
    """
    Say where the map's reference data come from (printed small under the title).

    Returns
    -------
    notes
        The township boundaries' note when they are the approximate partition (its
        ``note``, first clause), the pointer to ``data/SOURCES.md`` (provenance and licences
        of the county outline and township data), and the CRS of the drawing.
    """
    out = []
    towns = project.gdf_townships
    if project.approximate and "note" in towns.columns:
        note = towns["note"].dropna().astype(str)
        if len(note):
            out.append("乡镇界：" + note.iloc[0].split("；")[0])
    out.append("县界、乡镇代码等参考数据的来源与许可见 data/SOURCES.md")
    out.append(f"无底图（离线打印）；制图坐标系 {project.settings.metric_crs}")
    return out


def county_poster_pdf(
    project: Project,
    *,
    size: str = "A3",
    include_cleared: bool = False,
    generated: dt.date | None = None,
) -> bytes:
    """
    Make the county poster as a one-page PDF.

    The page (landscape): title ``<county>安全风险点位总图``, the notes (数据截至, 示意边界,
    演示数据, 不含已销号), the sources of the reference data, the per-layer counts, then the map:
    county outline, every township named, every risk layer's active points and zones in the
    catalog's colours and symbols, legend, scale bar, north arrow.

    Parameters
    ----------
    project
        The loaded installation.
    size
        ``"A3"`` (default), ``"A2"`` or ``"A4"``.
    include_cleared
        Also draw cleared (已销号) points.
    generated
        Date printed as 制图日期; default today.

    Returns
    -------
    pdf
        The PDF file (one page).

    Raises
    ------
    ReportError
        When `size` is unknown, or the CJK font / Pango is missing.
    """
    paper = page_size(size)
    generated = generated or dt.date.today()
    layers = risk_layers(project)
    shown = {
        lid: active(layer.gdf, include_cleared=include_cleared) for lid, layer in layers.items()
    }
    notes = notes_for(project, shown, include_cleared=include_cleared)
    county = project.settings.county_name
    title = f"{county}安全风险点位总图"
    width, height = paper.oriented(landscape=True)
    scale = width / 420.0  # A3 = 1
    map_w = width - 2 * MARGIN_MM
    map_h = height - 2 * MARGIN_MM - POSTER_HEADER_MM * max(scale, 0.8)
    svg = maps.map_svg(
        {lid: (layers[lid].spec, gdf) for lid, gdf in shown.items()},
        project.gdf_townships,
        project.gdf_county,
        metric_crs=project.settings.metric_crs,
        width_mm=map_w,
        height_mm=map_h,
        marker_size=22.0 * scale,
    )
    counts = "，".join(f"{layers[lid].spec.name} {len(gdf)} 处" for lid, gdf in shown.items())
    sources = "".join(f"<span>{esc(s)}</span>" for s in source_notes(project))
    body = (
        f"<h1>{esc(title)}</h1>"
        f"{notes_html(notes)}"
        f'<p class="notes">图中点位：{esc(counts)}</p>'
        f'<p class="notes">{sources}</p>'
        f"{svg_img(svg, width_mm=map_w, height_mm=map_h, alt=title)}"
    )
    doc = document(
        body,
        title=title,
        right=f"制图日期 {generated.isoformat()}　{notes[0]}",
        left_foot="；".join(n for n in notes[1:] if n != exporters.NOTE_NO_CLEARED),
        size=paper,
        landscape=True,
        base_pt=8.0 * max(scale, 1.0),
    )
    return pdf_from_html(doc, title=title)
