"""Server-side role checks: one guard (`require_editor`) in front of every write of the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import geopandas as gpd
from shapely.geometry import Point

from riskmap import io
from riskmap.auth import (
    EDIT_ACTIONS,
    EditorSession,
    EditPermissionError,
    guarded_store,
    hash_password,
    require_editor,
)
from riskmap.settings import Settings
from riskmap.store.files import FileStore

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PW = "correct horse battery"
VIEWERS = [None, EditorSession(None, "local"), EditorSession(None, "oidc"),
           EditorSession(None, "none"), {"editor": "alice"}, "alice"]


@pytest.fixture
def layers_copy(tmp_path, monkeypatch) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", target,
                    ignore=shutil.ignore_patterns(".history", ".cache", ".state"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(target))
    return target


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


def _one_point() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"uid": ["P1"], "name": ["甲"], "status": ["在册"]},
                            geometry=[Point(108.6, 31.9)], crs="EPSG:4326")


@pytest.mark.parametrize("who", VIEWERS, ids=repr)
@pytest.mark.parametrize("action", sorted(EDIT_ACTIONS))
def test_require_editor_refuses_every_viewer(who, action):
    with pytest.raises(EditPermissionError, match=f"只有登录的编辑者可以{EDIT_ACTIONS[action]}"):
        require_editor(who, action)


def test_require_editor_returns_the_editor():
    assert require_editor(EditorSession("alice", "local"), "status") == "alice"


@pytest.mark.parametrize("who", VIEWERS[:2], ids=repr)
def test_every_store_write_refused_for_a_viewer_and_nothing_written(layers_copy, who):
    settings = Settings.from_env()
    spec = io.read_catalog(settings).get("geohazard")
    FileStore(settings).write_layer(_one_point(), spec, user="setup", action="import")
    FileStore(settings).write_records("warnings", [{"id": 1}], user="setup", action="add")
    before = _tree(layers_copy)
    store = guarded_store(FileStore(settings), who)
    calls = {
        "status change": lambda: store.write_layer(_one_point(), spec, user="alice",
                                                   action="status"),
        "import": lambda: store.write_layer(_one_point(), spec, user="alice", action="import"),
        "undo": lambda: store.undo(spec, user="alice"),
        "warning record": lambda: store.write_records("warnings", [], user="alice",
                                                      action="warning"),
        "records undo": lambda: store.undo_records("warnings", user="alice"),
        "evidence": lambda: store.write_attachment(b"\x89PNG", suffix="png"),
    }
    for name, call in calls.items():
        with pytest.raises(EditPermissionError):
            call()
        assert _tree(layers_copy) == before, name
    assert len(store.read_layer(spec)) == 1  # reads pass through


def test_the_audit_entry_names_the_signed_in_editor_not_the_caller(layers_copy):
    del layers_copy
    settings = Settings.from_env()
    spec = io.read_catalog(settings).get("geohazard")
    store = guarded_store(FileStore(settings), EditorSession("alice", "local"))
    store.write_layer(_one_point(), spec, user="mallory", action="status")
    store.undo(spec, user="mallory")
    assert [e["user"] for e in store.history(spec)[-2:]] == ["alice", "alice"]


def _page_with_undo_shown_to_everyone() -> None:
    """A view with the bug we guard against: the undo button is drawn for viewers too."""
    import streamlit as st

    from riskmap import io
    from riskmap.auth import guarded_store, sign_in_panel
    from riskmap.errors import RiskmapError
    from riskmap.settings import Settings
    from riskmap.store import open_store

    settings = Settings.from_env()
    who = sign_in_panel(settings=settings)
    spec = io.read_catalog(settings).get("geohazard")
    if st.button("撤销最近一次导入", key="undo"):
        try:
            guarded_store(open_store(settings), who).undo(spec)
        except RiskmapError as exc:
            st.error(str(exc))
        else:
            st.success("已撤销")


def test_a_viewer_driving_an_edit_widget_is_refused_on_the_server(layers_copy):
    settings = Settings.from_env()
    spec = io.read_catalog(settings).get("geohazard")
    FileStore(settings).write_layer(_one_point(), spec, user="setup", action="import")
    before = _tree(layers_copy)
    at = AppTest.from_function(_page_with_undo_shown_to_everyone, default_timeout=60)
    at.secrets["editors"] = {"alice": hash_password(PW, n=2**10)}
    at.run()
    at = at.button(key="undo").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["只有登录的编辑者可以撤销修改（当前为查看模式）"]
    assert _tree(layers_copy) == before
    # the same widget after signing in works: the guard, not the widget, decided
    at.sidebar.text_input(key="riskmap_login_user").input("alice")
    at.sidebar.text_input(key="riskmap_login_password").input(PW)
    at = next(b for b in at.sidebar.button if b.label == "登录").click().run()
    at = at.button(key="undo").click().run()
    assert [s.value for s in at.success] == ["已撤销"]


def test_real_app_stale_undo_click_after_editor_removed_writes_nothing(layers_copy):
    """An editor signs in, is removed from the list, then their old undo button is clicked."""
    settings = Settings.from_env()
    spec = io.read_catalog(settings).get("geohazard")
    store = FileStore(settings)
    store.write_layer(store.read_layer(spec), spec, user="setup", action="import")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["tab"] = "导入调查表"  # app.py's TAB_KEY: only the open tab is built
    at.secrets["editors"] = {"alice": hash_password(PW, n=2**10)}
    at.run()
    at.text_input(key="riskmap_login_user").input("alice")
    at.text_input(key="riskmap_login_password").input(PW)
    at = next(b for b in at.button if b.label == "登录").click().run()
    at = next(b for b in at.button if b.label == "撤销最近一次修改…").click().run()
    confirm = next(b for b in at.button if b.label == "确认撤销")
    before = _tree(layers_copy)
    at.secrets["editors"] = {"bob": hash_password(PW, n=2**10)}  # alice removed
    at = confirm.click().run()
    assert not at.exception
    assert _tree(layers_copy) == before
    assert not [b for b in at.button if b.label in {"撤销最近一次修改…", "确认撤销"}]
