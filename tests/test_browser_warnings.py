"""The 预警 tab in headless Chromium (Debian's) against a live server, fully offline.

Draw a polygon with the vendored Leaflet.draw, see the affected points ringed and listed,
issue the warning, record two responses (叫应率 updates), download the call list and read it
back. The server's layers are a tmp copy; every request must stay on localhost.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from riskmap.auth import hash_password
from tests.test_alerts import hand_affected

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
MAP_IFRAME = 'iframe[title*="streamlit_folium"]'
EDITOR, EDITOR_PW = "tester", "browser-test-password"
SEAT = (108.66073, 31.94856)  # 葛城街道's seat (data/townships.csv), the county town

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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    layers = tmp / "layers"
    shutil.copytree(ROOT / "layers", layers, ignore=shutil.ignore_patterns(".history", ".cache"))
    (layers / "records" / "warnings.json").unlink(missing_ok=True)
    secrets = tmp / "secrets.toml"
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
    yield url, layers
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(log, ARTIFACTS / "server_warnings.log")


@pytest.fixture(scope="module")
def page():
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        p = browser.new_page(
            viewport={"width": 1600, "height": 1000}, accept_downloads=True, locale="zh-CN"
        )
        p.on("request", lambda r: requests.append(r.url))
        p.on("pageerror", lambda e: errors.append(str(e)))
        p.set_default_timeout(120_000)  # 8 engineers share 2 cores: runs can be slow
        p.requests, p.errors = requests, errors
        yield p
        browser.close()


def _idle(page: Page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function(
        '() => !document.querySelector(\'[data-testid="stStatusWidget"] [data-testid='
        "\"stStatusWidgetRunningIcon\"]') && !document.querySelector('.stSpinner')",
        timeout=60_000,
    )
    page.wait_for_timeout(300)


def _draw_frame(page: Page, *, with_rings: bool = False) -> Frame:
    """The warning map's iframe (the one with the Leaflet.draw toolbar), once ready."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for handle in page.query_selector_all(MAP_IFRAME):
            frame = handle.content_frame()
            try:
                if frame and frame.evaluate(
                    "() => !!(window.riskmap && window.riskmap.maps.length"
                    " && document.querySelector('.leaflet-draw-draw-polygon'))"
                    + (" && document.querySelectorAll('path.riskmap-affected').length > 0"
                       if with_rings else "")
                ):  # fmt: skip
                    return frame
            except Exception:  # noqa: BLE001, S110 - frame replaced while we looked
                pass
        time.sleep(0.2)
    pytest.fail("warning map with the drawing tool did not render")
    return None  # unreachable


def _metric(page: Page, label: str) -> str:
    m = page.get_by_test_id("stMetric").filter(has_text=label).first
    return m.get_by_test_id("stMetricValue").inner_text().strip()


def _sign_in_to_warnings(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(MAP_IFRAME, timeout=60_000)
    _idle(page)
    side = page.get_by_test_id("stSidebar")
    side.get_by_label("用户名").fill(EDITOR)
    side.get_by_label("密码").fill(EDITOR_PW)
    side.get_by_role("button", name="登录").click()
    page.get_by_text(f"已登录：{EDITOR}").wait_for()
    _idle(page)
    page.get_by_role("tab", name="预警", exact=True).click()


def _draw_box(page: Page, lon: float, lat: float, d: float) -> None:
    """Draw a (lon ± d, lat ± d) square with the polygon tool, clicking like a user."""
    frame = _draw_frame(page)
    handle = next(h for h in page.query_selector_all(MAP_IFRAME) if h.content_frame() == frame)
    handle.scroll_into_view_if_needed()
    corners = frame.evaluate(
        """([lon, lat, d]) => {
            const map = window.riskmap.maps[0];
            map.setView([lat, lon], 13, {animate: false});
            const lonlat = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d],
                            [lon - d, lat + d]];
            return lonlat.map(([x, y]) => {
                const p = map.latLngToContainerPoint([y, x]);
                return [p.x, p.y];
            });
        }""",
        [lon, lat, d],
    )
    frame.click(".leaflet-draw-draw-polygon")
    box = handle.bounding_box()
    for x, y in [*corners, corners[0]]:  # clicking the first vertex again closes the polygon
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.wait_for_timeout(250)


def _respond(page: Page, uid: str, outcome: str, moved: str) -> None:
    form = page.get_by_test_id("stForm")
    field = form.get_by_test_id("stSelectbox").locator("input")
    field.click()
    field.fill(uid)  # type to filter: the option list is then short and surely open
    page.get_by_role("option").filter(has_text=uid).first.click()
    form.get_by_test_id("stRadio").get_by_text(outcome, exact=True).click()
    form.get_by_label("已转移人数").fill(moved)
    form.get_by_role("button", name="登记").click()
    page.get_by_text(f"已登记 {uid}").wait_for()
    _idle(page)


def _download_cells(page: Page, name: str) -> list[str]:
    import openpyxl

    with page.expect_download() as info:
        page.get_by_role("button", name=name).click()
    data = Path(info.value.path()).read_bytes()
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    return [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]


def test_draw_issue_respond_download(page, server):
    from shapely.geometry import shape

    url, layers = server
    _sign_in_to_warnings(page, url)
    page.get_by_text("在地图上绘制", exact=True).click()
    _idle(page)
    _draw_box(page, *SEAT, 0.012)
    page.get_by_text("范围内点位").wait_for()
    _idle(page)
    text = page.get_by_text("范围内点位").first.inner_text()
    reported = int(text.split("范围内点位")[1].split("个")[0])
    assert reported > 0
    frame = _draw_frame(page, with_rings=True)
    rings = frame.evaluate("() => document.querySelectorAll('path.riskmap-affected').length")
    assert rings == reported  # every affected feature is ringed on the map
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "warning_drawn.png"))
    page.get_by_role("button", name="发布预警").click()
    page.get_by_text("已发布").first.wait_for()
    _idle(page)
    (record,) = json.loads((layers / "records" / "warnings.json").read_text("utf-8"))
    assert (record["area"]["kind"], record["created_by"]) == ("drawn", EDITOR)
    # the stored list is exactly what a hand computation finds in the drawn polygon
    hand = hand_affected(shape(record["area"]["geometry"]))
    assert {p["uid"] for p in record["points"]} == set(hand)
    assert len(record["points"]) == reported
    page.get_by_text("叫应表").first.wait_for()
    assert _metric(page, "叫应率") == "0%"
    uids = [p["uid"] for p in record["points"]]
    _respond(page, uids[0], "已叫应", "2")
    _respond(page, uids[1], "无法联系", "0")
    value = page.get_by_test_id("stMetric").filter(has_text="叫应率")
    expect(value.get_by_test_id("stMetricValue")).to_have_text(f"{100 / len(uids):.0f}%")
    assert _metric(page, "无法联系") == "1"
    page.screenshot(path=str(ARTIFACTS / "warning_responses.png"))
    # export the call list and read it back
    cells = _download_cells(page, "下载叫应表（Excel）")
    assert record["id"] in cells[0]
    assert set(uids) <= set(cells)
    assert any("叫应率 " in c for c in cells)
    # offline: Leaflet.draw came from this server, nothing from outside
    assert any(u.endswith("/leaflet.draw.js") and u.startswith(url) for u in page.requests)
    allowed = (url, "data:", "blob:", "about:")
    assert sorted({u for u in page.requests if not u.startswith(allowed)}) == []
    assert page.errors == []
