r"""The one map (一张图): prepared layers → a `folium.Map`. Never imports streamlit; never renders.

Performance design. A layer's features are NOT turned into one folium object each (that is
~50× slower to build and bloats the page). Each layer becomes ONE `RiskLayer` element holding
its data once, column-wise (point coordinates as base64 Int32 fixed-point 1e-6 degrees; each
property as one array, columns with few distinct values dictionary-encoded with base64 codes).
A point layer is ONE `riskmap.Points` (an `L.Path` on the shared canvas renderer): typed
arrays, a grid index built once, only the points in view drawn (each class symbol pre-drawn
once and blitted), hit-testing through the index; with more than `cluster_threshold` points
in view below zoom `AGGREGATE_MAX_ZOOM` it draws count bubbles per 64 px screen cell instead
(colour of the most severe class inside; a click zooms in). Polygons are one canvas path
each. Popups are built at click time from the columns, and
every string goes through the JS `riskmap.esc` (``& < > " ' ` ``) first. Everything rendered
server-side (labels, legend, layer names) is escaped with `html.escape`. Embedded JSON has
``< > & ' _ ( )`` and U+2028/2029 escaped as ``\\uXXXX`` so no data can close the script, be
mistaken for a folium variable by streamlit-folium, or break the JS.

Offline. `folium.Map` lists CDN jQuery, Bootstrap, awesome-markers, Font Awesome…; the map
only needs Leaflet. With ``inline_assets=True`` they are put
inline in the page; otherwise their ``default_js``/``default_css`` point at
``/app/static/vendor/...`` (see `riskmap.assets.install_static_assets`), which is also what
`streamlit_folium.st_folium` loads in its iframe.

Files. The JS runtime and the CSS are real files of this package, ``static/riskmap.js`` and
``static/riskmap.css`` (package data, read once with `importlib.resources`; lint them as
files); the folium elements that call into the runtime are in `riskmap.mapview.elements`.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import re
import uuid
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd

import folium
import geopandas as gpd
import shapely

from riskmap import assets
from riskmap.catalog import STATUS_CLEARED, UNCLASSED
from riskmap.errors import LayerNotFoundError, TownshipNotFoundError
from riskmap.layers import isin
from riskmap.mapview.elements import Areas, AssetLinks, Finish, InlineAsset, RiskLayer, Runtime
from riskmap.settings import NOTE_APPROXIMATE, NOTE_DEMO, STORAGE_CRS

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from riskmap.basemap import BasemapLayer
    from riskmap.catalog import LayerSpec
    from riskmap.layers import LayerData
    from riskmap.settings import Settings

CLUSTER_THRESHOLD = 20_000
"""Above this many points in view (below `AGGREGATE_MAX_ZOOM`) a layer is drawn as count bubbles."""
AGGREGATE_MAX_ZOOM = 15
"""From this zoom level on, points are always drawn one by one."""
UNCLASSIFIED = UNCLASSED
UNCLASSIFIED_COLOR = "#969696"
CHOROPLETH_ALL = "all"
# ColorBrewer "Purples" (sequential; unused by any layer palette, so points stay readable).
PURPLES = {
    3: ("#efedf5", "#bcbddc", "#756bb1"),
    4: ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#6a51a3"),
    5: ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f"),
}
TIANDITU_URL = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
BASEMAPS = frozenset({"auto", "none", "tile", "tianditu"})
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_COORD_DECIMALS = 6  # ~0.1 m; enough for risk points, keeps the page small
_BOUNDARY_SIMPLIFY_DEG = 1e-4  # ~10 m: township lines are drawn, not measured, here
_JS_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "'": "\\u0027",
    "_": "\\u005f",
    "(": "\\u0028",
    ")": "\\u0029",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
    "{": "\\u007b",
}
_JS_ESCAPE_RE = re.compile("[<>&'_()\u2028\u2029]|\\{(?=[{%#])")
# `{` before `{`, `%` or `#` can only be string content in compact JSON (a structural `{` is
# followed by `"` or `}`): escaping it stops branca, which re-parses every rendered script as
# a Jinja template, from evaluating `{{ ... }}` / `{% ... %}` found in user data.


def js_json(obj: object) -> str:
    r"""
    Encode `obj` as a JS/JSON literal that is safe inside ``<script>`` and streamlit-folium.

    ``< > &`` cannot close the script or open a comment; ``'`` cannot form a Jinja
    ``{{'name'}}`` reference that streamlit-folium rewrites; ``_`` cannot form a folium
    variable suffix it renames; ``( )`` cannot form the ``alert(coords);`` it strips. These
    characters only occur inside JSON strings, so escaping them as ``\\uXXXX`` never changes
    the value. NaN is not allowed (pass None).
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _JS_ESCAPE_RE.sub(lambda m: _JS_ESCAPES[m.group(0)], text)


