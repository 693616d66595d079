"""Printed maps (纸质地图) as vector SVG: township map, county poster map, point locator. Pure.

Drawn with matplotlib's object API (`matplotlib.figure.Figure`, no pyplot state, so Streamlit
sessions can draw at once) in the metric CRS (`Settings.metric_crs`, EPSG:4545 CGCS2000
3-degree Gauss-Krüger CM 108°E) so the scale bar is true: its length is measured in metres on
the map. North is up: EPSG:4545's grid north differs from true north by the meridian
convergence, about 0.4° at the county (108.3–109.3°E, 32°N: γ ≈ Δλ·sin φ), too small to
show on a printed arrow.

Text is written as SVG ``<text>`` in the CJK font (``svg.fonttype = "none"``): WeasyPrint
then embeds it in the PDF as a font subset, so township names on the map are searchable.
Point symbols and colours come from the catalog (``symbol``, ``colors``), the same ones the
web map uses.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from riskmap.catalog import UNCLASSED
from riskmap.schema import is_blank

if TYPE_CHECKING:
    from collections.abc import Mapping

    import geopandas as gpd

    from riskmap.catalog import LayerSpec

CJK_FONT = "Noto Sans CJK SC"
"""Font family of every printed text (Debian ``fonts-noto-cjk``)."""
MARKERS = {"circle": "o", "square": "s", "triangle": "^", "diamond": "D"}
"""Catalog ``symbol`` → matplotlib marker (``fill`` layers are polygons)."""
UNCLASSED_COLOR = "#9e9e9e"
"""Fill of features whose class is empty or not declared."""
MM_PER_INCH = 25.4


def _rc() -> dict[str, object]:
    return {
        "svg.fonttype": "none",
        "font.family": [CJK_FONT],
        "font.size": 8,
        "axes.unicode_minus": False,
        "svg.hashsalt": "riskmap",  # stable ids: equal inputs give equal SVG
    }


def nice_length_m(span_m: float) -> float:
    """
    Choose a scale-bar length: 1, 2 or 5 × 10^n metres, at most a fifth of `span_m`.

    Parameters
    ----------
    span_m
        Width of the map frame in metres (> 0).

    Returns
    -------
    length_m
        E.g. 20 000 for a 110 km wide frame, 2 000 for a 12 km one.
    """
    target = max(span_m / 5.0, 1.0)
    exp = 10.0 ** math.floor(math.log10(target))
    return max(m * exp for m in (1.0, 2.0, 5.0) if m * exp <= target)


M_PER_KM = 1000.0


def _length_text(length_m: float) -> str:
    return f"{length_m / M_PER_KM:g} 公里" if length_m >= M_PER_KM else f"{length_m:g} 米"


def _north_arrow(ax: object) -> None:
    ax.annotate(  # type: ignore[attr-defined]
        "北",
        xy=(0.965, 0.97),
        xytext=(0.965, 0.86),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=9,
        fontweight="bold",
        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2},
    )


def _scale_bar(ax: object, span_m: float) -> None:
    length = nice_length_m(span_m)
    bar = AnchoredSizeBar(
        ax.transData,  # type: ignore[attr-defined]
        length,
        _length_text(length),
        "lower left",
        pad=0.5,
        borderpad=0.6,
        sep=3,
        frameon=True,
        size_vertical=span_m / 250,
        fontproperties={"size": 7, "family": CJK_FONT},
    )
    bar.patch.set_alpha(0.8)
    ax.add_artist(bar)  # type: ignore[attr-defined]


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _frame(bounds: np.ndarray, *, pad: float, aspect: float, min_span_m: float) -> np.ndarray:
    """Pad `(left, bottom, right, top)` and widen one side to the axes' width/height `aspect`."""
    left, bottom, right, top = (float(v) for v in bounds)
    cx, cy = (left + right) / 2, (bottom + top) / 2
    w = max(right - left, min_span_m) * (1 + 2 * pad)
    h = max(top - bottom, min_span_m) * (1 + 2 * pad)
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _class_colors(spec: LayerSpec, gdf: gpd.GeoDataFrame) -> list[str]:
    cls = gdf[spec.class_field] if spec.class_field in gdf.columns else None
    if cls is None:
        return [UNCLASSED_COLOR] * len(gdf)
    return [UNCLASSED_COLOR if is_blank(v) else spec.colors.get(str(v), UNCLASSED_COLOR)
            for v in cls]  # fmt: skip


