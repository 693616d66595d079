"""The Streamlit page without a browser (streamlit.testing AppTest): logic, state, messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from riskmap import exporters
from riskmap import project as project_module
from riskmap.layers import filter_features
from riskmap.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 60
TAB_KEY = "tab"  # app.py's session key of the open tab (tabs are built only when open)


@pytest.fixture
def layers_copy(tmp_path, monkeypatch) -> Path:
    """A private copy of layers/ (the app reads RISKMAP_LAYERS_DIR)."""
    target = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", target, ignore=shutil.ignore_patterns(".history", ".cache"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(target))
    return target


@pytest.fixture(scope="module")
def project():
    return project_module.load_project(Settings())


def _run(query: dict[str, str] | None = None, *, tab: str | None = None) -> AppTest:
    """Run the page once; `tab` opens that tab under the map (only the open tab is built)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    if tab is not None:
        at.session_state[TAB_KEY] = tab
    return at.run()


def _metrics(at: AppTest) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in at.metric:
        out.setdefault(m.label, m.value)  # first occurrence: the headline row above the map
    return out


def test_app_runs_and_mirrors_filters_in_url(layers_copy, project):
    del layers_copy
    at = _run()
    assert not at.exception
    assert not at.error
    assert at.title[0].value == "城口县安全风险“一张图”"
    assert dict(at.query_params) == {
        "township": "全县",
        "layers": ",".join(project.catalog.ids),  # every declared layer shown at start
        "statuses": "在册,监测中,治理中",
        "q": "",
        "choropleth": "",
    }
    tabs = ["统计", "清单", "下载清单", "清零进度", "导入调查表", "预警", "使用说明"]
    assert [t.label for t in at.tabs] == tabs


def test_filters_from_query_string_round_trip(layers_copy):
    del layers_copy
    query = {
        "township": "巴山镇",
        "layers": "geohazard,bridge",
        "statuses": "在册,已销号",
        "q": "滑坡",
        "choropleth": "all",
    }
    at = _run(query)
    assert not at.exception
    assert at.selectbox(key="f_township").value == "巴山镇"
    assert at.checkbox(key="show_geohazard").value
    assert not at.checkbox(key="show_waterlogging").value
    assert at.checkbox(key="show_bridge").value
    assert at.multiselect(key="f_statuses").value == ["在册", "已销号"]
    assert at.text_input(key="f_q").value == "滑坡"
    assert at.selectbox(key="f_choro").value == "all"
    assert dict(at.query_params) == query
    # a change is written back to the URL
    at.selectbox(key="f_township").set_value("葛城街道").run()
    assert at.query_params["township"] == "葛城街道"
    assert at.query_params["layers"] == "geohazard,bridge"


def test_unknown_township_in_url_warns_in_chinese(layers_copy):
    del layers_copy
    at = _run({"township": "不存在镇"})
    assert not at.exception
    assert at.selectbox(key="f_township").value == "全县"
    assert any("不存在镇" in w.value and "不存在" in w.value for w in at.warning)


def test_township_selection_shows_its_figures(layers_copy, project):
    del layers_copy
    at = _run()
    at.selectbox(key="f_township").set_value("巴山镇").run()
    assert not at.exception
    code = project.township("巴山镇")[0]
    statuses = ["在册", "监测中", "治理中"]
    expected = {
        layer.spec.name: len(filter_features(layer, township_codes=[code], statuses=statuses))
        for layer in project.layers.values()
    }
    metrics = _metrics(at)
    for name, n in expected.items():
        assert metrics[name] == f"{n} 处"
    gh = filter_features(project.layers["geohazard"], township_codes=[code], statuses=statuses)
    assert metrics["威胁人数"] == f"{gh['threat_people'].sum():.0f} 人"
    assert any("巴山镇：风险点位概况" in m.value for m in at.markdown)


