"""Map building: content, offline assets, escaping, performance bound, and a real browser."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
from shapely.geometry import Point, box

from riskmap import assets, mapview
from riskmap.errors import LayerNotFoundError, TownshipNotFoundError
from riskmap.io import read_catalog
from riskmap.layers import prepare_layer
from riskmap.settings import Settings

DATA = Path(__file__).parent / "data"
CHROMIUM = Path("/usr/bin/chromium")
CASES = Path(__file__).resolve().parent / "data" / "cases"
REMOTE_ASSET = re.compile(
    r"<script[^>]*\bsrc\s*=\s*[\"']?\s*(?:https?:)?//|<link[^>]*\bhref\s*=\s*[\"']?\s*(?:https?:)?//",
    re.IGNORECASE,
)
ANY_ASSET_LINK = re.compile(r"<script[^>]*\bsrc\s*=|<link[^>]*\bhref\s*=", re.IGNORECASE)
EXTRA_STRINGS = [
    'C:\\temp\\"x"\\',
    "第一行\n第二行\r\n第三行",
    "</script><script>alert(1)</script>",
    "{{'map_div'}} a_0 _div",
    "alert(coords); \u2028 end",
    "<!-- x",
    "{{ 'pw' ~ 'ned' }} {% if true %}yes{% endif %} {# c",
]


def injection_strings() -> list[str]:
    with (DATA / "c17_popup_injection.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["名称"] for r in rows] + [r["备注"] for r in rows] + EXTRA_STRINGS


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="module")
def catalog(settings):
    return read_catalog(settings)


@pytest.fixture(scope="module")
def gdf_townships() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "adcode": ["500229001", "500229002"],
            "adcode12": ["500229001000", "500229002000"],
            "name": ["葛城街道", "复兴<b>街道</b>"],
            "level": ["街道", "街道"],
            "approximate": [True, True],
            "also_covers": ["", ""],
        },
        geometry=[box(108.60, 31.90, 108.70, 32.00), box(108.70, 31.90, 108.80, 32.00)],
        crs="EPSG:4326",
    )


@pytest.fixture(scope="module")
def gdf_county(gdf_townships) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["城口县"]}, geometry=[gdf_townships.union_all()], crs="EPSG:4326"
    )


def _points(n: int, names: list[str] | None = None, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    people = rng.integers(0, 1500, n)
    frame = pd.DataFrame(
        {
            "uid": [f"GH-{i:06d}" for i in range(n)],
            "name": names if names is not None else [f"隐患点{i}" for i in range(n)],
            "hazard_type": rng.choice(["滑坡", "崩塌", "泥石流"], n),
            "threat_people": people,
            "threat_households": people // 3,
            "status": "监测中",
            "resp_name": "张三",
            "measures": names if names is not None else "群测群防",
        }
    )
    lon = rng.uniform(108.61, 108.79, n)
    lat = rng.uniform(31.91, 31.99, n)
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


@pytest.fixture(scope="module")
def layers(catalog, gdf_townships, settings):
    geo = prepare_layer(
        _points(30), catalog.get("geohazard"), gdf_townships, metric_crs=settings.metric_crs
    )
    water = gpd.GeoDataFrame(
        {"uid": ["W1", "W2"], "name": ["下穿道", "低洼路"], "max_depth_cm": [10.0, 45.0]},
        geometry=[Point(108.65, 31.95), Point(108.75, 31.93)],
        crs="EPSG:4326",
    )
    fire = gpd.GeoDataFrame(
        {"uid": ["F1"], "name": ["北山林区"], "zone_grade": ["I级"]},
        geometry=[box(108.66, 31.92, 108.74, 31.97)],
        crs="EPSG:4326",
    )
    return {
        "geohazard": geo,
        "waterlogging": prepare_layer(
            water, catalog.get("waterlogging"), gdf_townships, metric_crs=settings.metric_crs
        ),
        "firezone": prepare_layer(
            fire, catalog.get("firezone"), gdf_townships, metric_crs=settings.metric_crs
        ),
    }


def _render(layers, gdf_townships, gdf_county, settings, **kwargs) -> str:
    m = mapview.build_map(layers, gdf_townships, gdf_county, settings=settings, **kwargs)
    return mapview.save_map(m)


@pytest.mark.parametrize("inline", [True, False])
def test_page_lists_layers_legend_and_notes(layers, gdf_townships, gdf_county, settings, *, inline):
    page = _render(layers, gdf_townships, gdf_county, settings, inline_assets=inline)
    for layer in layers.values():
        assert layer.spec.name in page
        for cls in layer.spec.colors:
            assert cls in page
    assert "乡镇界线为示意边界（非官方）" in page
    assert "演示数据" in page
    assert "图例" in page
    # township names are escaped both in the legend-free label data and nowhere raw
    assert "复兴<b>" not in page


def test_demo_note_can_be_dropped(layers, gdf_townships, gdf_county, settings):
    page = _render(layers, gdf_townships, gdf_county, settings, demo=False)
    assert "演示数据" not in page


@pytest.mark.parametrize("inline", [True, False])
@pytest.mark.parametrize("n_points", [30, 50])
def test_no_remote_assets(gdf_townships, gdf_county, settings, catalog, *, inline, n_points):
    layer = prepare_layer(
        _points(n_points), catalog.get("geohazard"), gdf_townships, metric_crs=settings.metric_crs
    )
    page = _render(
        {"geohazard": layer},
        gdf_townships,
        gdf_county,
        settings,
        inline_assets=inline,
        cluster_threshold=40,  # 50 points -> aggregated when all in view (no plugin)
    )
    assert not REMOTE_ASSET.search(page)
    for cdn in ("jsdelivr", "cdnjs", "code.jquery", "bootstrapcdn", "unpkg", "autonavi"):
        assert cdn not in page
    if inline:
        assert not ANY_ASSET_LINK.search(page)
        assert "markerClusterGroup" not in page
    else:
        sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", page)
        sources += re.findall(r"<link[^>]*\bhref=\"([^\"]+)\"", page)
        assert sources
        assert all(s.startswith("/app/static/vendor/") for s in sources)
        assert any(s.endswith("/leaflet.js") for s in sources)
        assert not any("markercluster" in s for s in sources)


def test_injection_strings_only_encoded(catalog, gdf_townships, gdf_county, settings):
    names = injection_strings()
    layer = prepare_layer(
        _points(len(names), names=names),
        catalog.get("geohazard"),
        gdf_townships,
        metric_crs=settings.metric_crs,
    )
    page = _render({"geohazard": layer}, gdf_townships, gdf_county, settings, inline_assets=True)
    assert "<img src=x" not in page
    assert "alert(1)" not in page
    assert "</script><script>" not in page
    assert "pwned" not in page  # {{ 'pw' ~ 'ned' }} was not evaluated by Jinja
    for text in names:
        encoded = mapview.js_json(text)[1:-1]
        assert encoded in page
        assert json.loads(mapview.js_json(text)) == text


@pytest.mark.parametrize("text", injection_strings())
def test_js_json_round_trips_and_hides_markup(text):
    encoded = mapview.js_json({"k_1": text})
    assert json.loads(encoded) == {"k_1": text}
    for char in "<>&'_()\u2028\u2029":
        assert char not in encoded
    for tag in ("{{", "{%", "{#"):
        assert tag not in encoded


def test_runtime_js_has_no_template_tags():
    for tag in ("{{", "{%", "{#"):
        assert tag not in mapview.RUNTIME_JS
        assert tag not in mapview.RUNTIME_CSS


def test_choropleth_counts_and_legend(layers, gdf_townships, gdf_county, settings):
    counts = mapview.township_counts(layers, ["geohazard", "firezone"])
    geo = layers["geohazard"]
    expected = geo.gdf["township_code"].value_counts()
    # the fire zone straddles both townships: it counts once in each
    assert counts["500229001"] == expected.get("500229001", 0) + 1
    assert counts["500229002"] == expected.get("500229002", 0) + 1
    page = _render(layers, gdf_townships, gdf_county, settings, choropleth="all")
    assert "各乡镇点位数（全部图层）" in page


@pytest.mark.parametrize(
    ("max_count", "n_classes"), [(0, 0), (1, 1), (2, 2), (3, 3), (7, 5), (1000, 5)]
)
def test_count_classes_cover_range(max_count, n_classes):
    classes = mapview.count_classes(max_count)
    assert len(classes) == n_classes
    if classes:
        assert classes[0][0] == 1
        assert classes[-1][1] == max_count
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(classes))


def test_bad_arguments_raise(layers, gdf_townships, gdf_county, settings):
    with pytest.raises(LayerNotFoundError, match="nope"):
        mapview.build_map(layers, gdf_townships, gdf_county, settings=settings, visible=["nope"])
    with pytest.raises(LayerNotFoundError):
        mapview.build_map(layers, gdf_townships, gdf_county, settings=settings, choropleth="x")
    with pytest.raises(TownshipNotFoundError):
        mapview.build_map(
            layers, gdf_townships, gdf_county, settings=settings, selected_township="123"
        )


def test_selected_township_and_highlight(layers, gdf_townships, gdf_county, settings):
    page = _render(
        layers,
        gdf_townships,
        gdf_county,
        settings,
        selected_township="500229002000",
        highlight=("geohazard", "GH-000003"),
    )
    assert "[[31.9,108.7],[32.0,108.8]]" in page.replace(" ", "")
    assert '["geohazard","GH-000003"]' in page
    assert '"labelClass":"selected"' in page


def test_basemaps(layers, gdf_townships, gdf_county, settings):
    page = _render(layers, gdf_townships, gdf_county, settings)
    assert "tianditu" not in page
    assert "L.tileLayer" not in page
    page = _render(layers, gdf_townships, gdf_county, settings, basemap="tianditu")
    assert "未配置天地图密钥" in page
    assert "L.tileLayer" not in page
    keyed = Settings(tianditu_key="abc&def")
    page = _render(layers, gdf_townships, gdf_county, keyed)
    assert "vec_w" in page
    assert "cva_w" in page
    assert "tk=abc%26def" in page
    intranet = Settings(tile_url="http://10.0.0.5/tiles/{z}/{x}/{y}.png")
    page = _render(layers, gdf_townships, gdf_county, intranet)
    assert "10.0.0.5/tiles" in page


def test_install_static_assets_idempotent(tmp_path):
    assets.install_static_assets(tmp_path)
    assert assets.static_assets_installed(tmp_path)
    js = tmp_path / "vendor" / assets.asset_url(assets.LEAFLET[0], url_prefix="").lstrip("/")
    assert js.read_bytes() == assets.asset_path(assets.LEAFLET[0]).read_bytes()
    stamp = js.stat().st_mtime_ns
    assets.install_static_assets(tmp_path)
    assert js.stat().st_mtime_ns == stamp
    assert not list(tmp_path.rglob("*.tmp"))


def test_inline_css_has_no_relative_urls():
    css = assets.asset_text(assets.LEAFLET[1])
    assert "url(images/" not in css
    assert "data:image/png;base64," in css


def test_build_10k_points_is_fast(catalog, gdf_townships, gdf_county, settings):
    layer = prepare_layer(
        _points(10_000), catalog.get("geohazard"), gdf_townships, metric_crs=settings.metric_crs
    )
    start = time.perf_counter()
    m = mapview.build_map({"geohazard": layer}, gdf_townships, gdf_county, settings=settings)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0  # sanity bound only; measured ~0.05 s
    assert len(mapview.save_map(m)) < 3_000_000


# --------------------------------------------------------------------------- browser


def _require_browser() -> None:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        if os.environ.get("RISKMAP_REQUIRE_BROWSER") == "1":
            pytest.fail("RISKMAP_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
        pytest.skip("/usr/bin/chromium not installed")
    pytest.importorskip("playwright.sync_api")


@pytest.mark.browser
def test_popups_render_strings_literally(catalog, gdf_townships, gdf_county, settings, tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    names = injection_strings()
    n = len(names)
    frame = _points(n, names=names)
    # spread the points on a line so each click hits exactly one marker
    frame = frame.set_geometry(
        gpd.points_from_xy(np.linspace(108.62, 108.78, n), np.full(n, 31.95)), crs="EPSG:4326"
    )
    layer = prepare_layer(
        frame, catalog.get("geohazard"), gdf_townships, metric_crs=settings.metric_crs
    )
    fire = gpd.GeoDataFrame(
        {"uid": ["F1"], "name": [names[3]], "zone_grade": ["I级"]},
        geometry=[box(108.66, 31.96, 108.74, 31.99)],
        crs="EPSG:4326",
    )
    layers = {
        "geohazard": layer,
        "firezone": prepare_layer(
            fire, catalog.get("firezone"), gdf_townships, metric_crs=settings.metric_crs
        ),
    }
    page_html = _render(layers, gdf_townships, gdf_county, settings, inline_assets=True)
    path = tmp_path / "map.html"
    path.write_text(page_html, encoding="utf-8")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        requests, errors, dialogs = [], [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        page.wait_for_function("window.riskmap && window.riskmap.maps.length === 1")
        title = page.evaluate("document.title")
        for i, text in enumerate(names):
            x, y = page.evaluate(
                """(i) => {
                    const map = window.riskmap.maps[0];
                    const ll = map.riskmap.layers.geohazard.latlng(i);
                    map.setView(ll, 16, {animate: false});
                    const p = map.latLngToContainerPoint(ll);
                    const r = map.getContainer().getBoundingClientRect();
                    return [r.left + p.x, r.top + p.y];
                }""",
                i,
            )
            page.mouse.click(x, y)
            page.wait_for_selector(".riskmap-popup-title")
            got = page.evaluate(
                "() => [document.querySelector('.riskmap-popup-title').textContent,"
                " document.querySelector('.riskmap-popup td[data-field=measures]').textContent]"
            )
            assert got == [text, text]
            page.evaluate("() => window.riskmap.maps[0].closePopup()")
            page.wait_for_function("!document.querySelector('.riskmap-popup')")
        # the fire zone polygon: click inside it, away from the points
        x, y = page.evaluate(
            """() => {
                const map = window.riskmap.maps[0];
                map.setView([31.985, 108.70], 14, {animate: false});
                const p = map.latLngToContainerPoint([31.985, 108.70]);
                const r = map.getContainer().getBoundingClientRect();
                return [r.left + p.x, r.top + p.y];
            }"""
        )
        page.mouse.click(x, y)
        page.wait_for_selector(".riskmap-popup-title")
        assert (
            page.evaluate("document.querySelector('.riskmap-popup-title').textContent") == names[3]
        )
        page.wait_for_timeout(200)
        assert page.evaluate("document.title") == title
        # highlight opens the feature's popup by itself; an unknown key shows a notice
        for key, expected in (("GH-000002", names[2]), ("GH-nope", None)):
            hl_html = _render(
                layers,
                gdf_townships,
                gdf_county,
                settings,
                inline_assets=True,
                highlight=("geohazard", key),
            )
            path.write_text(hl_html, encoding="utf-8")
            page.goto(path.as_uri())
            page.wait_for_function("window.riskmap && window.riskmap.maps.length === 1")
            if expected is None:
                assert "未找到要定位的点位" in page.inner_text(".riskmap-warning")
            else:
                page.wait_for_selector(".riskmap-popup-title")
                assert page.inner_text(".riskmap-popup-title") == expected
        assert page.evaluate("document.querySelectorAll('.riskmap-popup img').length") == 0
        browser.close()
    assert dialogs == []
    assert errors == []
    assert all(u.startswith(("file://", "data:")) for u in requests), requests


def _biggest_bubble(page, entry: str) -> tuple[float, float]:
    """Page pixel of the centre of the biggest count bubble the layer drew."""
    return page.evaluate(
        f"""() => {{ const pts = {entry}.points, map = window.riskmap.maps[0];
            const c = pts._cells.reduce((a, b) => (b.n > a.n ? b : a));
            const r = map.getContainer().getBoundingClientRect();
            const p = map.layerPointToContainerPoint([c.x, c.y]);
            return [r.left + p.x, r.top + p.y]; }}"""
    )


@pytest.mark.browser
def test_big_point_layer_in_browser(catalog, gdf_townships, gdf_county, settings, tmp_path):
    """30k points: count bubbles at county zoom, a click at a point opens its popup, the
    clicked feature is what streamlit-folium reports, and the layer control hides it."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    n = 30_000
    layer = prepare_layer(
        _points(n, seed=1), catalog.get("geohazard"), gdf_townships, metric_crs=settings.metric_crs
    )
    page_html = _render(
        {"geohazard": layer}, gdf_townships, gdf_county, settings, inline_assets=True
    )
    assert "markerCluster" not in page_html
    path = tmp_path / "big.html"
    path.write_text(page_html, encoding="utf-8")
    target = 12_345
    row = layer.gdf.iloc[target]
    fields = ["uid", "hazard_type", "threat_people"]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_function("window.riskmap && window.riskmap.maps.length === 1")
        # streamlit-folium binds `click` on every layer of the map and stores
        # `e.layer.toGeoJSON()` as `last_active_drawing`: do the same.
        page.evaluate(
            """() => { const map = window.riskmap.maps[0]; window.lastDrawing = null;
                for (const id in map._layers) { const l = map._layers[id];
                  if (typeof l.on === "function") { l.on("click", (e) => {
                    if (e.layer && typeof e.layer.toGeoJSON === "function") {
                      window.lastDrawing = e.layer.toGeoJSON(); } }); } } }"""
        )
        entry = "window.riskmap.maps[0].riskmap.layers.geohazard"
        page.wait_for_function(f"{entry}.points._mode === 'cells'")
        # a bubble: click zooms in
        zoom0 = page.evaluate("window.riskmap.maps[0].getZoom()")
        page.mouse.click(*_biggest_bubble(page, entry))
        page.wait_for_function(
            f"window.riskmap.maps[0].getZoom() > {zoom0} && !window.riskmap.maps[0]._animatingZoom"
        )
        # one point, zoomed in: its pixel opens its popup
        x, y = page.evaluate(
            f"""(i) => {{ const map = window.riskmap.maps[0], ll = {entry}.latlng(i);
                map.setView(ll, 17, {{animate: false}});
                const p = map.latLngToContainerPoint(ll);
                const r = map.getContainer().getBoundingClientRect();
                return [r.left + p.x, r.top + p.y]; }}""",
            target,
        )
        page.wait_for_function(f"{entry}.points._mode === 'points'")
        page.mouse.click(x, y)
        page.wait_for_selector(".riskmap-popup-title")
        got = [page.inner_text(f".riskmap-popup td[data-field={f}]") for f in fields]
        assert page.inner_text(".riskmap-popup-title") == row["name"]
        assert got == [str(row[f]) for f in fields]
        drawing = page.evaluate("window.lastDrawing")
        assert drawing["properties"] == {"layer": "geohazard", "key": row["uid"]}
        assert drawing["geometry"]["coordinates"] == pytest.approx(
            [row.geometry.x, row.geometry.y], abs=1e-6
        )
        page.evaluate("() => window.riskmap.maps[0].closePopup()")
        for dx, dy in ((1, 0), (0, 1)):
            page.mouse.move(x + dx, y + dy)
        page.wait_for_selector(".riskmap-tip")
        assert page.inner_text(".riskmap-tip").startswith(row["name"])
        # the layer control hides the layer: the same click opens nothing
        page.get_by_label("地质灾害隐患点").uncheck()
        assert not page.evaluate(f"window.riskmap.maps[0].hasLayer({entry}.points)")
        page.mouse.click(x, y)
        page.wait_for_timeout(100)
        assert page.query_selector(".riskmap-popup") is None
        page.get_by_label("地质灾害隐患点").check()
        # zooming out again aggregates again
        page.evaluate(f"() => window.riskmap.maps[0].setZoom({zoom0}, {{animate: false}})")
        page.wait_for_function(f"{entry}.points._mode === 'cells'")
        browser.close()
    assert errors == []