def _draw_features(
    ax: object, spec: LayerSpec, gdf_metric: gpd.GeoDataFrame, *, size: float
) -> None:
    if gdf_metric.empty:
        return
    colors = _class_colors(spec, gdf_metric)
    if spec.geometry == "Polygon":
        gdf_metric.plot(ax=ax, color=colors, alpha=0.45, edgecolor=colors, linewidth=0.8, zorder=3)
        gdf_metric.boundary.plot(ax=ax, color="#7f2704", linewidth=0.4, zorder=3)
        return
    mask = (gdf_metric.geometry.notna() & ~gdf_metric.geometry.is_empty).to_numpy()
    pts = gdf_metric[mask]
    ax.scatter(  # type: ignore[attr-defined]
        pts.geometry.x,
        pts.geometry.y,
        s=size,
        c=[c for c, keep in zip(colors, mask, strict=True) if keep],
        marker=MARKERS.get(spec.symbol, "o"),
        edgecolors="#222222",
        linewidths=0.4,
        zorder=5,
    )


def legend_handles(specs: Mapping[str, LayerSpec], present: Mapping[str, set[str]]) -> list[object]:
    """
    Legend entries: per layer a bold title, then every declared class (and 未分级 if present).

    Parameters
    ----------
    specs
        Layer specs by id, legend order.
    present
        ``{layer_id: classes of the drawn features}``; a layer with no drawn feature still
        gets its declared classes (a printed legend must explain an empty map too).

    Returns
    -------
    handles
        matplotlib artists with labels, for ``ax.legend(handles=...)``.
    """
    handles: list[object] = []
    for lid, spec in specs.items():
        handles.append(Patch(color="none", label=spec.name))
        classes = list(spec.classes)
        if UNCLASSED in present.get(lid, set()):
            classes.append(UNCLASSED)
        for cls in classes:
            color = spec.colors.get(cls, UNCLASSED_COLOR)
            if spec.geometry == "Polygon":
                handles.append(Patch(facecolor=color, edgecolor=color, alpha=0.6, label=f"  {cls}"))
            else:
                handles.append(
                    Line2D(
                        [],
                        [],
                        linestyle="none",
                        marker=MARKERS.get(spec.symbol, "o"),
                        markerfacecolor=color,
                        markeredgecolor="#222222",
                        markeredgewidth=0.4,
                        markersize=6,
                        label=f"  {cls}",
                    )
                )
    return handles


def _present(spec: LayerSpec, gdf: gpd.GeoDataFrame) -> set[str]:
    if spec.class_field not in gdf.columns:
        return set()
    values = gdf[spec.class_field]
    out = {str(v) for v in values.dropna()}
    if values.isna().any() or (out - set(spec.classes)):
        out.add(UNCLASSED)
    return out


def _legend(ax: object, specs: Mapping[str, LayerSpec], present: Mapping[str, set[str]]) -> None:
    leg = ax.legend(  # type: ignore[attr-defined]
        handles=legend_handles(specs, present),
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=True,
        fontsize=7,
        title="图例",
        title_fontsize=8,
        handlelength=1.2,
        borderaxespad=0.0,
    )
    for text in leg.get_texts():
        if not text.get_text().startswith("  "):
            text.set_fontweight("bold")


