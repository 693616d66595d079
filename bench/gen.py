"""Seeded synthetic data for the benchmark: points inside the county, layer files, CSVs.

Everything is generated from a seed with `numpy.random.default_rng`, so two runs (and two
readers) benchmark the same data. Nothing here is committed: callers write into a temporary
directory.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely

from riskmap import io
from riskmap.join import township_index_xy

if TYPE_CHECKING:
    from pathlib import Path

    from riskmap.settings import Settings

SEED = 500229


def county_polygon(settings: Settings) -> shapely.Geometry:
    """Return the county outline (EPSG:4326), prepared for fast point tests."""
    geom = io.read_county(settings).geometry.iloc[0]
    shapely.prepare(geom)
    return geom


def random_lonlat(
    n: int, geom: shapely.Geometry, *, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """
    Draw `n` uniform random points inside `geom` by rejection sampling in its bbox.

    Parameters
    ----------
    n
        Number of points.
    geom
        Polygon in EPSG:4326 degrees.
    seed
        Seed of `numpy.random.default_rng`.

    Returns
    -------
    lon, lat
        ``float64`` arrays of shape ``(n,)``, EPSG:4326 degrees.
    """
    rng = np.random.default_rng(seed)
    left, bottom, right, top = shapely.bounds(geom)
    lon_parts: list[np.ndarray] = []
    lat_parts: list[np.ndarray] = []
    have = 0
    while have < n:
        m = max(1024, int((n - have) * 2.2))
        lon = rng.uniform(left, right, m)
        lat = rng.uniform(bottom, top, m)
        inside = shapely.contains_xy(geom, lon, lat)
        lon_parts.append(lon[inside])
        lat_parts.append(lat[inside])
        have += int(inside.sum())
    return np.concatenate(lon_parts)[:n], np.concatenate(lat_parts)[:n]


def points_frame(lon: np.ndarray, lat: np.ndarray) -> gpd.GeoDataFrame:
    """Bare points (no attributes), EPSG:4326."""
    return gpd.GeoDataFrame(geometry=shapely.points(lon, lat), crs="EPSG:4326")


def geohazard_layer(n: int, settings: Settings, *, seed: int = SEED) -> gpd.GeoDataFrame:
    """
    Build an `n`-point geohazard layer like the bundled demo layer, at random locations.

    Attributes are the bundled demo features' (``layers/geohazard.geojson``) drawn with
    replacement; ``uid`` is made unique. ``township_declared`` is what field staff would
    write: the township the point lies in for 95 % of rows, another township for 3 %
    (flagged as a mismatch), blank for 2 %.

    Returns
    -------
    gdf
        `n` rows, EPSG:4326, columns as the bundled layer.
    """
    rng = np.random.default_rng(seed + 1)
    template = io.read_layer_file(settings.layers_dir / "geohazard.geojson")
    props = pd.DataFrame(template.drop(columns="geometry"))
    rows = props.iloc[rng.integers(0, len(props), n)].reset_index(drop=True)
    rows["uid"] = [f"DZ-500229-{i:07d}" for i in range(n)]
    lon, lat = random_lonlat(n, county_polygon(settings), seed=seed)
    gdf_towns = io.read_townships(settings)
    index, _ = township_index_xy(lon, lat, gdf_towns)
    names = gdf_towns["name"].to_numpy(dtype=object)
    declared = names[np.maximum(index, 0)]
    draw = rng.uniform(0, 1, n)
    wrong = draw < 0.03
    declared[wrong] = names[rng.integers(0, len(names), int(wrong.sum()))]
    declared[(draw >= 0.03) & (draw < 0.05)] = None
    rows["township_declared"] = declared
    return gpd.GeoDataFrame(rows, geometry=shapely.points(lon, lat), crs="EPSG:4326")


def write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    """Write `gdf` as the layer files are written (`riskmap.io.geojson_text`)."""
    path.write_text(io.geojson_text(gdf), encoding="utf-8")
    return path


def write_survey_csv(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    """Write `gdf` as a survey table: attribute columns plus ``lon``/``lat`` (UTF-8 BOM CSV)."""
    table = pd.DataFrame(gdf.drop(columns="geometry"))
    table.insert(2, "lon", np.round(gdf.geometry.x.to_numpy(), 6))
    table.insert(3, "lat", np.round(gdf.geometry.y.to_numpy(), 6))
    table.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def json_dumps(obj: object) -> str:
    """One-line JSON (figures rounded by the caller)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
