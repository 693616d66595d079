"""The page in a real headless Chromium (Debian's, never a downloaded one) against a live server.

One server for the module (its layers are a tmp copy, so import/commit/undo never touch the
repository), the session's browser (``chromium``, `tests/conftest.py`), one page per viewport.
Tests run in file order and share the page. Helpers: `tests/browser_support.py`.
Screenshots go to ``tests/artifacts/`` (gitignored), timings to ``tests/artifacts/timings.json``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
import zipfile
from urllib.parse import quote

import pytest

from riskmap.project import load_project
from riskmap.settings import Settings
from tests.browser_support import (  # noqa: F401 - also imported from here by other modules
    ARGS,
    ARTIFACTS,
    CASES,
    CHROMIUM,
    DESKTOP,
    EDITOR,
    EDITOR_PW,
    LAPTOP,
    MAP_IFRAME,
    TIMINGS,
    Server,
    copy_layers,
    outside_requests,
    require_browser,
    running_server,
)
from tests.browser_support import choose as _choose
from tests.browser_support import click_tab as _click_tab
from tests.browser_support import download as _download
from tests.browser_support import free_port as _free_port  # noqa: F401
from tests.browser_support import idle as _idle
from tests.browser_support import map_frame as _map_frame
from tests.browser_support import mark_frame as _mark_frame
from tests.browser_support import metric as _metric
from tests.browser_support import new_map as _new_map
from tests.browser_support import new_page as _new_page
from tests.browser_support import open_page as _open
from tests.browser_support import point_xy as _point_xy
from tests.browser_support import shot as _shot
from tests.browser_support import sign_in as _sign_in

pytestmark = pytest.mark.browser
require_browser()
from playwright.sync_api import Page, expect  # noqa: E402

REQUESTS: list[str] = []
ERRORS: list[str] = []


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's own server: it imports and undoes, so on its own copy of the layers."""
    tmp = tmp_path_factory.mktemp("server")
    with running_server(tmp, copy_layers(tmp / "layers")) as srv:
        yield srv
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(srv.log, ARTIFACTS / "server.log")


@pytest.fixture(scope="module")
def page(chromium):
    p = _new_page(chromium, DESKTOP, requests=REQUESTS, errors=ERRORS)
    yield p
    p.close()


@pytest.fixture(scope="module")
def project():
    return load_project(Settings())


def _settled_runs(page: Page, server: Server) -> tuple[str, int]:
    """This page's session and its run count, once no run has been logged for 1 s."""
    last, since = server.count("run"), time.monotonic()
    while time.monotonic() - since < 1:
        page.wait_for_timeout(200)
        now = server.count("run")
        if now != last:
            last, since = now, time.monotonic()
    session = server.last_session()
    return session, server.count("run", session)


# ----------------------------------------------------------------------------- tests


def test_outline_township_names_and_screenshots(page, server, chromium, project):
    started = time.perf_counter()
    frame = _open(page, server)
    TIMINGS["first_load_s"] = round(time.perf_counter() - started, 2)
    names = frame.evaluate(
        "() => Array.from(document.querySelectorAll('.riskmap-label')).map(e => e.textContent)"
    )
    with_polygon = set(project.gdf_townships["name"])
    assert set(names) == with_polygon
    assert len(names) == 24  # 复兴街道 shares 葛城街道's cell (approximate partition)
    # county outline: one thick dark path in its own pane, above the fills of fire zones
    county = frame.evaluate(
        "() => Array.from(document.querySelectorAll('.leaflet-riskCounty-pane path'))"
        ".filter(p => p.getAttribute('stroke') === '#222222').length"
    )
    assert county == 1
    # Chinese renders with a CJK font (not boxes): the label's measured width is CJK-sized
    width = frame.evaluate(
        "() => { const c = document.createElement('canvas').getContext('2d');"
        " c.font = '12px \"Noto Sans CJK SC\"'; return c.measureText('葛城街道').width; }"
    )
    assert 40 < width < 56
    assert frame.evaluate("document.fonts.check('12px \"Noto Sans CJK SC\"', '葛城')")
    # no English credit: without a basemap the attribution box is empty and hidden
    assert frame.inner_text(".leaflet-control-attribution").strip() == ""
    assert not frame.is_visible(".leaflet-control-attribution")
    assert "图例" in frame.inner_text(".riskmap-legend")
    _shot(page, "desktop_county")
    laptop = _new_page(chromium, LAPTOP, requests=REQUESTS, errors=ERRORS)
    try:
        _open(laptop, server)
        _shot(laptop, "laptop_county")
        legend = _map_frame(laptop).evaluate(
            "() => { const r = document.querySelector('.riskmap-legend').getBoundingClientRect();"
            " return [r.top, r.bottom, window.innerHeight, getComputedStyle("
            "document.querySelector('.riskmap-legend')).overflowY]; }"
        )
        top, bottom, height, overflow = legend
        assert top >= 0
        assert bottom <= height  # the whole legend box is inside the map; it scrolls inside
        assert overflow == "auto"
    finally:
        laptop.close()


