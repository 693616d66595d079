"""The 预警 tab in a real Streamlit run (AppTest, no browser): issue, call list, responses."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from riskmap import alerts
from riskmap.project import load_project
from riskmap.settings import Settings
from riskmap.store import open_store


def _page() -> None:
    import os
    from pathlib import Path

    import streamlit as st

    from riskmap.auth import EditorSession
    from riskmap.project import load_project
    from riskmap.settings import Settings
    from riskmap.ui.warnings import warnings_view

    @st.cache_resource
    def _project(layers_dir: str):
        return load_project(Settings.from_env(layers_dir=Path(layers_dir)))

    settings = Settings.from_env()
    who = EditorSession(editor=os.environ.get("TEST_EDITOR"), mode="local")
    warnings_view(_project(str(settings.layers_dir)), settings, who)


@pytest.fixture
def layers_copy(tmp_path, monkeypatch):
    layers = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, layers, ignore=shutil.ignore_patterns(".*"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    return layers


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_editor_issues_by_township_records_two_responses_and_closes(layers_copy, monkeypatch):
    monkeypatch.setenv("TEST_EDITOR", "tester")
    at = AppTest.from_function(_page).run(timeout=120)
    assert not at.exception
    at.multiselect(key="riskmap_warning_towns").set_value(["葛城街道", "复兴街道"]).run(timeout=120)
    assert not at.exception
    assert any("范围内点位" in m.value for m in at.markdown)
    at.button(key="riskmap_warning_issue").click().run(timeout=120)
    assert not at.exception
    store = open_store(Settings(layers_dir=layers_copy))
    (record,) = alerts.list_warnings(store)
    assert record["created_by"] == "tester"
    assert at.success[0].value.replace("\\", "").startswith(  # md-escaped source
        f"已发布 {record['id']}")
    assert _metric(at, "预警点位") == str(len(record["points"]))
    assert _metric(at, "叫应率") == "0%"
    # the call list shows full phones to the editor
    phones = {p["resp_phone"] for p in record["points"]}
    shown = {v for df in at.dataframe for v in df.value.get("联系电话", [])}
    assert phones <= shown
    # two responses: called + moved 2, then unreachable; 叫应率 updates each time
    uids = [p["uid"] for p in record["points"]]
    _respond(at, uids[0], "已叫应", 2)
    assert _metric(at, "叫应率") == f"{100 / len(uids):.0f}%"
    assert _metric(at, "已转移(人)").startswith("2 /")
    _respond(at, uids[1], "无法联系", 0)
    assert _metric(at, "无法联系") == "1"
    totals = alerts.warning_totals(alerts.get_warning(store, record["id"]))
    assert (totals["called"], totals["moved"], totals["unreachable"]) == (1, 2, 1)
    # close: frozen, no more form
    at.button(key="riskmap_warning_close").click().run(timeout=120)
    assert not at.exception
    assert any("记录已冻结" in i.value for i in at.info)
    assert not [b for b in at.button if b.label == "登记"]


def _respond(at: AppTest, uid: str, outcome: str, moved: int) -> None:
    point = next(s for s in at.selectbox if s.label == "点位")
    point.set_value(uid)
    next(r for r in at.radio if r.label == "结果").set_value(outcome)
    next(n for n in at.number_input if n.label == "已转移人数").set_value(moved)
    next(b for b in at.button if b.label == "登记").click().run(timeout=120)
    assert not at.exception


def test_viewer_sees_masked_call_list_and_no_controls(layers_copy, monkeypatch):
    monkeypatch.delenv("TEST_EDITOR", raising=False)
    settings = Settings(layers_dir=layers_copy)
    project = load_project(settings)
    store = open_store(settings)
    area = alerts.area_from_townships(project, ["巴山镇"])
    record = alerts.new_warning(project, store, level="橙", kind="暴雨", area=area, user="t")
    at = AppTest.from_function(_page).run(timeout=120)
    assert not at.exception
    assert not [b for b in at.button if b.label in {"发布预警", "登记", "关闭预警（冻结记录）"}]
    assert _metric(at, "威胁人数") == str(alerts.warning_totals(record)["people"])
    shown = [str(v) for df in at.dataframe for v in df.value.get("联系电话", [])]
    assert shown
    assert all("****" in v for v in shown)
    assert not {p["resp_phone"] for p in record["points"]} & set(shown)


def test_viewer_session_cannot_issue_record_or_close_even_through_the_library(layers_copy):
    """The tab's store is guarded on the server: a viewer's call writes nothing."""
    from riskmap.auth import EditorSession, EditPermissionError, guarded_store

    settings = Settings(layers_dir=layers_copy)
    project = load_project(settings)
    store = open_store(settings)
    area = alerts.area_from_townships(project, ["巴山镇"])
    record = alerts.new_warning(project, store, level="橙", kind="暴雨", area=area, user="t")
    before = store.records_version("warnings")
    viewer = guarded_store(store, EditorSession(editor=None, mode="local"))
    uid = record["points"][0]["uid"]
    with pytest.raises(EditPermissionError):
        alerts.new_warning(project, viewer, level="红", kind="暴雨", area=area, user="forged")
    with pytest.raises(EditPermissionError):
        alerts.record_response(viewer, record["id"], uid, user="forged", called=True)
    with pytest.raises(EditPermissionError):
        alerts.close_warning(viewer, record["id"], user="forged")
    assert store.records_version("warnings") == before
