"""Property: the fast join gives exactly `geopandas.sjoin`'s answers, border rule included.

`tests/test_join.py::test_agrees_with_sjoin` draws random points and partition vertices;
this adds points interpolated along township borders (on or within rounding of an edge),
an exactly axis-aligned partition whose borders hold exactly representable points, and
large random batches that exercise the grid's settled cells.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geopandas as gpd
import shapely
from shapely.geometry import box

from riskmap import io, join
from riskmap.settings import Settings

FAST = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def gdf_towns() -> gpd.GeoDataFrame:
    return io.read_townships(Settings())


@pytest.fixture(scope="module")
def borders(gdf_towns) -> np.ndarray:
    """Exterior rings of every township part (the shared borders and the county edge)."""
    return shapely.get_exterior_ring(shapely.get_parts(gdf_towns.geometry.to_numpy()))


def expected(lon, lat, gdf_towns) -> list[str | None]:
    """`sjoin(within)`; unmatched points take the lowest code among those they intersect."""
    pts = gpd.GeoDataFrame(geometry=shapely.points(lon, lat), crs=gdf_towns.crs)
    cols = gdf_towns[["adcode", "geometry"]]
    within = gpd.sjoin(pts, cols, how="left", predicate="within")
    assert within.index.is_unique
    touch = gpd.sjoin(pts, cols, how="inner", predicate="intersects")
    lowest = touch.groupby(level=0)["adcode"].min()
    return [
        w if isinstance(w, str) else lowest.get(k)
        for k, w in zip(within.index, within["adcode"], strict=True)
    ]


def fast(lon, lat, gdf_towns) -> list[str | None]:
    index, _ = join.township_index_xy(np.asarray(lon), np.asarray(lat), gdf_towns)
    codes = gdf_towns["adcode"].tolist()
    return [codes[i] if i >= 0 else None for i in index]


def frame(lon, lat, gdf_towns) -> list[str | None]:
    pts = gpd.GeoDataFrame(geometry=shapely.points(lon, lat), crs="EPSG:4326")
    out = join.join_points_township(pts, gdf_towns)["township_code"]
    return [c if isinstance(c, str) else None for c in out]


@FAST
@given(picks=st.lists(st.tuples(st.integers(0, 10_000), st.floats(0, 1)), min_size=1, max_size=60))
def test_points_along_borders(gdf_towns, borders, picks):
    ring = borders[[i % len(borders) for i, _ in picks]]
    pts = shapely.line_interpolate_point(ring, [f for _, f in picks], normalized=True)
    lon, lat = shapely.get_x(pts), shapely.get_y(pts)
    want = expected(lon, lat, gdf_towns)
    assert fast(lon, lat, gdf_towns) == want
    assert frame(lon, lat, gdf_towns) == want


@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_random_batches(gdf_towns, seed):
    rng = np.random.default_rng(seed)
    left, bottom, right, top = gdf_towns.total_bounds
    lon = rng.uniform(left - 0.02, right + 0.02, 2000)
    lat = rng.uniform(bottom - 0.02, top + 0.02, 2000)
    assert fast(lon, lat, gdf_towns) == expected(lon, lat, gdf_towns)


def test_every_vertex(gdf_towns):
    xy = np.unique(shapely.get_coordinates(gdf_towns.geometry.to_numpy()), axis=0)
    want = expected(xy[:, 0], xy[:, 1], gdf_towns)
    assert fast(xy[:, 0], xy[:, 1], gdf_towns) == want
    assert frame(xy[:, 0], xy[:, 1], gdf_towns) == want


@pytest.fixture(scope="module")
def gdf_grid() -> gpd.GeoDataFrame:
    """A 4 x 3 partition of unit-ish boxes on binary fractions: borders hold exact points."""
    cells, codes = [], []
    for col in range(4):
        for row in range(3):
            cells.append(box(108.5 + col * 0.125, 31.75 + row * 0.125,
                             108.625 + col * 0.125, 31.875 + row * 0.125))  # fmt: skip
            codes.append(f"5002291{(col * 3 + row) * 5 % 12:02d}")  # a permutation of 0..11
    return gpd.GeoDataFrame({"adcode": codes, "name": codes}, geometry=cells, crs="EPSG:4326")


@FAST
@given(
    data=st.lists(
        st.tuples(st.integers(0, 32), st.integers(0, 24), st.booleans(), st.booleans()),
        min_size=1,
        max_size=80,
    )
)
def test_exact_borders_of_a_box_partition(gdf_grid, data):
    step = 0.125 / 8  # a lattice that contains every border and corner exactly
    lon = np.array([108.5 + i * step + (0 if on else step / 2) for i, _, on, _ in data])
    lat = np.array([31.75 + j * step + (0 if on else step / 2) for _, j, _, on in data])
    want = expected(lon, lat, gdf_grid)
    assert fast(lon, lat, gdf_grid) == want
