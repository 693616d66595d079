"""Case 10: the app as the user waits for it, in headless Chromium against a live server.

A ``streamlit run app.py`` server is started with ``RISKMAP_LAYERS_DIR`` pointing at a temp
copy of the layers (the bundled ones, or with the geohazard layer replaced by ``n`` generated
points, `bench/gen.py`), and driven with Playwright and Debian's ``/usr/bin/chromium``
(never a downloaded browser) at 1366×768, the laptop size of issue 17.

Definitions (every time is wall-clock ``time.perf_counter`` in the bench process):

* **map ready**: the map component's iframe (``iframe[title*="streamlit_folium"]``) holds a
  Leaflet map with riskmap's layers (``window.riskmap.maps[0].riskmap.layers`` exists in the
  iframe, the condition ``tests/test_browser.py`` waits for) **and** Streamlit's status widget
  shows no running icon and no spinner is on the page. Polled every 20 ms from Python.
* **page open → map ready**: from ``page.goto(url)`` (or ``page.reload()``) to map ready.
  *cold*: the first page of a freshly started server (it loads the project, the GeoParquet
  cache already filled by a previous server on the same layers folder: what a user sees
  after the app was restarted); *new page*: a new browser page on a warm server;
  *reload*: ``page.reload()`` of an open page, warm server.
* **filter change → settled**: from just before the click that picks a new township in the
  sidebar select box ``乡镇/街道`` to the moment when (1) the server has logged a new
  ``riskmap.app run`` line for the run (``app.py`` logs it at the end of ``main()``),
  (2) map ready holds, and (3) the map iframe is a new one (the old iframe's window was
  marked before the click; a resent map replaces it) — or, if the server sent no new map,
  1 s after (1) and (2) with the old map still shown (then the wait is the time to (1)+(2)).
* **first visit / return**: after one warm-up change, the timed changes go to townships not
  shown before by this server (the app filters, counts and builds the map for them: its
  caches miss), then back to townships already shown (its caches hit; the browser may still
  be sent the map again, its message cache keeps only the last runs' messages).
* **ws bytes**: the bytes of every websocket frame the browser receives from just before the
  click to settled (Playwright ``websocket`` → ``framereceived``): Streamlit's protobuf
  deltas, the map component's HTML inside them. Compared with the map's HTML size it shows
  whether the map payload is resent.

Raises
------
RuntimeError
    If the server does not start within 120 s or the map is not ready within 120 s.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import gen
from bench.timing import fmt_s, print_table

if TYPE_CHECKING:
    from riskmap.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 768}
MAP_IFRAME = 'iframe[title*="streamlit_folium"]'
READY_JS = """() => {
    const f = document.querySelector('iframe[title*="streamlit_folium"]');
    const w = f && f.contentWindow;
    let ok = false;
    try { ok = !!(w && w.riskmap && w.riskmap.maps.length && w.riskmap.maps[0].riskmap.layers); }
    catch (e) { ok = false; }
    const running = document.querySelector(
        '[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]');
    return [ok && !running && !document.querySelector('.stSpinner'),
            !!(w && w.__old === true)];
}"""
HTML_SIZE_JS = """() => {
    const f = document.querySelector('iframe[title*="streamlit_folium"]');
    return new Blob([f.contentDocument.documentElement.outerHTML]).size;
}"""
TIMEOUT_S = 120.0


def layers_dir(n: int | None, settings: Settings, work: Path) -> Path:
    """A temp layers folder: the bundled catalog and layers, geohazard replaced by `n` points.

    ``n=None`` keeps the bundled geohazard layer.
    """
    layers = work / f"browser_layers_{n or 'bundled'}"
    shutil.copytree(
        settings.layers_dir, layers, ignore=shutil.ignore_patterns(".history", ".cache")
    )
    if n is not None:
        gen.write_geojson(gen.geohazard_layer(n, settings), layers / "geohazard.geojson")
    return layers


class _Server:
    """A ``streamlit run app.py`` subprocess on a free port; its log counts script runs."""

    def __init__(self, layers: Path, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://localhost:{port}/"
        self.log = log
        env = {**os.environ, "RISKMAP_LAYERS_DIR": str(layers)}
        cmd = [
            sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
            "--server.port", str(port), "--server.headless", "true",
            "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
        ]  # fmt: skip
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}_stcore/health", timeout=2) as r:  # noqa: S310
                    if r.read() == b"ok":
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                msg = f"streamlit did not start:\n{log.read_text('utf-8', errors='replace')}"
                raise RuntimeError(msg)
            time.sleep(0.2)

    def runs(self) -> int:
        text = self.log.read_text("utf-8", errors="replace")
        return text.count("riskmap.app run ")

    def run_seconds(self) -> list[float]:
        """Server-side script run times, as ``app.py`` logs them (``run 0.123 s``)."""
        text = self.log.read_text("utf-8", errors="replace")
        return [float(line.split("riskmap.app run ")[1].split()[0])
                for line in text.splitlines() if "riskmap.app run " in line]  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _wait_ready(page: Any, started: float, *, want_new: bool = False, runs_after: int = -1,  # noqa: ANN401
                server: _Server | None = None) -> tuple[float, bool]:  # fmt: skip
    """Poll until map ready (and a new run logged / a new map); return (seconds, map_resent)."""
    deadline = started + TIMEOUT_S
    ready_since = None
    while time.perf_counter() < deadline:
        try:
            ok, old = page.evaluate(READY_JS)
        except Exception:  # noqa: BLE001 - page navigating
            ok, old = False, False
        now = time.perf_counter()
        ran = server is None or server.runs() > runs_after
        if ok and ran:
            if not want_new or not old:
                return now - started, not old
            ready_since = ready_since or now
            if now - ready_since >= 1.0:  # the map was not resent: settled when (1)+(2) held
                return ready_since - started, False
        else:
            ready_since = None
        time.sleep(0.02)
    raise RuntimeError("the map was not ready within 120 s")


def _choose_township(page: Any, name: str) -> None:  # noqa: ANN401
    box = (
        page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="乡镇/街道")
    )
    wanted = page.get_by_role("option", name=name, exact=True)
    for _ in range(3):
        box.locator("input").click()
        try:
            wanted.wait_for(timeout=10_000)
            break
        except Exception:  # noqa: BLE001 - retried
            page.keyboard.press("Escape")
    wanted.click()


def _open_times(browser: Any, server: _Server, repeat: int) -> dict[str, Any]:  # noqa: ANN401
    """Median new-page and reload times on a warm server."""
    new, reload = [], []
    for _ in range(repeat):
        page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
        t0 = time.perf_counter()
        page.goto(server.url)
        new.append(_wait_ready(page, t0)[0])
        page.wait_for_timeout(500)
        t0 = time.perf_counter()
        page.reload()
        reload.append(_wait_ready(page, t0)[0])
        page.close()
    return {"new_page_s": statistics.median(new), "reload_s": statistics.median(reload),
            "new_page_all_s": new, "reload_all_s": reload}  # fmt: skip


def _filter_times(browser: Any, server: _Server, towns: list[str], repeat: int) -> dict[str, Any]:  # noqa: ANN401
    """Median township-change → settled time and websocket bytes received for it.

    The first change is a warm-up; the next `repeat` go to townships not shown before in this
    server (the app computes and caches their filter, figures and map: *first visit*), then
    `repeat` more go back to townships already shown (cached: *return*).
    """
    page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
    received = [0]

    def on_ws(ws: Any) -> None:  # noqa: ANN401
        ws.on("framereceived", lambda payload: received.__setitem__(0, received[0] + len(payload)))

    page.on("websocket", on_ws)
    t0 = time.perf_counter()
    page.goto(server.url)
    _wait_ready(page, t0)
    page.wait_for_timeout(1000)
    html_bytes = page.evaluate(HTML_SIZE_JS)
    times, sizes, resent, after, server_s = [], [], [], [], []
    back_times, back_sizes, back_resent, back_server_s = [], [], [], []
    visits = [*towns[: repeat + 1], *towns[1 : repeat + 1]]
    for k, town in enumerate(visits):  # the first change is a warm-up
        page.evaluate(
            "() => { document.querySelector('iframe[title*=\"streamlit_folium\"]')"
            ".contentWindow.__old = true; }"
        )
        runs = server.runs()
        received[0] = 0
        t0 = time.perf_counter()
        _choose_township(page, town)
        sec, new_map = _wait_ready(page, t0, want_new=True, runs_after=runs, server=server)
        page.wait_for_timeout(300)  # late frames of the same run
        if 0 < k <= repeat:
            times.append(sec)
            sizes.append(received[0])
            resent.append(new_map)
            after.append(page.evaluate(HTML_SIZE_JS))
            server_s.append(sum(server.run_seconds()[runs:]))
        elif k > repeat:
            back_times.append(sec)
            back_sizes.append(received[0])
            back_resent.append(new_map)
            back_server_s.append(sum(server.run_seconds()[runs:]))
        page.wait_for_timeout(700)
    page.close()
    return {
        "township_change_s": statistics.median(times),
        "township_change_all_s": times,
        "township_change_ws_bytes": int(statistics.median(sizes)),
        "map_resent": all(resent),
        "township_change_server_s": statistics.median(server_s),
        "map_html_bytes": int(html_bytes),
        "map_html_after_bytes": int(statistics.median(after)),
        "township_return_s": statistics.median(back_times),
        "township_return_all_s": back_times,
        "township_return_ws_bytes": int(statistics.median(back_sizes)),
        "township_return_server_s": statistics.median(back_server_s),
        "township_return_map_resent": any(back_resent),
    }


def run(
    n: int, repeat: int, settings: Settings, work: Path, *, cold_starts: int = 3
) -> dict[str, Any]:
    """Page open → map ready on the bundled data; township change → settled at `n` points."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    res: dict[str, Any] = {"n": n, "viewport": f"{VIEWPORT['width']}x{VIEWPORT['height']}"}
    # distinct townships: each timed change is a first visit (see `_filter_times`)
    towns = ["巴山镇", "庙坝镇", "葛城街道", "高观镇", "明通镇", "修齐镇", "东安镇", "咸宜镇"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for label, count in (("bundled", None), (f"{n}", n)):
                layers = layers_dir(count, settings, work)
                cold = []
                for i in range(cold_starts if count is None else 1):
                    server = _Server(layers, work / f"server_{label}_{i}.log")
                    try:
                        page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
                        t0 = time.perf_counter()
                        page.goto(server.url)
                        cold.append(_wait_ready(page, t0)[0])
                        page.close()
                        if i == 0:
                            opened = _open_times(browser, server, repeat)
                            if count is not None:
                                opened |= _filter_times(browser, server, towns, repeat)
                    finally:
                        server.stop()
                res[label] = {"cold_s": statistics.median(cold), "cold_all_s": cold, **opened}
        finally:
            browser.close()
    b, big = res["bundled"], res[f"{n}"]
    print_table(
        "10. app in Chromium 1366×768 (median)",
        [
            {
                "data": label,
                "cold open": fmt_s(r["cold_s"]),
                "new page": fmt_s(r["new_page_s"]),
                "reload": fmt_s(r["reload_s"]),
                "township change": fmt_s(r.get("township_change_s")),
                "return": fmt_s(r.get("township_return_s")),
                "ws MB": f"{r['township_change_ws_bytes'] / 1e6:.2f}"
                if "township_change_ws_bytes" in r
                else "",
                "map resent": str(r.get("map_resent", "")),
            }
            for label, r in (("bundled", b), (f"{n:,} pts", big))
        ],
    )
    return res