def escape_html(value: object) -> str:
    """
    HTML-escape ``str(value)`` for server-side rendered text.

    Quotes are escaped too, and ``{`` becomes ``&#123;`` so the text can never form a Jinja
    tag when branca re-parses rendered scripts.
    """
    text = html.escape("" if value is None else str(value), quote=True)
    return text.replace("{", "&#123;")


# ----------------------------------------------------------------------------- JS runtime


@functools.cache
def _static_text(name: str) -> str:
    """Text of ``riskmap/mapview/static/<name>`` (package data, read once per process)."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


RUNTIME_JS = _static_text("riskmap.js")
"""The shared JS runtime (``window.riskmap``), from ``riskmap/mapview/static/riskmap.js``."""


RUNTIME_CSS = "<style>\n" + _static_text("riskmap.css") + "</style>\n"
"""The map's CSS, from ``riskmap/mapview/static/riskmap.css``, as a ``<style>`` element."""


# ----------------------------------------------------------------------------- data encoding


def _b64(values: np.ndarray) -> _RawJSON:
    """Return `values`' little-endian bytes as a base64 JSON string (JS: `riskmap.b64`)."""
    data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    return _RawJSON('"' + base64.b64encode(data).decode("ascii") + '"')


def _column_values(series: pd.Series) -> list[Any] | dict[str, Any]:
    """
    One property column as a JSON-ready list (None for missing values).

    Columns with few distinct values (at most half the rows) are dictionary-encoded as
    ``{"k": [values], "b": base64 codes, "w": bytes per code}``, code 0 = missing and
    code ``c`` = ``k[c - 1]``, which the JS `riskmap.value` decodes.
    """
    n = len(series)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = series.dt.strftime("%Y-%m-%d %H:%M").astype(object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) * 2 <= n:
        labels = [_cell_text(v) for v in uniques]
        width = 1 if len(uniques) < 2**8 else (2 if len(uniques) < 2**16 else 4)
        dtype = {1: np.uint8, 2: np.uint16, 4: np.int32}[width]
        return {"k": labels, "b": _b64((codes + 1).astype(dtype)), "w": width}
    if pd.api.types.is_bool_dtype(series.dtype):
        return [None if pd.isna(v) else bool(v) for v in series.tolist()]
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.astype("float64").to_numpy()
        finite = np.isfinite(values)
        if pd.api.types.is_integer_dtype(series.dtype):
            out: list[Any] = [int(v) if ok else None for v, ok in zip(values, finite, strict=True)]
            return out
        return [float(v) if ok else None for v, ok in zip(values.tolist(), finite, strict=True)]
    labels = [_cell_text(v) for v in uniques]
    return [None if c < 0 else labels[c] for c in codes.tolist()]


