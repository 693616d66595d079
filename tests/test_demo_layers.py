"""The bundled demo layers (演示数据) stay inside the county outline they are filed in."""

from __future__ import annotations

import pytest

import geopandas as gpd

from riskmap import io
from riskmap.settings import Settings

SETTINGS = Settings()


@pytest.fixture(scope="module")
def county_metric():
    return io.read_county(SETTINGS).to_crs(SETTINGS.metric_crs).union_all()


@pytest.mark.parametrize("layer_id", ["geohazard", "waterlogging", "bridge", "firezone"])
def test_every_demo_feature_lies_inside_the_county(layer_id, county_metric):
    spec = io.read_catalog(SETTINGS).get(layer_id)
    gdf = gpd.read_file(spec.path(SETTINGS.layers_dir)).to_crs(SETTINGS.metric_crs)
    assert len(gdf) > 0
    assert gdf["demo"].astype(bool).all()
    # metres outside the outline, per feature: 1 m allows for 6-decimal rounding (≈ 0.1 m)
    outside_m2 = gdf.geometry.difference(county_metric).area
    assert (outside_m2 < 1.0).all(), outside_m2[outside_m2 >= 1.0]
    assert gdf.geometry.within(county_metric.buffer(1.0)).all()


def test_fire_zones_reach_the_county_line_where_they_cross_it(county_metric):
    """Clipped, not shrunk: zones at the county edge share the outline (within 1 m)."""
    spec = io.read_catalog(SETTINGS).get("firezone")
    gdf = gpd.read_file(spec.path(SETTINGS.layers_dir)).to_crs(SETTINGS.metric_crs)
    at_edge = gdf.geometry.distance(county_metric.boundary) < 1.0
    assert at_edge.sum() >= 1
    # the declared area is the clipped polygon's own area (hectares, metric CRS)
    assert (gdf["area_ha"] - gdf.geometry.area / 1e4).abs().max() < 0.01
