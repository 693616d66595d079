"""The derived GeoParquet cache of layer files: same frame as the GeoJSON, never stale."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

import geopandas as gpd
from geopandas.testing import assert_geodataframe_equal

from riskmap import io
from riskmap.errors import DataFileError
from riskmap.settings import Settings

pytest.importorskip("pyarrow")

LAYERS = ("geohazard.geojson", "waterlogging.geojson", "bridge.geojson", "firezone.geojson")


@pytest.fixture
def layer(tmp_path):
    """A copy of the bundled geohazard layer and an empty cache folder."""
    src = Settings().layers_dir / "geohazard.geojson"
    path = tmp_path / "geohazard.geojson"
    shutil.copy2(src, path)
    return path, tmp_path / ".cache"


def _cache_files(cache_dir):
    return sorted(p.name for p in cache_dir.glob("*.parquet")) if cache_dir.exists() else []


def _assert_same_frame(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    assert_geodataframe_equal(a, b, check_dtype=True, check_crs=True)
    assert b.crs.equals("EPSG:4326")
    for col in a.columns:
        if col != a.geometry.name:
            assert [type(v) for v in a[col]] == [type(v) for v in b[col]], col


@pytest.mark.parametrize("name", LAYERS)
def test_cached_read_equals_geojson_read(tmp_path, name):
    path = tmp_path / name
    shutil.copy2(Settings().layers_dir / name, path)
    fresh = io.read_layer_file(path)
    first = io.read_layer_file(path, cache_dir=tmp_path / ".cache")  # miss: writes the cache
    assert len(_cache_files(tmp_path / ".cache")) == 1
    second = io.read_layer_file(path, cache_dir=tmp_path / ".cache")  # hit
    _assert_same_frame(fresh, first)
    _assert_same_frame(fresh, second)


def test_all_null_and_mixed_columns_round_trip(tmp_path):
    path = tmp_path / "odd.geojson"
    gdf = gpd.GeoDataFrame(
        {
            "uid": ["a", "b", "c"],
            "note": [None, None, None],
            "n": [1, None, 3],
            "ok": [True, False, True],
            "day": ["2026-01-02", None, "2026-03-04"],
        },
        geometry=gpd.points_from_xy([108.6, 108.7, 108.8], [31.9, 32.0, 32.1]),
        crs="EPSG:4326",
    )
    path.write_text(io.geojson_text(gdf), encoding="utf-8")
    fresh = io.read_layer_file(path)
    io.read_layer_file(path, cache_dir=tmp_path / ".cache")
    _assert_same_frame(fresh, io.read_layer_file(path, cache_dir=tmp_path / ".cache"))


def test_edit_with_same_size_and_mtime_is_seen(layer):
    """An edit that keeps size and mtime (a stamp-based cache would miss it) is read."""
    path, cache_dir = layer
    before = io.read_layer_file(path, cache_dir=cache_dir)
    stat = path.stat()
    text = path.read_text(encoding="utf-8")
    edited = text.replace('"threat_people":66', '"threat_people":99', 1)
    assert edited != text
    assert len(edited.encode()) == stat.st_size
    path.write_text(edited, encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = io.read_layer_file(path, cache_dir=cache_dir)
    assert before["threat_people"].iloc[0] == 66
    assert after["threat_people"].iloc[0] == 99
    _assert_same_frame(io.read_layer_file(path), after)
    assert len(_cache_files(cache_dir)) == 1  # the old copy is gone


def test_edit_back_and_forth(layer):
    path, cache_dir = layer
    original = path.read_bytes()
    io.read_layer_file(path, cache_dir=cache_dir)
    gdf = io.read_layer_file(path)
    path.write_text(io.geojson_text(gdf.iloc[:5]), encoding="utf-8")
    assert len(io.read_layer_file(path, cache_dir=cache_dir)) == 5
    path.write_bytes(original)
    assert len(io.read_layer_file(path, cache_dir=cache_dir)) == len(gdf)


def test_broken_cache_is_a_miss(layer):
    path, cache_dir = layer
    io.read_layer_file(path, cache_dir=cache_dir)
    (cached,) = cache_dir.glob("*.parquet")
    cached.write_bytes(b"not parquet")
    _assert_same_frame(io.read_layer_file(path), io.read_layer_file(path, cache_dir=cache_dir))


def test_unwritable_cache_dir_still_reads(layer):
    path, cache_dir = layer
    cache_dir.write_text("a file where the folder should be", encoding="utf-8")
    _assert_same_frame(io.read_layer_file(path), io.read_layer_file(path, cache_dir=cache_dir))


def test_malformed_geojson_still_raises_with_a_cache(layer):
    path, cache_dir = layer
    io.read_layer_file(path, cache_dir=cache_dir)
    path.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(DataFileError, match="malformed GeoJSON"):
        io.read_layer_file(path, cache_dir=cache_dir)


def test_read_layer_uses_layers_cache(tmp_path, catalog):
    settings = Settings(layers_dir=tmp_path)
    shutil.copy2(Settings().layers_dir / "geohazard.geojson", tmp_path / "geohazard.geojson")
    spec = catalog.get("geohazard")
    first = io.read_layer(spec, settings)
    assert _cache_files(tmp_path / io.CACHE_DIR)
    pd.testing.assert_frame_equal(first, io.read_layer(spec, settings))