def _cell_text(value: object) -> Any:  # noqa: ANN401 - JSON scalar
    """Return a non-missing cell of an object column as a JSON scalar (bools/numbers kept)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return str(value)


def _embedded_fields(spec: LayerSpec) -> list[str]:
    """Properties the page needs: key, name, class field and popup fields, in that order."""
    return list(dict.fromkeys((spec.key, "name", spec.class_field, *spec.popup)))


def _safe_color(color: str) -> str:
    if not _HEX_COLOR.match(color):
        msg = f"catalog colour {color!r} is not #rrggbb"
        raise ValueError(msg)
    return color


def _lifecycle_marks(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """
    Per feature: 1 = 已销号 (drawn faded), 2 = 逾期 (outlined red), 0 = neither.

    逾期 comes from a boolean ``overdue`` column when the caller set one
    (`riskmap.progress.with_overdue`); without it nothing is outlined.
    """
    cleared = (
        gdf["status"].eq(STATUS_CLEARED).fillna(value=False).to_numpy(dtype=bool)
        if ("status" in gdf.columns)
        else np.zeros(len(gdf), dtype=bool)
    )
    overdue = (
        gdf["overdue"].fillna(value=False).to_numpy(dtype=bool)
        if ("overdue" in gdf.columns)
        else np.zeros(len(gdf), dtype=bool)
    )
    return np.where(cleared, 1, np.where(overdue, 2, 0)).astype(np.int8)


def _layer_payload(layer: LayerData, *, aggregate_above: int) -> tuple[dict[str, Any], int]:
    """Return the JS data of one layer and its feature count (no-geometry rows dropped)."""
    spec = layer.spec
    gdf = layer.gdf
    if gdf.crs is not None and not gdf.crs.equals(STORAGE_CRS):
        gdf = gdf.to_crs(STORAGE_CRS)
    geoms = gdf.geometry.to_numpy()
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    gdf = gdf[keep]
    geoms = geoms[keep]
    n = len(gdf)
    props = {
        f: _column_values(gdf[f]) if f in gdf.columns else [None] * n
        for f in _embedded_fields(spec)
    }
    data: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        "key": spec.key,
        "cls": spec.class_field,
        "shape": spec.symbol,
        "radius": 7 if spec.symbol == "triangle" else 6,
        "colors": {str(k): _safe_color(v) for k, v in spec.colors.items()},
        "classes": [[str(k), _safe_color(v)] for k, v in spec.colors.items()],
        "other": UNCLASSIFIED_COLOR,
        "fields": [[f, spec.header(f)] for f in spec.popup if f != "name"],
        "n": n,
        "agg": aggregate_above,
        "aggMaxZoom": AGGREGATE_MAX_ZOOM,
        "p": props,
    }
    marks = _lifecycle_marks(gdf)
    if marks.any():
        data["st"] = marks.tolist()
    if spec.geometry == "Point":
        # Fixed-point 1e-6 degrees (~0.1 m), [lat, lon] per point, as base64 Int32.
        lon = shapely.get_x(geoms)
        lat = shapely.get_y(geoms)
        fixed = np.rint(np.column_stack([lat, lon]) * 10**_COORD_DECIMALS).astype(np.int32)
        data["c"] = _b64(fixed.ravel())
    else:
        data["g"] = _geometries_json(geoms)
    return data, n


class _RawJSON:
    """Pre-encoded JSON spliced into `js_json` output (geometries: no re-encoding)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _geometry_texts(geoms: np.ndarray, *, simplify_deg: float = 0.0) -> list[str | None]:
    """GeoJSON text of each geometry (lon/lat, 6 decimals); None for a missing one."""
    if simplify_deg:
        geoms = shapely.simplify(geoms, simplify_deg, preserve_topology=True)
    geoms = shapely.set_precision(geoms, 10.0**-_COORD_DECIMALS)
    return [None if t is None else str(t) for t in shapely.to_geojson(geoms)]


def _geometries_json(geoms: np.ndarray) -> _RawJSON:
    """Return the non-missing geometries of `geoms` as one GeoJSON array text."""
    return _RawJSON("[" + ",".join(t for t in _geometry_texts(geoms) if t is not None) + "]")


def _encode(obj: dict[str, Any]) -> str:
    """`js_json` of `obj` where `_RawJSON` values are spliced in verbatim (they are digits)."""
    raws: dict[str, str] = {}
    nonce = uuid.uuid4().hex

    def default(value: object) -> str:
        if isinstance(value, _RawJSON):
            token = f"@@{nonce}x{len(raws)}@@"
            raws[token] = value.text
            return token
        msg = f"cannot encode {type(value).__name__} for the map"
        raise TypeError(msg)

    text = json.dumps(
        obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=default
    )
    text = _JS_ESCAPE_RE.sub(lambda m: _JS_ESCAPES[m.group(0)], text)
    if not raws:
        return text
    # One pass; `@@` and the hex nonce are left alone by the escaping above.
    return re.sub(f'"@@{nonce}x[0-9]+@@"', lambda m: raws[m.group(0)[1:-1]], text)


# ----------------------------------------------------------------------------- legend


