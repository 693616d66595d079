"""Offline basemap from MBTiles/PMTiles files made here (sqlite3 + Pillow; PMTiles by the
``pmtiles`` library's own MBTiles converter), installed into a static folder."""

from __future__ import annotations

import io as pyio
import math
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

import pyproj

from riskmap import basemap
from riskmap import io as rio
from riskmap.errors import CRSError, DataFileError
from riskmap.settings import Settings

HALF_WORLD_M = 20037508.342789244  # EPSG:3857 half extent, metres


def _colour(z: int, x: int, y: int) -> tuple[int, int, int]:
    """Each tile's solid colour encodes its XYZ address, so a misplaced tile is detectable."""
    return (z * 10, x % 256, y % 256)


def _png(rgb: tuple[int, int, int]) -> bytes:
    buf = pyio.BytesIO()
    Image.new("RGB", (256, 256), rgb).save(buf, format="PNG")
    return buf.getvalue()


def _xyz_independent(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    """Tile column/row through pyproj's EPSG:3857 projection (not basemap's formula)."""
    x_m, y_m = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    size_m = 2 * HALF_WORLD_M / 2**zoom
    return math.floor((x_m + HALF_WORLD_M) / size_m), math.floor((HALF_WORLD_M - y_m) / size_m)


@pytest.fixture(scope="module")
def county_bbox() -> tuple[float, float, float, float]:
    left, bottom, right, top = rio.read_county(Settings()).total_bounds
    return (float(left), float(bottom), float(right), float(top))


def _write_mbtiles(
    path: Path,
    tiles: dict[tuple[int, int, int], bytes],
    *,
    fmt: str = "png",
    bounds: str | None = None,
) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE metadata (name text, value text)")
    con.execute(
        "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, "
        "tile_data blob)"
    )
    zooms = [z for z, _, _ in tiles]
    meta = {
        "name": "测试底图",
        "format": fmt,
        "minzoom": str(min(zooms)),
        "maxzoom": str(max(zooms)),
        "attribution": "测试瓦片",
    }
    if bounds:
        meta["bounds"] = bounds
    con.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
    con.executemany(
        "INSERT INTO tiles VALUES (?, ?, ?, ?)",
        [(z, x, 2**z - 1 - y, data) for (z, x, y), data in tiles.items()],  # TMS rows
    )
    con.commit()
    con.close()


@pytest.fixture(scope="module")
def county_tiles(county_bbox) -> dict[tuple[int, int, int], bytes]:
    """Every tile of zooms 8-11 around the county (±0.2°), addresses from pyproj."""
    left, bottom, right, top = county_bbox
    tiles = {}
    for z in range(8, 12):
        x0, y0 = _xyz_independent(left - 0.2, top + 0.2, z)
        x1, y1 = _xyz_independent(right + 0.2, bottom - 0.2, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                tiles[(z, x, y)] = _png(_colour(z, x, y))
    return tiles


@pytest.fixture
def mbtiles(tmp_path, county_tiles) -> Path:
    path = tmp_path / "县域底图.mbtiles"
    _write_mbtiles(path, county_tiles)
    return path


def _expected_installed(county_tiles, county_bbox, margin=basemap.MARGIN_DEG, top_zoom=11):
    left, bottom, right, top = county_bbox
    out = set()
    for z, x, y in county_tiles:
        x0, y0 = _xyz_independent(left - margin, top + margin, z)
        x1, y1 = _xyz_independent(right + margin, bottom - margin, z)
        if z <= top_zoom and x0 <= x <= x1 and y0 <= y <= y1:
            out.add((z, x, y))
    return out


def _installed(static: Path) -> dict[tuple[int, int, int], Path]:
    found = {}
    for f in (static / "basemap").glob("*/*/*/*.png"):
        found[(int(f.parent.parent.name), int(f.parent.name), int(f.stem))] = f
    return found


@pytest.mark.parametrize("zoom", [0, 5, 10, 14, 17])
def test_tile_range_matches_pyproj(county_bbox, zoom):
    left, bottom, right, top = county_bbox
    x0, y0 = _xyz_independent(left, top, zoom)
    x1, y1 = _xyz_independent(right, bottom, zoom)
    assert basemap.tile_range(county_bbox, zoom) == (x0, y0, x1, y1)


def test_mbtiles_install_puts_each_tile_at_its_xyz_address(
    mbtiles, tmp_path, county_tiles, county_bbox
):
    archive = basemap.open_basemap(mbtiles, crs="CGCS2000")
    assert (archive.kind, archive.tile_format, archive.min_zoom, archive.max_zoom) == (
        "mbtiles",
        "png",
        8,
        11,
    )
    assert archive.crs == "cgcs2000"
    layer = basemap.install_basemap(archive, tmp_path / "static", county_bbox)
    installed = _installed(tmp_path / "static")
    expected = _expected_installed(county_tiles, county_bbox)
    assert set(installed) == expected
    assert layer.tile_count == len(expected)
    assert (layer.min_zoom, layer.max_native_zoom) == (8, 11)
    assert layer.attribution == "测试瓦片"
    assert layer.url_template.startswith("/app/static/basemap/")
    assert layer.url_template.endswith("/{z}/{x}/{y}.png")
    for (z, x, y), f in installed.items():  # the TMS row flip: colour says where it belongs
        assert Image.open(f).getpixel((128, 128)) == _colour(z, x, y)
    # the county's own centre tile at zoom 11 is there
    cz = _xyz_independent(
        (county_bbox[0] + county_bbox[2]) / 2, (county_bbox[1] + county_bbox[3]) / 2, 11
    )
    assert (11, *cz) in installed


def test_pmtiles_made_by_the_pmtiles_library_installs_the_same_tiles(
    mbtiles, tmp_path, county_tiles, county_bbox
):
    convert = pytest.importorskip("pmtiles.convert")
    pm = tmp_path / "县域底图.pmtiles"
    convert.mbtiles_to_pmtiles(str(mbtiles), str(pm), 99)
    archive = basemap.open_basemap(pm, crs="wgs84")
    assert (archive.kind, archive.tile_format, archive.min_zoom, archive.max_zoom) == (
        "pmtiles",
        "png",
        8,
        11,
    )
    layer = basemap.install_basemap(archive, tmp_path / "s2", county_bbox)
    installed = _installed(tmp_path / "s2")
    assert set(installed) == _expected_installed(county_tiles, county_bbox)
    assert layer.tile_count == len(installed)
    for (z, x, y), f in installed.items():
        assert Image.open(f).getpixel((0, 0)) == _colour(z, x, y)


def test_tile_budget_stops_at_the_zoom_that_fits(mbtiles, tmp_path, county_tiles, county_bbox):
    archive = basemap.open_basemap(mbtiles, crs="wgs84")
    want = (
        county_bbox[0] - 0.05,
        county_bbox[1] - 0.05,
        county_bbox[2] + 0.05,
        county_bbox[3] + 0.05,
    )
    slots = {}
    for z in range(8, 12):
        x0, y0 = _xyz_independent(want[0], want[3], z)
        x1, y1 = _xyz_independent(want[2], want[1], z)
        slots[z] = (x1 - x0 + 1) * (y1 - y0 + 1)
    budget = slots[8] + slots[9] + slots[10]  # exactly zooms 8-10
    layer = basemap.install_basemap(archive, tmp_path / "static", county_bbox, max_tiles=budget)
    assert layer.max_native_zoom == 10
    assert set(_installed(tmp_path / "static")) == _expected_installed(
        county_tiles, county_bbox, top_zoom=10
    )


def test_second_install_reuses_the_folder_and_a_changed_file_replaces_it(
    mbtiles, tmp_path, county_tiles, county_bbox
):
    static = tmp_path / "static"
    first = basemap.install_basemap(basemap.open_basemap(mbtiles, crs="wgs84"), static, county_bbox)
    manifest = next((static / "basemap").glob("*/manifest.json"))
    stamp = manifest.stat().st_mtime_ns
    again = basemap.install_basemap(basemap.open_basemap(mbtiles, crs="wgs84"), static, county_bbox)
    assert again == first
    assert manifest.stat().st_mtime_ns == stamp
    # a new tile package (fewer zooms) gets a new folder; the old one goes
    mbtiles.unlink()
    _write_mbtiles(mbtiles, {k: v for k, v in county_tiles.items() if k[0] <= 9})
    third = basemap.install_basemap(basemap.open_basemap(mbtiles, crs="wgs84"), static, county_bbox)
    assert third.url_template != first.url_template
    assert third.max_native_zoom == 9
    assert [p.name for p in (static / "basemap").iterdir()] == [third.url_template.split("/")[4]]


@pytest.mark.parametrize(
    ("crs", "words"),
    [
        ("", "RISKMAP_BASEMAP_CRS"),
        ("gcj02", "GCJ-02"),
        ("GCJ-02", "GCJ-02"),
        ("mercator", "无法识别"),
    ],
)
def test_undeclared_shifted_or_unknown_crs_is_refused(mbtiles, crs, words):
    with pytest.raises(CRSError, match=words):
        basemap.open_basemap(mbtiles, crs=crs)


def test_bad_files_are_named_in_chinese(tmp_path, county_bbox, county_tiles):
    with pytest.raises(DataFileError, match="不存在"):
        basemap.open_basemap(tmp_path / "无.mbtiles", crs="wgs84")
    (tmp_path / "底图.zip").write_bytes(b"PK")
    with pytest.raises(DataFileError, match=r"底图\.zip.*\.mbtiles 或 \.pmtiles"):
        basemap.open_basemap(tmp_path / "底图.zip", crs="wgs84")
    (tmp_path / "坏.mbtiles").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(DataFileError, match="不是有效的 MBTiles"):
        basemap.open_basemap(tmp_path / "坏.mbtiles", crs="wgs84")
    vector = tmp_path / "矢量.mbtiles"
    _write_mbtiles(vector, {(8, 0, 0): b"\x1a\x00"}, fmt="pbf")
    with pytest.raises(DataFileError, match="矢量瓦片"):
        basemap.open_basemap(vector, crs="wgs84")
    elsewhere = tmp_path / "北京.mbtiles"  # a package of another area, bounds declared
    _write_mbtiles(elsewhere, dict(list(county_tiles.items())[:1]), bounds="116.0,39.5,117.0,40.5")
    with pytest.raises(DataFileError, match="不相交"):
        basemap.install_basemap(
            basemap.open_basemap(elsewhere, crs="wgs84"), tmp_path / "s", county_bbox
        )


def test_settings_read_the_basemap_from_the_environment(tmp_path):
    s = Settings.from_env(
        {"RISKMAP_BASEMAP": str(tmp_path / "a.mbtiles"), "RISKMAP_BASEMAP_CRS": "wgs84"}
    )
    assert s.basemap == tmp_path / "a.mbtiles"
    assert s.basemap_crs == "wgs84"
    assert Settings.from_env({}).basemap is None