def test_toggling_a_layer_hides_its_symbols(page, server):
    frame = _open(page, server)
    shown = "() => { const m = window.riskmap.maps[0]; return m.hasLayer(m.riskmap.layers.bridge.group); }"  # noqa: E501
    assert frame.evaluate(shown)
    # one layer switcher: the sidebar's checkbox (no Leaflet layer control in the app); the
    # layer leaves the map, the legend and the figures
    _mark_frame(frame)
    page.get_by_test_id("stSidebar").get_by_text("危旧桥梁", exact=True).click()
    frame = _new_map(page)
    _idle(page)
    assert frame.evaluate("() => window.riskmap.maps[0].riskmap.layers.bridge === undefined")
    assert "危旧桥梁" not in frame.inner_text(".riskmap-legend")
    assert "layers=geohazard%2Cwaterlogging%2Cfirezone" in page.url
    assert page.get_by_test_id("stMetric").filter(has_text="危旧桥梁").count() == 0


def test_choosing_a_township_zooms_and_shows_its_figures(page, server, project):
    frame = _open(page, server)
    county_zoom = frame.evaluate("() => window.riskmap.maps[0].getZoom()")
    _mark_frame(frame)
    started = time.perf_counter()
    _choose(page, "乡镇/街道", "巴山镇")
    frame = _new_map(page)
    TIMINGS["rerun_after_township_change_s"] = round(time.perf_counter() - started, 2)
    _idle(page)
    code, _ = project.township("巴山镇")
    town = project.gdf_townships[project.gdf_townships["adcode"] == code]
    lon0, lat0, lon1, lat1 = (float(v) for v in town.total_bounds)
    view = frame.evaluate(
        "() => { const m = window.riskmap.maps[0], b = m.getBounds();"
        " return [m.getZoom(), b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }"
    )
    zoom, west, south, east, north = view
    assert zoom > county_zoom
    assert west <= lon0
    assert east >= lon1
    assert south <= lat0
    assert north >= lat1
    # zoomed to it, not the county: it fills a good part of the view in one direction
    assert max((lon1 - lon0) / (east - west), (lat1 - lat0) / (north - south)) > 0.35
    # its figures: same counts as the library gives for the default statuses
    from riskmap.layers import filter_features

    statuses = ["在册", "监测中", "治理中"]
    for layer in project.layers.values():
        n = len(filter_features(layer, township_codes=[code], statuses=statuses))
        assert _metric(page, layer.spec.name) == f"{n} 处"
    gh = filter_features(project.layers["geohazard"], township_codes=[code], statuses=statuses)
    assert _metric(page, "威胁人数") == f"{gh['threat_people'].sum():.0f} 人"
    assert "township=%E5%B7%B4%E5%B1%B1%E9%95%87" in page.url
    assert page.get_by_text("巴山镇：风险点位概况").is_visible()
    _shot(page, "desktop_township")


_EMPTY_SPOT_JS = """([dx, dy]) => {
    const map = window.riskmap.maps[0], size = map.getSize(), pts = [], areas = [];
    for (const entry of Object.values(map.riskmap.layers)) {
        if (entry.points) {
            for (let i = 0; i < entry.data.n; i++) {
                pts.push(map.latLngToContainerPoint(entry.latlng(i)));
            }
        } else {
            areas.push(...entry.items);
        }
    }
    const free = (x, y) => pts.every(p => Math.hypot(p.x - x, p.y - y) > 40)
        && !areas.some(a => a._containsPoint && a._containsPoint(L.point(x, y)));
    for (let y = size.y / 2; y < size.y - 60; y += 17) {
        for (let x = size.x / 2; x < size.x - 260; x += 23) {
            if (free(x, y) && free(x + dx, y + dy)) { return [x, y]; }
        }
    }
    return [size.x / 2, size.y / 2];
}"""


