"""Point/polygon joins to townships; expected values worked out independently of the code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geopandas as gpd
import shapely
from pyproj import Geod
from shapely.geometry import Point, box

from riskmap import io, join
from riskmap.errors import CRSError, SchemaError
from riskmap.settings import Settings

METRIC = "EPSG:4545"
GECHENG, FUXING, BASHAN = "500229001", "500229002", "500229102"


@pytest.fixture(scope="module")
def gdf_towns() -> gpd.GeoDataFrame:
    return io.read_townships(Settings())


@pytest.fixture(scope="module")
def codes() -> pd.DataFrame:
    return io.read_township_codes(Settings())


@pytest.fixture
def gdf_boxes() -> gpd.GeoDataFrame:
    """Three boxes; codes deliberately not in row order to exercise the tie-break.

    +-------------+
    |   C "3"     |      y 1..2
    +------+------+
    | A"2" | B"1" |      y 0..1
    +------+------+
    0      1      2
    """
    return gpd.GeoDataFrame(
        {"adcode": ["2", "1", "3"], "name": ["A", "B", "C"], "also_covers": ["", "", ""]},
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 2, 2)],
        crs="EPSG:4326",
    )


def _points(xy, crs="EPSG:4326", index=None) -> gpd.GeoDataFrame:
    geoms = [None if p is None else Point(p) for p in xy]
    return gpd.GeoDataFrame(geometry=geoms, crs=crs, index=index)


# --- hand-built boxes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xy", "township", "flag"),
    [
        ((0.5, 0.5), "A", ""),
        ((1.5, 0.5), "B", ""),
        ((1.0, 1.5), "C", ""),  # inside C although x is on the A/B border line
        ((1.0, 0.5), "B", "border"),  # A|B edge: codes 2, 1 -> "1"
        ((1.0, 1.0), "B", "border"),  # vertex of A, B, C -> "1"
        ((0.5, 1.0), "A", "border"),  # A|C edge: codes 2, 3 -> "2"
        ((1.5, 1.0), "B", "border"),  # B|C edge: codes 1, 3 -> "1"
        ((0.0, 0.5), "A", "border"),  # outer edge of A only
        ((2.0, 2.0), "C", "border"),  # outer corner of C
        ((3.0, 0.5), None, "outside"),
        ((-1e-9, 0.5), None, "outside"),
    ],
)
def test_boxes(gdf_boxes, xy, township, flag):
    out = join.join_points_township(_points([xy]), gdf_boxes)
    assert out["join_flag"].iloc[0] == flag
    if township is None:
        assert pd.isna(out["township"].iloc[0])
        assert pd.isna(out["township_code"].iloc[0])
    else:
        assert out["township"].iloc[0] == township
        code = dict(zip(gdf_boxes["name"], gdf_boxes["adcode"], strict=True))[township]
        assert out["township_code"].iloc[0] == code


def test_rows_in_rows_out(gdf_boxes):
    index = pd.Index([10, 3, 3, 99, 7, 5], name="uid")
    pts = _points([(0.5, 0.5), (5, 5), (1, 0.5), None, (1.5, 1.5), (0.2, 0.2)], index=index)
    pts.loc[5, "geometry"] = Point()  # POINT EMPTY
    pts["extra"] = list("abcdef")
    out = join.join_points_township(pts, gdf_boxes)
    assert len(out) == len(pts)
    assert out.index.equals(pts.index)
    assert list(out["extra"]) == list("abcdef")
    assert list(out["join_flag"]) == ["", "outside", "border", "no_geometry", "", "no_geometry"]
    assert list(out["township"].fillna("-")) == ["A", "-", "B", "-", "C", "-"]
    assert "township" not in pts.columns  # input not mutated


def test_missing_crs_raises(gdf_boxes):
    pts = _points([(0.5, 0.5)]).set_crs(None, allow_override=True)
    with pytest.raises(CRSError, match="gdf_points"):
        join.join_points_township(pts, gdf_boxes)
    with pytest.raises(CRSError, match="gdf_townships"):
        join.join_points_township(
            _points([(0.5, 0.5)]), gdf_boxes.set_crs(None, allow_override=True)
        )


def test_non_points_raise(gdf_boxes):
    polys = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(SchemaError, match="non-Point"):
        join.join_points_township(polys, gdf_boxes)


def test_index_xy_raw_arrays(gdf_boxes):
    lon = np.array([0.5, 1.0, 9.0, np.nan])
    lat = np.array([0.5, 0.5, 9.0, 0.5])
    index, flag = join.township_index_xy(lon, lat, gdf_boxes)
    assert index.tolist() == [0, 1, -1, -1]
    assert flag.tolist() == [
        join.FLAG_INSIDE,
        join.FLAG_BORDER,
        join.FLAG_OUTSIDE,
        join.FLAG_NO_GEOMETRY,
    ]


# --- the bundled approximate partition --------------------------------------------------------


def test_seats_join_to_own_township(gdf_towns, codes):
    seats = codes.dropna(subset=["seat_lon"])
    pts = gpd.GeoDataFrame(
        {"expected": seats["adcode"].to_numpy()},
        geometry=gpd.points_from_xy(
            seats["seat_lon"].astype(float), seats["seat_lat"].astype(float)
        ),
        crs="EPSG:4326",
    )
    out = join.join_points_township(pts, gdf_towns)
    assert (out["township_code"] == out["expected"]).all()
    assert (out["join_flag"] == "").all()
    # The same points in Gauss-Krüger metres are reprojected first and give the same answer.
    out_gk = join.join_points_township(pts.to_crs(METRIC), gdf_towns)
    assert list(out_gk["township_code"]) == list(out["township_code"])
    assert out_gk.crs == pts.to_crs(METRIC).crs  # output keeps the input CRS


def test_beijing_is_outside(gdf_towns):
    out = join.join_points_township(_points([(116.39, 39.91)]), gdf_towns)
    assert out["join_flag"].iloc[0] == "outside"
    assert pd.isna(out["township"].iloc[0])


def _shared_border(gdf_towns: gpd.GeoDataFrame) -> tuple[int, int, shapely.Geometry]:
    geoms = gdf_towns.geometry.to_numpy()
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            shared = shapely.intersection(geoms[i].boundary, geoms[j].boundary)
            if shapely.get_type_id(shared) in {1, 5} and shared.length > 0:
                return i, j, shared
    pytest.fail("no shared border found")
    return -1, -1, shapely.Point()  # unreachable


def test_point_on_shared_border_goes_to_lowest_code(gdf_towns):
    i, j, shared = _shared_border(gdf_towns)
    geoms = gdf_towns.geometry.to_numpy()
    line = shapely.get_parts(shapely.line_merge(shared))[0]
    coords = shapely.get_coordinates(line)
    # Midpoints of the shared edge's segments that lie exactly on both boundaries in floating
    # point (not every midpoint does), plus the shared vertices themselves.
    mids = (coords[:-1] + coords[1:]) / 2
    candidates = [Point(p) for p in np.vstack([mids, coords])]
    on_both = [
        p
        for p in candidates
        if geoms[i].intersects(p)
        and geoms[j].intersects(p)
        and not geoms[i].contains(p)
        and not geoms[j].contains(p)
    ]
    assert on_both
    expected = min(gdf_towns["adcode"].iloc[i], gdf_towns["adcode"].iloc[j])
    out = join.join_points_township(_points([p.coords[0] for p in on_both]), gdf_towns)
    assert (out["join_flag"] == "border").all()
    assert (out["township_code"] == expected).all()


def test_also_covers_keeps_fuxing(gdf_towns, codes):
    seats = codes.set_index("adcode")
    gecheng = (float(seats.loc[GECHENG, "seat_lon"]), float(seats.loc[GECHENG, "seat_lat"]))
    bashan = (float(seats.loc[BASHAN, "seat_lon"]), float(seats.loc[BASHAN, "seat_lat"]))
    pts = _points([gecheng] * 5 + [bashan])
    pts["township_declared"] = [
        "复兴街道",
        " 500229002000 ",
        "500229002",
        "葛城街道",
        None,
        "复兴街道",
    ]
    out = join.join_points_township(pts, gdf_towns)
    assert list(out["township_code"]) == [FUXING, FUXING, FUXING, GECHENG, GECHENG, BASHAN]
    assert list(out["township"]) == ["复兴街道"] * 3 + ["葛城街道", "葛城街道", "巴山镇"]
    mismatch = join.township_mismatch(out, gdf_towns)
    assert mismatch.tolist() == [False, False, False, False, False, True]


def test_also_covers_without_names_uses_code(gdf_towns, codes):
    towns = gdf_towns.copy()
    towns.attrs = {}
    seats = codes.set_index("adcode")
    pts = _points([(float(seats.loc[GECHENG, "seat_lon"]), float(seats.loc[GECHENG, "seat_lat"]))])
    pts["township_declared"] = ["500229002"]
    out = join.join_points_township(pts, towns)
    assert out["township_code"].iloc[0] == FUXING
    assert out["township"].iloc[0] == FUXING  # no name known: the code stands in
    out = join.join_points_township(pts, towns, township_names={FUXING: "复兴街道"})
    assert out["township"].iloc[0] == "复兴街道"


@pytest.mark.parametrize(
    ("declared", "mismatch"),
    [
        (None, False),
        ("", False),
        ("  ", False),
        ("巴山镇", False),
        ("巴山", False),
        (" 500229102 ", False),
        ("500229102000", False),
        ("坪坝镇", True),
        ("500229103", True),
        ("火星镇", True),
    ],
)
def test_township_mismatch(gdf_towns, codes, declared, mismatch):
    seat = codes.set_index("adcode").loc[BASHAN]
    pts = _points([(float(seat["seat_lon"]), float(seat["seat_lat"]))])
    pts["township_declared"] = [declared]
    out = join.join_points_township(pts, gdf_towns)
    assert join.township_mismatch(out, gdf_towns).tolist() == [mismatch]


def test_polygons_split_by_township(gdf_towns):
    i, j, shared = _shared_border(gdf_towns)
    centre = shared.interpolate(0.5, normalized=True)
    fire = box(centre.x - 0.01, centre.y - 0.01, centre.x + 0.01, centre.y + 0.01)
    polys = gpd.GeoDataFrame({"zone": ["F1"]}, geometry=[fire], crs="EPSG:4326")
    out = join.join_polygons_township(polys, gdf_towns, key="zone", metric_crs=METRIC)
    geod = Geod(ellps="GRS80")
    whole_m2 = abs(geod.geometry_area_perimeter(fire)[0])
    expected = {}
    for code, geom in zip(gdf_towns["adcode"], gdf_towns.geometry, strict=True):
        piece = fire.intersection(geom)
        if not piece.is_empty and piece.area > 0:
            expected[code] = abs(geod.geometry_area_perimeter(piece)[0]) / 1e4
    assert list(out["township_code"]) == sorted(expected)
    assert len(out) >= 2
    assert {gdf_towns["adcode"].iloc[i], gdf_towns["adcode"].iloc[j]} <= set(expected)
    for row in out.itertuples():
        assert row.zone == "F1"
        # Gauss-Krüger scale error (<= ~2e-4 in area inside the county) vs geodesic area
        assert row.area_ha == pytest.approx(expected[row.township_code], rel=1e-3)
    assert out["share"].sum() == pytest.approx(1.0, abs=1e-9)
    assert out["area_ha"].sum() == pytest.approx(whole_m2 / 1e4, rel=1e-3)
    area = join.polygon_area_ha(polys, METRIC)
    assert area.iloc[0] == pytest.approx(whole_m2 / 1e4, rel=1e-3)


def test_polygon_join_errors(gdf_towns):
    polys = gpd.GeoDataFrame(
        {"zone": ["F1"]}, geometry=[box(108.6, 31.9, 108.61, 31.91)], crs="EPSG:4326"
    )
    with pytest.raises(SchemaError, match="zone_id"):
        join.join_polygons_township(polys, gdf_towns, key="zone_id", metric_crs=METRIC)
    with pytest.raises(CRSError, match="not a projected"):
        join.join_polygons_township(polys, gdf_towns, key="zone", metric_crs="EPSG:4326")
    with pytest.raises(CRSError, match="gdf_polys"):
        join.join_polygons_township(
            polys.set_crs(None, allow_override=True), gdf_towns, key="zone", metric_crs=METRIC
        )


# --- property: agrees with geopandas.sjoin ----------------------------------------------------


def _expected_by_sjoin(pts: gpd.GeoDataFrame, towns: gpd.GeoDataFrame) -> list[str | None]:
    """Township code per point from geopandas: `within`, else `intersects` + lowest adcode."""
    cols = towns[["adcode", "geometry"]]
    within = gpd.sjoin(pts, cols, how="left", predicate="within")
    assert within.index.is_unique  # the partition has no overlaps
    touch = gpd.sjoin(pts, cols, how="left", predicate="intersects")
    lowest = touch.groupby(level=0)["adcode"].min()
    return [
        w if isinstance(w, str) else (lowest.get(k) if isinstance(lowest.get(k), str) else None)
        for k, w in zip(within.index, within["adcode"], strict=True)
    ]


@pytest.fixture(scope="module")
def partition_vertices(gdf_towns) -> np.ndarray:
    return np.unique(shapely.get_coordinates(gdf_towns.geometry.to_numpy()), axis=0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_agrees_with_sjoin(gdf_towns, partition_vertices, data):
    left, bottom, right, top = gdf_towns.total_bounds
    n_random = data.draw(st.integers(0, 60))
    n_vertex = data.draw(st.integers(0, 20))
    lon = data.draw(
        st.lists(st.floats(left - 0.05, right + 0.05), min_size=n_random, max_size=n_random)
    )
    lat = data.draw(
        st.lists(st.floats(bottom - 0.05, top + 0.05), min_size=n_random, max_size=n_random)
    )
    picks = data.draw(
        st.lists(st.integers(0, len(partition_vertices) - 1), min_size=n_vertex, max_size=n_vertex)
    )
    xy = [*zip(lon, lat, strict=True), *map(tuple, partition_vertices[picks])]
    pts = _points(xy)
    out = join.join_points_township(pts, gdf_towns)
    expected = _expected_by_sjoin(pts, gdf_towns)
    got = [c if isinstance(c, str) else None for c in out["township_code"]]
    assert got == expected
    flags = out["join_flag"].tolist()
    assert all(f == "border" for f in flags[n_random:])  # a vertex is never strictly inside
