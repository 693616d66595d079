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
import pyarrow as pa
import pyarrow.compute as pc

import geopandas as gpd
import shapely

from riskmap import io
from riskmap.cells import STR_DTYPE
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
    # Built in Arrow (no Python str per row), so the generator's own peak stays small.
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(n)), pa.string()), 7, "0")
    rows["uid"] = pd.Series(
        pd.array(pc.binary_join_element_wise("DZ-500229-", digits, ""), dtype=STR_DTYPE)
    )
    lon, lat = random_lonlat(n, county_polygon(settings), seed=seed)
    gdf_towns = io.read_townships(settings)
    index, _ = township_index_xy(lon, lat, gdf_towns)
    names = pa.array(gdf_towns["name"].to_numpy(dtype=object), type=pa.string())
    pick = np.maximum(index, 0)
    draw = rng.uniform(0, 1, n)
    wrong = draw < 0.03
    pick[wrong] = rng.integers(0, len(names), int(wrong.sum()))
    blank = (draw >= 0.03) & (draw < 0.05)
    declared = names.take(pa.array(pick, mask=blank))
    rows["township_declared"] = pd.Series(pd.array(declared, dtype=STR_DTYPE))
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


UPLOAD_LIMIT_BYTES = 20 * 1024 * 1024
"""The app's upload limit (20 MiB): the messy survey file at 100k rows must stay under it."""


def _dms(value: np.ndarray) -> np.ndarray:
    """Degrees as ``108°39'50.40"`` text (object array)."""
    deg = np.floor(value)
    minutes = np.floor((value - deg) * 60)
    seconds = (value - deg - minutes / 60) * 3600
    return np.array(
        [f"{d:.0f}°{m:02.0f}'{s:05.2f}\"" for d, m, s in zip(deg, minutes, seconds, strict=True)],
        dtype=object,
    )


def write_messy_survey_csv(
    n: int, settings: Settings, path: Path, *, seed: int = SEED
) -> dict[str, int]:
    """
    Write an `n`-row survey table as field staff send it (UTF-8 BOM CSV), for the import case.

    * Chinese headers (the catalog labels and aliases: 统一编号, 名称, 灾害类型, 威胁人数, …,
      经度, 纬度), not the field keys;
    * coordinates in decimal degrees for 80 % of rows and in DMS (``108°39'50.40"``) for 20 %;
    * 2 % bad rows, rejected by the importer: 1 % with an unreadable longitude (``"不详"``),
      1 % with a point outside the county (lon + 3°);
    * 20 % of rows with a warning but imported: 10 % a declared township that differs from
      the located one, 10 % a blank required attribute (灾害类型: imported as 待补充).

    Returns
    -------
    counts
        ``{"rows", "bad", "warned", "bytes"}`` as written.
    """
    rng = np.random.default_rng(seed + 2)
    lon, lat = random_lonlat(n, county_polygon(settings), seed=seed)
    gdf_towns = io.read_townships(settings)
    index, _ = township_index_xy(lon, lat, gdf_towns)
    names = gdf_towns["name"].to_numpy(dtype=object)
    declared = names[np.maximum(index, 0)]
    lon_txt = np.char.mod("%.6f", lon).astype(object)
    lat_txt = np.char.mod("%.6f", lat).astype(object)
    dms = rng.uniform(0, 1, n) < 0.20
    lon_txt[dms], lat_txt[dms] = _dms(lon[dms]), _dms(lat[dms])
    kind = rng.permutation(n)  # disjoint row sets by rank: exact percentages
    unreadable = kind < n // 100
    outside = (kind >= n // 100) & (kind < 2 * (n // 100))
    lon_txt[unreadable] = "不详"
    lon_txt[outside] = np.char.mod("%.6f", lon[outside] + 3.0).astype(object)
    mismatch = (kind >= 2 * (n // 100)) & (kind < 2 * (n // 100) + n // 10)
    declared[mismatch] = names[(np.maximum(index[mismatch], 0) + 1) % len(names)]
    blank_type = (kind >= 2 * (n // 100) + n // 10) & (kind < 2 * (n // 100) + 2 * (n // 10))
    hazard = rng.choice(["滑坡", "崩塌", "泥石流", "不稳定斜坡"], n).astype(object)
    hazard[blank_type] = ""
    frame = pd.DataFrame(
        {
            "统一编号": [f"DZ-500229-{i:07d}" for i in range(n)],
            "名称": [f"隐患点{i}" for i in range(n)],
            "所属乡镇": declared,
            "灾害类型": hazard,
            "威胁户数": rng.integers(0, 50, n),
            "威胁人数": rng.integers(0, 400, n),
            "威胁财产(万元)": np.round(rng.uniform(0, 800, n), 1),
            "经度": lon_txt,
            "纬度": lat_txt,
            "状态": rng.choice(["在册", "监测中", "治理中"], n),
        }
    )
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    return {
        "rows": n,
        "bad": int(unreadable.sum() + outside.sum()),
        "warned": int(mismatch.sum() + blank_type.sum()),
        "bytes": path.stat().st_size,
    }
