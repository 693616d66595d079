"""A read-only data folder: clear Chinese errors, nothing partial, the map still shows.

Root ignores permission bits, so the permission tests skip under root; the suite runs them
as a non-root user through `test_security_nonroot.py` (``setpriv``). The rollback test runs
everywhere (the failure is injected).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import geopandas as gpd
from shapely.geometry import Point

from riskmap import io
from riskmap.auth import hash_password
from riskmap.errors import DataFileError
from riskmap.settings import Settings
from riskmap.store.files import FileStore

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PW = "correct horse battery"


def _undo(at: AppTest) -> AppTest:
    """The app's undo asks first: 撤销最近一次修改… then 确认撤销."""
    at = next(b for b in at.button if b.label == "撤销最近一次修改…").click().run()
    return next(b for b in at.button if b.label == "确认撤销").click().run()
AS_ROOT = os.geteuid() == 0
needs_non_root = pytest.mark.skipif(
    AS_ROOT, reason="root ignores permissions: run as non-root by test_security_nonroot"
)


@pytest.fixture
def layers_copy(tmp_path, monkeypatch) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", target,
                    ignore=shutil.ignore_patterns(".history", ".cache", ".state"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(target))
    return target


def _layer(tag: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"uid": ["P1"], "name": [tag], "status": ["在册"]},
                            geometry=[Point(108.6, 31.9)], crs="EPSG:4326")


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (lock files aside) with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def _chmod_tree(folder: Path, mode: int) -> None:
    for p in [folder, *folder.rglob("*")]:
        if p.is_dir():
            os.chmod(p, mode)


@needs_non_root
@pytest.mark.parametrize("read_only", ["layers", "history"])
def test_read_only_folder_is_a_chinese_error_and_nothing_changes(layers_copy, read_only):
    settings = Settings.from_env()
    spec = io.read_catalog(settings).get("geohazard")
    store = FileStore(settings)
    store.write_layer(_layer("A"), spec, user="a", action="import")  # a history exists
    locked = layers_copy if read_only == "layers" else layers_copy / ".history"
    before = _tree(layers_copy)
    _chmod_tree(locked, 0o555)
    try:
        with pytest.raises(DataFileError, match="无法写入（数据目录只读或没有权限") as info:
            store.write_layer(_layer("B"), spec, user="a", action="import")
        assert str(layers_copy) in str(info.value)  # names the file or folder
        with pytest.raises(DataFileError, match="无法写入"):
            store.write_records("warnings", [{"id": 1}], user="a", action="add")
        with pytest.raises(DataFileError, match="无法写入"):
            store.undo(spec, user="a")
        assert _tree(layers_copy) == before  # nothing partial: no backup, no log line, no temp
        assert set(store.read_layer(spec)["name"]) == {"A"}
    finally:
        _chmod_tree(locked, 0o755)


def test_failed_replace_takes_back_log_entry_and_backup(layers_copy, monkeypatch):
    """The last step fails (disk full, read-only file): no log entry or backup is left."""
    settings = Settings.from_env()
    spec = io.read_catalog(settings).get("geohazard")
    store = FileStore(settings)
    store.write_layer(_layer("A"), spec, user="a", action="import")
    before = _tree(layers_copy)
    target = spec.path(layers_copy)
    real = io.write_bytes_atomic

    def failing(path, data, *, mode=None):
        if path == target:
            raise OSError(28, "No space left on device", str(path))
        return real(path, data, mode=mode)

    monkeypatch.setattr(io, "write_bytes_atomic", failing)
    with pytest.raises(DataFileError, match="No space left on device"):
        store.write_layer(_layer("B"), spec, user="a", action="import")
    monkeypatch.undo()
    assert _tree(layers_copy) == before
    assert [e["user"] for e in store.history(spec)] == ["a"]


@needs_non_root
def test_app_shows_the_map_and_refuses_writes_on_a_read_only_folder(layers_copy):
    settings = Settings.from_env()
    spec = io.read_catalog(settings).get("geohazard")
    store = FileStore(settings)
    store.write_layer(store.read_layer(spec), spec, user="a", action="import")
    state = layers_copy / ".state"
    state.mkdir()  # sign-in counters stay writable: only the data is read-only
    before = _tree(layers_copy)
    _chmod_tree(layers_copy, 0o555)
    os.chmod(state, 0o755)  # noqa: S103 - the test owns it
    try:
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["tab"] = "导入调查表"  # app.py's TAB_KEY: only the open tab is built
        at.secrets["editors"] = {"alice": hash_password(PW, n=2**10)}
        at.run()
        assert not at.exception
        assert not at.error
        assert at.get("component_instance")  # the map
        at.text_input(key="riskmap_login_user").input("alice")
        at.text_input(key="riskmap_login_password").input(PW)
        at = next(b for b in at.button if b.label == "登录").click().run()
        assert at.session_state["riskmap_editor"] == "alice"
        at = _undo(at)
        assert not at.exception
        assert any("撤销失败" in e.value and "只读" in e.value for e in at.error)
        assert {k: v for k, v in _tree(layers_copy).items() if not k.startswith(".state")} == {
            k: v for k, v in before.items() if not k.startswith(".state")
        }
    finally:
        _chmod_tree(layers_copy, 0o755)


@needs_non_root
def test_sign_in_on_a_read_only_folder_is_refused_with_a_message(layers_copy):
    _chmod_tree(layers_copy, 0o555)
    try:
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["tab"] = "导入调查表"  # app.py's TAB_KEY: only the open tab is built
        at.secrets["editors"] = {"alice": hash_password(PW, n=2**10)}
        at.run()
        assert at.get("component_instance")
        at.text_input(key="riskmap_login_user").input("alice")
        at.text_input(key="riskmap_login_password").input(PW)
        at = next(b for b in at.button if b.label == "登录").click().run()
        assert not at.exception
        assert "riskmap_editor" not in at.session_state
        assert any("无法记录登录尝试" in e.value for e in at.sidebar.error)
    finally:
        _chmod_tree(layers_copy, 0o755)
