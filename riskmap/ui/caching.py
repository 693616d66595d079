"""What a rerun must not redo: filtered layers, dashboard figures, the map; cached per data version.

Issues 15 and 17 (the page opens in ≤ 3 s; a filter change settles in ≤ 1 s in the browser).
A Streamlit rerun runs the whole script; without these caches each one filtered every layer
again, rebuilt the dashboard's per-township table (0.3 s on the bundled data) and rebuilt and
re-rendered the map (``build_map`` + ``st_folium``: 0.1 s bundled, seconds at 100,000 points),
and, because folium gives every map a new random element id, re-sent the whole map HTML to the
browser even when nothing on it had changed.

Every cache key starts with the data version (`riskmap.store.Store.stamp`, which changes with
any layer, record or boundary file), so an edit is never hidden by a cache. The view state in
a key is the app's `riskmap.filters.FeatureFilter` (its ``repr``: a frozen dataclass of
tuples and strings) plus the map's own choices.

`show_map` is `streamlit_folium.st_folium` split in two: the part that renders the map to the
component's arguments (`map_args`, cached) and the component call (every run, cheap). An
unchanged map therefore sends byte-identical arguments, and Streamlit's message cache
(``global.minCachedMessageSize``: messages ≥ 10 kB seen by the browser are sent as a hash
reference) keeps the map HTML off the websocket, and the iframe is kept (same key).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st
import streamlit_folium

from riskmap import aggregate

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

    import pandas as pd

    import folium

    from riskmap.filters import FeatureFilter
    from riskmap.layers import LayerData
    from riskmap.project import Project

MAP_CACHE_ENTRIES = 12
"""Rendered maps kept per server (≈ 1.2 MB each on the bundled data, ≈ 7 MB at 100,000 points)."""
FILTER_CACHE_ENTRIES = 32
"""Filtered layer sets kept per server (they share the project's geometries)."""


@st.cache_resource(show_spinner=False, max_entries=FILTER_CACHE_ENTRIES)
def _filtered(_project: Project, version: str, key: str, _ff: FeatureFilter) -> dict[str, Any]:
    del version, key
    return _ff.apply(_project.layers)


def filtered_layers(project: Project, version: str, ff: FeatureFilter) -> dict[str, LayerData]:
    """
    Return ``ff.apply(project.layers)``, computed once per data version and filter.

    Parameters
    ----------
    project
        The loaded project of data version `version`.
    version
        The store's stamp (`riskmap.store.Store.stamp`).
    ff
        The view's filter (its ``repr`` is the cache key).

    Returns
    -------
    layers
        As `riskmap.filters.FeatureFilter.apply`. Shared between sessions
        (`st.cache_resource`): `LayerData` is frozen and riskmap never mutates a frame in
        place (copy-on-write), so no caller can change another's.
    """
    return _filtered(project, version, repr(ff), ff)


@dataclass(frozen=True)
class DashboardData:
    """
    The 统计 tab's figures of one view (all statuses), as `riskmap.aggregate` computes them.

    Attributes
    ----------
    headline
        `riskmap.aggregate.headline_figures`.
    totals
        ``layer_figures(...)["all"]``: feature counts by 在册/治理/销号 figure key.
    status_counts
        `riskmap.aggregate.status_counts` (the 整治进度 chart's data).
    class_counts
        `riskmap.aggregate.class_counts`.
    townships
        `riskmap.aggregate.township_table` of the per-township summary; None for a
        township view (the table is county-wide).
    """

    headline: list[aggregate.Figure]
    totals: dict[str, int]
    status_counts: pd.DataFrame
    class_counts: pd.DataFrame
    townships: pd.DataFrame | None


@st.cache_data(show_spinner="正在统计…", max_entries=64)
def _dashboard(
    _project: Project, version: str, key: str, _layers: dict[str, LayerData], county: bool
) -> DashboardData:
    del version, key
    townships = None
    if county:
        df = aggregate.summarize_townships(_layers, _project.gdf_townships, _project.township_codes)
        townships = aggregate.township_table(df, _layers)
    return DashboardData(
        headline=aggregate.headline_figures(_layers),
        totals=aggregate.layer_figures(_layers)["all"],
        status_counts=aggregate.status_counts(_layers),
        class_counts=aggregate.class_counts(_layers),
        townships=townships,
    )


def dashboard_data(
    project: Project, version: str, ff: FeatureFilter, layers: dict[str, LayerData]
) -> DashboardData:
    """
    Return the 统计 tab's figures of `layers`, computed once per data version and view.

    Parameters
    ----------
    project
        The loaded project of data version `version`.
    version
        The store's stamp.
    ff
        The filter `layers` came from, with ``layer_ids`` set to the layers shown: the cache
        key. A view of the whole county (``ff.township_code is None``) adds the
        per-township table.
    layers
        ``filtered_layers(project, version, ff)`` restricted to the shown layers.

    Returns
    -------
    data
        `DashboardData` (`st.cache_data`: each caller gets its own copy).
    """
    return _dashboard(project, version, repr(ff), layers, ff.township_code is None)


@st.cache_data(show_spinner=False, max_entries=64)
def _headline(version: str, key: str, _layers: dict[str, LayerData]) -> list[aggregate.Figure]:
    del version, key
    return aggregate.headline_figures(_layers)


def headline_figures(
    version: str, ff: FeatureFilter, layers: dict[str, LayerData]
) -> list[aggregate.Figure]:
    """
    Return `riskmap.aggregate.headline_figures` of `layers`, once per data version and view.

    Parameters
    ----------
    version
        The store's stamp.
    ff
        The filter `layers` came from, with ``layer_ids`` set to the layers shown (the key).
    layers
        The shown layers of ``filtered_layers(project, version, ff)``.

    Returns
    -------
    figures
        As `riskmap.aggregate.headline_figures` (`st.cache_data`: a copy per caller).
    """
    return _headline(version, repr(ff), layers)


# ----------------------------------------------------------------------------- the map


@dataclass(frozen=True)
class MapArgs:
    """
    The `streamlit_folium` component's arguments for one rendered map (what `st_folium` sends).

    Attributes
    ----------
    script, header, html
        The map's Leaflet script, ``<head>`` additions and body HTML (streamlit-folium's
        ``_get_map_string``/``_get_header``/``_get_html``).
    map_id
        folium's ``map_<hex>`` id (random per build, fixed once cached).
    hash_key
        The component key `st_folium` derives from the script (`generate_js_hash`): a new
        key re-creates the iframe, the same key keeps it.
    bounds
        The map's initial bounds as the component reports them (``_southWest``/``_northEast``).
    zoom
        The map's initial zoom.
    css_links, js_links
        Stylesheets and scripts the iframe loads (riskmap's vendored Leaflet).
    build_s
        Seconds it took to build and render (logged by the app).
    html_bytes
        Size of `script` + `header` + `html` in UTF-8 bytes.
    """

    script: str
    header: str
    html: str
    map_id: str
    hash_key: str
    bounds: dict[str, dict[str, float | None]]
    zoom: Any
    css_links: tuple[str, ...]
    js_links: tuple[str, ...]
    build_s: float
    html_bytes: int


def _links(fmap: folium.Map) -> tuple[list[str], list[str]]:
    """CSS and JS links of the JS/CSS elements of `fmap` (as `st_folium` collects them)."""
    from folium.elements import JSCSSMixin  # noqa: PLC0415 - folium loads with the map

    css: list[str] = []
    js: list[str] = []

    def walk(element: Any) -> Iterable[Any]:  # noqa: ANN401 - any folium/branca element
        yield element
        for child in getattr(element, "_children", {}).values():
            yield from walk(child)

    for element in walk(fmap):
        if not isinstance(element, JSCSSMixin):
            continue
        css.extend(href for _, href in getattr(element, "default_css", []))
        js.extend(src for _, src in getattr(element, "default_js", []))
    return list(dict.fromkeys(css)), list(dict.fromkeys(js))


def render_map_args(fmap: folium.Map, *, key: str) -> MapArgs:
    """
    Render `fmap` to the component arguments `st_folium` would send (same helpers, same order).

    Parameters
    ----------
    fmap
        A `folium.Map` (riskmap's `build_map`); it is rendered and consumed (streamlit-folium
        renames its elements).
    key
        The widget key passed to `st_folium` (part of the component key).

    Returns
    -------
    args
        `MapArgs` (``build_s`` is 0; `map_args` fills it in).
    """
    fmap.get_root().render()
    fmap.render()
    html = streamlit_folium._get_html(fmap)  # noqa: SLF001 - st_folium's own steps, in order
    header = streamlit_folium._get_header(fmap)  # noqa: SLF001
    script = streamlit_folium._get_map_string(fmap)  # noqa: SLF001
    map_id = streamlit_folium.get_full_id(fmap)
    southwest, northeast = fmap.get_bounds()
    css, js = _links(fmap)
    return MapArgs(
        script=script,
        header=header,
        html=html,
        map_id=map_id,
        hash_key=streamlit_folium.generate_js_hash(script, key, return_on_hover=False),
        bounds={
            "_southWest": {"lat": southwest[0], "lng": southwest[1]},
            "_northEast": {"lat": northeast[0], "lng": northeast[1]},
        },
        zoom=fmap.options.get("zoom"),
        css_links=tuple(css),
        js_links=tuple(js),
        build_s=0.0,
        html_bytes=len(script.encode()) + len(header.encode()) + len(html.encode()),
    )


@st.cache_resource(show_spinner=False, max_entries=MAP_CACHE_ENTRIES)
def _map_args(_build: Callable[[], folium.Map], key: Hashable, widget_key: str) -> MapArgs:
    del key
    started = time.perf_counter()
    args = render_map_args(_build(), key=widget_key)
    seconds = time.perf_counter() - started
    logging.getLogger("riskmap.app").info("map built %.3f s, %d bytes", seconds, args.html_bytes)
    return MapArgs(**{**args.__dict__, "build_s": seconds})


def map_args(build: Callable[[], folium.Map], key: Hashable, *, widget_key: str) -> MapArgs:
    """
    Return the rendered arguments of the map `build` makes, built once per `key`.

    Parameters
    ----------
    build
        Builds the map (called only on a cache miss).
    key
        Everything the map depends on, hashable: the data version first, then the view
        (filter, highlighted point, township, choropleth, shared view, basemap, day).
    widget_key
        The widget key of the map component.

    Returns
    -------
    args
        `MapArgs`, shared between sessions (`st.cache_resource`; strings, never mutated).
    """
    return _map_args(build, key, widget_key)


def show_map(
    args: MapArgs, *, key: str, height: int, returned_objects: list[str]
) -> dict[str, Any] | None:
    """
    Show a rendered map with the `streamlit_folium` component; return what `st_folium` returns.

    The call `st_folium(fmap, key=key, height=height, use_container_width=True,
    returned_objects=returned_objects)` makes, with the rendering done beforehand
    (`map_args`). Identical `args` give an identical message (see the module notes).

    Parameters
    ----------
    args
        From `map_args`.
    key
        The widget key (the same as given to `map_args`); ``st.session_state[key]`` holds the
        last returned value, as with `st_folium`.
    height
        Pixels.
    returned_objects
        `st_folium`'s ``returned_objects``: only these trigger a rerun.

    Returns
    -------
    result
        The component's value: ``returned_objects`` keys, None before the first render.
    """
    defaults = {
        "last_clicked": None,
        "last_object_clicked": None,
        "last_object_clicked_count": None,
        "last_object_clicked_tooltip": None,
        "last_object_clicked_popup": None,
        "all_drawings": None,
        "last_active_drawing": None,
        "bounds": args.bounds,
        "zoom": args.zoom,
        "last_circle_radius": None,
        "last_circle_polygon": None,
        "selected_layers": None,
        "selected_tags": None,
        "last_geocoder_result": None,
    }
    hash_key = args.hash_key

    def on_change() -> None:
        st.session_state[key] = st.session_state.get(hash_key, {})

    return streamlit_folium._component_func(  # noqa: SLF001 - st_folium's own call
        script=args.script,
        header=args.header,
        html=args.html,
        id=args.map_id,
        key=hash_key,
        height=height,
        width=None,
        returned_objects=returned_objects,
        default={k: v for k, v in defaults.items() if k in returned_objects},
        zoom=None,
        center=None,
        feature_group=None,
        return_on_hover=False,
        layer_control=None,
        pixelated=False,
        css_links=list(args.css_links),
        js_links=list(args.js_links),
        on_change=on_change,
        wrap_longitude=False,
    )


__all__ = [
    "DashboardData",
    "MapArgs",
    "dashboard_data",
    "filtered_layers",
    "headline_figures",
    "map_args",
    "render_map_args",
    "show_map",
]
