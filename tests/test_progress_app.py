"""清零进度 in the app (AppTest, no browser): an editor closes a point and undoes it; a viewer
sees no status control; the 清零 figures follow the stored data."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from riskmap.auth import hash_password
from riskmap.settings import Settings
from riskmap.store.files import FileStore

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


@pytest.fixture
def layers_copy(tmp_path, monkeypatch) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", target, ignore=shutil.ignore_patterns(".history", ".cache"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(target))
    return target


def _uid(status: str) -> str:
    feats = json.loads((ROOT / "layers" / "geohazard.geojson").read_text("utf-8"))["features"]
    return next(f["properties"]["uid"] for f in feats if f["properties"]["status"] == status)


def _app(*, editor: bool, sel: tuple[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets["editors"] = {"alice": hash_password("pw-for-tests-only", n=2**10)}
    if editor:
        at.session_state["riskmap_editor"] = "alice"  # what local_sign_in sets
    at.session_state["sel"] = sel
    return at.run()


def _metric(at: AppTest, label: str) -> list[str]:
    return [m.value for m in at.metric if m.label == label]


@pytest.mark.usefixtures("layers_copy")
def test_editor_closes_a_point_and_undoes_it():
    uid = _uid("治理中")
    at = _app(editor=True, sel=("geohazard", uid))
    assert not at.exception
    assert _metric(at, "已销号") == ["4 处"]  # 统计 tab, from the bundled data
    at.selectbox(key="st_to").set_value("已销号")
    at.date_input(key="st_date").set_value(dt.date(2026, 6, 30))
    at.selectbox(key="st_reason").set_value("工程治理")
    at.text_input(key="st_note").set_value("验收合格")
    at = next(b for b in at.button if b.label == "确认变更状态").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("已变更" in s.value for s in at.success)
    assert _metric(at, "已销号") == ["5 处"]
    store = FileStore(Settings.from_env())
    layer = store.read_catalog().get("geohazard")
    entry = store.history(layer)[-1]
    assert (entry["user"], entry["uid"], entry["to"], entry["note"]) == (
        "alice", uid, "已销号", "验收合格",
    )  # fmt: skip
    at = next(b for b in at.button if b.label == "撤销最近一次状态变更").click().run()
    assert not at.exception
    assert _metric(at, "已销号") == ["4 处"]
    assert store.read_layer(layer).set_index("uid").loc[uid, "status"] == "治理中"


@pytest.mark.usefixtures("layers_copy")
def test_missing_reason_is_refused_and_nothing_written():
    at = _app(editor=True, sel=("geohazard", _uid("治理中")))
    at.selectbox(key="st_to").set_value("已销号")
    at = next(b for b in at.button if b.label == "确认变更状态").click().run()
    assert any("销号原因 为空" in e.value for e in at.error)
    store = FileStore(Settings.from_env())
    assert store.history(store.read_catalog().get("geohazard")) == []


@pytest.mark.usefixtures("layers_copy")
def test_viewer_sees_no_status_control():
    at = _app(editor=False, sel=("geohazard", _uid("治理中")))
    assert not at.exception
    labels = [b.label for b in at.button]
    assert "确认变更状态" not in labels
    assert "撤销最近一次状态变更" not in labels
    assert not [s for s in at.selectbox if s.key == "st_to"]


def test_progress_tab_figures(layers_copy):
    at = _app(editor=False, sel=("geohazard", _uid("治理中")))
    feats = []
    for lid in ("geohazard", "waterlogging", "bridge", "firezone"):
        feats += json.loads((layers_copy / f"{lid}.geojson").read_text("utf-8"))["features"]
    active = sum(1 for f in feats if f["properties"]["status"] != "已销号")
    assert _metric(at, "在册隐患") == [f"{active} 处"]  # 统计 (the tab open at start)
    at.session_state["tab"] = "清零进度"  # app.py's TAB_KEY: only the open tab is built
    at.run()
    assert _metric(at, "在册隐患") == [f"{active} 处"]  # 清零进度
    assert any("考核目标" in m.value for m in at.markdown)
    assert any("状态" in df.value.columns for df in at.dataframe)  # traffic lights


@pytest.mark.usefixtures("layers_copy")
def test_cleared_toggle_adds_cleared_to_the_filter():
    at = _app(editor=False, sel=("geohazard", _uid("治理中")))
    assert "已销号" not in at.multiselect(key="f_statuses").value
    at = at.checkbox(key="f_cleared").check().run()
    assert "已销号" in at.multiselect(key="f_statuses").value
    geo = next(m.value for m in at.metric if m.label == "地质灾害隐患点")
    assert geo == "60 处"


def test_no_targets_file_leaves_every_tab_drawn(layers_copy):
    """Without ``targets.toml`` the 清零进度 tab says so, and the tabs after it (导入调查表,
    预警, 使用说明) are still drawn: the two-server PostGIS run (#14) lost its uploader to a
    KeyError raised here."""
    (layers_copy / "targets.toml").unlink()
    at = _app(editor=True, sel=("geohazard", _uid("治理中")))
    assert not at.exception, [e.value for e in at.exception]
    # only the open tab is built (app.py's TAB_KEY): open each in turn
    at.session_state["tab"] = "清零进度"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("未声明考核目标" in i.value for i in at.info)
    at.session_state["tab"] = "导入调查表"
    at.run()
    assert [s for s in at.selectbox if s.label == "导入到图层"]  # the import tab
    assert any(c.value == "暂无导入记录。" for c in at.caption)  # its history panel, drawn last
    at.session_state["tab"] = "使用说明"
    at.run()
    assert any("使用说明" in m.value for m in at.markdown)  # the last tab
