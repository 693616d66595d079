"""The page in a real headless Chromium (Debian's, never a downloaded one) against a live server.

One server for the module (its layers are a tmp copy, so import/commit/undo never touch the
repository), one browser, one page per viewport. Tests run in file order and share the page.
Screenshots go to ``tests/artifacts/`` (gitignored), timings to ``tests/artifacts/timings.json``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest

from riskmap.auth import hash_password
from riskmap.project import load_project
from riskmap.settings import Settings

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CASES = Path(__file__).resolve().parent / "data" / "cases"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}
MAP_IFRAME = 'iframe[title*="streamlit_folium"]'
TIMINGS: dict[str, float] = {}

if not CHROMIUM.exists():
    if os.environ.get("RISKMAP_REQUIRE_BROWSER") == "1":
        pytest.fail("RISKMAP_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing", pytrace=False)
    pytest.skip("/usr/bin/chromium not installed", allow_module_level=True)
if os.environ.get("RISKMAP_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Frame, Page, expect, sync_playwright  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running ``streamlit run app.py``; its stderr log counts runs and data loads."""

    def __init__(self, url: str, log: Path, layers: Path) -> None:
        self.url = url
        self.log = log
        self.layers = layers

    def _lines(self, what: str) -> list[str]:
        lines = self.log.read_text("utf-8", errors="replace").splitlines()
        return [line for line in lines if f"riskmap.app {what} " in line]

    def count(self, what: str, session: str | None = None) -> int:
        """Lines logged by app.py: ``run`` (one per script run) or ``load_project``."""
        lines = self._lines(what)
        if session is not None:
            lines = [line for line in lines if line.endswith(f"session={session}")]
        return len(lines)

    def last_session(self) -> str:
        return self._lines("run")[-1].rsplit("session=", 1)[1]

    def last_run_seconds(self) -> float:
        return float(self._lines("run")[-1].split("run ")[1].split()[0])


@pytest.fixture(scope="module")
def server(tmp_path_factory):  # module scope: playwright is closed before other modules
    tmp = tmp_path_factory.mktemp("server")
    layers = tmp / "layers"
    shutil.copytree(ROOT / "layers", layers, ignore=shutil.ignore_patterns(".history", ".cache"))
    secrets = tmp / "secrets.toml"  # a test editor; the repo's .streamlit/secrets.toml is unused
    secrets.write_text(
        f'[editors]\n{EDITOR} = "{hash_password(EDITOR_PW, n=2**12)}"\n', encoding="utf-8"
    )
    port = _free_port()
    log = tmp / "server.log"
    env = {**os.environ, "RISKMAP_LAYERS_DIR": str(layers)}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.headless", "true",
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--secrets.files", str(secrets),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}_stcore/health", timeout=2) as r:  # noqa: S310
                if r.read() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"streamlit did not start:\n{log.read_text('utf-8', errors='replace')}")
        time.sleep(0.3)
    yield Server(url, log, layers)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(TIMINGS, indent=2), "utf-8")
    shutil.copy(log, ARTIFACTS / "server.log")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


REQUESTS: list[str] = []
ERRORS: list[str] = []


def _new_page(browser, viewport) -> Page:
    page = browser.new_page(viewport=viewport, accept_downloads=True, locale="zh-CN")
    page.on("request", lambda r: REQUESTS.append(r.url))
    page.on("pageerror", lambda e: ERRORS.append(str(e)))
    page.set_default_timeout(60_000)  # a shared 2-core CI machine can be slow
    return page


@pytest.fixture(scope="module")
def page(browser):
    p = _new_page(browser, DESKTOP)
    yield p
    p.close()


@pytest.fixture(scope="module")
def project():
    return load_project(Settings())


# ----------------------------------------------------------------------------- helpers


