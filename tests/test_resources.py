"""Emergency resources: nearest shelter (riskmap.resources) and the demo resource layers."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
from pyproj import Geod
from shapely.geometry import Point, box

from riskmap import io
from riskmap.errors import CRSError, SchemaError
from riskmap.importers import plan_import
from riskmap.project import load_project
from riskmap.resources import SHELTER_COLUMNS, nearest_shelter, shelters_from_layers
from riskmap.settings import Settings

GEOD = Geod(ellps="WGS84")
METRIC = "EPSG:4545"


@pytest.fixture
def gdf_shelters() -> gpd.GeoDataFrame:
    """Two shelters 2 km apart (east-west) in metric coordinates near Chengkou."""
    return gpd.GeoDataFrame(
        {"uid": ["S1", "S2"], "name": ["甲", "乙"], "capacity": [100, 50]},
        geometry=[Point(500_000, 3_540_000), Point(502_000, 3_540_000)],
        crs=METRIC,
    )


def test_nearest_shelter_distance_and_remaining_capacity(gdf_shelters):
    gdf_points = gpd.GeoDataFrame(
        {"people": [30, 40, 7, 5]},
        geometry=[Point(500_300, 3_540_400), Point(501_900, 3_540_000),
                  Point(499_000, 3_540_000), None],
        crs=METRIC,
        index=[10, 11, 12, 13],
    )  # fmt: skip
    out = nearest_shelter(gdf_points, gdf_shelters.to_crs(4326), metric_crs=METRIC, people="people")
    assert list(out.columns) == SHELTER_COLUMNS
    assert list(out.index) == [10, 11, 12, 13]
    assert out["shelter_uid"].tolist()[:3] == ["S1", "S2", "S1"]
    # 300-400-500 triangle, 100 m, 1000 m (metric CRS; the WGS84 round trip costs < 1 mm)
    assert np.allclose(out["shelter_distance_m"].iloc[:3], [500, 100, 1000], atol=1e-3)
    # S1 takes 30 + 7 people, S2 takes 40
    assert out["shelter_remaining"].tolist()[:3] == [63, 10, 63]
    assert pd.isna(out.loc[13, "shelter_uid"])
    assert np.isnan(out.loc[13, "shelter_distance_m"])


def test_polygon_containing_a_shelter_is_at_distance_zero(gdf_shelters):
    zone = gpd.GeoDataFrame(geometry=[box(499_000, 3_539_000, 500_500, 3_541_000)], crs=METRIC)
    out = nearest_shelter(zone, gdf_shelters, metric_crs=METRIC)
    assert out["shelter_uid"].iloc[0] == "S1"
    assert out["shelter_distance_m"].iloc[0] == 0
    assert out["shelter_remaining"].iloc[0] == 100


def test_no_shelter_and_bad_input(gdf_shelters):
    pts = gpd.GeoDataFrame(geometry=[Point(500_000, 3_540_000)], crs=METRIC)
    out = nearest_shelter(pts, gdf_shelters.iloc[:0], metric_crs=METRIC)
    assert out["shelter_uid"].isna().all()
    with pytest.raises(CRSError):
        nearest_shelter(gpd.GeoDataFrame(geometry=[Point(0, 0)]), gdf_shelters, metric_crs=METRIC)
    with pytest.raises(SchemaError, match="capacity"):
        nearest_shelter(pts, gdf_shelters.drop(columns="capacity"), metric_crs=METRIC)
    with pytest.raises(SchemaError, match="people"):
        nearest_shelter(pts, gdf_shelters, metric_crs=METRIC, people="people")


def test_demo_resources_sit_near_their_real_township_seat():
    """Every demo resource lies in its declared township, within 3 km of the real seat."""
    settings = Settings()
    project = load_project(settings)
    seats = {}
    with (settings.data_dir / "townships.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["seat_lon"]:
                seats[row["name"]] = (float(row["seat_lon"]), float(row["seat_lat"]))
    seats["复兴街道"] = seats["葛城街道"]  # no seat point: shares the county town
    roles = {spec.id: spec.role for spec in project.catalog}
    assert {k: v for k, v in roles.items() if v != "risk"} == {
        "shelters": "shelter", "teams": "team", "depots": "depot"}  # fmt: skip
    for lid in ("shelters", "teams", "depots"):
        gdf = project.layers[lid].gdf
        assert gdf["demo"].all()
        assert gdf["source"].str.startswith("演示数据").all()
        for row in gdf.itertuples():
            lon, lat = seats[row.township_declared]
            assert GEOD.inv(lon, lat, row.geometry.x, row.geometry.y)[2] < 3000, row.uid
        assert not gdf["flags"].fillna("").str.contains("不符").any()
    gdf_s = shelters_from_layers(project.layers)
    assert len(gdf_s) == len(project.layers["shelters"].gdf)
    assert (gdf_s["capacity"] > 0).all()
    # every township has at least one shelter
    assert set(project.layers["shelters"].gdf["township_declared"]) == set(
        project.township_codes["name"]
    )


def test_shelters_import_through_the_normal_importer():
    settings = Settings()
    spec = io.read_catalog(settings).get("shelters")
    data = (
        "名称,场所类型,容纳人数,有效面积,经度,纬度,所属乡镇\n"
        "巴山中学避难场所,室内,600,1300,108.4680,32.1120,巴山镇\n"
        "坏行,室外,很多,,108.47,32.11,巴山镇\n"
    ).encode()
    plan = plan_import(
        data,
        "shelters.csv",
        spec,
        existing=io.empty_layer(spec),
        gdf_townships=io.read_townships(settings),
        gdf_county=io.read_county(settings),
    )
    assert plan.report.counts["added"] == 1
    assert plan.report.counts["rejected"] == 1
    row = plan.gdf_result.iloc[0]
    assert row["capacity"] == 600
    # the township is joined for the preview; it is derived at load, not stored
    assert plan.gdf_new.iloc[0]["township"] == "巴山镇"