def _symbol_svg(shape: str, color: str) -> str:
    """Return a 14×14 SVG of a layer symbol (matches the canvas shapes drawn in JS)."""
    c = escape_html(color)
    stroke = 'stroke="#666" stroke-width="0.6"'
    if shape == "square":
        body = f'<rect x="2" y="2" width="10" height="10" fill="{c}" {stroke}/>'
    elif shape == "triangle":
        body = f'<polygon points="7,1 13,12 1,12" fill="{c}" stroke="#666" stroke-width="0.6"/>'
    elif shape == "diamond":
        body = (
            f'<polygon points="7,0.5 13,7 7,13.5 1,7" fill="{c}" stroke="#666" stroke-width="0.6"/>'
        )
    elif shape == "solid":
        body = f'<rect x="1" y="2" width="12" height="10" fill="{c}" {stroke}/>'
    elif shape == "fill":
        body = (
            f'<rect x="1" y="2" width="12" height="10" fill="{c}" fill-opacity="0.45" '
            f'stroke="{c}" stroke-width="1.5"/>'
        )
    else:
        body = f'<circle cx="7" cy="7" r="5.5" fill="{c}" stroke="#666" stroke-width="0.6"/>'
    return f'<svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true">{body}</svg>'


def _legend_html(
    layer_rows: list[tuple[LayerSpec, int, bool, int, int]],
    choro: tuple[str, list[tuple[str, str]]] | None,
    *,
    approximate: bool,
    demo: bool,
    clustered: bool = False,
) -> str:
    """
    Server-side escaped legend HTML.

    Rows: (spec, count, has unclassified, cleared count, overdue count).
    """
    # <details open>: the legend folds to its title (small screens keep the map visible).
    parts = ['<details open><summary class="title">图例</summary>']
    for spec, count, unclassified, cleared, overdue in layer_rows:
        parts.append(f'<div class="layer">{escape_html(spec.name)}（{count}）</div>')
        classes = [(str(k), str(v)) for k, v in spec.colors.items()]
        if unclassified:
            classes.append((UNCLASSIFIED, UNCLASSIFIED_COLOR))
        parts.extend(
            f'<div class="row">{_symbol_svg(spec.symbol, color)}'
            f"{escape_html(spec.label(spec.class_field))}：{escape_html(cls)}</div>"
            for cls, color in reversed(classes)
        )
        if cleared:
            parts.append(f'<div class="row">含{STATUS_CLEARED} {cleared} 个（淡显）</div>')
        if overdue:
            parts.append(f'<div class="row">红圈：逾期 {overdue} 个（治理中，已过整改期限）</div>')
    if choro is not None:
        title, rows = choro
        parts.append(f'<div class="layer">{escape_html(title)}</div>')
        parts.extend(
            f'<div class="row">{_symbol_svg("solid", color)}{escape_html(label)}</div>'
            for label, color in rows
        )
    parts.append(
        '<div class="row"><svg width="14" height="14" aria-hidden="true"><line x1="0" y1="7" '
        'x2="14" y2="7" stroke="#555" stroke-width="1.5" stroke-dasharray="3,2"/></svg>乡镇界线'
        '</div><div class="row"><svg width="14" height="14" aria-hidden="true"><line x1="0" '
        'y1="7" x2="14" y2="7" stroke="#222" stroke-width="2.5"/></svg>县界</div>'
    )
    if clustered:
        parts.append('<div class="row">带数字的圆圈：点位聚合数（放大后显示单个点位）</div>')
    parts.append("</details>")
    # The data notes come first, so they stay visible when the legend is folded or scrolled.
    notes = [NOTE_APPROXIMATE] if approximate else []
    notes += [NOTE_DEMO] if demo else []
    return "".join(f'<div class="note">{escape_html(n)}</div>' for n in notes) + "".join(parts)


# ----------------------------------------------------------------------------- choropleth


def township_counts(layers: Mapping[str, LayerData], layer_ids: Collection[str]) -> pd.Series:
    """
    Count features per township (9-digit code) over `layer_ids`.

    A polygon touching several townships counts once in each; only features still in
    ``layer.gdf`` count (the caller's filters apply).
    """
    counts: list[pd.Series] = []
    for lid in layer_ids:
        layer = layers[lid]
        shares = layer.shares[isin(layer.shares["key"], layer.gdf[layer.spec.key])]
        counts.append(shares.groupby("township_code")["key"].nunique())
    if not counts:
        return pd.Series(dtype="int64")
    return pd.concat(counts).groupby(level=0).sum().astype("int64")


