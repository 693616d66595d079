"""One definition of every figure (issue 11): 在册隐患, 已销号, 合计 agree everywhere.

Expected values come straight from the GeoJSON files (json, no riskmap code), then the three
places that show them — `riskmap summary --format json`, the app's metrics, the township
lists — are compared to them and so to each other.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from riskmap import exporters
from riskmap.aggregate import layer_figures, status_figures, threat_sums
from riskmap.cli import main
from riskmap.project import load_project
from riskmap.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
LAYER_IDS = ("geohazard", "waterlogging", "bridge", "firezone")


def _by_hand() -> dict[str, dict[str, int]]:
    out = {}
    for lid in LAYER_IDS:
        feats = json.loads((ROOT / "layers" / f"{lid}.geojson").read_text("utf-8"))["features"]
        cleared = sum(1 for f in feats if f["properties"].get("status") == "已销号")
        out[lid] = {"total": len(feats), "active": len(feats) - cleared, "cleared": cleared}
    return out


def _people_by_hand() -> int:
    feats = json.loads((ROOT / "layers" / "geohazard.geojson").read_text("utf-8"))["features"]
    return sum(
        f["properties"].get("threat_people") or 0
        for f in feats
        if f["properties"].get("status") != "已销号"
    )


@pytest.fixture(scope="module")
def project():
    return load_project(Settings())


def test_bundled_figures_by_hand_are_what_the_issue_describes():
    hand = _by_hand()
    assert hand["geohazard"] == {"total": 60, "active": 56, "cleared": 4}
    assert sum(v["total"] for v in hand.values()) == 93


def test_library_figures_equal_hand_counts(project):
    hand = _by_hand()
    figs = layer_figures(project.layers)
    for lid in LAYER_IDS:
        assert figs[lid] == hand[lid]
    assert figs["all"]["active"] == sum(v["active"] for v in hand.values())
    assert threat_sums(project.layers["geohazard"].gdf)["threat_people"] == _people_by_hand()


def test_status_figures_blank_status_is_active():
    import pandas as pd

    df = pd.DataFrame({"status": ["在册", None, "已销号", "治理中"]})
    assert status_figures(df) == {"total": 4, "active": 3, "cleared": 1}
    assert status_figures(pd.DataFrame({"uid": ["a"]})) == {"total": 1, "active": 1, "cleared": 0}


def test_summary_app_and_lists_agree(project, tmp_path, monkeypatch):
    hand = _by_hand()
    people = _people_by_hand()
    # 1. riskmap summary --format json: county total, per-township sums, data flags
    res = CliRunner().invoke(main, ["summary", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["flags"]["notes"] == ["示意边界", "演示数据"]
    assert data["county"]["total"] == {
        k: sum(v[k] for v in hand.values()) for k in ("total", "active", "cleared")
    }
    for lid in LAYER_IDS:
        county = data["county"]["layers"][lid]
        assert {k: county[k] for k in ("total", "active", "cleared")} == hand[lid]
    gh_active = sum(t["layers"]["geohazard"]["active"] for t in data["townships"])
    assert gh_active == hand["geohazard"]["active"]
    assert data["county"]["layers"]["geohazard"]["threat"]["threat_people"] == people
    # 2. township lists (default: without cleared points), summed over every township
    listed = 0
    for code in project.township_codes["adcode"]:
        frames = exporters.township_list_frames(project.layers, code, "")
        listed += len(frames["geohazard"])
    assert listed == hand["geohazard"]["active"]
    # 3. the app: headline metric above the map, and the 统计 tab
    layers = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", layers, ignore=shutil.ignore_patterns(".history", ".cache"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    metrics: dict[str, list[str]] = {}
    for m in at.metric:
        metrics.setdefault(m.label, []).append(m.value)
    assert metrics["地质灾害隐患点"][0] == f"{hand['geohazard']['active']} 处"
    active = f"{sum(v['active'] for v in hand.values())} 处"
    assert metrics["在册隐患"] == [active]  # the 统计 tab (open by default)
    assert metrics["已销号"] == [f"{sum(v['cleared'] for v in hand.values())} 处"]
    assert metrics["合计"] == [f"{sum(v['total'] for v in hand.values())} 处"]
    assert metrics["威胁人数"] == [f"{people} 人", f"{people} 人"]  # top and 统计 tab agree
    header = "威胁人数(人)"
    township_table = next(df.value for df in at.dataframe if header in df.value.columns)
    assert township_table[header].sum() == people
    assert township_table["地质灾害隐患点（在册隐患）"].sum() == hand["geohazard"]["active"]
    assert township_table["地质灾害隐患点（已销号）"].sum() == hand["geohazard"]["cleared"]
    at.session_state["tab"] = "清零进度"  # app.py's TAB_KEY: only the open tab is built
    at.run()
    assert not at.exception
    assert [m.value for m in at.metric if m.label == "在册隐患"] == [active]  # 清零进度
