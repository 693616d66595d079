import pandas as pd
import pytest

import geopandas as gpd
from shapely.geometry import Point, box

from riskmap.derive import add_flag, apply_derived, classify
from riskmap.schema import coerce_layer


def _points(spec, rows):
    return coerce_layer(
        gpd.GeoDataFrame(pd.DataFrame(rows), geometry=[Point(108.66, 31.95)] * len(rows), crs=4326),
        spec,
    )


# DZ/T 0286 thresholds from DOMAIN.md, written out by hand:
# people: <100 小型, 100-499 中型, 500-999 大型, >=1000 特大型
# property (万元): <500 小型, 500-4999 中型, 5000-9999 大型, >=10000 特大型; higher wins.
@pytest.mark.parametrize(
    ("people", "property_wan", "expected"),
    [
        (0, 0, "小型"),
        (99, 499.9, "小型"),
        (100, 0, "中型"),
        (499, 0, "中型"),
        (500, 0, "大型"),
        (999, 0, "大型"),
        (1000, 0, "特大型"),
        (10, 500, "中型"),
        (10, 5000, "大型"),
        (120, 10000, "特大型"),
        (600, 600, "大型"),
        (None, None, None),
    ],
)
def test_geohazard_danger_grade(catalog, people, property_wan, expected):
    spec = catalog.get("geohazard")
    gdf = _points(
        spec, [{"uid": "1", "threat_people": people, "threat_property_wan": property_wan}]
    )
    got = classify(gdf, spec.derived[0]).iloc[0]
    assert got == expected


# GB 51222-2017 practice from DOMAIN.md: <15 轻微; 15–25 较低; 25–40 中等; ≥40 高
@pytest.mark.parametrize(
    ("depth", "expected"),
    [(0, "轻微"), (14.9, "轻微"), (15, "较低"), (25, "中等"), (39.9, "中等"), (40, "高")],
)
def test_waterlogging_risk_level(catalog, depth, expected):
    spec = catalog.get("waterlogging")
    gdf = _points(spec, [{"uid": "1", "max_depth_cm": depth}])
    assert apply_derived(gdf, spec, metric_crs="EPSG:4545")["risk_level"].iloc[0] == expected


def test_stated_grade_that_disagrees_is_replaced_and_flagged(catalog):
    spec = catalog.get("geohazard")
    gdf = _points(spec, [{"uid": "1", "threat_people": 600, "danger_grade": "中型"}])
    out = apply_derived(gdf, spec, metric_crs="EPSG:4545")
    assert out["danger_grade"].iloc[0] == "大型"
    assert "险情等级填报为中型" in out["flags"].iloc[0]
    assert "应为大型" in out["flags"].iloc[0]


def test_bridge_stated_class_kept_and_dangerous_flag(catalog):
    # JTG/T H21-2011: Dr 85 -> 2类, but a control defect may force 5类: keep stated, flag it.
    spec = catalog.get("bridge")
    gdf = _points(
        spec,
        [
            {"uid": "a", "bridge_code": "X1", "condition_class": "5类", "dr_score": 85},
            {"uid": "b", "bridge_code": "X2", "condition_class": "4类", "dr_score": 50},
            {"uid": "c", "bridge_code": "X3", "condition_class": "3类"},
            {"uid": "d", "bridge_code": "X4", "condition_class": None, "dr_score": 39},
        ],
    )
    out = apply_derived(gdf, spec, metric_crs="EPSG:4545")
    assert out["condition_class"].tolist() == ["5类", "4类", "3类", "5类"]
    assert out["is_dangerous"].tolist() == [True, True, False, True]
    assert "应为2类" in out["flags"].iloc[0]
    assert out["flags"].iloc[1] is None


def test_fire_zone_area_in_hectares(catalog):
    spec = catalog.get("firezone")
    # 0.01° x 0.01° at lat 31.95: independent estimate with pyproj.Geod
    from pyproj import Geod

    poly = box(108.60, 31.90, 108.61, 31.91)
    area_geod_ha = abs(Geod(ellps="GRS80").geometry_area_perimeter(poly)[0]) / 1e4
    gdf = coerce_layer(
        gpd.GeoDataFrame({"uid": ["z"], "zone_grade": ["I级"]}, geometry=[poly], crs=4326), spec
    )
    out = apply_derived(gdf, spec, metric_crs="EPSG:4545")
    assert out["area_ha"].iloc[0] == pytest.approx(area_geod_ha, rel=2e-4)


def test_add_flag_appends_once():
    flags = pd.Series([None, "a"], dtype=object)
    mask = pd.Series([True, True])
    once = add_flag(flags, mask, "b")
    assert once.tolist() == ["b", "a；b"]
    assert add_flag(once, mask, "b").tolist() == ["b", "a；b"]