def test_search_narrows_lists(layers_copy, project):
    del layers_copy
    uid = str(project.layers["geohazard"].gdf["uid"].iloc[0])
    at = _run(tab="清单")
    before = {len(df.value) for df in at.tabs[1].dataframe}
    at.text_input(key="f_q").set_value(uid).run()
    assert not at.exception
    lists = [df.value for df in at.tabs[1].dataframe]
    assert [len(df) for df in lists] == [1]  # only the one geohazard row; empty layers say so
    assert max(before) > 1
    assert lists[0]["统一编号"].tolist() == [uid]
    at.text_input(key="f_q").set_value("没有这个点位").run()
    shown = " ".join(w.value for w in at.warning)
    assert "无符合条件的点位" in shown
    assert "没有名称或编号包含" in shown


def test_malformed_layer_file_shows_chinese_error(layers_copy):
    broken = '{"type": "FeatureCollection", "features": ['
    (layers_copy / "bridge.geojson").write_text(broken, "utf-8")
    at = _run()
    assert not at.exception  # a message, not a traceback
    assert len(at.error) == 1
    text = at.error[0].value.replace("\\", "")  # file names are Markdown-escaped (`_md`)
    assert text.startswith("数据加载失败")
    assert "bridge.geojson" in text
    assert "格式错误" in text


def test_rerun_without_data_change_does_not_reload(layers_copy, monkeypatch):
    calls = []
    real = project_module.load_project

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(project_module, "load_project", counting)
    st.cache_resource.clear()
    at = _run()
    assert len(calls) == 1
    at.run()  # plain rerun (what a map click does)
    at.selectbox(key="f_township").set_value("葛城街道").run()
    at.multiselect(key="f_statuses").set_value(["在册"]).run()
    at.checkbox(key="show_bridge").uncheck().run()
    at.text_input(key="f_q").set_value("滑坡").run()
    assert not at.exception
    assert len(calls) == 1
    # a changed layer file is a new data version: loaded again, once
    path = layers_copy / "bridge.geojson"
    path.write_text(path.read_text("utf-8") + "\n", "utf-8")
    at.run()
    at.run()
    assert len(calls) == 2


def test_viewer_cannot_reach_import_controls_until_signed_in(layers_copy):
    """Roles on the real page: viewing is open, importing needs an editor sign-in."""
    from riskmap.auth import hash_password

    del layers_copy
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["editors"] = {"alice": hash_password("correct horse battery", n=2**10)}
    at.session_state[TAB_KEY] = "导入调查表"
    at.run()
    assert not at.exception
    assert not at.get("file_uploader")
    assert any("导入调查表、撤销导入需登录" in i.value for i in at.info)
    at.text_input(key="riskmap_login_user").input("alice")
    at.text_input(key="riskmap_login_password").input("correct horse battery")
    at = next(b for b in at.button if b.label == "登录").click().run()
    assert not at.exception
    assert at.session_state["riskmap_editor"] == "alice"
    assert at.get("file_uploader")


def test_download_tab_for_township(layers_copy):
    del layers_copy
    at = _run({"township": "葛城街道"}, tab="下载清单")
    assert not at.exception
    labels = [b.label for b in at.tabs[2].get("download_button")]
    assert labels[:3] == ["下载 Excel 清单", "下载 CSV", "下载 GeoJSON"]
    assert labels[3:] == ["下载葛城街道图表（PDF）", "下载全县总图（A3，PDF）"]  # riskmap.ui.paper


def test_township_without_its_own_polygon_can_be_selected(layers_copy):
    """复兴街道 has no cell in the approximate partition: the map shows the cell covering it."""
    del layers_copy
    at = _run({"township": "复兴街道"})
    assert not at.exception
    assert not at.error
    assert _metrics(at)["内涝积水点"] == "3 处"


