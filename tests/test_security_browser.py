"""Payloads in every query parameter and in data-fed messages: text only, nothing leaves localhost.

A real Streamlit server and Debian's Chromium (as tests/test_browser.py). The layers are a tmp
copy whose geohazard layer name (catalog), one feature's name and uid, and the county name
(``RISKMAP_COUNTY_NAME``) carry the payload; the query string carries it in every parameter.
After each view: no ``<a>``/``<img>`` pointing at the payload's host in the page or its
frames, no KaTeX, the payload visible as literal text, and no request outside localhost.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from riskmap.auth import USER_LOCK_AFTER, hash_password

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium not installed", allow_module_level=True)
pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, sync_playwright  # noqa: E402

MAP_IFRAME = 'iframe[title*="streamlit_folium"]'
HOST = "example.invalid"
LINK = f"[点此](http://{HOST}/a)"
PAYLOAD = (
    f"![p](http://{HOST}/p.png) {LINK} :red[红] $x^2$ "
    f"<img src=http://{HOST}/h.png> <a href=http://{HOST}/b>b</a>"
)
UID = f"GH-[u](http://{HOST}/u)"
EDITOR, EDITOR_PW = "tester", "browser-test-password"
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _free_port()
    log = tmp / "server.log"
    env = {**os.environ, "RISKMAP_LAYERS_DIR": str(layers), "RISKMAP_COUNTY_NAME": PAYLOAD}
    secrets = tmp / "secrets.toml"
    secrets.write_text(f'[editors]\n{EDITOR} = "{hash_password(EDITOR_PW, n=2**12)}"\n', "utf-8")
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.headless", "true",
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--secrets.files", str(secrets),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}/"
    deadline = time.monotonic() + 90
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
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(server):
    del server
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        p = browser.new_page(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
        p.set_default_timeout(60_000)
        p.on("request", lambda r: requests.append(r.url))
        p.requests = requests  # type: ignore[attr-defined]
        yield p
        browser.close()


def _idle(page: Page) -> None:
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')",
        timeout=60_000,
    )
    page.wait_for_timeout(500)


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
    outside = sorted({u for u in page.requests if not u.startswith(  # type: ignore[attr-defined]
        (server, "data:", "blob:", "about:"))})
    assert outside == []


def test_payload_in_every_query_parameter(page, server):
    page.goto(server + "?" + urlencode(dict.fromkeys(PARAMS, PAYLOAD)))
    page.get_by_text("不存在，已显示全县").wait_for()
    _idle(page)
    # the unknown township is named as text, links and images included
    _check(page, server, expect_text=(f"网址中的乡镇“{PAYLOAD}”不存在",))


def test_payload_in_the_search_text(page, server):
    query = f"无此点 {PAYLOAD} a@b.cn www.{HOST}"  # matches nothing: the warning repeats it
    page.goto(server + "?" + urlencode({"q": query}))
    page.get_by_text("没有名称或编号包含").first.wait_for()  # the 无符合条件的点位 notice
    _idle(page)
    _check(page, server, expect_text=(f"没有名称或编号包含“{query}”",))


def test_payload_in_layer_county_and_feature_names(page, server):
    page.goto(server + "?" + urlencode({"layers": "geohazard"}))
    page.wait_for_selector(MAP_IFRAME)
    _idle(page)
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
    _idle(page)
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
