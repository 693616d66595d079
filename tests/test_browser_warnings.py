"""The 预警 tab in headless Chromium (Debian's) against a live server, fully offline.

Draw a polygon with the vendored Leaflet.draw, see the affected points ringed and listed,
issue the warning, record two responses (叫应率 updates), download the call list and read it
back. The server's layers are a tmp copy; every request must stay on localhost.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import pytest

from tests.browser_support import (
    ARTIFACTS,
    EDITOR,
    MAP_IFRAME,
    copy_layers,
    idle,
    new_page,
    outside_requests,
    require_browser,
    running_server,
    sign_in,
)
from tests.test_alerts import hand_affected

pytestmark = pytest.mark.browser
require_browser()
from playwright.sync_api import Frame, Page, expect  # noqa: E402

SEAT = (108.66073, 31.94856)  # 葛城街道's seat (data/townships.csv), the county town


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's own server: it issues a warning, on its own layers copy (none issued yet)."""
    tmp = tmp_path_factory.mktemp("server")
    layers = copy_layers(tmp / "layers")
    (layers / "records" / "warnings.json").unlink(missing_ok=True)
    with running_server(tmp, layers) as srv:
        yield srv.url, layers
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(srv.log, ARTIFACTS / "server_warnings.log")


@pytest.fixture(scope="module")
def page(chromium):
    requests: list[str] = []
    errors: list[str] = []
    # 8 engineers share 2 cores: runs can be slow
    p = new_page(chromium, {"width": 1600, "height": 1000}, requests=requests, errors=errors,
                 timeout_ms=120_000)
    p.requests, p.errors = requests, errors
    yield p
    p.close()


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
    idle(page)
    sign_in(page)
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
    # the form of the previous run may still be on screen next to the new one: wait for one
    expect(field).to_have_count(1)
    field.click()
    field.fill(uid)  # type to filter: the option list is then short and surely open
    page.get_by_role("option").filter(has_text=uid).first.click()
    form.get_by_test_id("stRadio").get_by_text(outcome, exact=True).click()
    form.get_by_label("已转移人数").fill(moved)
    form.get_by_role("button", name="登记").click()
    page.get_by_text(f"已登记 {uid}").wait_for()
    idle(page)


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
    idle(page)
    _draw_box(page, *SEAT, 0.012)
    page.get_by_text("范围内点位").wait_for()
    idle(page)
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
    idle(page)
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
    assert outside_requests(page.requests, url) == []
    assert page.errors == []