def test_user_text_in_messages_is_literal_markdown(layers_copy):
    """A shared URL's search text cannot become a link or an image (a request off the intranet)."""
    del layers_copy
    evil = "![x](http://example.invalid/t.png) [点此](http://example.invalid) **粗** :red[红]"
    at = _run({"q": evil})
    assert not at.exception
    shown = " ".join(w.value for w in at.warning)
    assert "无符合条件的点位：没有名称或编号包含" in shown
    assert "](http" not in shown  # every bracket and parenthesis is escaped
    assert r"\!\[x\]\(http\:" in shown
    assert r"\*\*粗\*\*" in shown
    assert r"\:red\[红\]" in shown


FIFTH_LAYER = """
[layers.testsite]
name = "测试隐患点"
file = "testsite.geojson"
geometry = "Point"
key = "uid"
class_field = "level"
symbol = "diamond"
colors = { "一般" = "#bdbdbd", "较大" = "#de2d26" }
popup = ["uid", "name", "level", "people", "cost_wan"]
list = ["uid", "name", "level", "people", "cost_wan"]
sums = ["people", "cost_wan"]

[layers.testsite.fields]
level = { label = "隐患级别", type = "str", values = ["一般", "较大"] }
people = { label = "涉及人数", type = "int", min = 0, unit = "人" }
cost_wan = { label = "治理投资", type = "float", min = 0, unit = "万元", decimals = 1 }
"""


def test_fifth_layer_by_catalog_entry_alone_shows_in_headline_figures(layers_copy):
    """A layer declared in catalog.toml (plus its GeoJSON file) gets its count and its sums."""
    with (layers_copy / "catalog.toml").open("a", encoding="utf-8") as fh:
        fh.write(FIFTH_LAYER)
    sites = [  # three sites in the county (coordinates of bundled geohazard points)
        ("T1", [108.449467, 32.115318], "一般", 12, 10.2, "在册"),
        ("T2", [108.486385, 32.045345], "较大", 30, 50.5, None),  # blank status counts as 在册
        ("T3", [108.536723, 31.963186], "较大", None, None, "监测中"),
        ("T4", [108.536723, 31.963186], "一般", 500, 9.9, "已销号"),  # hidden by default
    ]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": xy},
            "properties": {
                "uid": uid,
                "name": f"测试点{uid}",
                "level": level,
                "people": people,
                "cost_wan": cost,
                "status": status,
            },
        }
        for uid, xy, level, people, cost, status in sites
    ]
    (layers_copy / "testsite.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        "utf-8",
    )
    at = _run(tab="清单")
    assert not at.exception
    assert not at.error
    metrics = _metrics(at)
    # Hand figures over T1-T3 (T4 is cleared): 3 sites, 12 + 30 = 42 people,
    # 10.2 + 50.5 = 60.7 万元 (declared 1 decimal).
    assert metrics["测试隐患点"] == "3 处"
    assert metrics["涉及人数"] == "42 人"
    assert metrics["治理投资"] == "60.7 万元"
    assert at.checkbox(key="show_testsite").value
    lists = {len(df.value.columns): df.value for df in at.tabs[1].dataframe}
    table = next(df for df in lists.values() if "涉及人数(人)" in df.columns)
    assert table["涉及人数(人)"].tolist()[:2] == [12, 30]
    assert str(table["涉及人数(人)"].dtype) == "Int64"  # integers stay integers


def test_downloads_say_they_follow_the_screen(layers_copy):
    del layers_copy
    at = _run(
        {"township": "葛城街道", "layers": "geohazard", "statuses": "在册", "q": "滑坡"},
        tab="下载清单",
    )
    assert not at.exception
    captions = [c.value for c in at.tabs[2].caption]
    said = next(c for c in captions if "下载内容与当前屏幕一致" in c).replace("\\", "")
    for part in ("图层 地质灾害隐患点", "状态 在册", "名称或编号含“滑坡”"):
        assert part in said
    labels = [b.label for b in at.tabs[2].get("download_button")]
    formats = [f.label for f in exporters.EXPORT_FORMATS.values()]
    assert labels[: len(formats)] == formats  # then the PDF prints (riskmap.ui.paper)