def count_classes(max_count: int) -> list[tuple[int, int, str]]:
    """
    Sequential classes ``(low, high, colour)`` (inclusive) covering 1..`max_count`.

    Up to 5 equal-interval classes with integer bounds, ColorBrewer Purples.
    """
    if max_count <= 0:
        return []
    k = min(5, max_count)
    edges = sorted({math.ceil(max_count * j / k) for j in range(k + 1)})
    k = len(edges) - 1
    palette = PURPLES.get(k) or (PURPLES[3][0], PURPLES[3][-1])[-k:]
    return [(edges[j] + 1, edges[j + 1], palette[j]) for j in range(k)]


def _class_label(low: int, high: int) -> str:
    return f"{low}" if low == high else f"{low}–{high}"


# ----------------------------------------------------------------------------- public API


def _check_ids(ids: Collection[str], layers: Mapping[str, LayerData], argument: str) -> None:
    if unknown := [i for i in ids if i not in layers]:
        msg = f"{argument}: 未知图层 {unknown}；可用图层: {', '.join(layers)}"
        raise LayerNotFoundError(msg)


def _find_township(gdf_townships: gpd.GeoDataFrame, code: str) -> gpd.GeoDataFrame:
    mask = pd.Series(data=False, index=gdf_townships.index)
    for column in ("adcode", "adcode12", "name"):
        if column in gdf_townships.columns:
            mask |= gdf_townships[column].astype(str) == str(code)
    if not mask.any() and "also_covers" in gdf_townships.columns:
        # A township without a polygon of its own (复兴街道 in the approximate partition) is
        # shown through the cell that covers it.
        names = gdf_townships.attrs.get("township_names", {})
        code9 = next((c for c, n in names.items() if n == str(code)), str(code)[:9])
        mask = gdf_townships["also_covers"].fillna("").astype(str).str.contains(code9, regex=False)
    if not mask.any():
        msg = f"selected_township: 未找到乡镇 {code!r}（9 位或 12 位代码，或乡镇名称）"
        raise TownshipNotFoundError(msg)
    return gdf_townships[mask]


def _to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.crs is not None and not gdf.crs.equals(STORAGE_CRS):
        return gdf.to_crs(STORAGE_CRS)
    return gdf


def _leaflet_bounds(bounds: np.ndarray | tuple[float, ...]) -> list[list[float]]:
    left, bottom, right, top = (float(v) for v in bounds)
    return [[bottom, left], [top, right]]


def _add_basemap(
    m: folium.Map, settings: Settings, basemap: str, basemap_layer: BasemapLayer | None = None
) -> str:
    """Add the basemap tiles; return a Chinese warning text when none could be added."""
    if basemap not in BASEMAPS:
        msg = f"basemap must be one of {sorted(BASEMAPS)}, got {basemap!r}"
        raise ValueError(msg)
    if basemap == "auto" and basemap_layer is not None:
        left, bottom, right, top = basemap_layer.bounds
        folium.TileLayer(
            tiles=basemap_layer.url_template,
            attr=escape_html(basemap_layer.attribution),
            name="离线底图",
            overlay=False,
            control=False,
            min_zoom=0,
            max_zoom=19,
            max_native_zoom=basemap_layer.max_native_zoom,
            min_native_zoom=basemap_layer.min_zoom,
            bounds=[[bottom, left], [top, right]],
        ).add_to(m)
        return ""
    if basemap == "auto":
        basemap = "tile" if settings.tile_url else ("tianditu" if settings.tianditu_key else "none")
    if basemap == "tile":
        if not settings.tile_url:
            return "未配置内网底图地址（RISKMAP_TILE_URL），当前无底图。"
        folium.TileLayer(
            tiles=settings.tile_url, attr="内网底图", name="底图", overlay=False, control=False
        ).add_to(m)
    elif basemap == "tianditu":
        if not settings.tianditu_key:
            return "未配置天地图密钥（RISKMAP_TIANDITU_KEY），天地图底图不可用；当前无底图。"
        key = quote(settings.tianditu_key, safe="")
        for layer, name in (("vec", "天地图矢量"), ("cva", "天地图注记")):
            folium.TileLayer(
                tiles=TIANDITU_URL.format(s="{s}", layer=layer, key=key),
                attr="天地图 © 国家地理信息公共服务平台",
                name=name,
                subdomains="01234567",
                max_zoom=18,
                overlay=False,
                control=False,
            ).add_to(m)
    return ""


