"""Payloads in every query parameter and in data-fed messages: text only, nothing leaves localhost.

A real Streamlit server and Debian's Chromium (as tests/test_browser.py). The layers are a tmp
copy whose geohazard layer name (catalog), one feature's name and uid, and the county name
(``RISKMAP_COUNTY_NAME``) carry the payload; the query string carries it in every parameter.
After each view: no ``<a>``/``<img>`` pointing at the payload's host in the page or its
frames, no KaTeX, the payload visible as literal text, and no request outside localhost.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest

from riskmap.auth import USER_LOCK_AFTER
from tests.browser_support import (
    EDITOR,
    EDITOR_PW,
    MAP_IFRAME,
    ROOT,
    idle,
    new_page,
    outside_requests,
    require_browser,
    running_server,
)

pytestmark = pytest.mark.browser
require_browser()
from playwright.sync_api import Page  # noqa: E402

HOST = "example.invalid"
LINK = f"[点此](http://{HOST}/a)"
PAYLOAD = (
    f"![p](http://{HOST}/p.png) {LINK} :red[红] $x^2$ "
    f"<img src=http://{HOST}/h.png> <a href=http://{HOST}/b>b</a>"
)
UID = f"GH-[u](http://{HOST}/u)"
PARAMS = ("township", "layers", "statuses", "q", "choropleth")

FIND_OUTSIDE = """(host) => {
    const out = [];
    for (const el of document.querySelectorAll('a[href], img[src], [srcset], [style*="url("]')) {
        const ref = el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('srcset')
                    || el.getAttribute('style');
        if (ref && ref.includes(host)) out.push(el.outerHTML.slice(0, 200));
    }
    return {refs: out, katex: document.querySelectorAll('.katex').length,
            text: document.body ? document.body.innerText : ''};
}"""


def _evil_layers(target: Path) -> None:
    shutil.copytree(ROOT / "layers", target,
                    ignore=shutil.ignore_patterns(".history", ".cache", ".state"))
    catalog = target / "catalog.toml"
    text = catalog.read_text(encoding="utf-8")
    text = text.replace('name = "地质灾害隐患点"', f'name = "地灾 {PAYLOAD}"', 1)
    catalog.write_text(text, encoding="utf-8")
    path = target / "geohazard.geojson"
    data = json.loads(path.read_text(encoding="utf-8"))
    props = data["features"][-1]["properties"]  # 监测中: shown by default
    props["name"], props["uid"] = f"斜坡 {PAYLOAD}", UID
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evil")
    layers = tmp / "layers"
    _evil_layers(layers)
    with running_server(tmp, layers, env={"RISKMAP_COUNTY_NAME": PAYLOAD}) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def page(chromium, server):
    del server
    requests: list[str] = []
    p = new_page(chromium, {"width": 1600, "height": 1000}, requests=requests)
    p.requests = requests  # type: ignore[attr-defined]
    yield p
    p.close()


def _check(page: Page, server: str, *, expect_text: tuple[str, ...]) -> None:
    texts = []
    for frame in page.frames:
        found = frame.evaluate(FIND_OUTSIDE, HOST)
        assert found["refs"] == [], found["refs"]
        assert found["katex"] == 0
        texts.append(found["text"])
    shown = "\n".join(texts).replace("\u2060", "")  # md's invisible word joiner
    for literal in expect_text:
        assert literal in shown, literal
    assert outside_requests(page.requests, server) == []  # type: ignore[attr-defined]


def test_payload_in_every_query_parameter(page, server):
    page.goto(server + "?" + urlencode(dict.fromkeys(PARAMS, PAYLOAD)))
    page.get_by_text("不存在，已显示全县").wait_for()
    idle(page)
    # the unknown township is named as text, links and images included
    _check(page, server, expect_text=(f"网址中的乡镇“{PAYLOAD}”不存在",))


def test_payload_in_the_search_text(page, server):
    query = f"无此点 {PAYLOAD} a@b.cn www.{HOST}"  # matches nothing: the warning repeats it
    page.goto(server + "?" + urlencode({"q": query}))
    page.get_by_text("没有名称或编号包含").first.wait_for()  # the 无符合条件的点位 notice
    idle(page)
    _check(page, server, expect_text=(f"没有名称或编号包含“{query}”",))


def test_payload_in_layer_county_and_feature_names(page, server):
    page.goto(server + "?" + urlencode({"layers": "geohazard"}))
    page.wait_for_selector(MAP_IFRAME)
    idle(page)
    handle = page.query_selector(MAP_IFRAME)
    frame = handle.content_frame()
    frame.wait_for_function("() => window.riskmap && window.riskmap.maps.length")
    n = frame.evaluate("() => window.riskmap.maps[0].riskmap.layers.geohazard.data.n")
    x, y = frame.evaluate(
        """(i) => { const map = window.riskmap.maps[0];
            const ll = map.riskmap.layers.geohazard.latlng(i);
            map.setView(ll, 15, {animate: false});
            const p = map.latLngToContainerPoint(ll); return [p.x, p.y]; }""",
        n - 1,
    )
    box = handle.bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.get_by_text("已选点位：").first.wait_for()
    idle(page)
    _check(page, server, expect_text=(
        f"{PAYLOAD}安全风险“一张图”",  # the title (county name)
        f"已选点位：地灾 {PAYLOAD} · 斜坡 {PAYLOAD}（{UID}）",  # the selected-point panel
    ))


def test_sign_in_pause_is_shared_by_browser_sessions(page, server):
    """Wrong passwords in one browser session pause the name in a fresh one (new cookies)."""
    browser = page.context.browser

    def attempt(password: str) -> str:
        context = browser.new_context(locale="zh-CN")  # a new session every time
        try:
            p = context.new_page()
            p.set_default_timeout(60_000)
            p.goto(server)
            side = p.get_by_test_id("stSidebar")
            side.get_by_label("用户名").fill(EDITOR)
            side.get_by_label("密码").fill(password)
            side.get_by_role("button", name="登录").click()
            alert = side.get_by_test_id("stAlert").or_(side.get_by_text("已登录："))
            alert.first.wait_for()
            return side.inner_text()
        finally:
            context.close()

    for _ in range(USER_LOCK_AFTER):
        assert "用户名或密码错误" in attempt("wrong password!")
    shown = attempt(EDITOR_PW)
    assert "登录失败次数过多" in shown
    assert "已登录" not in shown
