"""Map additions of the warning view: the offline polygon tool and the affected-points overlay.

`add_draw_tool` adds `folium.plugins.Draw` with its Leaflet.draw JS/CSS redirected to the
vendored copy (`riskmap.assets.LEAFLET_DRAW`, served from ``/app/static/vendor`` like Leaflet),
toolbar texts in Chinese, and only the polygon and rectangle tools. `add_warning_overlay`
outlines a warning's area in its level colour and rings every affected feature (class
``riskmap-affected`` on the SVG paths, so a browser test can count them). Never imports
streamlit; returns nothing but changes the map it is given.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from branca.element import Element

import folium
import shapely
from folium.plugins import Draw

from riskmap import assets

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

AFFECTED_CLASS = "riskmap-affected"
"""CSS class of the rings around affected features."""
AREA_CLASS = "riskmap-warning-area"
"""CSS class of the warning area outline."""

_DRAW_LOCAL_ZH = {
    "draw": {
        "toolbar": {
            "actions": {"title": "取消绘制", "text": "取消"},
            "finish": {"title": "完成绘制", "text": "完成"},
            "undo": {"title": "删除最后一个点", "text": "撤销一点"},
            "buttons": {"polygon": "绘制预警范围（多边形）", "rectangle": "绘制预警范围（矩形）"},
        },
        "handlers": {
            "polygon": {
                "tooltip": {
                    "start": "单击开始绘制范围",
                    "cont": "单击继续绘制",
                    "end": "单击第一个点结束绘制",
                }
            },
            "rectangle": {"tooltip": {"start": "按住并拖动绘制矩形"}},
            "simpleshape": {"tooltip": {"end": "松开鼠标完成绘制"}},
            "polyline": {"error": "<strong>错误：</strong>边不能相交"},
        },
    },
    "edit": {
        "toolbar": {
            "actions": {
                "save": {"title": "保存修改", "text": "保存"},
                "cancel": {"title": "取消修改", "text": "取消"},
                "clearAll": {"title": "清除全部范围", "text": "全部清除"},
            },
            "buttons": {
                "edit": "修改范围",
                "editDisabled": "没有可修改的范围",
                "remove": "删除范围",
                "removeDisabled": "没有可删除的范围",
            },
        },
        "handlers": {
            "edit": {"tooltip": {"text": "拖动顶点修改范围", "subtext": "点“取消”放弃修改"}},
            "remove": {"tooltip": {"text": "单击要删除的范围"}},
        },
    },
}


class _DrawLocale(Element):
    """Script merging Chinese texts into ``L.drawLocal`` (after Leaflet.draw has loaded)."""

    def __init__(self) -> None:
        super().__init__()
        self._name = "RiskmapDrawLocale"

    def render(self, **kwargs: object) -> None:
        """Add the locale script to the figure's scripts."""
        del kwargs
        text = json.dumps(_DRAW_LOCAL_ZH, ensure_ascii=True)
        script = (
            "(function(){function merge(a,b){for(var k in b){if(typeof b[k]==='object'"
            "&&a[k]){merge(a[k],b[k]);}else{a[k]=b[k];}}}"
            f"if(window.L&&L.drawLocal){{merge(L.drawLocal,{text});}}}})();"
        )
        self.get_root().script.add_child(Element(script), name=self.get_name(), index=0)


def add_draw_tool(m: folium.Map, *, static_url_prefix: str = assets.STATIC_URL_PREFIX) -> Draw:
    """
    Add the offline polygon/rectangle drawing tool (Leaflet.draw) to `m`.

    Parameters
    ----------
    m
        The map (`riskmap.mapview.build_map`, served mode).
    static_url_prefix
        URL prefix of the vendored assets (`riskmap.assets.install_static_assets` copies
        Leaflet.draw there with Leaflet).

    Returns
    -------
    draw
        The `folium.plugins.Draw` control, whose ``default_js``/``default_css`` point at the
        local copies (never a CDN). Drawn shapes are GeoJSON in EPSG:4326 (lon, lat);
        ``streamlit_folium.st_folium`` returns them as ``all_drawings``.
    """
    draw = Draw(
        export=False,
        position="topleft",
        show_geometry_on_click=False,
        draw_options={
            "polyline": False,
            "circle": False,
            "marker": False,
            "circlemarker": False,
            "polygon": {"allowIntersection": False, "shapeOptions": {"color": "#d7191c"}},
            "rectangle": {"shapeOptions": {"color": "#d7191c"}},
        },
        edit_options={"edit": False},
    )
    draw.default_js = [
        (a.name, assets.asset_url(a, url_prefix=static_url_prefix))
        for a in assets.LEAFLET_DRAW
        if a.kind == "js"
    ]
    draw.default_css = [
        (a.name, assets.asset_url(a, url_prefix=static_url_prefix))
        for a in assets.LEAFLET_DRAW
        if a.kind == "css"
    ]
    draw.add_to(m)
    m.add_child(_DrawLocale())
    return draw


def add_warning_overlay(
    m: folium.Map,
    area: BaseGeometry | None,
    gdf_affected: gpd.GeoDataFrame | None,
    *,
    color: str = "#d7191c",
    name: str = "预警范围",
) -> None:
    """
    Outline a warning area and ring its affected features on `m`.

    Parameters
    ----------
    m
        The map.
    area
        The warning area, EPSG:4326 (lon, lat); None = no outline.
    gdf_affected
        Affected features (`riskmap.alerts.affected_features`, or the points of a stored
        warning as a GeoDataFrame): ``uid``, ``name``, ``layer_name``, ``people``; EPSG:4326.
        Points get a ring (radius 11 px), polygon parts a dashed outline. The map opens
        fitted to `area`.
    color
        Outline colour (the warning level's, `riskmap.alerts.LEVEL_COLORS`).
    name
        Name of the overlay (not listed in the layer control: it is always shown).
    """
    # control=False: `build_map` already rendered its layer control, which lists the groups
    # present when it was added; a group added later would be an undefined overlay there.
    group = folium.FeatureGroup(name=html.escape(name), control=False)
    if area is not None and not area.is_empty:
        folium.GeoJson(
            shapely.geometry.mapping(area),
            style_function=lambda _f: {
                "color": color,
                "weight": 3,
                "fill": True,
                "fillOpacity": 0.06,
                "dashArray": "8 6",
                "className": AREA_CLASS,
            },
            interactive=False,
        ).add_to(group)
    if gdf_affected is not None and len(gdf_affected):
        for row in gdf_affected.itertuples():
            geom = row.geometry
            if geom is None or geom.is_empty:
                continue
            label = html.escape(
                f"{row.layer_name} {row.uid} {row.name or ''}（威胁 {row.people} 人）"
            )
            if geom.geom_type == "Point":
                folium.CircleMarker(
                    location=[geom.y, geom.x],  # folium order: lat, lon
                    radius=11,
                    color=color,
                    weight=3,
                    fill=False,
                    className=AFFECTED_CLASS,
                    tooltip=label,
                ).add_to(group)
            else:
                folium.GeoJson(
                    shapely.geometry.mapping(geom),
                    style_function=lambda _f: {
                        "color": color,
                        "weight": 2,
                        "fill": False,
                        "dashArray": "3 4",
                        "className": AFFECTED_CLASS,
                    },
                    tooltip=label,
                ).add_to(group)
    group.add_to(m)
    if area is not None and not area.is_empty:
        # after build_map's own view element, so the map opens on the warning area
        left, bottom, right, top = area.bounds
        folium.FitBounds([[bottom, left], [top, right]], padding=(20, 20)).add_to(m)
