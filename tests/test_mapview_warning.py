"""Warning map additions: offline Leaflet.draw, rings on affected features (rendered HTML)."""

from __future__ import annotations

import json
import re

import pytest

import geopandas as gpd
from shapely.geometry import Point, box

from riskmap import assets
from riskmap.mapview import build_map
from riskmap.mapview.warning import AFFECTED_CLASS, add_draw_tool, add_warning_overlay


@pytest.fixture
def fmap(gdf_townships, gdf_county, settings):
    return build_map({}, gdf_townships, gdf_county, settings=settings)


def test_draw_tool_loads_only_vendored_files(fmap, tmp_path):
    add_draw_tool(fmap)
    html = fmap.get_root().render()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    draw = [u for u in urls if "leaflet.draw" in u]
    assert sorted(draw) == sorted(assets.asset_url(a) for a in assets.LEAFLET_DRAW)
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))]
    assert "L.Control.Draw" in html
    assert json.dumps("绘制预警范围")[1:-1] in html  # Chinese toolbar (ASCII-escaped JSON)
    # the files exist and are installed with Leaflet for static serving
    assets.install_static_assets(tmp_path, assets=assets.LEAFLET_DRAW)
    assert assets.static_assets_installed(tmp_path, assets=assets.LEAFLET_DRAW)
    licence = assets.VENDOR_DIR / "leaflet_draw" / "LICENSE"
    assert "MIT" in licence.read_text(encoding="utf-8")


def test_overlay_rings_each_affected_feature_and_escapes_text(fmap):
    gdf = gpd.GeoDataFrame(
        {"uid": ["a", "b"], "name": ["<script>x</script>", "甲"], "layer_name": ["L", "L"],
         "people": [3, 0]},
        geometry=[Point(108.66, 31.95), box(108.70, 31.92, 108.72, 31.94)],
        crs=4326,
    )  # fmt: skip
    add_warning_overlay(fmap, box(108.6, 31.9, 108.75, 31.98), gdf, color="#fd8d3c")
    html = fmap.get_root().render()
    # the point's ring and the polygon part's dashed outline
    assert html.count(f'"className": "{AFFECTED_CLASS}"') == 2
    assert "<script>x</script>" not in html
    assert "fitBounds" in html