def test_view_key_view_home_and_chinese_controls(layers, gdf_townships, gdf_county, settings):
    plain = _render(layers, gdf_townships, gdf_county, settings)
    keyed = _render(
        layers, gdf_townships, gdf_county, settings, view_key="500229001", view="31.9,108.6,12"
    )
    # initView(bounds, highlight, missing, view key, view, home bounds): the home button fits
    # the county outline's bounds, [[south, west], [north, east]]
    west, south, east, north = (round(float(v), 6) for v in gdf_county.total_bounds)
    home = json.dumps([[south, west], [north, east]], separators=(",", ":"))
    assert f"null, null, null, null, {home});" in plain  # no key, no view: open at the bounds
    assert f'null, null, "500229001", "31.9,108.6,12", {home});' in keyed
    # the view lives in the URL (?view=), not in browser storage; no "Leaflet" credit;
    # zoom buttons titled in Chinese
    assert "sessionStorage" not in mapview.RUNTIME_JS
    assert "localStorage" not in mapview.RUNTIME_JS
    assert "searchParams.set(VIEW_PARAM" in mapview.RUNTIME_JS
    assert "setPrefix(false)" in mapview.RUNTIME_JS
    assert 'zoomInTitle: "放大", zoomOutTitle: "缩小"' in mapview.RUNTIME_JS
    assert "回到全县" in mapview.RUNTIME_JS
    # one layer switcher: Leaflet's only when asked (the app's sidebar is the switcher)
    assert "L.control.layers" in plain
    no_switch = _render(layers, gdf_townships, gdf_county, settings, layer_control=False)
    assert "L.control.layers" not in no_switch


