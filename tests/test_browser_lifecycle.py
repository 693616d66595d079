"""Status change in a real browser (issue 11): an editor closes a point 治理中 → 已销号 with date
and reason, sees the 清零 figures and the map change, undoes it; a viewer sees no control.

The session's browser and the helpers of `tests/browser_support.py`; its own server (a private
copy of the layers).
"""

from __future__ import annotations

import json

import pytest

from tests.browser_support import (
    DESKTOP,
    click_tab,
    copy_layers,
    idle,
    map_frame,
    mark_frame,
    new_map,
    new_page,
    open_page,
    point_xy,
    require_browser,
    running_server,
    shot,
    sign_in,
)

pytestmark = pytest.mark.browser
require_browser()
from playwright.sync_api import expect  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's own server: it changes a status and undoes it, on its own layers copy."""
    tmp = tmp_path_factory.mktemp("server")
    with running_server(tmp, copy_layers(tmp / "layers")) as srv:
        yield srv


@pytest.fixture(scope="module")
def page(chromium):
    p = new_page(chromium, DESKTOP)
    yield p
    p.close()


INDEX_OF = """([layer, uid]) => {
    const d = window.riskmap.maps[0].riskmap.layers[layer].data;
    for (let i = 0; i < d.n; i++) {
        if (String(window.riskmap.value(d, d.key, i)) === uid) return i;
    }
    return -1;
}"""
MARKS = """() => {
    const d = window.riskmap.maps[0].riskmap.layers.geohazard.data;
    return [d.n, d.st ? d.st.filter(v => v === 1).length : 0];
}"""


def _shown_metric(page, label: str, expected: str) -> str:
    """The visible metric's value, once it equals `expected` (or after 60 s: what it shows)."""
    m = page.get_by_test_id("stMetric").filter(has_text=label).locator("visible=true").first
    value = m.get_by_test_id("stMetricValue")
    expect(value).to_have_text(expected, timeout=60_000)
    return value.inner_text().strip()


def _features(server) -> list[dict]:
    return json.loads((server.layers / "geohazard.geojson").read_text("utf-8"))["features"]


def _choose_main(page, label: str, option: str) -> None:
    """Pick `option` in the main-area selectbox labelled `label` (type to filter, then click)."""
    box = page.get_by_test_id("stMain").get_by_test_id("stSelectbox").filter(has_text=label)
    field = box.locator("input")
    field.click()
    field.fill(option[:2])
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(300)


def test_editor_closes_a_point_sees_figures_and_map_change_then_undoes(  # noqa: PLR0915 - one scenario
    page, server
):
    feats = _features(server)
    target = next(f["properties"] for f in feats if f["properties"]["status"] == "治理中")
    uid = target["uid"]
    active = sum(1 for f in feats if f["properties"]["status"] != "已销号")
    cleared = len(feats) - active
    every = [
        f
        for lid in ("geohazard", "waterlogging", "bridge", "firezone")
        for f in json.loads((server.layers / f"{lid}.geojson").read_text("utf-8"))["features"]
    ]
    county_active = sum(1 for f in every if f["properties"]["status"] != "已销号")
    county_cleared = len(every) - county_active  # all cleared on 2026-06-30 (this year)
    frame = open_page(page, server, "?layers=geohazard")
    n_before, _ = frame.evaluate(MARKS)
    assert n_before == active
    # a viewer: select the point on the map; no status control appears
    index = frame.evaluate(INDEX_OF, ["geohazard", uid])
    assert index >= 0
    x, y = point_xy(page, frame, "geohazard", index)
    page.mouse.click(x, y)
    page.get_by_text(f"已选点位：地质灾害隐患点 · {target['name']}（{uid}）").wait_for()
    idle(page)
    assert page.get_by_text("变更状态（当前").count() == 0
    assert page.get_by_role("button", name="确认变更状态").count() == 0
    # an editor: the same selection now has the control
    sign_in(page)
    page.get_by_text(f"已选点位：地质灾害隐患点 · {target['name']}（{uid}）").wait_for()
    page.get_by_text("变更状态（当前：治理中）").click()
    _choose_main(page, "新状态", "已销号（销号）")
    _choose_main(page, "销号原因", "工程治理")
    page.get_by_label("备注（可选）").fill("浏览器测试")
    page.get_by_role("button", name="确认变更状态").click()
    page.get_by_text(f"已变更：地质灾害隐患点 {uid} 治理中 → 已销号").wait_for(timeout=60_000)
    idle(page)
    props = {f["properties"]["uid"]: f["properties"] for f in _features(server)}
    assert props[uid]["status"] == "已销号"
    assert props[uid]["cleared_reason"] == "工程治理"
    log = (server.layers / ".history" / "geohazard" / "log.jsonl").read_text("utf-8")
    entry = json.loads(log.splitlines()[-1])
    assert (entry["action"], entry["user"], entry["uid"], entry["note"]) == (
        "status", "tester", uid, "浏览器测试",
    )  # fmt: skip
    # 清零 figures
    click_tab(page, "清零进度")
    want = f"{county_active - 1} 处"
    assert _shown_metric(page, "在册隐患", want) == want
    want = f"{county_cleared + 1} 处"
    assert _shown_metric(page, "今年销号", want) == want
    shot(page, "desktop_progress")
    # the map: the point is hidden (cleared points hidden by default) …
    frame = map_frame(page)
    assert frame.evaluate(MARKS)[0] == active - 1
    assert frame.evaluate(INDEX_OF, ["geohazard", uid]) == -1
    # … and shows faded with the toggle
    mark_frame(frame)
    page.get_by_test_id("stSidebar").get_by_text("显示已销号点位（淡显）").click()
    frame = new_map(page)
    idle(page)
    assert frame.evaluate(MARKS) == [len(feats), cleared + 1]
    shot(page, "desktop_cleared_faded")
    page.get_by_text(f"已选点位：地质灾害隐患点 · {target['name']}（{uid}）").wait_for()
    # undo
    mark_frame(frame)
    page.get_by_text("变更状态（当前：已销号）").click()
    page.get_by_role("button", name="撤销最近一次状态变更").click()
    page.get_by_text(f"已撤销：地质灾害隐患点 {uid} 恢复为 治理中").wait_for(timeout=60_000)
    frame = new_map(page)
    idle(page)
    props = {f["properties"]["uid"]: f["properties"] for f in _features(server)}
    assert props[uid]["status"] == "治理中"
    click_tab(page, "清零进度")
    want = f"{county_active} 处"
    assert _shown_metric(page, "在册隐患", want) == want
    frame = map_frame(page)
    assert frame.evaluate(MARKS) == [len(feats), cleared]