def build_map(
    layers: Mapping[str, LayerData],
    gdf_townships: gpd.GeoDataFrame,
    gdf_county: gpd.GeoDataFrame,
    *,
    settings: Settings,
    visible: Collection[str] | None = None,
    choropleth: str | None = None,
    selected_township: str | None = None,
    highlight: tuple[str, str] | None = None,
    demo: bool = True,
    view_key: str | None = None,
    view: str | None = None,
    layer_control: bool = True,
    basemap_layer: BasemapLayer | None = None,
    inline_assets: bool = False,
    basemap: str = "auto",
    static_url_prefix: str = assets.STATIC_URL_PREFIX,
    cluster_threshold: int = CLUSTER_THRESHOLD,
) -> folium.Map:
    """
    Build the county risk map (一张图).

    Parameters
    ----------
    layers
        Prepared layers by id (`riskmap.layers.prepare_layer`), already filtered by the
        caller (cleared features, townships, classes). EPSG:4326 (reprojected otherwise).
    gdf_townships
        Township polygons: ``adcode`` (9-digit), ``adcode12``, ``name``, ``approximate``
        (bool), geometry; any CRS.
    gdf_county
        County outline, any CRS.
    settings
        Basemap settings: ``tile_url`` (intranet XYZ), ``tianditu_key``.
    visible
        Layer ids shown at start; None = all. The others stay in the layer control.
    choropleth
        A layer id or ``"all"``: add a township choropleth of feature counts (ColorBrewer
        Purples) with its own legend lines; None = none.
    selected_township
        9- or 12-digit township code (or name): fit the map to it and emphasise its outline.
    highlight
        ``(layer_id, key)``: zoom to that feature, ring it and open its popup. A key not in
        the (filtered) layer shows a Chinese notice on the map instead.
    demo
        Add "演示数据" to the legend.
    view_key
        Keep the view across rebuilds: the page remembers (in memory and in its URL,
        ``?view=lat,lng,zoom``) the last view the user moved to under this key and the same
        `highlight`, and a map built with the same key opens there instead of at the
        township/county bounds (the app passes the selected township, so changing filters
        keeps the view and choosing a township zooms to it). None = always open at the bounds.
        A 回到全县 button fits the county and forgets the saved view.
    view
        ``"lat,lng,zoom"`` (EPSG:4326 degrees, Leaflet zoom) to open at when the page has no
        remembered view under `view_key`: the ``view`` parameter of a shared URL. Malformed or
        out-of-range text is ignored (the map opens at the bounds).
    layer_control
        Add Leaflet's layer switcher (top right, the legend below it). The app passes False:
        its sidebar is the one layer switcher (it also drives lists, figures and downloads).
    basemap_layer
        An offline basemap installed by `riskmap.basemap.install_basemap` (the app does this
        at start-up when ``RISKMAP_BASEMAP`` is set); with ``basemap="auto"`` it wins over
        ``tile_url`` and 天地图.
    inline_assets
        True: Leaflet JS/CSS inline (standalone HTML file, no external file at all).
        False: loaded from ``static_url_prefix`` (Streamlit static serving; run
        `riskmap.assets.install_static_assets` first).
    basemap
        ``"auto"`` (``tile_url`` if set, else 天地图 if a key is set, else none), ``"none"``,
        ``"tile"`` or ``"tianditu"``. A requested basemap that is not configured shows a
        Chinese warning box. Never AutoNavi (GCJ-02 shifted).
    static_url_prefix
        URL prefix of the vendored assets in served mode.
    cluster_threshold
        A point layer with more points than this in view is drawn as count bubbles per
        64 px screen cell (coloured by the most severe class in the cell; a click zooms in),
        below zoom `AGGREGATE_MAX_ZOOM`.

    Returns
    -------
    m
        The map (not rendered). Render with `save_map` or show with ``st_folium``.

    Raises
    ------
    LayerNotFoundError
        When `visible`, `choropleth` or `highlight` names a layer not in `layers`.
    TownshipNotFoundError
        When `selected_township` matches no township.
    """
    shown = set(layers) if visible is None else set(visible)
    _check_ids(shown, layers, "visible")
    if choropleth is not None and choropleth != CHOROPLETH_ALL:
        _check_ids([choropleth], layers, "choropleth")
    if highlight is not None:
        _check_ids([highlight[0]], layers, "highlight")
    gdf_townships = _to_wgs84(gdf_townships)
    gdf_county = _to_wgs84(gdf_county)
    gdf_selected = (
        _find_township(gdf_townships, selected_township) if selected_township is not None else None
    )

    bounds = gdf_county.total_bounds if len(gdf_county) else gdf_townships.total_bounds
    m = _new_map(bounds, inline_assets=inline_assets, static_url_prefix=static_url_prefix)
    warning = _add_basemap(m, settings, basemap, basemap_layer)
    _add_county(m, gdf_county)
    selected_codes = set(gdf_selected["adcode"].astype(str)) if gdf_selected is not None else set()
    town_geoms = _add_townships(m, gdf_townships, selected_codes)
    choro_legend = None
    if choropleth is not None:
        choro_legend = _add_choropleth(m, layers, gdf_townships, town_geoms, choropleth)
    legend_rows, any_cluster = _add_risk_layers(m, layers, shown, cluster_threshold)
    if layer_control:
        folium.LayerControl(collapsed=False, position="topright").add_to(m)

    approximate = "approximate" in gdf_townships and bool(
        gdf_townships["approximate"].fillna(value=False).astype(bool).any()
    )
    legend = _legend_html(
        legend_rows, choro_legend, approximate=approximate, demo=demo, clustered=any_cluster
    )
    boxes = [f'{js_json(legend)}, "topright", "riskmap-legend"']
    if warning:
        boxes.append(f'{js_json(escape_html(warning))}, "topleft", "riskmap-warning"')
    view_bounds = gdf_selected.total_bounds if gdf_selected is not None else bounds
    hl = missing = None
    if highlight is not None:
        hl = [highlight[0], str(highlight[1])]
        name = layers[highlight[0]].spec.name
        note = f"未找到要定位的点位：{name} {highlight[1]}（可能已被筛选）"
        missing = [escape_html(note), "topleft", "riskmap-warning"]
    view_args = ", ".join(
        js_json(v)
        for v in (
            _leaflet_bounds(view_bounds), hl, missing, view_key, view, _leaflet_bounds(bounds)
        )
    )
    m.add_child(Finish(boxes, view_args), name="riskmap_finish")
    return m


