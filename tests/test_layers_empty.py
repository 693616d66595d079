"""A declared layer with no file yet (`io.empty_layer`) must prepare to an empty layer."""

from __future__ import annotations

import tomllib
from pathlib import Path

import geopandas as gpd
from shapely.geometry import box

from riskmap.catalog import catalog_from_dict
from riskmap.io import empty_layer
from riskmap.layers import SHARE_COLUMNS, prepare_layer

ROOT = Path(__file__).parent.parent


def test_prepare_empty_point_layer_keeps_columns():
    text = (ROOT / "layers" / "catalog.toml").read_text("utf-8")
    catalog = catalog_from_dict(tomllib.loads(text))
    spec = catalog.get("waterlogging")
    townships = gpd.GeoDataFrame(
        {"adcode": ["500229001"], "name": ["葛城街道"]},
        geometry=[box(108.6, 31.9, 108.7, 32.0)],
        crs="EPSG:4326",
    )
    layer = prepare_layer(empty_layer(spec), spec, townships, metric_crs="EPSG:4545")
    assert layer.gdf.empty
    assert spec.key in layer.gdf.columns
    assert list(layer.shares.columns) == SHARE_COLUMNS
    assert layer.shares.empty
