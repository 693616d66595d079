"""Shared fixtures: settings pointing at the bundled data, tiny in-code townships."""

from __future__ import annotations

import pytest

import geopandas as gpd
from shapely.geometry import box

from riskmap import io
from riskmap.settings import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of the checkout (bundled data, approximate townships)."""
    return Settings()


@pytest.fixture(scope="session")
def catalog(settings):
    return io.read_catalog(settings)


@pytest.fixture
def gdf_two_townships() -> gpd.GeoDataFrame:
    """Two unit-ish boxes sharing the meridian 108.66 (a, west: 500229001; b, east: 500229002)."""
    return gpd.GeoDataFrame(
        {
            "adcode": ["500229001", "500229002"],
            "adcode12": ["500229001000", "500229002000"],
            "name": ["甲街道", "乙街道"],
            "level": ["街道", "街道"],
            "approximate": [True, True],
            "also_covers": ["", ""],
        },
        geometry=[box(108.60, 31.90, 108.66, 32.00), box(108.66, 31.90, 108.72, 32.00)],
        crs="EPSG:4326",
    )