def _map_frame(page: Page) -> Frame:
    """The main map's iframe, once its Leaflet map and riskmap layers exist."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        handle = page.query_selector(MAP_IFRAME)
        frame = handle.content_frame() if handle else None
        try:
            if frame and frame.evaluate(
                "() => !!(window.riskmap && window.riskmap.maps.length"
                " && window.riskmap.maps[0].riskmap.layers)"
            ):
                return frame
        except Exception:  # noqa: BLE001, S110 - frame replaced while we looked
            pass
        time.sleep(0.1)
    pytest.fail("map did not render")
    return None  # unreachable


def _idle(page: Page) -> None:
    """Wait until the script run finished (no 'running' indicator), then a short settle."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        '() => !document.querySelector(\'[data-testid="stStatusWidget"] [data-testid='
        "\"stStatusWidgetRunningIcon\"]') && !document.querySelector('.stSpinner')",
        timeout=60_000,
    )
    page.wait_for_timeout(300)


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


def _open(page: Page, server: Server, query: str = "") -> Frame:
    page.goto(server.url + query)
    page.wait_for_selector(MAP_IFRAME, timeout=60_000)
    _idle(page)
    return _map_frame(page)


def _mark_frame(frame: Frame) -> None:
    frame.evaluate("() => { window.__old = true; }")


def _new_map(page: Page) -> Frame:
    """Wait for the map to be rebuilt (the marked old iframe is gone) and return it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frame = _map_frame(page)
        try:
            if not frame.evaluate("() => window.__old === true"):
                return frame
        except Exception:  # noqa: BLE001, S110
            pass
        time.sleep(0.1)
    pytest.fail("map was not rebuilt")
    return None  # unreachable


EDITOR, EDITOR_PW = "tester", "browser-test-password"


def _sign_in(page: Page) -> None:
    side = page.get_by_test_id("stSidebar")
    side.get_by_label("用户名").fill(EDITOR)
    side.get_by_label("密码").fill(EDITOR_PW)
    side.get_by_role("button", name="登录").click()
    page.get_by_text(f"已登录：{EDITOR}").wait_for(timeout=60_000)
    _idle(page)


# The open tab's panel (the app builds only the open tab: its content comes with a rerun).
_TAB_FILLED_JS = """(name) => {
    const tab = [...document.querySelectorAll('[role=tab]')].find(t => t.innerText.trim() === name);
    const panel = document.querySelector('[role=tabpanel]');
    return !!tab && tab.getAttribute('aria-selected') === 'true' && !!panel
        && !!panel.querySelector('[data-testid="stElementContainer"]');
}"""


def _click_tab(page: Page, name: str) -> None:
    """Open a tab under the map and wait until its content has come (then the run's end)."""
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_function(_TAB_FILLED_JS, arg=name, timeout=60_000)
    _idle(page)


def _choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the sidebar selectbox labelled `label`."""
    box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text=label)
    wanted = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):  # on a loaded machine a click now and then leaves the list closed
        box.locator("input").click()
        try:
            wanted.wait_for(timeout=10_000)
            break
        except Exception:  # noqa: BLE001 - retried, then the click below reports it
            page.keyboard.press("Escape")
    wanted.click()


def _metric(page: Page, label: str) -> str:
    m = page.get_by_test_id("stMetric").filter(has_text=label).first
    return m.get_by_test_id("stMetricValue").inner_text().strip()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _point_xy(page: Page, frame: Frame, layer: str, index: int, zoom: int = 14) -> list[float]:
    """Centre the map on a point and return its position in page pixels."""
    x, y = frame.evaluate(
        """([layer, i, zoom]) => {
            const map = window.riskmap.maps[0];
            const ll = map.riskmap.layers[layer].latlng(i);
            map.setView(ll, zoom, {animate: false});
            const p = map.latLngToContainerPoint(ll);
            return [p.x, p.y];
        }""",
        [layer, index, zoom],
    )
    box = page.query_selector(MAP_IFRAME).bounding_box()
    return [box["x"] + x, box["y"] + y]


# ----------------------------------------------------------------------------- tests


def test_outline_township_names_and_screenshots(page, server, browser, project):
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
    laptop = _new_page(browser, LAPTOP)
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


def _download(page: Page, name: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("button", name=name).click()
    path = info.value.path()
    _idle(page)
    return Path(path).read_bytes()


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
    page.get_by_role("button", name="下载全县各乡镇清单（ZIP）").wait_for(timeout=60_000)
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