def test_filters_keep_the_map_view_and_pan_zoom_do_not_rerun(page, server):
    # point layers only: Leaflet treats a drag released inside a canvas polygon as a click on it
    # (a selection, which does rerun), so the drags here avoid symbols
    frame = _open(page, server, "?layers=geohazard,waterlogging,bridge&township=" + quote("庙坝镇"))
    session, runs = _settled_runs(page, server)
    loads = server.count("load_project")
    box = page.query_selector(MAP_IFRAME).bounding_box()
    # a user pans (drag) and zooms (wheel) five times; each drag starts and ends away from any
    # symbol (a drag released on a canvas symbol is a click on it in Leaflet: a selection)
    for i in range(5):
        x, y = frame.evaluate(_EMPTY_SPOT_JS, [-60, -30 * (-1) ** i])
        cx, cy = box["x"] + x, box["y"] + y
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx - 60, cy - 30 * (-1) ** i, steps=5)
        page.mouse.up()
        page.mouse.wheel(0, -120 if i % 2 == 0 else 120)
        page.wait_for_timeout(500)  # zoom animation over before the next spot is computed
    page.wait_for_timeout(1000)
    assert server.count("run", session) == runs  # panning and zooming never rerun the page
    assert server.count("load_project") == loads
    before = frame.evaluate(
        "() => { const m = window.riskmap.maps[0], c = m.getCenter();"
        " return [c.lat, c.lng, m.getZoom()]; }"
    )
    _mark_frame(frame)
    started = time.perf_counter()
    _choose(page, "按乡镇点位数着色", "全部图层")
    frame = _new_map(page)
    TIMINGS["rerun_after_filter_change_s"] = round(time.perf_counter() - started, 2)
    _idle(page)
    TIMINGS["server_run_after_filter_change_s"] = server.last_run_seconds()
    after = frame.evaluate(
        "() => { const m = window.riskmap.maps[0], c = m.getCenter();"
        " return [c.lat, c.lng, m.getZoom(), m.riskmap.restored]; }"
    )
    assert after[3] is True
    assert after[2] == before[2]
    assert abs(after[0] - before[0]) < 1e-3
    assert abs(after[1] - before[1]) < 1e-3
    assert "choropleth=all" in page.url
    assert "各乡镇点位数" in frame.inner_text(".riskmap-legend")
    assert server.count("load_project") == loads  # a filter change never reloads data


def test_clicking_a_point_opens_its_popup_and_selects_its_row(page, server, project):
    frame = _open(page, server)
    gdf = project.layers["geohazard"].gdf
    gdf = gdf[gdf["status"] != "已销号"].reset_index(drop=True)
    index = int(frame.evaluate(
        "() => { const d = window.riskmap.maps[0].riskmap.layers.geohazard.data;"
        " return d.n - 1; }"
    ))  # fmt: skip
    x, y = _point_xy(page, frame, "geohazard", index)
    page.mouse.click(x, y)
    frame.wait_for_selector(".riskmap-popup-title")
    row = gdf.iloc[index]
    assert frame.inner_text(".riskmap-popup-title") == row["name"]
    assert frame.inner_text(".riskmap-popup-layer") == "地质灾害隐患点"
    fields = {
        el.get_attribute("data-field"): el.inner_text()
        for el in frame.query_selector_all(".riskmap-popup td[data-field]")
    }
    assert fields["uid"] == row["uid"]
    assert fields["township"] == row["township"]
    assert fields["threat_people"] == str(int(row["threat_people"]))
    assert fields["status"] == row["status"]
    assert fields["resp_phone"] == str(row["resp_phone"])
    # the click selects the feature's row: the panel below the map names it
    page.get_by_text(f"已选点位：地质灾害隐患点 · {row['name']}（{row['uid']}）").wait_for()
    _idle(page)
    _shot(page, "desktop_popup")
    # the map was not rebuilt by the selection: its popup is still open
    assert frame.query_selector(".riskmap-popup-title") is not None