def test_offline_basemap_layer_is_served_from_the_static_folder(
    layers, gdf_townships, gdf_county, settings
):
    from riskmap.basemap import BasemapLayer

    tiles = BasemapLayer(
        url_template="/app/static/basemap/abc123/{z}/{x}/{y}.png",
        min_zoom=8,
        max_native_zoom=14,
        bounds=(108.2, 31.57, 109.33, 32.25),
        attribution="县测绘院 离线影像",
        tile_count=100,
        crs="cgcs2000",
    )
    html = _render(layers, gdf_townships, gdf_county, settings, basemap_layer=tiles)
    assert '"/app/static/basemap/abc123/{z}/{x}/{y}.png"' in html
    assert '"maxNativeZoom": 14' in html
    assert f'"attribution": {json.dumps("县测绘院 离线影像")}' in html  # \uXXXX-escaped
    assert '"minNativeZoom": 8' in html
    assert "tianditu" not in html


def test_runtime_files_are_package_data():
    """The JS/CSS files are declared package data, so a non-editable install ships them."""
    import fnmatch
    import tomllib
    from importlib import resources

    root = Path(__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"][
        "package-data"
    ]["riskmap.mapview"]
    static = resources.files("riskmap.mapview") / "static"
    names = sorted(p.name for p in static.iterdir() if p.name.endswith((".js", ".css")))
    assert names == ["riskmap.css", "riskmap.js"]
    for name in names:
        assert any(fnmatch.fnmatch(f"static/{name}", glob) for glob in declared)
    assert (static / "riskmap.js").read_text("utf-8") == mapview.RUNTIME_JS
    assert "window.riskmap" in mapview.RUNTIME_JS
    assert ".riskmap-legend" in mapview.RUNTIME_CSS


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_runtime_js_parses():
    """The runtime is a real script file: it parses (``node --check``) as it is shipped."""
    import subprocess
    from importlib import resources

    path = resources.files("riskmap.mapview") / "static" / "riskmap.js"
    node = shutil.which("node")
    result = subprocess.run(
        [node, "--check", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.browser
def test_c26_long_name_hover_label_stays_narrow_popup_whole(
    catalog, gdf_townships, gdf_county, settings, tmp_path
):
    """c26: a 210-character name: hover label ≤ ~320 px and inside the map; popup whole."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    long_name = (CASES / "c26_long_name.csv").read_text("utf-8").splitlines()[1].split(",")[1]
    assert len(long_name) == 210
    frame = _points(1, names=[long_name]).set_geometry(
        gpd.points_from_xy([108.664], [31.946]), crs="EPSG:4326"
    )
    layer = prepare_layer(
        frame, catalog.get("geohazard"), gdf_townships, metric_crs=settings.metric_crs
    )
    path = tmp_path / "map.html"
    html = _render({"geohazard": layer}, gdf_townships, gdf_county, settings, inline_assets=True)
    path.write_text(html, encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(path.as_uri())
        page.wait_for_function("window.riskmap && window.riskmap.maps.length === 1")
        x, y = page.evaluate(
            """() => {
                const map = window.riskmap.maps[0];
                const ll = map.riskmap.layers.geohazard.latlng(0);
                map.setView(ll, 14, {animate: false});
                const p = map.latLngToContainerPoint(ll);
                const r = map.getContainer().getBoundingClientRect();
                return [r.left + p.x, r.top + p.y];
            }"""
        )
        page.mouse.move(x, y)
        page.wait_for_selector(".leaflet-tooltip .riskmap-tip")
        tip, box_map = page.evaluate(
            """() => [document.querySelector('.leaflet-tooltip').getBoundingClientRect().toJSON(),
                      window.riskmap.maps[0].getContainer().getBoundingClientRect().toJSON()]"""
        )
        assert tip["width"] <= 345
        assert box_map["left"] <= tip["left"]
        assert tip["right"] <= box_map["right"]
        page.mouse.click(x, y)
        page.wait_for_selector(".riskmap-popup-title")
        assert page.inner_text(".riskmap-popup-title") == long_name
        browser.close()


@pytest.mark.parametrize("inline", [True, False])
def test_c26_hover_label_width_rule_in_every_page(
    layers, gdf_townships, gdf_county, settings, *, inline
):
    """The tooltip rule ships with every map page (inline or linked CSS)."""
    import re
    from importlib.resources import files

    css = files("riskmap.mapview").joinpath("static/riskmap.css").read_text("utf-8")
    rule = re.search(r"\.riskmap-tip\s*\{([^}]*)\}", css)
    assert rule is not None
    assert "max-width: 320px" in rule.group(1)
    assert "white-space: normal" in rule.group(1)
    assert "-webkit-line-clamp" in rule.group(1)
    page = _render(layers, gdf_townships, gdf_county, settings, inline_assets=inline)
    assert "riskmap-tip" in page
    if inline:
        assert "max-width: 320px" in page