def _add_assets(
    m: folium.Map, wanted: tuple[assets.Asset, ...], *, inline: bool, url_prefix: str
) -> None:
    """Inline `wanted` in the page header, or add a links-only element (served mode)."""
    if inline:
        header = m.get_root().header
        for asset in wanted:
            header.add_child(InlineAsset(asset), name=f"inline_{asset.name}")
    else:
        m.add_child(AssetLinks(wanted, url_prefix), name=f"riskmap_links_{wanted[0].name}")


def _new_map(bounds: np.ndarray, *, inline_assets: bool, static_url_prefix: str) -> folium.Map:
    """Create a tile-less map whose only JS/CSS is Leaflet (inline or served), plus the runtime."""
    center = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2]
    m = folium.Map(
        location=center, zoom_start=10, tiles=None, control_scale=False, prefer_canvas=False
    )
    # folium.Map lists CDN jQuery/Bootstrap/awesome-markers/Font Awesome: the map needs none.
    if inline_assets:
        m.default_js, m.default_css = [], []
        _add_assets(m, assets.LEAFLET, inline=True, url_prefix=static_url_prefix)
    else:
        links = AssetLinks(assets.LEAFLET, static_url_prefix)
        m.default_js, m.default_css = links.default_js, links.default_css
    m.add_child(Runtime(RUNTIME_JS, RUNTIME_CSS), name="riskmap_runtime")
    return m


def _add_county(m: folium.Map, gdf_county: gpd.GeoDataFrame) -> None:
    geoms = _geometries_json(gdf_county.geometry.to_numpy()).text
    item = {
        "g": _RawJSON('{"type":"GeometryCollection","geometries":' + geoms + "}"),
        "style": {"color": "#222222", "weight": 2.5, "fill": False},
    }
    group = folium.FeatureGroup(name="县界", control=True)
    group.add_child(Areas(_encode({"pane": "riskCounty", "items": [item]})))
    group.add_to(m)