def test_selecting_a_row_highlights_the_feature(page, server, project):
    _open(page, server, "?layers=geohazard")
    gdf = project.layers["geohazard"].gdf
    gdf = gdf[gdf["status"] != "已销号"].reset_index(drop=True)
    _click_tab(page, "清单")
    grid = page.locator('[data-testid="stDataFrame"]:visible').first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    frame = _map_frame(page)
    _mark_frame(frame)
    row = 2
    page.mouse.click(box["x"] + 18, box["y"] + 35 * (row + 1) + 17)  # row marker checkbox
    frame = _new_map(page)
    _idle(page)
    frame.wait_for_selector(".riskmap-popup-title")
    assert frame.inner_text(".riskmap-popup-title") == gdf.iloc[row]["name"]
    assert (
        frame.evaluate("() => document.querySelectorAll('.leaflet-riskHighlight-pane path').length")
        == 1
    )
    page.get_by_text(f"已选点位：地质灾害隐患点 · {gdf.iloc[row]['name']}").wait_for()


def test_search_by_uid(page, server, project):
    uid = str(project.layers["bridge"].gdf["uid"].iloc[0])
    frame = _open(page, server, "?q=" + quote(uid))
    n = frame.evaluate(
        "() => Object.values(window.riskmap.maps[0].riskmap.layers).map(l => l.data.n)"
    )
    assert len(n) == len(project.layers)  # one point layer per catalog layer on the map
    assert max(n) == 1
    assert sum(n) == 1  # only the bridge with that uid is shown
    assert _metric(page, "危旧桥梁") == "1 处"


def test_dashboard_chart_renders_locally(page, server):
    _open(page, server, "?township=" + quote("葛城街道"))
    _click_tab(page, "统计")
    chart = page.get_by_test_id("stVegaLiteChart").first
    chart.scroll_into_view_if_needed()
    chart.locator("canvas, svg").first.wait_for()
    text = page.get_by_test_id("stMainBlockContainer").inner_text()
    for word in ("整治进度", "按图层和等级统计", "威胁户数", "威胁人数", "威胁财产"):
        assert word in text
    page.get_by_role("tab", name="统计").scroll_into_view_if_needed()
    _shot(page, "desktop_dashboard")


def test_each_download_button_returns_a_valid_file(page, server):
    import openpyxl

    _open(page, server, "?township=" + quote("葛城街道"))
    _click_tab(page, "下载清单")
    xlsx = _download(page, "下载 Excel 清单")
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert wb.sheetnames
    assert any("葛城街道" in str(c.value) for ws in wb for row in ws.iter_rows() for c in row)
    text = _download(page, "下载 CSV").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) > 1
    assert rows[0][0] == "图层"
    gj = json.loads(_download(page, "下载 GeoJSON"))
    assert gj["type"] == "FeatureCollection"
    assert gj["features"]
    # the county ZIP (with progress shown while it builds)
    _open(page, server)
    _click_tab(page, "下载清单")
    page.get_by_role("button", name="生成全县各乡镇清单（ZIP）").click()
    # building 25 workbooks: allow for a loaded 2-core machine
    page.get_by_role("button", name="下载全县各乡镇清单（ZIP）").wait_for(timeout=180_000)
    data = _download(page, "下载全县各乡镇清单（ZIP）")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
        first = next(n for n in names if n.endswith(".xlsx"))
        openpyxl.load_workbook(io.BytesIO(zf.read(first)))
    assert len([n for n in names if n.endswith(".xlsx")]) >= 25


