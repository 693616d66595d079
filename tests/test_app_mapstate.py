"""Grade threshold, selected point and map view in the URL (AppTest, no browser)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import geopandas as gpd

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
DEFAULT_STATUSES = {"在册", "监测中", "治理中"}


@pytest.fixture
def layers_copy(tmp_path, monkeypatch) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", target, ignore=shutil.ignore_patterns(".history", ".cache"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(target))
    return target


def _run(query: dict[str, str] | None = None, *, tab: str | None = None) -> AppTest:
    """Run the page once; `tab` opens that tab under the map (only the open tab is built)."""
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    if tab is not None:
        at.session_state["tab"] = tab  # app.py's TAB_KEY
    return at.run()


def _geohazard_rows(at: AppTest) -> int:
    """Rows of the 地质灾害隐患点 list (the first list of the 清单 tab, opened by `_run`)."""
    return len(at.tabs[1].dataframe[0].value)


def _expected(layers_dir: Path, grades: set[str]) -> int:
    """Independent count from the layer file: default statuses (blank = 在册), these grades."""
    gdf = gpd.read_file(layers_dir / "geohazard.geojson")
    status = gdf["status"].fillna("在册").replace("", "在册")
    return int((status.isin(DEFAULT_STATUSES) & gdf["danger_grade"].isin(grades)).sum())


def test_grades_in_the_url_set_threshold_classes_and_lists(layers_copy):
    at = _run({"grades": "geohazard:大型|特大型"}, tab="清单")
    assert not at.exception
    assert at.selectbox(key="min_geohazard").value == "≥ 大型"
    assert at.multiselect(key="cls_geohazard").value == ["大型", "特大型"]
    assert _geohazard_rows(at) == _expected(layers_copy, {"大型", "特大型"})
    assert at.query_params["grades"] == "geohazard:大型|特大型"


def test_threshold_fills_the_classes_and_the_url_follows(layers_copy):
    at = _run(tab="清单")
    assert "grades" not in at.query_params  # all classes: nothing to say
    assert at.selectbox(key="min_geohazard").value == "全部等级"
    at.selectbox(key="min_geohazard").set_value("≥ 中型").run()
    assert not at.exception
    assert at.multiselect(key="cls_geohazard").value == ["中型", "大型", "特大型"]
    assert at.query_params["grades"] == "geohazard:中型|大型|特大型"
    assert _geohazard_rows(at) == _expected(layers_copy, {"中型", "大型", "特大型"})
    # a hand-picked set that no threshold gives: the threshold says 自选
    at.multiselect(key="cls_geohazard").set_value(["小型", "大型"]).run()
    assert at.selectbox(key="min_geohazard").value == "自选（见下方）"
    assert at.query_params["grades"] == "geohazard:小型|大型"
    assert _geohazard_rows(at) == _expected(layers_copy, {"小型", "大型"})
    # back to everything
    at.selectbox(key="min_geohazard").set_value("全部等级").run()
    assert "grades" not in at.query_params


def test_selected_point_and_view_pass_through_the_url(layers_copy):
    gdf = gpd.read_file(layers_copy / "geohazard.geojson")
    uid, name = str(gdf["uid"].iloc[3]), str(gdf["name"].iloc[3])
    at = _run({"sel": f"geohazard:{uid}", "view": "31.90000,108.60000,12"})
    assert not at.exception
    assert any(f"已选点位：地质灾害隐患点 · {name}" in m.value for m in at.markdown)
    assert at.query_params["sel"] == f"geohazard:{uid}"
    assert at.query_params["view"] == "31.90000,108.60000,12"
    # an unknown layer in `sel` is ignored, not an error
    at = _run({"sel": "nolayer:x"})
    assert not at.exception
    assert "sel" not in at.query_params


def test_no_match_says_so_in_the_figures_and_the_dashboard(layers_copy):
    del layers_copy
    at = _run({"grades": "geohazard:", "layers": "geohazard"})  # no class kept at all
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len([w for w in warnings if w.startswith("无符合条件的点位")]) == 2  # top + 统计 tab
    assert not at.tabs[0].metric  # no stale figures in the dashboard
