"""The real page (AppTest) against hostile data: a corrupt history log, a tampered backup."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from riskmap import io
from riskmap.auth import hash_password
from riskmap.settings import Settings
from riskmap.store.files import FileStore

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 60
PW = "correct horse battery"


def _undo(at: AppTest) -> AppTest:
    """The app's undo asks first: 撤销最近一次修改… then 确认撤销."""
    at = next(b for b in at.button if b.label == "撤销最近一次修改…").click().run()
    return next(b for b in at.button if b.label == "确认撤销").click().run()


@pytest.fixture
def layers_copy(tmp_path, monkeypatch) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", target, ignore=shutil.ignore_patterns(".history", ".cache",
                                                                          ".state"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(target))
    return target


def _signed_in_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["editors"] = {"alice": hash_password(PW, n=2**10)}
    at.session_state["tab"] = "导入调查表"  # app.py's TAB_KEY: only the open tab is built
    at.run()
    at.text_input(key="riskmap_login_user").input("alice")
    at.text_input(key="riskmap_login_password").input(PW)
    at = next(b for b in at.button if b.label == "登录").click().run()
    assert at.session_state["riskmap_editor"] == "alice"
    return at


def _history_with_two_writes():
    settings = Settings.from_env()
    spec = io.read_catalog(settings).get("geohazard")
    store = FileStore(settings)
    gdf = store.read_layer(spec)
    store.write_layer(gdf, spec, user="alice", action="import", source="a.csv")
    store.write_layer(gdf.iloc[:3], spec, user="alice", action="import", source="b.csv")
    return spec, store, io.history_dir(spec, settings)


@pytest.mark.usefixtures("layers_copy")
def test_import_tab_and_undo_survive_a_corrupt_log():
    spec, store, hdir = _history_with_two_writes()
    log = hdir / "log.jsonl"
    junk = ["{oops", "[]", json.dumps({"time": 1, "action": {"x": 1}}),
            json.dumps({"time": "2026-01-01T00:00:00", "action": "import",
                        "backup": "../../catalog.toml"}),
            json.dumps({"time": "2026-01-01T00:00:00", "action": "import", "rows_after": [1]})]
    log.write_text(log.read_text(encoding="utf-8") + "\n".join(junk) + "\n", encoding="utf-8")
    at = _signed_in_app()
    assert not at.exception
    assert any("5 行已损坏" in w.value for w in at.warning)
    at = _undo(at)
    assert not at.exception
    assert not at.error
    assert len(store.read_layer(spec)) > 3  # the real previous version is back


@pytest.mark.usefixtures("layers_copy")
def test_undo_of_a_tampered_backup_is_a_message_not_a_traceback():
    spec, store, hdir = _history_with_two_writes()
    last = store.history(spec)[-1]
    (hdir / last["backup"]).write_text('{"type":"FeatureCollection","features":[]}', "utf-8")
    before = store.layer_version(spec)
    at = _signed_in_app()
    at = _undo(at)
    assert not at.exception
    assert any("撤销失败" in e.value and "SHA" in e.value for e in at.error)
    assert store.layer_version(spec) == before
