"""What every browser test module shares: a live ``streamlit run app.py`` and the page helpers.

Written once here (it was copied into each browser module). The fixtures built on it live in
``tests/conftest.py``: one Chromium for the whole session (``chromium``), one server on a private
copy of the bundled layers for the modules that only read (``shared_server``). Modules that
write start their own server with `running_server` on their own copy (`copy_layers`).

Browser tests use Debian's Chromium (``/usr/bin/chromium``), never a downloaded one; without it
(or without Playwright) they are skipped, or fail under ``RISKMAP_REQUIRE_BROWSER=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Frame, Page

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
EDITOR, EDITOR_PW = "tester", "browser-test-password"
TIMINGS: dict[str, object] = {}
"""Figures measured by the browser tests; written to ``tests/artifacts/timings.json`` at the end."""
LOCAL = ("data:", "blob:", "about:")
"""URL prefixes a page may request besides its own server (inline and local resources)."""


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (no Chromium, no Playwright), or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not installed"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install -e '.[test]')"
    return None


def require_browser() -> None:
    """Skip the calling module without a browser; fail instead under RISKMAP_REQUIRE_BROWSER=1."""
    reason = browser_missing()
    if reason is None:
        return
    if os.environ.get("RISKMAP_REQUIRE_BROWSER") == "1":
        pytest.fail(f"RISKMAP_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
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


def copy_layers(target: Path, *ignore: str) -> Path:
    """Copy the bundled ``layers/`` to `target` (no history, cache or state) and return it."""
    shutil.copytree(
        ROOT / "layers", target,
        ignore=shutil.ignore_patterns(".history", ".cache", ".state", *ignore),
    )  # fmt: skip
    return target


def write_secrets(path: Path) -> Path:
    """A secrets file with one test editor (the repo's ``.streamlit/secrets.toml`` is unused)."""
    from riskmap.auth import hash_password

    path.write_text(
        f'[editors]\n{EDITOR} = "{hash_password(EDITOR_PW, n=2**12)}"\n', encoding="utf-8"
    )
    return path


@contextmanager
def running_server(
    tmp: Path,
    layers: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    secrets: bool = True,
    name: str = "server",
    start_timeout_s: float = 90,
) -> Iterator[Server]:
    """
    Run ``streamlit run app.py`` on a free port until the block ends.

    Parameters
    ----------
    tmp : Path
        Private folder for the log (``<name>.log``) and the secrets file.
    layers : Path or None
        ``RISKMAP_LAYERS_DIR`` of the server; None: the checkout's own ``layers/`` (read only).
    env : mapping, optional
        Extra environment variables (e.g. ``RISKMAP_BASEMAP``).
    secrets : bool
        Give the server one test editor (`EDITOR`, `EDITOR_PW`).
    name : str
        Stem of the log file.
    start_timeout_s : float
        Seconds to wait for ``/_stcore/health``; the test fails with the log after that.

    Yields
    ------
    Server
    """
    port = free_port()
    log = tmp / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    if layers is not None:
        full_env["RISKMAP_LAYERS_DIR"] = str(layers)
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.headless", "true",
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    if secrets:
        cmd += ["--secrets.files", str(write_secrets(tmp / f"{name}_secrets.toml"))]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}/"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}_stcore/health", timeout=2) as r:  # noqa: S310
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text('utf-8', errors='replace')}")
            time.sleep(0.2)
        yield Server(url, log, layers if layers is not None else ROOT / "layers")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def new_page(
    browser: Browser,
    viewport: Mapping[str, int],
    *,
    requests: list[str] | None = None,
    errors: list[str] | None = None,
    timeout_ms: int = 60_000,
) -> Page:
    """A new page (zh-CN, downloads on); its requests and page errors appended to the lists."""
    page = browser.new_page(viewport=dict(viewport), accept_downloads=True, locale="zh-CN")
    if requests is not None:
        page.on("request", lambda r: requests.append(r.url))
    if errors is not None:
        page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(timeout_ms)  # a shared 2-core CI machine can be slow
    return page


def outside_requests(requests: list[str], server_url: str) -> list[str]:
    """The requested URLs that are neither the server's nor inline/local, sorted."""
    return sorted({u for u in requests if not u.startswith((server_url, *LOCAL))})


_RUNNING = (
    '() => !document.querySelector(\'[data-testid="stStatusWidget"] [data-testid='
    "\"stStatusWidgetRunningIcon\"]') && !document.querySelector('.stSpinner')"
)


def idle(page: Page) -> None:
    """Wait until the script run finished (no 'running' indicator), then a short settle."""
    page.wait_for_timeout(300)
    page.wait_for_function(_RUNNING, timeout=60_000)
    page.wait_for_timeout(300)


def map_frame(page: Page, timeout_s: float = 30) -> Frame:
    """The main map's iframe, once its Leaflet map and riskmap layers exist."""
    deadline = time.monotonic() + timeout_s
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


def open_page(page: Page, server: Server, query: str = "") -> Frame:
    """Go to the app (with `query`, e.g. ``?township=…``) and return its map once rendered."""
    page.goto(server.url + query)
    page.wait_for_selector(MAP_IFRAME, timeout=60_000)
    idle(page)
    return map_frame(page)


def mark_frame(frame: Frame) -> None:
    """Mark the map's document, so that `new_map` can tell a rebuilt map from this one."""
    frame.evaluate("() => { window.__old = true; }")


def new_map(page: Page) -> Frame:
    """Wait for the map to be rebuilt (the marked old iframe is gone) and return it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frame = map_frame(page)
        try:
            if not frame.evaluate("() => window.__old === true"):
                return frame
        except Exception:  # noqa: BLE001, S110
            pass
        time.sleep(0.1)
    pytest.fail("map was not rebuilt")
    return None  # unreachable


def sign_in(page: Page) -> None:
    """Sign the test editor in with the sidebar's form and wait for the page to settle."""
    side = page.get_by_test_id("stSidebar")
    side.get_by_label("用户名").fill(EDITOR)
    side.get_by_label("密码").fill(EDITOR_PW)
    side.get_by_role("button", name="登录").click()
    page.get_by_text(f"已登录：{EDITOR}").wait_for(timeout=60_000)
    idle(page)


# The open tab's panel (the app builds only the open tab: its content comes with a rerun).
_TAB_FILLED_JS = """(name) => {
    const tab = [...document.querySelectorAll('[role=tab]')].find(t => t.innerText.trim() === name);
    const panel = document.querySelector('[role=tabpanel]');
    return !!tab && tab.getAttribute('aria-selected') === 'true' && !!panel
        && !!panel.querySelector('[data-testid="stElementContainer"]');
}"""


def click_tab(page: Page, name: str) -> None:
    """Open a tab under the map and wait until its content has come (then the run's end)."""
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_function(_TAB_FILLED_JS, arg=name, timeout=60_000)
    idle(page)


def choose(page: Page, label: str, option: str) -> None:
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


def metric(page: Page, label: str) -> str:
    """The value of the first metric whose label contains `label`."""
    m = page.get_by_test_id("stMetric").filter(has_text=label).first
    return m.get_by_test_id("stMetricValue").inner_text().strip()


def shot(page: Page, name: str) -> None:
    """Screenshot to ``tests/artifacts/<name>.png`` (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def point_xy(page: Page, frame: Frame, layer: str, index: int, zoom: int = 14) -> list[float]:
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


def download(page: Page, name: str) -> bytes:
    """Click the download button `name` and return the downloaded bytes."""
    with page.expect_download() as info:
        page.get_by_role("button", name=name).click()
    path = info.value.path()
    idle(page)
    return Path(path).read_bytes()