def map_svg(
    layers: Mapping[str, tuple[LayerSpec, gpd.GeoDataFrame]],
    gdf_townships: gpd.GeoDataFrame,
    gdf_county: gpd.GeoDataFrame,
    *,
    metric_crs: str,
    width_mm: float,
    height_mm: float,
    focus: gpd.GeoDataFrame | None = None,
    label_points: bool = False,
    legend: bool = True,
    marker_size: float = 22.0,
    extent_m: float | None = None,
    highlight: gpd.GeoDataFrame | None = None,
) -> str:
    """
    Draw a map as an SVG document.

    Parameters
    ----------
    layers
        ``{layer_id: (spec, gdf)}``: the features to draw (any CRS with one set), legend order.
    gdf_townships
        Township polygons with ``name`` (EPSG:4326); drawn thin, named at their inner point.
    gdf_county
        County outline (EPSG:4326); drawn bold.
    metric_crs
        Metric CRS to draw in, e.g. ``"EPSG:4545"``; the scale bar is measured in it.
    width_mm, height_mm
        Size of the whole figure in millimetres (map plus legend column).
    focus
        Polygons to frame and fill (the township of a sheet); None = frame the county.
    label_points
        Write each point's key beside it (township sheets: map ↔ list).
    legend
        Draw the legend to the right of the map (about 55 mm wide).
    marker_size
        Point marker area in pt².
    extent_m
        Frame this many metres around `highlight` instead (locator maps), or the whole
        highlighted feature when it is larger.
    highlight
        The card's own feature: a large red star (at the representative point of a
        polygon, whose outline is drawn red).

    Returns
    -------
    svg
        SVG text (UTF-8), size `width_mm` × `height_mm`.

    Raises
    ------
    CRSError
        Via geopandas when an input has no CRS.
    """
    with mpl.rc_context(_rc()):
        fig = Figure(figsize=(width_mm / MM_PER_INCH, height_mm / MM_PER_INCH))
        legend_mm = 55.0 if legend else 0.0
        map_w = max(width_mm - legend_mm, width_mm * 0.5)
        ax = fig.add_axes((0.005, 0.01, map_w / width_mm - 0.01, 0.98))
        ax.set_axis_off()
        county = gdf_county.to_crs(metric_crs)
        towns = gdf_townships.to_crs(metric_crs)
        if highlight is not None and extent_m is not None:
            h = highlight.to_crs(metric_crs)
            anchor = h.geometry.representative_point().iloc[0]
            x, y = float(anchor.x), float(anchor.y)
            left, bottom, right, top = h.total_bounds  # a zone larger than the extent fits
            bounds = np.array(
                [
                    min(left, x - extent_m),
                    min(bottom, y - extent_m),
                    max(right, x + extent_m),
                    max(top, y + extent_m),
                ]
            )
        elif focus is not None and not focus.empty:
            bounds = focus.to_crs(metric_crs).total_bounds
        else:
            bounds = county.total_bounds
        aspect = (map_w - 1) / (height_mm * 0.98)
        frame = _frame(bounds, pad=0.04, aspect=aspect, min_span_m=500.0)
        ax.set_xlim(frame[0], frame[2])
        ax.set_ylim(frame[1], frame[3])
        ax.set_aspect("equal")
        towns.plot(ax=ax, facecolor="#f7f7f2", edgecolor="#8c8c8c", linewidth=0.5, zorder=1)
        if focus is not None and not focus.empty:
            focus.to_crs(metric_crs).plot(
                ax=ax, facecolor="#fff7d6", edgecolor="#c0392b", linewidth=1.6, zorder=2
            )
        county.boundary.plot(ax=ax, color="#333333", linewidth=1.4, zorder=2)
        bold = set() if focus is None else set(focus["name"].astype(str))
        for name, point in zip(
            towns["name"].astype(str), towns.geometry.representative_point(), strict=True
        ):
            if frame[0] <= point.x <= frame[2] and frame[1] <= point.y <= frame[3]:
                ax.text(
                    point.x,
                    point.y,
                    name,
                    ha="center",
                    va="center",
                    fontsize=10 if name in bold else 7,
                    fontweight="bold" if name in bold else "normal",
                    color="#333333" if name in bold else "#666666",
                    zorder=4,
                    # No alpha and no clip_on: WeasyPrint (70) bounds the opacity group or
                    # clip of centred SVG text before centring it, and the first glyphs vanish.
                )
        present: dict[str, set[str]] = {}
        for lid, (spec, gdf) in layers.items():
            gdf_m = gdf.to_crs(metric_crs)
            _draw_features(ax, spec, gdf_m, size=marker_size)
            present[lid] = _present(spec, gdf)
            if label_points and spec.geometry == "Point":
                for key, geom in zip(gdf_m[spec.key].astype(str), gdf_m.geometry, strict=True):
                    if geom is not None and not geom.is_empty:
                        ax.annotate(
                            key,
                            (geom.x, geom.y),
                            xytext=(3, 3),
                            textcoords="offset points",
                            fontsize=5,
                            color="#222222",
                            zorder=6,
                        )
        if highlight is not None:
            h = highlight.to_crs(metric_crs)
            if not h.geom_type.eq("Point").all():
                h.boundary.plot(ax=ax, color="#d7191c", linewidth=1.6, zorder=6)
            anchors = h.geometry.representative_point()
            ax.scatter(
                anchors.x,
                anchors.y,
                s=marker_size * 6,
                marker="*",
                c="#d7191c",
                edgecolors="black",
                linewidths=0.6,
                zorder=7,
            )
        _north_arrow(ax)
        _scale_bar(ax, frame[2] - frame[0])
        if legend:
            _legend(ax, {lid: spec for lid, (spec, _) in layers.items()}, present)
        return _svg(fig)
