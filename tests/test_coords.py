from __future__ import annotations

import math

import numpy as np
import prcoords
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyproj import Geod, Transformer

from riskmap.coords import (
    CRS_CHOICES,
    gk_epsg_for_lon,
    gk_epsg_for_zone,
    parse_coordinate,
    parse_coordinate_array,
    to_wgs84,
)
from riskmap.errors import CRSError

P_LON, P_LAT = 108.6640, 31.9460
GEOD = Geod(ellps="WGS84")


def dist_m(lon, lat):
    return GEOD.inv(lon, lat, P_LON, P_LAT)[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("108.6640", 108.664),
        ("  108.6640 ", 108.664),
        ("108,6640", 108.664),
        ("１０８．６６４０", 108.664),
        ("108°39'50.4\"", 108.664),
        ("108° 39' 50.4\"", 108.664),
        ("108度39分50.4秒", 108.664),
        ("108°39′50.4″E", 108.664),
        ("108°39'50.4''", 108.664),
        ("108 39 50.4", 108.664),
        ("E108°39'50.4\"", 108.664),
        ("东经108度39分50.4秒", 108.664),
        ("31°56'45.6\"N", 31.946),
        ("北纬31度56分45.6秒", 31.946),
        ("３１°５６′４５．６″Ｎ", 31.946),
        ("108°39.84'", 108.664),
        ("108°", 108.0),
        ("W108°39'50.4\"", -108.664),
        ("3,536,057.06", 3536057.06),
        ("36562780,81", 36562780.81),
    ],
)
def test_parse_coordinate_spellings(text, expected):
    assert parse_coordinate(text) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "text", ["", "  ", "无", "abc", "108°75'", "108°39'75\"", "nan", "inf", "1e400", None]
)
def test_parse_coordinate_rejects(text):
    assert parse_coordinate(text) is None


def test_parse_array_mixes_fast_and_slow_paths():
    out = parse_coordinate_array(["108.664", "", "108度39分50.4秒", "无", None, "１０８．６６４"])
    assert out[0] == pytest.approx(108.664)
    assert math.isnan(out[1])
    assert out[2] == pytest.approx(108.664)
    assert math.isnan(out[3])
    assert math.isnan(out[4])
    assert out[5] == pytest.approx(108.664)


@given(
    deg=st.integers(0, 179),
    minutes=st.integers(0, 59),
    seconds=st.decimals(0, "59.99", places=2),
    style=st.sampled_from(["{d}°{m}'{s}\"", "{d}° {m}' {s}\"", "{d}度{m}分{s}秒", "{d}°{m}′{s}″E"]),
)
def test_dms_round_trip(deg, minutes, seconds, style):
    text = style.format(d=deg, m=minutes, s=seconds)
    expected = deg + minutes / 60 + float(seconds) / 3600
    assert parse_coordinate(text) == pytest.approx(expected, abs=1e-9)


@given(st.text(max_size=40))
def test_parse_coordinate_never_raises(text):
    value = parse_coordinate(text)
    assert value is None or math.isfinite(value)


def test_swapped_lon_lat_detected_with_warning():
    res = to_wgs84(["31.9460"], ["108.6640"])
    assert (res.lon[0], res.lat[0]) == pytest.approx((P_LON, P_LAT), abs=1e-6)
    levels = [m[0] for m in res.messages[0]]
    assert "warning" in levels
    assert "互换" in res.messages[0][0][2]


def test_lat_of_108_never_kept():
    res = to_wgs84(["31.9460", "108.6640"], ["108.6640", "31.9460"])
    assert np.all(res.lat < 90)


@pytest.mark.parametrize(
    ("first", "second", "axis_note"),
    [
        ("562780.81", "3536057.06", "经度/X 列取作东坐标"),  # CM 108°E, EPSG:4545
        ("36562780.81", "3536057.06", "经度/X 列取作东坐标"),  # zone 36, EPSG:4524
        ("3536057.06", "562780.81", "纬度/Y 列取作东坐标"),  # X = northing (surveying)
    ],
)
def test_gauss_kruger_to_p(first, second, axis_note):
    res = to_wgs84([first], [second], crs="gk")
    assert dist_m(res.lon[0], res.lat[0]) < 0.5
    assert any(axis_note in n for n in res.notes)
    assert 0 not in res.messages  # declared gk: no warning


def test_zone_prefix_uses_zone_crs_not_cm108():
    res = to_wgs84(["36562780.81"], ["3536057.06"], crs="gk")
    assert res.kinds[0] == "gk:4524"
    assert any("EPSG:4524" in n for n in res.notes)
    # what treating it as EPSG:4545 would give: far outside China
    bad = Transformer.from_crs(4545, 4326, always_xy=True).transform(36562780.81, 3536057.06)
    assert not 73 <= bad[0] <= 136 or not 3 <= bad[1] <= 54 or math.isinf(bad[0])


def test_projected_values_under_wgs84_are_gk_with_warning():
    res = to_wgs84(["562780.81"], ["3536057.06"], crs="wgs84")
    assert dist_m(res.lon[0], res.lat[0]) < 0.5
    assert res.messages[0][0][0] == "warning"


def test_cgcs2000_is_wgs84_at_map_scale():
    res = to_wgs84(["108.6640"], ["31.9460"], crs="cgcs2000")
    assert (res.lon[0], res.lat[0]) == (P_LON, P_LAT)
    assert any("CGCS2000" in n for n in res.notes)


def test_gcj02_inverse_within_half_metre():
    res = to_wgs84(["108.668378"], ["31.943722"], crs="gcj02")
    assert dist_m(res.lon[0], res.lat[0]) < 0.5
    # the one-step inverse is ~1 m off: the iterative one must beat it
    one_step = prcoords.gcj_wgs(prcoords.Coords(31.943722, 108.668378))
    assert dist_m(res.lon[0], res.lat[0]) < dist_m(one_step.lon, one_step.lat)


def test_bd09_inverse_within_half_metre():
    bd = prcoords.wgs_bd(prcoords.Coords(P_LAT, P_LON))
    res = to_wgs84([f"{bd.lon:.7f}"], [f"{bd.lat:.7f}"], crs="bd09")
    assert dist_m(res.lon[0], res.lat[0]) < 0.5


def test_gcj_outside_china_unchanged_and_no_warning():
    res = to_wgs84(["2.35"], ["48.85"], crs="gcj02")
    assert (res.lon[0], res.lat[0]) == (2.35, 48.85)


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("", "31.9460", "为空"),
        ("无", "31.9460", "无法识别"),
        ("108.6640", "3536057.06", "不成对"),
        ("5000", "6000", "无法识别的投影坐标"),
        ("200", "100", "超出范围"),
    ],
)
def test_not_located_rows_have_reasons(first, second, reason):
    res = to_wgs84([first], [second])
    assert math.isnan(res.lon[0])
    assert any(reason in m[2] and m[0] == "error" for m in res.messages[0])


def test_gk_epsg_helpers():
    assert gk_epsg_for_lon(108.66) == (4545, 108)
    assert gk_epsg_for_zone(36) == 4524
    assert gk_epsg_for_zone(18) == 4496
    assert gk_epsg_for_zone(99) is None
    with pytest.raises(CRSError):
        gk_epsg_for_lon(10.0)


def test_unknown_crs_raises():
    with pytest.raises(CRSError, match="未知坐标系"):
        to_wgs84(["1"], ["2"], crs="beijing54")
    assert "gk" in CRS_CHOICES