def _add_townships(
    m: folium.Map, gdf_townships: gpd.GeoDataFrame, selected_codes: set[str]
) -> list[str | None]:
    """Township outlines and permanent name labels; return the geometries' GeoJSON texts."""
    town_geoms = _geometry_texts(
        gdf_townships.geometry.to_numpy(), simplify_deg=_BOUNDARY_SIMPLIFY_DEG
    )
    label_points = gdf_townships.geometry.representative_point()
    items = []
    for geom_text, code, name, point in zip(
        town_geoms,
        gdf_townships["adcode"].astype(str),
        gdf_townships["name"],
        label_points,
        strict=True,
    ):
        selected = code in selected_codes
        items.append(
            {
                "g": _RawJSON(geom_text or "null"),
                "name": "" if pd.isna(name) else str(name),
                "label": None if point is None else [round(point.y, 6), round(point.x, 6)],
                "labelClass": "selected" if selected else "",
                "style": {
                    "color": "#000000" if selected else "#555555",
                    "weight": 3.5 if selected else 1.2,
                    "dashArray": None if selected else "4 3",
                    "fill": False,
                },
            }
        )
    # Selected township last, so its thick outline is drawn on top of its neighbours'.
    items.sort(key=lambda item: item["labelClass"] == "selected")
    group = folium.FeatureGroup(name="乡镇界线", control=True)
    group.add_child(Areas(_encode({"pane": "riskBounds", "items": items})))
    group.add_to(m)
    return town_geoms


def _add_choropleth(
    m: folium.Map,
    layers: Mapping[str, LayerData],
    gdf_townships: gpd.GeoDataFrame,
    town_geoms: list[str | None],
    choropleth: str,
) -> tuple[str, list[tuple[str, str]]]:
    """Township fill by feature count; return the legend title and rows."""
    ids = list(layers) if choropleth == CHOROPLETH_ALL else [choropleth]
    counts = township_counts(layers, ids)
    values = gdf_townships["adcode"].astype(str).map(counts).fillna(0).astype("int64")
    classes = count_classes(int(values.max()) if len(values) else 0)
    what = "全部图层" if choropleth == CHOROPLETH_ALL else layers[choropleth].spec.name
    title = f"各乡镇点位数（{what}）"
    items = []
    for geom_text, value in zip(town_geoms, values, strict=True):
        color = next((c for lo, hi, c in classes if lo <= value <= hi), "#ffffff")
        style = {"stroke": False, "fillColor": color, "fillOpacity": 0.75 if value else 0.25}
        items.append({"g": _RawJSON(geom_text or "null"), "style": style})
    group = folium.FeatureGroup(name=escape_html(title), control=True)
    group.add_child(Areas(_encode({"pane": "riskChoro", "items": items})))
    group.add_to(m)
    rows = [("0", "#ffffff"), *[(_class_label(lo, hi), c) for lo, hi, c in classes]]
    return title, rows


def _add_risk_layers(
    m: folium.Map, layers: Mapping[str, LayerData], shown: set[str], cluster_threshold: int
) -> tuple[list[tuple[LayerSpec, int, bool, int, int]], bool]:
    """One FeatureGroup + one `RiskLayer` per layer; return legend rows and "any cluster"."""
    legend_rows = []
    any_cluster = False
    for lid, layer in layers.items():
        spec = layer.spec
        any_cluster |= spec.geometry == "Point" and len(layer.gdf) > cluster_threshold
        data, n = _layer_payload(layer, aggregate_above=cluster_threshold)
        group = folium.FeatureGroup(name=escape_html(spec.name), show=lid in shown)
        group.add_child(RiskLayer(_encode(data)))
        group.add_to(m)
        cls = layer.gdf.get(spec.class_field)
        unclassified = cls is not None and bool(
            (cls.isna() | ~cls.astype(str).isin(list(spec.colors))).any()
        )
        status = layer.gdf.get("status")
        cleared = 0 if status is None else int((status == STATUS_CLEARED).sum())
        overdue = int((_lifecycle_marks(layer.gdf) == 2).sum())  # noqa: PLR2004 - mark 2 = 逾期
        legend_rows.append((spec, n, unclassified, cleared, overdue))
    return legend_rows, any_cluster


def save_map(m: folium.Map, *, title: str = "") -> str:
    """Render `m` to a complete HTML page (text) with `title`; `riskmap.io` writes it."""
    root = m.get_root()
    if title:
        root.title = escape_html(title)
    return root.render()
