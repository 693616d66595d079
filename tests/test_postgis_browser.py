"""Two app servers on one PostGIS database see each other's edits (headless Chromium).

Two ``streamlit run app.py`` processes on different ports, both with the same
``RISKMAP_DATABASE_URL``. An editor imports a survey on server B; the page on server A shows
the new point count on its next rerun; an undo on A shows on B. Browser-level (Playwright +
Debian Chromium), as tests/test_browser.py. On failure both pages' screenshots and both
servers' logs are kept in ``tests/artifacts/postgis_*``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pytest

from riskmap.auth import hash_password
from riskmap.settings import Settings
from riskmap.store.files import FileStore
from tests.test_browser import (
    ARGS,
    ARTIFACTS,
    CASES,
    CHROMIUM,
    DESKTOP,
    EDITOR,
    EDITOR_PW,
    MAP_IFRAME,
    Server,
    _click_tab,
    _free_port,
    _idle,
    _metric,
    _sign_in,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent


def _wait_map(page, server: Server) -> None:
    """Wait for the page's map, up to 3 min (two servers on a loaded 2-core box)."""
    page.wait_for_selector(MAP_IFRAME, timeout=180_000)
    _idle(page)
    _no_exception(page, server)


def _no_exception(page, server: Server) -> None:
    """Fail with the app's own traceback when the page shows an uncaught exception.

    An uncaught exception in one tab ends the script run, so every tab drawn after it is
    missing (how the import tab lost its uploader to the 清零进度 tab's KeyError, #14).
    """
    shown = page.get_by_test_id("stException")
    if shown.count():
        pytest.fail(f"app error on {server.url}:\n{shown.first.inner_text()}")


