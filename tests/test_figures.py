"""Headline figures, counts, typed tables and the filter spec: the library behind a thin app.

Expected values are computed from the bundled GeoJSON files read as plain JSON (not through
riskmap), or worked out by hand.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from riskmap import aggregate, exporters
from riskmap import project as project_module
from riskmap.catalog import STATUS_ORDER, UNCLASSED, FieldSpec
from riskmap.filters import FeatureFilter
from riskmap.layers import filter_features
from riskmap.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def project():
    return project_module.load_project(Settings())


def _raw(layer_file: str) -> list[dict]:
    text = (ROOT / "layers" / layer_file).read_text("utf-8")
    return [f["properties"] for f in json.loads(text)["features"]]


@pytest.mark.parametrize(
    ("value", "unit", "decimals", "expected"),
    [
        (2453, "人", None, "2453 人"),
        (24_530, "人", None, "2.5 万人"),
        (830, "万元", None, "830 万元"),
        (12_500, "万元", None, "1.25 亿元"),
        (3, aggregate.COUNT_UNIT, None, "3 处"),
        (6283.4, "ha", None, "6283 ha"),
        (60.7, "万元", 1, "60.7 万元"),
        (150.7, "万元", 1, "151 万元"),  # from 100 up a tile shows whole units
        (6283.37, "ha", 2, "6283 ha"),
        (12.345, "m", 1, "12.3 m"),
        (0, "户", None, "0 户"),
    ],
)
def test_format_quantity(value, unit, decimals, expected):
    assert aggregate.format_quantity(value, unit, decimals=decimals) == expected


def test_headline_figures_follow_the_catalog(project):
    figures = aggregate.headline_figures(project.layers)
    counts = {f.layer_id: f.value for f in figures if f.field is None}
    for lid, layer in project.layers.items():
        assert counts[lid] == len(_raw(layer.spec.file))
    summed = [(f.layer_id, f.field) for f in figures if f.field is not None]
    declared = [(lid, s) for lid, layer in project.layers.items() for s in layer.spec.sums]
    assert summed == declared
    by_field = {(f.layer_id, f.field): f for f in figures}
    # sums are over 在册隐患 only (issue 11: one definition; a cleared hazard threatens no one)
    people = sum(
        p["threat_people"] or 0 for p in _raw("geohazard.geojson") if p["status"] != "已销号"
    )
    assert by_field["geohazard", "threat_people"].value == people
    assert by_field["geohazard", "threat_people"].label == "威胁人数"
    assert by_field["geohazard", "threat_people"].unit == "人"


def test_headline_labels_made_unique_across_layers(project):
    geo = project.layers["geohazard"]
    twin = replace(geo, spec=replace(geo.spec, id="twin", name="孪生图层"))
    figures = aggregate.headline_figures({"geohazard": geo, "twin": twin})
    labels = [f.label for f in figures]
    assert len(labels) == len(set(labels))
    assert "孪生图层·威胁人数" in labels


def test_status_and_class_counts_count_each_feature_once(project):
    raw = _raw("geohazard.geojson")
    status = aggregate.status_counts({"geohazard": project.layers["geohazard"]})
    got = dict(zip(status["状态"], status["数量"], strict=True))
    for s in STATUS_ORDER:
        assert got[s] == sum(p.get("status") == s for p in raw)
    assert status["数量"].sum() == len(raw)
    classes = aggregate.class_counts({"geohazard": project.layers["geohazard"]})
    assert classes["数量"].sum() == len(raw)
    assert set(classes["等级"]) <= {"小型", "中型", "大型", "特大型", UNCLASSED}


def test_typed_table_integers_decimals_blanks(project):
    spec = project.layers["geohazard"].spec
    frame = pd.DataFrame(
        {
            "threat_people": [26.0, None],
            "threat_property_wan": [108.60000000000001, 1982.9999999999998],
            "has_station": [True, None],
            "name": ["甲", None],
        }
    )
    keys = ["name", "threat_people", "threat_property_wan", "has_station"]
    table = exporters.typed_table(frame, spec, keys, blank="")
    assert list(table.columns) == ["名称", "威胁人数(人)", "威胁财产(万元)", "智能监测站"]
    assert str(table["威胁人数(人)"].dtype) == "Int64"
    assert table["威胁人数(人)"].iloc[0] == 26
    assert pd.isna(table["威胁人数(人)"].iloc[1])
    assert table["威胁财产(万元)"].tolist() == [108.6, 1983.0]
    assert table["智能监测站"].tolist() == ["是", ""]
    assert table["名称"].tolist() == ["甲", ""]
    one = replace(spec, fields={**spec.fields, "threat_property_wan": FieldSpec(
        "threat_property_wan", "威胁财产", "float", unit="万元", decimals=0)})  # fmt: skip
    assert exporters.typed_table(frame, one, keys)["威胁财产(万元)"].tolist() == [109.0, 1983.0]


def test_filter_spec_matches_filter_features(project):
    code, name = project.township("巴山镇")
    spec_filter = FeatureFilter(township_code=code, statuses=("在册", "监测中"), text="")
    out = spec_filter.apply(project.layers)
    for lid, layer in project.layers.items():
        expected = filter_features(layer, township_codes=[code], statuses=["在册", "监测中"])
        assert out[lid].gdf.index.tolist() == expected.index.tolist()
        assert set(out[lid].shares["township_code"]) <= {code}
    assert spec_filter.describe(project.layers, name) == "筛选条件：乡镇 巴山镇；状态 在册、监测中"
    assert FeatureFilter().describe(project.layers) == "筛选条件：无（全部点位）"


def test_filter_blank_status_counts_as_listed(project):
    geo = project.layers["geohazard"]
    gdf = geo.gdf.copy()
    first = gdf.index[0]
    gdf.loc[first, "status"] = None
    layers = {"geohazard": replace(geo, gdf=gdf)}
    listed = FeatureFilter(statuses=("在册",)).apply(layers)["geohazard"].gdf
    monitored = FeatureFilter(statuses=("监测中",)).apply(layers)["geohazard"].gdf
    assert first in listed.index
    assert first not in monitored.index


def test_filter_describe_names_layers_classes_text(project):
    f = FeatureFilter(
        layer_ids=("geohazard",),
        classes={"geohazard": ("大型", "特大型")},
        text=" 滑坡 ",
    )
    assert f.describe(project.layers) == (
        "筛选条件：图层 地质灾害隐患点；地质灾害隐患点险情等级 大型、特大型；名称或编号含“滑坡”"
    )
    out = f.apply(project.layers)
    assert list(out) == ["geohazard"]
    assert set(out["geohazard"].gdf["danger_grade"]) <= {"大型", "特大型"}
    assert all("滑坡" in n or "滑坡" in k for n, k in zip(
        out["geohazard"].gdf["name"], out["geohazard"].gdf["uid"], strict=True))  # fmt: skip
    assert len(out["geohazard"].gdf) > 0
