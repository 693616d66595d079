import pandas as pd
import pytest

import geopandas as gpd
from shapely.geometry import LineString, Point

from riskmap.cells import STR_DTYPE
from riskmap.errors import SchemaError
from riskmap.schema import coerce_layer, layer_problems, parse_bool, parse_date, validate_layer


def test_codes_stay_text(catalog):
    spec = catalog.get("geohazard")
    gdf = gpd.GeoDataFrame(
        {"uid": ["001", 2.0], "township_declared": [500229001000.0, None]},
        geometry=[Point(108.66, 31.95)] * 2,
        crs=4326,
    )
    out = coerce_layer(gdf, spec)
    assert out["uid"].tolist() == ["001", "2"]
    # Text stays Arrow-backed (pandas' ``str`` dtype, pyarrow storage); missing = NaN.
    assert out["township_declared"].dtype == STR_DTYPE
    assert out["township_declared"].array.dtype.storage == "pyarrow"
    assert out["township_declared"].iloc[0] == "500229001000"
    assert out["township_declared"].isna().tolist() == [False, True]


def test_types(catalog):
    spec = catalog.get("geohazard")
    gdf = gpd.GeoDataFrame(
        {
            "threat_people": ["12", None],
            "has_station": ["是", "否"],
            "drill_date": ["2026/3/5", ""],
        },
        geometry=[Point(108.66, 31.95)] * 2,
        crs=4326,
    )
    out = coerce_layer(gdf, spec)
    assert str(out["threat_people"].dtype) == "Int64"
    assert out["threat_people"].iloc[0] == 12
    assert out["threat_people"].isna().iloc[1]
    assert out["has_station"].tolist() == [True, False]
    assert out["drill_date"].dtype == STR_DTYPE
    assert out["drill_date"].iloc[0] == "2026-03-05"
    assert out["drill_date"].isna().tolist() == [False, True]


def test_every_problem_reported_at_once(catalog):
    spec = catalog.get("geohazard")
    gdf = gpd.GeoDataFrame(
        {
            "uid": ["a", "a", None],
            "name": ["x", "", "z"],
            "hazard_type": ["滑坡", "火山", "崩塌"],
            "threat_people": [5, -1, "many"],
        },
        geometry=[Point(108.66, 31.95), LineString([(0, 0), (1, 1)]), None],
        crs=4326,
    )
    problems = layer_problems(gdf, spec)
    text = "\n".join(map(str, problems))
    assert "a hazard_type=火山" in text
    assert "应为以下之一" in text
    assert "a threat_people=-1" in text
    assert "#3 threat_people=many" in text
    assert "a name=: 名称必填" in text
    assert "#3 uid=: 统一编号必填" in text
    assert "LineString" in text
    assert "#3 geometry=null" in text
    assert "重复" in text
    with pytest.raises(SchemaError, match="处问题"):
        validate_layer(gdf, spec, source="x.geojson")


def test_bool_and_date_parsers():
    assert parse_bool("有") is True
    assert parse_bool("×") is False
    assert parse_bool(" ") is None
    with pytest.raises(ValueError, match="boolean"):
        parse_bool("maybe")
    assert parse_date("2026年3月5日") == "2026-03-05"
    assert parse_date(pd.Timestamp("2026-01-02 10:00")) == "2026-01-02"
    with pytest.raises(ValueError, match="date"):
        parse_date("next week")