class _Proc:
    """A ``streamlit run app.py`` being started: `wait` until it answers its health check."""

    def __init__(self, tmp: Path, layers: Path, database_url: str, name: str) -> None:
        secrets = tmp / f"secrets_{name}.toml"
        secrets.write_text(
            f'[editors]\n{EDITOR} = "{hash_password(EDITOR_PW, n=2**12)}"\n', encoding="utf-8"
        )
        port = _free_port()
        self.log = tmp / f"server_{name}.log"
        env = {**os.environ, "RISKMAP_LAYERS_DIR": str(layers),
               "RISKMAP_DATABASE_URL": database_url}  # fmt: skip
        cmd = [
            sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
            "--server.port", str(port), "--server.headless", "true",
            "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--secrets.files", str(secrets),
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT)  # fmt: skip
        self.server = Server(f"http://localhost:{port}/", self.log, layers)

    def wait(self) -> Server:
        deadline = time.monotonic() + 90
        health = f"{self.server.url}_stcore/health"
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2) as r:  # noqa: S310
                    if r.read() == b"ok":
                        return self.server
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = self.log.read_text("utf-8", errors="replace")
                pytest.fail(f"streamlit did not start:\n{text}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextmanager
def _servers(tmp: Path, layers: Path, database_url: str, names: tuple[str, ...]):
    """Start one server per name, all at once (their start-ups overlap), then wait for each."""
    with ExitStack() as stack:
        procs = []
        for name in names:
            proc = _Proc(tmp, layers, database_url, name)
            stack.callback(proc.stop)
            procs.append(proc)
        yield [proc.wait() for proc in procs]


@contextmanager
def _kept_on_failure(pages: dict, servers: dict, console: list[str]):
    """On failure, keep the pages' screenshots and console, the servers' logs (tests/artifacts/)."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        for name, page in pages.items():
            with suppress(Exception):  # the failure itself is what gets reported
                page.screenshot(path=str(ARTIFACTS / f"postgis_{name}.png"), full_page=True)
        for name, server in servers.items():
            shutil.copy(server.log, ARTIFACTS / f"postgis_server_{name}.log")
        (ARTIFACTS / "postgis_console.log").write_text("\n".join(console), "utf-8")
        raise


def test_two_servers_on_one_database_see_each_others_edits(pg_settings, tmp_path):  # noqa: PLR0915
    from playwright.sync_api import expect, sync_playwright

    from riskmap.store.postgis import PostgisStore, load_files

    layers = tmp_path / "layers_src"
    shutil.copytree(ROOT / "layers", layers, ignore=shutil.ignore_patterns(".*"))
    db = PostgisStore(pg_settings)
    load_files(db, FileStore(Settings.from_env({}, layers_dir=layers)), user="setup",
               echo=lambda _line: None)  # fmt: skip
    spec = db.read_catalog().get("geohazard")
    n0 = len(db.read_layer(spec))
    # what the page counts by default: every status but 已销号 (blank counts as 在册)
    shown0 = int((db.read_layer(spec)["status"] != "已销号").sum())
    # the servers' own layers folder holds only the catalog: the layers come from the
    # database, and there is no targets.toml (清零进度 says 未声明考核目标)
    empty = tmp_path / "layers_empty"
    empty.mkdir()
    shutil.copy(layers / "catalog.toml", empty / "catalog.toml")
    url = pg_settings.database_url
    with _servers(tmp_path, empty, url, ("a", "b")) as (a, b), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page_a = browser.new_page(viewport=DESKTOP, locale="zh-CN")
        page_b = browser.new_page(viewport=DESKTOP, locale="zh-CN")
        console: list[str] = []
        for name, page in (("a", page_a), ("b", page_b)):
            page.set_default_timeout(90_000)
            page.on("console", lambda m, n=name: console.append(f"{n} {m.type}: {m.text}"))
        with _kept_on_failure({"a": page_a, "b": page_b}, {"a": a, "b": b}, console):
            page_a.goto(a.url)
            page_b.goto(b.url)  # both pages load at once
            _wait_map(page_a, a)
            _wait_map(page_b, b)
            assert _metric(page_a, spec.name) == _metric(page_b, spec.name) == f"{shown0} 处"
            loads_a = a.count("load_project")

            # an editor imports on server B
            _sign_in(page_b)
            _click_tab(page_b, "导入调查表")
            _no_exception(page_b, b)
            page_b.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
                str(CASES / "c01_gbk.csv"))  # fmt: skip
            page_b.get_by_text("文件没有必填字段").wait_for()
            for label, value in (("灾害类型 默认值", "滑坡"), ("威胁人数 默认值", "3")):
                page_b.get_by_label(label).fill(value)
                page_b.get_by_label(label).press("Enter")
                _idle(page_b)
            added = page_b.get_by_test_id("stMetric").filter(has_text="新增") \
                .get_by_test_id("stMetricValue")  # fmt: skip
            expect(added).to_have_text("1", timeout=90_000)
            page_b.get_by_role("button", name="确认导入").click()
            page_b.get_by_text("已导入 地质灾害隐患点：新增 1").wait_for()
            _idle(page_b)
            assert len(db.read_layer(spec)) == n0 + 1
            assert db.history(spec)[-1]["user"] == EDITOR

            # server A: the next rerun (a reload) shows it, after one data reload
            page_a.reload()
            _wait_map(page_a, a)
            assert _metric(page_a, spec.name) == f"{shown0 + 1} 处"
            assert a.count("load_project") == loads_a + 1

            # an editor undoes on server A; B's next rerun shows the old count
            _sign_in(page_a)
            _click_tab(page_a, "导入调查表")
            page_a.get_by_role("button", name="撤销最近一次修改…").click()
            page_a.get_by_text("确认要撤销").wait_for()
            # click once the run that drew the question has finished: a click that lands
            # while that run is still drawing was, now and then, never followed by a rerun
            _idle(page_a)
            page_a.get_by_role("button", name="确认撤销").click()
            page_a.get_by_text("已撤销：地质灾害隐患点 已恢复到上一版本").wait_for()
            _idle(page_a)
            page_b.reload()
            _wait_map(page_b, b)
            assert _metric(page_b, spec.name) == f"{shown0} 处"
            assert len(db.read_layer(spec)) == n0
            assert [e["action"] for e in db.history(spec)][-2:] == ["import", "undo"]
        browser.close()
    assert not any(empty.glob("*.geojson"))  # nothing was written to files