def test_import_upload_preview_commit_undo(page, server):
    path = server.layers / "geohazard.geojson"
    before = len(json.loads(path.read_text("utf-8"))["features"])
    _open(page, server)
    _click_tab(page, "导入调查表")
    # a viewer cannot reach the import controls
    page.get_by_text("导入调查表、撤销导入需登录").wait_for(timeout=60_000)
    assert page.get_by_test_id("stFileUploaderDropzoneInput").count() == 0
    _sign_in(page)
    _click_tab(page, "导入调查表")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(CASES / "c01_gbk.csv"))
    page.get_by_text("文件没有必填字段").wait_for(timeout=60_000)
    page.get_by_label("灾害类型 默认值").fill("滑坡")
    page.get_by_label("灾害类型 默认值").press("Enter")
    _idle(page)
    page.get_by_label("威胁人数 默认值").fill("3")
    page.get_by_label("威胁人数 默认值").press("Enter")
    _idle(page)
    assert "GB18030" in page.get_by_test_id("stMainBlockContainer").inner_text().upper()
    added = page.get_by_test_id("stMetric").filter(has_text="新增").get_by_test_id("stMetricValue")
    expect(added).to_have_text("1", timeout=60_000)
    page.get_by_role("button", name="确认导入").click()
    page.get_by_text("已导入 地质灾害隐患点：新增 1").wait_for(timeout=60_000)
    _idle(page)
    after = json.loads(path.read_text("utf-8"))["features"]
    assert len(after) == before + 1
    assert any(f["properties"]["name"] == "葛城滑坡点" for f in after)
    log = (server.layers / ".history" / "geohazard" / "log.jsonl").read_text("utf-8")
    last = json.loads(log.splitlines()[-1])
    assert (last["action"], last["user"], last["source"]) == ("import", EDITOR, "c01_gbk.csv")
    # the map shows it: data reloaded once (new version)
    frame = _map_frame(page)
    names = frame.evaluate(
        "() => { const d = window.riskmap.maps[0].riskmap.layers.geohazard.data;"
        " return d.p.name.k ? d.p.name.k : d.p.name; }"
    )
    assert "葛城滑坡点" in names
    _shot(page, "desktop_import")
    page.get_by_role("button", name="撤销最近一次修改…").click()
    page.get_by_text("确认要撤销").wait_for(timeout=60_000)  # asks first, says what
    assert len(json.loads(path.read_text("utf-8"))["features"]) == before + 1
    page.get_by_role("button", name="确认撤销").click()
    page.get_by_text("已撤销：地质灾害隐患点 已恢复到上一版本").wait_for(timeout=60_000)
    _idle(page)
    assert len(json.loads(path.read_text("utf-8"))["features"]) == before


def test_help_panel(page, server):
    if not page.url.startswith(server.url):  # alone; else the page the last test left open
        _open(page, server)
    _click_tab(page, "使用说明")
    assert page.get_by_text("使用说明").first.is_visible()
    assert page.get_by_text("网址包含当前筛选条件").is_visible()


def test_a_map_shown_before_is_neither_rebuilt_nor_resent(page, server):
    """Issue 15: a rerun that leaves the map as it was keeps its iframe and sends no map HTML;
    back to 全县 after a township, the county map is not rebuilt and its HTML is not resent
    (`riskmap.ui.caching`; the browser keeps large messages for ``maxCachedMessageAge`` runs)."""
    received: list[int] = []

    def on_ws(ws) -> None:
        ws.on("framereceived", lambda payload: received.append(len(payload)))

    page.on("websocket", on_ws)
    try:
        frame = _open(page, server)
        html_bytes = frame.evaluate("() => new Blob([document.documentElement.outerHTML]).size")
        assert html_bytes > 100_000  # the bundled county map's page (≈ 185 kB of map script)
        builds = server.count("map built")
        _mark_frame(frame)
        received.clear()
        _click_tab(page, "使用说明")  # a rerun that changes nothing on the map
        assert max(received) < html_bytes / 2  # no message carried the map (≈ 185 kB)
        assert frame.evaluate("() => window.__old === true")  # the same iframe, not a new one
        for town in ("巴山镇", "庙坝镇"):  # 3 runs on: Streamlit's default would drop the map
            _mark_frame(_map_frame(page))
            _choose(page, "乡镇/街道", town)
            _new_map(page)
            _idle(page)
        _mark_frame(_map_frame(page))
        received.clear()
        _choose(page, "乡镇/街道", "全县")
        frame = _new_map(page)
        _idle(page)
        assert frame.evaluate("() => window.riskmap.maps[0].riskmap.layers.geohazard.data.n") > 0
        assert max(received) < html_bytes / 2  # the county map's HTML came from the cache
        assert server.count("map built") <= builds + 2  # at most the two townships' maps
    finally:
        page.remove_listener("websocket", on_ws)


def test_page_requests_nothing_outside_localhost(server):
    assert REQUESTS, "no requests were recorded"
    allowed = (server.url, "data:", "blob:", "about:")
    outside = sorted({u for u in REQUESTS if not u.startswith(allowed)})
    assert outside == []
    assert ERRORS == []
