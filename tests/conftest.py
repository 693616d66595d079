"""Shared fixtures: the real catalog plus a minimal test layer, tiny townships, a county box."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import geopandas as gpd
from shapely.geometry import box

from riskmap.catalog import Catalog, catalog_from_dict

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
CASES = DATA / "cases"

P_LON, P_LAT = 108.6640, 31.9460
"""Reference point P (WGS84), inside 葛城街道."""


def catalog_raw() -> dict:
    return tomllib.loads((ROOT / "layers" / "catalog.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The real catalog plus ``survey``: common fields only (uid and name required)."""
    raw = catalog_raw()
    raw["layers"]["survey"] = {
        "name": "测试点位",
        "file": "survey.geojson",
        "geometry": "Point",
        "class_field": "status",
        "colors": {"在册": "#000000"},
    }
    return catalog_from_dict(raw)


@pytest.fixture(scope="session")
def gdf_townships() -> gpd.GeoDataFrame:
    """Two township boxes: 葛城街道 around P, 复兴街道 east of it (EPSG:4326)."""
    return gpd.GeoDataFrame(
        {
            "adcode": ["500229001", "500229002"],
            "adcode12": ["500229001000", "500229002000"],
            "name": ["葛城街道", "复兴街道"],
            "level": ["街道", "街道"],
            "approximate": [True, True],
            "also_covers": ["", ""],
        },
        geometry=[box(108.60, 31.90, 108.70, 31.99), box(108.70, 31.90, 108.80, 31.99)],
        crs="EPSG:4326",
    )


@pytest.fixture(scope="session")
def gdf_county(gdf_townships) -> gpd.GeoDataFrame:
    """County polygon = union of the two township boxes."""
    return gdf_townships.dissolve()[["geometry"]]


@pytest.fixture(scope="session")
def settings():
    """Settings of the checkout (bundled data, approximate townships)."""
    from riskmap.settings import Settings

    return Settings()


@pytest.fixture
def gdf_two_townships() -> gpd.GeoDataFrame:
    """Two boxes sharing the meridian 108.66 (甲, west: 500229001; 乙, east: 500229002)."""
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
