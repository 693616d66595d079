"""考核 targets and 一点一案一策 completeness (issue 11), against figures by hand from the files."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from io import BytesIO
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from riskmap import completeness, io, lifecycle, targets
from riskmap.auth import EditorSession
from riskmap.catalog import catalog_from_dict
from riskmap.cli import main
from riskmap.errors import CatalogError
from riskmap.project import load_project
from riskmap.settings import Settings
from riskmap.store.files import FileStore

from .conftest import catalog_raw
from .test_progress import _members, _towns

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 30)


def _props(layer: str) -> list[dict]:
    return json.loads((ROOT / "layers" / f"{layer}.geojson").read_text("utf-8"))["features"]


@pytest.fixture(scope="module")
def project():
    return load_project(Settings())


@pytest.fixture(scope="module")
def declared(project):
    return targets.targets_from_dict(io.read_targets_raw(project.settings), project.catalog)


def test_targets_file_declares_the_plan(declared):
    by_id = {t.id: t for t in declared.targets}
    # 城口县2026年工作要点: 12 stations, 2 treatments, 154 people, drills everywhere, 100% 整改率
    assert by_id["stations"].target == 12
    assert by_id["treatments"].target == 2
    assert by_id["relocations"].target == 154
    assert by_id["drills"].target == 1.0
    assert by_id["rectify_geohazard"].target == 1.0
    assert by_id["bridges"].target == 10
    assert all(t.source for t in declared.targets)


def test_county_figures_by_hand(project, declared):
    gh = [f["properties"] for f in _props("geohazard")]
    wl = [f["properties"] for f in _props("waterlogging")]
    df = targets.measure_targets(declared, project.layers, project.township_codes, as_of=AS_OF)
    county = df[df["code"] == "county"].set_index("id")
    stations = sum(1 for p in gh if p["station_planned_2026"] and p["has_station"])
    assert county.loc["stations", "done"] == stations
    assert county.loc["stations", "light"] == ("绿" if stations >= 12 else "红")
    relocated = sum(
        p["relocate_people"] or 0
        for p in gh
        if p["status"] == "已销号" and p["cleared_reason"] == "搬迁避让"
    )
    assert county.loc["relocations", "done"] == relocated
    active = [p for p in gh if p["status"] != "已销号"]
    recent = [p for p in active if p["drill_date"]
              and (AS_OF - dt.date.fromisoformat(p["drill_date"])).days <= 365]  # fmt: skip
    assert county.loc["drills", "done"] == pytest.approx(len(recent) / len(active), abs=1e-4)
    taken = [p for p in gh if p["status"] in {"治理中", "已销号"}]
    cleared = [p for p in taken if p["status"] == "已销号"]
    assert county.loc["rectify_geohazard", "done"] == pytest.approx(len(cleared) / len(taken),
                                                                     abs=1e-4)  # fmt: skip
    assert county.loc["waterlogging_monitors", "done"] == sum(1 for p in wl if p["sensor_id"])


def test_township_targets_are_their_planned_points(project, declared):
    cells, names = _towns()
    planned: dict[str, int] = {}
    for f in _props("geohazard"):
        if f["properties"]["station_planned_2026"]:
            for code in _members(f, cells, names):
                planned[code] = planned.get(code, 0) + 1
    df = targets.measure_targets(declared, project.layers, project.township_codes, as_of=AS_OF)
    towns = df[(df["id"] == "stations") & (df["code"] != "county")].set_index("code")
    for code, row in towns.iterrows():
        if code in planned:
            assert row["target"] == planned[code]
        else:
            assert row["target"] is None or row["target"] == 0
            assert row["light"] == ""
    assert sum(planned.values()) == 12


def test_closing_a_relocation_moves_the_figure_and_the_light(tmp_path, monkeypatch):
    layers = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", layers, ignore=shutil.ignore_patterns(".history", ".cache"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    settings = Settings.from_env()
    store = FileStore(settings)
    layer = store.read_catalog().get("geohazard")
    spec = lifecycle.lifecycle_spec(store.read_catalog())
    site = max((f["properties"] for f in _props("geohazard")),
               key=lambda p: p["relocate_people"] or 0)  # fmt: skip
    change = lifecycle.plan_status_change(
        store.read_layer(layer), layer, spec, site["uid"], "已销号", cleared_date="2026-10-01",
        reason="搬迁避让", base_version=store.layer_version(layer), today=AS_OF,
    )  # fmt: skip
    lifecycle.commit_status_change(change, layer, store, EditorSession("张三", "local"))
    project = load_project(settings)
    declared = targets.targets_from_dict(io.read_targets_raw(settings), project.catalog)
    df = targets.measure_targets(declared, project.layers, project.township_codes, as_of=AS_OF)
    row = df[(df["code"] == "county") & (df["id"] == "relocations")].iloc[0]
    assert row["done"] == site["relocate_people"]
    assert row["light"] == ("黄" if site["relocate_people"] >= 0.6 * 154 else "红")


@pytest.mark.parametrize(
    ("done", "target", "expected"),
    [(12, 12, "绿"), (13, 12, "绿"), (8, 12, "黄"), (7, 12, "红"), (0, 2, "红"), (1, 0, ""),
     (1, None, "")],
)
def test_light(declared, done, target, expected):
    assert targets.light(done, target, declared) == expected  # 绿 ≥ 100%, 黄 ≥ 60%


def test_bad_targets_file_lists_every_problem():
    raw = {
        "targets": [
            {"id": "a", "layer": "nope", "measure": "count", "target": 1},
            {"id": "b", "layer": "geohazard", "measure": "sum", "target": 1},
            {"id": "c", "layer": "geohazard", "measure": "share", "target": 100,
             "where": {"colour": 1, "status": {"like": "x"}}},
        ]
    }  # fmt: skip
    with pytest.raises(CatalogError) as err:
        targets.targets_from_dict(raw, catalog_from_dict(catalog_raw()))
    text = str(err.value)
    parts = ("a: 未知图层", "b: sum 需要", "c: share 的 target", "没有字段 'colour'", "未知条件")
    for part in parts:
        assert part in text


def test_completeness_by_hand(project):
    shares, missing = completeness.completeness_frame(
        project.layers, project.township_codes, as_of=AS_OF
    )
    gh = [f["properties"] for f in _props("geohazard") if f["properties"]["status"] != "已销号"]
    no_cards = sorted(p["uid"] for p in gh if not p["two_cards"])
    assert sorted(missing.loc[missing["layer"] == "geohazard", "uid"]) == no_cards
    assert set(missing["missing"]) <= {"两卡"} | {""}
    county = shares[(shares["code"] == "county") & (shares["layer"] == "geohazard")].iloc[0]
    assert county["points"] == len(gh)
    assert county["两卡"] == pytest.approx(1 - len(no_cards) / len(gh), abs=1e-4)
    assert county["责任人"] == pytest.approx(sum(bool(p["resp_name"]) for p in gh) / len(gh))
    bridge = shares[(shares["code"] == "county") & (shares["layer"] == "bridge")].iloc[0]
    assert pd.isna(bridge["两卡"])  # not a bridge field


def test_completeness_counts_a_point_pending_data(project):
    layer = project.layers["geohazard"]
    gdf = layer.gdf.copy()
    first = gdf.index[0]
    gdf.loc[first, ["resp_phone", "drill_date"]] = None
    gdf.loc[first, "status"] = "待补充"  # an import with missing attributes (issue 10)
    changed = {"geohazard": layer.subset(gdf)}
    _, missing = completeness.completeness_frame(changed, project.township_codes, as_of=AS_OF)
    row = missing[missing["uid"] == gdf.loc[first, "uid"]].iloc[0]
    assert row["missing"].split("、")[:2] == ["联系电话", "最近演练"]


def test_targets_xlsx(tmp_path):
    out = tmp_path / "考核表.xlsx"
    res = CliRunner().invoke(
        main, ["targets", "--format", "xlsx", "--out", str(out), "--as-of", "2026-11-30"]
    )
    assert res.exit_code == 0, res.output
    wb = load_workbook(BytesIO(out.read_bytes()))
    assert wb.sheetnames == ["全县", "各乡镇", "一点一案一策"]
    ws = wb["全县"]
    assert "示意边界" in ws["A2"].value
    assert "演示数据" in ws["A2"].value
    header = [c.value for c in ws[3]]
    assert header == ["考核指标", "完成", "目标", "单位", "完成率", "状态", "依据"]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=4)}
    assert rows["新建地质灾害智能化监测台站"][5].value == "绿"
    assert rows["新建地质灾害智能化监测台站"][5].fill.fgColor.rgb.endswith("C6EFCE")
    assert rows["危旧桥梁改造"][5].value == "红"
    again = CliRunner().invoke(main, ["targets", "--format", "xlsx", "--out", str(out)])
    assert again.exit_code == 2
    assert "--overwrite" in again.output


def test_completeness_lists_blank_required_attributes(project):
    layer = project.layers["geohazard"]
    gdf = layer.gdf.copy()
    first = gdf.index[0]
    gdf.loc[first, "hazard_type"] = None  # imported as 待补充 without 灾害类型 (issue 10)
    changed = {"geohazard": layer.subset(gdf)}
    shares, missing = completeness.completeness_frame(
        changed, project.township_codes, as_of=AS_OF
    )
    row = missing[missing["uid"] == gdf.loc[first, "uid"]].iloc[0]
    assert row["missing"].endswith("灾害类型")
    county = shares[shares["code"] == "county"].iloc[0]
    active = int((gdf["status"] != "已销号").sum())
    assert county["必填项"] == pytest.approx((active - 1) / active, abs=1e-4)


def test_no_targets_declared_gives_empty_figures_not_a_crash(tmp_path, monkeypatch):
    """A county with no ``targets.toml`` (e.g. app servers on a database, c.f. #14)."""
    layers = tmp_path / "layers"
    ignore = shutil.ignore_patterns(".history", ".cache", "targets.toml")
    shutil.copytree(ROOT / "layers", layers, ignore=ignore)
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    project = load_project(Settings.from_env())
    declared = targets.targets_from_dict(io.read_targets_raw(project.settings), project.catalog)
    assert declared.targets == ()
    df = targets.measure_targets(declared, project.layers, project.township_codes, as_of=AS_OF)
    assert df.empty
    assert list(df.columns) == list(targets.COLUMNS)
    assert targets.targets_json(df) == {"county": [], "townships": []}
    out = tmp_path / "考核表.xlsx"
    res = CliRunner().invoke(
        main, ["targets", "--format", "xlsx", "--out", str(out), "--as-of", "2026-11-30"]
    )
    assert res.exit_code == 0, res.output
    wb = load_workbook(BytesIO(out.read_bytes()))
    assert wb.sheetnames == ["全县", "各乡镇", "一点一案一策"]
    assert [c.value for c in wb["全县"][3]][:2] == ["考核指标", "完成"]
    assert wb["全县"].max_row == 3  # title, notes, header: no target rows
    shown = CliRunner().invoke(main, ["targets", "--as-of", "2026-11-30"])
    assert shown.exit_code == 0, shown.output
    assert "未声明考核目标" in shown.output
